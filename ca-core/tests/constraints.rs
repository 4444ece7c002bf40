//! Name constraints (RFC 5280 §4.2.1.10), certificate policies (§4.2.1.4)
//! and pathLenConstraint (§4.2.1.9) across a three-level hierarchy,
//! checked against the `openssl` CLI (path validation, RFC 5280 §6.1) and
//! pkilint (ERROR or FATAL findings fail the test).
//!
//! pkilint lives in the venv at `$IRONSEAL_VENV`, else
//! `<workspace>/.venv`; run `scripts/install-test-deps.sh` to create it.
//! A missing openssl or pkilint fails the tests: they are never skipped.

mod support;

use ironseal_ca_core::constraints::{ChainPolicy, GeneralSubtree, NameConstraints};
use ironseal_ca_core::danger::issue_leaf_unchecked;
use ironseal_ca_core::hierarchy::{
    create_intermediate, create_root, CaProfile, Issuer, IssuerUrls,
};
use ironseal_ca_core::keys::KeyAlgorithm;
use ironseal_ca_core::names::SubjectName;
use ironseal_ca_core::CaError;
use support::{
    assert_verifies, checked_csr, dns, ip, leaf, now, openssl_ok, out_dir, pkilint_cert, profile,
    s, serial, verify_chain, write_certs,
};
use time::Duration;

const POLICY_OID: &str = "1.3.6.1.4.1.99999.1.1";

fn urls(id: &str) -> IssuerUrls {
    IssuerUrls {
        ca_issuers: Some(format!("http://ca.example.test/{id}.cer")),
        ocsp: None,
        crl: Some(format!("http://ca.example.test/{id}.crl")),
    }
}

struct Hierarchy {
    root: Issuer,
    policy: Issuer,
    issuing: Issuer,
}

/// root → policy CA (permitted dns example.com + 10.0.0.0/8, excluded dns
/// bad.example.com, policy POLICY_OID, pathLen 1) → issuing CA (pathLen 0,
/// permitted dns sub.example.com), each Issuer knowing its ancestors.
fn hierarchy() -> Hierarchy {
    let t = now();
    let alg = KeyAlgorithm::EcdsaP256;
    let root_profile = profile(
        "ironseal constraints root",
        alg,
        t - Duration::days(1),
        t + Duration::days(3650),
        None,
    );
    let (root_key, root_der) = create_root(&root_profile, serial(1)).expect("root");
    let root = Issuer::new("root".into(), root_der.clone(), root_key, urls("root")).expect("root");

    let policy_profile = CaProfile {
        name_constraints: NameConstraints {
            permitted: vec![
                GeneralSubtree::Dns("example.com".into()),
                GeneralSubtree::Ip("10.0.0.0".parse().expect("ip"), 8),
            ],
            excluded: vec![GeneralSubtree::Dns("bad.example.com".into())],
        },
        policies: vec![POLICY_OID.into()],
        ..profile(
            "ironseal policy CA",
            alg,
            t - Duration::hours(2),
            t + Duration::days(1825),
            Some(1),
        )
    };
    let (policy_key, policy_der) =
        create_intermediate(&policy_profile, serial(2), &root).expect("policy CA");
    let policy = Issuer::new(
        "policy".into(),
        policy_der.clone(),
        policy_key,
        urls("policy"),
    )
    .expect("policy issuer")
    .with_ancestors(&[root_der.as_slice()])
    .expect("policy ancestors");

    let issuing_profile = CaProfile {
        name_constraints: NameConstraints {
            permitted: vec![GeneralSubtree::Dns("sub.example.com".into())],
            excluded: vec![],
        },
        ..profile(
            "ironseal issuing CA",
            alg,
            t - Duration::hours(1),
            t + Duration::days(900),
            Some(0),
        )
    };
    let (issuing_key, issuing_der) =
        create_intermediate(&issuing_profile, serial(3), &policy).expect("issuing CA");
    let issuing = Issuer::new("issuing".into(), issuing_der, issuing_key, urls("issuing"))
        .expect("issuing issuer")
        .with_ancestors(&[policy_der, root_der])
        .expect("issuing ancestors");
    Hierarchy {
        root,
        policy,
        issuing,
    }
}

