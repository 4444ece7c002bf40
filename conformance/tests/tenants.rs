//! Tenants and ACME external account binding (RFC 8555 §7.3.4) with real
//! clients: certbot (`--eab-kid --eab-hmac-key`) and lego (`--eab --kid
//! --hmac`) get certificates for their tenant's names only; a reused,
//! disabled or missing EAB key is refused; a tenant-scoped operator key
//! sees only its tenant's certificates; the audit log names the tenant.

use ironseal_conformance::certs;
use ironseal_conformance::clients::{acme_problem_types, Certbot, Lego};
use ironseal_conformance::subject::Subject;
use ironseal_conformance::TestEnv;
use serde_json::{json, Value};

/// Calls the admin API with `key`; returns (status, JSON body).
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
    let v = serde_json::from_str(&r.text()).unwrap_or(Value::Null);
    (r.status, v)
}

fn root_key(env: &TestEnv) -> String {
    env.server
        .admin_key
        .clone()
        .expect("ironseal prints an admin key")
}

/// Creates an EAB key for `tenant`; returns (kid, base64url HMAC key).
fn eab_key(env: &TestEnv, tenant: &str) -> (String, String) {
    let (st, v) = admin(
        env,
        &root_key(env),
        "POST",
        &format!("/admin/v1/tenants/{tenant}/eab-keys"),
        None,
    );
    assert_eq!(st, 201, "create EAB key: {v}");
    let kid = v["kid"].as_str().expect("kid").to_string();
    let hmac = v["hmacKey"].as_str().expect("hmacKey").to_string();
    assert_eq!(v["tenant"], tenant);
    (kid, hmac)
}

fn directory(env: &TestEnv) -> Value {
    ironseal_conformance::client::get(&env.server.directory_url, Some(&env.server.tls_root))
        .and_then(|r| r.try_json())
        .expect("directory")
}

