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

use aws_lc_rs::rand::SystemRandom;
use der::{Decode, Encode};
use ironseal_conformance::certs;
use ironseal_conformance::prelude::*;
use ironseal_protocol::pkcs7::certificates_of;
use ironseal_protocol::scep::{
    decrypt_envelope, issuer_and_serial, CertRepView, ContentCipher, DigestAlg, IssuerAndSubject,
    MessageType, RaKey, Request,
};
use serde_json::{json, Value};
use x509_cert::Certificate;

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
    assert_eq!(audited_issuances(&env.srv, "scep:"), 1);

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
    assert_eq!(audited_issuances(&env.srv, "scep:"), 2);

    // Wrong challenge: FAILURE badRequest, nothing issued.
    let url = base.clone();
    let dir = work.join("dev2");
    let (ok, out, _) = blocking(|| scepclient(&dir, &url, "wrong", "dev2"));
    assert!(!ok, "a wrong challenge enrolled:\n{out}");
    assert!(out.contains("badRequest"), "{out}");
    assert_eq!(
        audited_issuances(&env.srv, "scep:"),
        2,
        "a refused request issued"
    );

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
    assert_eq!(audited_issuances(&env.srv, "scep:"), 2);

    // A profile that requires approval: PENDING, held in the approval
    // queue, nothing issued.
    let url = format!("{}/scep/held", env.srv.http_base_url());
    let dir = work.join("held1");
    let (ok, out, _) = blocking(|| scepclient(&dir, &url, "held-challenge", "held1"));
    assert!(!ok && out.contains("PENDING"), "{out}");
    assert_eq!(
        audited_issuances(&env.srv, "scep:"),
        2,
        "a held request issued"
    );
    let r = blocking(|| {
        env.srv
            .call("GET", "/admin/v1/approvals", Some(&env.srv.admin_key), None)
    })
    .expect("approvals");
    assert!(r.text().contains("scep:"), "no SCEP approval: {}", r.text());
}

/// A SCEP client made with openssl: an RSA key, a self-signed signer
/// certificate and a CSR with `challenge`, driven by the protocol crate's
/// request encoder (for the message types scepclient does not send).
struct Client {
    key: RaKey,
    signer_der: Vec<u8>,
    csr_der: Vec<u8>,
}

fn openssl(args: &[&str], dir: &Path) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn client(dir: &Path, cn: &str, challenge: &str) -> Client {
    client_with_sans(dir, cn, challenge, &[])
}

/// [`client`] whose CSR also asks for these subjectAltNames (openssl
/// `[alt]` lines such as `DNS.1=a.example` or `URI.1=tag:...`).
fn client_with_sans(dir: &Path, cn: &str, challenge: &str, sans: &[&str]) -> Client {
    std::fs::create_dir_all(dir).expect("mkdir");
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "key.pem",
            "-subj",
            &format!("/CN={cn}"),
            "-days",
            "1",
            "-outform",
            "DER",
            "-out",
            "self.der",
        ],
        dir,
    );
    openssl(
        &[
            "pkcs8", "-topk8", "-nocrypt", "-in", "key.pem", "-outform", "DER", "-out", "key.pk8",
        ],
        dir,
    );
    let mut cnf = format!(
        "[req]\nprompt=no\ndistinguished_name=dn\nattributes=attrs\n{ext}[dn]\nCN={cn}\n\
         [attrs]\nchallengePassword={challenge}\n",
        ext = if sans.is_empty() {
            ""
        } else {
            "req_extensions=ext\n"
        }
    );
    if !sans.is_empty() {
        cnf.push_str("[ext]\nsubjectAltName=@alt\n[alt]\n");
        for s in sans {
            cnf.push_str(s);
            cnf.push('\n');
        }
    }
    std::fs::write(dir.join("req.cnf"), cnf).expect("write");
    openssl(
        &[
            "req", "-new", "-key", "key.pem", "-config", "req.cnf", "-outform", "DER", "-out",
            "csr.der",
        ],
        dir,
    );
    let read = |f: &str| std::fs::read(dir.join(f)).expect("read");
    let signer_der = read("self.der");
    Client {
        key: RaKey::new(&signer_der, &read("key.pk8")).expect("client key"),
        signer_der,
        csr_der: read("csr.der"),
    }
}

/// Encodes a request from `c` (fresh senderNonce each time).
fn request(c: &Client, ra: &Certificate, kind: MessageType, tx: &str, content: &[u8]) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    Request {
        message_type: kind,
        transaction_id: tx,
        content,
        recipient: ra,
        cipher: ContentCipher::Aes256,
        digest: DigestAlg::Sha256,
    }
    .encode(&c.key, now, &SystemRandom::new())
    .expect("encode")
    .0
}

