//! Helpers shared by the ca-core integration tests (`chain.rs`,
//! `constraints.rs`, `csr.rs`, `hierarchy_ops.rs`, `ocsp.rs`): the outside
//! tools that check our output (the `openssl` CLI and pkilint), deterministic
//! serials, a whole-second clock, PEM files in a test directory, CA profiles,
//! CSRs and leaves.
//!
//! pkilint lives in the venv at `$IRONSEAL_VENV`, else `<workspace>/.venv`;
//! run `scripts/install-test-deps.sh` to create it. A missing openssl or
//! pkilint fails the tests: they are never skipped.

#![allow(
    dead_code,
    reason = "shared by several test binaries; each uses a different subset"
)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ironseal_ca_core::cert::pem_encode;
use ironseal_ca_core::csr::{check_csr, CheckedCsr, CsrPolicy};
use ironseal_ca_core::hierarchy::{
    create_intermediate, create_root, CaProfile, Issuer, IssuerUrls,
};
use ironseal_ca_core::issuance::issue_leaf;
use ironseal_ca_core::keys::KeyAlgorithm;
use ironseal_ca_core::names::SubjectName;
use ironseal_ca_core::serial::Serial;
use ironseal_ca_core::CaError;
use rcgen::{CertificateParams, DnType, KeyPair};
use time::{Duration, OffsetDateTime};

// ---------------------------------------------------------------------------
// Outside tools
// ---------------------------------------------------------------------------

/// The Python venv that holds pkilint: `$IRONSEAL_VENV`, else
/// `<workspace>/.venv`.
pub fn venv() -> PathBuf {
    match std::env::var_os("IRONSEAL_VENV") {
        Some(v) => PathBuf::from(v),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv"),
    }
}

/// The path of `name` in the venv's `bin/`; panics (naming the install
/// script) when it is not there.
pub fn tool(name: &str) -> PathBuf {
    let p = venv().join("bin").join(name);
    assert!(
        p.is_file(),
        "{} not found: run scripts/install-test-deps.sh to install pkilint",
        p.display()
    );
    p
}

/// A finished process's stdout followed by its stderr, as text.
fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run_openssl(dir: Option<&Path>, args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new("openssl");
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let out = cmd
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("openssl CLI missing ({e}): run scripts/install-test-deps.sh"));
    (out.status.success(), output_text(&out))
}

/// Runs the openssl CLI; returns whether it succeeded and its stdout +
/// stderr. Panics if openssl is missing.
pub fn openssl(args: &[&str]) -> (bool, String) {
    run_openssl(None, args)
}

/// [`openssl`] with `dir` as the working directory, for relative file names.
pub fn openssl_in(dir: &Path, args: &[&str]) -> (bool, String) {
    run_openssl(Some(dir), args)
}

/// Runs the openssl CLI and panics unless it succeeds; returns its output.
pub fn openssl_ok(args: &[&str]) -> String {
    let (ok, out) = openssl(args);
    assert!(ok, "openssl {args:?} failed:\n{out}");
    out
}

/// [`openssl_ok`] with `dir` as the working directory.
pub fn openssl_ok_in(dir: &Path, args: &[&str]) -> String {
    let (ok, out) = openssl_in(dir, args);
    assert!(ok, "openssl {args:?} failed:\n{out}");
    out
}

/// `openssl verify -x509_strict <extra> -CAfile ca [-untrusted u]... cert`:
/// RFC 5280 path validation of `cert` up to the trust anchors in `ca`.
/// Returns whether it succeeded and the output.
pub fn verify_chain(extra: &[&str], ca: &Path, untrusted: &[&Path], cert: &Path) -> (bool, String) {
    let mut args = vec!["verify", "-x509_strict"];
    args.extend(extra);
    args.extend(["-CAfile", s(ca)]);
    for u in untrusted {
        args.extend(["-untrusted", s(u)]);
    }
    args.push(s(cert));
    openssl(&args)
}

