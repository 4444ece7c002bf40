//! The storage battery against PostgreSQL ([`PgStore`]), plus what only a
//! shared database has: two store handles racing the same transitions,
//! reopening, tampering with the audit log through SQL, and the sync bridge
//! called from inside another tokio runtime.
//!
//! Needs a PostgreSQL server: `IRONSEAL_TEST_PG_URL` names it (any
//! database the user may create schemas in). Each test works in a fresh
//! schema of its own. Without the variable every test here FAILS (no
//! silent skip); start a throwaway cluster with
//!
//! ```sh
//! dir=$(scripts/pg-throwaway.sh start)
//! export IRONSEAL_TEST_PG_URL=$(scripts/pg-throwaway.sh url "$dir")
//! cargo test -p ironseal-storage --test battery_postgres
//! scripts/pg-throwaway.sh stop "$dir"
//! ```
//!
//! (`scripts/test.sh` does this for the whole suite.)
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, reason = "tests: a panic is a test failure")]

mod battery_body;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier};

use battery_body::*;
use ironseal_storage::{
    verify_chain, AccountStatus, ApiRole, ApprovalStatus, ChainError, OrderStatus, PgOptions,
    PgStore, ScepTransactionState, Store, StoreError,
};

/// The server under test, or a failure that says how to get one.
fn pg_url() -> String {
    match std::env::var("IRONSEAL_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "IRONSEAL_TEST_PG_URL is not set: the PostgreSQL battery needs a server. Start a \
             throwaway one with `dir=$(scripts/pg-throwaway.sh start); export \
             IRONSEAL_TEST_PG_URL=$(scripts/pg-throwaway.sh url \"$dir\")` (stop it with \
             `scripts/pg-throwaway.sh stop \"$dir\"`), or run scripts/test.sh"
        ),
    }
}

/// A schema name no other test (in this or a concurrent run) uses.
fn fresh_schema() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "t_{}_{}_{:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

fn open(schema: &str) -> PgStore {
    PgStore::open(&PgOptions {
        url: pg_url(),
        pool_size: 8,
        schema: Some(schema.to_owned()),
    })
    .unwrap_or_else(|e| panic!("open PostgreSQL schema {schema}: {e}"))
}

battery!(postgres, {
    let store = crate::open(&crate::fresh_schema());
    (std::sync::Arc::new(store), ())
});

// ------------------------------------------------------------ sql helpers

/// Runs SQL directly against a schema, behind the store's back.
fn raw_sql(schema: &str, sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
            .batch_execute(&format!("SET search_path = {schema}; {sql}"))
            .await
            .unwrap();
    });
}

// ------------------------------------------------------ reopen, migrations

#[test]
fn postgres_reopen_keeps_everything() {
    let schema = fresh_schema();
    {
        let s = open(&schema);
        populate(&s);
        s.flush().unwrap();
    }
    // A second open re-runs the (already applied) migrations harmlessly.
    let s = open(&schema);
    verify_populated(&s);
    drop(s);
    let s = open(&schema);
    assert_eq!(s.next_crl_number("pica").unwrap(), 4);
}

#[test]
fn postgres_refuses_a_newer_schema() {
    let schema = fresh_schema();
    drop(open(&schema));
    raw_sql(
        &schema,
        &format!(
            "INSERT INTO schema_version (version) VALUES ({})",
            PgStore::schema_version() + 1
        ),
    );
    let err = PgStore::open(&PgOptions {
        url: pg_url(),
        pool_size: 2,
        schema: Some(schema),
    })
    .unwrap_err();
    assert!(
        matches!(&err, StoreError::Backend(m) if m.contains("newer than this binary")),
        "{err}"
    );
}

#[test]
fn postgres_bad_connection_settings_are_errors() {
    let bad_schema = PgStore::open(&PgOptions {
        url: pg_url(),
        pool_size: 2,
        schema: Some("x; DROP TABLE y".into()),
    });
    assert!(matches!(bad_schema, Err(StoreError::Backend(_))));
    let bad_url = PgStore::open(&PgOptions {
        url: "postgres://[".into(),
        pool_size: 2,
        schema: None,
    });
    assert!(matches!(bad_url, Err(StoreError::Backend(_))));
    // TLS is not supported yet: asking for it fails, never falls back to
    // plain text.
    let tls = PgStore::open(&PgOptions {
        url: format!(
            "{}{}sslmode=require",
            pg_url(),
            if pg_url().contains('?') { "&" } else { "?" }
        ),
        pool_size: 2,
        schema: Some(fresh_schema()),
    });
    assert!(matches!(tls, Err(StoreError::Backend(_))));
    // Nothing listens on port 1 of loopback: a clean error, no hang.
    let unreachable = PgStore::open(&PgOptions {
        url: "postgres://postgres@127.0.0.1:1/postgres".into(),
        pool_size: 2,
        schema: None,
    });
    assert!(matches!(unreachable, Err(StoreError::Backend(_))));
}

