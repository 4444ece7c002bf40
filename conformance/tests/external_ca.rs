//! CAs that do not start on the server, black box through `ironseal admin
//! cas ...` and openssl:
//!
//! 1. An offline root made by openssl is registered without its key
//!    (`register-external`) and served at `/ca/{id}.der`.
//! 2. `cas csr` makes the key of a new intermediate here and a PKCS#10
//!    request; openssl signs it with the offline root. Wrong certificates
//!    (another key, not a CA, an unregistered issuer) are refused with
//!    their reason and leave the CA pending. The right one is imported,
//!    activated, and issues an ACME leaf that openssl verifies to the
//!    offline root; the name constraints the offline root wrote are
//!    enforced (rejectedIdentifier); revocation shows in `openssl ocsp` and
//!    `openssl verify -crl_check`.
//! 3. An existing CA (certificate and key made by openssl under the
//!    offline root) and an existing root with its key are imported; the
//!    imported intermediate issues, the imported root certifies a new CA.
//! 4. Everything survives a restart; the audit log names each step and
//!    never holds the private key.
//!
//! Run: `cargo build --release -p ironseal && cargo test -p ironseal-conformance --test external_ca`
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, reason = "tests: a panic is a test failure")]

use std::path::Path;

use instant_acme::NewOrder;
use ironseal_conformance::prelude::*;
use serde_json::Value;

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

/// The issuing CA of the hierarchy issues a leaf for `name`; returns
/// (leaf path, issuer path, the chain's certificates).
async fn issue_leaf(env: &Env, work: &Path, name: &str, tag: &str) -> (Issued, Vec<String>) {
    let (acct, _) = env.account().await;
    let issued = issue(&acct, &env.h01, None, &[dns(name)], None)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}\n{}", env.srv.log_tail()));
    let blocks = ironseal_conformance::certs::pem_blocks(&issued.chain);
    write(work, &format!("{tag}-chain.pem"), &issued.chain);
    (issued, blocks)
}

