//! Hierarchy operations checked against independent tools: offline roots
//! and intermediates made with the `openssl` CLI, chains verified with
//! `openssl verify -x509_strict`, cross-certificates linted by pkilint
//! (ERROR or FATAL findings fail the test). Missing tools fail the tests.
//!
//! pkilint lives in the venv at `$IRONSEAL_VENV`, else
//! `<workspace>/.venv`; run `scripts/install-test-deps.sh` to create it.

mod support;

use std::path::{Path, PathBuf};

use der::{Decode, Encode};
use ironseal_ca_core::cert::{cert_aki, cert_ski, cert_spki_der, cert_subject_der};
use ironseal_ca_core::constraints::{GeneralSubtree, NameConstraints};
use ironseal_ca_core::error::CaError;
use ironseal_ca_core::hierarchy::{
    create_intermediate, create_root, CaProfile, Issuer, IssuerUrls,
};
use ironseal_ca_core::hierarchy_ops::{
    check_external_ca, cross_sign, import_ca, import_signed_ca, intermediate_csr, load_ca_key,
    rollover_profile,
};
use ironseal_ca_core::keys::{CaKey, KeyAlgorithm};
use support::{
    assert_verifies, dns, now, openssl_ok_in, out_dir, pkilint_cert, profile, s, serial,
    verify_chain, write_certs, write_pem, write_text,
};
use time::Duration;
use x509_cert::ext::pkix::BasicConstraints;
use x509_cert::Certificate;

/// Reads a PEM certificate written by openssl and returns its DER.
fn read_cert(dir: &Path, name: &str) -> Vec<u8> {
    let pem = std::fs::read(dir.join(name)).expect("read cert");
    let (label, der) = der::pem::decode_vec(&pem).expect("pem");
    assert_eq!(label, "CERTIFICATE");
    der
}

/// An openssl-made self-signed root (`openssl req -x509`).
fn openssl_root(dir: &Path, name: &str, cn: &str, pathlen: u8) -> Vec<u8> {
    let cnf = write_text(
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
    let (key, pem) = (format!("{name}.key"), format!("{name}.pem"));
    let mut args = vec!["req", "-x509", "-config", s(&cnf)];
    args.extend(NEW_P256_KEY);
    args.extend(["-keyout", &key, "-out", &pem, "-days", "3650", "-sha256"]);
    openssl_ok_in(dir, &args);
    read_cert(dir, &pem)
}

/// `openssl req` arguments for a new, unencrypted EC P-256 key.
const NEW_P256_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
];

/// Writes an extension file with section `ext` for `openssl x509 -req`.
fn ext_file(dir: &Path, name: &str, body: &str) -> PathBuf {
    write_text(dir, name, &format!("[ext]\n{body}"))
}

const CA_EXT: &str = "basicConstraints = critical,CA:true,pathlen:0\n\
                      keyUsage = critical,keyCertSign,cRLSign\n\
                      subjectKeyIdentifier = hash\n\
                      authorityKeyIdentifier = keyid:always\n";

/// `openssl x509 -req` signs `csr` (PEM file) with the root `ca`, writes the
/// certificate to `out` and returns its DER.
fn openssl_sign(
    dir: &Path,
    csr: &str,
    ca: &str,
    ext: &Path,
    out: &str,
    days: &str,
    serial_hex: &str,
) -> Vec<u8> {
    openssl_ok_in(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            csr,
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-set_serial",
            serial_hex,
            "-days",
            days,
            "-sha256",
            "-extfile",
            s(ext),
            "-extensions",
            "ext",
            "-out",
            out,
        ],
    );
    read_cert(dir, out)
}

/// Issues a leaf for the DNS name `name` under `issuer` and returns its DER.
fn leaf_for(issuer: &Issuer, name: &str, n: u8) -> Vec<u8> {
    support::leaf(issuer, &[dns(name)], n).expect("issue leaf")
}

/// An EC P-256 key `{name}.key` and a CSR `{name}.csr` for `subj`, made by
/// `openssl req -new` in `dir`.
fn openssl_ec_csr(dir: &Path, name: &str, subj: &str) {
    let (key, csr) = (format!("{name}.key"), format!("{name}.csr"));
    let mut args = vec!["req", "-new"];
    args.extend(NEW_P256_KEY);
    args.extend(["-keyout", &key, "-subj", subj, "-out", &csr]);
    openssl_ok_in(dir, &args);
}

