//! The storage battery against PostgreSQL ([`PgStore`]), plus what only a
//! shared database has: two store handles racing the same transitions,
//! reopening, tampering with the audit log through SQL, and the store on
//! its caller's runtime (current-thread or multi-thread).
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

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

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

async fn open(schema: &str) -> PgStore {
    PgStore::open(&PgOptions {
        url: pg_url(),
        pool_size: 8,
        schema: Some(schema.to_owned()),
    })
    .await
    .unwrap_or_else(|e| panic!("open PostgreSQL schema {schema}: {e}"))
}

battery!(postgres, {
    let store = crate::open(&crate::fresh_schema()).await;
    (std::sync::Arc::new(store), ())
});

// ------------------------------------------------------------ sql helpers

/// Runs SQL directly against a schema, behind the store's back.
async fn raw_sql(schema: &str, sql: &str) {
    let (client, conn) = tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    client
        .batch_execute(&format!("SET search_path = {schema}; {sql}"))
        .await
        .unwrap();
    drop(client);
    conn.await.unwrap().unwrap();
}

// ------------------------------------------------------ reopen, migrations

#[tokio::test]
async fn postgres_reopen_keeps_everything() {
    let schema = fresh_schema();
    {
        let s = open(&schema).await;
        // Every method commits: no flush, and the server skips its group
        // commit (server/src/durability.rs).
        assert!(s.commits_are_durable());
        populate(&s).await;
    }
    // A second open re-runs the (already applied) migrations harmlessly,
    // and finds everything written without a flush.
    let s = open(&schema).await;
    verify_populated(&s).await;
    drop(s);
    let s = open(&schema).await;
    assert_eq!(s.next_crl_number("pica").await.unwrap(), 4);
}

#[tokio::test]
async fn postgres_refuses_a_newer_schema() {
    let schema = fresh_schema();
    drop(open(&schema).await);
    raw_sql(
        &schema,
        &format!(
            "INSERT INTO schema_version (version) VALUES ({})",
            PgStore::schema_version() + 1
        ),
    )
    .await;
    let err = PgStore::open(&PgOptions {
        url: pg_url(),
        pool_size: 2,
        schema: Some(schema),
    })
    .await
    .unwrap_err();
    assert!(
        matches!(&err, StoreError::Backend(m) if m.contains("newer than this binary")),
        "{err}"
    );
}

#[tokio::test]
async fn postgres_bad_connection_settings_are_errors() {
    let bad_schema = PgStore::open(&PgOptions {
        url: pg_url(),
        pool_size: 2,
        schema: Some("x; DROP TABLE y".into()),
    })
    .await;
    assert!(matches!(bad_schema, Err(StoreError::Backend(_))));
    let bad_url = PgStore::open(&PgOptions {
        url: "postgres://[".into(),
        pool_size: 2,
        schema: None,
    })
    .await;
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
    })
    .await;
    assert!(matches!(tls, Err(StoreError::Backend(_))));
    // Nothing listens on port 1 of loopback: a clean error, no hang.
    let unreachable = PgStore::open(&PgOptions {
        url: "postgres://postgres@127.0.0.1:1/postgres".into(),
        pool_size: 2,
        schema: None,
    })
    .await;
    assert!(matches!(unreachable, Err(StoreError::Backend(_))));
}

/// Tampering with the audit log in SQL (a modified entry, removed entries,
/// two swapped entries) is detected by `verify_chain`, as for sled.
#[tokio::test]
async fn postgres_audit_tampering_is_detected() {
    async fn fresh() -> String {
        let schema = fresh_schema();
        let s = open(&schema).await;
        for n in 0..6 {
            s.append_audit(&event(n)).await.unwrap();
        }
        schema
    }
    async fn check(schema: &str) -> Result<(), ChainError> {
        let s = open(schema).await;
        let all = s.audit_entries(0, 100).await.unwrap();
        let head = s.audit_head().await.unwrap();
        verify_chain(&all, None, head.as_ref())
    }
    let schema = fresh().await;
    check(&schema).await.unwrap();

    raw_sql(
        &schema,
        "UPDATE audit_log SET doc = jsonb_set(doc::jsonb, '{summary}', '\"nothing to see\"')::text \
         WHERE seq = 3",
    ).await;
    assert_eq!(check(&schema).await, Err(ChainError::Modified { seq: 3 }));

    let schema = fresh().await;
    raw_sql(&schema, "DELETE FROM audit_log WHERE seq = 2").await;
    assert!(matches!(
        check(&schema).await,
        Err(ChainError::Sequence {
            expected: 2,
            found: 3
        })
    ));

    let schema = fresh().await;
    raw_sql(&schema, "DELETE FROM audit_log WHERE seq = 6").await;
    assert!(matches!(
        check(&schema).await,
        Err(ChainError::Head {
            last: 5,
            head_seq: 6
        })
    ));

    let schema = fresh().await;
    raw_sql(
        &schema,
        "UPDATE audit_log SET seq = -seq WHERE seq IN (4, 5);
         UPDATE audit_log SET seq = CASE seq WHEN -4 THEN 5 ELSE 4 END,
             doc = jsonb_set(doc::jsonb, '{seq}', to_jsonb(CASE seq WHEN -4 THEN 5 ELSE 4 END))::text
         WHERE seq IN (-4, -5)",
    ).await;
    assert!(check(&schema).await.is_err());
}

