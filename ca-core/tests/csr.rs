//! PKCS#10 (RFC 2986) acceptance and rejection, including CSRs produced by
//! the `openssl` CLI as an independent encoder.

mod support;

use ironseal_ca_core::csr::{check_csr, CsrError, CsrPolicy, LeafKey};
use ironseal_ca_core::names::SubjectName;
use rcgen::{CertificateParams, KeyPair, SanType};
use support::{csr_der, dns, ip, openssl_ok, s};

fn p256() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key")
}

/// Runs `openssl req -new` with the given key spec and returns the DER CSR.
fn openssl_csr(newkey: &[&str], subj: &str, san: Option<&str>) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("req.der");
    let key = dir.path().join("key.pem");
    let mut args = vec!["req", "-new", "-nodes"];
    args.extend(newkey);
    args.extend([
        "-keyout",
        s(&key),
        "-subj",
        subj,
        "-outform",
        "DER",
        "-out",
        s(&out),
    ]);
    let ext = san.map(|san| format!("subjectAltName={san}"));
    if let Some(ext) = &ext {
        args.extend(["-addext", ext.as_str()]);
    }
    openssl_ok(&args);
    std::fs::read(&out).expect("read csr")
}

#[test]
fn accepts_openssl_csr_and_collects_names() {
    let der = openssl_csr(
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "/CN=Www.Example.org",
        Some("DNS:www.example.org,DNS:Mail.Example.org,IP:198.51.100.4,IP:2001:db8::2"),
    );
    let csr = check_csr(&der, &CsrPolicy::default()).expect("accepted");
    assert_eq!(csr.key, LeafKey::EcdsaP256);
    assert_eq!(
        csr.names,
        vec![
            dns("www.example.org"),
            dns("mail.example.org"),
            ip("198.51.100.4"),
            ip("2001:db8::2"),
        ]
    );
    let ids = [
        dns("MAIL.example.org"),
        dns("www.example.org"),
        ip("198.51.100.4"),
        ip("2001:0db8:0::2"),
    ];
    csr.require_names(&ids).expect("same set");

    // RSA-2048 with SHA-384 and P-384 from openssl too.
    let der = openssl_csr(&["-newkey", "rsa:2048", "-sha384"], "/CN=rsa.example", None);
    let csr = check_csr(&der, &CsrPolicy::default()).expect("rsa accepted");
    assert_eq!(csr.key, LeafKey::Rsa { bits: 2048 });
    assert_eq!(csr.names, vec![dns("rsa.example")]);
    let der = openssl_csr(
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
        "/CN=p384.example",
        None,
    );
    assert_eq!(
        check_csr(&der, &CsrPolicy::default()).expect("p384").key,
        LeafKey::EcdsaP384
    );
    let der = openssl_csr(&["-newkey", "ed25519"], "/CN=ed.example", None);
    assert_eq!(
        check_csr(&der, &CsrPolicy::default()).expect("ed25519").key,
        LeafKey::Ed25519
    );
}

#[test]
fn rejects_weak_and_unsupported_keys() {
    let der = openssl_csr(&["-newkey", "rsa:1024"], "/CN=weak.example", None);
    assert!(matches!(
        check_csr(&der, &CsrPolicy::default()),
        Err(CsrError::WeakKey(_))
    ));
    let der = openssl_csr(
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"],
        "/CN=p521.example",
        None,
    );
    assert!(matches!(
        check_csr(&der, &CsrPolicy::default()),
        Err(CsrError::UnsupportedKey(_))
    ));
    let der = openssl_csr(&["-newkey", "ed25519"], "/CN=ed.example", None);
    let policy = CsrPolicy {
        allow_ed25519: false,
        ..CsrPolicy::default()
    };
    assert!(matches!(
        check_csr(&der, &policy),
        Err(CsrError::UnsupportedKey(_))
    ));
    let der = openssl_csr(&["-newkey", "rsa:3072"], "/CN=big.example", None);
    let policy = CsrPolicy {
        min_rsa_bits: 4096,
        ..CsrPolicy::default()
    };
    assert!(matches!(
        check_csr(&der, &policy),
        Err(CsrError::WeakKey(_))
    ));
}

/// Overwrites the first byte of `name` inside the signed part of `der` with
/// `first` and asserts that `check_csr` then reports a bad signature.
fn assert_renamed_fails_signature(der: &[u8], name: &[u8], first: u8) {
    let pos = der
        .windows(name.len())
        .position(|w| w == name)
        .expect("name present");
    let mut bad = der.to_vec();
    bad[pos] = first;
    assert_eq!(
        check_csr(&bad, &CsrPolicy::default()),
        Err(CsrError::BadSignature)
    );
}

