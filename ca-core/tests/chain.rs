//! End-to-end checks of the CA core against independent tools: every
//! certificate and CRL produced is verified by the `openssl` CLI and
//! linted by pkilint (ERROR or FATAL findings fail the test).
//!
//! pkilint lives in the venv at `$IRONSEAL_VENV`, else
//! `<workspace>/.venv`; run `scripts/install-test-deps.sh` to create it.

mod support;

use std::path::Path;

use der::{Decode, Encode};
use ironseal_ca_core::cert::{
    cert_aki, cert_not_after, cert_public_key_bits, cert_serial, cert_ski,
};
use ironseal_ca_core::crl::{build_crl, RevokedEntry};
use ironseal_ca_core::csr::{check_csr, CsrPolicy, LeafKey};
use ironseal_ca_core::hierarchy::{create_intermediate, Issuer, IssuerUrls};
use ironseal_ca_core::issuance::issue_leaf;
use ironseal_ca_core::keys::KeyAlgorithm;
use ironseal_ca_core::revocation::RevocationReason;
use rcgen::{KeyPair, RsaKeySize};
use support::{
    assert_verifies, csr_der, dns, ip, now, openssl, openssl_ok, out_dir, pkilint, pkilint_cert,
    profile, root_and_intermediate, s, serial, write_certs, write_pem,
};
use time::Duration;
use x509_cert::Certificate;

struct Chain {
    root: Issuer,
    inter: Issuer,
}

fn build_chain(alg: KeyAlgorithm) -> Chain {
    let (root, inter) = root_and_intermediate(
        alg,
        "ironseal",
        Duration::hours(1),
        IssuerUrls {
            ca_issuers: Some("http://ca.example.test/root.cer".into()),
            ocsp: None,
            crl: Some("http://ca.example.test/root.crl".into()),
        },
        IssuerUrls {
            ca_issuers: Some("http://ca.example.test/inter.cer".into()),
            ocsp: Some("http://ocsp.example.test/".into()),
            crl: Some("http://ca.example.test/inter.crl".into()),
        },
    );
    Chain { root, inter }
}

fn leaf_key(kind: &str) -> KeyPair {
    match kind {
        "p256" => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        "p384" => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        "rsa2048" => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048),
        "ed25519" => KeyPair::generate_for(&rcgen::PKCS_ED25519),
        other => panic!("unknown leaf key {other}"),
    }
    .expect("leaf key")
}

fn tbs_name_ders(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let c = Certificate::from_der(der).expect("parse");
    (
        c.tbs_certificate().issuer().to_der().expect("issuer"),
        c.tbs_certificate().subject().to_der().expect("subject"),
    )
}