/// Hardening (issue 10 item 14): an entry rewritten in SQL with every
/// later hash and the head recomputed still verifies as a bare hash chain
/// but fails the MAC check.
#[tokio::test]
async fn postgres_keyed_audit_rewrite_is_detected() {
    let schema = fresh_schema();
    let key = mac_key();
    let s = open(&schema).await;
    s.set_audit_mac_key(key.clone());
    for n in 0..6 {
        s.append_audit(&event(n)).await.unwrap();
    }
    assert_eq!(verify_keyed(&s, &key, Some(1)).await, Ok(Some(1)));
    let forged = rewrite_from(s.audit_entries(0, 100).await.unwrap(), 3);
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
    raw_sql(&schema, &sql).await;
    let s = open(&schema).await;
    let all = s.audit_entries(0, 100).await.unwrap();
    assert_eq!(all[2].summary, "nothing to see");
    verify_chain(&all, None, s.audit_head().await.unwrap().as_ref()).unwrap();
    assert_eq!(
        verify_keyed(&s, &key, Some(1)).await,
        Err(ChainError::Mac { seq: 3 })
    );
}

// ------------------------------------------------------ cached statements

/// Every kind of call the test below repeats around schema changes; `n`
/// names this round's records, and every earlier round's are read back.
async fn exercise_cached_statements(s: &PgStore, n: usize) {
    let id = format!("a{n}");
    s.create_account(&account(&id, &format!("th{n}")))
        .await
        .unwrap();
    for m in 0..=n {
        assert!(s.get_account(&format!("a{m}")).await.unwrap().is_some());
        assert!(s
            .account_by_thumbprint(&format!("th{m}"))
            .await
            .unwrap()
            .is_some());
    }
    s.put_order(&order(
        &format!("o{n}"),
        "acct",
        T0 + time::Duration::minutes(n as i64),
    ))
    .await
    .unwrap();
    let all: Vec<String> = (0..=n).map(|m| format!("o{m}")).collect();
    assert_eq!(s.list_orders("acct", None, 100).await.unwrap(), all);
    s.insert_certificate(&cert(&format!("{n:02x}"), "ica"))
        .await
        .unwrap();
    s.block_key(&format!("{n:02x}")).await.unwrap();
    for m in 0..=n {
        assert!(s
            .get_certificate(&format!("{m:02x}"))
            .await
            .unwrap()
            .is_some());
        assert!(s.is_key_blocked(&format!("{m:02x}")).await.unwrap());
    }
    assert_eq!(s.next_crl_number("ca").await.unwrap(), n as u64 + 1);
    s.append_audit(&event(n)).await.unwrap();
    let entries = s.audit_entries(0, 100).await.unwrap();
    assert_eq!(entries.len(), n + 1);
    verify_chain(&entries, None, s.audit_head().await.unwrap().as_ref()).unwrap();
}