/// [`verify_chain`] that panics, naming `what`, unless openssl succeeds and
/// reports `<cert>: OK`.
pub fn assert_verifies(what: &str, extra: &[&str], ca: &Path, untrusted: &[&Path], cert: &Path) {
    let (ok, out) = verify_chain(extra, ca, untrusted, cert);
    assert!(
        ok && out.contains(": OK"),
        "openssl verify {what} failed:\n{out}"
    );
}

/// Runs `<tool_name> lint <extra> -s <severity> -f TEXT <file>`; returns its
/// exit code and output.
fn pkilint_run(
    tool_name: &str,
    extra: &[&str],
    severity: &str,
    file: &Path,
) -> (Option<i32>, String) {
    let t = tool(tool_name);
    let out = Command::new(&t)
        .arg("lint")
        .args(extra)
        .args(["-s", severity, "-f", "TEXT"])
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", t.display()));
    (out.status.code(), output_text(&out))
}

/// Runs the pkilint tool `tool_name` (e.g. `lint_crl`, with `extra` such as
/// `["-t", "CRL", "-p", "PKIX"]`) on `file` at `-s ERROR` and panics on a
/// non-zero exit or any ERROR or FATAL finding.
pub fn pkilint_errors(tool_name: &str, extra: &[&str], file: &Path) {
    let (code, text) = pkilint_run(tool_name, extra, "ERROR", file);
    assert!(
        code == Some(0) && !text.contains("(ERROR)") && !text.contains("(FATAL)"),
        "{tool_name} reported errors for {}:\n{text}",
        file.display()
    );
}

/// [`pkilint_errors`], then returns the NOTICE-and-above findings for the
/// test's log (a second run of the tool).
pub fn pkilint(tool_name: &str, extra: &[&str], file: &Path) -> String {
    pkilint_errors(tool_name, extra, file);
    pkilint_run(tool_name, extra, "NOTICE", file).1
}

/// `lint_pkix_cert` on a PEM certificate: panics on any ERROR or FATAL
/// finding.
pub fn pkilint_cert(file: &Path) {
    pkilint_errors("lint_pkix_cert", &[], file);
}

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

/// Where a test writes the files it hands to the tools: `$IRONSEAL_TEST_OUT`
/// when set (created if needed, kept for manual inspection), else `tmp`.
/// Always an absolute path, so it stays valid for tools run in another
/// working directory.
pub fn out_dir(tmp: &tempfile::TempDir) -> PathBuf {
    match std::env::var_os("IRONSEAL_TEST_OUT") {
        Some(keep) => {
            std::fs::create_dir_all(&keep).expect("create IRONSEAL_TEST_OUT");
            std::fs::canonicalize(&keep).expect("IRONSEAL_TEST_OUT path")
        }
        None => tmp.path().to_path_buf(),
    }
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write_text(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write temp file");
    p
}

/// Writes `ders` as consecutive PEM blocks labelled `label` to `dir/name`
/// and returns the path.
pub fn write_pem(dir: &Path, name: &str, label: &str, ders: &[&[u8]]) -> PathBuf {
    let pem: String = ders.iter().map(|d| pem_encode(label, d)).collect();
    write_text(dir, name, &pem)
}

/// [`write_pem`] with the `CERTIFICATE` label.
pub fn write_certs(dir: &Path, name: &str, ders: &[&[u8]]) -> PathBuf {
    write_pem(dir, name, "CERTIFICATE", ders)
}

/// A path as `&str`, for command lines.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

// ---------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------

/// A deterministic 16-byte serial number; distinct `n` give distinct serials.
pub fn serial(n: u8) -> Serial {
    let mut b = [0u8; 16];
    for (i, x) in b.iter_mut().enumerate() {
        *x = n.wrapping_mul(37).wrapping_add(i as u8 * 13) ^ 0x5a;
    }
    Serial::from_random(b)
}

/// The current time in whole seconds (certificate times carry no fraction).
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("nanos")
}

/// A DNS identifier.
pub fn dns(d: &str) -> SubjectName {
    SubjectName::Dns(d.to_string())
}

