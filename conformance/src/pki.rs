//! Operator-side helpers shared by the tests: the `ironseal admin` CLI with
//! the server's admin key, openssl (an offline root, signing a CA request,
//! `openssl ocsp`, `s_client`), CRL download and checks with openssl and
//! pkilint. Every helper runs a real process with a deadline.

#![allow(
    clippy::unwrap_used,
    reason = "test harness: a panic is a test failure"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::env::blocking;
use crate::proc;
use crate::server::Server;

/// What one `ironseal admin` run printed, and its exit code.
pub struct CliOut {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CliOut {
    /// From a finished process.
    pub fn from_output(o: proc::Output) -> CliOut {
        CliOut {
            code: o.status.and_then(|s| s.code()),
            stdout: o.stdout,
            stderr: o.stderr,
        }
    }

    /// stdout as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }

    /// Exit 0; the JSON answer.
    pub fn ok(&self, what: &str) -> Value {
        assert_eq!(
            self.code,
            Some(0),
            "{what} failed:\n{}\n{}",
            self.stdout,
            self.stderr
        );
        self.json()
    }

    /// Exit 1 with the server's HTTP `status` and error `code` on stderr.
    pub fn http_error(&self, status: u16, code: &str, what: &str) {
        assert_eq!(
            self.code,
            Some(1),
            "{what}: expected an HTTP error:\n{}\n{}",
            self.stdout,
            self.stderr
        );
        assert!(
            self.stderr.contains(&format!("HTTP {status}"))
                && self.stderr.contains(&format!("\"code\": \"{code}\"")),
            "{what}: expected HTTP {status} {code}, got:\n{}",
            self.stderr
        );
    }
}

/// `ironseal admin ...` with the admin key.
pub fn admin(srv: &Server, args: &[&str]) -> CliOut {
    admin_as(srv, &srv.admin_key, args, None)
}

/// `ironseal admin ...` with the API key `key`, reading `stdin` from a
/// file when given (120 s deadline).
pub fn admin_as(srv: &Server, key: &str, args: &[&str], stdin: Option<&Path>) -> CliOut {
    let bin = crate::server::ironseal_bin().unwrap_or_else(|e| panic!("{e}"));
    // proc::run gives the child /dev/null as stdin; a shell redirects it.
    let mut c = match stdin {
        None => Command::new(&bin),
        Some(f) => {
            let mut c = Command::new("sh");
            c.args(["-c", r#"exec "$0" "$@" < "$ADMIN_TEST_STDIN""#])
                .arg(&bin)
                .env("ADMIN_TEST_STDIN", f);
            c
        }
    };
    c.arg("admin")
        .args(args)
        .env("IRONSEAL_URL", srv.base_url())
        .env("IRONSEAL_API_KEY", key)
        .env("IRONSEAL_CA_CERT", srv.root());
    CliOut::from_output(blocking(|| proc::run(c, Duration::from_secs(120))))
}

/// `ironseal admin ...` that must succeed; its JSON answer.
pub fn admin_ok(srv: &Server, args: &[&str]) -> Value {
    admin(srv, args).ok(&format!("admin {args:?}"))
}

/// `ironseal admin ...` that must fail with HTTP `status` and error
/// `code`; its stderr.
pub fn admin_err(srv: &Server, args: &[&str], status: u16, code: &str) -> String {
    let out = admin(srv, args);
    out.http_error(status, code, &format!("admin {args:?}"));
    out.stderr
}

/// The issuing CA in a `cas list` answer.
pub fn issuing_in(list: &Value) -> &Value {
    list["cas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["issuing"] == true)
        .unwrap_or_else(|| panic!("no issuing CA: {list:#}"))
}

/// The CA `id` in a `cas list` answer.
pub fn ca_in<'a>(list: &'a Value, id: &str) -> &'a Value {
    list["cas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("CA {id} not listed: {list:#}"))
}

/// Writes `text` to `dir/name`.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs a program (60 s deadline).
pub fn run(program: &str, args: &[&str]) -> proc::Output {
    let mut c = Command::new(program);
    c.args(args);
    blocking(|| proc::run(c, Duration::from_secs(60)))
}

/// Runs a program in `dir` (60 s deadline).
pub fn run_in(dir: &Path, program: &str, args: &[&str]) -> proc::Output {
    let mut c = Command::new(program);
    c.current_dir(dir).args(args);
    blocking(|| proc::run(c, Duration::from_secs(60)))
}

/// A path as `&str`.
pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// How many certificate issuances the audit log (read through the admin
/// API, first 1,000 entries) attributes to `front_end` (`"scep:"`,
/// `"est:"`: the prefix of the audited requester).
pub fn audited_issuances(srv: &Server, front_end: &str) -> usize {
    let r = blocking(|| {
        srv.call(
            "GET",
            "/admin/v1/audit?limit=1000",
            Some(&srv.admin_key),
            None,
        )
    })
    .expect("audit");
    let v: Value = serde_json::from_str(&r.text()).expect("audit json");
    v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "certificate.issue" && e.to_string().contains(front_end))
        .count()
}

/// A fresh P-256 key and PEM request made by `openssl req` in `dir`:
/// (`<name>.key`, `<name>.csr`) for `subject` (e.g. `/CN=a.test`), with
/// `extra` arguments appended (e.g. `["-addext", "subjectAltName=DNS:a.test"]`).
pub fn openssl_key_and_csr(
    dir: &Path,
    name: &str,
    subject: &str,
    extra: &[&str],
) -> (PathBuf, PathBuf) {
    let (key, csr) = (format!("{name}.key"), format!("{name}.csr"));
    let mut args = vec![
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &key,
        "-out",
        &csr,
        "-subj",
        subject,
    ];
    args.extend_from_slice(extra);
    run_in(dir, "openssl", &args).expect_success("openssl req -new (P-256 key and request)");
    (dir.join(key), dir.join(csr))
}

/// A self-signed P-256 CA made by `openssl req -x509` in `dir`:
/// (`<name>.pem`, `<name>.key`) for `subject`, `days` long, with `extra`
/// arguments appended (e.g. `-addext` lines).
pub fn openssl_self_signed(
    dir: &Path,
    name: &str,
    subject: &str,
    days: u32,
    extra: &[&str],
) -> (PathBuf, PathBuf) {
    let (pem, key, days) = (
        format!("{name}.pem"),
        format!("{name}.key"),
        days.to_string(),
    );
    let mut args = vec![
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &key,
        "-out",
        &pem,
        "-days",
        &days,
        "-subj",
        subject,
    ];
    args.extend_from_slice(extra);
    run_in(dir, "openssl", &args).expect_success("openssl req -x509 (P-256 CA)");
    (dir.join(pem), dir.join(key))
}

/// An offline root made by openssl in `dir`: `<name>.pem` (P-256,
/// self-signed, `pathlen`) and `<name>.key`. Returns the certificate path.
pub fn openssl_root(dir: &Path, name: &str, cn: &str, pathlen: u8) -> PathBuf {
    let cnf = write(
        dir,
        &format!("{name}.cnf"),
        &format!(
            "[req]\ndistinguished_name = dn\nprompt = no\nx509_extensions = v3_root\n\
             string_mask = utf8only\n\
             [dn]\nO = Offline Org\nCN = {cn}\n\
             [v3_root]\nbasicConstraints = critical,CA:true,pathlen:{pathlen}\n\
             keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n"
        ),
    );
    run_in(
        dir,
        "openssl",
        &[
            "req",
            "-x509",
            "-config",
            p(&cnf),
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "3650",
            "-sha256",
        ],
    )
    .expect_success("openssl req -x509 (offline root)");
    dir.join(format!("{name}.pem"))
}

/// openssl signs the request `csr` (PEM path) with CA `ca` (files
/// `<ca>.pem`, `<ca>.key` in `dir`) as a certificate with the extensions
/// `ext` (openssl.cnf syntax), `days` long; returns the certificate path.
pub fn openssl_sign(dir: &Path, csr: &Path, ca: &str, ext: &str, out: &str, days: u32) -> PathBuf {
    let ext_file = write(dir, &format!("{out}.ext"), &format!("[ext]\n{ext}"));
    // Distinct serials per call: the clock's nanoseconds.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let serial = format!("0x{nanos:x}");
    run_in(
        dir,
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            p(csr),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-set_serial",
            &serial,
            "-days",
            &days.to_string(),
            "-sha256",
            "-extfile",
            p(&ext_file),
            "-extensions",
            "ext",
            "-out",
            out,
        ],
    )
    .expect_success("openssl x509 -req");
    dir.join(out)
}

/// Extensions of an intermediate CA certificate with `pathlen`.
pub fn ca_extensions(pathlen: u8) -> String {
    format!(
        "basicConstraints = critical,CA:true,pathlen:{pathlen}\n\
         keyUsage = critical,keyCertSign,cRLSign\n\
         subjectKeyIdentifier = hash\n\
         authorityKeyIdentifier = keyid:always\n"
    )
}

/// `openssl ocsp` against the server's responder: the status word
/// ("good", "revoked", ...) for `leaf` issued by `issuer`, after checking
/// that the response verifies against `ca_file` (with `others` as extra
/// certificates for the responder's chain).
pub fn ocsp_status(
    srv: &Server,
    issuer: &Path,
    leaf: &Path,
    ca_file: &Path,
    others: &Path,
) -> String {
    let o = run(
        "openssl",
        &[
            "ocsp",
            "-issuer",
            p(issuer),
            "-cert",
            p(leaf),
            "-CAfile",
            p(ca_file),
            "-verify_other",
            p(others),
            "-url",
            &format!("{}/ocsp", srv.http_base_url()),
        ],
    );
    o.expect_success("openssl ocsp");
    assert!(
        o.combined().contains("Response verify OK"),
        "OCSP response does not verify:\n{}",
        o.describe()
    );
    let prefix = format!("{}: ", leaf.display());
    o.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| panic!("no status line:\n{}", o.describe()))
}

/// The certificate (PEM) the HTTPS listener presents now, fetched with
/// `openssl s_client` and verified against `root.pem`.
pub fn served_certificate(srv: &Server) -> String {
    let mut c = Command::new("openssl");
    c.args(["s_client", "-connect"])
        .arg(format!("127.0.0.1:{}", srv.port))
        .args([
            "-servername",
            "localhost",
            "-verify_return_error",
            "-CAfile",
        ])
        .arg(srv.root())
        .stdin(std::process::Stdio::null());
    let o = blocking(|| proc::run(c, Duration::from_secs(30)));
    assert!(
        o.stdout.contains("Verify return code: 0 (ok)"),
        "the listener's chain does not verify to root.pem:\n{}",
        o.describe()
    );
    let start = o.stdout.find("-----BEGIN CERTIFICATE-----").unwrap();
    let end = o.stdout[start..].find("-----END CERTIFICATE-----").unwrap() + start + 25;
    format!("{}\n", &o.stdout[start..end])
}

/// `openssl x509 -noout -<field>` of a PEM certificate, e.g. "issuer".
pub fn x509_field(dir: &Path, pem: &str, field: &str) -> String {
    let f = write(dir, &format!("x509-{field}.pem"), pem);
    let o = run(
        "openssl",
        &["x509", "-noout", &format!("-{field}"), "-in", p(&f)],
    );
    o.expect_success("openssl x509");
    o.stdout.trim().to_string()
}

/// Normalized serial: uppercase hex without leading zero bytes.
pub fn norm_serial(s: &str) -> String {
    let s = s.trim().replace(':', "").to_ascii_uppercase();
    let t = s.trim_start_matches('0');
    if t.is_empty() {
        "0".into()
    } else {
        t.to_string()
    }
}

/// Serial of a DER certificate as uppercase hex (x509-cert).
pub fn der_serial(der: &[u8]) -> String {
    use x509_cert::der::Decode as _;
    let c = x509_cert::Certificate::from_der(der).expect("parse certificate");
    norm_serial(&hex_upper(c.tbs_certificate().serial_number().as_bytes()))
}

pub fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// The CRL distribution point URI of a PEM certificate.
pub fn crl_dp(leaf_pem_path: &Path) -> String {
    let mut c = Command::new("openssl");
    c.args(["x509", "-noout", "-ext", "crlDistributionPoints", "-in"])
        .arg(leaf_pem_path);
    let o = proc::run(c, Duration::from_secs(30));
    o.expect_success("openssl x509 -ext crlDistributionPoints");
    o.stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("URI:").map(str::to_string))
        .unwrap_or_else(|| panic!("no CRL DP URI in {}", o.stdout))
}

