//! Every CA key algorithm selectable at first start (`--ca-key-algorithm`)
//! yields a working server: its HTTPS chain is accepted by a rustls client,
//! and an ACME order gives a leaf whose chain openssl verifies against the
//! written root and pkilint finds clean.

use ironseal_conformance::prelude::*;

async fn issue_with(alg: &str) {
    let env = Env::start_with(&format!("alg-{alg}"), &["--ca-key-algorithm", alg]).await;
    let (acct, _) = env.account().await;
    let name = format!("{alg}.algo.example.test");
    let issued = issue(&acct, &env.h01, None, &[dns(&name)], None)
        .await
        .unwrap_or_else(|e| panic!("{alg}: {e}"));
    let chain = env.path().join("chain.pem");
    std::fs::write(&chain, &issued.chain).expect("write chain");
    blocking(|| {
        ironseal_conformance::certs::check_issued(
            &chain,
            &[name.as_str()],
            &env.srv.root(),
            &env.path().join("checks"),
            &[],
        )
    });
    // The root really uses the requested algorithm.
    let text = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(env.srv.root())
        .output()
        .expect("openssl x509");
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    let want = match alg {
        "p256" => "prime256v1",
        "p384" => "secp384r1",
        "rsa3072" => "(3072 bit)",
        "rsa4096" => "(4096 bit)",
        "ed25519" => "ED25519",
        other => panic!("unknown algorithm {other}"),
    };
    assert!(
        text.contains(want),
        "{alg}: root should show {want:?}:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p384_ca_serves_tls_and_issues_clean_leaf() {
    issue_with("p384").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa3072_ca_serves_tls_and_issues_clean_leaf() {
    issue_with("rsa3072").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa4096_ca_serves_tls_and_issues_clean_leaf() {
    issue_with("rsa4096").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ed25519_ca_serves_tls_and_issues_clean_leaf() {
    issue_with("ed25519").await;
}