/// An IP identifier; panics if `a` is not an address.
pub fn ip(a: &str) -> SubjectName {
    SubjectName::Ip(a.parse::<IpAddr>().expect("ip"))
}

/// A CA profile for organization "ironseal test" with the given
/// pathLenConstraint and nothing else (no name constraints, no policies).
pub fn profile(
    cn: &str,
    alg: KeyAlgorithm,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    path_len: Option<u8>,
) -> CaProfile {
    CaProfile {
        organization: Some("ironseal test".to_string()),
        path_len,
        ..CaProfile::new(cn, alg, not_before, not_after)
    }
}

/// A two-level hierarchy for `alg`: a root "{name} root {alg}" (issuer id
/// `root`, serial 1, pathLen 1, from a day ago for ten years) and under it
/// an intermediate "{name} intermediate {alg}" (id `inter`, serial 2,
/// pathLen 0, from `inter_since` ago for five years), each publishing the
/// given URLs.
pub fn root_and_intermediate(
    alg: KeyAlgorithm,
    name: &str,
    inter_since: Duration,
    root_urls: IssuerUrls,
    inter_urls: IssuerUrls,
) -> (Issuer, Issuer) {
    let t = now();
    let root_profile = profile(
        &format!("{name} root {alg}"),
        alg,
        t - Duration::days(1),
        t + Duration::days(3650),
        Some(1),
    );
    let (root_key, root_der) = create_root(&root_profile, serial(1)).expect("root");
    let root = Issuer::new("root".into(), root_der, root_key, root_urls).expect("root issuer");
    let inter_profile = profile(
        &format!("{name} intermediate {alg}"),
        alg,
        t - inter_since,
        t + Duration::days(1825),
        Some(0),
    );
    let (inter_key, inter_der) =
        create_intermediate(&inter_profile, serial(2), &root).expect("intermediate");
    let inter =
        Issuer::new("inter".into(), inter_der, inter_key, inter_urls).expect("intermediate issuer");
    (root, inter)
}

// ---------------------------------------------------------------------------
// CSRs and leaves
// ---------------------------------------------------------------------------

/// A PKCS#10 request made by rcgen for `key`: subject CN `cn` (or an empty
/// subject) and `sans` as subjectAltNames (IP literals become IP SANs).
pub fn csr_der(key: &KeyPair, cn: Option<&str>, sans: &[&str]) -> Vec<u8> {
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(sans).expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(cn) = cn {
        params.distinguished_name.push(DnType::CommonName, cn);
    }
    params.serialize_request(key).expect("csr").der().to_vec()
}

/// A checked CSR for exactly `names`, with a fresh P-256 key and an empty
/// subject; panics unless `check_csr` and `require_names` accept it.
pub fn checked_csr(names: &[SubjectName]) -> CheckedCsr {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("leaf key");
    let sans: Vec<String> = names
        .iter()
        .map(|n| match n {
            SubjectName::Dns(d) => d.clone(),
            SubjectName::Ip(i) => i.to_string(),
            other => panic!("checked_csr makes DNS/IP CSRs only, not {other}"),
        })
        .collect();
    let sans: Vec<&str> = sans.iter().map(String::as_str).collect();
    let csr = check_csr(&csr_der(&key, None, &sans), &CsrPolicy::default()).expect("check_csr");
    csr.require_names(names).expect("names");
    csr
}

/// Issues a leaf for `names` under `issuer` with serial `serial(n)`, valid
/// from five minutes ago for 30 days (cut at the issuer's notAfter).
/// Returns the DER, or the refusal.
pub fn leaf(issuer: &Issuer, names: &[SubjectName], n: u8) -> Result<Vec<u8>, CaError> {
    let t = now();
    issue_leaf(
        issuer,
        &checked_csr(names),
        names,
        serial(n),
        t - Duration::minutes(5),
        (t + Duration::days(30)).min(issuer.not_after()),
    )
    .map(|c| c.der)
}
