//! SCEP (RFC 8894) with certmonger (Debian `certmonger` 0.79, installed by
//! scripts/install-test-deps.sh): the daemon, started by the test on a
//! private D-Bus session bus with its state in the test's directory, is
//! pointed at ironseal with `getcert add-scep-ca` and enrols with
//! `getcert request`, driving its `scep-submit` helper. The certificate
//! it writes verifies with openssl against the root and passes pkilint.
//!
//! Two things made certmonger fail where scepclient worked, both fixed in
//! ironseal and proved here:
//!
//! * its transient signer certificate has a 32-octet serial (its
//!   transactionID), which a strict RFC 5280 decoder refuses: the request
//!   was answered "not a SCEP PKIMessage";
//! * `scep-submit` verifies the CertRep's signature with OpenSSL against
//!   the top certificate of the GetCACert answer as the only trust
//!   anchor. An answer without the root (RA + intermediate) leaves the
//!   chain unanchored, and micromdm's single self-signed CA/RA certificate
//!   is taken as the RA only, so no anchor at all ("self-signed
//!   certificate", the signature "does not verify"). GetCACert now sends
//!   the chain up to the root.

use std::path::Path;
use std::process::Command;

use ironseal_conformance::certs;
use ironseal_conformance::prelude::*;

const CONFIG: &str = r#"
ca_key_algorithm = "rsa3072"

[[profiles]]
name = "default"
lifetime_days = 90
ekus = ["serverAuth", "clientAuth"]

[[profiles]]
name = "devices"
kind = "device"
lifetime_days = 30
ekus = ["clientAuth"]

[[scep.profiles]]
path = "devices"
profile = "devices"
challenge = "cm-challenge"
"#;

/// certmonger's helper, where Debian puts it.
const SCEP_SUBMIT: &str = "/usr/lib/certmonger/scep-submit";

/// What the session script does: register the CA, wait until certmonger
/// fetched its certificates, request, wait for the outcome, list.
const SCRIPT: &str = r#"#!/bin/sh
set -u
# certmonger runs the gate command with a clean environment: arguments.
SCEP_URL=$1 CHALLENGE=$2 WORK=$3
getcert add-scep-ca -s -c ironseal -u "$SCEP_URL" || exit 10
i=0
# Fetched: its CA file (CERTMONGER_CAS_DIR) holds the RA certificate.
until grep -qs "^ca_encryption_cert=" "$WORK"/cas/*; do
  i=$((i+1)); [ $i -gt 100 ] && { echo "CA certificates never fetched"; exit 11; }
  sleep 0.2
done
getcert request -s -c ironseal -k "$WORK/dev.key" -f "$WORK/dev.pem" \
  -N CN=certmonger-dev1 -L "$CHALLENGE" -w -v
getcert list -s
"#;

fn run(cmd: &mut Command) -> (bool, String) {
    let o = cmd.output().expect("spawn");
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

/// Runs certmonger on a private session bus with every state directory
/// under `work`, until the script exits; returns the script's output and
/// the daemon's debug log.
fn certmonger_session(work: &Path, url: &str, challenge: &str) -> String {
    for d in ["requests", "cas", "local", "tmp", "home"] {
        std::fs::create_dir_all(work.join(d)).expect("mkdir");
    }
    let script = work.join("session.sh");
    std::fs::write(&script, SCRIPT).expect("write");
    run(Command::new("chmod").arg("+x").arg(&script));
    let (_, out) = run(Command::new("timeout")
        .args([
            "120",
            "dbus-run-session",
            "--",
            "certmonger",
            "-s",
            "-n",
            "-d",
            "1",
            "-c",
        ])
        .arg(format!(
            "{} {url} {challenge} {}",
            script.display(),
            work.display()
        ))
        .env("CERTMONGER_REQUESTS_DIR", work.join("requests"))
        .env("CERTMONGER_CAS_DIR", work.join("cas"))
        .env("CERTMONGER_LOCAL_CA_DIR", work.join("local"))
        .env("CERTMONGER_TMPDIR", work.join("tmp"))
        .env("HOME", work.join("home"))
        .env("XDG_CONFIG_HOME", work.join("home")));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certmonger_enrols_through_scep_submit() {
    assert!(
        Path::new(SCEP_SUBMIT).is_file(),
        "{SCEP_SUBMIT} missing: run scripts/install-test-deps.sh (certmonger)"
    );
    let env = Env::start_with_config("scep-certmonger", CONFIG).await;
    let url = format!("{}/scep/devices", env.srv.http_base_url());
    let work = env.path().join("certmonger");
    std::fs::create_dir_all(&work).expect("mkdir");

    // The helper on its own: GetCACaps, and GetCACert with the root as
    // the top certificate (RA first, then the chain).
    let (ok, caps) = run(Command::new(SCEP_SUBMIT).args(["-c", "-u", &url]));
    assert!(ok && caps.lines().any(|l| l == "SCEPStandard"), "{caps}");
    let (ok, ca_certs) = run(Command::new(SCEP_SUBMIT).args(["-C", "-u", &url]));
    assert!(ok, "scep-submit -C: {ca_certs}");
    let root = std::fs::read_to_string(env.srv.root()).expect("root.pem");
    let root_b64: String = root.lines().filter(|l| !l.starts_with("-----")).collect();
    let got_b64: String = ca_certs
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(
        got_b64.contains(&root_b64),
        "GetCACert lacks the root certmonger anchors on:\n{ca_certs}"
    );

    // The daemon: getcert add-scep-ca + getcert request.
    let u = url.clone();
    let w = work.clone();
    let out = blocking(move || certmonger_session(&w, &u, "cm-challenge"));
    let cert = work.join("dev.pem");
    assert!(
        cert.is_file() && out.contains("status: MONITORING"),
        "certmonger did not enrol:\n{out}\n--- ironseal log ---\n{}",
        env.srv.log_tail()
    );
    // The chain as GetCACert gave it (openssl ignores the RA in it).
    let chain: String = ca_certs
        .split_inclusive("-----END CERTIFICATE-----\n")
        .filter(|c| c.contains("BEGIN CERTIFICATE"))
        .collect();
    std::fs::write(work.join("chain.pem"), &chain).expect("write");
    let o = Command::new("openssl")
        .args(["verify", "-purpose", "sslclient", "-CAfile"])
        .arg(env.srv.root())
        .arg("-untrusted")
        .arg(work.join("chain.pem"))
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        o.status.success(),
        "openssl verify: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let subject = Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-in"])
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        String::from_utf8_lossy(&subject.stdout).contains("certmonger-dev1"),
        "{}",
        String::from_utf8_lossy(&subject.stdout)
    );
    let findings = certs::pkilint_errors(&cert);
    assert!(findings.is_empty(), "pkilint: {findings:#?}");
    assert_eq!(audited_issuances(&env.srv, "scep:"), 1);
}