/// Downloads the DER CRL at `url` (plain HTTP) into `work`.
pub fn crl_fetch(url: &str, work: &Path) -> PathBuf {
    let n = std::fs::read_dir(work).map(|d| d.count()).unwrap_or(0);
    let file = work.join(format!("crl-{n}.der"));
    let r = crate::client::get(url, None).unwrap_or_else(|e| panic!("GET CRL: {e}"));
    assert_eq!(r.status, 200, "GET CRL {url}: {}", r.describe());
    std::fs::write(&file, &r.body).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
    file
}

/// The CRL number (RFC 5280 §5.2.3) of a DER CRL, read by `openssl crl`.
pub fn crl_number(crl_der: &Path) -> u64 {
    let o = run(
        "openssl",
        &[
            "crl",
            "-inform",
            "DER",
            "-noout",
            "-crlnumber",
            "-in",
            p(crl_der),
        ],
    );
    o.expect_success("openssl crl -crlnumber");
    let v = o
        .stdout
        .trim()
        .strip_prefix("crlNumber=")
        .unwrap_or_else(|| panic!("no crlNumber: {}", o.stdout));
    let v = v.trim_start_matches("0x");
    u64::from_str_radix(v, 16).unwrap_or_else(|_| panic!("bad crlNumber {v}"))
}

