//! Name constraints on the issuing CA (RFC 5280 §4.2.1.10), seen through
//! certbot: names inside the permitted subtree are issued and verify with
//! openssl; names outside it, or inside an excluded subtree, are refused at
//! newOrder with rejectedIdentifier before any challenge is offered.

use ironseal_conformance::clients::{acme_problem_types, Certbot};
use ironseal_conformance::subject::Subject;
use ironseal_conformance::TestEnv;

fn certonly(
    env: &TestEnv,
    cb: &Certbot,
    name: &str,
    domains: &[&str],
) -> ironseal_conformance::proc::Output {
    let port = env.server.http01_port.to_string();
    let mut args = vec![
        "--standalone",
        "--preferred-challenges",
        "http-01",
        "--http-01-address",
        "127.0.0.1",
        "--http-01-port",
        &port,
        "--cert-name",
        name,
    ];
    for d in domains {
        args.extend(["-d", d]);
    }
    cb.certonly(&args)
}

#[test]
fn issuing_ca_name_constraints_are_enforced() {
    // The server's own HTTPS names must be permitted too (it refuses to
    // start otherwise, see server_refuses_constraints_excluding_its_names).
    let env = TestEnv::start_with(&[
        "--ca-permit",
        "dns:localhost,ip:127.0.0.1/32",
        "--ca-permit",
        "dns:allowed.test",
        "--ca-exclude",
        "dns:no.allowed.test",
    ]);
    if env.subject == Subject::Pebble {
        env.skip(
            "name constraints",
            "Pebble has no name-constrained issuing CA option",
        );
        return;
    }
    let cb = Certbot::new(&env, "nc");

    // Inside the permitted subtree: issued, and openssl accepts the chain
    // (the intermediate now carries a critical nameConstraints extension).
    let ok = certonly(&env, &cb, "ok", &["a.allowed.test", "allowed.test"]);
    assert!(
        ok.success(),
        "permitted names must be issued:\n{}",
        ok.describe()
    );
    let chain = cb.live("ok", "fullchain.pem");
    env.check_issued(&chain, &["a.allowed.test", "allowed.test"]);
    let text = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-ext", "nameConstraints", "-in"])
        .arg(cb.live("ok", "chain.pem"))
        .output()
        .expect("openssl x509");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("critical"),
        "nameConstraints must be critical: {text}"
    );
    assert!(
        text.contains("DNS:allowed.test"),
        "permitted subtree missing: {text}"
    );
    assert!(
        text.contains("DNS:no.allowed.test"),
        "excluded subtree missing: {text}"
    );

    // Outside the permitted subtree, and inside the excluded one: refused.
    for (label, names) in [
        ("outside", vec!["b.other.test"]),
        ("excluded", vec!["x.no.allowed.test"]),
        ("mixed", vec!["c.allowed.test", "d.other.test"]),
    ] {
        let o = certonly(&env, &cb, label, &names);
        assert!(
            !o.success(),
            "{label}: {names:?} must be refused:\n{}",
            o.describe()
        );
        let log = std::fs::read_to_string(cb.log_file()).unwrap_or_default();
        let types = acme_problem_types(&format!("{}\n{log}", o.combined()));
        assert!(
            types
                .iter()
                .any(|t| t == "urn:ietf:params:acme:error:rejectedIdentifier"),
            "{label}: expected rejectedIdentifier, got {types:?}\n{}",
            o.describe()
        );
        assert!(
            !cb.live(label, "fullchain.pem").exists(),
            "{label}: no certificate may be written"
        );
    }
}

#[test]
fn server_refuses_constraints_excluding_its_names() {
    if Subject::from_env() == Subject::Pebble {
        eprintln!("[conformance] skip for pebble: ironseal-only startup check");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut srv = ironseal_conformance::Server::without_dns(dir.path());
    srv.extra = vec!["--ca-permit".into(), "dns:allowed.test".into()];
    let o = srv
        .run_until_exit(std::time::Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!o.timed_out(), "the server must refuse to start, not serve");
    assert!(
        !o.success(),
        "the server must exit non-zero:\n{}",
        o.describe()
    );
    let text = o.combined();
    assert!(
        text.contains("permit the server's --hostname values"),
        "the error must tell the operator what to change:\n{text}"
    );
}
