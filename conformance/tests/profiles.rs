//! Issuance profiles (draft-ietf-acme-profiles) configured with
//! `[[profiles]]` in the `--config` file: the directory advertises them,
//! newOrder selects one, finalize enforces its key types, and the
//! certificate carries its extKeyUsage and lifetime.
//!
//! Run: `cargo build --release -p ironseal && cargo test -p ironseal-conformance --test profiles`

#![allow(clippy::unwrap_used, reason = "tests: a panic is a test failure")]

use std::path::Path;
use std::process::Command;

use instant_acme::{Account, NewOrder};
use ironseal_conformance::prelude::*;

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
    // --config combines with the flags the harness passes (command line wins
    // over the file; the file holds only the profiles here).
    Env::start_with_config(name, CONFIG).await
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
async fn configured_profiles_set_key_types_eku_and_lifetime() {
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

/// A profile's `ca` picks the CA that signs under it: a team CA made
/// through the admin CLI issues that profile's leaves (its chain, its name
/// constraints), while orders without a profile stay with the issuing CA;
/// once the team CA is retired the profile fails with a problem that
/// names the cause, and other profiles keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_selects_its_signing_ca() {
    use ironseal_conformance::pki::{admin_ok, ca_in, write};

    let mut env = Env::start("profiles-ca").await;
    let work = env.path().join("profile-ca");
    std::fs::create_dir_all(&work).unwrap();
    let list = admin_ok(&env.srv, &["cas", "list"]);
    let cas = list["cas"].as_array().unwrap();
    let issuing = cas.iter().find(|c| c["issuing"] == true).unwrap();
    let root_id = cas.iter().find(|c| c["parent"].is_null()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let issuing_pem = issuing["certificatePem"].as_str().unwrap().to_string();
    let team = admin_ok(
        &env.srv,
        &[
            "cas",
            "create",
            "--name",
            "Team CA",
            "--parent",
            &root_id,
            "--validity-days",
            "200",
            "--path-len",
            "0",
            "--permit",
            "dns:team.test",
        ],
    );
    let team_id = team["id"].as_str().unwrap().to_string();
    let team_pem = team["certificatePem"].as_str().unwrap().to_string();

    env.srv.set_config(&format!(
            "[[profiles]]\nname = \"default\"\ndescription = \"issuing CA\"\nlifetime_days = 30\nekus = [\"serverAuth\"]\n\n\
             [[profiles]]\nname = \"team\"\ndescription = \"Team CA, 10 days\"\n\
             lifetime_days = 10\nekus = [\"clientAuth\"]\nca = \"{team_id}\"\n"
    ));
    env.srv.kill9();
    env.srv.start();
    let (acct, _) = env.account().await;
    let norm = |s: &str| s.split_whitespace().collect::<String>();

    // The team profile: signed by the Team CA, its chain, its constraints.
    let issued = issue_with_profile(&env, &acct, "team", "svc.team.test")
        .await
        .unwrap_or_else(|e| panic!("team profile: {e}\n{}", env.srv.log_tail()));
    let blocks = ironseal_conformance::certs::pem_blocks(&issued.chain);
    assert_eq!(blocks.len(), 2, "leaf + Team CA");
    assert_eq!(norm(&blocks[1]), norm(&team_pem), "signed by the Team CA");
    let leaf = leaf_clean(&issued.chain, &work, "team");
    let team_file = write(&work, "team.pem", &team_pem);
    let v = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(env.srv.root())
        .arg("-untrusted")
        .arg(&team_file)
        .arg(&leaf)
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    assert_eq!(eku_line(&x509_text(&leaf)), "TLS Web Client Authentication");
    let days = lifetime_days(&leaf);
    assert!((9.9..=10.01).contains(&days), "team lifetime {days} days");
    let e = acct
        .new_order(&NewOrder::new(&[dns("svc.other.test")]).profile("team"))
        .await
        .err()
        .expect("svc.other.test is outside the Team CA's constraints");
    assert_eq!(api_type(&e), format!("{ERR}rejectedIdentifier"), "{e}");

    // No profile: the default profile, signed by the issuing CA.
    let issued = issue(&acct, &env.h01, None, &[dns("plain.example.test")], None)
        .await
        .unwrap();
    let blocks = ironseal_conformance::certs::pem_blocks(&issued.chain);
    assert_eq!(
        norm(&blocks[1]),
        norm(&issuing_pem),
        "signed by the issuing CA"
    );

    // A retired Team CA: the profile fails and says why; others still work.
    let r = admin_ok(&env.srv, &["cas", "status", &team_id, "retired"]);
    assert_eq!(r["status"], "retired");
    let e = acct
        .new_order(&NewOrder::new(&[dns("late.team.test")]).profile("team"))
        .await
        .err()
        .expect("a retired CA must not issue");
    assert_eq!(api_type(&e), format!("{ERR}serverInternal"), "{e}");
    assert!(e.to_string().contains(&team_id), "{e}");
    issue(&acct, &env.h01, None, &[dns("still.example.test")], None)
        .await
        .unwrap();
    let list = admin_ok(&env.srv, &["cas", "list"]);
    assert_eq!(ca_in(&list, &team_id)["status"], "retired");
}