/// POSTs a PKIMessage; answers (pkiStatus, failInfo, opened content).
fn post(url: &str, work: &Path, c: &Client, msg: &[u8]) -> (String, Option<String>, Vec<u8>) {
    let req = work.join("req.der");
    std::fs::write(&req, msg).expect("write");
    let rep = curl(&[
        "-H",
        "Content-Type: application/x-pki-message",
        "--data-binary",
        &format!("@{}", req.display()),
        &format!("{url}?operation=PKIOperation"),
    ]);
    let view = CertRepView::decode(&rep).expect("a CertRep signed by the RA");
    let content = match &view.envelope {
        Some(env) => {
            decrypt_envelope(&c.key, env, &SystemRandom::new())
                .expect("encrypted to the request's signer")
                .content
        }
        None => Vec::new(),
    };
    (view.pki_status, view.fail_info, content)
}

/// The only certificate of a degenerate SignedData.
fn only_cert(p7: &[u8]) -> Vec<u8> {
    let mut certs = certificates_of(p7).expect("certs-only");
    assert_eq!(certs.len(), 1, "one certificate");
    certs.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_are_idempotent_polled_and_get_cert_and_crl_answer() {
    let env = Env::start_with_config("scep-tx", CONFIG).await;
    let http = env.srv.http_base_url();
    let devices = format!("{http}/scep/devices");
    let held = format!("{http}/scep/held");
    let work = env.path().join("scep-tx");
    std::fs::create_dir_all(&work).expect("mkdir");

    let p7 = curl(&[&format!("{devices}?operation=GetCACert")]);
    let certs: Vec<Certificate> = certificates_of(&p7)
        .expect("GetCACert")
        .iter()
        .map(|d| Certificate::from_der(d).expect("cert"))
        .collect();
    let is_ra = |c: &Certificate| {
        c.tbs_certificate()
            .subject()
            .to_string()
            .contains("SCEP RA")
    };
    let ra = certs
        .iter()
        .find(|c| is_ra(c))
        .expect("RA certificate")
        .clone();
    // The issuing CA: not the RA, not the (self-issued) root, which
    // GetCACert also sends.
    let ca = certs
        .iter()
        .find(|c| !is_ra(c) && c.tbs_certificate().issuer() != c.tbs_certificate().subject())
        .expect("CA certificate")
        .clone();

    // PKCSReq, then the same request again (resent as is, and re-encoded
    // with a new senderNonce): one certificate, the same each time.
    let a = client(&work.join("a"), "tx-a", "s3cret-challenge");
    let first = request(&a, &ra, MessageType::PkcsReq, "tx-a", &a.csr_der);
    let (status, info, content) = blocking(|| post(&devices, &work, &a, &first));
    assert_eq!((status.as_str(), info), ("0", None), "PKCSReq");
    let issued = only_cert(&content);
    assert_eq!(audited_issuances(&env.srv, "scep:"), 1);
    let (status, _, content) = blocking(|| post(&devices, &work, &a, &first));
    assert_eq!(status, "0", "the same message again");
    assert_eq!(
        only_cert(&content),
        issued,
        "a retry gets the same certificate"
    );
    let again = request(&a, &ra, MessageType::PkcsReq, "tx-a", &a.csr_der);
    let (status, _, content) = blocking(|| post(&devices, &work, &a, &again));
    assert_eq!(status, "0", "the same request, re-encoded");
    assert_eq!(only_cert(&content), issued);
    assert_eq!(
        audited_issuances(&env.srv, "scep:"),
        1,
        "a retry issued a second certificate"
    );

    // The transactionID with another request: FAILURE badRequest.
    let other = client(&work.join("a2"), "tx-a-other", "s3cret-challenge");
    let replay = request(&a, &ra, MessageType::PkcsReq, "tx-a", &other.csr_der);
    let (status, info, _) = blocking(|| post(&devices, &work, &a, &replay));
    assert_eq!(
        (status.as_str(), info.as_deref()),
        ("2", Some("2")),
        "replayed transactionID"
    );
    assert_eq!(audited_issuances(&env.srv, "scep:"), 1);

    // GetCert: the certificate by issuer and serial; an unknown serial
    // is badCertId.
    let ias = issuer_and_serial(&issued).expect("issuerAndSerialNumber");
    let msg = request(&a, &ra, MessageType::GetCert, "tx-getcert", &ias);
    let (status, _, content) = blocking(|| post(&devices, &work, &a, &msg));
    assert_eq!(status, "0", "GetCert");
    assert_eq!(only_cert(&content), issued);
    let unknown = issuer_and_serial(&a.signer_der).expect("issuerAndSerialNumber");
    let msg = request(&a, &ra, MessageType::GetCert, "tx-getcert2", &unknown);
    let (status, info, _) = blocking(|| post(&devices, &work, &a, &msg));
    assert_eq!(
        (status.as_str(), info.as_deref()),
        ("2", Some("4")),
        "badCertId"
    );

    // GetCRL: the issuer's CRL, which openssl reads and verifies.
    let msg = request(&a, &ra, MessageType::GetCrl, "tx-getcrl", &ias);
    let (status, _, content) = blocking(|| post(&devices, &work, &a, &msg));
    assert_eq!(status, "0", "GetCRL");
    let crl_p7 = work.join("crl.p7b");
    std::fs::write(&crl_p7, &content).expect("write");
    let o = Command::new("openssl")
        .args(["pkcs7", "-inform", "DER", "-print_certs", "-text", "-in"])
        .arg(&crl_p7)
        .output()
        .expect("openssl");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && text.contains("Certificate Revocation List"),
        "{text}"
    );
    let ca_subject = ca.tbs_certificate().subject().to_string();
    let cn = ca_subject
        .split("CN=")
        .nth(1)
        .and_then(|v| v.split(',').next())
        .unwrap_or_default();
    assert!(text.contains(cn), "CRL issuer {ca_subject}: {text}");

    // Held for approval: PENDING; CertPoll answers PENDING until an
    // operator approves, then SUCCESS; CertPoll by another key is
    // badCertId; the original request resent gets the same certificate.
    let h = client(&work.join("h"), "tx-h", "held-challenge");
    let held_req = request(&h, &ra, MessageType::PkcsReq, "tx-h", &h.csr_der);
    let (status, _, _) = blocking(|| post(&held, &work, &h, &held_req));
    assert_eq!(status, "3", "PENDING");
    let signer = Certificate::from_der(&h.signer_der).expect("cert");
    let poll_content = IssuerAndSubject {
        issuer: ca.tbs_certificate().subject().clone(),
        subject: signer.tbs_certificate().subject().clone(),
    }
    .to_der()
    .expect("IssuerAndSubject");
    let poll = request(&h, &ra, MessageType::CertPoll, "tx-h", &poll_content);
    let (status, _, _) = blocking(|| post(&held, &work, &h, &poll));
    assert_eq!(status, "3", "CertPoll while held");
    let stranger = request(&a, &ra, MessageType::CertPoll, "tx-h", &poll_content);
    let (status, info, _) = blocking(|| post(&held, &work, &a, &stranger));
    assert_eq!(
        (status.as_str(), info.as_deref()),
        ("2", Some("4")),
        "CertPoll by another key"
    );
    assert_eq!(
        audited_issuances(&env.srv, "scep:"),
        1,
        "a held request issued"
    );

    let list = blocking(|| {
        env.srv.call(
            "GET",
            "/admin/v1/approvals?status=pending",
            Some(&env.srv.admin_key),
            None,
        )
    })
    .expect("approvals");
    let v: Value = serde_json::from_str(&list.text()).expect("json");
    let id = v["approvals"]
        .as_array()
        .or_else(|| v.as_array())
        .and_then(|a| a.iter().find(|x| x.to_string().contains("scep:tx-h")))
        .and_then(|x| x["id"].as_str())
        .unwrap_or_else(|| panic!("no approval for tx-h: {v}"))
        .to_string();
    let r = blocking(|| {
        env.srv.call(
            "POST",
            &format!("/admin/v1/approvals/{id}/approve"),
            Some(&env.srv.admin_key),
            Some("{}"),
        )
    })
    .expect("approve");
    assert_eq!(r.status, 200, "approve: {}", r.text());
    let poll = request(&h, &ra, MessageType::CertPoll, "tx-h", &poll_content);
    let (status, _, content) = blocking(|| post(&held, &work, &h, &poll));
    assert_eq!(status, "0", "CertPoll after approval");
    let approved = only_cert(&content);
    let (status, _, content) = blocking(|| post(&held, &work, &h, &held_req));
    assert_eq!(status, "0", "the held request resent after approval");
    assert_eq!(only_cert(&content), approved);
    assert_eq!(
        audited_issuances(&env.srv, "scep:"),
        2,
        "exactly one certificate for the held request"
    );

    // CertPoll for a transaction nobody started: badCertId.
    let poll = request(&h, &ra, MessageType::CertPoll, "tx-none", &poll_content);
    let (status, info, _) = blocking(|| post(&held, &work, &h, &poll));
    assert_eq!((status.as_str(), info.as_deref()), ("2", Some("4")));
}

