//! Cross-signing through the admin API, black box: a second root R2 is
//! created, the issuing intermediate is cross-signed by R2 (`ironseal admin
//! cas cross-sign`), an ACME leaf is issued and its certificate URL offers
//! an alternate chain (`Link: rel="alternate"` → `.../1`) carrying the
//! cross certificate. openssl verifies the leaf through the default chain
//! to the original root and through the alternate chain to R2; pkilint
//! finds no ERROR in the cross certificate.
//!
//! Run: `cargo build --release -p ironseal && cargo test -p ironseal-conformance --test cross_sign`
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, reason = "tests: a panic is a test failure")]

use std::path::Path;

use ironseal_conformance::prelude::*;
use ironseal_conformance::proc;

fn verify(ca_file: &Path, untrusted: &Path, leaf: &Path) -> proc::Output {
    run(
        "openssl",
        &[
            "verify",
            "-CAfile",
            p(ca_file),
            "-untrusted",
            p(untrusted),
            p(leaf),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_signed_intermediate_offers_alternate_chain() {
    let env = Env::start("cross-sign").await;
    let srv = &env.srv;
    let work = env.path().join("cross-sign");
    std::fs::create_dir_all(&work).unwrap();

    let before = admin_ok(srv, &["cas", "list"]);
    let issuing = issuing_in(&before).clone();
    let issuing_id = issuing["id"].as_str().unwrap().to_string();
    assert_eq!(issuing["crossCertificates"], serde_json::json!([]));

    let r2 = admin_ok(
        srv,
        &[
            "cas",
            "create",
            "--name",
            "Cross Root R2",
            "--algorithm",
            "p256",
            "--validity-days",
            "3650",
        ],
    );
    let r2_id = r2["id"].as_str().unwrap().to_string();
    let r2_pem = write(&work, "r2.pem", r2["certificatePem"].as_str().unwrap());

    let crossed = admin_ok(
        srv,
        &[
            "cas",
            "cross-sign",
            &issuing_id,
            "--by",
            &r2_id,
            "--validity-days",
            "365",
        ],
    );
    assert_eq!(crossed["id"], issuing_id.as_str());
    assert_eq!(crossed["crossCertificates"][0]["by"], r2_id.as_str());
    let cross_pem = write(
        &work,
        "cross.pem",
        crossed["crossCertificatePem"].as_str().unwrap(),
    );

    // The cross certificate: same subject and key as the intermediate,
    // issued by R2, and RFC 5280-clean.
    let subj = |f: &Path| {
        let o = run(
            "openssl",
            &[
                "x509",
                "-noout",
                "-subject",
                "-issuer",
                "-pubkey",
                "-in",
                p(f),
            ],
        );
        o.expect_success("openssl x509");
        o.stdout
    };
    let issuing_pem = write(
        &work,
        "issuing.pem",
        issuing["certificatePem"].as_str().unwrap(),
    );
    let c = subj(&cross_pem);
    let i = subj(&issuing_pem);
    let r = subj(&r2_pem);
    let line = |s: &str, k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .unwrap_or_default()
            .trim_start_matches(k)
            .to_string()
    };
    assert_eq!(line(&c, "subject="), line(&i, "subject="));
    assert_eq!(line(&c, "issuer="), line(&r, "subject="));
    assert!(c.contains(i.split("-----BEGIN PUBLIC KEY-----").nth(1).unwrap()));
    let findings = blocking(|| ironseal_conformance::certs::pkilint_errors(&cross_pem));
    assert!(findings.is_empty(), "pkilint cross.pem: {findings:#?}");

    // ACME: the default chain goes to the original root, chain 1 to R2.
    let (acct, key) = env.account().await;
    let issued = issue(&acct, &env.h01, None, &[dns("x.cross.test")], None)
        .await
        .unwrap_or_else(|e| panic!("x.cross.test: {e}\n{}", srv.log_tail()));
    let raw = env.raw().await;
    let r = raw
        .signed(&key, Some(acct.id()), &issued.cert_url, None)
        .await;
    r.expect_status(200, "certificate POST-as-GET");
    let links = r.headers_all("link");
    let alt_url = format!("{}/1", issued.cert_url);
    assert!(
        links
            .iter()
            .any(|l| l.contains(&format!("<{alt_url}>")) && l.contains("rel=\"alternate\"")),
        "no Link rel=alternate to {alt_url}: {links:?}"
    );
    let default_chain = r.text();
    let blocks = ironseal_conformance::certs::pem_blocks(&default_chain);
    let leaf = write(&work, "leaf.pem", &blocks[0]);
    let default_rest = write(&work, "default-chain.pem", &blocks[1..].concat());

    let r = raw.signed(&key, Some(acct.id()), &alt_url, None).await;
    r.expect_status(200, "alternate chain POST-as-GET");
    let links = r.headers_all("link");
    assert!(
        links
            .iter()
            .any(|l| l.contains(&format!("<{}>", issued.cert_url))
                && l.contains("rel=\"alternate\"")),
        "chain 1 does not link back to chain 0: {links:?}"
    );
    let alt_blocks = ironseal_conformance::certs::pem_blocks(&r.text());
    let norm = |s: &str| s.split_whitespace().collect::<String>();
    assert_eq!(norm(&alt_blocks[0]), norm(&blocks[0]), "same leaf");
    assert_eq!(
        norm(&alt_blocks[1]),
        norm(crossed["crossCertificatePem"].as_str().unwrap()),
        "chain 1 carries the cross certificate"
    );
    let alt_rest = write(&work, "alt-chain.pem", &alt_blocks[1..].concat());

    let v = verify(&r2_pem, &alt_rest, &leaf);
    assert!(
        v.success() && v.stdout.contains(": OK"),
        "alternate chain does not verify to R2:\n{}",
        v.describe()
    );
    let v = verify(&srv.root(), &default_rest, &leaf);
    assert!(
        v.success() && v.stdout.contains(": OK"),
        "default chain does not verify to the original root:\n{}",
        v.describe()
    );
    // And the default chain does not reach R2.
    let v = verify(&r2_pem, &default_rest, &leaf);
    assert!(!v.success(), "default chain must not verify to R2");

    // No third chain.
    let r = raw
        .signed(
            &key,
            Some(acct.id()),
            &format!("{}/2", issued.cert_url),
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.describe());

    let audit = admin_ok(srv, &["audit", "--limit", "1000"]);
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"ca.cross-sign"), "{actions:?}");
}
