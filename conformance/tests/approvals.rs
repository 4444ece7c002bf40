//! Two-person integrity with real clients: a profile that requires
//! approval holds certbot's order in `processing` until an operator
//! approves it (then certbot gets its certificate) or rejects it (then
//! certbot fails, told it was rejected); an admin-API request cannot be
//! approved by its own requester; every decision is audited.

use std::time::{Duration, Instant};

use ironseal_conformance::certs;
use ironseal_conformance::clients::Certbot;
use ironseal_conformance::pki::openssl_key_and_csr;
use ironseal_conformance::subject::Subject;
use ironseal_conformance::TestEnv;
use serde_json::{json, Value};

const CONFIG: &str = r#"
[[profiles]]
name = "default"
lifetime_days = 90
ekus = ["serverAuth", "clientAuth"]

[[profiles]]
name = "sensitive"
description = "held for a second person's approval"
lifetime_days = 30
ekus = ["serverAuth"]
requires_approval = true
"#;

fn admin(env: &TestEnv, key: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = format!("{}{path}", env.server.base_url);
    let auth = format!("Bearer {key}");
    let text = body.map(|b| b.to_string());
    let mut headers = vec![("Authorization", auth.as_str())];
    if text.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    let r = env
        .server
        .client()
        .request_blocking(
            method,
            &url,
            &headers,
            text.unwrap_or_default().into_bytes(),
        )
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    (
        r.status,
        serde_json::from_str(&r.text()).unwrap_or(Value::Null),
    )
}

fn new_key(env: &TestEnv, name: &str, role: &str) -> String {
    let root = env.server.admin_key.clone().expect("admin key");
    let (st, v) = admin(
        env,
        &root,
        "POST",
        "/admin/v1/keys",
        Some(json!({"name": name, "role": role})),
    );
    assert_eq!(st, 201, "{v}");
    v["key"].as_str().expect("key").to_string()
}

