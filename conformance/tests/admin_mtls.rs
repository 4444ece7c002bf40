//! Admin API client-certificate authentication, black box: openssl makes a
//! client CA, an untrusted CA and client certificates (the recipe of
//! docs/admin-api.md); the release binary serves with `--admin-client-ca`
//! and `--admin-client-cert` rules; the harness HTTP client (the client
//! certificate in its rustls config) and `ironseal admin`
//! (`--client-cert`/`--client-key`) call it.
//!
//! Covers: a mapped operator certificate revokes (HTTP API and CLI), an auditor
//! certificate may not (403), a trusted unmapped certificate gets 403, a
//! certificate from an untrusted CA or with the wrong EKU falls back to 401
//! without a key and to the key with one, a wrong key is 401 even with a
//! good certificate, API keys keep working, ACME (directory and a whole
//! issuance) works with and without client certificates, the audit log
//! names the certificates; then, restarted with ironseal's own root in the
//! bundle: name rules are refused at start, a sha256-pinned ACME-issued
//! certificate authenticates until it is revoked in the store.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, reason = "tests: a panic is a test failure")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ironseal_conformance::pki::CliOut as Out;
use ironseal_conformance::prelude::*;
use ironseal_conformance::proc;
use serde_json::Value;

/// A client certificate (PEM, leaf then chain) and its key (PEM).
#[derive(Clone)]
struct Ident {
    cert: PathBuf,
    key: PathBuf,
}

impl Ident {
    /// Lowercase hex SHA-256 of the leaf DER.
    fn sha256(&self) -> String {
        let pem = std::fs::read_to_string(&self.cert).unwrap();
        let leaf = ironseal_conformance::certs::pem_blocks(&pem)
            .into_iter()
            .next()
            .unwrap();
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &pem_to_der(&leaf));
        d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The audit actor the server should write: `cert:<CN>/<16 hex>`.
    fn actor(&self, cn: &str) -> String {
        format!("cert:{cn}/{}", &self.sha256()[..16])
    }
}

fn openssl(dir: &Path, args: &[&str]) -> proc::Output {
    let o = run_in(dir, "openssl", args);
    o.expect_success(&format!("openssl {}", args.join(" ")));
    o
}

/// A CA made as docs/admin-api.md shows.
fn make_ca(dir: &Path, name: &str, cn: &str) -> (PathBuf, PathBuf) {
    openssl_self_signed(
        dir,
        name,
        &format!("/CN={cn}"),
        3650,
        &[
            "-addext",
            "basicConstraints=critical,CA:TRUE,pathlen:0",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    )
}

/// A client certificate signed by `ca`, with `ext` lines (the EKU etc.).
fn make_cert(dir: &Path, ca: &(PathBuf, PathBuf), name: &str, cn: &str, ext: &str) -> Ident {
    let (key, csr, pem, extf) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("{name}.ext"),
    );
    openssl_key_and_csr(dir, name, &format!("/CN={cn}"), &[]);
    std::fs::write(
        dir.join(&extf),
        format!("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n{ext}\n"),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            ca.0.to_str().unwrap(),
            "-CAkey",
            ca.1.to_str().unwrap(),
            "-days",
            "90",
            "-extfile",
            &extf,
            "-out",
            &pem,
        ],
    );
    Ident {
        cert: dir.join(pem),
        key: dir.join(key),
    }
}

/// The colon form `openssl x509 -fingerprint -sha256` prints (what the docs
/// tell operators to paste into a sha256 rule).
fn openssl_fingerprint(dir: &Path, cert: &Path) -> String {
    let o = openssl(
        dir,
        &[
            "x509",
            "-noout",
            "-fingerprint",
            "-sha256",
            "-in",
            cert.to_str().unwrap(),
        ],
    );
    o.stdout
        .trim()
        .split_once('=')
        .map(|(_, fp)| fp.to_string())
        .unwrap_or_else(|| panic!("no fingerprint in {}", o.stdout))
}