#[test]
fn every_algorithm_chain_verifies_and_lints_clean() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // IRONSEAL_TEST_OUT=<dir> keeps the artifacts for manual inspection.
    let dir = &out_dir(&tmp);
    let mut report = String::new();
    for alg in KeyAlgorithm::ALL {
        let chain = build_chain(alg);
        let root_der = chain.root.cert_der().to_vec();
        let inter_der = chain.inter.cert_der().to_vec();

        // Byte-identical issuer names and AKI = parent SKI.
        let (root_issuer, root_subject) = tbs_name_ders(&root_der);
        assert_eq!(root_issuer, root_subject);
        let (inter_issuer, _) = tbs_name_ders(&inter_der);
        assert_eq!(inter_issuer, root_subject);
        assert_eq!(chain.root.subject_der(), root_subject.as_slice());
        assert_eq!(
            cert_aki(&inter_der).expect("aki"),
            Some(chain.root.key_identifier().to_vec())
        );
        assert_eq!(
            cert_ski(&root_der).expect("ski").as_deref(),
            Some(chain.root.key_identifier())
        );
        assert_eq!(cert_serial(&inter_der).expect("serial"), serial(2));

        let root_pem = write_certs(dir, &format!("root-{alg}.pem"), &[&root_der]);
        let inter_pem = write_certs(dir, &format!("inter-{alg}.pem"), &[&inter_der]);
        assert_verifies(
            &format!("intermediate {alg}"),
            &[],
            &root_pem,
            &[],
            &inter_pem,
        );
        report += &format!(
            "== root {alg}\n{}",
            pkilint("lint_pkix_cert", &[], &root_pem)
        );
        report += &format!(
            "== intermediate {alg}\n{}",
            pkilint("lint_pkix_cert", &[], &inter_pem)
        );

        let mut revoked = Vec::new();
        for (i, kind) in ["p256", "p384", "rsa2048", "ed25519"]
            .into_iter()
            .enumerate()
        {
            let key = leaf_key(kind);
            let names = ["www.example.com", "Example.COM", "192.0.2.7", "2001:db8::1"];
            let csr_der = csr_der(&key, Some("www.example.com"), &names);
            let csr = check_csr(&csr_der, &CsrPolicy::default()).expect("check_csr");
            let expected_key = match kind {
                "p256" => LeafKey::EcdsaP256,
                "p384" => LeafKey::EcdsaP384,
                "rsa2048" => LeafKey::Rsa { bits: 2048 },
                _ => LeafKey::Ed25519,
            };
            assert_eq!(csr.key, expected_key);
            let ids = vec![
                dns("example.com"),
                dns("WWW.example.com"),
                ip("192.0.2.7"),
                ip("2001:db8::1"),
            ];
            csr.require_names(&ids).expect("names");
            let t = now();
            let sn = serial(10 + i as u8);
            let issued = issue_leaf(
                &chain.inter,
                &csr,
                &ids,
                sn.clone(),
                t - Duration::minutes(5),
                t + Duration::days(90),
            )
            .expect("issue_leaf");
            assert_eq!(cert_serial(&issued.der).expect("serial"), sn);
            assert_eq!(
                cert_public_key_bits(&issued.der).expect("bits"),
                csr.public_key_bits
            );
            assert_eq!(
                cert_aki(&issued.der).expect("aki"),
                Some(chain.inter.key_identifier().to_vec())
            );
            assert_eq!(cert_not_after(&issued.der).expect("na"), issued.not_after);
            let (leaf_issuer, _) = tbs_name_ders(&issued.der);
            assert_eq!(leaf_issuer.as_slice(), chain.inter.subject_der());

            let leaf_pem = write_certs(dir, &format!("leaf-{alg}-{kind}.pem"), &[&issued.der]);
            assert_verifies(
                &format!("leaf {alg}/{kind}"),
                &["-purpose", "sslserver"],
                &root_pem,
                &[&inter_pem],
                &leaf_pem,
            );
            let out = openssl_ok(&["x509", "-in", s(&leaf_pem), "-noout", "-text"]);
            assert!(
                out.contains("DNS:example.com, DNS:www.example.com, IP Address:192.0.2.7")
                    && out.contains("Subject: CN = example.com"),
                "{out}"
            );
            report += &format!(
                "== leaf {alg}/{kind}\n{}",
                pkilint("lint_pkix_cert", &[], &leaf_pem)
            );
            revoked.push((sn, issued.der, leaf_pem));
        }

        // CRL: one entry with an unspecified reason (no reasonCode extension),
        // one with keyCompromise, one superseded.
        let t = now();
        let entries: Vec<RevokedEntry> = revoked
            .iter()
            .take(3)
            .zip([
                RevocationReason::Unspecified,
                RevocationReason::KeyCompromise,
                RevocationReason::Superseded,
            ])
            .map(|((sn, _, _), reason)| RevokedEntry {
                serial: sn.clone(),
                revoked_at: t - Duration::minutes(1),
                reason,
            })
            .collect();
        let crl = build_crl(&chain.inter, 42, t, t + Duration::days(7), &entries).expect("crl");
        let crl_pem = write_pem(dir, &format!("crl-{alg}.pem"), "X509 CRL", &[&crl]);
        let chain_pem = write_certs(dir, &format!("chain-{alg}.pem"), &[&root_der, &inter_der]);
        let (ok, out) = openssl(&[
            "crl",
            "-in",
            s(&crl_pem),
            "-CAfile",
            s(&chain_pem),
            "-noout",
            "-text",
        ]);
        assert!(ok && out.contains("verify OK"), "openssl crl {alg}: {out}");
        // openssl prints the number on the line after the extension name.
        let crl_number = out
            .lines()
            .skip_while(|l| !l.contains("X509v3 CRL Number"))
            .nth(1)
            .map(str::trim);
        assert_eq!(crl_number, Some("42"), "{out}");
        assert!(
            out.contains("Key Compromise") && out.contains("Superseded"),
            "{out}"
        );
        assert_eq!(
            out.matches("CRL Reason Code").count(),
            2,
            "unspecified must carry no reasonCode: {out}"
        );
        report += &format!(
            "== crl {alg}\n{}",
            pkilint("lint_crl", &["-t", "CRL", "-p", "PKIX"], &crl_pem)
        );

        // The revoked leaf fails a CRL-checked verify; an unrevoked one passes.
        let empty_root_crl =
            build_crl(&chain.root, 1, t, t + Duration::days(7), &[]).expect("root crl");
        let root_crl_pem = write_pem(
            dir,
            &format!("rootcrl-{alg}.pem"),
            "X509 CRL",
            &[&empty_root_crl],
        );
        report += &format!(
            "== empty root crl {alg}\n{}",
            pkilint("lint_crl", &["-t", "ARL", "-p", "PKIX"], &root_crl_pem)
        );
        let crls = write_pem(
            dir,
            &format!("crls-{alg}.pem"),
            "X509 CRL",
            &[&crl, &empty_root_crl],
        );
        let crl_check = |leaf: &Path| {
            openssl(&[
                "verify",
                "-crl_check_all",
                "-CRLfile",
                s(&crls),
                "-CAfile",
                s(&root_pem),
                "-untrusted",
                s(&inter_pem),
                s(leaf),
            ])
        };
        let (ok, out) = crl_check(&revoked[1].2);
        assert!(
            !ok && out.contains("revoked"),
            "revoked leaf must fail: {out}"
        );
        let (ok, out) = crl_check(&revoked[3].2);
        assert!(ok, "unrevoked leaf must pass: {out}");
    }
    println!("pkilint findings at NOTICE and above (informational):\n{report}");
}