/// Statements cached on a connection survive schema changes made behind
/// the store's back, as a later migration (run by another replica) would
/// make them: columns, an index and a table added, a table rebuilt under
/// its name. A result column whose type changes fails the one call that
/// finds its cached plan stale ("cached plan must not change result
/// type"); the statement is evicted and the next call works.
#[tokio::test]
async fn postgres_cached_statements_survive_a_schema_change() {
    let schema = fresh_schema();
    // One connection: every call below runs on the statements cached on it.
    let s = PgStore::open(&PgOptions {
        url: pg_url(),
        pool_size: 1,
        schema: Some(schema.clone()),
    })
    .await
    .unwrap();
    exercise_cached_statements(&s, 0).await;
    raw_sql(
        &schema,
        "ALTER TABLE accounts ADD COLUMN note text;
         CREATE INDEX accounts_by_note ON accounts (note);
         ALTER TABLE certificates ADD COLUMN extra integer NOT NULL DEFAULT 0;
         CREATE TABLE future_kind (id text PRIMARY KEY);
         ALTER TABLE blocked_keys RENAME TO blocked_keys_old;
         CREATE TABLE blocked_keys (LIKE blocked_keys_old INCLUDING ALL);
         INSERT INTO blocked_keys SELECT * FROM blocked_keys_old;
         DROP TABLE blocked_keys_old;",
    )
    .await;
    exercise_cached_statements(&s, 1).await;
    // `SELECT id FROM orders …` now returns varchar, not text.
    raw_sql(
        &schema,
        "ALTER TABLE orders ALTER COLUMN id TYPE varchar(64) COLLATE \"C\"",
    )
    .await;
    if let Err(e) = s.list_orders("acct", None, 100).await {
        assert!(
            e.to_string()
                .contains("cached plan must not change result type"),
            "{e}"
        );
    }
    assert_eq!(
        s.list_orders("acct", None, 100).await.unwrap(),
        vec!["o0", "o1"]
    );
    exercise_cached_statements(&s, 2).await;
}

// ------------------------------------------------ the caller's runtime

/// The store runs on its caller's runtime (no bridge of its own, decision
/// 0008): it serves tasks spawned on a multi-thread runtime (its futures
/// are `Send`) and a current-thread runtime alike, including connections
/// the other runtime opened, and dropping the last handle inside a runtime
/// does not panic.
#[test]
fn postgres_store_on_the_callers_runtime() {
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let store: Arc<dyn Store> = multi.block_on(async { Arc::new(open(&fresh_schema()).await) });
    let s = store.clone();
    let n = multi.block_on(async move {
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move { s.next_crl_number("ca").await.unwrap() })
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
        assert_eq!(store.next_crl_number("ca").await.unwrap(), 5);
        store.append_audit(&event(1)).await.unwrap();
        // The last handle dropped inside the runtime.
        drop(store);
    });
}

// -------------------------------------------- two handles, one database