// ------------------------------------------- challenge kinds (issue 8)

/// The RA certificate of a SCEP path, from GetCACert.
fn ra_cert(url: &str) -> Certificate {
    let p7 = curl(&[&format!("{url}?operation=GetCACert")]);
    certificates_of(&p7)
        .expect("GetCACert")
        .iter()
        .map(|d| Certificate::from_der(d).expect("cert"))
        .find(|c| {
            c.tbs_certificate()
                .subject()
                .to_string()
                .contains("SCEP RA")
        })
        .expect("RA certificate")
}

/// Intune validation against the local fake of Entra, Graph and
/// ScepActions: validate → issue → successNotification, each rejection
/// code refused with its failInfo and nothing issued (failureNotification
/// sent), 429 then success retried, 5xx until the attempts run out refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intune_validates_before_issuing_and_notifies() {
    use ironseal_conformance::intune_fake::{IntuneFake, Reply, CLIENT_SECRET};
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = IntuneFake::start(dir.path());
    let secret = dir.path().join("intune-secret");
    std::fs::write(&secret, format!("{CLIENT_SECRET}\n")).expect("write");
    let config = format!(
        "ca_key_algorithm = \"rsa3072\"\n\n[[profiles]]\nname = \"default\"\nlifetime_days = 90\n\
         ekus = [\"serverAuth\"]\n\n[[profiles]]\nname = \"devices\"\nkind = \"device\"\n\
         lifetime_days = 30\nekus = [\"clientAuth\"]\nallow_sid = true\n\n\
         [[profiles]]\nname = \"held\"\nkind = \"device\"\nlifetime_days = 30\n\
         ekus = [\"clientAuth\"]\nrequires_approval = true\n\n\
         [[scep.profiles]]\npath = \"intune\"\nprofile = \"devices\"\nchallenge_kind = \"intune\"\n\n\
         [[scep.profiles]]\npath = \"intune-held\"\nprofile = \"held\"\nchallenge_kind = \"intune\"\n\n{}",
        fake.config_section(&secret)
    );
    let env = Env::start_with_config("scep-intune", &config).await;
    let url = format!("{}/scep/intune", env.srv.http_base_url());
    let work = env.path().join("scep-intune");

    // scepclient with an Intune challenge: validated, issued, notified.
    let u = url.clone();
    let d = work.join("dev1");
    let (ok, out, cert) = blocking(|| scepclient(&d, &u, "intune-encrypted-challenge", "dev1"));
    assert!(ok, "scepclient failed:\n{out}");
    assert_eq!(audited_issuances(&env.srv, "scep:"), 1);
    assert_eq!(
        fake.actions(),
        ["validateRequest", "successNotification"],
        "validate, then issue, then notify"
    );
    let calls = fake.calls();
    let names: Vec<&str> = calls.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "token",
            "discovery",
            "token",
            "validateRequest",
            "successNotification"
        ],
        "Graph token, discovery, Intune token, then the actions"
    );
    assert_eq!(
        calls[0].scope.as_deref(),
        Some("https://graph.microsoft.com/.default")
    );
    assert_eq!(
        calls[2].scope.as_deref(),
        Some("https://api.manage.microsoft.com//.default")
    );
    let validate = &calls[3];
    assert_eq!(validate.api_version.as_deref(), Some("2018-02-20"));
    assert_eq!(
        validate.authorization.as_deref(),
        Some("Bearer intune-token")
    );
    let csr_b64 = validate.body["request"]["certificateRequest"]
        .as_str()
        .expect("certificateRequest");
    let csr = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, csr_b64)
        .expect("base64 CSR");
    assert!(
        x509_cert::request::CertReq::from_der(&csr).is_ok(),
        "a DER PKCS#10"
    );
    let tx = validate.body["request"]["transactionId"]
        .as_str()
        .expect("transactionId")
        .to_string();
    let success = &calls[4].body["notification"];
    assert_eq!(success["transactionId"], tx.as_str());
    assert_eq!(
        norm_serial(success["certificateSerialNumber"].as_str().expect("serial")),
        norm_serial(&certs::serial_hex(&cert)),
        "the notification reports the issued certificate"
    );
    assert_eq!(
        success["certificateThumbprint"].as_str().map(str::len),
        Some(40),
        "SHA-1 thumbprint"
    );

    // Each documented rejection code: FAILURE with its failInfo, nothing
    // issued, failureNotification sent.
    let ra = ra_cert(&url);
    for (i, (code, info)) in [
        ("ChallengeExpired", "3"),
        ("ChallengeDecryptionError", "2"),
        ("SubjectNameMismatch", "2"),
        ("SubjectAltNameMismatch", "2"),
        ("KeyUsageMismatch", "2"),
        ("EnhancedKeyUsageMismatch", "2"),
        ("ScepProfileNoLongerTargetedToTheClient", "2"),
        ("SignatureValidationFailed", "2"),
    ]
    .into_iter()
    .enumerate()
    {
        fake.clear();
        fake.script(&[Reply::Code(code.into())]);
        let c = client(&work.join(format!("rej{i}")), &format!("rej{i}"), "blob");
        let msg = request(
            &c,
            &ra,
            MessageType::PkcsReq,
            &format!("tx-rej{i}"),
            &c.csr_der,
        );
        let (status, fail, _) = blocking(|| post(&url, &work, &c, &msg));
        assert_eq!(
            (status.as_str(), fail.as_deref()),
            ("2", Some(info)),
            "{code}"
        );
        assert_eq!(
            fake.actions(),
            ["validateRequest", "failureNotification"],
            "{code}"
        );
        let calls = fake.calls();
        let failure = &calls.last().expect("call").body["notification"];
        assert_eq!(failure["hResult"], -2_147_467_259_i64, "{code}: E_FAIL");
        assert!(
            failure["errorDescription"]
                .as_str()
                .is_some_and(|d| d.contains(code)),
            "{code}: {failure}"
        );
    }
    assert_eq!(
        audited_issuances(&env.srv, "scep:"),
        1,
        "a rejected challenge issued"
    );

    // 429, then success: retried, issued, notified.
    fake.clear();
    fake.script(&[Reply::Status(429), Reply::Code("Success".into())]);
    let c = client(&work.join("retry"), "retry", "blob");
    let msg = request(&c, &ra, MessageType::PkcsReq, "tx-retry", &c.csr_der);
    let (status, _, content) = blocking(|| post(&url, &work, &c, &msg));
    assert_eq!(status, "0", "429 then success");
    let issued = only_cert(&content);
    assert_eq!(
        fake.actions(),
        ["validateRequest", "validateRequest", "successNotification"]
    );
    assert_eq!(audited_issuances(&env.srv, "scep:"), 2);
    // The same request again is answered from the transaction record:
    // Intune is not asked twice.
    let (status, _, content) = blocking(|| post(&url, &work, &c, &msg));
    assert_eq!((status.as_str(), only_cert(&content)), ("0", issued));
    assert_eq!(fake.actions().len(), 3, "a retry asked Intune again");

    // 503 on every attempt (max_attempts = 3): refused, nothing issued.
    fake.clear();
    fake.script(&[Reply::Status(503), Reply::Status(503), Reply::Status(503)]);
    let c = client(&work.join("down"), "down", "blob");
    let msg = request(&c, &ra, MessageType::PkcsReq, "tx-down", &c.csr_der);
    let (status, fail, _) = blocking(|| post(&url, &work, &c, &msg));
    assert_eq!((status.as_str(), fail.as_deref()), ("2", Some("2")));
    assert_eq!(
        fake.actions(),
        ["validateRequest", "validateRequest", "validateRequest"],
        "bounded retries"
    );
    assert_eq!(
        audited_issuances(&env.srv, "scep:"),
        2,
        "Intune down, yet issued"
    );

    // Tokens and the endpoint were fetched once and cached.
    fake.clear();
    let c = client(&work.join("cached"), "cached", "blob");
    let msg = request(&c, &ra, MessageType::PkcsReq, "tx-cached", &c.csr_der);
    let (status, _, _) = blocking(|| post(&url, &work, &c, &msg));
    assert_eq!(status, "0");
    assert_eq!(
        fake.calls()
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["validateRequest", "successNotification"],
        "no new token or discovery while cached"
    );

    // Validated, then held for approval: PENDING and no notification yet;
    // Intune hears the approver's decision when it is made (success with
    // the issued certificate; failure for a rejection), not on a poll.
    let held_url = format!("{}/scep/intune-held", env.srv.http_base_url());
    let decide = |tx: &str, verdict: &str| {
        let (code, v) = admin_json(&env, "GET", "/admin/v1/approvals?status=pending", None);
        assert_eq!(code, 200, "{v}");
        let id = v["approvals"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["requester"] == format!("scep:{tx}")))
            .and_then(|x| x["id"].as_str())
            .unwrap_or_else(|| panic!("no approval for {tx}: {v}"))
            .to_string();
        let (code, v) = admin_json(
            &env,
            "POST",
            &format!("/admin/v1/approvals/{id}/{verdict}"),
            Some(json!({})),
        );
        assert_eq!(code, 200, "{verdict}: {v}");
        v
    };
    for (tx, verdict) in [("tx-held-ok", "approve"), ("tx-held-no", "reject")] {
        fake.clear();
        let c = client(&work.join(tx), tx, "blob");
        let msg = request(&c, &ra, MessageType::PkcsReq, tx, &c.csr_der);
        let (status, _, _) = blocking(|| post(&held_url, &work, &c, &msg));
        assert_eq!(status, "3", "{tx}: PENDING while held");
        assert_eq!(
            fake.actions(),
            ["validateRequest"],
            "{tx}: nothing to notify yet"
        );
        let decided = decide(tx, verdict);
        let calls = fake.calls();
        let last = calls.last().expect("a call");
        let notification = &last.body["notification"];
        assert_eq!(notification["transactionId"], tx, "{tx}");
        if verdict == "approve" {
            assert_eq!(
                fake.actions(),
                ["validateRequest", "successNotification"],
                "{tx}"
            );
            let serial = decided["certificate"]
                .as_str()
                .unwrap_or_else(|| panic!("no serial: {decided}"));
            assert_eq!(
                norm_serial(
                    notification["certificateSerialNumber"]
                        .as_str()
                        .expect("serial")
                ),
                norm_serial(serial),
                "the notification reports the approved certificate"
            );
        } else {
            assert_eq!(
                fake.actions(),
                ["validateRequest", "failureNotification"],
                "{tx}"
            );
            assert!(
                notification["errorDescription"]
                    .as_str()
                    .is_some_and(|d| d.contains("rejected")),
                "{notification}"
            );
        }
        // Polling afterwards does not notify again.
        let poll = request(&c, &ra, MessageType::PkcsReq, tx, &c.csr_der);
        let (status, _, _) = blocking(|| post(&held_url, &work, &c, &poll));
        assert_eq!(status, if verdict == "approve" { "0" } else { "2" }, "{tx}");
        assert_eq!(fake.actions().len(), 2, "{tx}: notified once");
    }
}

