//! The metrics a platform team alerts on are really exported: the release
//! binary issues a certificate through ACME, revokes it, serves a CRL and
//! an OCSP answer, and `/metrics` must then carry every metric that the
//! alert rules (deploy/prometheus/ironseal-alerts.yml) and the Grafana
//! dashboard (deploy/grafana/ironseal-dashboard.json) query.
//!
//! Run: `cargo build --release -p ironseal && cargo test -p ironseal-conformance --test metrics`

#![allow(clippy::unwrap_used, reason = "tests: a panic is a test failure")]

use std::collections::BTreeSet;

use instant_acme::{RevocationReason, RevocationRequest};
use ironseal_conformance::prelude::*;
use rustls_pki_types::CertificateDer;
use serde::Deserialize as _;

/// `ironseal_[a-z_]+` names in a PromQL expression.
fn metric_names(expr: &str, out: &mut BTreeSet<String>) {
    let b = expr.as_bytes();
    let mut i = 0;
    while let Some(off) = expr[i..].find("ironseal_") {
        let start = i + off;
        let prev_ok = start == 0 || !(b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_');
        let mut end = start + "ironseal_".len();
        while end < b.len() && (b[end].is_ascii_lowercase() || b[end] == b'_') {
            end += 1;
        }
        if prev_ok {
            out.insert(expr[start..end].to_string());
        }
        i = end;
    }
}

fn json_exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => json_exprs(x, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| json_exprs(x, out)),
        _ => {}
    }
}

/// Every metric name the alert rules and the dashboard query.
fn referenced_metrics() -> BTreeSet<String> {
    let root = ironseal_conformance::server::workspace_root();
    let mut names = BTreeSet::new();
    let rules =
        std::fs::read_to_string(root.join("deploy/prometheus/ironseal-alerts.yml")).unwrap();
    let rules = serde_yaml::Value::deserialize(serde_yaml::Deserializer::from_str(&rules)).unwrap();
    for g in rules["groups"].as_sequence().unwrap() {
        for r in g["rules"].as_sequence().unwrap() {
            metric_names(r["expr"].as_str().unwrap(), &mut names);
            // Annotations may query too (e.g. the approval queue length).
            if let Some(a) = r["annotations"].as_mapping() {
                for v in a.values() {
                    metric_names(v.as_str().unwrap_or(""), &mut names);
                }
            }
        }
    }
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("deploy/grafana/ironseal-dashboard.json")).unwrap(),
    )
    .unwrap();
    let mut exprs = Vec::new();
    json_exprs(&dash, &mut exprs);
    assert!(exprs.len() >= 10, "dashboard has {} queries", exprs.len());
    for e in &exprs {
        metric_names(e, &mut names);
    }
    names
}

/// The family of a sample name (`x_bucket` → `x`).
fn family(name: &str) -> &str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(f) = name.strip_suffix(suffix) {
            return f;
        }
    }
    name
}

fn scrape(srv: &Server) -> String {
    let url = format!("http://127.0.0.1:{}/metrics", srv.http_port);
    let r = blocking(|| ironseal_conformance::client::get(&url, None)).unwrap();
    assert_eq!(r.status, 200, "GET /metrics: {}", r.text());
    r.text()
}

/// A sample line of `name`: the name followed by labels or a space.
fn has_sample(text: &str, name: &str) -> bool {
    text.lines().any(|l| {
        l.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
    })
}

