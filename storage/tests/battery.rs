//! The storage battery for the memory and sled backends: the shared body
//! (`battery_body/`) instantiated by the `battery!` macro, one line per
//! backend (PostgreSQL: `battery_postgres.rs`).
//!
//! The SledStore-only tests (reopen after drop, tampering) follow.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, reason = "tests: a panic is a test failure")]

mod battery_body;

#[allow(
    unused_imports,
    reason = "the sled-only tests use a few of the helpers"
)]
use battery_body::*;
use ironseal_storage::{verify_chain, ChainError, Store, StoreError};
battery!(
    memory,
    (
        std::sync::Arc::new(ironseal_storage::MemoryStore::new()),
        ()
    )
);
battery!(sled, {
    let dir = tempfile::tempdir().unwrap();
    let store = ironseal_storage::SledStore::open(dir.path()).unwrap();
    (std::sync::Arc::new(store), dir)
});

// ------------------------------------------------------- sled-only tests

/// Reopens a sled store that was just dropped. sled's background thread
/// may hold the file lock for a moment after the handle is gone, so a lock
/// conflict is retried for up to 5 s; any other error fails at once.
fn reopen(path: &std::path::Path) -> ironseal_storage::SledStore {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match ironseal_storage::SledStore::open(path) {
            Ok(s) => return s,
            Err(StoreError::Backend(m))
                if m.contains("could not acquire lock") && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("reopen {}: {e}", path.display()),
        }
    }
}

#[tokio::test]
async fn sled_reopen_after_drop() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = ironseal_storage::SledStore::open(dir.path()).unwrap();
        // Durable only on flush: the server waits for its group commit.
        assert!(!s.commits_are_durable());
        populate(&s).await;
        s.flush().unwrap();
    }
    let s = reopen(dir.path());
    verify_populated(&s).await;
    s.flush().unwrap();
    drop(s);
    // And once more: the CRL number written after the first reopen persisted.
    let s = reopen(dir.path());
    assert_eq!(s.next_crl_number("pica").await.unwrap(), 4);
}

#[test]
fn sled_open_twice_in_one_process_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let _first = ironseal_storage::SledStore::open(dir.path()).unwrap();
    // sled holds an exclusive file lock; a second open must be an error,
    // never a second writer on the same files.
    assert!(matches!(
        ironseal_storage::SledStore::open(dir.path()),
        Err(StoreError::Backend(_))
    ));
}

/// Tampering with the stored audit log behind the store's back (raw sled
/// writes on the closed database) is detected by `verify_chain`: a modified
/// entry, a removed entry (middle and tail) and two swapped entries.
#[tokio::test]
async fn sled_audit_tampering_is_detected() {
    async fn fresh() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let s = ironseal_storage::SledStore::open(dir.path()).unwrap();
        for n in 0..6 {
            s.append_audit(&event(n)).await.unwrap();
        }
        s.flush().unwrap();
        dir
    }
    fn tamper(dir: &std::path::Path, f: impl FnOnce(&::sled::Tree, &::sled::Tree)) {
        // As in `reopen`: the just-dropped store may hold the lock briefly.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let db = loop {
            match ::sled::open(dir) {
                Ok(db) => break db,
                Err(e) if std::time::Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => panic!("open {}: {e}", dir.display()),
            }
        };
        let audit = db.open_tree("audit").unwrap();
        let meta = db.open_tree("audit_meta").unwrap();
        f(&audit, &meta);
        db.flush().unwrap();
    }
    async fn check(dir: &std::path::Path) -> Result<(), ChainError> {
        let s = reopen(dir);
        let all = s.audit_entries(0, 100).await.unwrap();
        let head = s.audit_head().await.unwrap();
        verify_chain(&all, None, head.as_ref())
    }
    let key = |seq: u64| seq.to_be_bytes();
    let read = |t: &::sled::Tree, seq: u64| -> serde_json::Value {
        serde_json::from_slice(&t.get(key(seq)).unwrap().unwrap()).unwrap()
    };

    // Untouched: verifies.
    let dir = fresh().await;
    check(dir.path()).await.unwrap();

    // Modified summary of entry 3.
    tamper(dir.path(), |audit, _| {
        let mut v = read(audit, 3);
        v["summary"] = "nothing to see".into();
        audit
            .insert(key(3), serde_json::to_vec(&v).unwrap())
            .unwrap();
    });
    assert_eq!(
        check(dir.path()).await,
        Err(ChainError::Modified { seq: 3 })
    );

    // Removed entry 2.
    let dir = fresh().await;
    tamper(dir.path(), |audit, _| {
        audit.remove(key(2)).unwrap();
    });
    assert!(matches!(
        check(dir.path()).await,
        Err(ChainError::Sequence {
            expected: 2,
            found: 3
        })
    ));

    // Removed the last entry (the head still names it).
    let dir = fresh().await;
    tamper(dir.path(), |audit, _| {
        audit.remove(key(6)).unwrap();
    });
    assert!(matches!(
        check(dir.path()).await,
        Err(ChainError::Head {
            last: 5,
            head_seq: 6
        })
    ));

    // Entries 4 and 5 swapped, seq numbers rewritten to look in order.
    let dir = fresh().await;
    tamper(dir.path(), |audit, _| {
        let mut a = read(audit, 4);
        let mut b = read(audit, 5);
        a["seq"] = 5.into();
        b["seq"] = 4.into();
        audit
            .insert(key(4), serde_json::to_vec(&b).unwrap())
            .unwrap();
        audit
            .insert(key(5), serde_json::to_vec(&a).unwrap())
            .unwrap();
    });
    assert!(check(dir.path()).await.is_err());
}

