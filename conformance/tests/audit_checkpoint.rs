//! Audit chain anchoring (issue 10 item 14), black box: the release binary
//! writes periodic signed checkpoints to `[audit] checkpoint_file`, one on
//! demand with `ironseal admin audit-checkpoint`, and `ironseal admin audit
//! --verify --checkpoint FILE` checks the log against one.
//!
//! The attacker here can write the data directory while the server is
//! stopped (raw sled writes on `db`, recomputing every hash as the public
//! algorithm says) but has neither the KEK nor the checkpoint file kept
//! elsewhere. Covered: the untouched log verifies against its checkpoint;
//! a forged checkpoint (edited, or signed with another key) is refused; a
//! cut-off log (head moved back) is refused against the checkpoint; an entry
//! rewritten before the checkpoint, later hashes and head recomputed, is
//! refused (its MAC and the checkpoint's hash).
//!
//! Run: `cargo build --release -p ironseal && cargo test -p ironseal-conformance --test audit_checkpoint`
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, reason = "tests: a panic is a test failure")]

use std::path::Path;
use std::time::Duration;

use ironseal_conformance::pki::CliOut;
use ironseal_conformance::prelude::*;
use ironseal_storage::{AuditEntry, AuditHead, CheckpointSigner};
use serde_json::Value;

/// Opens the stopped server's sled database directly (retrying while the
/// just-stopped process releases its lock).
fn open_db(data: &Path) -> sled::Db {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match sled::open(data.join("db")) {
            Ok(db) => return db,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("open {}: {e}", data.display()),
        }
    }
}

fn entries(db: &sled::Db) -> Vec<AuditEntry> {
    db.open_tree("audit")
        .unwrap()
        .iter()
        .map(|kv| serde_json::from_slice(&kv.unwrap().1).unwrap())
        .collect()
}

fn set_head(db: &sled::Db, head: &AuditHead) {
    db.open_tree("audit_meta")
        .unwrap()
        .insert("head", serde_json::to_vec(head).unwrap())
        .unwrap();
}

/// `ironseal admin audit --verify --checkpoint FILE [more]`.
fn verify(srv: &Server, checkpoint: &Path, more: &[&str]) -> CliOut {
    let cp = checkpoint.to_str().unwrap();
    let mut args = vec!["audit", "--verify", "--limit", "1", "--checkpoint", cp];
    args.extend_from_slice(more);
    admin(srv, &args)
}