#[test]
fn constrained_hierarchy_against_openssl_and_pkilint() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = &out_dir(&tmp);
    let h = hierarchy();
    let root = write_certs(dir, "nc-root.pem", &[h.root.cert_der()]);
    let policy = write_certs(dir, "nc-policy.pem", &[h.policy.cert_der()]);
    let issuing = write_certs(dir, "nc-issuing.pem", &[h.issuing.cert_der()]);

    // The CA certificates carry what was asked, as openssl reads them.
    let text = openssl_ok(&["x509", "-in", s(&policy), "-noout", "-text"]);
    for want in [
        "X509v3 Name Constraints: critical",
        "DNS:example.com",
        "IP:10.0.0.0/255.0.0.0",
        "Excluded:",
        "DNS:bad.example.com",
        "X509v3 Certificate Policies:",
        "Policy: 1.3.6.1.4.1.99999.1.1",
        "pathlen:1",
    ] {
        assert!(text.contains(want), "policy CA lacks {want:?}:\n{text}");
    }
    let text = openssl_ok(&["x509", "-in", s(&issuing), "-noout", "-text"]);
    assert!(
        text.contains("X509v3 Name Constraints: critical")
            && text.contains("DNS:sub.example.com")
            && text.contains("pathlen:0")
            && !text.contains("Certificate Policies"),
        "{text}"
    );
    // The CAs verify and lint clean.
    assert_verifies("policy CA", &[], &root, &[], &policy);
    assert_verifies("issuing CA", &[], &root, &[&policy], &issuing);
    for ca in [&root, &policy, &issuing] {
        pkilint_cert(ca);
    }

    // Allowed leaves: issued, verified by openssl, linted clean.
    let allowed: [(&str, Vec<SubjectName>); 3] = [
        (
            "nc-leaf-both.pem",
            vec![dns("a.sub.example.com"), ip("10.1.2.3")],
        ),
        ("nc-leaf-dns.pem", vec![dns("A.Sub.Example.com")]),
        ("nc-leaf-ip.pem", vec![ip("10.1.2.3")]),
    ];
    for (i, (file, names)) in allowed.iter().enumerate() {
        let der = leaf(&h.issuing, names, 10 + i as u8).expect("allowed leaf");
        let p = write_certs(dir, file, &[&der]);
        assert_verifies(file, &[], &root, &[&policy, &issuing], &p);
        pkilint_cert(&p);
    }

    // Refused before signing, with the reason naming the rule.
    let refused: [(SubjectName, &str); 5] = [
        (dns("other.com"), "permitted"),
        (dns("bad.example.com"), "excluded"),
        (dns("x.BAD.example.com"), "excluded"),
        (
            dns("example.com"),
            "permitted subtrees of CN=ironseal issuing CA",
        ),
        (
            ip("192.168.1.1"),
            "permitted subtrees of CN=ironseal policy CA",
        ),
    ];
    for (i, (name, why)) in refused.iter().enumerate() {
        let names = vec![dns("ok.sub.example.com"), name.clone()];
        match leaf(&h.issuing, &names, 20 + i as u8) {
            Err(CaError::NameConstraintViolation { name: n, reason }) => {
                assert_eq!(n, name.to_string());
                assert!(reason.contains(why), "{name}: {reason}");
            }
            other => panic!("{name} must be refused, got {other:?}"),
        }
        assert!(h.issuing.check_names(&names).is_err());
    }
    // The excluded subtree is the grandparent's: the policy CA refuses it too.
    assert!(matches!(
        h.policy.check_names(&[dns("www.bad.example.com")]),
        Err(CaError::NameConstraintViolation { .. })
    ));
    // The IP refusal comes from an ancestor: an issuer that was not told
    // its ancestors only knows its own constraints.
    let alone = Issuer::new(
        "alone".into(),
        h.issuing.cert_der().to_vec(),
        ironseal_ca_core::keys::CaKey::from_pkcs8_der(h.issuing.key().pkcs8_der()).expect("reload"),
        IssuerUrls::default(),
    )
    .expect("issuer");
    assert!(alone.check_names(&[ip("192.168.1.1")]).is_ok());
    assert!(alone.check_names(&[dns("other.com")]).is_err());
    assert_eq!(h.issuing.chain_policy().cas().len(), 3);

    // pathLen 0: the issuing CA cannot certify another CA.
    let t = now();
    let sub = CaProfile {
        path_len: Some(0),
        ..CaProfile::new(
            "too deep",
            KeyAlgorithm::EcdsaP256,
            t,
            t + Duration::days(10),
        )
    };
    match create_intermediate(&sub, serial(40), &h.issuing) {
        Err(CaError::PathLenExceeded { ca, path_len, .. }) => {
            assert_eq!(path_len, 0);
            assert!(ca.contains("ironseal issuing CA"), "{ca}");
        }
        other => panic!("expected PathLenExceeded, got {other:?}"),
    }
    // The policy CA (pathLen 1) already has one CA below it in this chain
    // only when asked through the issuing CA; directly it may add one more
    // pathLen-0 CA, but not a pathLen-1 one, nor one permitting other.com.
    let sibling = CaProfile {
        path_len: Some(1),
        ..sub.clone()
    };
    assert!(matches!(
        create_intermediate(&sibling, serial(41), &h.policy),
        Err(CaError::PathLenExceeded { .. })
    ));
    let escaping = CaProfile {
        name_constraints: NameConstraints {
            permitted: vec![GeneralSubtree::Dns("other.com".into())],
            excluded: vec![],
        },
        ..sub.clone()
    };
    assert!(matches!(
        create_intermediate(&escaping, serial(42), &h.policy),
        Err(CaError::NameConstraintViolation { .. })
    ));
    create_intermediate(&sub, serial(43), &h.policy).expect("a pathLen-0 sibling is fine");

    // The danger path forces violating leaves out; openssl must reject them.
    let forced: [(&str, SubjectName); 3] = [
        ("nc-forced-other.pem", dns("other.com")),
        ("nc-forced-ip.pem", ip("192.168.1.1")),
        ("nc-forced-excluded.pem", dns("x.bad.example.com")),
    ];
    for (i, (file, name)) in forced.iter().enumerate() {
        let names = vec![name.clone()];
        let t = now();
        let der = issue_leaf_unchecked(
            &h.issuing,
            &checked_csr(&names),
            &names,
            serial(50 + i as u8),
            t - Duration::minutes(5),
            t + Duration::days(30),
        )
        .expect("forced leaf")
        .der;
        let p = write_certs(dir, file, &[&der]);
        let (ok, out) = verify_chain(&[], &root, &[&policy, &issuing], &p);
        assert!(
            !ok && (out.contains("permitted subtree violation")
                || out.contains("excluded subtree violation")),
            "openssl must reject {name}: {out}"
        );
    }
}