#[test]
fn rejects_bad_signature() {
    let der = csr_der(&p256(), Some("a.example"), &["a.example"]);
    assert!(check_csr(&der, &CsrPolicy::default()).is_ok());
    // Flip a bit in the signature (the last byte of the DER).
    let mut bad = der.clone();
    if let Some(b) = bad.last_mut() {
        *b ^= 0x01;
    }
    assert!(matches!(
        check_csr(&bad, &CsrPolicy::default()),
        Err(CsrError::BadSignature | CsrError::Malformed(_))
    ));
    // Change a name inside the signed info: signature must no longer verify.
    assert_renamed_fails_signature(&der, b"a.example", b'b');
    // Ed25519 too.
    let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("ed");
    let der = csr_der(&ed, None, &["ed.example"]);
    assert_renamed_fails_signature(&der, b"ed.example", b'f');
}

#[test]
fn names_mismatch_reports_both_sides() {
    let der = csr_der(&p256(), Some("a.example"), &["a.example", "b.example"]);
    let csr = check_csr(&der, &CsrPolicy::default()).expect("ok");
    let err = csr
        .require_names(&[dns("A.EXAMPLE"), dns("c.example")])
        .expect_err("mismatch");
    assert_eq!(
        err,
        CsrError::NamesMismatch {
            missing: vec!["dns:c.example".into()],
            unexpected: vec!["dns:b.example".into()],
        }
    );
    // A CN that is not in the SAN counts as a requested name.
    let der = csr_der(&p256(), Some("cn-only.example"), &["a.example"]);
    let csr = check_csr(&der, &CsrPolicy::default()).expect("ok");
    assert!(csr.require_names(&[dns("a.example")]).is_err());
    // Email SANs are parsed (device profiles use them) but are not ACME
    // identifiers: require_names reports them as unexpected.
    let mut params = CertificateParams::new(vec!["a.example".to_string()]).expect("params");
    params
        .subject_alt_names
        .push(SanType::Rfc822Name("x@a.example".try_into().expect("ia5")));
    let der = params
        .serialize_request(&p256())
        .expect("csr")
        .der()
        .to_vec();
    let csr = check_csr(&der, &CsrPolicy::default()).expect("email SAN parses");
    assert_eq!(
        csr.san_names,
        vec![dns("a.example"), SubjectName::Email("x@a.example".into())]
    );
    match csr.require_names(&[dns("a.example")]) {
        Err(CsrError::NamesMismatch { unexpected, .. }) => {
            assert!(
                unexpected.contains(&"email:x@a.example".to_string()),
                "{unexpected:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    // A non-ASCII CN is no DNS name: kept out of `names`, still refused by
    // require_names.
    let der = csr_der(&p256(), Some("Jürgen"), &["a.example"]);
    let csr = check_csr(&der, &CsrPolicy::default()).expect("ok");
    assert_eq!(csr.names, vec![dns("a.example")]);
    assert_eq!(csr.subject.common_name(), Some("Jürgen"));
    assert!(csr.require_names(&[dns("a.example")]).is_err());
    // Other SAN forms (here an otherName UPN) are still refused.
    let mut params = CertificateParams::new(vec!["a.example".to_string()]).expect("params");
    params.subject_alt_names.push(SanType::OtherName((
        vec![1, 3, 6, 1, 4, 1, 311, 20, 2, 3],
        "u@a.example".into(),
    )));
    let der = params
        .serialize_request(&p256())
        .expect("csr")
        .der()
        .to_vec();
    assert!(matches!(
        check_csr(&der, &CsrPolicy::default()),
        Err(CsrError::Malformed(_))
    ));
}

#[test]
fn rejects_account_key() {
    let key = p256();
    let der = csr_der(&key, None, &["a.example"]);
    let csr = check_csr(&der, &CsrPolicy::default()).expect("ok");
    assert_eq!(
        csr.require_key_differs(key.public_key_raw()),
        Err(CsrError::KeyIsAccountKey)
    );
    assert_eq!(csr.require_key_differs(p256().public_key_raw()), Ok(()));
}

#[test]
fn garbage_never_panics() {
    let der = csr_der(&p256(), Some("a.example"), &["a.example", "192.0.2.1"]);
    let policy = CsrPolicy::default();
    // Every truncation.
    for n in 0..der.len() {
        assert!(check_csr(&der[..n], &policy).is_err(), "truncated at {n}");
    }
    // Trailing bytes.
    let mut long = der.clone();
    long.push(0);
    assert!(matches!(
        check_csr(&long, &policy),
        Err(CsrError::Malformed(_))
    ));
    // Oversized input.
    assert!(check_csr(&vec![0x30; 70_000], &policy).is_err());
    // Deterministic mutations (xorshift) and random garbage.
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    for _ in 0..3000 {
        let mut m = der.clone();
        for _ in 0..(next() % 4 + 1) {
            let i = (next() as usize) % m.len();
            m[i] = next() as u8;
        }
        let _ = check_csr(&m, &policy);
        let len = (next() % 300) as usize;
        let g: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        assert!(check_csr(&g, &policy).is_err());
        let mut g2 = vec![0x30, 0x82, 0x01, 0x00];
        g2.extend(&g);
        let _ = check_csr(&g2, &policy);
    }
}
