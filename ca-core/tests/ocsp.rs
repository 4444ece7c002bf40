//! OCSP responder core against independent tools (house habit 6): requests
//! made by `openssl ocsp -reqout` are decoded by `ironseal_protocol::ocsp`,
//! answered by `ironseal_ca_core::ocsp::OcspResponder`, and every response
//! is verified by `openssl ocsp -respin` (signature, delegated responder
//! chain, status, nonce) and linted by pkilint's `lint_ocsp_response`; the
//! responder certificate is linted by `lint_pkix_cert`. ERROR or FATAL
//! findings fail the test; missing tools fail it too (no skipping).
//!
//! pkilint lives in the venv at `$IRONSEAL_VENV`, else
//! `<workspace>/.venv`; run `scripts/install-test-deps.sh` to create it.

mod support;

use std::path::{Path, PathBuf};

use ironseal_ca_core::cert::cert_serial;
use ironseal_ca_core::csr::{check_csr, CsrPolicy};
use ironseal_ca_core::hierarchy::{Issuer, IssuerUrls};
use ironseal_ca_core::issuance::issue_leaf;
use ironseal_ca_core::keys::KeyAlgorithm;
use ironseal_ca_core::ocsp::{issue_responder_cert, revoked_status, OcspResponder};
use ironseal_ca_core::revocation::RevocationReason;
use ironseal_protocol::ocsp::request::CertIdHash;
use ironseal_protocol::ocsp::response::response_status;
use ironseal_protocol::ocsp::{CertStatus, OcspRequest, ResponseStatus};
use rcgen::KeyPair;
use support::{
    assert_verifies, csr_der, dns, now, openssl, openssl_ok, out_dir, pkilint,
    root_and_intermediate, s, serial, write_certs,
};
use time::Duration;

struct Pki {
    root: Issuer,
    inter: Issuer,
    leaf_der: Vec<u8>,
    responder: OcspResponder,
}

fn build(alg: KeyAlgorithm) -> Pki {
    let t = now();
    let (root, inter) = root_and_intermediate(
        alg,
        "ocsp test",
        Duration::hours(2),
        IssuerUrls::default(),
        IssuerUrls {
            ca_issuers: Some("http://ca.example.test/inter.cer".into()),
            ocsp: Some("http://ocsp.example.test/ocsp".into()),
            crl: None,
        },
    );

    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("leaf key");
    let csr = check_csr(
        &csr_der(&key, Some("leaf.example.com"), &["leaf.example.com"]),
        &CsrPolicy::default(),
    )
    .expect("check_csr");
    let ids = vec![dns("leaf.example.com")];
    let leaf = issue_leaf(
        &inter,
        &csr,
        &ids,
        serial(3),
        t - Duration::minutes(5),
        t + Duration::days(90),
    )
    .expect("issue_leaf");

    let (rkey, rcert) = issue_responder_cert(
        &inter,
        alg,
        serial(4),
        t - Duration::hours(1),
        t + Duration::days(30),
    )
    .expect("responder cert");
    let responder = OcspResponder::new(&inter, rkey, rcert).expect("responder");
    Pki {
        root,
        inter,
        leaf_der: leaf.der,
        responder,
    }
}

/// `openssl ocsp -reqout` for the leaf; returns the request DER.
fn openssl_request(
    dir: &Path,
    name: &str,
    inter: &Path,
    leaf: &Path,
    nonce: bool,
    sha256: bool,
) -> (PathBuf, Vec<u8>) {
    let out = dir.join(name);
    let mut args = vec!["ocsp", "-issuer", s(inter)];
    if sha256 {
        args.push("-sha256");
    }
    args.extend(["-cert", s(leaf), "-reqout", s(&out)]);
    if !nonce {
        args.push("-no_nonce");
    }
    openssl_ok(&args);
    let der = std::fs::read(&out).expect("read request");
    (out, der)
}

struct Files {
    root: PathBuf,
    inter: PathBuf,
    leaf: PathBuf,
}

impl Files {
    /// Writes `pki`'s root, intermediate and leaf as `root-{tag}.pem`,
    /// `inter-{tag}.pem` and `leaf-{tag}.pem` in `dir`.
    fn write(dir: &Path, tag: &str, pki: &Pki) -> Files {
        Files {
            root: write_certs(dir, &format!("root-{tag}.pem"), &[pki.root.cert_der()]),
            inter: write_certs(dir, &format!("inter-{tag}.pem"), &[pki.inter.cert_der()]),
            leaf: write_certs(dir, &format!("leaf-{tag}.pem"), &[&pki.leaf_der]),
        }
    }
}

