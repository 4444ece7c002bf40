//! Issuance profiles (draft-ietf-acme-profiles) configured with
//! `[[profiles]]` in the `--config` file: the directory advertises them,
//! newOrder selects one, finalize enforces its key types, and the
//! certificate carries its extKeyUsage and lifetime.
//!
//! Run: `cargo build --release -p ironseal && cargo test -p ironseal-conformance --test profiles`

#![allow(clippy::unwrap_used, reason = "tests: a panic is a test failure")]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use instant_acme::{Account, NewOrder};

const CONFIG: &str = r#"
[[profiles]]
name = "tls-server"
description = "TLS server certificates, 30 days, P-256 keys"
lifetime_days = 30
ekus = ["serverAuth"]
key_types = ["p256"]

[[profiles]]
name = "client"
description = "TLS client certificates, 7 days"
lifetime_days = 7
ekus = ["clientAuth"]
key_types = ["p256", "p384", "rsa", "ed25519"]
"#;

async fn start(name: &str) -> Env {
    let cfg = std::env::temp_dir().join(format!(
        "ironseal-profiles-{name}-{}.toml",
        std::process::id()
    ));
    std::fs::write(&cfg, CONFIG).expect("write config");
    let cfg = cfg.to_str().expect("utf-8 path").to_string();
    // --config combines with the flags the harness passes (command line wins
    // over the file; the file holds only the profiles here).
    Env::start_with(name, &["--config", &cfg]).await
}

/// `openssl x509 -text` of a PEM file.
fn x509_text(pem: &Path) -> String {
    let o = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(pem)
        .output()
        .expect("run openssl");
    assert!(o.status.success(), "openssl x509 failed");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The extKeyUsage line of `openssl x509 -text`.
fn eku_line(text: &str) -> String {
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l.contains("X509v3 Extended Key Usage") {
            return lines.next().unwrap_or_default().trim().to_string();
        }
    }
    panic!("no extKeyUsage in\n{text}");
}

/// Writes the leaf of `chain` and checks pkilint finds no ERROR/FATAL.
fn leaf_clean(chain: &str, work: &Path, tag: &str) -> std::path::PathBuf {
    let leaf = ironseal_conformance::certs::pem_blocks(chain)
        .into_iter()
        .next()
        .expect("leaf");
    let path = work.join(format!("{tag}-leaf.pem"));
    std::fs::write(&path, leaf).expect("write leaf");
    let findings = blocking(|| ironseal_conformance::certs::pkilint_errors(&path));
    assert!(
        findings.is_empty(),
        "pkilint findings for {tag}: {findings:#?}"
    );
    path
}

fn lifetime_days(pem: &Path) -> f64 {
    let (nb, na) = ironseal_conformance::certs::validity(pem);
    (na - nb).as_seconds_f64() / 86_400.0
}

async fn issue_with_profile(
    env: &Env,
    acct: &Account,
    profile: &str,
    name: &str,
) -> Result<Issued, String> {
    let idents = [dns(name)];
    let mut order = acct
        .new_order(&NewOrder::new(&idents).profile(profile))
        .await
        .map_err(|e| format!("newOrder: {e}"))?;
    finish(&mut order, &env.h01, None, &idents, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_profiles() {
    let env = start("profiles").await;
    let (acct, key) = env.account().await;

    // The directory lists exactly the configured profiles.
    let mut profiles: Vec<(String, String)> = acct
        .profiles()
        .map(|p| (p.name.to_string(), p.description.to_string()))
        .collect();
    profiles.sort();
    assert_eq!(
        profiles,
        vec![
            (
                "client".to_string(),
                "TLS client certificates, 7 days".to_string()
            ),
            (
                "tls-server".to_string(),
                "TLS server certificates, 30 days, P-256 keys".to_string()
            ),
        ]
    );

    // tls-server + P-256: serverAuth only, 30 days, pkilint clean, chain ok.
    let issued = issue_with_profile(&env, &acct, "tls-server", "srv.profiles.example.test")
        .await
        .unwrap();
    let chain = env.path().join("tls-server-chain.pem");
    std::fs::write(&chain, &issued.chain).unwrap();
    let leaf = blocking(|| {
        ironseal_conformance::certs::check_issued(
            &chain,
            &["srv.profiles.example.test"],
            &env.srv.root(),
            &env.path().join("checks"),
            &[],
        )
    });
    let text = x509_text(&leaf);
    assert_eq!(eku_line(&text), "TLS Web Server Authentication", "{text}");
    let days = lifetime_days(&leaf);
    assert!(
        (29.9..=30.01).contains(&days),
        "tls-server lifetime {days} days"
    );

    // The order echoes its profile.
    let raw = env.raw().await;
    let o = raw
        .signed(&key, Some(acct.id()), &issued.order_url, None)
        .await
        .json();
    assert_eq!(o["profile"], "tls-server", "{o}");

    // tls-server + RSA key: badCSR naming the profile and its key types.
    let rsa_pem = env.path().join("rsa.pem");
    let st = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&rsa_pem)
        .output()
        .expect("openssl genpkey");
    assert!(st.status.success(), "openssl genpkey failed");
    let rsa = rcgen::KeyPair::from_pem(&std::fs::read_to_string(&rsa_pem).unwrap())
        .expect("load RSA key");
    let idents = [dns("rsa.profiles.example.test")];
    let mut order = acct
        .new_order(&NewOrder::new(&idents).profile("tls-server"))
        .await
        .unwrap();
    authorize(&mut order, &env.h01, None).await.unwrap();
    let e = order
        .finalize_csr(&csr(&["rsa.profiles.example.test".to_string()], &rsa))
        .await
        .expect_err("RSA CSR accepted under tls-server");
    assert_eq!(api_type(&e), format!("{ERR}badCSR"), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("tls-server") && msg.contains("p256"),
        "badCSR detail should name the profile and allowed key types: {msg}"
    );

    // client: clientAuth only, 7 days, pkilint clean.
    let issued = issue_with_profile(&env, &acct, "client", "cli.profiles.example.test")
        .await
        .unwrap();
    let leaf = leaf_clean(&issued.chain, env.path(), "client");
    let text = x509_text(&leaf);
    assert_eq!(eku_line(&text), "TLS Web Client Authentication", "{text}");
    let days = lifetime_days(&leaf);
    assert!((6.9..=7.01).contains(&days), "client lifetime {days} days");

    // A notAfter beyond the profile's lifetime is refused at newOrder.
    let now = time::OffsetDateTime::now_utc();
    let too_long = (now + time::Duration::days(8))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    raw.signed(
        &key,
        Some(acct.id()),
        &raw.url("newOrder"),
        Some(&serde_json::json!({
            "identifiers": [{"type": "dns", "value": "long.profiles.example.test"}],
            "profile": "client",
            "notAfter": too_long,
        })),
    )
    .await
    .expect_problem(400, "malformed", "notAfter beyond the client profile");

    // Unknown profile, and "default" is not offered when not configured.
    for p in ["no-such-profile", "default"] {
        let e = acct
            .new_order(&NewOrder::new(&[dns("x.profiles.example.test")]).profile(p))
            .await
            .err()
            .unwrap_or_else(|| panic!("profile {p:?} accepted"));
        assert_eq!(api_type(&e), format!("{ERR}invalidProfile"), "{e}");
    }
}
