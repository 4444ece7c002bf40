//! The restore drill of docs/operations.md, performed: back up under load,
//! restore into a new data directory, start, and find every acknowledged
//! certificate and revocation.
//!
//! 4 instant-acme clients loop complete orders (http-01, finalize, download)
//! and revoke every third certificate. Once at least 24 certificates are
//! downloaded, `ironseal backup` runs while the clients go on. Everything
//! acknowledged before the backup call started must be in it. The backup is
//! restored with `ironseal restore` into a new data directory (with the KEK
//! copied beside it, as the docs say), the server restarted on it, and then: every
//! such certificate downloads byte-identical by its account, every such
//! revocation is on the CRL, the audit log verifies end to end (the
//! snapshot is consistent across trees), and the restored server issues
//! again without reusing a serial. A damaged backup and a restore into a
//! used directory are refused; the restore and a bulk revocation show
//! progress on a terminal (run under `script`) and none in JSON-log mode.
//!
//! Run: `cargo build --release -p ironseal && cargo test -p ironseal-conformance --test backup -- --nocapture`

#![allow(clippy::unwrap_used, reason = "tests: a panic is a test failure")]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use instant_acme::{Account, NewOrder, RevocationReason, RevocationRequest};
use ironseal_conformance::prelude::*;
use ironseal_conformance::proc;
use ironseal_conformance::pty::run_on_pty;
use rustls_pki_types::CertificateDer;

const CLIENTS: usize = 4;
const MIN_DOWNLOADS: usize = 24;

#[derive(Clone)]
struct Cert {
    worker: usize,
    serial: String,
    url: String,
    chain: String,
    leaf_pem: String,
}

#[derive(Default, Clone)]
struct Record {
    certs: Vec<Cert>,
    revoked: BTreeSet<String>,
}

/// `ironseal <args>` with the admin connection of `srv`.
fn ironseal(srv: &Server, args: &[&str]) -> proc::Output {
    let mut c = Command::new(ironseal_bin().unwrap());
    c.args(args)
        .env("IRONSEAL_URL", srv.base_url())
        .env("IRONSEAL_API_KEY", &srv.admin_key)
        .env("IRONSEAL_CA_CERT", srv.root());
    proc::run(c, Duration::from_secs(120))
}

fn restore(from: &Path, to: &Path, extra: &[&str]) -> proc::Output {
    let mut c = Command::new(ironseal_bin().unwrap());
    c.arg("restore")
        .arg("--from")
        .arg(from)
        .arg("--data-dir")
        .arg(to)
        .args(extra);
    proc::run(c, Duration::from_secs(120))
}