/// Verifies `resp` with openssl twice and returns both outputs plus the
/// pkilint findings:
/// 1. `-respin resp -reqin req`: signature, responder chain and the nonce
///    against the request it answers (openssl prints "Nonce Verify error"
///    on a mismatch and "WARNING: no nonce in response" when it is missing);
/// 2. `-respin resp -cert leaf -no_nonce`: the per-certificate status line
///    ("leaf.pem: good"). `-cert` makes openssl build a fresh request of its
///    own, hence `-no_nonce` here and the separate run 1 for the nonce.
fn openssl_verify(
    dir: &Path,
    name: &str,
    resp: &[u8],
    req: &Path,
    f: &Files,
    sha256: bool,
) -> String {
    let path = dir.join(name);
    std::fs::write(&path, resp).expect("write response");
    let common = [
        "ocsp",
        "-respin",
        s(&path),
        "-issuer",
        s(&f.inter),
        "-CAfile",
        s(&f.root),
        "-resp_text",
    ];
    let mut with_req = common.to_vec();
    with_req.extend(["-reqin", s(req)]);
    let (ok, text1) = openssl(&with_req);
    assert!(
        ok,
        "openssl ocsp -respin -reqin failed for {name}:\n{text1}"
    );
    let mut with_cert = common.to_vec();
    if sha256 {
        with_cert.push("-sha256");
    }
    with_cert.extend(["-cert", s(&f.leaf), "-no_nonce"]);
    let (ok, text2) = openssl(&with_cert);
    assert!(ok, "openssl ocsp -respin -cert failed for {name}:\n{text2}");
    let lint = pkilint("lint_ocsp_response", &[], &path);
    format!("{text1}\n--- with -cert:\n{text2}\n--- pkilint {name}:\n{lint}")
}

#[test]
fn openssl_requests_get_verified_responses_for_every_status() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = &out_dir(&tmp);
    let mut log = String::new();

    for alg in KeyAlgorithm::ALL {
        let pki = build(alg);
        let f = Files::write(dir, &alg.to_string(), &pki);
        let responder_pem = write_certs(
            dir,
            &format!("responder-{alg}.pem"),
            &[pki.responder.cert_der()],
        );
        let lint = pkilint("lint_pkix_cert", &[], &responder_pem);
        log += &format!("== responder cert {alg}\n{lint}");
        assert_verifies(
            &format!("responder cert ({alg})"),
            &["-purpose", "ocsphelper"],
            &f.root,
            &[&f.inter],
            &responder_pem,
        );
        let text = openssl_ok(&["x509", "-noout", "-text", "-in", s(&responder_pem)]);
        assert!(text.contains("OCSP Signing"), "{text}");
        assert!(text.contains("OCSP No Check"), "{text}");
        assert!(!text.contains("Authority Information Access"), "{text}");

        let leaf_serial = cert_serial(&pki.leaf_der).expect("serial");
        // The full request matrix for one algorithm; one case for the others
        // (keeps the run short: pkilint is a Python start-up per call).
        let variants: &[(bool, bool)] = if alg == KeyAlgorithm::EcdsaP256 {
            &[(true, false), (false, false), (true, true), (false, true)]
        } else {
            &[(true, false)]
        };
        let statuses: Vec<(&str, CertStatus, &str)> = vec![
            ("good", CertStatus::Good, ": good"),
            (
                "revoked",
                revoked_status(now() - Duration::hours(3), RevocationReason::KeyCompromise)
                    .expect("status"),
                ": revoked",
            ),
            ("unknown", CertStatus::Unknown, ": unknown"),
        ];
        for &(nonce, sha256) in variants {
            let tag = format!(
                "{alg}-{}-{}",
                if nonce { "nonce" } else { "nononce" },
                if sha256 { "sha256" } else { "sha1" }
            );
            let (req_path, req_der) = openssl_request(
                dir,
                &format!("req-{tag}.der"),
                &f.inter,
                &f.leaf,
                nonce,
                sha256,
            );
            let req = OcspRequest::from_der(&req_der).expect("decode openssl request");
            assert_eq!(req.requests.len(), 1);
            assert_eq!(req.nonce.is_some(), nonce, "{tag}");
            assert!(!req.signed);
            let id = &req.requests[0].cert_id;
            assert_eq!(
                id.hash(),
                Some(if sha256 {
                    CertIdHash::Sha256
                } else {
                    CertIdHash::Sha1
                })
            );
            assert!(
                pki.responder.matches(id),
                "{tag}: CertID does not match our issuer"
            );
            assert_eq!(id.serial_bytes(), leaf_serial.as_bytes());
            // Our own CertID for the same serial is byte-identical to openssl's.
            let ours = pki
                .responder
                .cert_id(
                    if sha256 {
                        CertIdHash::Sha256
                    } else {
                        CertIdHash::Sha1
                    },
                    &leaf_serial,
                )
                .expect("cert_id");
            assert_eq!(&ours, id);
            // The root does not answer for the intermediate's certificates.
            let (k, c) = issue_responder_cert(
                &pki.root,
                KeyAlgorithm::EcdsaP256,
                serial(9),
                now() - Duration::hours(1),
                now() + Duration::days(1),
            )
            .expect("root responder");
            assert!(!OcspResponder::new(&pki.root, k, c)
                .expect("root responder")
                .matches(id));

            for (name, status, expect) in &statuses {
                let t = now();
                let resp = pki
                    .responder
                    .sign_response(
                        &[(id.clone(), status.clone())],
                        t,
                        t,
                        t + Duration::days(4),
                        req.nonce.as_deref(),
                    )
                    .expect("sign");
                assert_eq!(
                    response_status(&resp).expect("status"),
                    ResponseStatus::Successful
                );
                let out = openssl_verify(
                    dir,
                    &format!("resp-{tag}-{name}.der"),
                    &resp,
                    &req_path,
                    &f,
                    sha256,
                );
                assert!(
                    out.contains(&format!("{}{expect}", s(&f.leaf))),
                    "{tag} {name}: {out}"
                );
                assert_eq!(
                    out.matches("Response verify OK").count(),
                    2,
                    "{tag} {name}: {out}"
                );
                assert!(
                    !out.contains("WARNING: no nonce in response"),
                    "{tag} {name}: {out}"
                );
                assert!(!out.contains("Nonce Verify error"), "{tag} {name}: {out}");
                if *name == "revoked" {
                    assert!(out.contains("Reason: keyCompromise"), "{tag}: {out}");
                    assert!(out.contains("Revocation Time:"), "{tag}: {out}");
                }
                if nonce {
                    assert!(out.contains("OCSP Nonce"), "{tag} {name}: {out}");
                }
                log += &format!("== {tag} {name}\n{out}\n");
            }
        }
    }

    // The nonce check is real: a response without the nonce makes openssl warn.
    let pki = build(KeyAlgorithm::EcdsaP256);
    let f = Files::write(dir, "x", &pki);
    let (req_path, req_der) = openssl_request(dir, "req-x.der", &f.inter, &f.leaf, true, false);
    let req = OcspRequest::from_der(&req_der).expect("decode");
    let id = req.requests[0].cert_id.clone();
    let t = now();
    let resp = pki
        .responder
        .sign_response(&[(id, CertStatus::Good)], t, t, t + Duration::days(4), None)
        .expect("sign");
    let out = openssl_verify(dir, "resp-x-missing-nonce.der", &resp, &req_path, &f, false);
    assert!(out.contains("WARNING: no nonce in response"), "{out}");
    if std::env::var_os("IRONSEAL_TEST_VERBOSE").is_some() {
        eprintln!("{log}");
    }
}