/// A refused verification: exit 3, and `why` on stderr.
#[track_caller]
fn refused(out: &CliOut, why: &str) -> Value {
    assert_eq!(
        out.code,
        Some(3),
        "expected a refusal ({why}):\n{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stderr.contains(why),
        "stderr lacks {why:?}:\n{}",
        out.stderr
    );
    out.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_anchor_the_audit_chain() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let mut srv = Server::without_dns(work);
    let periodic = work.join("checkpoints.jsonl");
    srv.set_config(&format!(
        "[audit]\ncheckpoint_file = {:?}\ncheckpoint_interval_secs = 1\n",
        periodic.display().to_string()
    ));
    srv.start();
    for _ in 0..20 {
        admin_ok(&srv, &["whoami"]);
    }

    // On demand: printed, written, signed; the log says so too.
    let cp_file = work.join("cp.json");
    let cp = admin_ok(
        &srv,
        &["audit-checkpoint", "--out", cp_file.to_str().unwrap()],
    );
    let seq = cp["checkpoint"]["seq"].as_u64().unwrap();
    assert!(seq >= 20, "{cp}");
    assert_eq!(
        cp["checkpoint"]["keyedFrom"], 1,
        "a new store is keyed from its first entry"
    );
    assert!(cp["publicKey"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----"));
    // Periodic: at least one line within a few seconds.
    let wrote = ironseal_conformance::proc::wait_for(
        Duration::from_secs(10),
        Duration::from_millis(100),
        || {
            std::fs::read_to_string(&periodic)
                .ok()
                .filter(|t| t.lines().count() >= 1)
                .map(|_| true)
        },
    );
    assert_eq!(
        wrote,
        Some(true),
        "no periodic checkpoint in {}",
        periodic.display()
    );
    blocking(|| std::thread::sleep(Duration::from_millis(200)));
    assert!(
        std::fs::read_to_string(srv.log_path())
            .unwrap()
            .contains("audit checkpoint"),
        "checkpoints are logged at info level"
    );

    // Untouched: verifies against both files.
    let ok = verify(&srv, &cp_file, &[]).ok("verify against the checkpoint");
    assert_eq!(ok["verify"]["ok"], true, "{ok}");
    assert_eq!(ok["verify"]["checkpoint"]["ok"], true, "{ok}");
    assert_eq!(ok["verify"]["keyedFrom"], 1, "{ok}");
    let ok = verify(&srv, &periodic, &[]).ok("verify against the periodic file");
    assert_eq!(ok["verify"]["checkpoint"]["ok"], true, "{ok}");
    // Pinned key: the one the checkpoint names, kept offline.
    let pinned = write(
        work,
        "checkpoint-key.pem",
        cp["publicKey"].as_str().unwrap(),
    );
    verify(
        &srv,
        &cp_file,
        &["--checkpoint-key", pinned.to_str().unwrap()],
    )
    .ok("verify with the pinned key");

    // Forged: an edited checkpoint, and one signed with the forger's key.
    let mut edited = cp.clone();
    edited["checkpoint"]["seq"] = (seq - 2).into();
    let edited_file = write(work, "edited.json", &edited.to_string());
    refused(
        &verify(&srv, &edited_file, &[]),
        "signature does not verify",
    );
    let (forger, _) = CheckpointSigner::generate().unwrap();
    let forged = forger
        .sign(
            &AuditHead {
                seq: 2,
                hash: "00".repeat(32),
            },
            Some(1),
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
    let forged_file = write(
        work,
        "forged.json",
        &serde_json::to_string(&forged).unwrap(),
    );
    refused(&verify(&srv, &forged_file, &[]), "signed by another key");
    // A forger who names our key in the file still fails the signature.
    let mut named = serde_json::to_value(&forged).unwrap();
    named["publicKey"] = cp["publicKey"].clone();
    let named_file = write(work, "named.json", &named.to_string());
    refused(&verify(&srv, &named_file, &[]), "signature does not verify");

    // Truncated: the attacker cuts the log back well before the
    // checkpoint and moves the head to match (every remaining entry and
    // its MAC are genuine, so the chain alone still verifies). Far enough
    // back that what the restarted server appends (its start, our calls)
    // does not reach the checkpoint's seq again.
    srv.stop();
    let keep = seq - 15;
    {
        let db = open_db(&srv.data);
        let all = entries(&db);
        let audit = db.open_tree("audit").unwrap();
        for e in all.iter().filter(|e| e.seq > keep) {
            audit.remove(e.seq.to_be_bytes()).unwrap();
        }
        set_head(&db, &all[usize::try_from(keep).unwrap() - 1].head());
        db.flush().unwrap();
    }
    srv.start();
    let plain = admin(&srv, &["audit", "--verify", "--limit", "1"]);
    assert_eq!(
        plain.code,
        Some(0),
        "a cut log is a valid chain: {}",
        plain.stderr
    );
    let out = refused(&verify(&srv, &cp_file, &[]), "truncated log");
    assert_eq!(out["verify"]["checkpoint"]["ok"], false);

    // Rewritten: entry 2 edited, every later hash and the head recomputed.
    srv.stop();
    {
        let db = open_db(&srv.data);
        let audit = db.open_tree("audit").unwrap();
        let mut prev: Option<String> = None;
        let mut last = None;
        for mut e in entries(&db) {
            if e.seq == 2 {
                e.summary = "nothing to see".into();
            }
            if e.seq >= 2 {
                if let Some(p) = &prev {
                    e.prev_hash.clone_from(p);
                }
                e.entry_hash = e.compute_hash().unwrap();
                audit
                    .insert(e.seq.to_be_bytes(), serde_json::to_vec(&e).unwrap())
                    .unwrap();
            }
            prev = Some(e.entry_hash.clone());
            last = Some(e.head());
        }
        set_head(&db, &last.unwrap());
        db.flush().unwrap();
    }
    srv.start();
    let out = refused(
        &admin(&srv, &["audit", "--verify", "--limit", "1"]),
        "entry 2: MAC does not match",
    );
    assert_eq!(out["verify"]["ok"], false);
    // Against an earlier periodic checkpoint (before the cut) as well.
    let first_line = std::fs::read_to_string(&periodic)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let early = write(work, "early.json", &first_line);
    let early_seq = serde_json::from_str::<Value>(&first_line).unwrap()["checkpoint"]["seq"]
        .as_u64()
        .unwrap();
    assert!(
        early_seq <= keep,
        "the first periodic checkpoint comes at start"
    );
    let out = refused(
        &verify(&srv, &early, &[]),
        "does not have the checkpoint's hash",
    );
    assert_eq!(out["verify"]["checkpoint"]["ok"], false);
    srv.stop();
}