// ---------------------------------------------------------------------------
// (a) offline root made with openssl signs our CSR
// ---------------------------------------------------------------------------

#[test]
fn offline_root_signs_our_csr() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let root = openssl_root(dir, "root", "Offline Root", 1);

    let t = now();
    // Certificates openssl makes later in this test start later than `t`;
    // imports are checked half an hour on, inside every validity window, so
    // a slow run cannot turn a path-length case into NotYetValid.
    let checked_at = t + Duration::minutes(30);
    let profile = CaProfile {
        policies: vec!["2.23.140.1.2.1".into()],
        ..profile(
            "Externally Signed CA",
            KeyAlgorithm::EcdsaP256,
            t,
            t + Duration::days(365),
            Some(0),
        )
    };
    let key = CaKey::generate(KeyAlgorithm::EcdsaP256).expect("key");
    let csr = intermediate_csr(&profile, &key).expect("csr");
    write_pem(dir, "our.csr", "CERTIFICATE REQUEST", &[&csr]);
    // openssl accepts the CSR, its signature and its requested extensions.
    let text = openssl_ok_in(
        dir,
        &["req", "-in", "our.csr", "-noout", "-verify", "-text"],
    );
    assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
    assert!(text.contains("Certificate Sign, CRL Sign"), "{text}");
    assert!(text.contains("2.23.140.1.2.1"), "{text}");

    let ext = ext_file(dir, "ca.ext", CA_EXT);
    // openssl signs our CSR for a year under root `ca` with `ext`.
    let sign_ours = |ca: &str, ext: &Path, out: &str, serial_hex: &str| {
        openssl_sign(dir, "our.csr", ca, ext, out, "365", serial_hex)
    };
    let int = sign_ours("root", &ext, "int.pem", "0x1001");

    let imported = import_signed_ca(
        &int,
        &key,
        std::slice::from_ref(&root),
        std::slice::from_ref(&root),
        checked_at,
    )
    .expect("import signed CA");
    assert_eq!(imported.ancestors, vec![root.clone()]);
    assert_eq!(imported.path_len, Some(0));
    // The chain may leave out the root when it is a trust anchor.
    let again = import_signed_ca(&int, &key, &[], std::slice::from_ref(&root), checked_at)
        .expect("import without the root in the chain");
    assert_eq!(again.ancestors, vec![root.clone()]);

    let issuer = imported
        .into_issuer(
            "ext".into(),
            CaKey::from_pkcs8_der(key.pkcs8_der()).expect("key"),
            IssuerUrls::default(),
        )
        .expect("issuer");
    let leaf_der = leaf_for(&issuer, "www.example.test", 1);
    let leaf_pem = write_certs(dir, "leaf.pem", &[&leaf_der]);
    assert_verifies(
        "leaf under the offline root",
        &[],
        &dir.join("root.pem"),
        &[&dir.join("int.pem")],
        &leaf_pem,
    );

    // `cert` imported with no chain, `root` as the only trust anchor.
    let under_root =
        |cert: &[u8], at| import_signed_ca(cert, &key, &[], std::slice::from_ref(&root), at);

    // Expired at the given time.
    assert!(matches!(
        under_root(&int, t + Duration::days(400)),
        Err(CaError::Expired { depth: 0, .. })
    ));
    assert!(matches!(
        under_root(&int, t - Duration::days(2)),
        Err(CaError::NotYetValid { .. })
    ));

    // Signed certificate for a different key → KeyMismatch.
    openssl_ec_csr(dir, "other", "/CN=Other CA");
    let other = openssl_sign(dir, "other.csr", "root", &ext, "other.pem", "365", "0x1002");
    assert_eq!(under_root(&other, checked_at), Err(CaError::KeyMismatch));

    // Signed by a root that is not trusted → Untrusted.
    let evil = openssl_root(dir, "evil", "Evil Root", 1);
    let evil_int = sign_ours("evil", &ext, "evil-int.pem", "0x1003");
    assert!(matches!(
        import_signed_ca(
            &evil_int,
            &key,
            std::slice::from_ref(&evil),
            std::slice::from_ref(&root),
            checked_at,
        ),
        Err(CaError::Untrusted(_))
    ));
    assert!(matches!(
        under_root(&evil_int, checked_at),
        Err(CaError::Untrusted(_))
    ));
    // A chain that does not chain by name → NameChain.
    assert_eq!(
        import_signed_ca(
            &int,
            &key,
            std::slice::from_ref(&evil),
            &[root.clone(), evil.clone()],
            checked_at,
        ),
        Err(CaError::NameChain { depth: 0 })
    );

    // Not a CA → NotACa.
    let leaf_ext = ext_file(
        dir,
        "leaf.ext",
        "basicConstraints = critical,CA:false\nkeyUsage = critical,digitalSignature\n\
         subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid:always\n",
    );
    let notca = sign_ours("root", &leaf_ext, "notca.pem", "0x1004");
    assert!(matches!(
        under_root(&notca, checked_at),
        Err(CaError::NotACa { depth: 0, .. })
    ));

    // Tampered signature → BadSignature at depth 0.
    let mut tampered = int.clone();
    if let Some(b) = tampered.last_mut() {
        *b ^= 0x01;
    }
    assert!(matches!(
        under_root(&tampered, checked_at),
        Err(CaError::BadSignature { depth: 0, .. })
    ));

    // A root with pathlen:0 cannot have a CA below it that issues → PathLenExceeded.
    let tight = openssl_root(dir, "tight", "Tight Root", 0);
    let tight_int = sign_ours("tight", &ext, "tight-int.pem", "0x1005");
    assert!(matches!(
        import_signed_ca(
            &tight_int,
            &key,
            &[],
            std::slice::from_ref(&tight),
            checked_at
        ),
        Err(CaError::PathLenExceeded { .. })
    ));
}

