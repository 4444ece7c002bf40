//! Profiles as types, end to end through the real server: a device profile
//! (subject and email/URI SANs from the CSR, clientAuth), a SPIFFE profile
//! (one spiffe:// URI SAN under the tenant's prefixes, no CN, one hour) and
//! a five-minute TLS profile over ACME whose ARI window and Retry-After
//! fit its lifetime. Certificates are checked with openssl and pkilint.

use std::path::Path;
use std::process::Command;

use ironseal_conformance::certs;
use ironseal_conformance::prelude::*;
use serde_json::{json, Value};

const CONFIG: &str = r#"
[[profiles]]
name = "default"
lifetime_days = 90
ekus = ["serverAuth", "clientAuth"]

[[profiles]]
name = "device"
kind = "device"
lifetime_days = 365
ekus = ["clientAuth"]
allowed_sans = ["email", "uri"]

[[profiles]]
name = "spiffe"
kind = "spiffe"
lifetime_minutes = 60

[[profiles]]
name = "short"
lifetime_minutes = 5
ekus = ["serverAuth"]
"#;

fn admin(env: &Env, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let text = body.map(|b| b.to_string());
    let r = blocking(|| {
        env.srv
            .call(method, path, Some(&env.srv.admin_key), text.as_deref())
    })
    .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    (
        r.status,
        serde_json::from_str(&r.text()).unwrap_or(Value::Null),
    )
}

/// An EC P-256 CSR made by openssl with `subj` and `san` (openssl syntax).
fn openssl_csr(dir: &Path, name: &str, subj: &str, san: &str) -> String {
    let san = format!("subjectAltName={san}");
    let (_, csr) = openssl_key_and_csr(dir, name, subj, &["-addext", &san]);
    std::fs::read_to_string(&csr).expect("csr")
}