/// One HTTPS call through the harness client, presenting `ident`'s
/// certificate when given: (HTTP status, body).
fn call(
    srv: &Server,
    method: &str,
    path: &str,
    ident: Option<&Ident>,
    key: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut cfg = srv.client_config();
    if let Some(id) = ident {
        cfg = cfg.with_client_cert(&id.cert, &id.key);
    }
    let client = HttpClient::new(cfg).unwrap_or_else(|e| panic!("{e}"));
    let r = srv
        .call_with(&client, method, path, key, body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    (r.status, r.text())
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// How `ironseal admin` is given the client certificate.
#[derive(Clone, Copy)]
enum Via {
    Env,
    Flags,
}

/// `ironseal admin ARGS` with an optional key and client certificate.
fn cli(srv: &Server, args: &[&str], key: Option<&str>, ident: Option<(&Ident, Via)>) -> Out {
    let bin = ironseal_conformance::server::ironseal_bin().unwrap();
    let mut c = Command::new(bin);
    c.arg("admin");
    for v in [
        "IRONSEAL_API_KEY",
        "IRONSEAL_CLIENT_CERT",
        "IRONSEAL_CLIENT_KEY",
    ] {
        c.env_remove(v);
    }
    c.env("IRONSEAL_URL", srv.base_url())
        .env("IRONSEAL_CA_CERT", srv.root());
    if let Some(k) = key {
        c.env("IRONSEAL_API_KEY", k);
    }
    match ident {
        Some((id, Via::Env)) => {
            c.env("IRONSEAL_CLIENT_CERT", &id.cert)
                .env("IRONSEAL_CLIENT_KEY", &id.key);
        }
        Some((id, Via::Flags)) => {
            c.arg("--client-cert")
                .arg(&id.cert)
                .arg("--client-key")
                .arg(&id.key);
        }
        None => {}
    }
    c.args(args);
    let o = blocking(|| proc::run(c, Duration::from_secs(60)));
    Out::from_output(o)
}

fn audit_entries(srv: &Server) -> Vec<Value> {
    let (st, body) = call(
        srv,
        "GET",
        "/admin/v1/audit?limit=1000&verify=full",
        None,
        Some(&srv.admin_key),
        None,
    );
    assert_eq!(st, 200, "audit: {body}");
    let v = json(&body);
    assert_eq!(v["verify"]["ok"], true, "{}", v["verify"]);
    v["entries"].as_array().unwrap().clone()
}

fn has_entry(
    entries: &[Value],
    actor: &str,
    action: &str,
    outcome: Option<u16>,
    summary: &str,
) -> bool {
    entries.iter().any(|e| {
        e["actor"] == actor
            && e["action"] == action
            && e["outcome"].as_u64().map(|n| n as u16) == outcome
            && e["summary"].as_str().unwrap_or("").contains(summary)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_client_certificates_map_to_roles_or_fall_back_to_keys() {
    // --- PKI: the admin client CA, a stranger's CA, client certificates.
    let pki_dir = tempfile::Builder::new()
        .prefix("ironseal-admin-mtls-pki-")
        .tempdir()
        .unwrap();
    let pki = pki_dir.path();
    let ca = blocking(|| make_ca(pki, "admin-ca", "ironseal admin clients"));
    let rogue_ca = blocking(|| make_ca(pki, "rogue-ca", "ironseal admin clients"));
    let client_auth = "extendedKeyUsage=clientAuth";
    let ops = blocking(|| make_cert(pki, &ca, "ops", "ops-laptop", client_auth));
    let audit = blocking(|| {
        make_cert(
            pki,
            &ca,
            "audit",
            "audit-box",
            &format!("{client_auth}\nsubjectAltName=URI:spiffe://corp.test/audit"),
        )
    });
    let boss = blocking(|| make_cert(pki, &ca, "boss", "boss", client_auth));
    let intern = blocking(|| make_cert(pki, &ca, "intern", "intern", client_auth));
    // Same name as the operator, wrong issuer; same issuer, wrong EKU.
    let rogue = blocking(|| make_cert(pki, &rogue_ca, "rogue", "ops-laptop", client_auth));
    let server_eku = blocking(|| {
        make_cert(
            pki,
            &ca,
            "server-eku",
            "ops-laptop",
            "extendedKeyUsage=serverAuth",
        )
    });
    let boss_fp = blocking(|| openssl_fingerprint(pki, &boss.cert));
    assert_eq!(
        boss_fp.replace(':', "").to_ascii_lowercase(),
        boss.sha256(),
        "openssl and our fingerprint differ"
    );

    let ca_arg = ca.0.to_str().unwrap().to_string();
    let boss_rule = format!("admin=sha256:{boss_fp}");
    let mut env = Env::start_with(
        "admin-mtls",
        &[
            "--admin-client-ca",
            &ca_arg,
            "--admin-client-cert",
            "operator=subject_cn:ops-laptop",
            "--admin-client-cert",
            "auditor=san_uri:spiffe://corp.test/audit",
            "--admin-client-cert",
            &boss_rule,
        ],
    )
    .await;
    let srv = &env.srv;

    // --- ACME is unaffected: the directory with and without certificates,
    // and a whole issuance (instant-acme sends no client certificate).
    for ident in [None, Some(&ops), Some(&rogue)] {
        let (st, body) = call(srv, "GET", "/directory", ident, None, None);
        assert_eq!(st, 200, "directory: {body}");
        assert!(json(&body)["newOrder"].is_string(), "{body}");
    }
    let (acct, _) = env.account().await;
    let mut certs = Vec::new();
    for i in 0..3 {
        let name = format!("mtls-{i}.example.test");
        certs.push(
            issue(&acct, &env.h01, None, &[dns(&name)], None)
                .await
                .unwrap(),
        );
    }

    // --- whoami with each certificate, HTTP API and CLI.
    let (st, body) = call(srv, "GET", "/admin/v1/whoami", Some(&ops), None, None);
    assert_eq!(st, 200, "ops whoami: {body}");
    let me = json(&body);
    assert_eq!(me["role"], "operator", "{me}");
    assert_eq!(me["credential"], "clientCertificate", "{me}");
    assert_eq!(
        format!("cert:{}", me["id"].as_str().unwrap()),
        ops.actor("ops-laptop")
    );
    assert!(
        me["name"].as_str().unwrap().contains("CN=ops-laptop"),
        "{me}"
    );
    let me = cli(srv, &["whoami"], None, Some((&audit, Via::Env))).ok("auditor whoami (CLI)");
    assert_eq!(me["role"], "auditor", "{me}");
    let me = cli(srv, &["whoami"], None, Some((&boss, Via::Flags))).ok("boss whoami (CLI)");
    assert_eq!(
        (me["role"].as_str(), me["credential"].as_str()),
        (Some("admin"), Some("clientCertificate")),
        "{me}"
    );

    // --- operator certificate revokes; auditor certificate may not.
    let t0 = certs[0].serial_hex();
    let t1 = certs[1].serial_hex();
    let revoke0 = format!("/admin/v1/certificates/{t0}/revoke");
    let (st, body) = call(
        srv,
        "POST",
        &revoke0,
        Some(&audit),
        None,
        Some(r#"{"reason":"keyCompromise"}"#),
    );
    assert_eq!(st, 403, "auditor revokes via the HTTP API: {body}");
    assert_eq!(json(&body)["code"], "forbidden");
    cli(
        srv,
        &["cert", "revoke", &t0, "--reason", "keyCompromise"],
        None,
        Some((&audit, Via::Env)),
    )
    .http_error(403, "forbidden", "auditor revokes via CLI");
    let (st, body) = call(
        srv,
        "POST",
        &revoke0,
        Some(&ops),
        None,
        Some(r#"{"reason":"keyCompromise"}"#),
    );
    assert_eq!(st, 200, "operator revokes via the HTTP API: {body}");
    assert_eq!(json(&body)["revoked"]["reasonName"], "keyCompromise");
    let r = cli(
        srv,
        &["cert", "revoke", &t1, "--reason", "superseded"],
        None,
        Some((&ops, Via::Flags)),
    )
    .ok("operator revokes via CLI");
    assert_eq!(r["revoked"]["reasonName"], "superseded", "{r}");
    // The auditor certificate reads what the operator did.
    let shown = cli(srv, &["cert", "show", &t1], None, Some((&audit, Via::Env)))
        .ok("auditor shows a certificate");
    assert_eq!(shown["revoked"]["reasonName"], "superseded", "{shown}");
    // An operator certificate may not manage keys.
    cli(
        srv,
        &["keys", "create", "--name", "x", "--role", "admin"],
        None,
        Some((&ops, Via::Env)),
    )
    .http_error(403, "forbidden", "operator certificate creates a key");

    // --- trusted but unmapped: 403, HTTP API and CLI.
    let (st, body) = call(srv, "GET", "/admin/v1/whoami", Some(&intern), None, None);
    assert_eq!(st, 403, "unmapped certificate: {body}");
    let e = json(&body);
    assert_eq!(e["code"], "forbidden", "{e}");
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("no admin_client_certs rule"),
        "{e}"
    );
    cli(srv, &["whoami"], None, Some((&intern, Via::Flags))).http_error(
        403,
        "forbidden",
        "unmapped certificate via CLI",
    );

    // --- untrusted CA and wrong EKU: as if no certificate (401 without a key).
    for (ident, what) in [
        (&rogue, "untrusted CA"),
        (&server_eku, "serverAuth-only EKU"),
    ] {
        let (st, body) = call(srv, "GET", "/admin/v1/whoami", Some(ident), None, None);
        assert_eq!(st, 401, "{what}: {body}");
        assert_eq!(json(&body)["code"], "unauthorized");
        cli(srv, &["whoami"], None, Some((ident, Via::Env))).http_error(401, "unauthorized", what);
    }
    // Nothing at all: 401; the CLI refuses to start without a credential.
    let (st, body) = call(srv, "GET", "/admin/v1/whoami", None, None, None);
    assert_eq!(st, 401, "no credential: {body}");
    let none = cli(srv, &["whoami"], None, None);
    assert_eq!(none.code, Some(2), "{}\n{}", none.stdout, none.stderr);
    assert!(none.stderr.contains("no API key"), "{}", none.stderr);

    // --- API keys keep working, alone and beside certificates; a key decides.
    let (st, body) = call(
        srv,
        "GET",
        "/admin/v1/whoami",
        None,
        Some(&srv.admin_key),
        None,
    );
    assert_eq!(st, 200, "admin key: {body}");
    assert_eq!(json(&body)["credential"], "apiKey");
    let me = cli(srv, &["whoami"], Some(&srv.admin_key), None).ok("CLI with the admin key");
    assert_eq!(me["id"], "initial", "{me}");
    // Untrusted certificate + good key: the key.
    let (st, body) = call(
        srv,
        "GET",
        "/admin/v1/whoami",
        Some(&rogue),
        Some(&srv.admin_key),
        None,
    );
    assert_eq!(st, 200, "rogue cert + admin key: {body}");
    assert_eq!(json(&body)["role"], "admin");
    // Operator certificate + admin key: the key's role.
    let me = cli(
        srv,
        &["whoami"],
        Some(&srv.admin_key),
        Some((&ops, Via::Env)),
    )
    .ok("CLI with key and certificate");
    assert_eq!(
        (me["role"].as_str(), me["credential"].as_str()),
        (Some("admin"), Some("apiKey")),
        "{me}"
    );
    // Good certificate + wrong key: 401.
    let (st, body) = call(
        srv,
        "GET",
        "/admin/v1/whoami",
        Some(&ops),
        Some("isk_0123456789abcdef_wrong"),
        None,
    );
    assert_eq!(st, 401, "ops cert + wrong key: {body}");
    // A key created now works as before.
    let k = cli(
        srv,
        &["keys", "create", "--name", "ops key", "--role", "operator"],
        Some(&srv.admin_key),
        None,
    )
    .ok("create an operator key");
    let op_key = k["key"].as_str().unwrap().to_string();
    let t2 = certs[2].serial_hex();
    cli(srv, &["cert", "renew-early", &t2], Some(&op_key), None).ok("operator key renew-early");

    // --- the audit log names the certificates.
    let entries = audit_entries(srv);
    let (ops_actor, audit_actor) = (ops.actor("ops-laptop"), audit.actor("audit-box"));
    let intern_actor = intern.actor("intern");
    let rogue_fp = rogue.sha256();
    let revoke0_action = format!("POST {revoke0}");
    for (actor, action, outcome, summary) in [
        (
            ops_actor.as_str(),
            revoke0_action.as_str(),
            Some(200),
            "keyCompromise",
        ),
        (
            ops_actor.as_str(),
            "certificate.revoke",
            None,
            "reason=keyCompromise",
        ),
        (
            ops_actor.as_str(),
            "certificate.revoke",
            None,
            "reason=superseded",
        ),
        (
            audit_actor.as_str(),
            revoke0_action.as_str(),
            Some(403),
            "keyCompromise",
        ),
        (audit_actor.as_str(), "GET /admin/v1/whoami", Some(200), ""),
        (ops_actor.as_str(), "POST /admin/v1/keys", Some(403), ""),
        ("key:initial", "POST /admin/v1/keys", Some(201), "operator"),
    ] {
        assert!(
            has_entry(&entries, actor, action, outcome, summary),
            "no audit entry {actor} {action} {outcome:?} {summary:?} in:\n{}",
            serde_json::to_string_pretty(&entries).unwrap()
        );
    }
    // Refused credentials (a certificate without a role, a rogue
    // certificate) are logged and counted, never audited.
    assert!(
        !entries.iter().any(|e| e["actor"] == "anonymous"
            || e["actor"] == intern_actor.as_str()
            || e["summary"]
                .as_str()
                .unwrap_or("")
                .contains(&rogue_fp[..16])),
        "refused requests in the audit log:\n{}",
        serde_json::to_string_pretty(&entries).unwrap()
    );
    let boss_actor = boss.actor("boss");
    assert!(
        has_entry(&entries, &boss_actor, "GET /admin/v1/whoami", Some(200), ""),
        "no whoami by {boss_actor}"
    );

    // --- the client CA imported into ironseal while it runs: from the next
    // request on, name rules no longer authenticate; sha256 pins do.
    let import = serde_json::json!({
        "name": "admin clients (imported)",
        "certificatePem": std::fs::read_to_string(&ca.0).unwrap(),
        "privateKeyPem": std::fs::read_to_string(&ca.1).unwrap(),
    })
    .to_string();
    let (st, body) = call(
        &env.srv,
        "POST",
        "/admin/v1/cas/import",
        None,
        Some(&env.srv.admin_key),
        Some(&import),
    );
    assert!(
        (200..300).contains(&st),
        "import the client CA: {st} {body}"
    );
    let (st, body) = call(&env.srv, "GET", "/admin/v1/whoami", Some(&ops), None, None);
    assert_eq!(st, 401, "a name rule still authenticates: {body}");
    let (st, body) = call(&env.srv, "GET", "/admin/v1/whoami", Some(&boss), None, None);
    assert_eq!(st, 200, "the sha256 pin stopped working: {body}");
    assert!(
        env.srv
            .log_tail()
            .contains("name rules no longer authenticate"),
        "{}",
        env.srv.log_tail()
    );

    // --- ironseal's own root in the bundle: name rules refused at start.
    let acme_leaf = {
        let c = &certs[2];
        let dir = env.path().join("acme-client");
        std::fs::create_dir_all(&dir).unwrap();
        let cert = dir.join("chain.pem");
        std::fs::write(&cert, &c.chain).unwrap();
        let key = dir.join("key.pem");
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &c.key_pkcs8);
        let body: Vec<String> = b64
            .as_bytes()
            .chunks(64)
            .map(|l| String::from_utf8(l.to_vec()).unwrap())
            .collect();
        std::fs::write(
            &key,
            format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                body.join("\n")
            ),
        )
        .unwrap();
        Ident { cert, key }
    };
    let bundle = env.path().join("bundle.pem");
    std::fs::write(
        &bundle,
        format!(
            "{}{}",
            std::fs::read_to_string(&ca.0).unwrap(),
            std::fs::read_to_string(srv.root()).unwrap()
        ),
    )
    .unwrap();
    env.srv.kill9();
    {
        env.srv.extra = vec![
            "--admin-client-ca".into(),
            bundle.to_str().unwrap().into(),
            "--admin-client-cert".into(),
            "operator=subject_cn:ops-laptop".into(),
        ];
        let o = blocking(|| env.srv.run_until_exit(Duration::from_secs(60))).unwrap();
        assert!(
            !o.timed_out() && !o.success(),
            "started with a name rule and ironseal's root in the bundle:\n{}",
            o.describe()
        );
        assert!(
            o.stderr.contains("holds one of ironseal's own CAs") && o.stderr.contains("sha256"),
            "{}",
            o.describe()
        );
    }

    // --- pinned by sha256: an ACME-issued certificate authenticates until
    // it is revoked in ironseal's store.
    let acme_rule = format!("operator=sha256:{}", acme_leaf.sha256());
    let boss_rule2 = format!("admin=sha256:{}", boss.sha256());
    env.srv.extra = vec![
        "--admin-client-ca".into(),
        bundle.to_str().unwrap().into(),
        "--admin-client-cert".into(),
        acme_rule,
        "--admin-client-cert".into(),
        boss_rule2,
    ];
    blocking(|| env.srv.start());
    let srv = &env.srv;
    let (st, body) = call(srv, "GET", "/admin/v1/whoami", Some(&acme_leaf), None, None);
    assert_eq!(st, 200, "ACME-issued, pinned: {body}");
    let me = json(&body);
    assert_eq!(me["role"], "operator", "{me}");
    // ironseal puts the first DNS name into the commonName of ACME leaves:
    // exactly why name rules are refused with its own CAs in the bundle.
    assert_eq!(
        format!("cert:{}", me["id"].as_str().unwrap()),
        acme_leaf.actor("mtls-2.example.test"),
        "{me}"
    );
    // The unpinned operator certificate of the external CA: trusted, no role.
    let (st, body) = call(srv, "GET", "/admin/v1/whoami", Some(&ops), None, None);
    assert_eq!(st, 403, "unpinned after the restart: {body}");
    // The admin certificate (pinned) revokes the ACME certificate...
    let me = cli(
        srv,
        &["cert", "revoke", &t2, "--reason", "keyCompromise"],
        None,
        Some((&boss, Via::Flags)),
    )
    .ok("admin certificate revokes the ACME client certificate");
    assert_eq!(me["revoked"]["reasonName"], "keyCompromise", "{me}");
    // ... which no longer authenticates: 401 without a key, HTTP API and CLI.
    let (st, body) = call(srv, "GET", "/admin/v1/whoami", Some(&acme_leaf), None, None);
    assert_eq!(st, 401, "revoked client certificate: {body}");
    assert!(
        json(&body)["error"].as_str().unwrap().contains("revoked"),
        "{body}"
    );
    cli(srv, &["whoami"], None, Some((&acme_leaf, Via::Env))).http_error(
        401,
        "unauthorized",
        "revoked client certificate via CLI",
    );
    // ACME still works with the revoked certificate presented at TLS level.
    let (st, body) = call(srv, "GET", "/directory", Some(&acme_leaf), None, None);
    assert_eq!(st, 200, "directory with a revoked client cert: {body}");
    let entries = audit_entries(srv);
    assert!(
        !entries.iter().any(|e| e["outcome"] == 401),
        "a refused credential in the audit log:\n{}",
        serde_json::to_string_pretty(&entries).unwrap()
    );
}