#[test]
fn long_first_name_gives_empty_subject_and_critical_san() {
    let chain = build_chain(KeyAlgorithm::EcdsaP256);
    let long = format!("{}.example.com", "a".repeat(60));
    let key = leaf_key("p256");
    let csr = check_csr(
        &csr_der(&key, None, &[&long, "192.0.2.1"]),
        &CsrPolicy::default(),
    )
    .expect("csr");
    let ids = vec![dns(&long), ip("192.0.2.1")];
    csr.require_names(&ids).expect("names");
    let t = now();
    let issued = issue_leaf(
        &chain.inter,
        &csr,
        &ids,
        serial(50),
        t,
        t + Duration::days(1),
    )
    .expect("issue");
    let c = Certificate::from_der(&issued.der).expect("parse");
    assert!(c.tbs_certificate().subject().is_empty());
    let exts = c.tbs_certificate().extensions().expect("exts");
    let san = exts
        .iter()
        .find(|e| e.extn_id.to_string() == "2.5.29.17")
        .expect("san");
    assert!(san.critical);
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write_certs(dir.path(), "leaf.pem", &[&issued.der]);
    pkilint_cert(&p);
}

#[test]
fn validity_and_path_length_rules() {
    let chain = build_chain(KeyAlgorithm::EcdsaP256);
    let key = leaf_key("p256");
    let csr = check_csr(&csr_der(&key, None, &["a.example"]), &CsrPolicy::default()).expect("csr");
    let ids = vec![dns("a.example")];
    let t = now();
    // inverted
    assert!(issue_leaf(&chain.inter, &csr, &ids, serial(60), t, t).is_err());
    // notBefore before the issuer's is raised to it
    let early = chain.inter.not_before() - Duration::days(2);
    let issued = issue_leaf(
        &chain.inter,
        &csr,
        &ids,
        serial(64),
        early,
        t + Duration::days(1),
    )
    .expect("clamped");
    assert_eq!(issued.not_before, chain.inter.not_before());
    assert_eq!(
        ironseal_ca_core::cert::cert_not_before(&issued.der).expect("nb"),
        chain.inter.not_before()
    );
    // beyond the issuer
    assert!(issue_leaf(
        &chain.inter,
        &csr,
        &ids,
        serial(60),
        t,
        chain.inter.not_after() + Duration::seconds(1)
    )
    .is_err());
    // no identifiers
    assert!(issue_leaf(
        &chain.inter,
        &csr,
        &[],
        serial(60),
        t,
        t + Duration::days(1)
    )
    .is_err());
    // the pathLen 0 intermediate cannot certify another CA
    let p = profile(
        "sub",
        KeyAlgorithm::EcdsaP256,
        t,
        t + Duration::days(10),
        Some(0),
    );
    assert!(create_intermediate(&p, serial(61), &chain.inter).is_err());
    // the root (pathLen 1) refuses an unconstrained child
    let p = profile(
        "sub",
        KeyAlgorithm::EcdsaP256,
        t,
        t + Duration::days(10),
        None,
    );
    assert!(create_intermediate(&p, serial(62), &chain.root).is_err());
    // a child outliving its parent
    let p = profile(
        "sub",
        KeyAlgorithm::EcdsaP256,
        t,
        chain.root.not_after() + Duration::days(1),
        Some(0),
    );
    assert!(create_intermediate(&p, serial(63), &chain.root).is_err());
    // removeFromCRL in a full CRL
    let e = RevokedEntry {
        serial: serial(1),
        revoked_at: t,
        reason: RevocationReason::RemoveFromCrl,
    };
    assert!(build_crl(&chain.inter, 1, t, t + Duration::days(1), &[e]).is_err());
    assert!(build_crl(&chain.inter, 1, t, t, &[]).is_err());
}