fn openssl_text(cert: &Path) -> String {
    let o = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(cert)
        .output()
        .expect("openssl");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The `Subject:` of openssl's text form (empty for an empty subject).
fn subject_line(text: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Subject:"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// `openssl verify -purpose sslclient` of `leaf` over `chain` to `root`.
fn verify_client(root: &Path, chain_pem: &str, leaf: &Path, dir: &Path) {
    let inter = dir.join("inter.pem");
    std::fs::write(&inter, chain_pem).expect("write chain");
    let o = Command::new("openssl")
        .args(["verify", "-purpose", "sslclient", "-CAfile"])
        .arg(root)
        .arg("-untrusted")
        .arg(&inter)
        .arg(leaf)
        .output()
        .expect("openssl");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains(": OK"),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// pkilint findings, tolerating exactly its known false positive for
/// non-web URI schemes (`spiffe:`), see ca-core/tests/profiles.rs.
fn lint_clean(leaf: &Path) {
    let findings: Vec<String> = certs::pkilint_errors(leaf)
        .into_iter()
        .filter(|f| !(f.contains("pkix.invalid_uri_syntax") && f.contains("spiffe://")))
        .collect();
    assert!(findings.is_empty(), "pkilint: {findings:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_spiffe_and_short_lived_profiles() {
    let cfg_dir = tempfile::tempdir().expect("tempdir");
    let cfg = cfg_dir.path().join("ironseal.toml");
    std::fs::write(&cfg, CONFIG).expect("write config");
    let env = Env::start_with(
        "profiles-kinds",
        &["--config", cfg.to_str().expect("utf-8")],
    )
    .await;
    let work = env.path().join("kinds");
    std::fs::create_dir_all(&work).expect("mkdir");
    let root = env.srv.root();

    let (st, v) = admin(
        &env,
        "POST",
        "/admin/v1/tenants",
        Some(json!({"id": "mesh", "profiles": ["device", "spiffe"],
            "names": {"uri": ["spiffe://mesh.example/ns/a", "urn:dev:mesh"], "email": ["corp.example"]}})),
    );
    assert_eq!(st, 201, "{v}");

    // Device: subject copied from the CSR, email and URI SANs, clientAuth.
    let pem = openssl_csr(
        &work,
        "dev",
        "/CN=sensor-17/O=Mesh Devices/C=DE",
        "email:sensor-17@corp.example,URI:spiffe://mesh.example/ns/a/dev/sensor-17",
    );
    let (st, v) = admin(
        &env,
        "POST",
        "/admin/v1/certificates",
        Some(json!({"csrPem": pem, "profile": "device", "tenant": "mesh"})),
    );
    assert_eq!(st, 201, "{v}");
    let leaf = work.join("dev.pem");
    std::fs::write(&leaf, v["certificatePem"].as_str().expect("pem")).expect("write");
    let chain = v["chainPem"].as_str().expect("chain").to_string();
    verify_client(&root, &chain, &leaf, &work);
    lint_clean(&leaf);
    let text = openssl_text(&leaf);
    assert_eq!(
        subject_line(&text),
        "CN = sensor-17, O = Mesh Devices, C = DE",
        "{text}"
    );
    assert!(text.contains("email:sensor-17@corp.example"), "{text}");
    assert!(
        text.contains("URI:spiffe://mesh.example/ns/a/dev/sensor-17"),
        "{text}"
    );
    assert!(
        text.contains("TLS Web Client Authentication") && !text.contains("TLS Web Server"),
        "{text}"
    );

    // Device with a DNS SAN: the profile copies only email and URI.
    let pem = openssl_csr(&work, "dev-dns", "/CN=x", "DNS:x.example.test");
    let (st, v) = admin(
        &env,
        "POST",
        "/admin/v1/certificates",
        Some(json!({"csrPem": pem, "profile": "device", "tenant": "mesh"})),
    );
    assert_eq!(
        (st, v["code"].as_str()),
        (422, Some("rejected_name")),
        "{v}"
    );

    // SPIFFE: one URI SAN, no subject, an hour, inside the tenant's prefix.
    let pem = openssl_csr(&work, "svc", "/", "URI:spiffe://mesh.example/ns/a/sa/web");
    let (st, v) = admin(
        &env,
        "POST",
        "/admin/v1/certificates",
        Some(json!({"csrPem": pem, "profile": "spiffe", "tenant": "mesh"})),
    );
    assert_eq!(st, 201, "{v}");
    let leaf = work.join("svc.pem");
    std::fs::write(&leaf, v["certificatePem"].as_str().expect("pem")).expect("write");
    verify_client(&root, &chain, &leaf, &work);
    lint_clean(&leaf);
    let text = openssl_text(&leaf);
    assert!(
        text.contains("URI:spiffe://mesh.example/ns/a/sa/web"),
        "{text}"
    );
    assert!(
        !text.contains("CN="),
        "a SPIFFE certificate has no CN: {text}"
    );
    let (nb, na) = certs::validity(&leaf);
    let life = na - nb;
    assert!(
        life >= time::Duration::minutes(60) && life <= time::Duration::minutes(67),
        "a one-hour profile gave {life}"
    );

    // SPIFFE outside the tenant's prefix, and a second URI: refused.
    for (name, san, code) in [
        (
            "out",
            "URI:spiffe://mesh.example/ns/b/sa/web",
            "rejected_name",
        ),
        (
            "two",
            "URI:spiffe://mesh.example/ns/a/x,URI:spiffe://mesh.example/ns/a/y",
            "bad_csr",
        ),
    ] {
        let pem = openssl_csr(&work, name, "/", san);
        let (st, v) = admin(
            &env,
            "POST",
            "/admin/v1/certificates",
            Some(json!({"csrPem": pem, "profile": "spiffe", "tenant": "mesh"})),
        );
        assert_eq!(v["code"].as_str(), Some(code), "{name}: HTTP {st} {v}");
    }
    // The tenant may not use the TLS profile.
    let pem = openssl_csr(&work, "tls", "/CN=a.example.test", "DNS:a.example.test");
    let (st, v) = admin(
        &env,
        "POST",
        "/admin/v1/certificates",
        Some(json!({"csrPem": pem, "tenant": "mesh"})),
    );
    assert_eq!(
        (st, v["code"].as_str()),
        (422, Some("profile_not_allowed")),
        "{v}"
    );

    // Five minutes over ACME, with an ARI window inside the lifetime and a
    // Retry-After that lets a client check within it.
    let (acct, _key) = env.account().await;
    let idents = [dns("short.example.test")];
    let mut order = acct
        .new_order(&instant_acme::NewOrder::new(&idents).profile("short"))
        .await
        .expect("newOrder");
    let issued = finish(&mut order, &env.h01, None, &idents, None)
        .await
        .expect("short-lived issuance");
    let pem_path = work.join("short.pem");
    std::fs::write(&pem_path, issued.leaf_pem()).expect("write");
    let (nb, na) = certs::validity(&pem_path);
    let life = na - nb;
    assert!(
        life >= time::Duration::minutes(5) && life <= time::Duration::seconds(5 * 60 + 31),
        "a five-minute profile gave {life}"
    );
    let cert_id = certs::ari_cert_id(&pem_path);
    let raw = env.raw().await;
    let r = raw
        .get(&format!(
            "{}/{cert_id}",
            raw.url("renewalInfo").trim_end_matches('/')
        ))
        .await;
    r.expect_status(200, "renewalInfo of a short-lived certificate");
    let w = r.json()["suggestedWindow"].clone();
    let parse = |k: &str| {
        time::OffsetDateTime::parse(
            w[k].as_str().expect("window time"),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("rfc3339")
    };
    let (start, end) = (parse("start"), parse("end"));
    assert!(
        nb < start && start < end && end < na,
        "window {start}..{end} outside {nb}..{na}"
    );
    let retry: i64 = r
        .header("Retry-After")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    // The harness configures one second; the server never exceeds a tenth
    // of the lifetime (at least 60 s), whatever is configured.
    assert!(
        (1..=60).contains(&retry),
        "Retry-After {retry} for a five-minute certificate"
    );
}