/// Tampering with the audit log in SQL (a modified entry, removed entries,
/// two swapped entries) is detected by `verify_chain`, as for sled.
#[test]
fn postgres_audit_tampering_is_detected() {
    fn fresh() -> String {
        let schema = fresh_schema();
        let s = open(&schema);
        for n in 0..6 {
            s.append_audit(&event(n)).unwrap();
        }
        schema
    }
    fn check(schema: &str) -> Result<(), ChainError> {
        let s = open(schema);
        let all = s.audit_entries(0, 100).unwrap();
        let head = s.audit_head().unwrap();
        verify_chain(&all, None, head.as_ref())
    }
    let schema = fresh();
    check(&schema).unwrap();

    raw_sql(
        &schema,
        "UPDATE audit_log SET doc = jsonb_set(doc::jsonb, '{summary}', '\"nothing to see\"')::text \
         WHERE seq = 3",
    );
    assert_eq!(check(&schema), Err(ChainError::Modified { seq: 3 }));

    let schema = fresh();
    raw_sql(&schema, "DELETE FROM audit_log WHERE seq = 2");
    assert!(matches!(
        check(&schema),
        Err(ChainError::Sequence {
            expected: 2,
            found: 3
        })
    ));

    let schema = fresh();
    raw_sql(&schema, "DELETE FROM audit_log WHERE seq = 6");
    assert!(matches!(
        check(&schema),
        Err(ChainError::Head {
            last: 5,
            head_seq: 6
        })
    ));

    let schema = fresh();
    raw_sql(
        &schema,
        "UPDATE audit_log SET seq = -seq WHERE seq IN (4, 5);
         UPDATE audit_log SET seq = CASE seq WHEN -4 THEN 5 ELSE 4 END,
             doc = jsonb_set(doc::jsonb, '{seq}', to_jsonb(CASE seq WHEN -4 THEN 5 ELSE 4 END))::text
         WHERE seq IN (-4, -5)",
    );
    assert!(check(&schema).is_err());
}

/// Hardening (issue 10 item 14): an entry rewritten in SQL with every
/// later hash and the head recomputed still verifies as a bare hash chain
/// but fails the MAC check.
#[test]
fn postgres_keyed_audit_rewrite_is_detected() {
    let schema = fresh_schema();
    let key = mac_key();
    let s = open(&schema);
    s.set_audit_mac_key(key.clone());
    for n in 0..6 {
        s.append_audit(&event(n)).unwrap();
    }
    assert_eq!(verify_keyed(&s, &key, Some(1)), Ok(Some(1)));
    let forged = rewrite_from(s.audit_entries(0, 100).unwrap(), 3);
    let mut sql = String::new();
    for e in &forged {
        let doc = serde_json::to_string(e).unwrap().replace('\'', "''");
        sql.push_str(&format!(
            "UPDATE audit_log SET doc = '{doc}' WHERE seq = {};",
            e.seq
        ));
    }
    let head = forged.last().unwrap().head();
    sql.push_str(&format!(
        "UPDATE audit_head SET hash = '{}' WHERE id = 1;",
        head.hash
    ));
    raw_sql(&schema, &sql);
    let s = open(&schema);
    let all = s.audit_entries(0, 100).unwrap();
    assert_eq!(all[2].summary, "nothing to see");
    verify_chain(&all, None, s.audit_head().unwrap().as_ref()).unwrap();
    assert_eq!(
        verify_keyed(&s, &key, Some(1)),
        Err(ChainError::Mac { seq: 3 })
    );
}

// ------------------------------------------------------- the sync bridge

/// The server calls the store directly inside async handlers: a call from
/// a worker thread of another runtime (multi-thread and current-thread)
/// must work, not panic, and dropping the store there must not panic.
#[test]
fn postgres_store_called_inside_another_runtime() {
    let schema = fresh_schema();
    let store: Arc<dyn Store> = Arc::new(open(&schema));
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let s = store.clone();
    let n = multi.block_on(async move {
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move { s.next_crl_number("ca").unwrap() })
            })
            .collect();
        let mut got = Vec::new();
        for t in tasks {
            got.push(t.await.unwrap());
        }
        got.sort_unstable();
        got
    });
    assert_eq!(n, vec![1, 2, 3, 4]);
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    current.block_on(async move {
        assert_eq!(store.next_crl_number("ca").unwrap(), 5);
        store.append_audit(&event(1)).unwrap();
        // The last handle dropped inside the runtime.
        drop(store);
    });
}