// ---------------------------------------------------------------------------
// (b) import an existing openssl-made CA, every key encoding
// ---------------------------------------------------------------------------

#[test]
fn import_existing_openssl_ca_every_key_form() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let root = openssl_root(dir, "root", "Legacy Root", 1);
    let ext = ext_file(dir, "ca.ext", CA_EXT);
    for (alg, genkey, trad_cmd) in [
        (
            "p256",
            vec![
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ],
            vec!["ec"],
        ),
        (
            "rsa3072",
            vec![
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:3072",
            ],
            vec!["rsa", "-traditional"],
        ),
    ] {
        let key_file = format!("{alg}.key");
        let mut args = genkey.clone();
        args.extend(["-out", key_file.as_str()]);
        openssl_ok_in(dir, &args);
        let csr = format!("{alg}.csr");
        openssl_ok_in(
            dir,
            &[
                "req",
                "-new",
                "-key",
                &key_file,
                "-subj",
                &format!("/O=Legacy Org/CN=Legacy Issuing CA {alg}"),
                "-out",
                &csr,
            ],
        );
        let int_file = format!("{alg}-int.pem");
        openssl_sign(dir, &csr, "root", &ext, &int_file, "730", "0x2001");
        let int_pem = std::fs::read(dir.join(&int_file)).expect("read");

        // Traditional PEM (SEC1 / PKCS#1), PKCS#8 DER, traditional DER.
        let trad = format!("{alg}.trad");
        let mut a: Vec<&str> = trad_cmd.clone();
        a.extend(["-in", key_file.as_str(), "-out", trad.as_str()]);
        openssl_ok_in(dir, &a);
        let p8der = format!("{alg}.p8.der");
        openssl_ok_in(
            dir,
            &["pkey", "-in", &key_file, "-outform", "DER", "-out", &p8der],
        );
        let trad_der = format!("{alg}.trad.der");
        let mut a: Vec<&str> = trad_cmd.clone();
        a.extend([
            "-in",
            key_file.as_str(),
            "-outform",
            "DER",
            "-out",
            trad_der.as_str(),
        ]);
        openssl_ok_in(dir, &a);

        let pkcs8_pem = std::fs::read(dir.join(&key_file)).expect("read");
        let trad_pem = std::fs::read(dir.join(&trad)).expect("read");
        assert!(
            String::from_utf8_lossy(&trad_pem).contains(if alg == "p256" {
                "BEGIN EC PRIVATE KEY"
            } else {
                "BEGIN RSA PRIVATE KEY"
            }),
            "{alg}: not a traditional key"
        );
        assert!(String::from_utf8_lossy(&pkcs8_pem).contains("BEGIN PRIVATE KEY"));
        let forms = [
            ("pkcs8 pem", pkcs8_pem),
            ("traditional pem", trad_pem),
            ("pkcs8 der", std::fs::read(dir.join(&p8der)).expect("read")),
            (
                "traditional der",
                std::fs::read(dir.join(&trad_der)).expect("read"),
            ),
        ];
        let mut spki: Option<Vec<u8>> = None;
        for (i, (form, key_bytes)) in forms.iter().enumerate() {
            let (key, cert_der) =
                import_ca(&int_pem, key_bytes).unwrap_or_else(|e| panic!("{alg} {form}: {e}"));
            let want = if alg == "p256" {
                KeyAlgorithm::EcdsaP256
            } else {
                KeyAlgorithm::Rsa3072
            };
            assert_eq!(key.algorithm(), want, "{alg} {form}");
            // Whatever came in, the key is kept as PKCS#8, which openssl reads.
            let p8 = write_pem(
                dir,
                &format!("{alg}-{i}.p8"),
                "PRIVATE KEY",
                &[key.pkcs8_der()],
            );
            openssl_ok_in(dir, &["pkey", "-in", s(&p8), "-noout"]);
            match &spki {
                Some(sp) => assert_eq!(&key.spki_der(), sp),
                None => spki = Some(key.spki_der()),
            }
            let issuer = Issuer::new(alg.into(), cert_der, key, IssuerUrls::default())
                .and_then(|i| i.with_ancestors(std::slice::from_ref(&root)))
                .unwrap_or_else(|e| panic!("{alg} {form}: issuer: {e}"));
            let leaf_der = leaf_for(&issuer, "legacy.example.test", 10 + i as u8);
            let leaf_pem = write_certs(dir, &format!("{alg}-leaf-{i}.pem"), &[&leaf_der]);
            assert_verifies(
                &format!("{alg} {form} leaf"),
                &[],
                &dir.join("root.pem"),
                &[&dir.join(&int_file)],
                &leaf_pem,
            );
        }
    }
    // Key of another CA → KeyMismatch; a root key for the intermediate too.
    let int_pem = std::fs::read(dir.join("p256-int.pem")).expect("read");
    let rsa_key = std::fs::read(dir.join("rsa3072.key")).expect("read");
    assert!(matches!(
        import_ca(&int_pem, &rsa_key),
        Err(CaError::KeyMismatch)
    ));
    let root_key = std::fs::read(dir.join("root.key")).expect("read");
    assert!(matches!(
        import_ca(&int_pem, &root_key),
        Err(CaError::KeyMismatch)
    ));
    // The root itself imports (self-signed, signature verified).
    let (rk, rd) = import_ca(
        &std::fs::read(dir.join("root.pem")).expect("read"),
        &root_key,
    )
    .expect("import root");
    assert_eq!(rd, root);
    assert_eq!(rk.algorithm(), KeyAlgorithm::EcdsaP256);
    // A non-CA certificate → NotACa.
    let leaf_ext = ext_file(
        dir,
        "leaf.ext",
        "basicConstraints = critical,CA:false\nkeyUsage = critical,digitalSignature\n\
         subjectKeyIdentifier = hash\n",
    );
    openssl_sign(
        dir,
        "p256.csr",
        "root",
        &leaf_ext,
        "p256-leaf.pem",
        "30",
        "0x2002",
    );
    let notca = std::fs::read(dir.join("p256-leaf.pem")).expect("read");
    let p256_key = std::fs::read(dir.join("p256.key")).expect("read");
    assert!(matches!(
        import_ca(&notca, &p256_key),
        Err(CaError::NotACa { depth: 0, .. })
    ));
    // Garbage and encrypted keys are refused.
    assert!(matches!(load_ca_key(b"garbage"), Err(CaError::Key(_))));
    openssl_ok_in(
        dir,
        &[
            "pkey", "-in", "p256.key", "-aes256", "-passout", "pass:x", "-out", "enc.key",
        ],
    );
    let enc = std::fs::read(dir.join("enc.key")).expect("read");
    assert!(matches!(load_ca_key(&enc), Err(CaError::Key(_))));
}