#[test]
fn responder_cert_rules() {
    let pki = build(KeyAlgorithm::EcdsaP256);
    let t = now();
    // Must not outlive the issuer.
    assert!(issue_responder_cert(
        &pki.inter,
        KeyAlgorithm::EcdsaP256,
        serial(20),
        t,
        t + Duration::days(4000)
    )
    .is_err());
    assert!(issue_responder_cert(&pki.inter, KeyAlgorithm::EcdsaP256, serial(21), t, t).is_err());
    // A responder cert of another CA is refused.
    let (k, c) = issue_responder_cert(
        &pki.root,
        KeyAlgorithm::EcdsaP256,
        serial(22),
        t,
        t + Duration::days(1),
    )
    .expect("root responder");
    assert!(OcspResponder::new(&pki.inter, k, c).is_err());
    // A non-OCSP certificate (the leaf) is refused even with a matching key.
    let (k, _) = issue_responder_cert(
        &pki.inter,
        KeyAlgorithm::EcdsaP256,
        serial(23),
        t,
        t + Duration::days(1),
    )
    .expect("responder");
    assert!(OcspResponder::new(&pki.inter, k, pki.leaf_der.clone()).is_err());
    // Signing rules.
    let id = pki
        .responder
        .cert_id(CertIdHash::Sha1, &serial(3))
        .expect("id");
    assert!(pki
        .responder
        .sign_response(&[], t, t, t + Duration::days(1), None)
        .is_err());
    assert!(pki
        .responder
        .sign_response(&[(id.clone(), CertStatus::Good)], t, t, t, None)
        .is_err());
    // Nonces outside 1..=128 octets are refused.
    let good_for_a_day = |nonce: Option<&[u8]>| {
        pki.responder.sign_response(
            &[(id.clone(), CertStatus::Good)],
            t,
            t,
            t + Duration::days(1),
            nonce,
        )
    };
    assert!(good_for_a_day(Some(&[])).is_err());
    assert!(good_for_a_day(Some(&[1; 129])).is_err());
    assert!(good_for_a_day(Some(&[1; 128])).is_ok());
    assert!(pki
        .responder
        .cert_id(CertIdHash::Sha384, &serial(3))
        .is_err());
    // Multiple responses in one BasicOCSPResponse.
    let id2 = pki
        .responder
        .cert_id(CertIdHash::Sha256, &serial(5))
        .expect("id");
    let resp = pki
        .responder
        .sign_response(
            &[(id, CertStatus::Good), (id2, CertStatus::Unknown)],
            t,
            t,
            t + Duration::days(1),
            None,
        )
        .expect("sign two");
    assert_eq!(
        response_status(&resp).expect("status"),
        ResponseStatus::Successful
    );
}