fn verify_to(root: &Path, untrusted: &Path, leaf: &Path) {
    let v = run(
        "openssl",
        &[
            "verify",
            "-x509_strict",
            "-CAfile",
            p(root),
            "-untrusted",
            p(untrusted),
            p(leaf),
        ],
    );
    assert!(
        v.success() && v.stdout.contains(": OK"),
        "chain does not verify to {}:\n{}",
        root.display(),
        v.describe()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_root_external_csr_and_imported_cas() {
    let mut env = Env::start("external-ca").await;
    let work = env.path().join("external-ca");
    std::fs::create_dir_all(&work).unwrap();
    let srv = &env.srv;

    // ----------------------------------------------------------- 1. root
    let root_pem = openssl_root(&work, "offline", "Offline Root", 1);
    let root = admin_ok(
        srv,
        &[
            "cas",
            "register-external",
            "--name",
            "Offline Root",
            "--cert",
            p(&root_pem),
        ],
    );
    let root_id = id_of(&root);
    assert!(root_id.starts_with("root-"), "{root:#}");
    assert_eq!(root["status"], "external");
    assert_eq!(root["keyHeld"], false);
    assert_eq!(root["parent"], Value::Null);
    assert_eq!(root["issuing"], false);
    assert_eq!(
        root["pathLen"],
        Value::Null,
        "no key: not loaded as a signer"
    );
    admin_err(
        srv,
        &[
            "cas",
            "register-external",
            "--name",
            "Again",
            "--cert",
            p(&root_pem),
        ],
        409,
        "ca_exists",
    );
    // Served over plain HTTP like every CA certificate.
    let der = work.join("offline-served.der");
    let url = format!("{}/ca/{root_id}.der", srv.http_base_url());
    let r = ironseal_conformance::client::get(&url, None).unwrap();
    assert_eq!(r.status, 200, "GET {url}: {}", r.describe());
    std::fs::write(&der, &r.body).unwrap();
    let root_der = work.join("offline.der");
    run(
        "openssl",
        &[
            "x509",
            "-in",
            p(&root_pem),
            "-outform",
            "DER",
            "-out",
            p(&root_der),
        ],
    )
    .expect_success("openssl x509 -outform DER");
    assert_eq!(
        std::fs::read(&der).unwrap(),
        std::fs::read(&root_der).unwrap()
    );
    // ironseal holds no key for it: it certifies nothing here.
    admin_err(
        srv,
        &[
            "cas",
            "create",
            "--name",
            "Under Offline",
            "--parent",
            &root_id,
            "--validity-days",
            "30",
        ],
        409,
        "ca_external",
    );

    // ------------------------------------------------------ 2. CSR flow
    let csr_path = work.join("issuing.csr");
    let pending = admin_ok(
        srv,
        &[
            "cas",
            "csr",
            "--name",
            "Offline-signed Issuing CA",
            "--algorithm",
            "p384",
            "--path-len",
            "0",
            "--permit",
            "dns:ext.test",
            "--permit",
            "dns:localhost",
            "--permit",
            "ip:127.0.0.1/32",
            "--out",
            p(&csr_path),
        ],
    );
    let pending_id = id_of(&pending);
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["certificatePem"], Value::Null);
    assert_eq!(pending["algorithm"], "p384");
    assert_eq!(
        pending["csrPem"].as_str().unwrap(),
        std::fs::read_to_string(&csr_path).unwrap()
    );
    let req_text = run(
        "openssl",
        &["req", "-in", p(&csr_path), "-noout", "-verify", "-text"],
    );
    req_text.expect_success("openssl req -verify");
    let t = req_text.combined();
    assert!(
        t.contains("CA:TRUE, pathlen:0")
            && t.contains("DNS:ext.test")
            && t.contains("secp384r1")
            && t.contains("Offline-signed Issuing CA"),
        "request lacks what was asked for:\n{t}"
    );
    admin_err(srv, &["cas", "activate", &pending_id], 409, "ca_pending");

    // The offline root decides what it signs: here the constraints asked
    // for, written by openssl.
    let issuing_ext = format!(
        "{}nameConstraints = critical,permitted;DNS:ext.test,permitted;DNS:localhost,\
         permitted;IP:127.0.0.1/255.255.255.255\n",
        ca_extensions(0)
    );
    // Refused: a certificate for another key...
    let other_csr = openssl_key_and_csr(&work, "other", "/O=ironseal/CN=Other Key", &[]).1;
    let other = openssl_sign(&work, &other_csr, "offline", &issuing_ext, "other.pem", 365);
    admin_err(
        srv,
        &["cas", "import-signed", &pending_id, "--cert", p(&other)],
        422,
        "key_mismatch",
    );
    // ... our key but not a CA ...
    let not_ca = openssl_sign(
        &work,
        &csr_path,
        "offline",
        "basicConstraints = critical,CA:false\nkeyUsage = critical,digitalSignature\n",
        "not-ca.pem",
        365,
    );
    admin_err(
        srv,
        &["cas", "import-signed", &pending_id, "--cert", p(&not_ca)],
        422,
        "not_a_ca",
    );
    // ... signed by a root nobody registered ...
    openssl_root(&work, "stranger", "Stranger Root", 1);
    let stranger = openssl_sign(
        &work,
        &csr_path,
        "stranger",
        &issuing_ext,
        "stranger.pem",
        365,
    );
    admin_err(
        srv,
        &["cas", "import-signed", &pending_id, "--cert", p(&stranger)],
        422,
        "issuer_unknown",
    );
    // ... or no certificate at all.
    let junk = write(
        &work,
        "junk.pem",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    admin_err(
        srv,
        &["cas", "import-signed", &pending_id, "--cert", p(&junk)],
        400,
        "bad_request",
    );
    // Nothing was lost: still pending, same request.
    let still = admin_ok(srv, &["cas", "show", &pending_id]);
    assert_eq!(still["status"], "pending");
    assert_eq!(still["csrPem"], pending["csrPem"]);

    let issuing_pem = openssl_sign(
        &work,
        &csr_path,
        "offline",
        &issuing_ext,
        "issuing.pem",
        365,
    );
    let imported = admin_ok(
        srv,
        &[
            "cas",
            "import-signed",
            &pending_id,
            "--cert",
            p(&issuing_pem),
        ],
    );
    assert_eq!(imported["status"], "active");
    assert_eq!(imported["parent"], root_id.as_str());
    assert_eq!(imported["csrPem"], Value::Null);
    assert_eq!(imported["pathLen"], 0);
    admin_err(
        srv,
        &[
            "cas",
            "import-signed",
            &pending_id,
            "--cert",
            p(&issuing_pem),
        ],
        409,
        "not_pending",
    );
    let act = admin_ok(srv, &["cas", "activate", &pending_id]);
    assert_eq!(act["issuing"], true);

    // ACME under the offline root: chain = leaf + issuing CA (the root is
    // the relying party's), verified by openssl and linted by pkilint.
    let (issued, blocks) = issue_leaf(&env, &work, "a.ext.test", "a").await;
    assert_eq!(blocks.len(), 2, "leaf and the offline-signed CA");
    let norm = |s: &str| s.split_whitespace().collect::<String>();
    assert_eq!(
        norm(&blocks[1]),
        norm(&std::fs::read_to_string(&issuing_pem).unwrap())
    );
    let leaf = blocking(|| {
        ironseal_conformance::certs::check_issued(
            &work.join("a-chain.pem"),
            &["a.ext.test"],
            &root_pem,
            &work,
            &[],
        )
    });
    verify_to(&root_pem, &issuing_pem, &leaf);
    // The offline root's name constraints hold for ACME.
    let (acct, _) = env.account().await;
    let e = acct
        .new_order(&NewOrder::new(&[dns("b.other.test")]))
        .await
        .err()
        .expect("b.other.test is outside the offline root's constraints");
    assert_eq!(api_type(&e), format!("{ERR}rejectedIdentifier"), "{e}");

    // Revocation reaches OCSP and the CRL of the imported CA.
    assert_eq!(
        ocsp_status(srv, &issuing_pem, &leaf, &root_pem, &issuing_pem),
        "good"
    );
    let serial = der_serial(&issued.leaf_der);
    admin_ok(
        srv,
        &["cert", "revoke", &serial, "--reason", "keyCompromise"],
    );
    assert_eq!(
        ocsp_status(srv, &issuing_pem, &leaf, &root_pem, &issuing_pem),
        "revoked"
    );
    let crl_der = blocking(|| crl_fetch(&crl_dp(&leaf), &work));
    let chain_file = write(
        &work,
        "issuing+root.pem",
        &format!(
            "{}{}",
            std::fs::read_to_string(&issuing_pem).unwrap(),
            std::fs::read_to_string(&root_pem).unwrap()
        ),
    );
    blocking(|| crl_check(&crl_der, &chain_file));
    let crl_pem = work.join("issuing-crl.pem");
    run(
        "openssl",
        &[
            "crl",
            "-inform",
            "DER",
            "-in",
            p(&crl_der),
            "-out",
            p(&crl_pem),
        ],
    )
    .expect_success("openssl crl");
    let v = run(
        "openssl",
        &[
            "verify",
            "-crl_check",
            "-CAfile",
            p(&root_pem),
            "-untrusted",
            p(&issuing_pem),
            "-CRLfile",
            p(&crl_pem),
            p(&leaf),
        ],
    );
    assert!(
        !v.success() && v.combined().contains("certificate revoked"),
        "openssl verify -crl_check should report the revocation:\n{}",
        v.describe()
    );

    // ------------------------------------------- 3. existing CA with key
    let legacy_csr =
        openssl_key_and_csr(&work, "legacy", "/O=Offline Org/CN=Legacy Issuing CA", &[]).1;
    let legacy_pem = openssl_sign(
        &work,
        &legacy_csr,
        "offline",
        &ca_extensions(0),
        "legacy.pem",
        300,
    );
    let legacy_key = work.join("legacy.key");
    // The wrong key is refused.
    admin_err(
        srv,
        &[
            "cas",
            "import",
            "--name",
            "Legacy",
            "--cert",
            p(&legacy_pem),
            "--key",
            p(&work.join("other.key")),
        ],
        422,
        "key_mismatch",
    );
    let legacy = admin_ok(
        srv,
        &[
            "cas",
            "import",
            "--name",
            "Legacy Issuing CA",
            "--cert",
            p(&legacy_pem),
            "--key",
            p(&legacy_key),
        ],
    );
    let legacy_id = id_of(&legacy);
    assert_eq!(legacy["status"], "active");
    assert_eq!(legacy["parent"], root_id.as_str());
    assert_eq!(legacy["algorithm"], "p256");
    assert_eq!(legacy["keyHeld"], true);
    admin_err(
        srv,
        &[
            "cas",
            "import",
            "--name",
            "Legacy again",
            "--cert",
            p(&legacy_pem),
            "--key",
            p(&legacy_key),
        ],
        409,
        "ca_exists",
    );
    admin_ok(srv, &["cas", "activate", &legacy_id]);
    let list = admin_ok(srv, &["cas", "list"]);
    assert_eq!(ca_in(&list, &pending_id)["status"], "retiring");
    let (_, blocks) = issue_leaf(&env, &work, "legacy.test", "legacy").await;
    assert_eq!(
        norm(&blocks[1]),
        norm(&std::fs::read_to_string(&legacy_pem).unwrap())
    );
    let legacy_leaf = write(&work, "legacy-leaf.pem", &blocks[0]);
    verify_to(&root_pem, &legacy_pem, &legacy_leaf);

    // An existing root with its key: a new trust anchor that certifies.
    let own_root_pem = openssl_root(&work, "ownroot", "Imported Root", 2);
    let own_root = admin_ok(
        srv,
        &[
            "cas",
            "import",
            "--name",
            "Imported Root",
            "--cert",
            p(&own_root_pem),
            "--key",
            p(&work.join("ownroot.key")),
        ],
    );
    let own_root_id = id_of(&own_root);
    assert!(own_root_id.starts_with("root-"), "{own_root:#}");
    assert_eq!(own_root["parent"], Value::Null);
    let child = admin_ok(
        srv,
        &[
            "cas",
            "create",
            "--name",
            "Under Imported Root",
            "--parent",
            &own_root_id,
            "--validity-days",
            "100",
            "--path-len",
            "0",
        ],
    );
    let child_pem = write(
        &work,
        "child.pem",
        child["certificatePem"].as_str().unwrap(),
    );
    let v = run(
        "openssl",
        &[
            "verify",
            "-x509_strict",
            "-CAfile",
            p(&own_root_pem),
            p(&child_pem),
        ],
    );
    assert!(v.success(), "child of the imported root:\n{}", v.describe());

    // ------------------------------------------------------ 4. restart
    env.srv.kill9();
    env.srv.start();
    let srv = &env.srv;
    let list = admin_ok(srv, &["cas", "list"]);
    assert_eq!(ca_in(&list, &root_id)["status"], "external");
    assert_eq!(ca_in(&list, &legacy_id)["issuing"], true);
    assert_eq!(ca_in(&list, &pending_id)["parent"], root_id.as_str());
    assert_eq!(ca_in(&list, &own_root_id)["keyHeld"], true);
    // The HTTPS listener now chains to the offline root, which the
    // server publishes as its root.pem.
    assert_eq!(
        norm(&std::fs::read_to_string(srv.root()).unwrap()),
        norm(&std::fs::read_to_string(&root_pem).unwrap())
    );
    let (_, blocks) = issue_leaf(&env, &work, "after.test", "after").await;
    let after_leaf = write(&work, "after-leaf.pem", &blocks[0]);
    verify_to(&root_pem, &legacy_pem, &after_leaf);

    // The audit log names every step and never holds a private key.
    let out = admin(&env.srv, &["audit", "--limit", "1000"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let audit = out.stdout;
    for action in [
        "ca.register-external",
        "ca.csr",
        "ca.import-signed",
        "ca.import",
    ] {
        assert!(
            audit.contains(&format!("\"{action}\"")),
            "no {action} in the audit log"
        );
    }
    let key_text = std::fs::read_to_string(&legacy_key).unwrap();
    let key_body: String = key_text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(!audit.contains("PRIVATE KEY"), "audit log holds a PEM key");
    assert!(
        !audit.contains(&key_body[30..60]),
        "audit log holds part of the imported key"
    );
    assert!(audit.contains("<redacted>"), "import summary not redacted");
}