/// Waits for one pending approval requested over `protocol`.
fn pending(env: &TestEnv, key: &str, protocol: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (st, v) = admin(env, key, "GET", "/admin/v1/approvals?status=pending", None);
        assert_eq!(st, 200, "{v}");
        if let Some(a) = v["approvals"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["protocol"] == protocol))
        {
            return a.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no pending {protocol} approval appeared"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn certbot_args(env: &TestEnv, name: &str, domain: &str) -> Vec<String> {
    [
        "--standalone",
        "--preferred-challenges",
        "http-01",
        "--http-01-address",
        "127.0.0.1",
        "--http-01-port",
        &env.server.http01_port.to_string(),
        "--required-profile",
        "sensitive",
        "--cert-name",
        name,
        "-d",
        domain,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn certbot_waits_through_approval_and_rejection() {
    let cfg_dir = tempfile::tempdir().expect("tempdir");
    let cfg = cfg_dir.path().join("ironseal.toml");
    std::fs::write(&cfg, CONFIG).expect("write config");
    let env = TestEnv::start_with(&["--config", cfg.to_str().expect("utf-8")]);
    if env.subject == Subject::Pebble {
        eprintln!("[conformance] SKIPPED for pebble: approvals are ironseal's");
        return;
    }
    let approver = new_key(&env, "approver", "operator");

    // certbot asks for the held profile; it polls while we approve.
    let cb = Certbot::new(&env, "held");
    let args = certbot_args(&env, "held", "held.example.test");
    let started = Instant::now();
    let (outcome, approval) = std::thread::scope(|s| {
        let run = s.spawn(|| {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            cb.certonly(&a)
        });
        let a = pending(&env, &approver, "acme");
        assert_eq!(a["profile"], "sensitive");
        assert_eq!(a["names"], json!(["dns:held.example.test"]));
        assert!(a["order"].is_string(), "the approval names its order: {a}");
        std::thread::sleep(Duration::from_secs(2)); // certbot is polling meanwhile
        let (st, decided) = admin(
            &env,
            &approver,
            "POST",
            &format!(
                "/admin/v1/approvals/{}/approve",
                a["id"].as_str().unwrap_or("")
            ),
            Some(json!({"comment": "change ticket 42"})),
        );
        assert_eq!(st, 200, "{decided}");
        (run.join().expect("certbot thread"), decided)
    });
    assert!(
        outcome.success(),
        "certbot did not get the certificate after approval:\n{}\n{}",
        outcome.describe(),
        env.server_log()
    );
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "certbot cannot have finished before the approval"
    );
    let chain = cb.live("held", "fullchain.pem");
    env.check_issued(&chain, &["held.example.test"]);
    assert_eq!(approval["status"], "approved");
    assert_eq!(
        approval["certificate"].as_str(),
        Some(certs::serial_hex(&chain).as_str())
    );
    assert!(approval["decidedBy"]
        .as_str()
        .is_some_and(|d| d.starts_with("key:")));

    // A rejected request fails certbot with a problem that says so.
    let args = certbot_args(&env, "no", "no.example.test");
    let outcome = std::thread::scope(|s| {
        let run = s.spawn(|| {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            cb.certonly(&a)
        });
        let a = pending(&env, &approver, "acme");
        let (st, v) = admin(
            &env,
            &approver,
            "POST",
            &format!(
                "/admin/v1/approvals/{}/reject",
                a["id"].as_str().unwrap_or("")
            ),
            Some(json!({"comment": "not this one"})),
        );
        assert_eq!((st, v["status"].as_str()), (200, Some("rejected")), "{v}");
        run.join().expect("certbot thread")
    });
    assert!(!outcome.success(), "certbot must fail after a rejection");
    let log = format!(
        "{}\n{}",
        outcome.combined(),
        std::fs::read_to_string(cb.log_file()).unwrap_or_default()
    );
    assert!(
        log.contains("rejected by an approver"),
        "{}",
        outcome.describe()
    );
    assert!(
        log.contains("not this one"),
        "the approver's comment reaches the client"
    );
    assert!(!cb.live("no", "fullchain.pem").exists());
}

#[test]
fn admin_requests_need_a_second_person() {
    let cfg_dir = tempfile::tempdir().expect("tempdir");
    let cfg = cfg_dir.path().join("ironseal.toml");
    std::fs::write(&cfg, CONFIG).expect("write config");
    let env = TestEnv::start_with(&["--config", cfg.to_str().expect("utf-8")]);
    if env.subject == Subject::Pebble {
        eprintln!("[conformance] SKIPPED for pebble: approvals are ironseal's");
        return;
    }
    let alice = new_key(&env, "alice", "operator");
    let bob = new_key(&env, "bob", "operator");
    let auditor = new_key(&env, "carol", "auditor");
    let dir = env.path().join("csr");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let (_, csr) = openssl_key_and_csr(
        &dir,
        "r",
        "/CN=svc.example.test",
        &["-addext", "subjectAltName=DNS:svc.example.test"],
    );
    let pem = std::fs::read_to_string(&csr).expect("csr");

    // Without approval the default profile issues at once.
    let (st, v) = admin(
        &env,
        &alice,
        "POST",
        "/admin/v1/certificates",
        Some(json!({"csrPem": pem})),
    );
    assert_eq!(st, 201, "{v}");
    assert!(v["certificatePem"]
        .as_str()
        .is_some_and(|p| p.contains("BEGIN CERTIFICATE")));
    let chain_pem = v["chainPem"].as_str().expect("chainPem").to_string();

    // The sensitive profile: 202 and a held request.
    let (st, v) = admin(
        &env,
        &alice,
        "POST",
        "/admin/v1/certificates",
        Some(json!({"csrPem": pem, "profile": "sensitive"})),
    );
    assert_eq!(st, 202, "{v}");
    let id = v["approval"]["id"]
        .as_str()
        .expect("approval id")
        .to_string();
    let approve = |k: &str| {
        admin(
            &env,
            k,
            "POST",
            &format!("/admin/v1/approvals/{id}/approve"),
            Some(json!({})),
        )
    };
    let (st, v) = approve(&alice);
    assert_eq!(
        (st, v["code"].as_str()),
        (403, Some("unauthorized")),
        "the requester approved itself: {v}"
    );
    let (st, _) = approve(&auditor);
    assert_eq!(st, 403, "an auditor cannot approve");
    let (st, v) = approve(&bob);
    assert_eq!(st, 200, "{v}");
    let serial = v["certificate"]
        .as_str()
        .expect("issued serial")
        .to_string();
    let (st, v) = approve(&bob);
    assert_eq!(
        (st, v["code"].as_str()),
        (409, Some("conflict")),
        "decided twice: {v}"
    );

    // The issued certificate verifies and passes the linters.
    let (st, c) = admin(
        &env,
        &alice,
        "GET",
        &format!("/admin/v1/certificates/{serial}"),
        None,
    );
    assert_eq!(st, 200);
    assert_eq!(c["profile"], "sensitive");
    assert_eq!(c["protocol"], "admin");
    let full = dir.join("full.pem");
    let leaf = c["certificatePem"].as_str().expect("certificatePem");
    std::fs::write(&full, format!("{leaf}{chain_pem}")).expect("write");
    assert_eq!(certs::serial_hex(&full), serial);
    env.check_issued(&full, &["svc.example.test"]);

    // The audit log has the request, the refused self-approval is not a
    // decision, and the approval by bob is.
    let root = env.server.admin_key.clone().expect("admin key");
    let (_, audit) = admin(&env, &root, "GET", "/admin/v1/audit?limit=1000", None);
    let entries = audit["entries"].as_array().expect("entries");
    let has = |action: &str, needle: &str| {
        entries.iter().any(|e| {
            e["action"] == action && e["summary"].as_str().is_some_and(|s| s.contains(needle))
        })
    };
    assert!(has("approval.request", &id), "approval.request missing");
    assert!(has("approval.approved", &id), "approval.approved missing");
    assert!(
        has("certificate.issue", &format!("approval={id}")),
        "issuance does not name its approval"
    );
    let decisions = entries
        .iter()
        .filter(|e| e["action"] == "approval.approved")
        .count();
    assert_eq!(decisions, 1);
}