// -------------------------------------------- two handles, one database

/// Runs `f(handle, t)` for t in 0..n on n threads, even t on one handle and
/// odd t on the other, released together; counts the `true`s.
fn race(n: usize, a: &PgStore, b: &PgStore, f: impl Fn(&PgStore, usize) -> bool + Sync) -> usize {
    let barrier = Barrier::new(n);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|t| {
                let (barrier, f) = (&barrier, &f);
                let s = if t % 2 == 0 { a } else { b };
                scope.spawn(move || {
                    barrier.wait();
                    f(s, t)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| usize::from(h.join().unwrap()))
            .sum()
    })
}

fn two_handles() -> (PgStore, PgStore) {
    let schema = fresh_schema();
    (open(&schema), open(&schema))
}

/// Two replicas redeeming one nonce: exactly one succeeds (issue 11: a
/// replay on any replica is badNonce).
#[test]
fn two_handles_nonce_redemption() {
    let (a, b) = two_handles();
    for round in 0..10u128 {
        let wins = race(6, &a, &b, |s, _| {
            s.redeem_nonce(round, 4_000_000_000).unwrap()
        });
        assert_eq!(wins, 1, "round {round}");
    }
}

#[test]
fn two_handles_order_transition() {
    let (a, b) = two_handles();
    for round in 0..10 {
        let id = format!("o{round}");
        let mut o = order(&id, "acct", T0);
        o.status = OrderStatus::Ready;
        a.put_order(&o).unwrap();
        let wins = race(6, &a, &b, |s, _| {
            let mut next = o.clone();
            next.status = OrderStatus::Processing;
            s.transition_order(&next, OrderStatus::Ready).unwrap()
        });
        assert_eq!(wins, 1, "round {round}");
        assert_eq!(
            b.get_order(&id).unwrap().unwrap().status,
            OrderStatus::Processing
        );
    }
}

#[test]
fn two_handles_approval_update() {
    let (a, b) = two_handles();
    for round in 0..10 {
        let id = format!("ap{round}");
        a.create_approval(&approval(&id, T0)).unwrap();
        let wins = race(6, &a, &b, |s, t| {
            let mut decided = approval(&id, T0);
            decided.status = if t % 3 == 0 {
                ApprovalStatus::Rejected
            } else {
                ApprovalStatus::Approved
            };
            decided.decided_by = Some(format!("key:{t}"));
            s.update_approval(&decided, ApprovalStatus::Pending)
                .unwrap()
        });
        assert_eq!(wins, 1, "round {round}");
    }
}

#[test]
fn two_handles_scep_transaction_cas() {
    let (a, b) = two_handles();
    // Claiming a new transactionID: one wins.
    let wins = race(6, &a, &b, |s, t| {
        let claim = scep_tx("tx", &format!("r{t}"), ScepTransactionState::InFlight);
        s.put_scep_transaction(&claim, None).unwrap()
    });
    assert_eq!(wins, 1);
    // Moving it on from the stored state: one wins.
    let stored = a.get_scep_transaction("tx").unwrap().unwrap();
    let wins = race(6, &a, &b, |s, t| {
        let mut next = stored.clone();
        next.state = ScepTransactionState::Issued {
            serial: format!("{t:02x}"),
        };
        s.put_scep_transaction(&next, Some(&stored)).unwrap()
    });
    assert_eq!(wins, 1);
    // Deleting what was just read: one wins at most (the stored record
    // moved on, so none does), and deleting the current one: exactly one.
    assert_eq!(
        race(4, &a, &b, |s, _| s
            .delete_scep_transaction(&stored)
            .unwrap()),
        0
    );
    let current = b.get_scep_transaction("tx").unwrap().unwrap();
    assert_eq!(
        race(4, &a, &b, |s, _| s
            .delete_scep_transaction(&current)
            .unwrap()),
        1
    );
    assert_eq!(a.get_scep_transaction("tx").unwrap(), None);
}

