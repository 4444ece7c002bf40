//! EST (RFC 7030, RFC 8951) with real tools on loopback: curl + openssl
//! following RFC 7030's examples, and strongSwan's `pki --estca` /
//! `pki --est` (Debian `strongswan-pki` plus the curl fetcher in
//! `libstrongswan-extra-plugins`, installed by scripts/install-test-deps.sh).
//!
//! - `/cacerts`: base64 certs-only PKCS#7 with
//!   `Content-Transfer-Encoding: base64`, readable by
//!   `openssl pkcs7 -print_certs`.
//! - `/csrattrs`: the key types the label's profile accepts.
//! - `/simpleenroll` with a bootstrap (manufacturer, IDevID-style)
//!   certificate, the body base64 wrapped at 64 columns, unwrapped,
//!   PEM-armoured, and without the Content-Transfer-Encoding header; with a
//!   certificate ironseal issued.
//! - `/simplereenroll` with the issued certificate: same subject accepted,
//!   another subject refused; a bootstrap certificate is not enough.
//! - A profile that requires approval: 202 + Retry-After, approve through
//!   the admin API, the retry gets the certificate.
//! - Refusals: no or unknown client certificate (403), bad CSR signature
//!   (400 with a text body), unknown label (404); nothing is issued on any
//!   of them (counted in the audit log).
//! - Every issued certificate verifies with `openssl verify` against the
//!   `/cacerts` chain and passes pkilint.
//! - Channel binding (RFC 7030 §3.5 with the RFC 9266 tls-exporter value)
//!   over real TLS 1.3 connections, driven by `est_tls` (rustls), which
//!   computes the exporter of the connection that carries the CSR: curl
//!   cannot. Another connection's value, none, and TLS 1.2 are refused.
//! - `/serverkeygen` with the key encrypted to the client's RSA certificate
//!   (RFC 7030 §4.4.1.2, §4.4.2), opened by `openssl cms -decrypt`.

use std::path::{Path, PathBuf};
use std::process::Command;

use ironseal_conformance::certs;
use ironseal_conformance::prelude::*;
use serde_json::Value;

fn config(bootstrap_ca: &Path) -> String {
    format!(
        r#"
[[profiles]]
name = "default"
lifetime_days = 90
ekus = ["serverAuth", "clientAuth"]

[[profiles]]
name = "devices"
kind = "device"
lifetime_days = 30
ekus = ["clientAuth"]

[[profiles]]
name = "held"
kind = "device"
lifetime_days = 30
ekus = ["clientAuth"]
requires_approval = true

[[est.labels]]
label = "default"
profile = "devices"
auth = ["bootstrap", "client_cert"]
bootstrap_ca = "{b}"

[[est.labels]]
label = "held"
profile = "held"
auth = ["bootstrap"]
bootstrap_ca = "{b}"
"#,
        b = bootstrap_ca.display()
    )
}

/// One curl answer: status, headers (lower-cased names) and body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
}