#[test]
fn issuer_rejects_mismatched_key_and_non_ca() {
    let a = build_chain(KeyAlgorithm::EcdsaP256);
    let other = ironseal_ca_core::keys::CaKey::generate(KeyAlgorithm::EcdsaP256).expect("key");
    let err = Issuer::new(
        "x".into(),
        a.root.cert_der().to_vec(),
        other,
        IssuerUrls::default(),
    );
    assert!(err.is_err());
    // a leaf is not a CA
    let key = leaf_key("p256");
    let csr = check_csr(&csr_der(&key, None, &["a.example"]), &CsrPolicy::default()).expect("csr");
    let t = now();
    let leaf = issue_leaf(
        &a.inter,
        &csr,
        &[dns("a.example")],
        serial(70),
        t,
        t + Duration::days(1),
    )
    .expect("leaf");
    let leaf_key_ca =
        ironseal_ca_core::keys::CaKey::from_pkcs8_der(&key.serialize_der()).expect("load");
    assert!(Issuer::new("leaf".into(), leaf.der, leaf_key_ca, IssuerUrls::default()).is_err());
    let k = ironseal_ca_core::keys::CaKey::generate(KeyAlgorithm::Ed25519).expect("key");
    assert!(Issuer::new("g".into(), vec![1, 2, 3], k, IssuerUrls::default()).is_err());
}

/// `issue_leaf_with_options` puts exactly the requested extKeyUsage purposes
/// in the leaf (keyUsage still per key type); the older entry points keep
/// serverAuth + clientAuth; an empty list is refused.
#[test]
fn leaf_options_choose_the_eku() {
    use ironseal_ca_core::issuance::{issue_leaf_with_options, Eku, LeafOptions};
    const SERVER_AUTH: const_oid::ObjectIdentifier =
        const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.1");
    const CLIENT_AUTH: const_oid::ObjectIdentifier =
        const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");
    fn ekus(der: &[u8]) -> Vec<const_oid::ObjectIdentifier> {
        let c = Certificate::from_der(der).expect("parse");
        c.tbs_certificate()
            .get_extension::<x509_cert::ext::pkix::ExtendedKeyUsage>()
            .expect("eku ext")
            .map(|(_, e)| e.0)
            .expect("eku present")
    }
    let chain = build_chain(KeyAlgorithm::EcdsaP256);
    let key = leaf_key("p256");
    let csr = check_csr(
        &csr_der(&key, None, &["opts.example.com"]),
        &CsrPolicy::default(),
    )
    .expect("csr");
    let ids = vec![dns("opts.example.com")];
    let t = now();
    let (nb, na) = (t - Duration::minutes(5), t + Duration::days(7));
    for (n, (want, oids)) in [
        (vec![Eku::ServerAuth], vec![SERVER_AUTH]),
        (vec![Eku::ClientAuth], vec![CLIENT_AUTH]),
        (
            vec![Eku::ServerAuth, Eku::ClientAuth],
            vec![SERVER_AUTH, CLIENT_AUTH],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let issued = issue_leaf_with_options(
            &chain.inter,
            &csr,
            &ids,
            serial(40 + n as u8),
            nb,
            na,
            Some("http://ca.example.test/shard-0.crl"),
            &LeafOptions::with_ekus(want),
        )
        .expect("issue_leaf_with_options");
        assert_eq!(ekus(&issued.der), oids);
    }
    let default = issue_leaf(&chain.inter, &csr, &ids, serial(50), nb, na).expect("issue_leaf");
    assert_eq!(ekus(&default.der), vec![SERVER_AUTH, CLIENT_AUTH]);
    assert_eq!(
        LeafOptions::default().ekus,
        vec![Eku::ServerAuth, Eku::ClientAuth]
    );
    assert!(issue_leaf_with_options(
        &chain.inter,
        &csr,
        &ids,
        serial(51),
        nb,
        na,
        None,
        &LeafOptions::with_ekus(Vec::new()),
    )
    .is_err());
}
