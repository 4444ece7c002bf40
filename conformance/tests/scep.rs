//! SCEP (RFC 8894) with the real Debian client: micromdm's `scepclient`
//! (package `scep`, installed by scripts/install-test-deps.sh) enrols
//! through `/scep/{path}`; the certificate verifies with openssl against
//! the root and passes pkilint. A wrong challenge gets FAILURE badRequest
//! and issues nothing; a tampered signature gets badMessageCheck; a
//! RenewalReq signed with the issued certificate renews it.
//!
//! scepclient 2.1 encrypts its request to every certificate GetCACert
//! returns, so the CA here is RSA; and it always uses DES-CBC whatever
//! GetCACaps says (ironseal answers in the client's cipher).

use std::path::{Path, PathBuf};
use std::process::Command;

use ironseal_conformance::certs;
use ironseal_conformance::prelude::*;
use serde_json::Value;

const CONFIG: &str = r#"
ca_key_algorithm = "rsa3072"

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

[scep]
des3 = true

[[scep.profiles]]
path = "devices"
profile = "devices"
challenge = "s3cret-challenge"

[[scep.profiles]]
path = "held"
profile = "held"
challenge = "held-challenge"
"#;

/// Runs scepclient in its own directory (it writes `self.pem` and
/// `csr.pem` into the working directory); returns (success, output).
fn scepclient(dir: &Path, url: &str, challenge: &str, cn: &str) -> (bool, String, PathBuf) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let cert = dir.join("cert.pem");
    // scepclient retries a PENDING answer every 30 s for ever: cap it.
    let o = Command::new("timeout")
        .arg("10")
        .arg("scepclient")
        .current_dir(dir)
        .args(["-server-url", url, "-challenge", challenge, "-cn", cn])
        .arg("-private-key")
        .arg(dir.join("key.pem"))
        .arg("-certificate")
        .arg(&cert)
        .output()
        .expect("scepclient (scripts/install-test-deps.sh installs it)");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success() && cert.is_file(), out, cert)
}

