//! certbot (from the venv) against the subject server. See conformance/src/lib.rs.
//!
//! Run: `IRONSEAL_TEST_SUBJECT=pebble cargo test -p ironseal-conformance --test certbot`

use ironseal_conformance::certs;
use ironseal_conformance::clients::{acme_problem_types, file_bytes, Certbot};
use ironseal_conformance::server::script;
use ironseal_conformance::TestEnv;
use std::path::Path;

fn standalone_args(env: &TestEnv) -> Vec<String> {
    vec![
        "--standalone".into(),
        "--preferred-challenges".into(),
        "http-01".into(),
        "--http-01-address".into(),
        "127.0.0.1".into(),
        "--http-01-port".into(),
        env.server.http01_port.to_string(),
    ]
}

/// Issues a certificate with http-01 standalone under `--cert-name name`.
fn issue_standalone(env: &TestEnv, cb: &Certbot, name: &str, domains: &[&str]) {
    let mut args: Vec<String> = standalone_args(env);
    args.extend(["--cert-name".into(), name.into()]);
    for d in domains {
        args.extend(["-d".into(), d.to_string()]);
    }
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = cb.certonly(&a);
    assert!(
        o.success(),
        "certbot certonly failed:\n{}\n{}",
        o.describe(),
        env.server_log()
    );
    let chain = cb.live(name, "fullchain.pem");
    assert!(
        chain.is_file(),
        "{} missing after certbot certonly",
        chain.display()
    );
    env.check_issued(&chain, domains);
}

/// Removes certbot's cached `[acme_renewal_info]` section (ari_retry_after), so
/// the next `certbot renew` asks the server's ARI again instead of waiting for
/// the Retry-After the previous ARI response gave. This stands in for time passing.
fn forget_ari_retry_after(conf: &Path) {
    let text = std::fs::read_to_string(conf).expect("read renewal conf");
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            skipping = t == "[acme_renewal_info]";
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    std::fs::write(conf, out).expect("write renewal conf");
}

#[test]
fn certbot_http01_standalone_two_names() {
    let env = TestEnv::start();
    let cb = Certbot::new(&env, "a");
    issue_standalone(&env, &cb, "a", &["a.example.test", "b.example.test"]);
}

#[test]
fn certbot_dns01_manual_hooks_with_wildcard() {
    let env = TestEnv::start();
    let cb = Certbot::new(&env, "dns");
    let auth = script("certbot-dns-auth.sh");
    let cleanup = script("certbot-dns-cleanup.sh");
    let names = ["wild.example.test", "*.wild.example.test", "c.example.test"];
    let o = cb.certonly(&[
        "--manual",
        "--preferred-challenges",
        "dns",
        "--manual-auth-hook",
        auth.to_str().expect("utf8 path"),
        "--manual-cleanup-hook",
        cleanup.to_str().expect("utf8 path"),
        "--cert-name",
        "dns",
        "-d",
        names[0],
        "-d",
        names[1],
        "-d",
        names[2],
    ]);
    assert!(
        o.success(),
        "certbot dns-01 failed:\n{}\n{}\n--- challtestsrv ---\n{}",
        o.describe(),
        env.server_log(),
        env.dns.log_tail(3000)
    );
    env.check_issued(&cb.live("dns", "fullchain.pem"), &names);
}