#[test]
fn name_extraction() {
    let mut n = BTreeSet::new();
    metric_names(
        "sum(rate(ironseal_a_total{x=\"y\"}[5m])) / ironseal_b_seconds_bucket - time() + not_ironseal_c",
        &mut n,
    );
    assert_eq!(
        n.into_iter().collect::<Vec<_>>(),
        vec!["ironseal_a_total", "ironseal_b_seconds_bucket"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_used_by_alerts_and_dashboard_is_exported() {
    let wanted = referenced_metrics();
    assert!(wanted.len() >= 12, "{wanted:?}");

    let env = Env::start("metrics").await;
    let (acct, _) = env.account().await;
    let issued = issue(
        &acct,
        &env.h01,
        None,
        &[dns("m.metrics.example.test")],
        None,
    )
    .await
    .unwrap();
    acct.revoke(&RevocationRequest {
        certificate: &CertificateDer::from(issued.leaf_der.clone()),
        reason: Some(RevocationReason::Superseded),
    })
    .await
    .unwrap();

    // Fetch each CA's CRL so its thisUpdate/nextUpdate gauges exist.
    let first = scrape(&env.srv);
    let cas: Vec<String> = first
        .lines()
        .filter_map(|l| l.strip_prefix("ironseal_ca_expiration_timestamp_seconds{ca=\""))
        .filter_map(|rest| rest.split('"').next().map(str::to_string))
        .collect();
    assert!(!cas.is_empty(), "no CA expiry gauge:\n{first}");
    for ca in &cas {
        let url = format!("http://127.0.0.1:{}/crl/{ca}.crl", env.srv.http_port);
        let _ = blocking(|| ironseal_conformance::client::get(&url, None));
    }

    let text = scrape(&env.srv);
    // Families that have no sample until their event happens once (a
    // renewal is not part of this flow): a `# TYPE` line must still say the
    // server exports them.
    let may_be_empty = ["ironseal_certificates_renewed_total"];
    let mut missing = Vec::new();
    for name in &wanted {
        let fam = family(name);
        let typed = text.contains(&format!("# TYPE {fam} "));
        let sampled = has_sample(&text, name);
        if !typed || !(sampled || may_be_empty.contains(&fam)) {
            missing.push(name.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "not exported: {missing:?}\n--- /metrics ---\n{text}"
    );

    // The events of this flow are counted with their labels.
    for want in [
        "ironseal_certificates_issued_total{protocol=\"acme\",profile=\"default\",tenant=\"\",outcome=\"issued\"} 1",
        "ironseal_certificates_revoked_total{protocol=\"acme\",reason=\"superseded\"} 1",
        "ironseal_validations_total{type=\"http-01\",outcome=\"valid\"} 1",
        "ironseal_certificate_remaining_lifetime_seconds_count{profile=\"default\"} 0",
        "ironseal_http_request_duration_seconds_count{protocol=\"acme\"}",
        "ironseal_http_request_duration_seconds_count{protocol=\"crl\"}",
    ] {
        assert!(text.contains(want), "missing {want}\n{text}");
    }
}

/// `[metrics] listen` and `bearer_token_file` (hardening, issue 10 item
/// 15): `/metrics` moves to its own listener (404 on the plain one) and
/// needs the bearer token there (401 without or with a wrong one).
#[test]
fn metrics_listener_and_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = Server::without_dns(dir.path());
    let port = ironseal_conformance::net::free_tcp_port();
    let token_file = dir.path().join("metrics-token");
    std::fs::write(&token_file, "conformance-metrics-token-0123\n").unwrap();
    srv.set_config(&format!(
        "[metrics]\nlisten = \"127.0.0.1:{port}\"\nbearer_token_file = {:?}\n",
        token_file.display().to_string()
    ));
    srv.start();
    let client = ironseal_conformance::client::HttpClient::new(ClientConfig {
        root: None,
        client_cert: None,
    })
    .unwrap();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let get = |headers: &[(&str, &str)]| {
        client
            .request_blocking("GET", &url, headers, Vec::new())
            .unwrap()
    };
    let r = get(&[]);
    assert_eq!(r.status, 401, "{}", r.text());
    let r = get(&[("Authorization", "Bearer wrong-token-wrong-token")]);
    assert_eq!(r.status, 401, "{}", r.text());
    let r = get(&[("Authorization", "Bearer conformance-metrics-token-0123")]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("ironseal_"), "{}", r.text());
    // Not on the plain-HTTP listener any more; the rest of it is.
    let plain = format!("http://127.0.0.1:{}", srv.http_port);
    let r = ironseal_conformance::client::get(&format!("{plain}/metrics"), None).unwrap();
    assert_eq!(r.status, 404, "{}", r.text());
    let r = ironseal_conformance::client::get(&format!("{plain}/ca/root.pem"), None).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let r = ironseal_conformance::client::get(&format!("http://127.0.0.1:{port}/health"), None)
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}