fn curl(args: &[&str]) -> Vec<u8> {
    let o = Command::new("curl")
        .args(["-sS", "--fail"])
        .args(args)
        .output()
        .expect("curl");
    assert!(
        o.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// The certificate issuances the audit log attributes to SCEP clients.
fn scep_issuances(env: &Env) -> usize {
    let r = blocking(|| {
        env.srv.call(
            "GET",
            "/admin/v1/audit?limit=1000",
            Some(&env.srv.admin_key),
            None,
        )
    })
    .expect("audit");
    let v: Value = serde_json::from_str(&r.text()).expect("audit json");
    v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "certificate.issue" && e.to_string().contains("scep:"))
        .count()
}

/// The failInfo (RFC 8894 §3.2.1.4) of a DER CertRep, read with openssl.
fn fail_info(rep: &Path) -> Option<String> {
    let o = Command::new("openssl")
        .args(["asn1parse", "-inform", "DER", "-in"])
        .arg(rep)
        .output()
        .expect("openssl");
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let lines: Vec<&str> = text.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.contains(":2.16.840.1.113733.1.9.4"))?;
    lines[i + 1..]
        .iter()
        .find(|l| l.contains("PRINTABLESTRING"))
        .and_then(|l| l.rsplit(':').next())
        .map(|s| s.trim().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scepclient_enrols_and_bad_requests_are_refused() {
    let env = Env::start_with_config("scep", CONFIG).await;
    let base = format!("{}/scep/devices", env.srv.http_base_url());
    let work = env.path().join("scep");

    let caps = String::from_utf8(curl(&[&format!("{base}?operation=GetCACaps")])).expect("utf-8");
    for cap in [
        "POSTPKIOperation",
        "SHA-256",
        "SHA-512",
        "AES",
        "SCEPStandard",
        "Renewal",
        "DES3",
    ] {
        assert!(
            caps.lines().any(|l| l == cap),
            "{cap} missing from {caps:?}"
        );
    }
    // GetCACert: RA + issuing CA as a degenerate PKCS#7.
    let p7 = work.join("cacert.p7b");
    std::fs::create_dir_all(&work).expect("mkdir");
    std::fs::write(&p7, curl(&[&format!("{base}?operation=GetCACert")])).expect("write");
    let chain = work.join("chain.pem");
    let o = Command::new("openssl")
        .args(["pkcs7", "-inform", "DER", "-print_certs", "-in"])
        .arg(&p7)
        .arg("-out")
        .arg(&chain)
        .output()
        .expect("openssl");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let chain_text = std::fs::read_to_string(&chain).expect("chain");
    assert!(chain_text.contains("ironseal SCEP RA"), "{chain_text}");

    // Enrolment with the right challenge.
    let url = base.clone();
    let dir = work.join("dev1");
    let (ok, out, cert) = blocking(|| scepclient(&dir, &url, "s3cret-challenge", "dev1"));
    assert!(ok, "scepclient failed:\n{out}");
    let o = Command::new("openssl")
        .args(["verify", "-purpose", "sslclient", "-CAfile"])
        .arg(env.srv.root())
        .arg("-untrusted")
        .arg(&chain)
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        o.status.success(),
        "openssl verify: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let findings = certs::pkilint_errors(&cert);
    assert!(findings.is_empty(), "pkilint: {findings:#?}");
    assert_eq!(scep_issuances(&env), 1);

    // RenewalReq: scepclient signs with the certificate it has, no
    // challenge; the new certificate keeps the subject.
    let first = certs::serial_hex(&cert);
    let subject = |p: &Path| {
        let o = Command::new("openssl")
            .args(["x509", "-noout", "-subject", "-in"])
            .arg(p)
            .output()
            .expect("openssl");
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let old_subject = subject(&cert);
    let url = base.clone();
    let (ok, out, cert) = blocking(|| scepclient(&dir, &url, "", "dev1"));
    assert!(ok && out.contains("SUCCESS"), "renewal failed:\n{out}");
    assert_ne!(
        certs::serial_hex(&cert),
        first,
        "renewal issued a new certificate"
    );
    assert_eq!(subject(&cert), old_subject);
    assert_eq!(scep_issuances(&env), 2);

    // Wrong challenge: FAILURE badRequest, nothing issued.
    let url = base.clone();
    let dir = work.join("dev2");
    let (ok, out, _) = blocking(|| scepclient(&dir, &url, "wrong", "dev2"));
    assert!(!ok, "a wrong challenge enrolled:\n{out}");
    assert!(out.contains("badRequest"), "{out}");
    assert_eq!(scep_issuances(&env), 2, "a refused request issued");

    // Tampered signature: badMessageCheck, nothing issued. The request
    // is the captured scepclient vector with its last signature byte
    // flipped (the signature is checked before anything is decrypted).
    let mut msg =
        include_bytes!("../../protocol/tests/vectors/scep/scepclient-2.1-pkcsreq.der").to_vec();
    let last = msg.len() - 1;
    msg[last] ^= 1;
    let req = work.join("tampered.der");
    std::fs::write(&req, &msg).expect("write");
    let rep = work.join("tampered-rep.der");
    std::fs::write(
        &rep,
        curl(&[
            "-H",
            "Content-Type: application/x-pki-message",
            "--data-binary",
            &format!("@{}", req.display()),
            &format!("{base}?operation=PKIOperation"),
        ]),
    )
    .expect("write");
    assert_eq!(fail_info(&rep).as_deref(), Some("1"), "badMessageCheck");
    assert_eq!(scep_issuances(&env), 2);

    // A profile that requires approval: PENDING, held in the approval
    // queue, nothing issued.
    let url = format!("{}/scep/held", env.srv.http_base_url());
    let dir = work.join("held1");
    let (ok, out, _) = blocking(|| scepclient(&dir, &url, "held-challenge", "held1"));
    assert!(!ok && out.contains("PENDING"), "{out}");
    assert_eq!(scep_issuances(&env), 2, "a held request issued");
    let r = blocking(|| {
        env.srv
            .call("GET", "/admin/v1/approvals", Some(&env.srv.admin_key), None)
    })
    .expect("approvals");
    assert!(r.text().contains("scep:"), "no SCEP approval: {}", r.text());
}