#[test]
fn certbot_renew_driven_by_ari() {
    let env = TestEnv::start();
    let cb = Certbot::new(&env, "ari");
    issue_standalone(&env, &cb, "ari", &["ari.example.test"]);
    let cert = cb.live("ari", "cert.pem");
    let before = file_bytes(&cb.live("ari", "fullchain.pem"));
    let serial1 = certs::serial_hex(&cert);

    // Not due: fresh certificate, ARI window (if any) in the future.
    let ari = env.server.renewal_info_url();
    let now = time::OffsetDateTime::now_utc();
    if ari.is_some() {
        let ri = env
            .server
            .renewal_info(&certs::ari_cert_id(&cert))
            .unwrap_or_else(|e| panic!("{e}\n{}", env.server_log()));
        assert!(
            ri.start > now,
            "fresh certificate: ARI window should start in the future, got {}",
            ri.raw
        );
    }
    let o = cb.run(&["renew", "--no-random-sleep-on-renew"]);
    o.expect_success("certbot renew (not due)");
    assert!(
        o.combined().contains("not yet due"),
        "expected 'not yet due':\n{}",
        o.describe()
    );
    assert_eq!(
        before,
        file_bytes(&cb.live("ari", "fullchain.pem")),
        "certificate changed although not due"
    );
    assert_eq!(serial1, certs::serial_hex(&cert));

    let Some(_) = ari else {
        env.skip(
            "certbot ARI-driven renewal",
            "the directory has no renewalInfo (Pebble 2.4 predates ARI)",
        );
        return;
    };

    // Without ARI, certbot renews at 2/3 of the lifetime (1/2 under 10 days), or
    // earlier if renew_before_expiry is set (it is not: certbot writes it commented
    // out). Make sure we are well before that, so only ARI can trigger the renewal.
    let default_due = certs::certbot_default_renewal_time(&cert);
    assert!(
        default_due - now > time::Duration::minutes(5),
        "certificate lifetime too short to prove ARI drove the renewal (certbot's default would renew at {default_due})"
    );
    let conf = std::fs::read_to_string(cb.renewal_conf("ari")).expect("renewal conf");
    assert!(
        !conf
            .lines()
            .any(|l| l.trim_start().starts_with("renew_before_expiry")),
        "renewal conf sets renew_before_expiry; the test needs it unset:\n{conf}"
    );

    env.server
        .mark_renew_early(&serial1)
        .unwrap_or_else(|e| panic!("renew-early: {e}\n{}", env.server_log()));
    let ri = env
        .server
        .renewal_info(&certs::ari_cert_id(&cert))
        .expect("ARI after renew-early");
    let now = time::OffsetDateTime::now_utc();
    assert!(
        ri.start <= now && ri.end <= now,
        "after renew-early the ARI window must be in the past: {}",
        ri.raw
    );

    forget_ari_retry_after(&cb.renewal_conf("ari"));
    let o = cb.run(&["renew", "--no-random-sleep-on-renew"]);
    assert!(
        o.success(),
        "certbot renew (ARI due) failed:\n{}\n{}",
        o.describe(),
        env.server_log()
    );
    let serial2 = certs::serial_hex(&cert);
    assert_ne!(
        serial1,
        serial2,
        "certbot did not renew although ARI said so:\n{}",
        o.describe()
    );
    let log = std::fs::read_to_string(cb.log_file()).unwrap_or_default();
    assert!(
        log.contains("due for renewal"),
        "certbot log does not show an automatic renewal decision"
    );
    env.check_issued(&cb.live("ari", "fullchain.pem"), &["ari.example.test"]);
}

#[test]
fn certbot_revoke_then_already_revoked() {
    let env = TestEnv::start();
    let cb = Certbot::new(&env, "rev");
    issue_standalone(&env, &cb, "rev", &["rev.example.test"]);
    let cert = cb.live("rev", "cert.pem");
    let cert_s = cert.to_str().expect("utf8 path");
    let serial = certs::serial_hex(&cert);
    let revoke = [
        "revoke",
        "--cert-path",
        cert_s,
        "--reason",
        "keycompromise",
        "--no-delete-after-revoke",
    ];

    let o = cb.run(&revoke);
    assert!(
        o.success(),
        "certbot revoke failed:\n{}\n{}",
        o.describe(),
        env.server_log()
    );

    env.assert_revoked(&certs::ari_cert_id(&cert), &serial);

    let o = cb.run(&revoke);
    assert!(
        !o.success() && !o.timed_out(),
        "second revoke must fail:\n{}",
        o.describe()
    );
    let log = std::fs::read_to_string(cb.log_file()).unwrap_or_default();
    let types = acme_problem_types(&format!("{}\n{log}", o.combined()));
    assert!(
        types
            .iter()
            .any(|t| t == "urn:ietf:params:acme:error:alreadyRevoked"),
        "second revoke should report alreadyRevoked, found {types:?}:\n{}",
        o.describe()
    );
}

#[test]
fn certbot_http01_unreachable_reports_problem_type() {
    let env = TestEnv::start();
    let cb = Certbot::new(&env, "bad");
    // certbot listens on a port the server's VA does not use: validation cannot succeed.
    let wrong = ironseal_conformance::net::free_tcp_port();
    let wrong_s = wrong.to_string();
    let o = cb.certonly(&[
        "--standalone",
        "--preferred-challenges",
        "http-01",
        "--http-01-address",
        "127.0.0.1",
        "--http-01-port",
        &wrong_s,
        "-d",
        "unreachable.example.test",
    ]);
    assert!(
        !o.success() && !o.timed_out(),
        "issuance must fail when http-01 cannot succeed:\n{}",
        o.describe()
    );
    // certbot prints the problem type shortened ("Type:   connection"); the full
    // URN is in its debug log (the file its error message points to).
    let log = std::fs::read_to_string(cb.log_file()).unwrap_or_default();
    let types = acme_problem_types(&format!("{}\n{log}", o.combined()));
    assert!(
        !types.is_empty(),
        "certbot's failure output and log name no ACME problem type (urn:ietf:params:acme:error:...):\n{}",
        o.describe()
    );
    let shown = o
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("Type:").map(|t| t.trim().to_string()))
        .unwrap_or_else(|| panic!("certbot output has no 'Type:' line:\n{}", o.describe()));
    assert!(
        types
            .iter()
            .any(|t| t.strip_prefix("urn:ietf:params:acme:error:") == Some(shown.as_str())),
        "displayed problem type {shown:?} does not match the problem URNs {types:?}"
    );
    eprintln!("[conformance] problem types reported: {types:?}");
    assert!(!cb.live("unreachable.example.test", "cert.pem").exists());
}