#[test]
fn chain_policy_from_chain_checks_linkage_and_path_len() {
    let h = hierarchy();
    let chain = [h.issuing.cert_der(), h.policy.cert_der(), h.root.cert_der()];
    let p = ChainPolicy::from_chain(&chain).expect("chain");
    let cas = p.cas();
    assert_eq!(cas.len(), 3);
    assert_eq!(cas[0].path_len, Some(0));
    assert_eq!(cas[1].path_len, Some(1));
    assert_eq!(cas[1].policies, vec![POLICY_OID.to_string()]);
    assert!(cas[2].self_issued && !cas[1].self_issued);
    assert_eq!(
        cas[1].name_constraints.excluded,
        vec![GeneralSubtree::Dns("bad.example.com".into())]
    );
    // Out of order: the issuing CA was not issued by the root.
    assert!(ChainPolicy::from_chain(&[h.issuing.cert_der(), h.root.cert_der()]).is_err());
    let empty: [&[u8]; 0] = [];
    assert!(ChainPolicy::from_chain(&empty).is_err());
    // with_ancestors refuses a wrong chain too.
    let again = Issuer::new(
        "again".into(),
        h.issuing.cert_der().to_vec(),
        ironseal_ca_core::keys::CaKey::from_pkcs8_der(h.issuing.key().pkcs8_der()).expect("reload"),
        IssuerUrls::default(),
    )
    .expect("issuer");
    assert!(again.with_ancestors(&[h.root.cert_der()]).is_err());
}