#[test]
fn two_handles_account_key_change() {
    let (a, b) = two_handles();
    a.create_account(&account("acct", "old")).unwrap();
    // Every racer rolls over from "old" to a key of its own: one wins.
    let wins = race(6, &a, &b, |s, t| {
        let next = account("acct", &format!("new{t}"));
        s.change_account_key(&next, "old").is_ok()
    });
    assert_eq!(wins, 1);
    assert_eq!(a.account_by_thumbprint("old").unwrap(), None);
    // Two accounts racing to one new key: one wins, the other conflicts.
    a.create_account(&account("x", "kx")).unwrap();
    a.create_account(&account("y", "ky")).unwrap();
    let wins = race(2, &a, &b, |s, t| {
        let (id, old) = if t == 0 { ("x", "kx") } else { ("y", "ky") };
        match s.change_account_key(&account(id, "shared"), old) {
            Ok(()) => true,
            Err(StoreError::Conflict(_)) => false,
            Err(e) => panic!("{e}"),
        }
    });
    assert_eq!(wins, 1);
    // A deactivated account gets no new key from either handle.
    let mut gone = a.get_account("x").unwrap().unwrap();
    if gone.thumbprint == "shared" {
        gone = a.get_account("y").unwrap().unwrap();
    }
    let old = gone.thumbprint.clone();
    gone.status = AccountStatus::Deactivated;
    b.update_account(&gone).unwrap();
    let mut next = gone.clone();
    next.thumbprint = "later".into();
    assert_eq!(
        a.change_account_key(&next, &old),
        Err(StoreError::AccountNotValid)
    );
}

#[test]
fn two_handles_last_admin_key() {
    let (a, b) = two_handles();
    let enabled = |s: &PgStore| -> Vec<String> {
        s.list_api_keys()
            .unwrap()
            .into_iter()
            .filter(|k| k.role == ApiRole::Admin && k.disabled_at.is_none())
            .map(|k| k.id)
            .collect()
    };
    for round in 0..8 {
        for i in 0..3 {
            a.create_api_key(&api_key(&format!("k{round}-{i}"), ApiRole::Admin, T0))
                .unwrap();
        }
        // Every enabled admin key is disabled at once, half through each
        // handle: all but one succeed, the last is refused.
        let ids = enabled(&b);
        let wins = race(ids.len(), &a, &b, |s, t| {
            match s.disable_api_key(&ids[t], T0) {
                Ok(_) => true,
                Err(StoreError::LastAdminKey) => false,
                Err(e) => panic!("{e}"),
            }
        });
        assert_eq!(wins, ids.len() - 1, "round {round}");
        assert_eq!(enabled(&a).len(), 1, "round {round}");
    }
}

#[test]
fn two_handles_create_account_same_thumbprint() {
    let (a, b) = two_handles();
    for round in 0..10 {
        let thumb = format!("th{round}");
        let wins = race(6, &a, &b, |s, t| {
            match s.create_account(&account(&format!("a{round}-{t}"), &thumb)) {
                Ok(()) => true,
                Err(StoreError::Conflict(_)) => false,
                Err(e) => panic!("{e}"),
            }
        });
        assert_eq!(wins, 1, "round {round}");
    }
}

#[test]
fn two_handles_record_issuance_same_serial() {
    let (a, b) = two_handles();
    // The same serial, no order: one certificate, one audit entry.
    let wins = race(6, &a, &b, |s, _| {
        match s.record_issuance(&issuance("5e", None, None)) {
            Ok(_) => true,
            Err(StoreError::DuplicateSerial) => false,
            Err(e) => panic!("{e}"),
        }
    });
    assert_eq!(wins, 1);
    // The same order, different serials: one issuance.
    let mut o = order("race", "acct", T0);
    o.status = OrderStatus::Processing;
    a.put_order(&o).unwrap();
    let wins = race(6, &a, &b, |s, t| {
        let mut done = o.clone();
        done.status = OrderStatus::Valid;
        done.cert_serial = Some(format!("{t:02x}"));
        match s.record_issuance(&issuance(&format!("{t:02x}"), Some(done), None)) {
            Ok(_) => true,
            Err(StoreError::Conflict(_)) => false,
            Err(e) => panic!("{e}"),
        }
    });
    assert_eq!(wins, 1);
    let head = b.audit_head().unwrap().unwrap();
    assert_eq!(head.seq, 2);
    let all = a.audit_entries(0, 10).unwrap();
    verify_chain(&all, None, Some(&head)).unwrap();
}

#[test]
fn two_handles_audit_and_crl_numbers() {
    let (a, b) = two_handles();
    let got = std::sync::Mutex::new(Vec::new());
    race(8, &a, &b, |s, t| {
        for n in 0..10 {
            s.append_audit(&event(t * 100 + n)).unwrap();
            got.lock().unwrap().push(s.next_crl_number("ca").unwrap());
        }
        true
    });
    let mut got = got.into_inner().unwrap();
    got.sort_unstable();
    assert_eq!(got, (1..=80).collect::<Vec<u64>>(), "CRL numbers unique");
    let all = b.audit_entries(0, 1000).unwrap();
    assert_eq!(all.len(), 80);
    verify_chain(&all, None, a.audit_head().unwrap().as_ref()).unwrap();
}