fn certbot_args(
    env: &TestEnv,
    name: &str,
    eab: Option<&(String, String)>,
    domains: &[&str],
) -> Vec<String> {
    let mut a: Vec<String> = [
        "--standalone",
        "--preferred-challenges",
        "http-01",
        "--http-01-address",
        "127.0.0.1",
        "--http-01-port",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.push(env.server.http01_port.to_string());
    a.extend(["--cert-name".into(), name.into()]);
    if let Some((kid, hmac)) = eab {
        a.extend([
            "--eab-kid".into(),
            kid.clone(),
            "--eab-hmac-key".into(),
            hmac.clone(),
        ]);
    }
    for d in domains {
        a.extend(["-d".into(), d.to_string()]);
    }
    a
}

fn lego_flags(env: &TestEnv, eab: &(String, String), domains: &[&str]) -> Vec<String> {
    let mut f = vec![
        "--eab".to_string(),
        "--kid".into(),
        eab.0.clone(),
        "--hmac".into(),
        eab.1.clone(),
        "--http".into(),
        "--http.port".into(),
        format!("127.0.0.1:{}", env.server.http01_port),
    ];
    for d in domains {
        f.extend(["-d".into(), d.to_string()]);
    }
    f
}

/// certbot's output plus its log (problem documents land in the log).
fn certbot_output(cb: &Certbot, o: &ironseal_conformance::proc::Output) -> String {
    format!(
        "{}\n{}",
        o.combined(),
        std::fs::read_to_string(cb.log_file()).unwrap_or_default()
    )
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn eab_accounts_get_only_their_tenants_names() {
    let env = TestEnv::start();
    if env.subject == Subject::Pebble {
        eprintln!("[conformance] SKIPPED for pebble: tenants are ironseal's admin API");
        return;
    }
    let key = root_key(&env);
    // No EAB key yet: accounts need no binding (auto policy).
    assert_eq!(directory(&env)["meta"]["externalAccountRequired"], false);

    for (id, dns) in [
        ("team-a", vec!["a.example.test", "*.a.example.test"]),
        ("team-b", vec!["b.example.test"]),
    ] {
        let (st, v) = admin(
            &env,
            &key,
            "POST",
            "/admin/v1/tenants",
            Some(json!({"id": id, "names": {"dns": dns}})),
        );
        assert_eq!(st, 201, "create tenant {id}: {v}");
        assert_eq!(v["profiles"], json!(["default"]));
    }
    let (st, v) = admin(
        &env,
        &key,
        "POST",
        "/admin/v1/tenants",
        Some(json!({"id": "team-a"})),
    );
    assert_eq!((st, v["code"].as_str()), (409, Some("tenant_exists")));
    let (st, v) = admin(
        &env,
        &key,
        "POST",
        "/admin/v1/tenants",
        Some(json!({"id": "bad", "names": {"ip": ["10.0.0.1/8"]}})),
    );
    assert_eq!(
        (st, v["code"].as_str()),
        (422, Some("invalid_names")),
        "{v}"
    );

    let eab_a = eab_key(&env, "team-a");
    assert_eq!(directory(&env)["meta"]["externalAccountRequired"], true);

    // certbot without a binding: externalAccountRequired.
    let cb_none = Certbot::new(&env, "none");
    let o = cb_none.certonly(&strs(&certbot_args(
        &env,
        "n",
        None,
        &["www.a.example.test"],
    )));
    assert!(!o.success(), "certbot without EAB must fail");
    let out = certbot_output(&cb_none, &o);
    assert!(
        acme_problem_types(&out)
            .iter()
            .any(|t| t.ends_with("externalAccountRequired"))
            || out.contains("external account"),
        "expected externalAccountRequired:\n{}",
        o.describe()
    );

    // certbot with team-a's key: its names work.
    let cb = Certbot::new(&env, "a");
    let o = cb.certonly(&strs(&certbot_args(
        &env,
        "a",
        Some(&eab_a),
        &["www.a.example.test"],
    )));
    assert!(
        o.success(),
        "certbot with EAB failed:\n{}\n{}",
        o.describe(),
        env.server_log()
    );
    let chain = cb.live("a", "fullchain.pem");
    env.check_issued(&chain, &["www.a.example.test"]);
    let serial_a = certs::serial_hex(&chain);
    let (st, cert) = admin(
        &env,
        &key,
        "GET",
        &format!("/admin/v1/certificates/{serial_a}"),
        None,
    );
    assert_eq!(st, 200, "{cert}");
    assert_eq!(cert["tenant"], "team-a");
    assert_eq!(cert["protocol"], "acme");
    assert_eq!(cert["profile"], "default");

    // The same (team-a) account asks for team-b's name: rejectedIdentifier naming the tenant.
    let o = cb.certonly(&strs(&certbot_args(
        &env,
        "cross",
        None,
        &["x.b.example.test"],
    )));
    assert!(!o.success(), "a team-a account must not get a team-b name");
    let out = certbot_output(&cb, &o);
    assert!(
        acme_problem_types(&out)
            .iter()
            .any(|t| t.ends_with("rejectedIdentifier")),
        "expected rejectedIdentifier:\n{}",
        o.describe()
    );
    assert!(
        out.contains("team-a"),
        "the problem should name the tenant rule:\n{out}"
    );

    // lego with team-b's key: its name works.
    let eab_b = eab_key(&env, "team-b");
    let lego = Lego::new(&env, "b");
    let o = lego.run(
        &strs(&lego_flags(&env, &eab_b, &["y.b.example.test"])),
        "run",
        &[],
    );
    assert!(
        o.success(),
        "lego with EAB failed:\n{}\n{}",
        o.describe(),
        env.server_log()
    );
    let crt = lego.cert_file("y.b.example.test");
    env.check_issued(&crt, &["y.b.example.test"]);
    let serial_b = certs::serial_hex(&crt);

    // The team-b account asks for a wildcard under team-a: refused.
    let o = lego.run(
        &strs(&lego_flags(&env, &eab_b, &["*.a.example.test"])),
        "run",
        &[],
    );
    assert!(
        !o.success(),
        "a team-b account must not get a team-a wildcard"
    );
    assert!(
        acme_problem_types(&o.combined())
            .iter()
            .any(|t| t.ends_with("rejectedIdentifier")),
        "expected rejectedIdentifier:\n{}",
        o.describe()
    );

    // team-b's key again from a new account (a new lego dir = a new key): already bound.
    let lego2 = Lego::new(&env, "b2");
    let o = lego2.run(
        &strs(&lego_flags(&env, &eab_b, &["z.b.example.test"])),
        "run",
        &[],
    );
    assert!(!o.success(), "a reused EAB key must be refused");
    assert!(o.combined().contains("already bound"), "{}", o.describe());

    // A disabled key binds nothing.
    let eab_off = eab_key(&env, "team-b");
    let (st, v) = admin(
        &env,
        &key,
        "POST",
        &format!("/admin/v1/eab-keys/{}/disable", eab_off.0),
        None,
    );
    assert_eq!(st, 200, "{v}");
    assert!(v["disabledAt"].is_string());
    let lego3 = Lego::new(&env, "b3");
    let o = lego3.run(
        &strs(&lego_flags(&env, &eab_off, &["w.b.example.test"])),
        "run",
        &[],
    );
    assert!(!o.success(), "a disabled EAB key must be refused");
    assert!(o.combined().contains("is disabled"), "{}", o.describe());

    // A wrong HMAC key: the MAC does not verify.
    let eab_wrong = (eab_key(&env, "team-b").0, eab_a.1.clone());
    let lego4 = Lego::new(&env, "b4");
    let o = lego4.run(
        &strs(&lego_flags(&env, &eab_wrong, &["v.b.example.test"])),
        "run",
        &[],
    );
    assert!(
        !o.success(),
        "a binding with the wrong HMAC key must be refused"
    );
    assert!(
        o.combined().contains("MAC does not verify"),
        "{}",
        o.describe()
    );

    // A tenant-scoped operator key sees its tenant's certificates only.
    let (st, v) = admin(
        &env,
        &key,
        "POST",
        "/admin/v1/keys",
        Some(json!({"name": "team-b ops", "role": "operator", "tenant": "team-b"})),
    );
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["tenant"], "team-b");
    let scoped = v["key"].as_str().expect("key").to_string();
    let (st, _) = admin(
        &env,
        &scoped,
        "GET",
        &format!("/admin/v1/certificates/{serial_a}"),
        None,
    );
    assert_eq!(st, 404, "a team-b key must not see team-a's certificate");
    let (st, _) = admin(
        &env,
        &scoped,
        "POST",
        &format!("/admin/v1/certificates/{serial_a}/revoke"),
        Some(json!({})),
    );
    assert_eq!(st, 404, "a team-b key must not revoke team-a's certificate");
    let (st, v) = admin(
        &env,
        &scoped,
        "GET",
        &format!("/admin/v1/certificates/{serial_b}"),
        None,
    );
    assert_eq!((st, v["tenant"].as_str()), (200, Some("team-b")), "{v}");
    let (st, v) = admin(&env, &scoped, "GET", "/admin/v1/tenants", None);
    assert_eq!(st, 200);
    assert_eq!(v["tenants"].as_array().map(Vec::len), Some(1), "{v}");
    let (st, _) = admin(
        &env,
        &scoped,
        "GET",
        "/admin/v1/tenants/team-a/eab-keys",
        None,
    );
    assert_eq!(st, 404);
    let (st, _) = admin(
        &env,
        &scoped,
        "POST",
        "/admin/v1/tenants",
        Some(json!({"id": "c"})),
    );
    assert_eq!(st, 403, "operators cannot create tenants");
    let (st, v) = admin(
        &env,
        &key,
        "POST",
        "/admin/v1/keys",
        Some(json!({"name": "x", "role": "admin", "tenant": "team-b"})),
    );
    assert_eq!(st, 400, "admin keys cannot be scoped: {v}");

    // Disabling team-a stops its account from getting certificates.
    let (st, _) = admin(&env, &key, "POST", "/admin/v1/tenants/team-a/disable", None);
    assert_eq!(st, 200);
    let o = cb.certonly(&strs(&certbot_args(
        &env,
        "after",
        None,
        &["late.a.example.test"],
    )));
    assert!(!o.success(), "a disabled tenant's account must get nothing");
    assert!(
        certbot_output(&cb, &o).contains("disabled"),
        "{}",
        o.describe()
    );

    // The audit log names the tenant of each issuance and the EAB binding.
    let (st, audit) = admin(&env, &key, "GET", "/admin/v1/audit?limit=1000", None);
    assert_eq!(st, 200);
    let entries = audit["entries"].as_array().expect("entries");
    let issued: Vec<&str> = entries
        .iter()
        .filter(|e| {
            e["action"] == "certificate.issue"
                && e["actor"].as_str().is_some_and(|a| a.starts_with("acme:"))
        })
        .filter_map(|e| e["summary"].as_str())
        .collect();
    assert!(
        issued
            .iter()
            .any(|s| s.contains(&serial_a) && s.contains("tenant=team-a")),
        "no issuance entry for {serial_a} naming team-a: {issued:?}"
    );
    assert!(
        issued
            .iter()
            .any(|s| s.contains(&serial_b) && s.contains("tenant=team-b")),
        "no issuance entry for {serial_b} naming team-b: {issued:?}"
    );
    assert!(
        entries.iter().any(|e| e["action"] == "account.create"
            && e["summary"].as_str().is_some_and(|s| s.contains(&eab_a.0))),
        "no account.create entry naming {}",
        eab_a.0
    );
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "certificate.issue" && e["actor"] == "server:listener"),
        "the listener certificate's issuance is not audited"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "ocsp_responder.issue"),
        "OCSP responder certificates are not audited"
    );
}