/// Hardening (issue 10 item 14): an entry rewritten with raw sled writes
/// on the closed database, every later hash and the head recomputed, still
/// verifies as a bare hash chain but fails the MAC check.
#[tokio::test]
async fn sled_keyed_audit_rewrite_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let key = mac_key();
    {
        let s = ironseal_storage::SledStore::open(dir.path()).unwrap();
        s.set_audit_mac_key(key.clone());
        for n in 0..6 {
            s.append_audit(&event(n)).await.unwrap();
        }
        s.flush().unwrap();
        assert_eq!(verify_keyed(&s, &key, Some(1)).await, Ok(Some(1)));
    }
    let all = reopen(dir.path()).audit_entries(0, 100).await.unwrap();
    let forged = rewrite_from(all, 3);
    {
        let db = loop {
            match ::sled::open(dir.path()) {
                Ok(db) => break db,
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        };
        let audit = db.open_tree("audit").unwrap();
        for e in &forged {
            audit
                .insert(e.seq.to_be_bytes(), serde_json::to_vec(e).unwrap())
                .unwrap();
        }
        let head = forged.last().unwrap().head();
        db.open_tree("audit_meta")
            .unwrap()
            .insert("head", serde_json::to_vec(&head).unwrap())
            .unwrap();
        db.flush().unwrap();
    }
    let s = reopen(dir.path());
    let all = s.audit_entries(0, 100).await.unwrap();
    assert_eq!(all[2].summary, "nothing to see");
    verify_chain(&all, None, s.audit_head().await.unwrap().as_ref()).unwrap();
    assert_eq!(
        verify_keyed(&s, &key, Some(1)).await,
        Err(ChainError::Mac { seq: 3 })
    );
}

/// A store written before the `cert_status` index existed (simulated by
/// removing the index and its marker with raw sled writes on the closed
/// database) is indexed when opened: every certificate's status, revoked
/// or not, is then answered from the index.
#[tokio::test]
async fn sled_status_index_is_built_for_older_stores() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = ironseal_storage::SledStore::open(dir.path()).unwrap();
        for (serial, issuer) in [("a1", "ica"), ("a2", "ica"), ("b1", "icb")] {
            s.insert_certificate(&cert(serial, issuer)).await.unwrap();
        }
        s.revoke_certificate("a2", rev(1)).await.unwrap();
        s.flush().unwrap();
    }
    {
        let db = loop {
            match ::sled::open(dir.path()) {
                Ok(db) => break db,
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        };
        db.remove("cert_status_built").unwrap();
        db.drop_tree("cert_status").unwrap();
        db.flush().unwrap();
    }
    let s = reopen(dir.path());
    for serial in ["a1", "a2", "b1", "zz"] {
        assert_status(&s, serial).await;
    }
    assert_eq!(
        s.certificate_status("a2")
            .await
            .unwrap()
            .unwrap()
            .revocation,
        Some(rev(1))
    );
    assert_eq!(
        s.certificate_status("b1").await.unwrap().unwrap().issuer_id,
        "icb"
    );
}

/// A store written before the pending keys existed (simulated by removing
/// them and their marker with raw sled writes on the closed database) gets
/// them when opened, so the per-account caps count its unfinished orders
/// and authorizations from the first request.
#[tokio::test]
async fn sled_pending_index_is_built_for_older_stores() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = ironseal_storage::SledStore::open(dir.path()).unwrap();
        s.put_order(&order("o1", "acc", T0)).await.unwrap();
        let mut done = order("o2", "acc", T0);
        done.status = ironseal_storage::OrderStatus::Valid;
        s.put_order(&done).await.unwrap();
        let later = T0 + time::Duration::days(30);
        s.put_authz(&authz(
            "z1",
            "acc",
            "z.test",
            false,
            ironseal_storage::AuthzStatus::Pending,
            later,
        ))
        .await
        .unwrap();
        s.flush().unwrap();
    }
    {
        let db = loop {
            match ::sled::open(dir.path()) {
                Ok(db) => break db,
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(20)),
            }
        };
        db.remove("pending_index_built").unwrap();
        for name in ["orders_by_account", "authz_by_identifier"] {
            let t = db.open_tree(name).unwrap();
            let pending: Vec<_> = t
                .iter()
                .keys()
                .map(Result::unwrap)
                .filter(|k| k.starts_with(&[0xff; 4]))
                .collect();
            assert_eq!(pending.len(), 1, "{name} holds one pending key");
            for k in pending {
                t.remove(k).unwrap();
            }
        }
        db.flush().unwrap();
    }
    let s = reopen(dir.path());
    let c = s.count_pending("acc", T0, 10).await.unwrap();
    assert_eq!((c.orders, c.authzs), (1, 1));
    assert_eq!(s.list_orders("acc", None, 10).await.unwrap().len(), 2);
}