/// A change committed through one handle moves the generation another
/// handle reads (issue 11: what replicas poll).
#[test]
fn two_handles_see_each_others_generations() {
    use ironseal_storage::ChangeKind;
    let (a, b) = two_handles();
    let before = b.change_generations().unwrap();
    a.put_ca(&ca("ca1", T0)).unwrap();
    a.put_setting("issuing-ca", b"ca1", None).unwrap();
    let after = b.change_generations().unwrap();
    assert_eq!(
        after.changed_since(&before),
        vec![ChangeKind::Cas, ChangeKind::Settings]
    );
    assert_eq!(
        b.get_setting("issuing-ca").unwrap().unwrap().value,
        b"ca1".to_vec()
    );
}

/// The bootstrap lock excludes the other handle until it is dropped, and
/// dying with it (the connection closing) releases it.
#[test]
fn two_handles_bootstrap_lock_excludes() {
    let (a, b) = two_handles();
    let held = a.bootstrap_lock().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let lock = b.bootstrap_lock().unwrap();
        tx.send(()).unwrap();
        drop(lock);
    });
    assert!(
        rx.recv_timeout(std::time::Duration::from_millis(500))
            .is_err(),
        "the second handle got the lock while the first held it"
    );
    drop(held);
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("the lock was not released when its holder dropped it");
    waiter.join().unwrap();
}

/// Two replicas (store handles on one database), many threads each, all
/// trying to take or renew one lease with a short TTL on the real clock:
/// one holder per token (tenure), a new tenure starts only at or after the
/// previous one expired (its last renewal's expiry), and tokens strictly
/// increase from one tenure to the next. (Release is in the battery.)
#[test]
fn two_handles_lease_race() {
    use std::sync::Mutex;
    let (a, b) = two_handles();
    let now_ns = || {
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos(),
        )
        .unwrap()
    };
    const TTL: i64 = 20_000_000; // 20 ms
                                 // Every grant as (token, holder, asked at, expires).
    let grants: Mutex<Vec<(u64, String, i64, i64)>> = Mutex::new(Vec::new());
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(1500);
    race(8, &a, &b, |s, t| {
        let me = format!("replica-{t}");
        let mut held = 0;
        while std::time::Instant::now() < deadline {
            let at = now_ns();
            if let Some(l) = s.acquire_lease("crl:race", &me, at, TTL).unwrap() {
                assert_eq!(l.holder, me);
                assert_eq!(l.expires_ns, at + TTL);
                grants
                    .lock()
                    .unwrap()
                    .push((l.token, me.clone(), at, l.expires_ns));
                held += 1;
            }
            // A holder renews a few times, then stays away past its TTL
            // (a replica that stalls or dies); the others poll.
            let pause = if held >= 3 {
                held = 0;
                25 + t as u64
            } else {
                1 + t as u64 % 4
            };
            std::thread::sleep(std::time::Duration::from_millis(pause));
        }
        true
    });
    let mut grants = grants.into_inner().unwrap();
    grants.sort_by_key(|g| (g.0, g.2));
    // Tenures: (token, holder, first grant, last expiry).
    let mut tenures: Vec<(u64, String, i64, i64)> = Vec::new();
    for (token, holder, at, expires) in grants {
        match tenures.last_mut() {
            Some(last) if last.0 == token => {
                assert_eq!(last.1, holder, "token {token} has two holders");
                assert!(at < last.3, "a renewal of token {token} after it expired");
                last.3 = last.3.max(expires);
            }
            _ => tenures.push((token, holder, at, expires)),
        }
    }
    assert!(tenures.len() > 5, "too few tenures: {}", tenures.len());
    let holders: std::collections::HashSet<&String> = tenures.iter().map(|t| &t.1).collect();
    assert!(holders.len() > 1, "the lease never changed hands");
    for w in tenures.windows(2) {
        let (prev, next) = (&w[0], &w[1]);
        assert!(next.0 > prev.0, "tokens strictly increase");
        assert!(
            next.2 >= prev.3,
            "tenure {} began at {} before tenure {} expired at {}",
            next.0,
            next.2,
            prev.0,
            prev.3
        );
    }
    let last = b.get_lease("crl:race").unwrap().unwrap();
    assert_eq!(last.token, tenures.last().unwrap().0);
}
