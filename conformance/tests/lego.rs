//! lego (Debian, 4.9.1) against the subject server. See conformance/src/lib.rs.
//!
//! Run: `IRONSEAL_TEST_SUBJECT=pebble cargo test -p ironseal-conformance --test lego`

use ironseal_conformance::certs;
use ironseal_conformance::clients::{acme_problem_types, Lego};
use ironseal_conformance::TestEnv;

fn http_flags(env: &TestEnv) -> Vec<String> {
    vec![
        "--http".into(),
        "--http.port".into(),
        format!("127.0.0.1:{}", env.server.http01_port),
    ]
}

fn tls_flags(env: &TestEnv) -> Vec<String> {
    vec![
        "--tls".into(),
        "--tls.port".into(),
        format!("127.0.0.1:{}", env.server.tlsalpn01_port),
    ]
}

fn dns_flags(env: &TestEnv) -> Vec<String> {
    vec![
        "--dns".into(),
        "exec".into(),
        "--dns.resolvers".into(),
        env.dns.dns_addr(),
        "--dns.disable-cp".into(),
    ]
}

fn with_domains(mut flags: Vec<String>, domains: &[&str]) -> Vec<String> {
    for d in domains {
        flags.push("-d".into());
        flags.push(d.to_string());
    }
    flags
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `lego <flags> -d .. run`, then the full certificate check.
fn issue(env: &TestEnv, lego: &Lego, flags: Vec<String>, domains: &[&str]) {
    let g = with_domains(flags, domains);
    let o = lego.run(&strs(&g), "run", &[]);
    assert!(
        o.success(),
        "lego run failed:\n{}\n{}\n--- challtestsrv ---\n{}",
        o.describe(),
        env.server_log(),
        env.dns.log_tail(3000)
    );
    let crt = lego.cert_file(domains[0]);
    assert!(crt.is_file(), "{} missing after lego run", crt.display());
    env.check_issued(&crt, domains);
}

#[test]
fn lego_http01_issues_checked_certificate() {
    let env = TestEnv::start();
    let lego = Lego::new(&env, "http");
    issue(&env, &lego, http_flags(&env), &["x.example.test"]);
}

#[test]
fn lego_tlsalpn01_issues_checked_certificate() {
    let env = TestEnv::start();
    let lego = Lego::new(&env, "tls");
    issue(&env, &lego, tls_flags(&env), &["y.example.test"]);
}

#[test]
fn lego_dns01_exec_with_wildcard() {
    let env = TestEnv::start();
    let lego = Lego::new(&env, "dns");
    issue(
        &env,
        &lego,
        dns_flags(&env),
        &["z.example.test", "*.z.example.test"],
    );
}

#[test]
fn lego_renew_forced_by_days() {
    let env = TestEnv::start();
    let lego = Lego::new(&env, "renew");
    let names = ["r.example.test"];
    issue(&env, &lego, http_flags(&env), &names);
    let crt = lego.cert_file(names[0]);
    let serial1 = certs::serial_hex(&crt);

    // Default --days 30 on a fresh certificate: nothing to do (only meaningful
    // if the certificate lives longer than 30 days).
    let remaining = certs::not_after(&crt) - time::OffsetDateTime::now_utc();
    let g = with_domains(http_flags(&env), &names);
    if remaining > time::Duration::days(31) {
        let o = lego.run(&strs(&g), "renew", &["--no-random-sleep"]);
        o.expect_success("lego renew (not due)");
        assert_eq!(
            serial1,
            certs::serial_hex(&crt),
            "lego renewed a certificate that was not due:\n{}",
            o.describe()
        );
    }

    // --days larger than any lifetime forces the renewal.
    let o = lego.run(
        &strs(&g),
        "renew",
        &["--days", "100000", "--no-random-sleep"],
    );
    assert!(
        o.success(),
        "lego renew failed:\n{}\n{}",
        o.describe(),
        env.server_log()
    );
    let serial2 = certs::serial_hex(&crt);
    assert_ne!(
        serial1,
        serial2,
        "lego renew did not produce a new certificate:\n{}",
        o.describe()
    );
    env.check_issued(&crt, &names);
}

#[test]
fn lego_revoke_then_already_revoked() {
    let env = TestEnv::start();
    let lego = Lego::new(&env, "revoke");
    let names = ["v.example.test"];
    issue(&env, &lego, http_flags(&env), &names);
    let crt = lego.cert_file(names[0]);
    let serial = certs::serial_hex(&crt);
    let cert_id = certs::ari_cert_id(&crt);
    let g = with_domains(Vec::new(), &names);

    // --keep leaves the files in place so the second attempt reaches the server.
    let o = lego.run(&strs(&g), "revoke", &["--keep", "--reason", "1"]);
    assert!(
        o.success(),
        "lego revoke failed:\n{}\n{}",
        o.describe(),
        env.server_log()
    );

    let o2 = lego.run(&strs(&g), "revoke", &["--keep"]);
    assert!(
        !o2.success() && !o2.timed_out(),
        "second revoke must fail:\n{}",
        o2.describe()
    );
    let types = acme_problem_types(&o2.combined());
    assert!(
        types
            .iter()
            .any(|t| t == "urn:ietf:params:acme:error:alreadyRevoked"),
        "second revoke should report alreadyRevoked, found {types:?}:\n{}",
        o2.describe()
    );

    env.assert_revoked(&cert_id, &serial);
}