#[test]
fn every_subtree_form_encodes_and_lints_clean() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let t = now();
    let (root_key, root_der) = create_root(
        &CaProfile::new(
            "ironseal forms root",
            KeyAlgorithm::EcdsaP384,
            t - Duration::days(1),
            t + Duration::days(365),
        ),
        serial(60),
    )
    .expect("root");
    let root = Issuer::new(
        "r".into(),
        root_der.clone(),
        root_key,
        IssuerUrls::default(),
    )
    .expect("root issuer");
    let forms: Vec<GeneralSubtree> = [
        "dns:example.org",
        "dns:example.net",
        "ip:192.0.2.0/24",
        "ip:2001:db8::/32",
        "email:example.org",
        "email:.example.org",
        "email:pki@example.net",
        "uri:.example.org",
        "uri:host.example.net",
    ]
    .iter()
    .map(|s| s.parse().expect("subtree"))
    .collect();
    let profile = CaProfile {
        path_len: Some(0),
        name_constraints: NameConstraints {
            permitted: forms,
            excluded: vec![
                "dns:bad.example.org".parse().expect("dns"),
                "ip:192.0.2.128/25".parse().expect("ip"),
            ],
        },
        policies: vec![POLICY_OID.into(), "2.5.29.32.0".into()],
        ..CaProfile::new(
            "ironseal forms CA",
            KeyAlgorithm::EcdsaP384,
            t - Duration::hours(1),
            t + Duration::days(100),
        )
    };
    let (_, der) = create_intermediate(&profile, serial(61), &root).expect("forms CA");
    let p = write_certs(tmp.path(), "forms.pem", &[&der]);
    let text = openssl_ok(&["x509", "-in", s(&p), "-noout", "-text"]);
    for want in [
        "DNS:example.org",
        "DNS:example.net",
        "IP:192.0.2.0/255.255.255.0",
        "IP:2001:DB8:0:0:0:0:0:0/FFFF:FFFF:0:0:0:0:0:0",
        "email:example.org",
        "email:.example.org",
        "email:pki@example.net",
        "URI:.example.org",
        "URI:host.example.net",
        "Policy: X509v3 Any Policy",
    ] {
        assert!(text.contains(want), "missing {want:?}:\n{text}");
    }
    pkilint_cert(&p);
    let r = write_certs(tmp.path(), "forms-root.pem", &[&root_der]);
    assert_verifies("forms CA", &[], &r, &[], &p);

    // Invalid profile settings are refused before any key is generated.
    for bad in [
        NameConstraints {
            permitted: vec![GeneralSubtree::Ip("10.0.0.1".parse().expect("ip"), 8)],
            excluded: vec![],
        },
        NameConstraints {
            permitted: vec![GeneralSubtree::Dns("example.com.".into())],
            excluded: vec![],
        },
        NameConstraints {
            permitted: vec![GeneralSubtree::Dns(".example.com".into())],
            excluded: vec![],
        },
        NameConstraints {
            permitted: vec![GeneralSubtree::Uri("https://example.com/".into())],
            excluded: vec![],
        },
    ] {
        let p = CaProfile {
            name_constraints: bad.clone(),
            ..profile.clone()
        };
        assert!(
            matches!(
                create_intermediate(&p, serial(62), &root),
                Err(CaError::InvalidRequest(_))
            ),
            "{bad:?}"
        );
    }
    let p = CaProfile {
        policies: vec!["1.2.3".into(), "1.2.3".into()],
        ..profile.clone()
    };
    assert!(create_intermediate(&p, serial(63), &root).is_err());
}