/// Runs curl (no `--fail`: the status is checked by the caller).
fn curl(work: &Path, args: &[&str]) -> Answer {
    let n = std::fs::read_dir(work).map(|d| d.count()).unwrap_or(0);
    let hdr = work.join(format!("curl-{n}.headers"));
    let body = work.join(format!("curl-{n}.body"));
    let o = Command::new("curl")
        .args(["-sS", "-o"])
        .arg(&body)
        .arg("-D")
        .arg(&hdr)
        .args(["-w", "%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    assert!(
        o.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let status: u16 = String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .expect("status");
    let headers = std::fs::read_to_string(&hdr)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: std::fs::read(&body).unwrap_or_default(),
    }
}

/// A CSR for a key that already exists (re-enrolment keeps or rotates it).
fn csr_for_key(dir: &Path, key: &Path, name: &str, subject: &str) -> PathBuf {
    run_in(
        dir,
        "openssl",
        &[
            "req",
            "-new",
            "-key",
            p(key),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            subject,
        ],
    )
    .expect_success("openssl req -new -key");
    dir.join(format!("{name}.csr"))
}

/// The DER of a PEM CSR.
fn csr_der(dir: &Path, csr: &Path) -> Vec<u8> {
    let out = dir.join(format!(
        "{}.der",
        csr.file_name().and_then(|n| n.to_str()).unwrap_or("csr")
    ));
    run(
        "openssl",
        &["req", "-in", p(csr), "-outform", "DER", "-out", p(&out)],
    )
    .expect_success("openssl req -outform DER");
    std::fs::read(&out).expect("csr der")
}

/// Base64 of `der`, wrapped at `width` columns (0: one line).
fn b64(der: &[u8], width: usize) -> String {
    use base64::Engine as _;
    let s = base64::engine::general_purpose::STANDARD.encode(der);
    if width == 0 {
        return s;
    }
    let mut out = String::new();
    for chunk in s.as_bytes().chunks(width) {
        out.push_str(std::str::from_utf8(chunk).expect("ascii"));
        out.push('\n');
    }
    out
}

/// Decodes a base64 EST response body (`openssl base64 -d -A`: the server
/// sends one unbroken line, RFC 8951 §3 / RFC 4648 §4) to DER in `out`,
/// after checking that it is one line.
fn unbase64(work: &Path, body: &[u8], out: &str) -> PathBuf {
    let text = String::from_utf8_lossy(body);
    assert!(
        !text.trim_end().contains('\n'),
        "base64 body with line breaks"
    );
    let b = write(work, &format!("{out}.b64"), &text);
    let der = work.join(out);
    run(
        "openssl",
        &["base64", "-d", "-A", "-in", p(&b), "-out", p(&der)],
    )
    .expect_success("openssl base64 -d");
    der
}

/// The certificates of a DER certs-only PKCS#7, as PEM in `out`.
fn p7_certs(p7: &Path, out: &Path) -> String {
    run(
        "openssl",
        &[
            "pkcs7",
            "-inform",
            "DER",
            "-print_certs",
            "-in",
            p(p7),
            "-out",
            p(out),
        ],
    )
    .expect_success("openssl pkcs7 -print_certs");
    std::fs::read_to_string(out).expect("certs")
}

/// `openssl verify` of `leaf` against the root with the `/cacerts` chain
/// as untrusted intermediates, then pkilint.
fn verify_and_lint(root: &Path, chain: &Path, leaf: &Path) {
    let o = run(
        "openssl",
        &[
            "verify",
            "-purpose",
            "sslclient",
            "-CAfile",
            p(root),
            "-untrusted",
            p(chain),
            p(leaf),
        ],
    );
    assert!(
        o.success() && o.stdout.contains(": OK"),
        "openssl verify {}:\n{}",
        leaf.display(),
        o.describe()
    );
    // `openssl pkcs7 -print_certs` puts subject/issuer lines before the
    // PEM; pkilint wants the PEM alone.
    let clean = leaf.with_extension("clean.pem");
    run("openssl", &["x509", "-in", p(leaf), "-out", p(&clean)])
        .expect_success("openssl x509 (clean PEM)");
    let findings = certs::pkilint_errors(&clean);
    assert!(
        findings.is_empty(),
        "pkilint {}: {findings:#?}",
        leaf.display()
    );
}

fn subject_of(cert: &Path) -> String {
    run(
        "openssl",
        &[
            "x509",
            "-noout",
            "-subject",
            "-nameopt",
            "RFC2253",
            "-in",
            p(cert),
        ],
    )
    .expect_success("openssl x509 -subject")
    .stdout
    .trim()
    .to_string()
}

/// The EST test world: the manufacturer CA and a device's bootstrap
/// (IDevID-style) certificate, made before the server starts.
struct Mfg {
    /// `mfg.pem`: the label's `bootstrap_ca`.
    ca: PathBuf,
    /// The device's bootstrap certificate and key.
    idevid: PathBuf,
    idevid_key: PathBuf,
    /// A certificate from a CA nobody trusts, and its key.
    stranger: PathBuf,
    stranger_key: PathBuf,
}

fn manufacturer(dir: &Path) -> Mfg {
    let ca = openssl_root(dir, "mfg", "Device Maker Root", 0);
    let (idevid_key, csr) =
        openssl_key_and_csr(dir, "idevid", "/O=Device Maker/CN=serial-0001", &[]);
    let leaf_ext = "basicConstraints = critical,CA:false\n\
                    keyUsage = critical,digitalSignature\n\
                    extendedKeyUsage = clientAuth\n";
    let idevid = openssl_sign(dir, &csr, "mfg", leaf_ext, "idevid.pem", 365);
    openssl_root(dir, "other", "Someone Else Root", 0);
    let (stranger_key, csr) = openssl_key_and_csr(dir, "stranger", "/CN=stranger", &[]);
    let stranger = openssl_sign(dir, &csr, "other", leaf_ext, "stranger.pem", 365);
    Mfg {
        ca,
        idevid,
        idevid_key,
        stranger,
        stranger_key,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn est_with_curl_openssl_and_strongswan() {
    let mfg_dir = tempfile::Builder::new()
        .prefix("ironseal-est-mfg-")
        .tempdir()
        .expect("tempdir");
    let mfg = manufacturer(mfg_dir.path());
    let env = Env::start_with_config("est", &config(&mfg.ca)).await;
    let work = env.path().join("est");
    std::fs::create_dir_all(&work).expect("mkdir");
    let base = format!("{}/.well-known/est", env.srv.base_url());
    let root = env.srv.root();
    let tls = ["--cacert", p(&root)];
    let boot = ["--cert", p(&mfg.idevid), "--key", p(&mfg.idevid_key)];

    // /cacerts (RFC 7030 §4.1): base64 certs-only PKCS#7.
    let a = blocking(|| curl(&work, &[&tls[..], &[&format!("{base}/cacerts")]].concat()));
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.header("content-transfer-encoding"), Some("base64"));
    assert!(
        a.header("content-type")
            .is_some_and(|c| c.starts_with("application/pkcs7-mime")),
        "{:?}",
        a.headers
    );
    let p7 = unbase64(&work, &a.body, "cacerts.p7");
    let chain = work.join("cacerts.pem");
    let chain_text = p7_certs(&p7, &chain);
    assert!(
        certs::pem_blocks(&chain_text).len() >= 2,
        "issuing CA and root expected:\n{chain_text}"
    );
    let root_text = std::fs::read_to_string(&root).expect("root");
    assert!(
        certs::pem_blocks(&chain_text).contains(&certs::pem_blocks(&root_text)[0]),
        "the root is in /cacerts"
    );

    // /csrattrs (RFC 7030 §4.5): the profile's key types.
    let a = blocking(|| curl(&work, &[&tls[..], &[&format!("{base}/csrattrs")]].concat()));
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.header("content-type"), Some("application/csrattrs"));
    let attrs = unbase64(&work, &a.body, "csrattrs.der");
    let o = run(
        "openssl",
        &["asn1parse", "-inform", "DER", "-in", p(&attrs)],
    );
    o.expect_success("openssl asn1parse csrattrs");
    assert!(o.stdout.contains("id-ecPublicKey"), "{}", o.stdout);

    // /simpleenroll with the bootstrap certificate, every body framing.
    let enroll_url = format!("{base}/simpleenroll");
    let variants: [(&str, bool); 4] = [
        ("wrapped64", true),
        ("unwrapped", true),
        ("pem", true),
        ("no-cte", false),
    ];
    let mut issued = Vec::new();
    for (i, (variant, cte)) in variants.iter().enumerate() {
        let (key, csr) =
            openssl_key_and_csr(&work, &format!("dev{i}"), &format!("/CN=dev{i}"), &[]);
        let der = csr_der(&work, &csr);
        let body = match *variant {
            "wrapped64" => b64(&der, 64),
            "unwrapped" => b64(&der, 0),
            "pem" => std::fs::read_to_string(&csr).expect("csr"),
            _ => b64(&der, 64),
        };
        let body_file = write(&work, &format!("dev{i}.body"), &body);
        let mut args: Vec<&str> = Vec::new();
        args.extend_from_slice(&tls);
        args.extend_from_slice(&boot);
        args.extend_from_slice(&["-H", "Content-Type: application/pkcs10"]);
        if *cte {
            args.extend_from_slice(&["-H", "Content-Transfer-Encoding: base64"]);
        }
        let data = format!("@{}", body_file.display());
        args.extend_from_slice(&["--data-binary", &data, &enroll_url]);
        let a = blocking(|| curl(&work, &args));
        assert_eq!(a.status, 200, "{variant}: {}", a.text());
        assert_eq!(
            a.header("content-type"),
            Some("application/pkcs7-mime; smime-type=certs-only"),
            "{variant}"
        );
        assert_eq!(a.header("content-transfer-encoding"), Some("base64"));
        let p7 = unbase64(&work, &a.body, &format!("dev{i}.p7"));
        let cert = work.join(format!("dev{i}.pem"));
        p7_certs(&p7, &cert);
        verify_and_lint(&root, &chain, &cert);
        assert_eq!(subject_of(&cert), format!("subject=CN=dev{i}"), "{variant}");
        issued.push((key, cert));
    }
    assert_eq!(audited_issuances(&env.srv, "est:"), 4);

    // /simpleenroll with a certificate ironseal issued (client_cert).
    let (dev0_key, dev0_cert) = issued[0].clone();
    let mine = ["--cert", p(&dev0_cert), "--key", p(&dev0_key)];
    let (_, csr) = openssl_key_and_csr(&work, "dev-extra", "/CN=dev-extra", &[]);
    let data = format!("@{}", csr.display());
    let a = blocking(|| {
        curl(
            &work,
            &[&tls[..], &mine[..], &["--data-binary", &data, &enroll_url]].concat(),
        )
    });
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(audited_issuances(&env.srv, "est:"), 5);

    // /simplereenroll (RFC 7030 §4.2.2) with the issued certificate: a
    // new key, the same subject.
    let reenroll_url = format!("{base}/simplereenroll");
    let (_, csr) = openssl_key_and_csr(&work, "dev0-renew", "/CN=dev0", &[]);
    let data = format!("@{}", csr.display());
    let a = blocking(|| {
        curl(
            &work,
            &[
                &tls[..],
                &mine[..],
                &["--data-binary", &data, &reenroll_url],
            ]
            .concat(),
        )
    });
    assert_eq!(a.status, 200, "{}", a.text());
    let p7 = unbase64(&work, &a.body, "dev0-renew.p7");
    let renewed = work.join("dev0-renew.pem");
    p7_certs(&p7, &renewed);
    verify_and_lint(&root, &chain, &renewed);
    assert_eq!(subject_of(&renewed), subject_of(&dev0_cert));
    assert_ne!(certs::serial_hex(&renewed), certs::serial_hex(&dev0_cert));
    assert_eq!(audited_issuances(&env.srv, "est:"), 6);

    // Another subject: refused, nothing issued.
    let csr = csr_for_key(&work, &dev0_key, "dev0-other", "/CN=someone-else");
    let data = format!("@{}", csr.display());
    let a = blocking(|| {
        curl(
            &work,
            &[
                &tls[..],
                &mine[..],
                &["--data-binary", &data, &reenroll_url],
            ]
            .concat(),
        )
    });
    assert_eq!(a.status, 403, "{}", a.text());
    assert!(a.text().contains("subject"), "{}", a.text());
    // A bootstrap certificate cannot re-enrol.
    let csr = csr_for_key(
        &work,
        &mfg.idevid_key,
        "idevid-renew",
        "/O=Device Maker/CN=serial-0001",
    );
    let data = format!("@{}", csr.display());
    let a = blocking(|| {
        curl(
            &work,
            &[
                &tls[..],
                &boot[..],
                &["--data-binary", &data, &reenroll_url],
            ]
            .concat(),
        )
    });
    assert_eq!(a.status, 403, "{}", a.text());
    assert_eq!(
        audited_issuances(&env.srv, "est:"),
        6,
        "a refused re-enrolment issued"
    );

    // Wrong credentials: no client certificate, or one from a CA the label
    // does not trust: 403, nothing issued.
    let (_, csr) = openssl_key_and_csr(&work, "anon", "/CN=anon", &[]);
    let data = format!("@{}", csr.display());
    let a = blocking(|| {
        curl(
            &work,
            &[&tls[..], &["--data-binary", &data, &enroll_url]].concat(),
        )
    });
    assert!(matches!(a.status, 401 | 403), "{}: {}", a.status, a.text());
    assert!(a.text().contains("client certificate"), "{}", a.text());
    let stranger = ["--cert", p(&mfg.stranger), "--key", p(&mfg.stranger_key)];
    let a = blocking(|| {
        curl(
            &work,
            &[
                &tls[..],
                &stranger[..],
                &["--data-binary", &data, &enroll_url],
            ]
            .concat(),
        )
    });
    assert!(matches!(a.status, 401 | 403), "{}: {}", a.status, a.text());

    // A CSR whose signature does not verify: 400 with a text body.
    let (_, csr) = openssl_key_and_csr(&work, "tampered", "/CN=tampered", &[]);
    let mut der = csr_der(&work, &csr);
    let last = der.len() - 1;
    der[last] ^= 1;
    let body = write(&work, "tampered.b64", &b64(&der, 64));
    let data = format!("@{}", body.display());
    let a = blocking(|| {
        curl(
            &work,
            &[&tls[..], &boot[..], &["--data-binary", &data, &enroll_url]].concat(),
        )
    });
    assert_eq!(a.status, 400, "{}", a.text());
    assert!(
        a.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{:?}",
        a.headers
    );
    assert!(!a.text().trim().is_empty());
    // Not base64 at all: 400.
    let a = blocking(|| {
        curl(
            &work,
            &[
                &tls[..],
                &boot[..],
                &["--data-binary", "not*base64!", &enroll_url],
            ]
            .concat(),
        )
    });
    assert_eq!(a.status, 400, "{}", a.text());

    // An unknown label: 404.
    let a = blocking(|| {
        curl(
            &work,
            &[&tls[..], &[&format!("{base}/no-such-label/cacerts")]].concat(),
        )
    });
    assert_eq!(a.status, 404, "{}", a.text());
    let a = blocking(|| {
        curl(
            &work,
            &[
                &tls[..],
                &boot[..],
                &["--data-binary", &data, &format!("{base}/nope/simpleenroll")],
            ]
            .concat(),
        )
    });
    assert_eq!(a.status, 404, "{}", a.text());
    assert_eq!(
        audited_issuances(&env.srv, "est:"),
        6,
        "a refused request issued"
    );

    // Approval (RFC 7030 §4.2.3): 202 + Retry-After, approve, retry.
    let held_url = format!("{base}/held/simpleenroll");
    let (_, csr) = openssl_key_and_csr(&work, "held", "/CN=held-device", &[]);
    let data = format!("@{}", csr.display());
    let held_args: Vec<&str> = [&tls[..], &boot[..], &["--data-binary", &data, &held_url]].concat();
    let a = blocking(|| curl(&work, &held_args));
    assert_eq!(a.status, 202, "{}", a.text());
    let retry: u32 = a
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!(retry > 0);
    let a = blocking(|| curl(&work, &held_args));
    assert_eq!(a.status, 202, "still pending: {}", a.text());
    assert_eq!(
        audited_issuances(&env.srv, "est:"),
        6,
        "a held request issued"
    );
    let r = blocking(|| {
        env.srv.call(
            "GET",
            "/admin/v1/approvals?status=pending",
            Some(&env.srv.admin_key),
            None,
        )
    })
    .expect("approvals");
    let v: Value = serde_json::from_str(&r.text()).expect("json");
    let approval = v["approvals"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["protocol"] == "est"))
        .unwrap_or_else(|| panic!("no EST approval: {v}"));
    let id = approval["id"].as_str().expect("id").to_string();
    let r = blocking(|| {
        env.srv.call(
            "POST",
            &format!("/admin/v1/approvals/{id}/approve"),
            Some(&env.srv.admin_key),
            Some("{}"),
        )
    })
    .expect("approve");
    assert!(r.status < 300, "approve: {} {}", r.status, r.text());
    let a = blocking(|| curl(&work, &held_args));
    assert_eq!(a.status, 200, "{}", a.text());
    let p7 = unbase64(&work, &a.body, "held.p7");
    let held_cert = work.join("held.pem");
    p7_certs(&p7, &held_cert);
    verify_and_lint(&root, &chain, &held_cert);
    assert_eq!(audited_issuances(&env.srv, "est:"), 7);

    // strongSwan: pki --estca, then pki --est re-enrolment with the
    // issued certificate (it sends /simplereenroll when given --cert).
    let sw = work.join("strongswan");
    std::fs::create_dir_all(&sw).expect("mkdir");
    // pki appends /.well-known/est/<operation> itself: the unlabelled
    // path, which serves the label named "default".
    let url = env.srv.base_url();
    let caout = sw.join("estca.pem");
    let o = run(
        "pki",
        &[
            "--estca",
            "--url",
            &url,
            "--cacert",
            p(&root),
            "--caout",
            p(&caout),
            "--outform",
            "pem",
            "--force",
        ],
    );
    assert!(o.success(), "pki --estca:\n{}", o.describe());
    let got: Vec<PathBuf> = std::fs::read_dir(&sw)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pem"))
        .collect();
    assert!(
        !got.is_empty(),
        "pki --estca wrote no certificate:\n{}",
        o.describe()
    );

    let (dev1_key, dev1_cert) = issued[1].clone();
    let (_, csr) = openssl_key_and_csr(&sw, "dev1-renew", "/CN=dev1", &[]);
    let csr_der_path = sw.join("dev1-renew.csr.der");
    std::fs::write(&csr_der_path, csr_der(&sw, &csr)).expect("write");
    let out = sw.join("dev1-renew.pem");
    let o = blocking(|| {
        let mut c = Command::new("pki");
        c.args(["--est", "--url", &url, "--in"])
            .arg(&csr_der_path)
            .arg("--cacert")
            .arg(&root)
            .arg("--cert")
            .arg(&dev1_cert)
            .arg("--key")
            .arg(&dev1_key)
            .args(["--outform", "pem", "--maxpolltime", "5"]);
        let o = c.output().expect("pki --est");
        std::fs::write(&out, &o.stdout).expect("write");
        o
    });
    assert!(
        o.status.success(),
        "pki --est:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    verify_and_lint(&root, &chain, &out);
    assert_eq!(subject_of(&out), "subject=CN=dev1");
    assert_eq!(audited_issuances(&env.srv, "est:"), 8);
}

const BASIC_CONFIG: &str = r#"
[[profiles]]
name = "default"
lifetime_days = 90
ekus = ["serverAuth", "clientAuth"]

[[profiles]]
name = "devices"
kind = "device"
lifetime_days = 30
ekus = ["clientAuth"]
key_types = ["p256", "p384", "rsa"]

[[profiles]]
name = "held"
kind = "device"
lifetime_days = 30
ekus = ["clientAuth"]
requires_approval = true

[[est.labels]]
label = "default"
profile = "devices"
auth = ["basic", "client_cert"]

[[est.labels]]
label = "held"
profile = "held"
auth = ["basic"]
"#;

/// The two parts of a `/serverkeygen` answer, decoded: (PKCS#8 DER,
/// certs-only PKCS#7 DER).
fn multipart(content_type: &str, body: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let parts = multipart_parts(content_type, body);
    let find = |what: &str| {
        parts
            .iter()
            .find(|(h, _)| h.contains(what))
            .map(|(_, d)| d.clone())
    };
    (
        find("content-type: application/pkcs8").expect("application/pkcs8 part"),
        find("smime-type=certs-only").expect("certs-only part"),
    )
}

/// Every part of a multipart answer: (lower-cased headers, decoded base64
/// content). Each part must say `Content-Transfer-Encoding: base64`.
fn multipart_parts(content_type: &str, body: &[u8]) -> Vec<(String, Vec<u8>)> {
    use base64::Engine as _;
    let boundary = content_type
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("boundary="))
        .next()
        .unwrap_or_else(|| panic!("no boundary in {content_type}"))
        .trim_matches('"')
        .to_string();
    let text = String::from_utf8_lossy(body).to_string();
    let mut out = Vec::new();
    for part in text.split(&format!("--{boundary}")) {
        let Some((headers, content)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let headers = headers.to_ascii_lowercase();
        assert!(
            headers.contains("content-transfer-encoding: base64"),
            "part without CTE: {headers}"
        );
        let b64: String = content.chars().filter(|c| !c.is_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("part base64");
        out.push((headers, der));
    }
    out
}

fn public_key_of(args: &[&str]) -> String {
    run("openssl", args)
        .expect_success("openssl public key")
        .stdout
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn est_basic_auth_serverkeygen_and_strongswan_enrolment() {
    let env = Env::start_with_config("est-basic", BASIC_CONFIG).await;
    let work = env.path().join("est");
    std::fs::create_dir_all(&work).expect("mkdir");
    let base = format!("{}/.well-known/est", env.srv.base_url());
    let root = env.srv.root();
    let tls = ["--cacert", p(&root)];

    // The chain, for verification.
    let a = blocking(|| curl(&work, &[&tls[..], &[&format!("{base}/cacerts")]].concat()));
    assert_eq!(a.status, 200);
    let p7 = unbase64(&work, &a.body, "cacerts.p7");
    let chain = work.join("cacerts.pem");
    p7_certs(&p7, &chain);

    // EST users: one with a chosen password (admin API), one generated
    // (CLI); listed without secrets; one disabled.
    let r = blocking(|| {
        env.srv.call(
            "POST",
            "/admin/v1/est-users",
            Some(&env.srv.admin_key),
            Some(r#"{"username": "router-1", "password": "correct-horse-battery"}"#),
        )
    })
    .expect("create");
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(!r.text().contains("password"), "{}", r.text());
    let v = admin_ok(&env.srv, &["est-users", "create", "--username", "router-2"]);
    let generated = v["password"]
        .as_str()
        .expect("generated password")
        .to_string();
    admin_ok(&env.srv, &["est-users", "create", "--username", "gone"]);
    admin_ok(&env.srv, &["est-users", "disable", "gone"]);
    let list = admin_ok(&env.srv, &["est-users", "list"]);
    let text = list.to_string();
    assert!(
        text.contains("router-1") && text.contains("router-2"),
        "{text}"
    );
    assert!(
        !text.contains("pbkdf2") && !text.contains(&generated),
        "{text}"
    );
    admin_err(
        &env.srv,
        &["est-users", "create", "--username", "router-1"],
        409,
        "exists",
    );

    // /simpleenroll with curl -u (RFC 7030 §3.2.3).
    let enroll_url = format!("{base}/simpleenroll");
    let (_, csr) = openssl_key_and_csr(&work, "r1", "/CN=router-1", &[]);
    let body = write(&work, "r1.b64", &b64(&csr_der(&work, &csr), 64));
    let data = format!("@{}", body.display());
    let enroll = |user: &str| {
        let args: Vec<&str> = [
            &tls[..],
            &[
                "-u",
                user,
                "-H",
                "Content-Type: application/pkcs10",
                "-H",
                "Content-Transfer-Encoding: base64",
                "--data-binary",
                &data,
                &enroll_url,
            ],
        ]
        .concat();
        blocking(|| curl(&work, &args))
    };
    let a = enroll("router-1:correct-horse-battery");
    assert_eq!(a.status, 200, "{}", a.text());
    let p7 = unbase64(&work, &a.body, "r1.p7");
    let r1 = work.join("r1.pem");
    p7_certs(&p7, &r1);
    verify_and_lint(&root, &chain, &r1);
    let a = enroll(&format!("router-2:{generated}"));
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(audited_issuances(&env.srv, "est:"), 2);

    // Wrong password, unknown and disabled users, no credentials: 401
    // with WWW-Authenticate, nothing issued.
    for user in [
        "router-1:wrong-password",
        "nobody:correct-horse-battery",
        "gone:whatever-it-was",
    ] {
        let a = enroll(user);
        assert_eq!(a.status, 401, "{user}: {}", a.text());
        assert!(
            a.header("www-authenticate")
                .is_some_and(|h| h.starts_with("Basic")),
            "{:?}",
            a.headers
        );
    }
    let a = blocking(|| {
        curl(
            &work,
            &[&tls[..], &["--data-binary", &data, &enroll_url]].concat(),
        )
    });
    assert_eq!(a.status, 401, "{}", a.text());
    // Failed attempts are rate limited per name: after the burst, 429
    // even with the right password.
    for _ in 0..6 {
        enroll("router-2:wrong-password");
    }
    let a = enroll(&format!("router-2:{generated}"));
    assert_eq!(a.status, 429, "{}", a.text());
    assert!(a.header("retry-after").is_some());
    assert_eq!(
        audited_issuances(&env.srv, "est:"),
        2,
        "a refused request issued"
    );

    // /serverkeygen (RFC 7030 §4.4): the server makes the key; the CSR is
    // a template (P-384 here: the key type is kept).
    let (_, csr) = openssl_key_and_csr(&work, "kg-template", "/CN=router-kg", &[]);
    run(
        "openssl",
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-nodes",
            "-keyout",
            p(&work.join("kg-template.key")),
            "-subj",
            "/CN=router-kg",
            "-out",
            p(&csr),
        ],
    )
    .expect_success("openssl req P-384");
    let body = write(&work, "kg.b64", &b64(&csr_der(&work, &csr), 64));
    let data = format!("@{}", body.display());
    let a = blocking(|| {
        curl(
            &work,
            &[
                &tls[..],
                &[
                    "-u",
                    "router-1:correct-horse-battery",
                    "--data-binary",
                    &data,
                    &format!("{base}/serverkeygen"),
                ],
            ]
            .concat(),
        )
    });
    assert_eq!(a.status, 200, "{}", a.text());
    let ctype = a.header("content-type").expect("content-type").to_string();
    assert!(ctype.starts_with("multipart/mixed"), "{ctype}");
    let (pkcs8, p7) = multipart(&ctype, &a.body);
    let key_der = work.join("kg.key.der");
    std::fs::write(&key_der, &pkcs8).expect("write");
    let p7_path = work.join("kg.p7");
    std::fs::write(&p7_path, &p7).expect("write");
    let kg = work.join("kg.pem");
    p7_certs(&p7_path, &kg);
    verify_and_lint(&root, &chain, &kg);
    assert_eq!(subject_of(&kg), "subject=CN=router-kg");
    let from_key = public_key_of(&["pkey", "-inform", "DER", "-in", p(&key_der), "-pubout"]);
    let from_cert = public_key_of(&["x509", "-in", p(&kg), "-noout", "-pubkey"]);
    assert_eq!(from_key, from_cert, "the key matches the certificate");
    let template_pub = public_key_of(&["pkey", "-in", p(&work.join("kg-template.key")), "-pubout"]);
    assert_ne!(from_key, template_pub, "a fresh key, not the template's");
    let text = run(
        "openssl",
        &[
            "pkey",
            "-inform",
            "DER",
            "-in",
            p(&key_der),
            "-text",
            "-noout",
        ],
    );
    assert!(text.stdout.contains("P-384"), "{}", text.stdout);
    assert_eq!(audited_issuances(&env.srv, "est:"), 3);
    // Never under a profile that requires approval.
    let a = blocking(|| {
        curl(
            &work,
            &[
                &tls[..],
                &[
                    "-u",
                    "router-1:correct-horse-battery",
                    "--data-binary",
                    &data,
                    &format!("{base}/held/serverkeygen"),
                ],
            ]
            .concat(),
        )
    });
    assert_eq!(a.status, 403, "{}", a.text());
    assert_eq!(audited_issuances(&env.srv, "est:"), 3);

    // strongSwan pki --est with Basic (sends /simpleenroll).
    let sw = work.join("strongswan");
    std::fs::create_dir_all(&sw).expect("mkdir");
    // pki appends /.well-known/est/<operation> itself: the unlabelled
    // path, which serves the label named "default".
    let url = env.srv.base_url();
    let (_, csr) = openssl_key_and_csr(&sw, "sw1", "/CN=router-sw", &[]);
    let csr_der_path = sw.join("sw1.csr.der");
    std::fs::write(&csr_der_path, csr_der(&sw, &csr)).expect("write");
    let out = sw.join("sw1.pem");
    let o = blocking(|| {
        let o = Command::new("pki")
            .args(["--est", "--url", &url, "--in"])
            .arg(&csr_der_path)
            .arg("--cacert")
            .arg(&root)
            .args([
                "--userpass",
                "router-1:correct-horse-battery",
                "--outform",
                "pem",
                "--maxpolltime",
                "5",
            ])
            .output()
            .expect("pki --est");
        std::fs::write(&out, &o.stdout).expect("write");
        o
    });
    assert!(
        o.status.success(),
        "pki --est:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    verify_and_lint(&root, &chain, &out);
    assert_eq!(subject_of(&out), "subject=CN=router-sw");
    assert_eq!(audited_issuances(&env.srv, "est:"), 4);

    // The issuance metric carries the est protocol label.
    let m = blocking(|| curl(&work, &[&format!("{}/metrics", env.srv.http_base_url())]));
    let metrics = m.text();
    assert!(
        metrics.lines().any(|l| l.starts_with(
            "ironseal_certificates_issued_total{protocol=\"est\",profile=\"devices\""
        ) && l.contains("outcome=\"issued\"")
            && l.ends_with(" 4")),
        "{metrics}"
    );
}

/// A CSR made by `openssl req` for a new P-256 key, carrying
/// `challenge` as its challengePassword attribute (RFC 2985 §5.4.1) when
/// given, as DER.
fn csr_with_challenge(dir: &Path, name: &str, cn: &str, challenge: Option<&str>) -> Vec<u8> {
    let (attr_ref, attr_section) = match challenge {
        Some(c) => (
            "attributes = attrs\n".to_string(),
            format!("[attrs]\nchallengePassword = {c}\n"),
        ),
        None => (String::new(), String::new()),
    };
    let conf = write(
        dir,
        &format!("{name}.cnf"),
        &format!(
            "[req]\nprompt = no\ndistinguished_name = dn\n{attr_ref}[dn]\nCN = {cn}\n{attr_section}"
        ),
    );
    let out = dir.join(format!("{name}.csr.der"));
    run_in(
        dir,
        "openssl",
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-config",
            p(&conf),
            "-outform",
            "DER",
            "-out",
            p(&out),
        ],
    )
    .expect_success("openssl req with challengePassword");
    if let Some(c) = challenge {
        let o = run(
            "openssl",
            &["req", "-inform", "DER", "-in", p(&out), "-noout", "-text"],
        );
        assert!(
            o.stdout.contains(c),
            "challengePassword not in the CSR:\n{}",
            o.stdout
        );
    }
    std::fs::read(&out).expect("csr der")
}

/// RFC 7030 §3.5 channel binding with the RFC 9266 tls-exporter value, over
/// real TLS 1.3 connections: the exporter is computed on the connection
/// that then carries the CSR (curl cannot do this; our rustls client can).
/// A value from another connection, a missing challengePassword, a
/// non-base64 one and a TLS 1.2 connection are refused with a text reason;
/// nothing is issued on any refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn est_channel_binding_over_a_real_tls13_connection() {
    use base64::Engine as _;
    use ironseal_conformance::est_tls::{client_config, EstConn, TlsVersion};

    let mfg_dir = tempfile::Builder::new()
        .prefix("ironseal-est-cb-mfg-")
        .tempdir()
        .expect("tempdir");
    let mfg = manufacturer(mfg_dir.path());
    let toml = format!(
        "{}\n[[est.labels]]\nlabel = \"bound\"\nprofile = \"devices\"\nauth = [\"bootstrap\"]\n\
         bootstrap_ca = \"{}\"\nchannel_binding = true\n",
        config(&mfg.ca),
        mfg.ca.display()
    );
    let env = Env::start_with_config("est-cb", &toml).await;
    let work = env.path().join("est-cb");
    std::fs::create_dir_all(&work).expect("mkdir");
    let root = env.srv.root();
    let addr = format!("127.0.0.1:{}", env.srv.port);
    let path = "/.well-known/est/bound/simpleenroll";
    let boot = Some((mfg.idevid.as_path(), mfg.idevid_key.as_path()));
    let tls13 = client_config(&root, boot, TlsVersion::Tls13).expect("tls 1.3 config");
    let tls12 = client_config(&root, boot, TlsVersion::Tls12).expect("tls 1.2 config");
    let b64 = |v: &[u8]| base64::engine::general_purpose::STANDARD.encode(v);
    let headers = [
        ("Content-Type", "application/pkcs10"),
        ("Content-Transfer-Encoding", "base64"),
    ];

    // /csrattrs on the label asks for challengePassword.
    let a = blocking(|| {
        let mut c = EstConn::connect(&addr, "localhost", tls13.clone()).expect("connect");
        c.request("GET", "/.well-known/est/bound/csrattrs", &[], b"")
            .expect("csrattrs")
    });
    assert_eq!(a.status, 200, "{}", a.text());
    let attrs = unbase64(&work, &a.body, "csrattrs.der");
    let o = run(
        "openssl",
        &["asn1parse", "-inform", "DER", "-in", p(&attrs)],
    );
    assert!(o.stdout.contains("challengePassword"), "{}", o.stdout);

    // Good: the exporter of this TLS 1.3 connection, in a CSR made by
    // openssl, POSTed on the same connection; then a second enrolment on
    // the same (kept-alive) connection with the same value.
    let (first, second) = blocking(|| {
        let mut c = EstConn::connect(&addr, "localhost", tls13.clone()).expect("connect");
        assert_eq!(c.version(), Some(rustls::ProtocolVersion::TLSv1_3));
        let value = b64(&c.exporter().expect("exporter"));
        let der = csr_with_challenge(&work, "cb-good", "cb-good", Some(&value));
        let first = c
            .request("POST", path, &headers, b64_wrapped(&der).as_bytes())
            .expect("enrol");
        let der = csr_with_challenge(&work, "cb-again", "cb-again", Some(&value));
        let second = c
            .request("POST", path, &headers, b64_wrapped(&der).as_bytes())
            .expect("enrol again");
        (first, second)
    });
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(
        first.header("content-type"),
        Some("application/pkcs7-mime; smime-type=certs-only")
    );
    assert_eq!(second.status, 200, "{}", second.text());
    let chain = work.join("cacerts.pem");
    let cacerts = blocking(|| {
        let mut c = EstConn::connect(&addr, "localhost", tls13.clone()).expect("connect");
        c.request("GET", "/.well-known/est/bound/cacerts", &[], b"")
            .expect("cacerts")
    });
    assert_eq!(cacerts.status, 200);
    p7_certs(&unbase64(&work, &cacerts.body, "cacerts.p7"), &chain);
    for (name, a) in [("cb-good", &first), ("cb-again", &second)] {
        let cert = work.join(format!("{name}.pem"));
        p7_certs(&unbase64(&work, &a.body, &format!("{name}.p7")), &cert);
        verify_and_lint(&root, &chain, &cert);
        assert_eq!(subject_of(&cert), format!("subject=CN={name}"));
    }
    assert_eq!(audited_issuances(&env.srv, "est:"), 2);

    // Refusals, each with its status and text; nothing issued.
    let refusals: Vec<(&str, ironseal_conformance::est_tls::Answer)> = blocking(|| {
        let mut out = Vec::new();
        // The exporter value of another connection: 403.
        let other = EstConn::connect(&addr, "localhost", tls13.clone()).expect("connect");
        let mut c = EstConn::connect(&addr, "localhost", tls13.clone()).expect("connect");
        let foreign = b64(&other.exporter().expect("exporter"));
        assert_ne!(foreign, b64(&c.exporter().expect("exporter")));
        let der = csr_with_challenge(&work, "cb-foreign", "cb-foreign", Some(&foreign));
        let a = c
            .request("POST", path, &headers, b64_wrapped(&der).as_bytes())
            .expect("post");
        out.push(("other connection's value", a));
        // No challengePassword: 400.
        let der = csr_with_challenge(&work, "cb-none", "cb-none", None);
        let a = c
            .request("POST", path, &headers, b64_wrapped(&der).as_bytes())
            .expect("post");
        out.push(("no challengePassword", a));
        // A password that is not the exporter at all: 403.
        let der = csr_with_challenge(&work, "cb-pw", "cb-pw", Some("s3cret"));
        let a = c
            .request("POST", path, &headers, b64_wrapped(&der).as_bytes())
            .expect("post");
        out.push(("plain password", a));
        // TLS 1.2: RFC 9266 defines tls-exporter only for TLS 1.3, so the
        // server has no value to compare with even when the client sends
        // its RFC 5705 exporter: 403.
        let mut c = EstConn::connect(&addr, "localhost", tls12.clone()).expect("connect 1.2");
        assert_eq!(c.version(), Some(rustls::ProtocolVersion::TLSv1_2));
        let value = b64(&c.exporter().expect("exporter 1.2"));
        let der = csr_with_challenge(&work, "cb-tls12", "cb-tls12", Some(&value));
        let a = c
            .request("POST", path, &headers, b64_wrapped(&der).as_bytes())
            .expect("post");
        out.push(("TLS 1.2", a));
        out
    });
    let expected = [
        (
            "other connection's value",
            403,
            "does not match this TLS connection's tls-exporter value",
        ),
        ("no challengePassword", 400, "requires channel binding"),
        (
            "plain password",
            403,
            "does not match this TLS connection's tls-exporter value",
        ),
        ("TLS 1.2", 403, "needs a TLS 1.3 connection"),
    ];
    for ((what, a), (what2, status, text)) in refusals.iter().zip(expected) {
        assert_eq!(*what, what2);
        assert_eq!(a.status, status, "{what}: {}", a.text());
        assert!(
            a.header("content-type")
                .is_some_and(|c| c.starts_with("text/plain")),
            "{what}: {:?}",
            a.headers
        );
        assert!(a.text().contains(text), "{what}: {}", a.text());
    }
    assert_eq!(
        audited_issuances(&env.srv, "est:"),
        2,
        "a refused request issued"
    );
}

/// Base64 wrapped at 64 columns, as a device sends it.
fn b64_wrapped(der: &[u8]) -> String {
    b64(der, 64)
}

/// The subjectKeyIdentifier of a PEM certificate, read by openssl.
fn ski_of(cert: &Path) -> Vec<u8> {
    let o = run(
        "openssl",
        &[
            "x509",
            "-in",
            p(cert),
            "-noout",
            "-ext",
            "subjectKeyIdentifier",
        ],
    );
    o.expect_success("openssl x509 -ext subjectKeyIdentifier");
    let hex: String = o
        .stdout
        .lines()
        .nth(1)
        .unwrap_or_else(|| {
            panic!(
                "no subjectKeyIdentifier in {}: {}",
                cert.display(),
                o.stdout
            )
        })
        .trim()
        .replace(':', "");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A `/serverkeygen` template made by rcgen (openssl req cannot write an
/// OCTET STRING attribute), carrying AsymmetricDecryptKeyIdentifier
/// (RFC 7030 §4.4.1.2, `id-aa` 54) = `key_id` when given, base64 at 64.
fn keygen_template(cn: &str, key_id: Option<&[u8]>) -> String {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let attrs = match key_id {
        Some(id) => {
            let mut octets = vec![0x04, id.len() as u8];
            octets.extend_from_slice(id);
            let mut set = vec![0x31, octets.len() as u8];
            set.extend_from_slice(&octets);
            vec![rcgen::Attribute {
                oid: &[1, 2, 840, 113549, 1, 9, 16, 2, 54],
                values: set,
            }]
        }
        None => Vec::new(),
    };
    let der = params
        .serialize_request_with_attributes(&key, attrs)
        .expect("csr")
        .der()
        .to_vec();
    b64(&der, 64)
}

/// RFC 7030 §4.4.1.2 / §4.4.2: `/serverkeygen` with the private key
/// encrypted to the client. The client authenticates with an RSA
/// certificate ironseal issued and names it in
/// AsymmetricDecryptKeyIdentifier; the key part is
/// `application/pkcs7-mime; smime-type=server-generated-key`, a CMS
/// EnvelopedData that `openssl cms -decrypt` opens with the client's key,
/// and the key inside matches the new certificate. An identifier the
/// server does not know (or a Basic client, which has no certificate) is
/// refused with 400; an EC client certificate with 501 (key agreement is
/// not offered); nothing is issued on any refusal. The unencrypted
/// variant keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn est_serverkeygen_key_encrypted_to_the_client_certificate() {
    let env = Env::start_with_config("est-kg-enc", BASIC_CONFIG).await;
    let work = env.path().join("est");
    std::fs::create_dir_all(&work).expect("mkdir");
    let base = format!("{}/.well-known/est", env.srv.base_url());
    let root = env.srv.root();
    let tls = ["--cacert", p(&root)];
    let a = blocking(|| curl(&work, &[&tls[..], &[&format!("{base}/cacerts")]].concat()));
    assert_eq!(a.status, 200);
    let chain = work.join("cacerts.pem");
    p7_certs(&unbase64(&work, &a.body, "cacerts.p7"), &chain);
    let r = blocking(|| {
        env.srv.call(
            "POST",
            "/admin/v1/est-users",
            Some(&env.srv.admin_key),
            Some(r#"{"username": "kg", "password": "correct-horse-battery"}"#),
        )
    })
    .expect("create");
    assert_eq!(r.status, 201, "{}", r.text());
    let basic = ["-u", "kg:correct-horse-battery"];

    // An RSA and an EC device certificate, enrolled with Basic.
    let mut certs = Vec::new();
    for (name, newkey) in [("rsa-dev", "rsa:2048"), ("ec-dev", "ec")] {
        let mut args = vec!["req", "-new", "-newkey", newkey];
        if newkey == "ec" {
            args.extend_from_slice(&["-pkeyopt", "ec_paramgen_curve:P-256"]);
        }
        let key = format!("{name}.key");
        let csr = format!("{name}.csr");
        let subj = format!("/CN={name}");
        args.extend_from_slice(&["-nodes", "-keyout", &key, "-out", &csr, "-subj", &subj]);
        run_in(&work, "openssl", &args).expect_success("openssl req");
        let data = format!("@{}", work.join(&csr).display());
        let a = blocking(|| {
            curl(
                &work,
                &[
                    &tls[..],
                    &basic[..],
                    &["--data-binary", &data, &format!("{base}/simpleenroll")],
                ]
                .concat(),
            )
        });
        assert_eq!(a.status, 200, "{name}: {}", a.text());
        let cert = work.join(format!("{name}.pem"));
        p7_certs(&unbase64(&work, &a.body, &format!("{name}.p7")), &cert);
        certs.push((work.join(&key), cert));
    }
    assert_eq!(audited_issuances(&env.srv, "est:"), 2);
    let (rsa_key, rsa_cert) = certs[0].clone();
    let (ec_key, ec_cert) = certs[1].clone();
    let rsa_id = ski_of(&rsa_cert);
    let kg_url = format!("{base}/serverkeygen");
    let keygen = |auth: &[&str], body: &str, name: &str| {
        let file = write(&work, &format!("{name}.b64"), body);
        let data = format!("@{}", file.display());
        let args: Vec<&str> = [
            &tls[..],
            auth,
            &[
                "-H",
                "Content-Type: application/pkcs10",
                "-H",
                "Content-Transfer-Encoding: base64",
                "--data-binary",
                &data,
                &kg_url,
            ],
        ]
        .concat();
        blocking(|| curl(&work, &args))
    };
    let with_rsa = ["--cert", p(&rsa_cert), "--key", p(&rsa_key)];

    // Good: encrypted to the RSA client certificate.
    let a = keygen(
        &with_rsa,
        &keygen_template("kg-enc", Some(&rsa_id)),
        "kg-enc",
    );
    assert_eq!(a.status, 200, "{}", a.text());
    let ctype = a.header("content-type").expect("content-type").to_string();
    let parts = multipart_parts(&ctype, &a.body);
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert!(
        !parts.iter().any(|(h, _)| h.contains("application/pkcs8")),
        "an unencrypted key was sent"
    );
    let (_, enveloped) = parts
        .iter()
        .find(|(h, _)| {
            h.contains("content-type: application/pkcs7-mime; smime-type=server-generated-key")
        })
        .expect("server-generated-key part");
    let (_, p7) = parts
        .iter()
        .find(|(h, _)| h.contains("smime-type=certs-only"))
        .expect("certs-only part");
    let env_path = write_bytes(&work, "kg-enc.key.p7", enveloped);
    let p7_path = write_bytes(&work, "kg-enc.p7", p7);
    let cert = work.join("kg-enc.pem");
    p7_certs(&p7_path, &cert);
    verify_and_lint(&root, &chain, &cert);
    assert_eq!(subject_of(&cert), "subject=CN=kg-enc");
    // The real client side: openssl cms -decrypt with the device's key.
    let package = work.join("kg-enc.package.der");
    run(
        "openssl",
        &[
            "cms",
            "-decrypt",
            "-inform",
            "DER",
            "-in",
            p(&env_path),
            "-recip",
            p(&rsa_cert),
            "-inkey",
            p(&rsa_key),
            "-binary",
            "-out",
            p(&package),
        ],
    )
    .expect_success("openssl cms -decrypt");
    // AsymmetricKeyPackage (RFC 5958 §2): SEQUENCE OF OneAsymmetricKey.
    let keys: Vec<der::Any> =
        der::Decode::from_der(&std::fs::read(&package).expect("package")).expect("key package");
    assert_eq!(keys.len(), 1);
    let key_der = write_bytes(
        &work,
        "kg-enc.key.der",
        &der::Encode::to_der(&keys[0]).expect("der"),
    );
    let from_key = public_key_of(&["pkey", "-inform", "DER", "-in", p(&key_der), "-pubout"]);
    let from_cert = public_key_of(&["x509", "-in", p(&cert), "-noout", "-pubkey"]);
    assert_eq!(
        from_key, from_cert,
        "the decrypted key matches the certificate"
    );
    assert_eq!(audited_issuances(&env.srv, "est:"), 3);
    // Someone else's key cannot open it.
    let o = run(
        "openssl",
        &[
            "cms",
            "-decrypt",
            "-inform",
            "DER",
            "-in",
            p(&env_path),
            "-inkey",
            p(&ec_key),
        ],
    );
    assert!(!o.success(), "the EC device decrypted the RSA device's key");

    // The unencrypted variant still works for the same client.
    let a = keygen(&with_rsa, &keygen_template("kg-plain", None), "kg-plain");
    assert_eq!(a.status, 200, "{}", a.text());
    let ctype = a.header("content-type").expect("content-type").to_string();
    let (pkcs8, _) = multipart(&ctype, &a.body);
    assert!(!pkcs8.is_empty());
    assert_eq!(audited_issuances(&env.srv, "est:"), 4);

    // Refusals, nothing issued.
    let a = keygen(
        &with_rsa,
        &keygen_template("kg-unknown", Some(&[1, 2, 3, 4])),
        "kg-unknown",
    );
    assert_eq!(a.status, 400, "{}", a.text());
    assert!(
        a.text().contains("AsymmetricDecryptKeyIdentifier"),
        "{}",
        a.text()
    );
    let a = keygen(
        &basic,
        &keygen_template("kg-basic", Some(&rsa_id)),
        "kg-basic",
    );
    assert_eq!(a.status, 400, "{}", a.text());
    let with_ec = ["--cert", p(&ec_cert), "--key", p(&ec_key)];
    let a = keygen(
        &with_ec,
        &keygen_template("kg-ec", Some(&ski_of(&ec_cert))),
        "kg-ec",
    );
    assert_eq!(a.status, 501, "{}", a.text());
    assert!(a.text().contains("RSA"), "{}", a.text());
    assert_eq!(
        audited_issuances(&env.srv, "est:"),
        4,
        "a refused request issued"
    );
}

fn write_bytes(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}