// ---------------------------------------------------------------------------
// (c) cross-signing
// ---------------------------------------------------------------------------

fn our_root(cn: &str, alg: KeyAlgorithm, path_len: Option<u8>, n: u8, urls: IssuerUrls) -> Issuer {
    let t = now();
    let p = profile(
        cn,
        alg,
        t - Duration::days(1),
        t + Duration::days(3650),
        path_len,
    );
    let (k, d) = create_root(&p, serial(n)).expect("root");
    Issuer::new(cn.into(), d, k, urls).expect("root issuer")
}

fn path_len_of(der: &[u8]) -> Option<u8> {
    let c = Certificate::from_der(der).expect("parse");
    c.tbs_certificate()
        .get_extension::<BasicConstraints>()
        .expect("bc")
        .map(|(_, b)| b)
        .filter(|b| b.ca)
        .expect("a CA")
        .path_len_constraint
}

#[test]
fn cross_signed_intermediate_verifies_under_both_roots() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // IRONSEAL_TEST_OUT=<dir> keeps the artifacts for manual inspection.
    let dir = &out_dir(&tmp);
    let t = now();
    let a = our_root(
        "Root A",
        KeyAlgorithm::EcdsaP256,
        Some(1),
        1,
        IssuerUrls::default(),
    );
    let b = our_root(
        "Root B",
        KeyAlgorithm::EcdsaP384,
        Some(1),
        2,
        IssuerUrls {
            ca_issuers: Some("http://b.example.test/b.cer".into()),
            ocsp: None,
            crl: Some("http://b.example.test/b.crl".into()),
        },
    );
    let xp = CaProfile {
        policies: vec!["2.23.140.1.2.1".into()],
        name_constraints: NameConstraints {
            permitted: vec![GeneralSubtree::Dns("example.test".into())],
            excluded: vec![],
        },
        ..profile(
            "Intermediate X",
            KeyAlgorithm::EcdsaP256,
            t - Duration::hours(1),
            t + Duration::days(730),
            Some(0),
        )
    };
    let (xk, xd) = create_intermediate(&xp, serial(3), &a).expect("X");
    let x2 = cross_sign(
        &xd,
        &b,
        serial(4),
        t - Duration::hours(1),
        t + Duration::days(700),
    )
    .expect("cross-sign");

    // Same subject, SPKI and SKI byte for byte; issuer/AKI are B's.
    assert_eq!(
        cert_subject_der(&x2).expect("s"),
        cert_subject_der(&xd).expect("s")
    );
    assert_eq!(
        cert_spki_der(&x2).expect("k"),
        cert_spki_der(&xd).expect("k")
    );
    assert_eq!(cert_ski(&x2).expect("ski"), cert_ski(&xd).expect("ski"));
    assert_eq!(
        cert_aki(&x2).expect("aki"),
        Some(b.key_identifier().to_vec())
    );
    let x2c = Certificate::from_der(&x2).expect("parse X'");
    assert_eq!(
        x2c.tbs_certificate().issuer().to_der().expect("i"),
        b.subject_der()
    );
    assert_eq!(path_len_of(&x2), Some(0));
    // The whole DER round-trips (strict DER, nothing re-encoded differently).
    assert_eq!(x2c.to_der().expect("der"), x2);

    let x = Issuer::new("x".into(), xd.clone(), xk, IssuerUrls::default())
        .and_then(|i| i.with_ancestors(&[a.cert_der()]))
        .expect("X issuer");
    let leaf_der = leaf_for(&x, "www.example.test", 20);
    let leaf_pem = write_certs(dir, "leaf.pem", &[&leaf_der]);
    let a_pem = write_certs(dir, "a.pem", &[a.cert_der()]);
    let b_pem = write_certs(dir, "b.pem", &[b.cert_der()]);
    let x_pem = write_certs(dir, "x.pem", &[&xd]);
    let x2_pem = write_certs(dir, "x2.pem", &[&x2]);
    assert_verifies("leaf under A via X", &[], &a_pem, &[&x_pem], &leaf_pem);
    assert_verifies("leaf under B via X'", &[], &b_pem, &[&x2_pem], &leaf_pem);
    // X' alone under B, and the leaf does NOT verify under B with X.
    assert_verifies("X' under B", &[], &b_pem, &[], &x2_pem);
    let (ok, _) = verify_chain(&[], &b_pem, &[&x_pem], &leaf_pem);
    assert!(!ok, "the leaf must not verify under B through X");
    let text = openssl_ok_in(dir, &["x509", "-in", s(&x2_pem), "-noout", "-text"]);
    assert!(
        text.contains("Permitted:") && text.contains("2.23.140.1.2.1"),
        "{text}"
    );
    assert!(text.contains("http://b.example.test/b.crl"), "{text}");
    pkilint_cert(&x2_pem);

    // Every cross-signer key algorithm produces a certificate openssl
    // accepts, and pkilint finds no error in it.
    for (i, alg) in KeyAlgorithm::ALL.into_iter().enumerate() {
        let n = 40 + 2 * i as u8;
        let signer = our_root(&format!("Root {alg}"), alg, None, n, IssuerUrls::default());
        let xx = cross_sign(&xd, &signer, serial(n + 1), t, t + Duration::days(30))
            .unwrap_or_else(|e| panic!("{alg}: {e}"));
        let signer_pem = write_certs(dir, &format!("root-{alg}.pem"), &[signer.cert_der()]);
        let xx_pem = write_certs(dir, &format!("x-{alg}.pem"), &[&xx]);
        assert_verifies(
            &format!("leaf under {alg} signer"),
            &[],
            &signer_pem,
            &[&xx_pem],
            &leaf_pem,
        );
        pkilint_cert(&xx_pem);
    }

    // Cross-signing a root: E (unconstrained) certifies A; the leaf then
    // verifies from E through A' and X, and A' keeps A's pathLen 1.
    let e = our_root(
        "Root E",
        KeyAlgorithm::EcdsaP256,
        None,
        30,
        IssuerUrls::default(),
    );
    let a2 = cross_sign(a.cert_der(), &e, serial(31), t, t + Duration::days(365)).expect("A'");
    assert_eq!(path_len_of(&a2), Some(1));
    assert_eq!(cert_subject_der(&a2).expect("s"), a.subject_der());
    let e_pem = write_certs(dir, "e.pem", &[e.cert_der()]);
    let a2x_pem = write_certs(dir, "a2x.pem", &[&a2, &xd]);
    assert_verifies(
        "leaf under E via A' and X",
        &[],
        &e_pem,
        &[&a2x_pem],
        &leaf_pem,
    );
    pkilint_cert(&write_certs(dir, "a2.pem", &[&a2]));
    // B (pathLen 1) lowers A' to pathLen 0: A' → X → leaf is then too deep.
    let a3 = cross_sign(a.cert_der(), &b, serial(32), t, t + Duration::days(365)).expect("A''");
    assert_eq!(path_len_of(&a3), Some(0));
    let a3x_pem = write_certs(dir, "a3x.pem", &[&a3, &xd]);
    let (ok, _) = verify_chain(&[], &b_pem, &[&a3x_pem], &leaf_pem);
    assert!(
        !ok,
        "pathLen 0 on A'' must stop the path B → A'' → X → leaf"
    );

    // Chain policy of the cross-signer: an unconstrained CA cross-signed by
    // a root with pathLen 1 gets pathLen 0.
    let c = our_root(
        "Root C",
        KeyAlgorithm::EcdsaP256,
        None,
        5,
        IssuerUrls::default(),
    );
    let mut yp = CaProfile::new("Y", KeyAlgorithm::EcdsaP256, t, t + Duration::days(30));
    yp.path_len = None;
    let (_, yd) = create_intermediate(&yp, serial(6), &c).expect("Y");
    assert_eq!(path_len_of(&yd), None);
    let y2 = cross_sign(&yd, &b, serial(7), t, t + Duration::days(30)).expect("Y'");
    assert_eq!(path_len_of(&y2), Some(0));
    let y2_pem = write_certs(dir, "y2.pem", &[&y2]);
    pkilint_cert(&y2_pem);

    // A name-constrained cross-signer refuses a CA permitted elsewhere.
    let mut dp = CaProfile::new(
        "Constrained D",
        KeyAlgorithm::EcdsaP256,
        t - Duration::days(1),
        t + Duration::days(3650),
    );
    dp.name_constraints = NameConstraints {
        permitted: vec![GeneralSubtree::Dns("other.test".into())],
        excluded: vec![],
    };
    let (dk, dd) = create_root(&dp, serial(8)).expect("D");
    let d = Issuer::new("d".into(), dd, dk, IssuerUrls::default()).expect("D issuer");
    assert!(matches!(
        cross_sign(&xd, &d, serial(9), t, t + Duration::days(30)),
        Err(CaError::NameConstraintViolation { .. })
    ));
    // A leaf is not a CA.
    assert!(matches!(
        cross_sign(&leaf_der, &b, serial(10), t, t + Duration::days(30)),
        Err(CaError::NotACa { depth: 0, .. })
    ));
    // X (pathLen 0) cannot cross-sign.
    assert!(matches!(
        cross_sign(c.cert_der(), &x, serial(11), t, t + Duration::days(30)),
        Err(CaError::PathLenExceeded { .. })
    ));

    // Rollover of X: same constraints, next generation name.
    let next = rollover_profile(&x, t).expect("rollover");
    assert_eq!(next.common_name, "Intermediate X G2");
    assert_eq!(next.organization.as_deref(), Some("ironseal test"));
    assert_eq!(next.name_constraints, xp.name_constraints);
    assert_eq!(next.policies, xp.policies);
    assert_eq!(next.path_len, Some(0));
    let mut next = next;
    next.not_after = next.not_after.min(a.not_after());
    let (_, x_g2) = create_intermediate(&next, serial(12), &a).expect("successor");
    let g2_pem = write_certs(dir, "g2.pem", &[&x_g2]);
    assert_verifies("X G2 under A", &[], &a_pem, &[], &g2_pem);
}

