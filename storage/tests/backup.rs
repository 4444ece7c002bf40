//! Backup and restore of the embedded store (`SledStore::write_backup` /
//! `SledStore::restore`): a restore is the same database, a backup taken
//! while writers run is a consistent snapshot, a write waiting for a backup
//! does not hold up the runtime, and a damaged backup restores nothing.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, reason = "tests: a panic is a test failure")]

use std::io::BufReader;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ironseal_storage::{
    verify_chain, AccountRecord, AccountStatus, AuditEvent, SledStore, Store, StoreError,
};
use serde_json::json;
use time::OffsetDateTime;

fn event(i: usize) -> AuditEvent {
    AuditEvent {
        at: OffsetDateTime::now_utc(),
        actor: format!("test:{i}"),
        action: "test.event".into(),
        summary: format!("event {i}"),
        outcome: None,
    }
}

fn account(id: &str) -> AccountRecord {
    AccountRecord {
        id: id.into(),
        jwk: json!({"kty": "EC", "crv": "P-256", "x": id, "y": "y"}),
        thumbprint: format!("thumb-{id}"),
        contact: vec![],
        status: AccountStatus::Valid,
        created_at: OffsetDateTime::now_utc(),
        tenant_id: None,
        eab_kid: None,
    }
}

/// The whole audit log of `s`, checked against its head.
async fn audit_len(s: &dyn Store) -> u64 {
    let head = s.audit_head().await.unwrap();
    let mut all = Vec::new();
    loop {
        let after = all
            .last()
            .map_or(0, |e: &ironseal_storage::AuditEntry| e.seq);
        let page = s.audit_entries(after, 1000).await.unwrap();
        if page.is_empty() {
            break;
        }
        all.extend(page);
    }
    verify_chain(&all, None, head.as_ref()).unwrap_or_else(|e| {
        panic!(
            "restored audit chain broken: {e:?} ({} entries, head {head:?})",
            all.len()
        )
    });
    all.len() as u64
}

/// A backup to memory, on a blocking thread as the server takes one (the
/// backup may block for the store's write gate).
async fn backup_bytes(s: &SledStore, files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let (s, files) = (s.clone(), files.to_vec());
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        s.write_backup(&mut out, &files, &mut |_| {}).unwrap();
        out
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn restore_is_the_same_database() {
    let dir = tempfile::tempdir().unwrap();
    let s = SledStore::open(&dir.path().join("db")).unwrap();
    for i in 0..50 {
        s.append_audit(&event(i)).await.unwrap();
        s.create_account(&account(&format!("a{i}"))).await.unwrap();
    }
    s.block_key("ab12").await.unwrap();
    let files = vec![("issuing-ca".to_string(), b"ca-7\n".to_vec())];
    let bytes = backup_bytes(&s, &files).await;

    let target = dir.path().join("restored/db");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    let mut seen = 0;
    let (summary, got_files) =
        SledStore::restore(&target, &mut BufReader::new(&bytes[..]), &mut |p| {
            seen = p.entries
        })
        .unwrap();
    assert_eq!(summary.bytes, bytes.len() as u64);
    assert_eq!(seen, summary.entries);
    assert_eq!(got_files, files);
    let r = SledStore::open(&target).unwrap();
    assert_eq!(audit_len(&r).await, 50);
    assert_eq!(r.audit_head().await.unwrap(), s.audit_head().await.unwrap());
    for i in 0..50 {
        let id = format!("a{i}");
        assert_eq!(
            r.get_account(&id).await.unwrap(),
            s.get_account(&id).await.unwrap()
        );
        assert_eq!(
            r.account_by_thumbprint(&format!("thumb-{id}"))
                .await
                .unwrap()
                .map(|a| a.id),
            Some(id)
        );
    }
    assert!(r.is_key_blocked("ab12").await.unwrap());
    // The restored store goes on: a new audit entry links to the old head.
    r.append_audit(&event(99)).await.unwrap();
    assert_eq!(audit_len(&r).await, 51);
    // A second restore into the same place is refused, and leaves it be.
    let e = SledStore::restore(&target, &mut BufReader::new(&bytes[..]), &mut |_| {}).unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
}

#[tokio::test]
async fn backups_taken_under_concurrent_writes_are_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let s = SledStore::open(&dir.path().join("db")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let s = s.clone();
            let stop = stop.clone();
            // A thread of its own per writer (sled works inline, so the
            // writes really run beside the backups), each driving its
            // calls on a runtime of its own.
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    // Bounded: the test copies the whole log each round.
                    for i in 0..600 {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        s.append_audit(&event(w * 1_000_000 + i)).await.unwrap();
                        // Ids spread over the key space, so that inserts land
                        // behind a running iterator as well as ahead of it.
                        let id = format!(
                            "{:016x}",
                            (i as u64 * 4 + w as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                        );
                        s.create_account(&account(&id)).await.unwrap();
                        if i % 16 == 0 {
                            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                        }
                    }
                })
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mut lens = Vec::new();
    for round in 0..4 {
        let bytes = backup_bytes(&s, &[]).await;
        let target = dir.path().join(format!("r{round}/db"));
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        SledStore::restore(&target, &mut BufReader::new(&bytes[..]), &mut |_| {}).unwrap();
        // Each account has its thumbprint index entry (one transaction
        // writes both; the trees are copied one after the other).
        {
            let db = sled::open(&target).unwrap();
            let accounts = db.open_tree("accounts").unwrap().len();
            let thumbs = db.open_tree("account_thumbprints").unwrap().len();
            assert_eq!(
                accounts, thumbs,
                "round {round}: accounts and their index disagree"
            );
        }
        // Every entry up to the head, and the head is the last entry: the
        // `audit` and `audit_meta` trees were read at one instant.
        lens.push(audit_len(&SledStore::open(&target).unwrap()).await);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    assert!(
        lens[0] > 0 && lens.windows(2).all(|w| w[0] <= w[1]),
        "{lens:?}"
    );
    assert!(
        lens[3] > lens[0],
        "writers made no progress during backups: {lens:?}"
    );
}

#[tokio::test]
async fn a_damaged_backup_restores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = SledStore::open(&dir.path().join("db")).unwrap();
    for i in 0..20 {
        s.append_audit(&event(i)).await.unwrap();
    }
    let bytes = backup_bytes(&s, &[]).await;
    let target = dir.path().join("r/db");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    for bad in [&bytes[..bytes.len() - 40], &bytes[..bytes.len() / 2]] {
        let e = SledStore::restore(&target, &mut BufReader::new(bad), &mut |_| {}).unwrap_err();
        assert!(matches!(e, StoreError::Corrupt(_)), "{e:?}");
        assert!(!target.exists(), "a partial database was left behind");
    }
}

