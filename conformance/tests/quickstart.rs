//! The quick start of the README and of docs/quickstart.md, run as written.
//!
//! Each file marks its runnable path with `<!-- quickstart:begin -->` and
//! `<!-- quickstart:end -->`; every fenced `sh` block between the markers is
//! taken verbatim and run in order by one `bash -eu` (a command that fails
//! fails the test), from the workspace root, with `HOME` a fresh temporary
//! directory (the commands work in `~/ironseal-trial`). The packages of the
//! `apt-get install` line before the markers must be installed (the test
//! command installs them). Then the outputs are checked: certbot and lego
//! got certificates, OCSP said revoked, the CRL listed the operator's
//! revocation.
//!
//! The commands use the fixed ports of the docs (14000, 14080, 5002), so the
//! two runs are sequential, in one test.
//!
//! Run: `cargo test -p ironseal-conformance --test quickstart`

#![allow(clippy::unwrap_used, reason = "tests: a panic is a test failure")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ironseal_conformance::{proc, server};

const BEGIN: &str = "<!-- quickstart:begin -->";
const END: &str = "<!-- quickstart:end -->";

/// The fenced `sh` blocks between the markers, joined, and the packages
/// named by the `apt-get install` line before them.
fn extract(doc: &str) -> (String, Vec<String>) {
    let begin = doc.find(BEGIN).expect("quickstart:begin marker");
    let end = doc.find(END).expect("quickstart:end marker");
    assert!(begin < end, "markers out of order");
    let packages = doc[..begin]
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("apt-get install -y "))
        .expect("an `apt-get install -y …` line before the quick start")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let mut script = String::new();
    let mut in_block = false;
    for line in doc[begin..end].lines() {
        if !in_block && line.trim() == "```sh" {
            in_block = true;
        } else if in_block && line.trim() == "```" {
            in_block = false;
        } else if in_block {
            script.push_str(line);
            script.push('\n');
        }
    }
    assert!(!in_block, "unterminated code block");
    assert!(script.contains("ironseal serve"), "no server start found");
    (script, packages)
}

/// Kills the server the script started, if it is still running (a failed
/// step leaves it in the background).
fn stop_leftover(trial: &Path) {
    if let Ok(pid) = std::fs::read_to_string(trial.join("ironseal.pid")) {
        let mut k = Command::new("kill");
        k.args(["-KILL", pid.trim()]);
        let _ = proc::run(k, Duration::from_secs(5));
    }
}

fn run_quickstart(doc_path: &Path) {
    let doc = std::fs::read_to_string(doc_path).unwrap();
    let (script, packages) = extract(&doc);
    for p in &packages {
        let mut c = Command::new("dpkg");
        c.args(["-s", p]);
        let out = proc::run(c, Duration::from_secs(20));
        assert!(
            out.success(),
            "{}: package {p} of the prerequisites is not installed (scripts/install-test-deps.sh installs it)",
            doc_path.display()
        );
    }
    let home = tempfile::tempdir().unwrap();
    let trial = home.path().join("ironseal-trial");
    let real_home = PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()));
    let mut cmd = Command::new("bash");
    cmd.args(["-eu", "-c", &script])
        .current_dir(server::workspace_root())
        .env("HOME", home.path())
        // The README's paths are the default build directory.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("IRONSEAL_API_KEY")
        .env(
            "CARGO_HOME",
            std::env::var("CARGO_HOME")
                .unwrap_or_else(|_| real_home.join(".cargo").display().to_string()),
        )
        .env(
            "RUSTUP_HOME",
            std::env::var("RUSTUP_HOME")
                .unwrap_or_else(|_| real_home.join(".rustup").display().to_string()),
        );
    let out = proc::run(cmd, Duration::from_secs(900));
    stop_leftover(&trial);
    let log = std::fs::read_to_string(trial.join("ironseal.log")).unwrap_or_default();
    let context = format!(
        "{}\n--- script ---\n{script}\n--- server log (tail) ---\n{}",
        out.describe(),
        &log[log.len().saturating_sub(3000)..]
    );
    assert!(
        out.success(),
        "{}: quick start failed\n{context}",
        doc_path.display()
    );
    let text = out.combined();
    assert!(
        text.contains("first start: CA created") || log.contains("first start: CA created"),
        "the server did not create its CA\n{context}"
    );
    assert!(
        trial
            .join("certbot/live/myhost.internal.test/cert.pem")
            .is_file(),
        "certbot has no certificate\n{context}"
    );
    assert!(
        trial
            .join("lego/certificates/myhost.internal.test.crt")
            .is_file(),
        "lego has no certificate\n{context}"
    );
    assert_eq!(
        text.matches(": OK").count(),
        2,
        "openssl verify must accept both certificates\n{context}"
    );
    assert!(
        text.contains("cert.pem: revoked"),
        "OCSP did not say revoked\n{context}"
    );
    assert!(
        text.contains("Serial Number:"),
        "the CRL does not list the revoked serial\n{context}"
    );
}

#[test]
fn readme_and_quickstart_doc_work_as_written() {
    let root = server::workspace_root();
    run_quickstart(&root.join("README.md"));
    run_quickstart(&root.join("docs/quickstart.md"));
}