/// Runs `f(handle, t)` for t in 0..n on n OS threads released together
/// ([`battery_body::race`]), even t on one handle and odd t on the other;
/// counts the `true`s. Needs the multi-thread runtime.
fn race<'h, F, Fut>(n: usize, a: &'h PgStore, b: &'h PgStore, f: F) -> usize
where
    F: Fn(&'h PgStore, usize) -> Fut + Sync,
    Fut: Future<Output = bool>,
{
    count(battery_body::race(n, |t| {
        f(if t % 2 == 0 { a } else { b }, t)
    }))
}

async fn two_handles() -> (PgStore, PgStore) {
    let schema = fresh_schema();
    (open(&schema).await, open(&schema).await)
}

/// Two replicas redeeming one nonce: exactly one succeeds (issue 11: a
/// replay on any replica is badNonce).
#[tokio::test(flavor = "multi_thread")]
async fn two_handles_nonce_redemption() {
    let (a, b) = two_handles().await;
    for round in 0..10u128 {
        let wins = race(6, &a, &b, |s, _| async move {
            s.redeem_nonce(round, 4_000_000_000).await.unwrap()
        });
        assert_eq!(wins, 1, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_handles_order_transition() {
    let (a, b) = two_handles().await;
    for round in 0..10 {
        let id = format!("o{round}");
        let mut o = order(&id, "acct", T0);
        o.status = OrderStatus::Ready;
        a.put_order(&o).await.unwrap();
        let o = &o;
        let wins = race(6, &a, &b, |s, _| async move {
            let mut next = o.clone();
            next.status = OrderStatus::Processing;
            s.transition_order(&next, OrderStatus::Ready).await.unwrap()
        });
        assert_eq!(wins, 1, "round {round}");
        assert_eq!(
            b.get_order(&id).await.unwrap().unwrap().status,
            OrderStatus::Processing
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_handles_approval_update() {
    let (a, b) = two_handles().await;
    for round in 0..10 {
        let id = format!("ap{round}");
        a.create_approval(&approval(&id, T0)).await.unwrap();
        let id = &id;
        let wins = race(6, &a, &b, |s, t| async move {
            let mut decided = approval(id, T0);
            decided.status = if t % 3 == 0 {
                ApprovalStatus::Rejected
            } else {
                ApprovalStatus::Approved
            };
            decided.decided_by = Some(format!("key:{t}"));
            s.update_approval(&decided, ApprovalStatus::Pending)
                .await
                .unwrap()
        });
        assert_eq!(wins, 1, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_handles_scep_transaction_cas() {
    let (a, b) = two_handles().await;
    // Claiming a new transactionID: one wins.
    let wins = race(6, &a, &b, |s, t| async move {
        let claim = scep_tx("tx", &format!("r{t}"), ScepTransactionState::InFlight);
        s.put_scep_transaction(&claim, None).await.unwrap()
    });
    assert_eq!(wins, 1);
    // Moving it on from the stored state: one wins.
    let stored = a.get_scep_transaction("tx").await.unwrap().unwrap();
    let stored = &stored;
    let wins = race(6, &a, &b, |s, t| async move {
        let mut next = stored.clone();
        next.state = ScepTransactionState::Issued {
            serial: format!("{t:02x}"),
        };
        s.put_scep_transaction(&next, Some(stored)).await.unwrap()
    });
    assert_eq!(wins, 1);
    // Deleting what was just read: one wins at most (the stored record
    // moved on, so none does), and deleting the current one: exactly one.
    assert_eq!(
        race(4, &a, &b, |s, _| async move {
            s.delete_scep_transaction(stored).await.unwrap()
        }),
        0
    );
    let current = b.get_scep_transaction("tx").await.unwrap().unwrap();
    let current = &current;
    assert_eq!(
        race(4, &a, &b, |s, _| async move {
            s.delete_scep_transaction(current).await.unwrap()
        }),
        1
    );
    assert_eq!(a.get_scep_transaction("tx").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_handles_account_key_change() {
    let (a, b) = two_handles().await;
    a.create_account(&account("acct", "old")).await.unwrap();
    // Every racer rolls over from "old" to a key of its own: one wins.
    let wins = race(6, &a, &b, |s, t| async move {
        let next = account("acct", &format!("new{t}"));
        s.change_account_key(&next, "old").await.is_ok()
    });
    assert_eq!(wins, 1);
    assert_eq!(a.account_by_thumbprint("old").await.unwrap(), None);
    // Two accounts racing to one new key: one wins, the other conflicts.
    a.create_account(&account("x", "kx")).await.unwrap();
    a.create_account(&account("y", "ky")).await.unwrap();
    let wins = race(2, &a, &b, |s, t| async move {
        let (id, old) = if t == 0 { ("x", "kx") } else { ("y", "ky") };
        match s.change_account_key(&account(id, "shared"), old).await {
            Ok(()) => true,
            Err(StoreError::Conflict(_)) => false,
            Err(e) => panic!("{e}"),
        }
    });
    assert_eq!(wins, 1);
    // A deactivated account gets no new key from either handle.
    let mut gone = a.get_account("x").await.unwrap().unwrap();
    if gone.thumbprint == "shared" {
        gone = a.get_account("y").await.unwrap().unwrap();
    }
    let old = gone.thumbprint.clone();
    gone.status = AccountStatus::Deactivated;
    b.update_account(&gone).await.unwrap();
    let mut next = gone.clone();
    next.thumbprint = "later".into();
    assert_eq!(
        a.change_account_key(&next, &old).await,
        Err(StoreError::AccountNotValid)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_handles_last_admin_key() {
    async fn enabled(s: &PgStore) -> Vec<String> {
        s.list_api_keys()
            .await
            .unwrap()
            .into_iter()
            .filter(|k| k.role == ApiRole::Admin && k.disabled_at.is_none())
            .map(|k| k.id)
            .collect()
    }
    let (a, b) = two_handles().await;
    for round in 0..8 {
        for i in 0..3 {
            a.create_api_key(&api_key(&format!("k{round}-{i}"), ApiRole::Admin, T0))
                .await
                .unwrap();
        }
        // Every enabled admin key is disabled at once, half through each
        // handle: all but one succeed, the last is refused.
        let ids = enabled(&b).await;
        let ids_ref = &ids;
        let wins = race(ids.len(), &a, &b, |s, t| async move {
            match s.disable_api_key(&ids_ref[t], T0).await {
                Ok(_) => true,
                Err(StoreError::LastAdminKey) => false,
                Err(e) => panic!("{e}"),
            }
        });
        assert_eq!(wins, ids.len() - 1, "round {round}");
        assert_eq!(enabled(&a).await.len(), 1, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_handles_create_account_same_thumbprint() {
    let (a, b) = two_handles().await;
    for round in 0..10 {
        let thumb = format!("th{round}");
        let thumb = &thumb;
        let wins = race(6, &a, &b, |s, t| async move {
            match s
                .create_account(&account(&format!("a{round}-{t}"), thumb))
                .await
            {
                Ok(()) => true,
                Err(StoreError::Conflict(_)) => false,
                Err(e) => panic!("{e}"),
            }
        });
        assert_eq!(wins, 1, "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_handles_record_issuance_same_serial() {
    let (a, b) = two_handles().await;
    // The same serial, no order: one certificate, one audit entry.
    let wins = race(6, &a, &b, |s, _| async move {
        match s.record_issuance(&issuance("5e", None, None)).await {
            Ok(_) => true,
            Err(StoreError::DuplicateSerial) => false,
            Err(e) => panic!("{e}"),
        }
    });
    assert_eq!(wins, 1);
    // The same order, different serials: one issuance.
    let mut o = order("race", "acct", T0);
    o.status = OrderStatus::Processing;
    a.put_order(&o).await.unwrap();
    let o = &o;
    let wins = race(6, &a, &b, |s, t| async move {
        let mut done = o.clone();
        done.status = OrderStatus::Valid;
        done.cert_serial = Some(format!("{t:02x}"));
        match s
            .record_issuance(&issuance(&format!("{t:02x}"), Some(done), None))
            .await
        {
            Ok(_) => true,
            Err(StoreError::Conflict(_)) => false,
            Err(e) => panic!("{e}"),
        }
    });
    assert_eq!(wins, 1);
    let head = b.audit_head().await.unwrap().unwrap();
    assert_eq!(head.seq, 2);
    let all = a.audit_entries(0, 10).await.unwrap();
    verify_chain(&all, None, Some(&head)).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_handles_audit_and_crl_numbers() {
    let (a, b) = two_handles().await;
    let got = std::sync::Mutex::new(Vec::new());
    let got_ref = &got;
    race(8, &a, &b, |s, t| async move {
        for n in 0..10 {
            s.append_audit(&event(t * 100 + n)).await.unwrap();
            let number = s.next_crl_number("ca").await.unwrap();
            got_ref.lock().unwrap().push(number);
        }
        true
    });
    let mut got = got.into_inner().unwrap();
    got.sort_unstable();
    assert_eq!(got, (1..=80).collect::<Vec<u64>>(), "CRL numbers unique");
    let all = b.audit_entries(0, 1000).await.unwrap();
    assert_eq!(all.len(), 80);
    verify_chain(&all, None, a.audit_head().await.unwrap().as_ref()).unwrap();
}

/// A change committed through one handle moves the generation another
/// handle reads (issue 11: what replicas poll).
#[tokio::test]
async fn two_handles_see_each_others_generations() {
    use ironseal_storage::ChangeKind;
    let (a, b) = two_handles().await;
    let before = b.change_generations().await.unwrap();
    a.put_ca(&ca("ca1", T0)).await.unwrap();
    a.put_setting("issuing-ca", b"ca1", None).await.unwrap();
    let after = b.change_generations().await.unwrap();
    assert_eq!(
        after.changed_since(&before),
        vec![ChangeKind::Cas, ChangeKind::Settings]
    );
    assert_eq!(
        b.get_setting("issuing-ca").await.unwrap().unwrap().value,
        b"ca1".to_vec()
    );
}

/// The bootstrap lock excludes the other handle until it is dropped, and
/// dying with it (the connection closing) releases it.
#[tokio::test(flavor = "multi_thread")]
async fn two_handles_bootstrap_lock_excludes() {
    let (a, b) = two_handles().await;
    let held = a.bootstrap_lock().await.unwrap();
    let (tx, mut rx) = tokio::sync::oneshot::channel();
    let waiter = tokio::spawn(async move {
        let lock = b.bootstrap_lock().await.unwrap();
        tx.send(()).unwrap();
        drop(lock);
    });
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(500), &mut rx)
            .await
            .is_err(),
        "the second handle got the lock while the first held it"
    );
    drop(held);
    tokio::time::timeout(std::time::Duration::from_secs(10), rx)
        .await
        .expect("the lock was not released when its holder dropped it")
        .unwrap();
    waiter.await.unwrap();
}

/// Two replicas (store handles on one database), many threads each, all
/// trying to take or renew one lease with a short TTL on the real clock:
/// one holder per token (tenure), a new tenure starts only at or after the
/// previous one expired (its last renewal's expiry), and tokens strictly
/// increase from one tenure to the next. (Release is in the battery.)
#[tokio::test(flavor = "multi_thread")]
async fn two_handles_lease_race() {
    use std::sync::Mutex;
    let (a, b) = two_handles().await;
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
    let grants_ref = &grants;
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(1500);
    race(8, &a, &b, |s, t| async move {
        let me = format!("replica-{t}");
        let mut held = 0;
        while std::time::Instant::now() < deadline {
            let at = now_ns();
            if let Some(l) = s.acquire_lease("crl:race", &me, at, TTL).await.unwrap() {
                assert_eq!(l.holder, me);
                assert_eq!(l.expires_ns, at + TTL);
                grants_ref
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
            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
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
    let last = b.get_lease("crl:race").await.unwrap().unwrap();
    assert_eq!(last.token, tenures.last().unwrap().0);
}

// -------------------------------------------------------------- benchmark

/// Runs `op(i)` for i in `base..base + n`, one at a time; the median and
/// the mean time per call in µs.
async fn timed<F, Fut>(base: usize, n: usize, mut op: F) -> (f64, f64)
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut lat = Vec::with_capacity(n);
    for i in base..base + n {
        let t = std::time::Instant::now();
        op(i).await;
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    lat.sort_by(f64::total_cmp);
    (lat[n / 2], lat.iter().sum::<f64>() / n as f64)
}

/// Time per call of common store operations on one handle, one call at a
/// time (so on one pooled connection): what the statement cache saves is a
/// parse round trip per statement. A measurement, not a check; run with
///
/// ```sh
/// cargo test --release -p ironseal-storage --test battery_postgres \
///     postgres_bench_common_operations -- --ignored --nocapture
/// ```
#[tokio::test]
#[ignore = "a benchmark: run it on purpose (see its doc comment)"]
async fn postgres_bench_common_operations() {
    use ironseal_storage::{BucketOp, Gcra};
    const N: usize = 2000;
    let s = &open(&fresh_schema()).await;
    s.create_account(&account("acct", "th")).await.unwrap();
    s.insert_certificate(&cert("0a", "ica")).await.unwrap();
    let gcra = Gcra {
        interval_ns: 1,
        burst: 1_000_000,
    };
    // Round 0 warms up (the pool opens its connection; with the cache,
    // every statement is prepared); round 1 is reported.
    let mut report = Vec::new();
    for round in 0..2 {
        let base = round * N;
        let figures = [
            (
                "get_account",
                timed(base, N, |_| async move {
                    s.get_account("acct").await.unwrap().unwrap();
                })
                .await,
            ),
            (
                "certificate_status",
                timed(base, N, |_| async move {
                    s.certificate_status("0a").await.unwrap().unwrap();
                })
                .await,
            ),
            (
                "redeem_nonce",
                timed(base, N, |i| async move {
                    assert!(s.redeem_nonce(i as u128, u64::MAX >> 1).await.unwrap());
                })
                .await,
            ),
            (
                "rate_bucket",
                timed(base, N, |i| async move {
                    let now = i64::try_from(i).unwrap();
                    s.rate_bucket("k", BucketOp::Take, gcra, now).await.unwrap();
                })
                .await,
            ),
            (
                "insert_certificate",
                timed(base, N, |i| async move {
                    let c = cert(&format!("{i:08x}"), "ica");
                    s.insert_certificate(&c).await.unwrap();
                })
                .await,
            ),
            (
                "put_order + transition_order",
                timed(base, N, |i| async move {
                    let mut o = order(&format!("o{i}"), "acct", T0);
                    s.put_order(&o).await.unwrap();
                    o.status = OrderStatus::Ready;
                    assert!(s.transition_order(&o, OrderStatus::Pending).await.unwrap());
                })
                .await,
            ),
            (
                "append_audit",
                timed(base, N, |i| async move {
                    s.append_audit(&event(i)).await.unwrap();
                })
                .await,
            ),
            (
                "change_generations",
                timed(base, N, |_| async move {
                    s.change_generations().await.unwrap();
                })
                .await,
            ),
        ];
        if round == 1 {
            report.extend(figures);
        }
    }
    println!("{:<30} {:>9} {:>9}", "µs per call", "median", "mean");
    for (what, (median, mean)) in report {
        println!("{what:<30} {median:>9.1} {mean:>9.1}");
    }
}