// ---------------------------------------------------------------------------
// (e) CA certificates kept without their key
// ---------------------------------------------------------------------------

#[test]
fn external_ca_certificates_are_validated_as_paths() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let root = openssl_root(dir, "xroot", "External Root", 1);
    let other = openssl_root(dir, "other", "Other Root", 1);
    let t = now() + Duration::minutes(30);

    // A self-signed root stands alone, as PEM or DER.
    let pem = std::fs::read(dir.join("xroot.pem")).expect("read pem");
    assert_eq!(check_external_ca(&pem, &[], t).expect("root"), root);
    assert_eq!(check_external_ca(&root, &[], t).expect("root der"), root);
    // Too early or too late for its validity.
    assert!(matches!(
        check_external_ca(&root, &[], t - Duration::days(2)),
        Err(CaError::NotYetValid { depth: 0, .. })
    ));
    assert!(matches!(
        check_external_ca(&root, &[], t + Duration::days(4000)),
        Err(CaError::Expired { depth: 0, .. })
    ));

    // An intermediate of the external hierarchy: valid under its root,
    // refused without it or under the wrong one.
    openssl_ec_csr(dir, "xint", "/O=Offline Org/CN=External Issuing");
    let ext = ext_file(dir, "ca.ext", CA_EXT);
    let int = openssl_sign(dir, "xint.csr", "xroot", &ext, "xint.pem", "365", "0x2001");
    assert_eq!(
        check_external_ca(&int, std::slice::from_ref(&root), t).expect("intermediate"),
        int
    );
    assert!(matches!(
        check_external_ca(&int, &[], t),
        Err(CaError::Untrusted(_))
    ));
    assert!(matches!(
        check_external_ca(&int, std::slice::from_ref(&other), t),
        Err(CaError::NameChain { depth: 0 })
    ));

    // A leaf certificate is not a CA.
    let leaf_ext = ext_file(
        dir,
        "leaf.ext",
        "basicConstraints = critical,CA:false\nkeyUsage = critical,digitalSignature\n",
    );
    openssl_ec_csr(dir, "leaf", "/CN=leaf.test");
    let leaf = openssl_sign(
        dir, "leaf.csr", "xroot", &leaf_ext, "leaf.pem", "30", "0x2002",
    );
    assert!(matches!(
        check_external_ca(&leaf, std::slice::from_ref(&root), t),
        Err(CaError::NotACa { depth: 0, .. })
    ));
    // Garbage is an encoding error, not a panic.
    assert!(check_external_ca(b"not a certificate", &[], t).is_err());
}