/// Downloads the DER CRL at `url` and returns the revoked serials
/// (normalized) as printed by `openssl crl -text`, plus the text.
pub fn crl_serials(url: &str, work: &Path) -> (Vec<String>, String) {
    let file = crl_fetch(url, work);
    let mut c = Command::new("openssl");
    c.args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
        .arg(&file);
    let o = proc::run(c, Duration::from_secs(30));
    o.expect_success("openssl crl -text");
    let serials = o
        .stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Serial Number:").map(norm_serial))
        .collect();
    (serials, o.stdout)
}

/// The CRL's signature verifies against `ca_file` (issuer + root, PEM) and
/// pkilint's `lint_crl` (PKIX profile) reports no ERROR/FATAL.
pub fn crl_check(crl: &Path, ca_file: &Path) {
    let mut c = Command::new("openssl");
    c.args(["crl", "-inform", "DER", "-noout", "-in"])
        .arg(crl)
        .arg("-CAfile")
        .arg(ca_file);
    let o = proc::run(c, Duration::from_secs(30));
    assert!(
        o.success() && o.combined().contains("verify OK"),
        "CRL signature does not verify:\n{}",
        o.describe()
    );
    pkilint_der("lint_crl", &["-t", "CRL", "-p", "PKIX"], crl);
}

/// Runs pkilint's `tool` (`lint_crl`, `lint_ocsp_response`, ...) from the
/// venv on a DER document with `tool_args` before the common ones, and
/// asserts it succeeds with no ERROR or FATAL finding.
#[track_caller]
pub fn pkilint_der(tool: &str, tool_args: &[&str], der: &Path) {
    let bin = crate::clients::venv().join("bin").join(tool);
    assert!(
        bin.is_file(),
        "{} missing: run scripts/install-test-deps.sh (pkilint in the venv)",
        bin.display()
    );
    let mut c = Command::new(&bin);
    c.arg("lint")
        .args(tool_args)
        .args(["-s", "ERROR", "-f", "TEXT", "--document-format", "DER"])
        .arg(der);
    let o = blocking(|| proc::run(c, Duration::from_secs(60)));
    assert!(!o.timed_out(), "{tool} timed out");
    let findings: Vec<&str> = o
        .stdout
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("FATAL"))
        .collect();
    assert!(
        findings.is_empty() && o.success(),
        "{tool} {}: failed or reports ERROR/FATAL findings:\n{}",
        der.display(),
        o.describe()
    );
}
