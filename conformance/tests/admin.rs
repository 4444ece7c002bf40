//! The admin API and CLI, black box: the release binary serves, the same
//! binary's `ironseal admin ...` and the harness HTTP client call it over HTTPS, openssl checks
//! the CRL and the OCSP responder after revocations.
//!
//! Covers: roles (auditor cannot revoke: 403; operator cannot create keys:
//! 403; wrong key: 401), unknown JSON fields (400), revocation by serial of
//! an ACME-issued certificate (CRL lists it, `openssl ocsp` says revoked,
//! keyCompromise blocks the key for new orders), bulk revocation, the CA
//! list, key deletion, and the audit log (every call with its outcome,
//! ACME revocations and CA events included; the hash chain verifies).
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, reason = "tests: a panic is a test failure")]

use std::path::Path;

use instant_acme::{RevocationReason, RevocationRequest};
use ironseal_conformance::pki::CliOut as Out;
use ironseal_conformance::prelude::*;
use rustls_pki_types::CertificateDer;
use serde_json::Value;

/// `ironseal admin` with one API key.
struct Cli<'a> {
    srv: &'a Server,
    key: String,
}

impl<'a> Cli<'a> {
    fn new(srv: &'a Server, key: &str) -> Cli<'a> {
        Cli {
            srv,
            key: key.to_string(),
        }
    }

    fn run(&self, args: &[&str]) -> Out {
        admin_as(self.srv, &self.key, args, None)
    }

    fn run_stdin(&self, args: &[&str], file: Option<&Path>) -> Out {
        admin_as(self.srv, &self.key, args, file)
    }
}

/// One admin API call with an API key: (HTTP status, body).
fn call(srv: &Server, method: &str, path: &str, key: &str, body: Option<&str>) -> (u16, String) {
    let r = srv
        .call(method, path, Some(key), body)
        .unwrap_or_else(|e| panic!("{e}"));
    (r.status, r.text())
}

/// `openssl ocsp` status line for `leaf` ("good", "revoked", ...).
fn ocsp_status(srv: &Server, work: &Path, issued: &Issued, tag: &str) -> String {
    let blocks = ironseal_conformance::certs::pem_blocks(&issued.chain);
    let leaf = write(work, &format!("{tag}-leaf.pem"), &blocks[0]);
    let issuer = write(work, &format!("{tag}-issuer.pem"), &blocks[1]);
    ironseal_conformance::pki::ocsp_status(srv, &issuer, &leaf, &srv.root(), &issuer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_cli_roles_revocation_audit() {
    let env = Env::start("admin").await;
    let srv = &env.srv;
    let work = env.path().join("admin");
    std::fs::create_dir_all(&work).unwrap();
    let (acct, _) = env.account().await;
    let mut certs = Vec::new();
    for i in 0..5 {
        let name = format!("admin-{i}.example.test");
        certs.push(
            issue(&acct, &env.h01, None, &[dns(&name)], None)
                .await
                .unwrap(),
        );
    }

    // --- identity and keys
    let admin = Cli::new(srv, &srv.admin_key);
    let me = admin.run(&["whoami"]).ok("admin whoami");
    assert_eq!(me["role"], "admin", "{me}");
    assert_eq!(me["id"], "initial", "{me}");
    let op = admin
        .run(&["keys", "create", "--name", "ops team", "--role", "operator"])
        .ok("create operator key");
    let op_key = op["key"].as_str().unwrap().to_string();
    let op_id = op["id"].as_str().unwrap().to_string();
    assert!(op_key.starts_with(&format!("isk_{op_id}_")), "{op}");
    let aud = admin
        .run(&["keys", "create", "--name", "audit", "--role", "auditor"])
        .ok("create auditor key");
    let aud_key = aud["key"].as_str().unwrap().to_string();
    let aud_id = aud["id"].as_str().unwrap().to_string();
    let operator = Cli::new(srv, &op_key);
    let auditor = Cli::new(srv, &aud_key);
    assert_eq!(
        operator.run(&["whoami"]).ok("op whoami")["role"],
        "operator"
    );
    assert_eq!(auditor.run(&["whoami"]).ok("aud whoami")["role"], "auditor");
    let keys = admin.run(&["keys", "list"]).ok("keys list");
    let listed = keys["keys"].as_array().unwrap();
    assert_eq!(listed.len(), 3, "{keys}");
    assert!(
        !keys.to_string().contains(&op_key) && !keys.to_string().contains("sha256"),
        "secrets in the key list: {keys}"
    );

    // --- role enforcement and authentication
    let target = certs[0].serial_hex();
    auditor
        .run(&["cert", "revoke", &target, "--reason", "keyCompromise"])
        .http_error(403, "forbidden", "auditor revokes");
    let (st, body) = call(
        srv,
        "POST",
        &format!("/admin/v1/certificates/{target}/revoke"),
        &aud_key,
        Some(r#"{"reason":"keyCompromise"}"#),
    );
    assert_eq!(st, 403, "auditor revoke via the HTTP API: {body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["code"],
        "forbidden"
    );
    operator
        .run(&["keys", "create", "--name", "x", "--role", "admin"])
        .http_error(403, "forbidden", "operator creates a key");
    operator
        .run(&["audit"])
        .http_error(403, "forbidden", "operator reads the audit log");
    let (st, body) = call(
        srv,
        "GET",
        "/admin/v1/whoami",
        "isk_0123456789abcdef_wrong",
        None,
    );
    assert_eq!(st, 401, "wrong key: {body}");
    Cli::new(srv, "isk_0123456789abcdef_wrong")
        .run(&["whoami"])
        .http_error(401, "unauthorized", "CLI with a wrong key");
    let (st, body) = call(
        srv,
        "POST",
        &format!("/admin/v1/certificates/{target}/revoke"),
        &op_key,
        Some(r#"{"reason":"keyCompromise","force":true}"#),
    );
    assert_eq!(st, 400, "unknown field: {body}");
    let (st, body) = call(srv, "PUT", "/admin/v1/keys", &srv.admin_key, None);
    assert_eq!(st, 405, "wrong method: {body}");
    let big = format!(r#"{{"reason":"{}"}}"#, "x".repeat(70_000));
    let (st, body) = call(
        srv,
        "POST",
        &format!("/admin/v1/certificates/{target}/revoke"),
        &op_key,
        Some(&big),
    );
    assert_eq!(st, 413, "oversized body: {}", &body[..body.len().min(300)]);
    assert_eq!(
        ocsp_status(srv, &work, &certs[0], "c0-before"),
        "good",
        "before revocation"
    );

    // --- revoke one certificate by serial (keyCompromise)
    let r = operator
        .run(&["cert", "revoke", &target, "--reason", "keyCompromise"])
        .ok("operator revokes");
    assert_eq!(r["revoked"]["reasonName"], "keyCompromise", "{r}");
    assert_eq!(r["revoked"]["reason"], 1, "{r}");
    operator
        .run(&["cert", "revoke", &target, "--reason", "1"])
        .http_error(409, "already_revoked", "revoke twice");
    let shown = auditor.run(&["cert", "show", &target]).ok("cert show");
    assert_eq!(shown["revoked"]["reasonName"], "keyCompromise");
    // The CRL lists it (openssl crl), the OCSP responder says revoked.
    let leaf0 = write(&work, "c0.pem", &certs[0].leaf_pem());
    let crl_url = blocking(|| crl_dp(&leaf0));
    let (listed, text) = blocking(|| crl_serials(&crl_url, &work));
    let s0 = der_serial(&certs[0].leaf_der);
    assert!(listed.contains(&s0), "CRL does not list {s0}:\n{text}");
    assert!(
        text.contains("Key Compromise"),
        "reason not on the CRL:\n{text}"
    );
    assert_eq!(ocsp_status(srv, &work, &certs[0], "c0"), "revoked");
    // keyCompromise blocked the key: a new order with it is refused.
    let key0 = AcctKey::from_pkcs8(&certs[0].key_pkcs8);
    let e = issue(
        &acct,
        &env.h01,
        None,
        &[dns("admin-reuse.example.test")],
        Some(&key0),
    )
    .await
    .err()
    .expect("a compromised key was certified again");
    assert!(e.contains("compromised"), "{e}");

    // --- bulk revocation of 3 (plus one unknown and one already revoked)
    let bulk: Vec<String> = certs[1..4].iter().map(Issued::serial_hex).collect();
    let list = format!(
        "# serials to revoke\n{}\n\nabcdef0123\n{target}\n",
        bulk.join("\n")
    );
    let file = write(&work, "serials.txt", &list);
    let r = operator
        .run(&[
            "revoke-bulk",
            "--file",
            file.to_str().unwrap(),
            "--reason",
            "superseded",
        ])
        .ok("revoke-bulk");
    assert_eq!(r["revoked"], 3, "{r}");
    let outcomes: Vec<(String, String)> = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["serial"].as_str().unwrap().to_string(),
                x["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut expected: Vec<(String, String)> = bulk
        .iter()
        .map(|s| (s.clone(), "revoked".to_string()))
        .collect();
    expected.push(("abcdef0123".into(), "not_found".into()));
    expected.push((target.clone(), "already_revoked".into()));
    assert_eq!(outcomes, expected);
    let (listed, text) = blocking(|| crl_serials(&crl_url, &work));
    for c in &certs[1..4] {
        let s = der_serial(&c.leaf_der);
        assert!(listed.contains(&s), "CRL does not list {s}:\n{text}");
    }
    assert_eq!(ocsp_status(srv, &work, &certs[2], "c2"), "revoked");
    // The same through stdin: everything already revoked.
    let r = operator
        .run_stdin(&["revoke-bulk", "--reason", "4"], Some(&file))
        .ok("revoke-bulk from stdin");
    assert_eq!(r["revoked"], 0, "{r}");

    // --- an ACME revocation lands in the same audit log
    let der = CertificateDer::from(certs[4].leaf_der.clone());
    acct.revoke(&RevocationRequest {
        certificate: &der,
        reason: Some(RevocationReason::CessationOfOperation),
    })
    .await
    .expect("ACME revoke");

    // --- CAs
    let cas = auditor.run(&["cas", "list"]).ok("cas list");
    let cas = cas["cas"].as_array().unwrap().clone();
    assert_eq!(cas.len(), 2, "{cas:?}");
    let root = cas.iter().find(|c| c["parent"].is_null()).unwrap();
    let int = cas.iter().find(|c| !c["parent"].is_null()).unwrap();
    assert_eq!(int["parent"], root["id"]);
    assert_eq!(int["issuing"], true);
    assert_eq!(int["status"], "active");
    assert!(int["subject"].as_str().unwrap().contains("CN="), "{int}");
    assert_eq!(int["ski"].as_str().unwrap().len(), 40, "{int}");
    assert!(
        int["notAfter"].is_string() && int["algorithm"] == "p256",
        "{int}"
    );

    // --- key deletion
    admin.run(&["keys", "delete", "initial"]).http_error(
        409,
        "last_admin_key",
        "delete the last admin key",
    );
    let d = admin
        .run(&["keys", "delete", &aud_id])
        .ok("delete auditor key");
    assert!(d["disabledAt"].is_string(), "{d}");
    auditor
        .run(&["whoami"])
        .http_error(401, "unauthorized", "disabled key");
    let aud2 = admin
        .run(&["keys", "create", "--name", "audit 2", "--role", "auditor"])
        .ok("second auditor key");
    let auditor = Cli::new(srv, aud2["key"].as_str().unwrap());

    // --- the audit log: every call with its outcome; the chain verifies
    let log = auditor
        .run(&["audit", "--verify", "--limit", "1000"])
        .ok("audit --verify");
    assert_eq!(log["verify"]["ok"], true, "{}", log["verify"]);
    assert_eq!(log["verify"]["scope"], "full");
    let entries = log["entries"].as_array().unwrap();
    let has = |actor: &str, action: &str, outcome: Option<u16>, summary: &str| {
        entries.iter().any(|e| {
            e["actor"] == actor
                && e["action"] == action
                && e["outcome"].as_u64().map(|n| n as u16) == outcome
                && e["summary"].as_str().unwrap_or("").contains(summary)
        })
    };
    let revoke_path = format!("POST /admin/v1/certificates/{target}/revoke");
    let op_actor = format!("key:{op_id}");
    let aud_actor = format!("key:{aud_id}");
    for (actor, action, outcome, summary) in [
        ("server:bootstrap", "ca.create", None, "parent=- algorithm="),
        ("system", "admin-key.create", None, "initial"),
        ("key:initial", "POST /admin/v1/keys", Some(201), "operator"),
        (
            aud_actor.as_str(),
            revoke_path.as_str(),
            Some(403),
            "keyCompromise",
        ),
        (op_actor.as_str(), "POST /admin/v1/keys", Some(403), ""),
        (op_actor.as_str(), revoke_path.as_str(), Some(400), "force"),
        (op_actor.as_str(), revoke_path.as_str(), Some(413), ""),
        (
            op_actor.as_str(),
            revoke_path.as_str(),
            Some(200),
            "keyCompromise",
        ),
        (op_actor.as_str(), revoke_path.as_str(), Some(409), ""),
        (
            op_actor.as_str(),
            "certificate.revoke",
            None,
            "reason=keyCompromise key blocked",
        ),
        (
            op_actor.as_str(),
            "POST /admin/v1/revocations",
            Some(200),
            "revoked 3 of 5",
        ),
        (
            op_actor.as_str(),
            "certificate.revoke",
            None,
            "reason=superseded",
        ),
        (
            "key:initial",
            "DELETE /admin/v1/keys/initial",
            Some(409),
            "",
        ),
        (aud_actor.as_str(), "GET /admin/v1/whoami", Some(200), ""),
    ] {
        assert!(
            has(actor, action, outcome, summary),
            "no audit entry {actor} {action} {outcome:?} {summary:?} in:\n{}",
            serde_json::to_string_pretty(entries).unwrap()
        );
    }
    let acme_actor = entries
        .iter()
        .find(|e| {
            e["action"] == "certificate.revoke"
                && e["summary"]
                    .as_str()
                    .unwrap()
                    .contains(&certs[4].serial_hex())
        })
        .unwrap_or_else(|| panic!("no ACME revocation in the audit log"));
    assert!(
        acme_actor["actor"].as_str().unwrap().starts_with("acme:"),
        "{acme_actor}"
    );
    // Sequence numbers run 1.. without gaps; hashes chain.
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e["seq"], i as u64 + 1);
        if i > 0 {
            assert_eq!(e["prevHash"], entries[i - 1]["entryHash"]);
        }
    }
    // Paging: a window verifies against the entry before it.
    let page = auditor
        .run(&["audit", "--after", "3", "--limit", "2"])
        .ok("audit page");
    assert_eq!(page["entries"].as_array().unwrap().len(), 2);
    assert_eq!(page["entries"][0]["seq"], 4);
    assert_eq!(page["next"], 5);
    assert_eq!(page["verify"]["ok"], true, "{}", page["verify"]);
}

/// Hardening: anonymous or wrongly keyed admin requests are refused with
/// 401 and counted, but never written to the hash-chained audit log, so an
/// attacker cannot grow it (20 requests with 3,000-byte paths left 20
/// entries of 3 KB each before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_admin_requests_do_not_grow_the_audit_log() {
    let env = Env::start("admin-refusals").await;
    let srv = &env.srv;
    let head = |srv: &Server| {
        let log = admin_ok(srv, &["audit", "--limit", "1000"]);
        let entries = log["entries"].as_array().unwrap().clone();
        (entries.len(), entries)
    };
    let (before, _) = head(srv);
    let long = format!("/admin/{}", "a".repeat(3000));
    for i in 0..20 {
        let key = if i % 2 == 0 {
            None
        } else {
            Some("isk_not-a-real-key")
        };
        let r = blocking(|| srv.call("GET", &long, key, None)).unwrap();
        assert_eq!(r.status, 401, "anonymous request {i}: {}", r.text());
        assert!(r.text().contains("unauthorized"), "{}", r.text());
    }
    let r = blocking(|| srv.call("GET", "/admin/v1/whoami", None, None)).unwrap();
    assert_eq!(r.status, 401);
    // The audit log gained only the entries of the `audit` call above.
    let (after, entries) = head(srv);
    assert_eq!(after, before + 1, "{entries:#?}");
    assert!(
        entries
            .iter()
            .all(|e| e["outcome"] != 401 && e["action"].as_str().is_some_and(|a| a.len() < 200)),
        "{entries:#?}"
    );
    // An authenticated call to an unknown long path is audited with the
    // start of the path only.
    let r = blocking(|| srv.call("GET", &long, Some(&srv.admin_key), None)).unwrap();
    assert_eq!(r.status, 404);
    let (_, entries) = head(srv);
    let e = entries
        .iter()
        .find(|e| e["outcome"] == 404)
        .expect("the 404 is audited");
    let action = e["action"].as_str().unwrap();
    assert!(
        action.len() < 200 && action.ends_with("(3007 bytes)"),
        "{action}"
    );
    // The refusals are counted for alerting.
    let url = format!("http://127.0.0.1:{}/metrics", srv.http_port);
    let m = blocking(|| ironseal_conformance::client::get(&url, None))
        .unwrap()
        .text();
    let n: f64 = m
        .lines()
        .find_map(|l| l.strip_prefix("ironseal_admin_auth_failures_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no ironseal_admin_auth_failures_total in\n{m}"));
    assert!(n >= 21.0, "{n}");
}

/// Hardening: a generated first admin key goes to a 0600 file in the data
/// directory, never into the log stream (where journald and log shippers
/// keep it), and it works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_admin_key_is_written_to_a_private_file_not_the_log() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mut srv = Server::without_dns(dir.path());
    srv.admin_key = String::new();
    blocking(|| srv.start());
    let file = srv.data.join("initial-admin-key");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", file.display());
    let key = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert!(key.starts_with("isk_") && key.len() > 30, "{key}");
    let log = std::fs::read_to_string(srv.log_path()).unwrap();
    assert!(!log.contains(&key), "the key is in the log:\n{log}");
    assert!(
        log.contains("initial-admin-key"),
        "the log names the file:\n{log}"
    );
    srv.admin_key = key;
    let r = blocking(|| srv.call("GET", "/admin/v1/whoami", Some(&srv.admin_key), None)).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("\"admin\""), "{}", r.text());
    // A restart neither rewrites the file nor makes a second key.
    blocking(|| srv.restart());
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().trim(),
        srv.admin_key
    );
}