/// A backup output that blocks its first write until released: a backup
/// paused while it holds the store's write gate.
struct PausedOutput {
    entered: Option<std::sync::mpsc::Sender<()>>,
    release: std::sync::mpsc::Receiver<()>,
    bytes: Vec<u8>,
}

impl std::io::Write for PausedOutput {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if let Some(entered) = self.entered.take() {
            entered.send(()).unwrap();
            self.release.recv().unwrap();
        }
        self.bytes.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// While a backup holds the write gate, a write waits for it as a task:
/// on a runtime with a single worker, a read spawned after that write is
/// still answered, and the write lands once the backup ends (not in it).
/// With a blocking gate the waiting write held the only worker, so the
/// read (and every other request of a server) waited for the backup.
#[test]
fn a_write_waiting_for_a_backup_does_not_hold_up_the_runtime() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = SledStore::open(&dir.path().join("db")).unwrap();
    runtime
        .block_on(s.create_account(&account("before")))
        .unwrap();
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel();
    let backup = {
        let s = s.clone();
        std::thread::spawn(move || {
            let mut out = PausedOutput {
                entered: Some(entered_tx),
                release: release_rx,
                bytes: Vec::new(),
            };
            s.write_backup(&mut out, &[], &mut |_| {}).unwrap();
            out.bytes
        })
    };
    entered.recv().unwrap();
    let write = {
        let s = s.clone();
        runtime.spawn(async move { s.create_account(&account("during")).await })
    };
    std::thread::sleep(std::time::Duration::from_millis(100));
    let read = {
        let s = s.clone();
        runtime.spawn(async move { s.get_account("before").await })
    };
    // Waited for on this thread with std's clock: a blocked worker would
    // also stop the runtime's timers.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !read.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let answered = read.is_finished();
    let write_waited = !write.is_finished();
    release.send(()).unwrap();
    let bytes = backup.join().unwrap();
    runtime.block_on(write).unwrap().unwrap();
    assert!(answered, "the read waited for the backup");
    let read = runtime.block_on(read).unwrap().unwrap().unwrap();
    assert_eq!(read.id, "before");
    assert!(
        write_waited,
        "a write landed while the backup held the gate"
    );
    // The backup is the store before the write; the store has it now.
    let target = dir.path().join("restored/db");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    SledStore::restore(&target, &mut BufReader::new(&bytes[..]), &mut |_| {}).unwrap();
    let restored = SledStore::open(&target).unwrap();
    runtime.block_on(async {
        assert!(restored.get_account("before").await.unwrap().is_some());
        assert!(restored.get_account("during").await.unwrap().is_none());
        assert!(s.get_account("during").await.unwrap().is_some());
    });
}