/// The same restore under a pseudo-terminal (`script` from util-linux),
/// where a progress line may be drawn.
fn restore_on_terminal(from: &Path, to: &Path, extra: &str) -> proc::Output {
    let line = format!(
        "{} restore --from {} --data-dir {} {extra}",
        ironseal_bin().unwrap().display(),
        from.display(),
        to.display()
    );
    run_on_pty(&line, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backup_under_load_then_restore_keeps_everything_acknowledged() {
    let mut env = Env::start("backup").await;
    let mut ws: Vec<(Account, AcctKey)> = Vec::new();
    for _ in 0..CLIENTS {
        ws.push(env.account().await);
    }
    let workers = Arc::new(ws);
    let rec: Arc<Mutex<Record>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let downloads = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::new();
    for w in 0..CLIENTS {
        let (workers, rec, stop, downloads, h01) = (
            workers.clone(),
            rec.clone(),
            stop.clone(),
            downloads.clone(),
            env.h01.clone(),
        );
        handles.push(tokio::spawn(async move {
            let (acct, _) = &workers[w];
            let mut n = 0usize;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let idents = [dns(&format!("w{w}-n{n}.backup.example.test"))];
                let Ok(mut order) = acct.new_order(&NewOrder::new(&idents)).await else {
                    continue;
                };
                // A failed order acknowledged nothing; the load goes on.
                let Ok(c) = finish(&mut order, &h01, None, &idents, None).await else {
                    continue;
                };
                let serial = der_serial(&c.leaf_der);
                rec.lock().unwrap().certs.push(Cert {
                    worker: w,
                    serial: serial.clone(),
                    url: c.cert_url.clone(),
                    chain: c.chain.clone(),
                    leaf_pem: c.leaf_pem(),
                });
                downloads.fetch_add(1, Ordering::SeqCst);
                if n.is_multiple_of(3) {
                    let der = CertificateDer::from(c.leaf_der.clone());
                    let req = RevocationRequest {
                        certificate: &der,
                        reason: Some(RevocationReason::Superseded),
                    };
                    if acct.revoke(&req).await.is_ok() {
                        rec.lock().unwrap().revoked.insert(serial);
                    }
                }
            }
        }));
    }
    let started = Instant::now();
    while downloads.load(Ordering::SeqCst) < MIN_DOWNLOADS {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "only {} downloads in 120 s\n{}",
            downloads.load(Ordering::SeqCst),
            env.srv.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Acknowledged before the backup starts: must all be in it.
    let before = rec.lock().unwrap().clone();
    let out = blocking(|| ironseal(&env.srv, &["backup"]));
    assert!(out.success(), "ironseal backup: {}", out.describe());
    let during = downloads.load(Ordering::SeqCst) - before.certs.len();
    stop.store(true, Ordering::SeqCst);
    for h in handles {
        tokio::time::timeout(Duration::from_secs(90), h)
            .await
            .expect("worker did not stop")
            .expect("worker failed");
    }
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let file = std::path::PathBuf::from(summary["path"].as_str().unwrap());
    assert!(file.starts_with(env.srv.data.join("backups")), "{summary}");
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        summary["bytes"].as_u64().unwrap()
    );
    eprintln!(
        "[backup] {} certificates ({} revoked) acknowledged before the backup, {during} while it ran; {summary}",
        before.certs.len(),
        before.revoked.len()
    );

    // Refusals first: a damaged copy restores nothing.
    let work = env.path().to_path_buf();
    let damaged = work.join("damaged.ironseal-backup");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&damaged, &bytes[..bytes.len() - 10]).unwrap();
    let target = work.join("restored");
    let r = restore(&damaged, &target, &[]);
    assert!(
        !r.success(),
        "a truncated backup was restored: {}",
        r.describe()
    );
    assert!(
        r.stderr.contains("not a usable ironseal backup"),
        "{}",
        r.describe()
    );
    assert!(
        !target.join("db").exists(),
        "a refused restore left a database"
    );

    // Progress on a terminal, none in JSON mode.
    let shown = blocking(|| restore_on_terminal(&file, &work.join("tty-human"), ""));
    assert!(shown.success(), "{}", shown.describe());
    assert!(
        shown.combined().contains("restoring: "),
        "no progress on a terminal: {}",
        shown.describe()
    );
    let quiet =
        blocking(|| restore_on_terminal(&file, &work.join("tty-json"), "--log-format json"));
    assert!(quiet.success(), "{}", quiet.describe());
    assert!(
        !quiet.combined().contains("restoring: "),
        "progress in JSON mode: {}",
        quiet.describe()
    );

    // The drill: restore, copy the KEK, start on the new directory.
    let r = restore(&file, &target, &["--log-format", "json"]);
    assert!(r.success(), "ironseal restore: {}", r.describe());
    let again = restore(&file, &target, &[]);
    assert!(
        !again.success() && again.stderr.contains("already holds a database"),
        "{}",
        again.describe()
    );
    // The KEK lives beside the data directory, not in it (nor in the
    // backup); restore says where the restored server looks for it.
    let old_kek = env.srv.kek_path();
    assert!(old_kek.exists() && !env.srv.data.join("kek").exists());
    blocking(|| env.srv.stop());
    env.srv.data = target.clone();
    let new_kek = env.srv.kek_path();
    assert!(
        r.stdout.contains(&new_kek.display().to_string()),
        "restore does not say where the KEK goes: {}",
        r.describe()
    );
    std::fs::copy(&old_kek, &new_kek).unwrap();
    blocking(|| env.srv.start());

    let raw = env.raw().await;
    let mut lost = Vec::new();
    for c in &before.certs {
        let (acct, key) = &workers[c.worker];
        match raw.try_signed(key, acct.id(), &c.url, None).await {
            Ok(r) if r.status == 200 && r.body.as_ref() == c.chain.as_bytes() => {}
            Ok(r) => lost.push(format!("{} ({}): {}", c.serial, c.url, r.describe())),
            Err(e) => lost.push(format!("{} ({}): {e}", c.serial, c.url)),
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged certificates missing after restore:\n{}",
        lost.len(),
        before.certs.len(),
        lost.join("\n")
    );
    let revoked_pem = &before
        .certs
        .iter()
        .find(|c| before.revoked.contains(&c.serial))
        .expect("at least one revocation before the backup")
        .leaf_pem;
    let leaf = work.join("revoked-leaf.pem");
    std::fs::write(&leaf, revoked_pem).unwrap();
    let crl_url = blocking(|| crl_dp(&leaf));
    let (on_crl, text) = blocking(|| crl_serials(&crl_url, &work));
    let on_crl: BTreeSet<String> = on_crl.into_iter().collect();
    let missing: Vec<&String> = before
        .revoked
        .iter()
        .filter(|s| !on_crl.contains(*s))
        .collect();
    assert!(
        missing.is_empty(),
        "revocations missing from the restored CRL: {missing:?}\n{text}"
    );

    // Bulk revocation shows its progress line on a terminal only.
    let serials = work.join("serials.txt");
    let list: Vec<&str> = before.certs.iter().map(|c| c.serial.as_str()).collect();
    std::fs::write(&serials, list.join("\n")).unwrap();
    let bulk = |json: bool| {
        let line = format!(
            "{} admin revoke-bulk --file {} --reason superseded",
            ironseal_bin().unwrap().display(),
            serials.display()
        );
        let url = env.srv.base_url();
        let root = env.srv.root();
        let mut vars = vec![
            ("IRONSEAL_URL", url.as_str()),
            ("IRONSEAL_API_KEY", env.srv.admin_key.as_str()),
            ("IRONSEAL_CA_CERT", root.to_str().unwrap()),
        ];
        if json {
            vars.push(("IRONSEAL_LOG_FORMAT", "json"));
        }
        run_on_pty(&line, &vars)
    };
    let shown = blocking(|| bulk(false));
    assert!(shown.success(), "{}", shown.describe());
    assert!(
        shown.combined().contains(&format!(
            "revoking: {} / {} serials",
            list.len(),
            list.len()
        )),
        "no revoke-bulk progress on a terminal: {}",
        shown.describe()
    );
    let quiet = blocking(|| bulk(true));
    assert!(quiet.success(), "{}", quiet.describe());
    assert!(
        !quiet.combined().contains("revoking: "),
        "progress in JSON mode: {}",
        quiet.describe()
    );

    let audit = blocking(|| ironseal(&env.srv, &["admin", "audit", "--verify", "--limit", "1"]));
    assert!(
        audit.success(),
        "the restored audit log does not verify: {}",
        audit.describe()
    );

    // The restored CA goes on issuing, with fresh serials.
    let (acct, _) = &workers[0];
    let idents = [dns("after-restore.backup.example.test")];
    let mut order = acct.new_order(&NewOrder::new(&idents)).await.unwrap();
    let c = finish(&mut order, &env.h01, None, &idents, None)
        .await
        .unwrap();
    let serial = der_serial(&c.leaf_der);
    assert!(
        !rec.lock().unwrap().certs.iter().any(|x| x.serial == serial),
        "serial {serial} reused after restore"
    );
}