fn admin_json(env: &Env, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let text = body.map(|b| b.to_string());
    let r = blocking(|| {
        env.srv
            .call(method, path, Some(&env.srv.admin_key), text.as_deref())
    })
    .expect("admin call");
    let v = serde_json::from_str(&r.text()).unwrap_or(Value::Null);
    (r.status, v)
}

/// One-time challenges from the admin API: single use, bound to a tenant
/// (its profiles and names apply) and optionally a path; a static password
/// works only where the path accepts it. And the SID strong-mapping URI
/// SAN of a CSR is kept in the certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_time_challenges_are_single_use_and_tenant_bound() {
    const CONFIG: &str = r#"
ca_key_algorithm = "rsa3072"

[[profiles]]
name = "default"
lifetime_days = 90
ekus = ["serverAuth"]

[[profiles]]
name = "devices"
kind = "device"
lifetime_days = 30
ekus = ["clientAuth"]
allow_sid = true

[[scep.profiles]]
path = "dyn"
profile = "devices"
challenge_kind = "dynamic"

[[scep.profiles]]
path = "both"
profile = "devices"
challenge_kind = "static+dynamic"
challenge = "static-password"
"#;
    let env = Env::start_with_config("scep-dyn", CONFIG).await;
    let http = env.srv.http_base_url();
    let dyn_url = format!("{http}/scep/dyn");
    let both_url = format!("{http}/scep/both");
    let work = env.path().join("scep-dyn");
    std::fs::create_dir_all(&work).expect("mkdir");
    for (id, dns, profiles) in [("t1", "t1.test", "devices"), ("t2", "t2.test", "default")] {
        let (st, v) = admin_json(
            &env,
            "POST",
            "/admin/v1/tenants",
            Some(json!({"id": id, "names": {"dns": [dns]}, "profiles": [profiles]})),
        );
        assert_eq!(st, 201, "tenant {id}: {v}");
    }
    let new_challenge = |body: Value| -> String {
        let (st, v) = admin_json(&env, "POST", "/admin/v1/scep-challenges", Some(body));
        assert_eq!(st, 201, "{v}");
        assert!(
            v["expiresAt"].is_string() && v["redeemedAt"].is_null(),
            "{v}"
        );
        v["challenge"].as_str().expect("challenge").to_string()
    };

    // scepclient with a one-time challenge of t1: issued once.
    let ch = new_challenge(json!({"tenant": "t1", "path": "dyn"}));
    assert_eq!(ch.len(), 40);
    let (u, d, c2) = (dyn_url.clone(), work.join("d1"), ch.clone());
    let (ok, out, _) = blocking(|| scepclient(&d, &u, &c2, "d1"));
    assert!(ok, "scepclient failed:\n{out}");
    assert_eq!(audited_issuances(&env.srv, "scep:"), 1);
    // Used: a second enrolment with it is refused.
    let (u, d, c2) = (dyn_url.clone(), work.join("d2"), ch.clone());
    let (ok, out, _) = blocking(|| scepclient(&d, &u, &c2, "d2"));
    assert!(
        !ok && out.contains("badRequest"),
        "reused challenge:\n{out}"
    );
    assert_eq!(
        audited_issuances(&env.srv, "scep:"),
        1,
        "a used challenge issued"
    );

    let ra = ra_cert(&dyn_url);
    // The tenant's names apply: a DNS name outside t1 is refused...
    let ch = new_challenge(json!({"tenant": "t1"}));
    let c = client_with_sans(&work.join("n1"), "n1", &ch, &["DNS.1=host.elsewhere.test"]);
    let msg = request(&c, &ra, MessageType::PkcsReq, "tx-n1", &c.csr_der);
    let (status, fail, _) = blocking(|| post(&dyn_url, &work, &c, &msg));
    assert_eq!((status.as_str(), fail.as_deref()), ("2", Some("2")));
    // ...one inside is issued.
    let ch = new_challenge(json!({"tenant": "t1"}));
    let c = client_with_sans(&work.join("n2"), "n2", &ch, &["DNS.1=host.t1.test"]);
    let msg = request(&c, &ra, MessageType::PkcsReq, "tx-n2", &c.csr_der);
    let (status, _, content) = blocking(|| post(&dyn_url, &work, &c, &msg));
    assert_eq!(status, "0", "a name inside the tenant");
    let cert = work.join("n2.der");
    std::fs::write(&cert, only_cert(&content)).expect("write");
    let text = x509_text(&cert);
    assert!(text.contains("DNS:host.t1.test"), "{text}");
    // The tenant's profiles apply: t2 may not use "devices".
    let ch = new_challenge(json!({"tenant": "t2"}));
    let c = client(&work.join("p2"), "p2", &ch);
    let msg = request(&c, &ra, MessageType::PkcsReq, "tx-p2", &c.csr_der);
    let (status, fail, _) = blocking(|| post(&dyn_url, &work, &c, &msg));
    assert_eq!((status.as_str(), fail.as_deref()), ("2", Some("2")));
    assert_eq!(audited_issuances(&env.srv, "scep:"), 2);

    // Bound to a path: refused elsewhere, and still usable where it belongs.
    let ch = new_challenge(json!({"tenant": "t1", "path": "both"}));
    let c = client(&work.join("b1"), "b1", &ch);
    let msg = request(&c, &ra, MessageType::PkcsReq, "tx-b1", &c.csr_der);
    let (status, _, _) = blocking(|| post(&dyn_url, &work, &c, &msg));
    assert_eq!(status, "2", "a challenge for path both on path dyn");
    let msg = request(&c, &ra, MessageType::PkcsReq, "tx-b1", &c.csr_der);
    let (status, _, _) = blocking(|| post(&both_url, &work, &c, &msg));
    assert_eq!(status, "0", "the same challenge on its own path");

    // A static password: refused on a dynamic-only path, accepted on
    // static+dynamic. With it, the SID URI SAN is kept.
    let sid = "tag:microsoft.com,2022-09-14:sid:S-1-5-21-1004336348-1177238915-682003330-1001";
    let c = client_with_sans(
        &work.join("s1"),
        "s1",
        "static-password",
        &[&format!("URI.1={sid}")],
    );
    let msg = request(&c, &ra, MessageType::PkcsReq, "tx-s1", &c.csr_der);
    let (status, _, _) = blocking(|| post(&dyn_url, &work, &c, &msg));
    assert_eq!(status, "2", "static password on a dynamic-only path");
    let msg = request(&c, &ra, MessageType::PkcsReq, "tx-s1", &c.csr_der);
    let (status, _, content) = blocking(|| post(&both_url, &work, &c, &msg));
    assert_eq!(status, "0", "static password on static+dynamic");
    let cert = work.join("s1.der");
    std::fs::write(&cert, only_cert(&content)).expect("write");
    let text = x509_text(&cert);
    assert!(
        text.contains(&format!("URI:{sid}")),
        "SID URI kept:\n{text}"
    );
    let pem = work.join("s1.pem");
    let o = Command::new("openssl")
        .args(["x509", "-inform", "DER", "-in"])
        .arg(&cert)
        .arg("-out")
        .arg(&pem)
        .output()
        .expect("openssl");
    assert!(o.status.success());
    // pkilint's URI check refuses the `tag:` URI (RFC 4151; a valid RFC
    // 3986 URI: scheme `tag`, path with a `,` sub-delimiter) that Active
    // Directory's strong mapping requires verbatim; everything else must
    // be clean.
    let findings: Vec<String> = certs::pkilint_errors(&pem)
        .into_iter()
        .filter(|f| !(f.contains("pkix.invalid_uri_syntax") && f.contains("tag:microsoft.com")))
        .collect();
    assert!(findings.is_empty(), "pkilint: {findings:#?}");

    // The list shows who used what, never a password; the CLI creates too.
    let (st, v) = admin_json(&env, "GET", "/admin/v1/scep-challenges?tenant=t1", None);
    assert_eq!(st, 200);
    let list = v["scepChallenges"].as_array().expect("list");
    assert_eq!(list.len(), 4, "{v}");
    assert_eq!(
        list.iter().filter(|c| c["redeemedAt"].is_string()).count(),
        4,
        "{v}"
    );
    assert!(!v.to_string().contains("challenge\""), "{v}");
    let created = admin_ok(
        &env.srv,
        &[
            "scep-challenges",
            "create",
            "--tenant",
            "t1",
            "--expires-in-minutes",
            "5",
        ],
    );
    assert_eq!(
        created["challenge"].as_str().map(str::len),
        Some(40),
        "{created}"
    );
    // Bad requests: a path that does not take one-time challenges does
    // not exist here; an unknown tenant; an overlong lifetime.
    let (st, _) = admin_json(
        &env,
        "POST",
        "/admin/v1/scep-challenges",
        Some(json!({"path": "nope"})),
    );
    assert_eq!(st, 404);
    let (st, _) = admin_json(
        &env,
        "POST",
        "/admin/v1/scep-challenges",
        Some(json!({"tenant": "nobody"})),
    );
    assert_eq!(st, 404);
    let (st, _) = admin_json(
        &env,
        "POST",
        "/admin/v1/scep-challenges",
        Some(json!({"expiresInMinutes": 20000})),
    );
    assert_eq!(st, 400);

    // Withdrawn before use (CLI): gone from the list, refused on enrolment
    // with nothing issued; withdrawing it again or an unknown id is 404.
    let (st, v) = admin_json(
        &env,
        "POST",
        "/admin/v1/scep-challenges",
        Some(json!({"tenant": "t1", "path": "dyn"})),
    );
    assert_eq!(st, 201, "{v}");
    let (id, ch) = (
        v["id"].as_str().expect("id").to_string(),
        v["challenge"].as_str().expect("challenge").to_string(),
    );
    let withdrawn = admin_ok(&env.srv, &["scep-challenges", "delete", &id]);
    assert_eq!(withdrawn["id"], id.as_str(), "{withdrawn}");
    assert_eq!(withdrawn["withdrawn"], true, "{withdrawn}");
    let (_, v) = admin_json(&env, "GET", "/admin/v1/scep-challenges?tenant=t1", None);
    assert!(!v.to_string().contains(&id), "still listed: {v}");
    let issued_before = audited_issuances(&env.srv, "scep:");
    let (u, d) = (dyn_url.clone(), work.join("withdrawn"));
    let (ok, out, _) = blocking(|| scepclient(&d, &u, &ch, "withdrawn"));
    assert!(
        !ok && out.contains("badRequest"),
        "withdrawn challenge:\n{out}"
    );
    assert_eq!(
        audited_issuances(&env.srv, "scep:"),
        issued_before,
        "a withdrawn challenge issued"
    );
    let (st, _) = admin_json(
        &env,
        "DELETE",
        &format!("/admin/v1/scep-challenges/{id}"),
        None,
    );
    assert_eq!(st, 404, "withdrawn twice");
    let (st, _) = admin_json(&env, "DELETE", "/admin/v1/scep-challenges/sc_nope", None);
    assert_eq!(st, 404);
}

/// `openssl x509 -text` of a DER certificate.
fn x509_text(der: &Path) -> String {
    let o = Command::new("openssl")
        .args(["x509", "-inform", "DER", "-noout", "-text", "-in"])
        .arg(der)
        .output()
        .expect("openssl");
    assert!(o.status.success());
    String::from_utf8_lossy(&o.stdout).to_string()
}
