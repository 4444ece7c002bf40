//! The storage battery body: behavioural tests every backend must pass,
//! instantiated per backend by the `battery!` macro at the bottom
//! (hickory-dns' zone battery pattern). Shared by `tests/battery.rs`
//! (memory, sled) and `tests/battery_postgres.rs` (PostgreSQL), each of
//! which includes this module and adds one `battery!` line per backend.
#![allow(
    dead_code,
    reason = "each including test crate uses a subset of the helpers"
)]

use std::future::Future;
use std::sync::Barrier;

use ironseal_storage::{
    audit, backup, export, new_id, settings, verify_chain, AccountRecord, AccountStatus,
    ApiKeyRecord, ApiRole, ApprovalRecord, ApprovalStatus, AuditEntry, AuditEvent, AuditKeyRecord,
    AuditMacKey, AuthzRecord, AuthzStatus, CaRecord, CaStatus, CaUpdate, CaWrite,
    CertificateRecord, ChainError, ChainVerifier, ChallengeRecord, ChallengeStatus, ChallengeType,
    CrlPart, EabKeyRecord, ExportRecord, Identifier, IssuanceWrite, MemoryStore, OrderRecord,
    OrderStatus, RevocationReason, RevocationRecord, RevocationWrite, ScepChallengeRecord,
    ScepSettle, ScepTransactionRecord, ScepTransactionState, Store, StoreError, TenantNames,
    TenantRecord,
};
use serde_json::json;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

pub(crate) const T0: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

pub(crate) fn account(id: &str, thumb: &str) -> AccountRecord {
    AccountRecord {
        id: id.into(),
        jwk: json!({"kty": "EC", "crv": "P-256", "x": thumb, "y": "y"}),
        thumbprint: thumb.into(),
        contact: vec!["mailto:a@example.com".into()],
        status: AccountStatus::Valid,
        created_at: T0,
        tenant_id: None,
        eab_kid: None,
    }
}

pub(crate) fn order(id: &str, account_id: &str, created_at: OffsetDateTime) -> OrderRecord {
    OrderRecord {
        id: id.into(),
        account_id: account_id.into(),
        status: OrderStatus::Pending,
        expires: created_at + Duration::days(7),
        identifiers: vec![
            Identifier::dns("example.com"),
            Identifier::dns("*.example.com"),
        ],
        not_before: None,
        not_after: Some(created_at + Duration::days(90)),
        authz_ids: vec!["az1".into(), "az2".into()],
        error: None,
        cert_serial: None,
        replaces: None,
        profile: Some("tls".into()),
        approval_id: None,
        created_at,
    }
}

pub(crate) fn authz(
    id: &str,
    account_id: &str,
    value: &str,
    wildcard: bool,
    status: AuthzStatus,
    expires: OffsetDateTime,
) -> AuthzRecord {
    AuthzRecord {
        id: id.into(),
        account_id: account_id.into(),
        identifier: Identifier::dns(value),
        status,
        expires,
        wildcard,
        challenges: vec![ChallengeRecord {
            id: format!("{id}-ch"),
            kind: ChallengeType::Dns01,
            token: "tok".into(),
            status: ChallengeStatus::Pending,
            validated: None,
            error: None,
        }],
    }
}

pub(crate) fn cert(serial: &str, issuer_id: &str) -> CertificateRecord {
    CertificateRecord {
        serial: serial.into(),
        issuer_id: issuer_id.into(),
        account_id: "acct".into(),
        order_id: "ord".into(),
        der: vec![0x30, 0x82, 0x00, 0xff, 0x00, 0x01, 0xfe],
        not_before: T0,
        not_after: T0 + Duration::days(90),
        public_key_sha256: "ab".repeat(32),
        identifiers: vec![Identifier::dns("example.com"), Identifier::ip("192.0.2.1")],
        revocation: None,
        replaced_by: None,
        renew_early: false,
        origin: Default::default(),
    }
}

pub(crate) fn ca(id: &str, created_at: OffsetDateTime) -> CaRecord {
    CaRecord {
        id: id.into(),
        name: format!("CA {id}"),
        parent_id: None,
        cert_der: vec![0x30, 0x03, 0x02, 0x01, 0x00],
        sealed_key: (0u8..=255).collect(),
        algorithm: Some(ironseal_storage::KeyAlgorithm::EcdsaP256),
        status: CaStatus::Active,
        created_at,
        cross_certs: Vec::new(),
        csr_der: Vec::new(),
        predecessor_id: None,
    }
}

pub(crate) fn rev(reason: u8) -> RevocationRecord {
    RevocationRecord {
        revoked_at: T0 + Duration::hours(1),
        reason: RevocationReason::try_from(reason).expect("valid reason code"),
    }
}

/// Runs `racer(t)` for every t in `0..n`, each on an OS thread of its own,
/// released together by a barrier, and returns the results in order of t:
/// the racers really run at once, as the server's worker threads do.
///
/// Each thread drives its future with [`tokio::runtime::Handle::block_on`]
/// on the test's runtime, which must be the multi-thread one
/// (`#[tokio::test(flavor = "multi_thread")]`; `block_in_place` panics on
/// a current-thread runtime): PostgreSQL connections are tasks of that
/// runtime, whose workers carry their I/O while the racers block. The
/// racers may borrow (the store, the test's values): the threads are
/// scoped.
pub(crate) fn race<T, F, Fut>(n: usize, racer: F) -> Vec<T>
where
    T: Send,
    F: Fn(usize) -> Fut + Sync,
    Fut: Future<Output = T>,
{
    let runtime = tokio::runtime::Handle::current();
    let barrier = Barrier::new(n);
    tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..n)
                .map(|t| {
                    let (runtime, barrier, racer) = (&runtime, &barrier, &racer);
                    scope.spawn(move || {
                        let run = racer(t);
                        barrier.wait();
                        runtime.block_on(run)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    })
}

/// How many of `results` are `true`.
pub(crate) fn count(results: Vec<bool>) -> usize {
    results.into_iter().filter(|&won| won).count()
}

// ---------------------------------------------------------------- accounts

pub(crate) async fn account_create_get(s: &dyn Store) {
    let a = account("a1", "th1");
    s.create_account(&a).await.unwrap();
    assert_eq!(s.get_account("a1").await.unwrap(), Some(a.clone()));
    assert_eq!(
        s.account_by_thumbprint("th1").await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(s.get_account("nope").await.unwrap(), None);
    assert_eq!(s.account_by_thumbprint("nope").await.unwrap(), None);

    // Same thumbprint, other id: Conflict, nothing written.
    let dup = account("a2", "th1");
    assert!(matches!(
        s.create_account(&dup).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.get_account("a2").await.unwrap(), None);
    // Same id, other thumbprint: Conflict, the thumbprint stays free.
    let dup_id = account("a1", "th2");
    assert!(matches!(
        s.create_account(&dup_id).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.account_by_thumbprint("th2").await.unwrap(), None);
    assert_eq!(s.get_account("a1").await.unwrap(), Some(a));
}

pub(crate) async fn account_update(s: &dyn Store) {
    let mut a = account("a1", "th1");
    s.create_account(&a).await.unwrap();
    a.contact = vec![];
    a.status = AccountStatus::Deactivated;
    s.update_account(&a).await.unwrap();
    assert_eq!(s.get_account("a1").await.unwrap(), Some(a.clone()));
    assert_eq!(
        s.account_by_thumbprint("th1").await.unwrap(),
        Some(a.clone())
    );

    let mut other_key = a.clone();
    other_key.thumbprint = "th9".into();
    assert!(matches!(
        s.update_account(&other_key).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.account_by_thumbprint("th9").await.unwrap(), None);

    assert_eq!(
        s.update_account(&account("missing", "thm")).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(s.get_account("missing").await.unwrap(), None);
}

/// Deactivation is final (RFC 8555 §7.3.6): an update carrying a `valid`
/// snapshot taken before the deactivation, and a key change, both lose.
pub(crate) async fn account_deactivation_is_final(s: &dyn Store) {
    let snapshot = account("d1", "thd");
    s.create_account(&snapshot).await.unwrap();
    let mut gone = snapshot.clone();
    gone.status = AccountStatus::Deactivated;
    s.update_account(&gone).await.unwrap();
    let mut revived = snapshot.clone();
    revived.contact = vec!["mailto:new@example.com".into()];
    assert_eq!(
        s.update_account(&revived).await,
        Err(StoreError::AccountNotValid)
    );
    let mut rolled = snapshot.clone();
    rolled.thumbprint = "thd-new".into();
    assert_eq!(
        s.change_account_key(&rolled, "thd").await,
        Err(StoreError::AccountNotValid)
    );
    assert_eq!(s.get_account("d1").await.unwrap(), Some(gone.clone()));
    assert_eq!(s.account_by_thumbprint("thd-new").await.unwrap(), None);
    // Writing the same final status again is harmless.
    s.update_account(&gone).await.unwrap();
}

pub(crate) async fn account_change_key(s: &dyn Store) {
    s.create_account(&account("a1", "old")).await.unwrap();
    s.create_account(&account("a2", "taken")).await.unwrap();

    let mut rolled = account("a1", "new");
    rolled.jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": "new"});
    s.change_account_key(&rolled, "old").await.unwrap();
    assert_eq!(s.get_account("a1").await.unwrap(), Some(rolled.clone()));
    assert_eq!(
        s.account_by_thumbprint("new").await.unwrap(),
        Some(rolled.clone())
    );
    assert_eq!(s.account_by_thumbprint("old").await.unwrap(), None);
    // The old key is free again.
    s.create_account(&account("a3", "old")).await.unwrap();

    // New key used by another account.
    let clash = account("a1", "taken");
    assert!(matches!(
        s.change_account_key(&clash, "new").await,
        Err(StoreError::Conflict(_))
    ));
    // Stale old thumbprint (someone rolled first).
    let stale = account("a1", "newer");
    assert!(matches!(
        s.change_account_key(&stale, "old").await,
        Err(StoreError::Conflict(_))
    ));
    // Rolling to the key it already has is a key "already in use".
    assert!(matches!(
        s.change_account_key(&rolled, "new").await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.get_account("a1").await.unwrap(), Some(rolled));
    assert_eq!(s.account_by_thumbprint("newer").await.unwrap(), None);
    assert_eq!(
        s.account_by_thumbprint("taken").await.unwrap().unwrap().id,
        "a2"
    );
    assert_eq!(
        s.change_account_key(&account("zz", "zz"), "x").await,
        Err(StoreError::NotFound)
    );
}

pub(crate) async fn account_create_race(s: &dyn Store) {
    for round in 0..10 {
        let thumb = format!("race-{round}");
        let thumb_ref = &thumb;
        let results: Vec<Result<(), StoreError>> = race(8, |i| async move {
            s.create_account(&account(&format!("r{round}-{i}"), thumb_ref))
                .await
        });
        let wins: Vec<usize> = (0..8).filter(|&i| results[i].is_ok()).collect();
        assert_eq!(wins.len(), 1, "round {round}: {results:?}");
        for (i, r) in results.iter().enumerate() {
            if i != wins[0] {
                assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
                assert_eq!(s.get_account(&format!("r{round}-{i}")).await.unwrap(), None);
            }
        }
        let winner = s.account_by_thumbprint(&thumb).await.unwrap().unwrap();
        assert_eq!(winner.id, format!("r{round}-{}", wins[0]));
    }
}

// ------------------------------------------------------------------ orders

pub(crate) async fn order_put_get(s: &dyn Store) {
    let mut o = order("o1", "acct", T0);
    s.put_order(&o).await.unwrap();
    assert_eq!(s.get_order("o1").await.unwrap(), Some(o.clone()));
    assert_eq!(s.get_order("nope").await.unwrap(), None);
    o.status = OrderStatus::Invalid;
    o.error = Some(json!({"type": "urn:ietf:params:acme:error:unauthorized"}));
    s.put_order(&o).await.unwrap();
    assert_eq!(s.get_order("o1").await.unwrap(), Some(o));
    // Re-putting does not duplicate the listing entry.
    assert_eq!(s.list_orders("acct", None, 10).await.unwrap(), vec!["o1"]);
}

pub(crate) async fn order_list_pagination(s: &dyn Store) {
    // Insert out of creation order, with ids not in creation order either.
    let created = [
        ("zz", 3),
        ("aa", 1),
        ("mm", 5),
        ("bb", 2),
        ("yy", 4),
        ("cc", 4), // same created_at as yy: ties break by id
    ];
    for (id, mins) in created {
        s.put_order(&order(id, "acct", T0 + Duration::minutes(mins)))
            .await
            .unwrap();
    }
    // Another account's orders, created in between, must not appear.
    s.put_order(&order("other1", "acct2", T0 + Duration::minutes(2)))
        .await
        .unwrap();
    // An account id that is a prefix of another must not leak either.
    s.put_order(&order("pfx", "acc", T0)).await.unwrap();
    s.put_order(&order("longer", "acctX", T0)).await.unwrap();

    let all = ["aa", "bb", "zz", "cc", "yy", "mm"];
    assert_eq!(s.list_orders("acct", None, 100).await.unwrap(), all);
    assert_eq!(s.list_orders("acct", None, 6).await.unwrap(), all);
    assert_eq!(
        s.list_orders("acct", None, 0).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        s.list_orders("nobody", None, 10).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(s.list_orders("acc", None, 10).await.unwrap(), vec!["pfx"]);

    // Page through with limit 2.
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s.list_orders("acct", after.as_deref(), 2).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().cloned();
        pages.push(page);
    }
    assert_eq!(
        pages,
        vec![vec!["aa", "bb"], vec!["zz", "cc"], vec!["yy", "mm"]]
    );
    // Cursor boundaries: strictly after.
    assert_eq!(
        s.list_orders("acct", Some("aa"), 1).await.unwrap(),
        vec!["bb"]
    );
    assert_eq!(
        s.list_orders("acct", Some("cc"), 10).await.unwrap(),
        vec!["yy", "mm"]
    );
    assert_eq!(
        s.list_orders("acct", Some("yy"), 10).await.unwrap(),
        vec!["mm"]
    );
    assert_eq!(
        s.list_orders("acct", Some("mm"), 10).await.unwrap(),
        Vec::<String>::new()
    );
    // Unknown cursor, or another account's order as cursor: NotFound.
    assert_eq!(
        s.list_orders("acct", Some("nope"), 10).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        s.list_orders("acct", Some("other1"), 10).await,
        Err(StoreError::NotFound)
    );

    // Status changes keep the position; a created_at change moves it.
    let mut bb = s.get_order("bb").await.unwrap().unwrap();
    bb.status = OrderStatus::Ready;
    s.put_order(&bb).await.unwrap();
    assert_eq!(s.list_orders("acct", None, 100).await.unwrap(), all);
    bb.created_at = T0 + Duration::minutes(10);
    s.put_order(&bb).await.unwrap();
    assert_eq!(
        s.list_orders("acct", None, 100).await.unwrap(),
        ["aa", "zz", "cc", "yy", "mm", "bb"]
    );
}

pub(crate) async fn order_transition(s: &dyn Store) {
    let o = order("o1", "acct", T0);
    s.put_order(&o).await.unwrap();

    let mut ready = o.clone();
    ready.status = OrderStatus::Ready;
    // Wrong expectation: not written.
    assert!(!s
        .transition_order(&ready, OrderStatus::Processing)
        .await
        .unwrap());
    assert_eq!(s.get_order("o1").await.unwrap(), Some(o.clone()));
    // Right expectation: written.
    assert!(s
        .transition_order(&ready, OrderStatus::Pending)
        .await
        .unwrap());
    assert_eq!(s.get_order("o1").await.unwrap(), Some(ready.clone()));
    // The same transition again loses.
    assert!(!s
        .transition_order(&ready, OrderStatus::Pending)
        .await
        .unwrap());

    let mut processing = ready.clone();
    processing.status = OrderStatus::Processing;
    assert!(s
        .transition_order(&processing, OrderStatus::Ready)
        .await
        .unwrap());
    let mut valid = processing.clone();
    valid.status = OrderStatus::Valid;
    valid.cert_serial = Some("01ab".into());
    assert!(s
        .transition_order(&valid, OrderStatus::Processing)
        .await
        .unwrap());
    assert_eq!(s.get_order("o1").await.unwrap(), Some(valid));
    assert_eq!(s.list_orders("acct", None, 10).await.unwrap(), vec!["o1"]);

    assert_eq!(
        s.transition_order(&order("missing", "acct", T0), OrderStatus::Pending)
            .await,
        Err(StoreError::NotFound)
    );
    assert_eq!(s.get_order("missing").await.unwrap(), None);
}

pub(crate) async fn order_transition_race(s: &dyn Store) {
    for round in 0..10 {
        let id = format!("race-{round}");
        s.put_order(&order(&id, "acct", T0)).await.unwrap();
        let id_ref = &id;
        let results: Vec<bool> = race(8, |i| async move {
            let mut o = order(id_ref, "acct", T0);
            o.status = OrderStatus::Ready;
            o.profile = Some(format!("winner-{i}"));
            s.transition_order(&o, OrderStatus::Pending).await.unwrap()
        });
        let wins: Vec<usize> = (0..8).filter(|&i| results[i]).collect();
        assert_eq!(wins.len(), 1, "round {round}: {results:?}");
        let stored = s.get_order(&id).await.unwrap().unwrap();
        assert_eq!(stored.profile, Some(format!("winner-{}", wins[0])));
    }
}

// ---------------------------------------------------------- authorizations

pub(crate) async fn authz_put_get(s: &dyn Store) {
    let mut a = authz(
        "az1",
        "acct",
        "example.com",
        false,
        AuthzStatus::Pending,
        T0,
    );
    s.put_authz(&a).await.unwrap();
    assert_eq!(s.get_authz("az1").await.unwrap(), Some(a.clone()));
    assert_eq!(s.get_authz("nope").await.unwrap(), None);
    a.status = AuthzStatus::Valid;
    a.challenges[0].status = ChallengeStatus::Valid;
    a.challenges[0].validated = Some(T0 + Duration::seconds(5));
    s.put_authz(&a).await.unwrap();
    assert_eq!(s.get_authz("az1").await.unwrap(), Some(a));
}

pub(crate) async fn authz_transition(s: &dyn Store) {
    let a = authz(
        "azt",
        "acct",
        "t.example.com",
        false,
        AuthzStatus::Pending,
        T0,
    );
    s.put_authz(&a).await.unwrap();
    // The client deactivates while a validation runs.
    let mut deactivated = a.clone();
    deactivated.status = AuthzStatus::Deactivated;
    assert!(s
        .transition_authz(&deactivated, AuthzStatus::Pending)
        .await
        .unwrap());
    // The validation finishes: its outcome must not revive the authorization.
    let mut valid = a.clone();
    valid.status = AuthzStatus::Valid;
    valid.challenges[0].status = ChallengeStatus::Valid;
    assert!(!s
        .transition_authz(&valid, AuthzStatus::Pending)
        .await
        .unwrap());
    assert_eq!(s.get_authz("azt").await.unwrap(), Some(deactivated));
    // Still found by its index after a successful transition.
    let b = authz(
        "azu",
        "acct",
        "u.example.com",
        false,
        AuthzStatus::Pending,
        T0,
    );
    s.put_authz(&b).await.unwrap();
    let mut b_valid = b.clone();
    b_valid.status = AuthzStatus::Valid;
    b_valid.challenges[0].status = ChallengeStatus::Valid;
    assert!(s
        .transition_authz(&b_valid, AuthzStatus::Pending)
        .await
        .unwrap());
    assert_eq!(
        s.find_reusable_authz(
            "acct",
            &Identifier::dns("u.example.com"),
            T0 - Duration::days(1)
        )
        .await
        .unwrap()
        .map(|a| a.id),
        Some("azu".to_string())
    );
    assert_eq!(
        s.transition_authz(
            &authz("nope", "acct", "x.example", false, AuthzStatus::Valid, T0),
            AuthzStatus::Pending
        )
        .await,
        Err(StoreError::NotFound)
    );
}

pub(crate) async fn authz_reuse(s: &dyn Store) {
    let now = T0;
    let later = now + Duration::days(1);
    let dns = Identifier::dns;

    assert_eq!(
        s.find_reusable_authz("acct", &dns("example.com"), now)
            .await
            .unwrap(),
        None
    );

    // Unusable ones: invalid, deactivated, expired status, past expiry,
    // expiring exactly now, other account, other name.
    for (id, status, expires) in [
        ("inv", AuthzStatus::Invalid, later),
        ("deact", AuthzStatus::Deactivated, later),
        ("exp", AuthzStatus::Expired, later),
        ("rev", AuthzStatus::Revoked, later),
        ("past", AuthzStatus::Valid, now - Duration::seconds(1)),
        ("edge", AuthzStatus::Valid, now),
    ] {
        s.put_authz(&authz(id, "acct", "example.com", false, status, expires))
            .await
            .unwrap();
    }
    s.put_authz(&authz(
        "oth",
        "acct2",
        "example.com",
        false,
        AuthzStatus::Valid,
        later,
    ))
    .await
    .unwrap();
    s.put_authz(&authz(
        "sub",
        "acct",
        "www.example.com",
        false,
        AuthzStatus::Valid,
        later,
    ))
    .await
    .unwrap();
    assert_eq!(
        s.find_reusable_authz("acct", &dns("example.com"), now)
            .await
            .unwrap(),
        None
    );

    // A pending one is reusable...
    let pending = authz(
        "pend",
        "acct",
        "example.com",
        false,
        AuthzStatus::Pending,
        later,
    );
    s.put_authz(&pending).await.unwrap();
    assert_eq!(
        s.find_reusable_authz("acct", &dns("example.com"), now)
            .await
            .unwrap(),
        Some(pending.clone())
    );
    // ...but a valid one wins, even with an earlier expiry.
    let valid = authz(
        "val",
        "acct",
        "example.com",
        false,
        AuthzStatus::Valid,
        now + Duration::hours(1),
    );
    s.put_authz(&valid).await.unwrap();
    assert_eq!(
        s.find_reusable_authz("acct", &dns("example.com"), now)
            .await
            .unwrap(),
        Some(valid.clone())
    );
    // Of two valid ones, the later expiry wins.
    let valid2 = authz(
        "val2",
        "acct",
        "example.com",
        false,
        AuthzStatus::Valid,
        later,
    );
    s.put_authz(&valid2).await.unwrap();
    assert_eq!(
        s.find_reusable_authz("acct", &dns("example.com"), now)
            .await
            .unwrap(),
        Some(valid2.clone())
    );
    // DNS names compare case-insensitively.
    assert_eq!(
        s.find_reusable_authz("acct", &dns("EXAMPLE.com"), now)
            .await
            .unwrap(),
        Some(valid2.clone())
    );
    // Status changes are seen: invalidate both valid ones, pending remains.
    for mut a in [valid, valid2] {
        a.status = AuthzStatus::Invalid;
        s.put_authz(&a).await.unwrap();
    }
    assert_eq!(
        s.find_reusable_authz("acct", &dns("example.com"), now)
            .await
            .unwrap(),
        Some(pending)
    );
    // Time moves on: nothing left.
    assert_eq!(
        s.find_reusable_authz("acct", &dns("example.com"), later)
            .await
            .unwrap(),
        None
    );

    // Wildcards: "*.example.com" only matches wildcard authzs for the base.
    assert_eq!(
        s.find_reusable_authz("acct", &dns("*.example.com"), now)
            .await
            .unwrap(),
        None
    );
    let wild = authz(
        "wild",
        "acct",
        "example.com",
        true,
        AuthzStatus::Valid,
        later,
    );
    s.put_authz(&wild).await.unwrap();
    assert_eq!(
        s.find_reusable_authz("acct", &dns("*.example.com"), now)
            .await
            .unwrap(),
        Some(wild)
    );
    assert_eq!(
        s.find_reusable_authz("acct", &dns("example.com"), later)
            .await
            .unwrap(),
        None
    );

    // IP identifiers.
    let mut ip = authz("ip", "acct", "x", false, AuthzStatus::Valid, later);
    ip.identifier = Identifier::ip("2001:db8::1");
    s.put_authz(&ip).await.unwrap();
    assert_eq!(
        s.find_reusable_authz("acct", &Identifier::ip("2001:db8::1"), now)
            .await
            .unwrap(),
        Some(ip)
    );
    assert_eq!(
        s.find_reusable_authz("acct", &dns("2001:db8::1"), now)
            .await
            .unwrap(),
        None
    );

    // Changing an authz's identifier moves its index entry.
    let mut moved = authz("mv", "acct", "a.test", false, AuthzStatus::Valid, later);
    s.put_authz(&moved).await.unwrap();
    moved.identifier = Identifier::dns("b.test");
    s.put_authz(&moved).await.unwrap();
    assert_eq!(
        s.find_reusable_authz("acct", &dns("a.test"), now)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.find_reusable_authz("acct", &dns("b.test"), now)
            .await
            .unwrap(),
        Some(moved)
    );
}

// ------------------------------------------------------------ certificates

pub(crate) async fn cert_insert_get(s: &dyn Store) {
    let c = cert("0a1b2c", "ica");
    s.insert_certificate(&c).await.unwrap();
    assert_eq!(s.get_certificate("0a1b2c").await.unwrap(), Some(c.clone()));
    assert_eq!(s.get_certificate("0A1B2C").await.unwrap(), Some(c.clone()));
    assert_eq!(s.get_certificate("ffff").await.unwrap(), None);

    let mut dup = cert("0a1b2c", "other");
    dup.der = vec![1, 2, 3];
    assert_eq!(
        s.insert_certificate(&dup).await,
        Err(StoreError::DuplicateSerial)
    );
    let mut dup_upper = dup.clone();
    dup_upper.serial = "0A1B2C".into();
    assert_eq!(
        s.insert_certificate(&dup_upper).await,
        Err(StoreError::DuplicateSerial)
    );
    assert_eq!(s.get_certificate("0a1b2c").await.unwrap(), Some(c));

    // Upper-case serials are stored lower-case.
    s.insert_certificate(&cert("DEADBEEF", "ica"))
        .await
        .unwrap();
    assert_eq!(
        s.get_certificate("deadbeef").await.unwrap().unwrap().serial,
        "deadbeef"
    );

    // Large DER round-trips byte for byte.
    let mut big = cert("b1", "ica");
    big.der = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    s.insert_certificate(&big).await.unwrap();
    assert_eq!(s.get_certificate("b1").await.unwrap(), Some(big));
}

/// The compact status (issuer, revocation) of `serial` matches its record.
pub(crate) async fn assert_status(s: &dyn Store, serial: &str) {
    let full = s.get_certificate(serial).await.unwrap();
    let status = s.certificate_status(serial).await.unwrap();
    assert_eq!(
        status,
        full.as_ref().map(ironseal_storage::CertificateStatus::from),
        "status of {serial}"
    );
}

pub(crate) async fn cert_update(s: &dyn Store) {
    let mut c = cert("01", "ica");
    s.insert_certificate(&c).await.unwrap();
    c.renew_early = true;
    s.update_certificate(&c).await.unwrap();
    assert_eq!(s.get_certificate("01").await.unwrap(), Some(c.clone()));
    assert_eq!(
        s.update_certificate(&cert("02", "ica")).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(s.get_certificate("02").await.unwrap(), None);

    // A stale copy without revocation/replacement does not clear them.
    let stale = c.clone();
    s.revoke_certificate("01", rev(1)).await.unwrap();
    s.mark_replaced("01", "ord-next").await.unwrap();
    let mut stale2 = stale.clone();
    stale2.renew_early = false;
    s.update_certificate(&stale2).await.unwrap();
    let got = s.get_certificate("01").await.unwrap().unwrap();
    assert_eq!(got.revocation, Some(rev(1)));
    assert_eq!(got.replaced_by.as_deref(), Some("ord-next"));
    assert!(!got.renew_early);
    assert_eq!(
        s.revoked_certificates("ica").await.unwrap(),
        vec![("01".into(), rev(1))]
    );

    // An update can set the revocation (and it gets indexed).
    let mut c3 = cert("03", "ica");
    s.insert_certificate(&c3).await.unwrap();
    c3.revocation = Some(rev(4));
    s.update_certificate(&c3).await.unwrap();
    assert_eq!(
        s.revoked_certificates("ica").await.unwrap(),
        vec![("01".into(), rev(1)), ("03".into(), rev(4))]
    );
    for serial in ["01", "02", "03", "0003"] {
        assert_status(s, serial).await;
    }
    assert_eq!(
        s.certificate_status("03")
            .await
            .unwrap()
            .unwrap()
            .revocation,
        Some(rev(4))
    );
}

pub(crate) async fn cert_revoke(s: &dyn Store) {
    for (serial, issuer) in [("0c", "ica"), ("0a", "ica"), ("0b", "icb"), ("0d", "ica")] {
        s.insert_certificate(&cert(serial, issuer)).await.unwrap();
    }
    // Inserted already revoked: indexed too.
    let mut pre = cert("0e", "ica");
    pre.revocation = Some(rev(5));
    s.insert_certificate(&pre).await.unwrap();
    // An issuer id that prefixes another.
    s.insert_certificate(&cert("0f", "ic")).await.unwrap();
    s.revoke_certificate("0f", rev(0)).await.unwrap();

    assert_eq!(
        s.revoked_certificates("ica").await.unwrap(),
        vec![("0e".into(), rev(5))]
    );

    s.revoke_certificate("0C", rev(1)).await.unwrap();
    s.revoke_certificate("0a", rev(4)).await.unwrap();
    s.revoke_certificate("0b", rev(3)).await.unwrap();
    assert_eq!(
        s.revoke_certificate("0c", rev(2)).await,
        Err(StoreError::AlreadyRevoked)
    );
    assert_eq!(
        s.revoke_certificate("0e", rev(2)).await,
        Err(StoreError::AlreadyRevoked)
    );
    assert_eq!(
        s.revoke_certificate("99", rev(1)).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        s.get_certificate("0c").await.unwrap().unwrap().revocation,
        Some(rev(1))
    );
    assert_eq!(
        s.get_certificate("0d").await.unwrap().unwrap().revocation,
        None
    );

    assert_eq!(
        s.revoked_certificates("ica").await.unwrap(),
        vec![
            ("0a".into(), rev(4)),
            ("0c".into(), rev(1)),
            ("0e".into(), rev(5))
        ]
    );
    assert_eq!(
        s.revoked_certificates("icb").await.unwrap(),
        vec![("0b".into(), rev(3))]
    );
    assert_eq!(
        s.revoked_certificates("ic").await.unwrap(),
        vec![("0f".into(), rev(0))]
    );
    assert_eq!(s.revoked_certificates("none").await.unwrap(), vec![]);
    // The status index follows inserts and revocations.
    for serial in ["0a", "0B", "0c", "0d", "0e", "0f", "99"] {
        assert_status(s, serial).await;
    }
    let st = s.certificate_status("0C").await.unwrap().unwrap();
    assert_eq!(
        (st.issuer_id.as_str(), st.revocation),
        ("ica", Some(rev(1)))
    );
    assert_eq!(
        s.certificate_status("0d")
            .await
            .unwrap()
            .unwrap()
            .revocation,
        None
    );
    assert_eq!(s.certificate_status("99").await.unwrap(), None);
}

pub(crate) async fn cert_mark_replaced(s: &dyn Store) {
    s.insert_certificate(&cert("aa", "ica")).await.unwrap();
    s.mark_replaced("AA", "ord-2").await.unwrap();
    assert_eq!(
        s.get_certificate("aa")
            .await
            .unwrap()
            .unwrap()
            .replaced_by
            .as_deref(),
        Some("ord-2")
    );
    assert_eq!(
        s.mark_replaced("aa", "ord-3").await,
        Err(StoreError::AlreadyReplaced)
    );
    assert_eq!(
        s.get_certificate("aa")
            .await
            .unwrap()
            .unwrap()
            .replaced_by
            .as_deref(),
        Some("ord-2")
    );
    assert_eq!(
        s.mark_replaced("bb", "ord-3").await,
        Err(StoreError::NotFound)
    );
}

pub(crate) async fn cert_insert_race(s: &dyn Store) {
    for round in 0..10 {
        let serial = format!("{round:02x}ff");
        let serial_ref = &serial;
        let results: Vec<Result<(), StoreError>> = race(8, |i| async move {
            let mut c = cert(serial_ref, "ica");
            c.der = vec![i as u8; 8];
            s.insert_certificate(&c).await
        });
        let wins: Vec<usize> = (0..8).filter(|&i| results[i].is_ok()).collect();
        assert_eq!(wins.len(), 1, "round {round}: {results:?}");
        assert!(results
            .iter()
            .all(|r| r.is_ok() || r == &Err(StoreError::DuplicateSerial)));
        let stored = s.get_certificate(&serial).await.unwrap().unwrap();
        assert_eq!(stored.der, vec![wins[0] as u8; 8]);
    }
}

pub(crate) async fn cert_revoke_race(s: &dyn Store) {
    s.insert_certificate(&cert("77", "ica")).await.unwrap();
    let results: Vec<Result<(), StoreError>> = race(8, |i| async move {
        // Eight distinct valid reason codes (7 is not one).
        let reason = if i == 7 { 8 } else { i as u8 };
        s.revoke_certificate("77", rev(reason)).await
    });
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        results
            .iter()
            .filter(|r| **r == Err(StoreError::AlreadyRevoked))
            .count(),
        7
    );
    assert_eq!(s.revoked_certificates("ica").await.unwrap().len(), 1);
}

/// The write of one revocation of `serial` (issuer `ica`) with `reason`.
pub(crate) fn revocation(serial: &str, reason: u8, block_key: Option<&str>) -> RevocationWrite {
    RevocationWrite {
        serial: serial.into(),
        revocation: rev(reason),
        block_key: block_key.map(str::to_owned),
        issuer_id: "ica".into(),
        audit: event(1),
    }
}

pub(crate) async fn revocation_is_atomic(s: &dyn Store) {
    let key = "ef".repeat(32);
    let mut c = cert("0a", "ica");
    c.public_key_sha256.clone_from(&key);
    s.insert_certificate(&c).await.unwrap();
    let (gen0, _) = s.crl_head("ica", CrlPart::Full).await.unwrap();
    let head0 = s.audit_head().await.unwrap().map(|h| h.seq);

    let entry = s
        .record_revocation(&revocation("0A", 1, Some(&key)))
        .await
        .unwrap();
    let stored = s.get_certificate("0a").await.unwrap().unwrap();
    assert_eq!(stored.revocation, Some(rev(1)));
    assert_eq!(
        s.certificate_status("0a")
            .await
            .unwrap()
            .unwrap()
            .revocation,
        Some(rev(1))
    );
    assert_eq!(
        s.revoked_certificates("ica").await.unwrap(),
        vec![("0a".to_string(), rev(1))]
    );
    assert!(s.is_key_blocked(&key).await.unwrap());
    let (gen1, _) = s.crl_head("ica", CrlPart::Full).await.unwrap();
    assert_eq!(gen1, gen0 + 1);
    assert_eq!(
        s.audit_head().await.unwrap().map(|h| h.seq),
        Some(head0.unwrap_or(0) + 1)
    );
    assert_eq!(entry.seq, head0.unwrap_or(0) + 1);

    // Revoked already: nothing more is written (no audit entry, no bump).
    assert_eq!(
        s.record_revocation(&revocation("0a", 4, None)).await,
        Err(StoreError::AlreadyRevoked)
    );
    // Unknown serial: NotFound, and the key it names is not blocked.
    let other = "12".repeat(32);
    assert_eq!(
        s.record_revocation(&revocation("0b", 1, Some(&other)))
            .await,
        Err(StoreError::NotFound)
    );
    assert!(!s.is_key_blocked(&other).await.unwrap());
    assert_eq!(s.crl_head("ica", CrlPart::Full).await.unwrap().0, gen1);
    assert_eq!(
        s.audit_head().await.unwrap().map(|h| h.seq),
        Some(entry.seq)
    );
    assert_eq!(
        s.get_certificate("0a").await.unwrap().unwrap().revocation,
        Some(rev(1))
    );
}

pub(crate) async fn revocation_race(s: &dyn Store) {
    s.insert_certificate(&cert("78", "ica")).await.unwrap();
    let results: Vec<Result<AuditEntry, StoreError>> = race(8, |i| async move {
        let reason = if i == 7 { 8 } else { i as u8 };
        s.record_revocation(&revocation("78", reason, None)).await
    });
    let won: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    assert_eq!(
        results
            .iter()
            .filter(|r| matches!(r, Err(StoreError::AlreadyRevoked)))
            .count(),
        7
    );
    // One audit entry and one CRL generation step for the one revocation.
    assert_eq!(s.audit_head().await.unwrap().map(|h| h.seq), Some(1));
    assert_eq!(s.crl_head("ica", CrlPart::Full).await.unwrap().0, 1);
}

pub(crate) async fn ca_change_is_atomic(s: &dyn Store) {
    let root = ca("root", T0);
    let mut a = ca("a", T0 + Duration::hours(1));
    a.parent_id = Some("root".into());
    let change = |records, pin: Option<&str>| CaWrite {
        records,
        issuing_pin: pin.map(str::to_owned),
        audit: event(1),
    };
    // Create two CAs and pin one, in one write.
    let e1 = s
        .record_ca_change(&change(
            vec![CaUpdate::create(root.clone()), CaUpdate::create(a.clone())],
            Some("a"),
        ))
        .await
        .unwrap();
    assert_eq!(s.list_cas().await.unwrap(), vec![root.clone(), a.clone()]);
    let pin = s.get_setting(settings::ISSUING_CA).await.unwrap().unwrap();
    assert_eq!(pin.value, b"a".to_vec());

    // Creating an id that exists: Conflict, and nothing of the write lands
    // (not the other new record, not the pin, not the audit entry).
    let b = ca("b", T0 + Duration::hours(2));
    assert!(matches!(
        s.record_ca_change(&change(
            vec![CaUpdate::create(b.clone()), CaUpdate::create(root.clone())],
            Some("b"),
        ))
        .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.get_ca("b").await.unwrap(), None);
    assert_eq!(
        s.get_setting(settings::ISSUING_CA).await.unwrap(),
        Some(pin.clone())
    );
    assert_eq!(s.audit_head().await.unwrap().map(|h| h.seq), Some(e1.seq));

    // Replacing what was read: applied, the pin moves (new version).
    let mut retiring = a.clone();
    retiring.status = CaStatus::Retiring;
    let e2 = s
        .record_ca_change(&change(
            vec![
                CaUpdate::replace(&a, retiring.clone()),
                CaUpdate::create(b.clone()),
            ],
            Some("b"),
        ))
        .await
        .unwrap();
    assert_eq!(e2.seq, e1.seq + 1);
    assert_eq!(s.get_ca("a").await.unwrap(), Some(retiring.clone()));
    let pin2 = s.get_setting(settings::ISSUING_CA).await.unwrap().unwrap();
    assert_eq!(pin2.value, b"b".to_vec());
    assert!(pin2.version > pin.version);

    // Replacing a stale read (`a` as it was before): Conflict, nothing lands.
    let mut stale = a.clone();
    stale.status = CaStatus::Retired;
    assert!(matches!(
        s.record_ca_change(&change(vec![CaUpdate::replace(&a, stale)], None))
            .await,
        Err(StoreError::Conflict(_))
    ));
    // Replacing one that does not exist: Conflict.
    let ghost = ca("ghost", T0);
    assert!(matches!(
        s.record_ca_change(&change(
            vec![CaUpdate::replace(&ghost, ghost.clone())],
            None
        ))
        .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.get_ca("a").await.unwrap(), Some(retiring));
    assert_eq!(s.get_ca("ghost").await.unwrap(), None);
    assert_eq!(s.audit_head().await.unwrap().map(|h| h.seq), Some(e2.seq));
    // An audit-only change (no records, no pin) is fine.
    s.record_ca_change(&change(Vec::new(), None)).await.unwrap();
}

pub(crate) async fn ca_change_race(s: &dyn Store) {
    // Eight requests activate eight different CAs from the same read of
    // the active one: exactly one wins; the pin names the winner. The
    // shared record's id sorts between the others' ("a…" < "m…" < "z…"),
    // so the racers' rows sort on both sides of it; ten rounds.
    let mut seq = 0;
    for round in 0..10 {
        let name = |i: usize| {
            if i.is_multiple_of(2) {
                format!("a{round}-{i}")
            } else {
                format!("z{round}-{i}")
            }
        };
        let mut active = ca(&format!("m{round}"), T0);
        active.parent_id = Some("root".into());
        let mut creates = vec![CaUpdate::create(active.clone())];
        if round == 0 {
            creates.push(CaUpdate::create(ca("root", T0)));
        }
        for i in 0..8 {
            let mut n = ca(&name(i), T0 + Duration::hours(1));
            n.parent_id = Some("root".into());
            n.status = CaStatus::Retiring;
            creates.push(CaUpdate::create(n));
        }
        s.record_ca_change(&CaWrite {
            records: creates,
            issuing_pin: Some(active.id.clone()),
            audit: event(1),
        })
        .await
        .unwrap();
        let (active, name) = (&active, &name);
        let results: Vec<Result<AuditEntry, StoreError>> = race(8, |i| async move {
            let mut retiring = active.clone();
            retiring.status = CaStatus::Retiring;
            let id = name(i);
            let mut next = s.get_ca(&id).await.unwrap().unwrap();
            let before = next.clone();
            next.status = CaStatus::Active;
            s.record_ca_change(&CaWrite {
                records: vec![
                    CaUpdate::replace(active, retiring),
                    CaUpdate::replace(&before, next),
                ],
                issuing_pin: Some(id),
                audit: event(2),
            })
            .await
        });
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "round {round}: {results:?}"
        );
        assert!(
            results
                .iter()
                .all(|r| r.is_ok() || matches!(r, Err(StoreError::Conflict(_)))),
            "round {round}: {results:?}"
        );
        let pin = s.get_setting(settings::ISSUING_CA).await.unwrap().unwrap();
        let winner = String::from_utf8(pin.value).unwrap();
        let active_now: Vec<_> = s
            .list_cas()
            .await
            .unwrap()
            .into_iter()
            .filter(|c| c.status == CaStatus::Active && c.parent_id.is_some())
            .map(|c| c.id)
            .collect();
        assert_eq!(
            active_now,
            vec![winner],
            "round {round}: only the pinned CA is active"
        );
        seq += 2;
        assert_eq!(s.audit_head().await.unwrap().map(|h| h.seq), Some(seq));
        // The next round's shared CA becomes the active one; retire this
        // round's winner so that only one intermediate is ever active.
        let won = s.get_ca(&active_now[0]).await.unwrap().unwrap();
        let mut retired = won.clone();
        retired.status = CaStatus::Retiring;
        s.record_ca_change(&CaWrite {
            records: vec![CaUpdate::replace(&won, retired)],
            issuing_pin: None,
            audit: event(3),
        })
        .await
        .unwrap();
        seq += 1;
    }
}

// ------------------------------------------------------ keys, CAs, CRLs

pub(crate) async fn blocked_keys(s: &dyn Store) {
    let k = "ab".repeat(32);
    assert!(!s.is_key_blocked(&k).await.unwrap());
    s.block_key(&k).await.unwrap();
    s.block_key(&k).await.unwrap();
    assert!(s.is_key_blocked(&k).await.unwrap());
    assert!(s.is_key_blocked(&k.to_ascii_uppercase()).await.unwrap());
    assert!(!s.is_key_blocked(&"cd".repeat(32)).await.unwrap());
}

pub(crate) async fn cas(s: &dyn Store) {
    assert_eq!(s.list_cas().await.unwrap(), vec![]);
    let root = ca("root", T0);
    let mut inter = ca("inter", T0 + Duration::hours(1));
    inter.parent_id = Some("root".into());
    inter.algorithm = Some(ironseal_storage::KeyAlgorithm::Rsa3072);
    let b = ca("b-later", T0 + Duration::hours(2));
    s.put_ca(&b).await.unwrap();
    s.put_ca(&inter).await.unwrap();
    s.put_ca(&root).await.unwrap();
    assert_eq!(s.get_ca("inter").await.unwrap(), Some(inter.clone()));
    assert_eq!(s.get_ca("nope").await.unwrap(), None);
    assert_eq!(
        s.list_cas().await.unwrap(),
        vec![root.clone(), inter.clone(), b.clone()]
    );
    inter.status = CaStatus::Retiring;
    s.put_ca(&inter).await.unwrap();
    assert_eq!(
        s.get_ca("inter").await.unwrap().unwrap().status,
        CaStatus::Retiring
    );
    assert_eq!(s.list_cas().await.unwrap().len(), 3);
    // A pending CA keeps its request and no certificate; an external one a
    // certificate and no key. Both round-trip unchanged.
    let mut pending = ca("pending", T0 + Duration::hours(3));
    pending.status = CaStatus::Pending;
    pending.cert_der = Vec::new();
    pending.csr_der = vec![0x30, 0x00];
    let mut external = ca("external", T0 + Duration::hours(4));
    external.status = CaStatus::External;
    external.sealed_key = Vec::new();
    external.algorithm = None;
    s.put_ca(&pending).await.unwrap();
    s.put_ca(&external).await.unwrap();
    assert_eq!(s.get_ca("pending").await.unwrap(), Some(pending.clone()));
    assert_eq!(s.get_ca("external").await.unwrap(), Some(external.clone()));
    pending.status = CaStatus::Active;
    pending.cert_der = root.cert_der.clone();
    pending.csr_der = Vec::new();
    s.put_ca(&pending).await.unwrap();
    assert_eq!(s.get_ca("pending").await.unwrap(), Some(pending));
    assert_eq!(s.list_cas().await.unwrap().len(), 5);
    // Debug never shows the sealed key bytes.
    assert!(!format!("{root:?}").contains("255"));
}

pub(crate) async fn crl_numbers(s: &dyn Store) {
    assert_eq!(s.next_crl_number("a").await.unwrap(), 1);
    assert_eq!(s.next_crl_number("a").await.unwrap(), 2);
    assert_eq!(s.next_crl_number("b").await.unwrap(), 1);
    assert_eq!(s.next_crl_number("a").await.unwrap(), 3);

    // Concurrent callers never see the same number.
    let mut all: Vec<u64> = race(4, |_| async move {
        let mut got = Vec::new();
        for _ in 0..50 {
            got.push(s.next_crl_number("c").await.unwrap());
        }
        got
    })
    .concat();
    all.sort_unstable();
    assert_eq!(all, (1..=200).collect::<Vec<u64>>());
}

pub(crate) async fn flush_and_object_safety(s: &dyn Store) {
    s.create_account(&account("a", "t")).await.unwrap();
    s.flush().unwrap();
    s.flush().unwrap();
    assert!(s.get_account("a").await.unwrap().is_some());
    let id = new_id([0xfb; 16]);
    assert_eq!(id.len(), 22);
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert_ne!(new_id([0; 16]), new_id([1; 16]));
}

pub(crate) async fn concurrent_flush(s: &dyn Store) {
    race(4, |t| async move {
        for i in 0..25u32 {
            let serial = format!("{t:02x}{i:06x}");
            s.insert_certificate(&cert(&serial, "ica")).await.unwrap();
            s.flush().unwrap();
            assert!(s.get_certificate(&serial).await.unwrap().is_some());
        }
    });
    s.flush().unwrap();
}

/// Writes one of everything; `verify_populated` checks it back. Used by the
/// battery (same instance) and by the sled reopen test (after a reopen).
pub(crate) async fn populate(s: &dyn Store) {
    s.create_account(&account("pa", "pth")).await.unwrap();
    s.change_account_key(&account("pa", "pth2"), "pth")
        .await
        .unwrap();
    for i in 0..5 {
        s.put_order(&order(
            &format!("po{i}"),
            "pa",
            T0 + Duration::minutes(5 - i),
        ))
        .await
        .unwrap();
    }
    let mut o = order("po0", "pa", T0 + Duration::minutes(5));
    o.status = OrderStatus::Ready;
    assert!(s.transition_order(&o, OrderStatus::Pending).await.unwrap());
    s.put_authz(&authz(
        "paz",
        "pa",
        "p.test",
        false,
        AuthzStatus::Valid,
        T0 + Duration::days(30),
    ))
    .await
    .unwrap();
    s.insert_certificate(&cert("c0ffee", "pica")).await.unwrap();
    s.revoke_certificate("c0ffee", rev(1)).await.unwrap();
    s.insert_certificate(&cert("c0ffef", "pica")).await.unwrap();
    s.mark_replaced("c0ffef", "po1").await.unwrap();
    s.block_key("beef").await.unwrap();
    s.put_ca(&ca("pica", T0)).await.unwrap();
    assert_eq!(s.next_crl_number("pica").await.unwrap(), 1);
    assert_eq!(s.next_crl_number("pica").await.unwrap(), 2);
}

pub(crate) async fn verify_populated(s: &dyn Store) {
    assert_eq!(s.account_by_thumbprint("pth").await.unwrap(), None);
    assert_eq!(
        s.account_by_thumbprint("pth2").await.unwrap().unwrap().id,
        "pa"
    );
    assert_eq!(
        s.list_orders("pa", None, 10).await.unwrap(),
        vec!["po4", "po3", "po2", "po1", "po0"]
    );
    assert_eq!(
        s.list_orders("pa", Some("po2"), 1).await.unwrap(),
        vec!["po1"]
    );
    assert_eq!(
        s.get_order("po0").await.unwrap().unwrap().status,
        OrderStatus::Ready
    );
    assert_eq!(
        s.find_reusable_authz("pa", &Identifier::dns("p.test"), T0)
            .await
            .unwrap()
            .unwrap()
            .id,
        "paz"
    );
    assert_eq!(
        s.revoked_certificates("pica").await.unwrap(),
        vec![("c0ffee".into(), rev(1))]
    );
    assert_eq!(
        s.revoke_certificate("c0ffee", rev(2)).await,
        Err(StoreError::AlreadyRevoked)
    );
    assert_eq!(
        s.mark_replaced("c0ffef", "x").await,
        Err(StoreError::AlreadyReplaced)
    );
    assert_eq!(
        s.insert_certificate(&cert("c0ffee", "pica")).await,
        Err(StoreError::DuplicateSerial)
    );
    assert!(s.is_key_blocked("beef").await.unwrap());
    assert_eq!(s.get_ca("pica").await.unwrap(), Some(ca("pica", T0)));
    assert_eq!(s.next_crl_number("pica").await.unwrap(), 3);
}

// ---------------------------------------------------------------- API keys

pub(crate) fn api_key(id: &str, role: ApiRole, created_at: OffsetDateTime) -> ApiKeyRecord {
    ApiKeyRecord {
        id: id.into(),
        name: format!("key {id}"),
        role,
        secret_sha256: "cd".repeat(32),
        created_at,
        created_by: "system".into(),
        disabled_at: None,
        tenant_id: None,
    }
}

pub(crate) async fn api_keys(s: &dyn Store) {
    assert_eq!(s.list_api_keys().await.unwrap(), vec![]);
    assert_eq!(s.get_api_key("k1").await.unwrap(), None);
    let k2 = api_key("k2", ApiRole::Operator, T0 + Duration::hours(1));
    let k1 = api_key("k1", ApiRole::Admin, T0 + Duration::hours(2));
    let k0 = api_key("k0", ApiRole::Auditor, T0 + Duration::hours(2));
    s.create_api_key(&k2).await.unwrap();
    s.create_api_key(&k1).await.unwrap();
    s.create_api_key(&k0).await.unwrap();
    assert_eq!(s.get_api_key("k1").await.unwrap(), Some(k1.clone()));
    // Same id again: Conflict, the stored key unchanged.
    let mut other = k1.clone();
    other.role = ApiRole::Auditor;
    assert!(matches!(
        s.create_api_key(&other).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.get_api_key("k1").await.unwrap(), Some(k1.clone()));
    // Ordered by created_at, then id.
    let ids: Vec<String> = s
        .list_api_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(ids, ["k2", "k0", "k1"]);
    // Disable: one-way, kept in the list.
    let at = T0 + Duration::days(1);
    let d = s.disable_api_key("k2", at).await.unwrap();
    assert_eq!(d.disabled_at, Some(at));
    assert_eq!(
        s.get_api_key("k2").await.unwrap().unwrap().disabled_at,
        Some(at)
    );
    assert!(matches!(
        s.disable_api_key("k2", at + Duration::days(1)).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        s.get_api_key("k2").await.unwrap().unwrap().disabled_at,
        Some(at)
    );
    assert_eq!(
        s.disable_api_key("nope", at).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(s.list_api_keys().await.unwrap().len(), 3);
    // k1 is the only enabled admin key: it stays.
    assert_eq!(
        s.disable_api_key("k1", at).await,
        Err(StoreError::LastAdminKey)
    );
    assert_eq!(
        s.get_api_key("k1").await.unwrap().unwrap().disabled_at,
        None
    );
    // With a second admin key, one of them may go; then not the other.
    s.create_api_key(&api_key("k3", ApiRole::Admin, T0))
        .await
        .unwrap();
    s.disable_api_key("k1", at).await.unwrap();
    assert_eq!(
        s.disable_api_key("k3", at).await,
        Err(StoreError::LastAdminKey)
    );
    // A key created disabled does not count.
    let mut off = api_key("k4", ApiRole::Admin, T0);
    off.disabled_at = Some(at);
    s.create_api_key(&off).await.unwrap();
    assert_eq!(
        s.disable_api_key("k3", at).await,
        Err(StoreError::LastAdminKey)
    );
}

/// Issue 10 item 13: with n enabled admin keys, n concurrent disables
/// succeed n - 1 times: the last enabled admin key always stays.
pub(crate) async fn last_admin_key_race(s: &dyn Store) {
    let enabled = || async {
        s.list_api_keys()
            .await
            .unwrap()
            .into_iter()
            .filter(|k| k.role == ApiRole::Admin && k.disabled_at.is_none())
            .map(|k| k.id)
            .collect::<Vec<String>>()
    };
    for round in 0..20 {
        for id in [format!("a{round}"), format!("b{round}")] {
            s.create_api_key(&api_key(&id, ApiRole::Admin, T0))
                .await
                .unwrap();
        }
        let ids = enabled().await;
        assert!(ids.len() >= 2, "round {round}: {ids:?}");
        let ids_ref = &ids;
        let wins = count(race(ids.len(), |t| async move {
            s.disable_api_key(&ids_ref[t], T0).await.is_ok()
        }));
        assert_eq!(wins, ids.len() - 1, "round {round}");
        assert_eq!(enabled().await.len(), 1, "round {round}");
    }
}

pub(crate) async fn api_key_create_race(s: &dyn Store) {
    let wins = count(race(8, |i| async move {
        let mut k = api_key("same", ApiRole::Operator, T0);
        k.name = format!("racer {i}");
        s.create_api_key(&k).await.is_ok()
    }));
    assert_eq!(wins, 1);
}

// ---------------------------------------------------------------- audit log

pub(crate) fn event(n: usize) -> AuditEvent {
    AuditEvent {
        at: T0 + Duration::seconds(n as i64),
        actor: format!("key:k{}", n % 3),
        action: "POST /admin/v1/certificates/{serial}/revoke".into(),
        summary: format!("{{\"reason\":\"keyCompromise\",\"n\":{n}}}"),
        outcome: if n.is_multiple_of(2) { Some(200) } else { None },
    }
}

pub(crate) async fn audit_append_read(s: &dyn Store) {
    assert_eq!(s.audit_head().await.unwrap(), None);
    assert_eq!(s.audit_entries(0, 10).await.unwrap(), vec![]);
    let mut appended = Vec::new();
    for n in 0..25 {
        let e = s.append_audit(&event(n)).await.unwrap();
        assert_eq!(e.seq, n as u64 + 1);
        assert_eq!(e.actor, event(n).actor);
        assert_eq!(e.outcome, event(n).outcome);
        appended.push(e);
    }
    assert_eq!(appended[0].prev_hash, audit::GENESIS_HASH);
    for w in appended.windows(2) {
        assert_eq!(w[1].prev_hash, w[0].entry_hash);
    }
    let head = s.audit_head().await.unwrap().unwrap();
    assert_eq!(head, appended[24].head());
    // Range reads: seq > after, ascending, at most limit.
    assert_eq!(s.audit_entries(0, 100).await.unwrap(), appended);
    assert_eq!(
        s.audit_entries(10, 5).await.unwrap(),
        appended[10..15].to_vec()
    );
    assert_eq!(
        s.audit_entries(24, 5).await.unwrap(),
        appended[24..].to_vec()
    );
    assert_eq!(s.audit_entries(25, 5).await.unwrap(), vec![]);
    assert_eq!(s.audit_entries(0, 0).await.unwrap(), vec![]);
    assert_eq!(s.audit_entries(u64::MAX, 3).await.unwrap(), vec![]);
    // The whole log and any window verify.
    verify_chain(&appended, None, Some(&head)).unwrap();
    let window = s.audit_entries(5, 7).await.unwrap();
    verify_chain(&window, Some(&appended[4].head()), None).unwrap();
}

pub(crate) async fn audit_append_race(s: &dyn Store) {
    race(8, |t| async move {
        for n in 0..25 {
            s.append_audit(&event(t * 100 + n)).await.unwrap();
        }
    });
    let all = s.audit_entries(0, 1000).await.unwrap();
    assert_eq!(all.len(), 200);
    let head = s.audit_head().await.unwrap().unwrap();
    assert_eq!(head.seq, 200);
    verify_chain(&all, None, Some(&head)).unwrap();
}

/// The MAC key the battery's keyed tests use.
pub(crate) fn mac_key() -> AuditMacKey {
    AuditMacKey::from_bytes(&[0x42; 32]).unwrap()
}

/// Verifies the whole log with `key`; returns the first keyed seq.
pub(crate) async fn verify_keyed(
    s: &dyn Store,
    key: &AuditMacKey,
    keyed_from: Option<u64>,
) -> Result<Option<u64>, ChainError> {
    let all = s.audit_entries(0, 10_000).await.unwrap();
    let mut v = ChainVerifier::new(Some(key), keyed_from, None);
    v.feed(&all)?;
    if let Some(head) = s.audit_head().await.unwrap() {
        v.finish(&head)?;
    }
    Ok(v.keyed_from())
}

/// Hardening (issue 10 item 14): once the store has the audit MAC key,
/// every entry it appends (plain appends and issuances) carries a MAC of
/// its hash; entries from before stay unkeyed and keep their hashes.
pub(crate) async fn audit_keyed_append(s: &dyn Store) {
    for n in 0..3 {
        s.append_audit(&event(n)).await.unwrap();
    }
    let key = mac_key();
    s.set_audit_mac_key(key.clone());
    for n in 3..6 {
        let e = s.append_audit(&event(n)).await.unwrap();
        assert_eq!(
            e.mac.as_deref(),
            Some(key.mac(&e.entry_hash).unwrap().as_str())
        );
    }
    let e = s
        .record_issuance(&issuance("0b", None, None))
        .await
        .unwrap();
    assert_eq!(e.seq, 7);
    assert!(key.check(&e.entry_hash, e.mac.as_deref().unwrap()));
    let all = s.audit_entries(0, 100).await.unwrap();
    assert!(all[..3].iter().all(|e| e.mac.is_none()));
    assert!(all[3..].iter().all(|e| e.mac.is_some()));
    assert_eq!(verify_keyed(s, &key, Some(4)).await, Ok(Some(4)));
    // The unkeyed check still follows hashes and links.
    verify_chain(&all, None, s.audit_head().await.unwrap().as_ref()).unwrap();
    // A different key does not verify the keyed part.
    let other = AuditMacKey::from_bytes(&[7; 32]).unwrap();
    assert_eq!(
        verify_keyed(s, &other, Some(4)).await,
        Err(ChainError::Mac { seq: 4 })
    );
}

/// What a database writer without the audit key can do: edit entry `seq`
/// and recompute the hash and link of it and of every later entry (their
/// MACs are kept: without the key they cannot be recomputed).
pub(crate) fn rewrite_from(mut all: Vec<AuditEntry>, seq: u64) -> Vec<AuditEntry> {
    let mut prev: Option<String> = None;
    for e in &mut all {
        if e.seq == seq {
            e.summary = "nothing to see".into();
        }
        if e.seq >= seq {
            if let Some(p) = &prev {
                e.prev_hash.clone_from(p);
            }
            e.entry_hash = e.compute_hash().unwrap();
        }
        prev = Some(e.entry_hash.clone());
    }
    all
}

fn audit_key_record(name: &str, byte: u8) -> AuditKeyRecord {
    AuditKeyRecord {
        name: name.into(),
        sealed_key: vec![byte; 61],
        public_key: vec![byte; 3],
        keyed_from: u64::from(byte),
        created_at: T0,
    }
}

/// Audit key records are created once and never replaced; of concurrent
/// creators exactly one wins and every one then reads the winner.
pub(crate) async fn audit_keys_created_once(s: &dyn Store) {
    assert_eq!(s.get_audit_key(audit::AUDIT_MAC_KEY).await.unwrap(), None);
    let first = audit_key_record(audit::AUDIT_MAC_KEY, 1);
    assert!(s.create_audit_key(&first).await.unwrap());
    assert!(!s
        .create_audit_key(&audit_key_record(audit::AUDIT_MAC_KEY, 2))
        .await
        .unwrap());
    assert_eq!(
        s.get_audit_key(audit::AUDIT_MAC_KEY).await.unwrap(),
        Some(first)
    );
    assert_eq!(
        s.get_audit_key(audit::AUDIT_CHECKPOINT_KEY).await.unwrap(),
        None
    );
    let wins = count(race(8, |t| async move {
        let record = audit_key_record(audit::AUDIT_CHECKPOINT_KEY, t as u8 + 10);
        s.create_audit_key(&record).await.unwrap()
    }));
    assert_eq!(wins, 1);
    let stored = s
        .get_audit_key(audit::AUDIT_CHECKPOINT_KEY)
        .await
        .unwrap()
        .unwrap();
    assert!((10..18).contains(&stored.keyed_from));
    assert_eq!(stored.sealed_key, vec![stored.keyed_from as u8; 61]);
}

pub(crate) fn issuance(
    serial: &str,
    order: Option<OrderRecord>,
    replaces: Option<&str>,
) -> IssuanceWrite {
    IssuanceWrite {
        certificate: cert(serial, "ca1"),
        order,
        replaces: replaces.map(str::to_string),
        audit: event(7),
        scep_transaction: None,
    }
}

/// An issuance that settles a SCEP transaction writes the settled record
/// with the certificate; if the claim changed meanwhile, neither is
/// written (nor the audit entry).
pub(crate) async fn issuance_settles_scep_transaction(s: &dyn Store) {
    let claim = scep_tx("tx", "r1", ScepTransactionState::InFlight);
    assert!(s.put_scep_transaction(&claim, None).await.unwrap());
    let settled = ScepTransactionRecord {
        state: ScepTransactionState::Issued {
            serial: "0b".into(),
        },
        updated_at: T0 + Duration::seconds(1),
        ..claim.clone()
    };
    let mut write = issuance("0b", None, None);
    write.scep_transaction = Some(ScepSettle {
        expected: claim.clone(),
        settled: settled.clone(),
    });
    s.record_issuance(&write).await.unwrap();
    assert_eq!(
        s.get_scep_transaction("tx").await.unwrap(),
        Some(settled.clone())
    );
    assert!(s.get_certificate("0b").await.unwrap().is_some());
    let head = s.audit_head().await.unwrap().map(|h| h.seq);

    // The claim is no longer what is stored: Conflict, nothing written.
    let mut again = issuance("0c", None, None);
    again.scep_transaction = Some(ScepSettle {
        expected: claim.clone(),
        settled: ScepTransactionRecord {
            state: ScepTransactionState::Issued {
                serial: "0c".into(),
            },
            ..claim.clone()
        },
    });
    assert!(matches!(
        s.record_issuance(&again).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(s.get_certificate("0c").await.unwrap().is_none());
    assert_eq!(s.get_scep_transaction("tx").await.unwrap(), Some(settled));
    assert_eq!(s.audit_head().await.unwrap().map(|h| h.seq), head);

    // A transaction that does not exist: Conflict as well.
    let mut missing = issuance("0d", None, None);
    missing.scep_transaction = Some(ScepSettle {
        expected: scep_tx("nope", "r", ScepTransactionState::InFlight),
        settled: scep_tx("nope", "r", ScepTransactionState::InFlight),
    });
    assert!(matches!(
        s.record_issuance(&missing).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(s.get_certificate("0d").await.unwrap().is_none());
}

pub(crate) async fn issuance_is_atomic(s: &dyn Store) {
    // Without an order: certificate and audit entry together.
    let e = s
        .record_issuance(&issuance("0a", None, None))
        .await
        .unwrap();
    assert_eq!(e.seq, 1);
    assert!(s.get_certificate("0a").await.unwrap().is_some());
    assert_eq!(
        s.certificate_status("0a").await.unwrap().unwrap().issuer_id,
        "ca1"
    );
    // A duplicate serial writes nothing, not even the audit entry.
    assert_eq!(
        s.record_issuance(&issuance("0A", None, None)).await,
        Err(StoreError::DuplicateSerial)
    );
    assert_eq!(s.audit_head().await.unwrap().unwrap().seq, 1);

    // With an order: it must still be processing.
    let mut o = order("o1", "acct", T0);
    o.status = OrderStatus::Ready;
    s.put_order(&o).await.unwrap();
    let mut done = o.clone();
    done.status = OrderStatus::Valid;
    done.cert_serial = Some("0b".into());
    assert!(matches!(
        s.record_issuance(&issuance("0b", Some(done.clone()), Some("0a")))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.get_certificate("0b").await.unwrap(), None);
    assert_eq!(
        s.get_certificate("0a").await.unwrap().unwrap().replaced_by,
        None
    );
    assert_eq!(s.audit_head().await.unwrap().unwrap().seq, 1);

    o.status = OrderStatus::Processing;
    s.put_order(&o).await.unwrap();
    let e = s
        .record_issuance(&issuance("0b", Some(done.clone()), Some("0a")))
        .await
        .unwrap();
    assert_eq!(e.seq, 2);
    assert_eq!(s.get_order("o1").await.unwrap().unwrap(), done);
    assert_eq!(
        s.get_certificate("0a")
            .await
            .unwrap()
            .unwrap()
            .replaced_by
            .as_deref(),
        Some("o1")
    );
    assert_eq!(
        s.list_orders("acct", None, 10).await.unwrap(),
        vec!["o1".to_string()]
    );
    // The order left processing: a second issuance for it is refused.
    assert!(matches!(
        s.record_issuance(&issuance("0c", Some(done), None)).await,
        Err(StoreError::Conflict(_))
    ));
    let all = s.audit_entries(0, 10).await.unwrap();
    verify_chain(&all, None, s.audit_head().await.unwrap().as_ref()).unwrap();
}

pub(crate) async fn issuance_race(s: &dyn Store) {
    let mut o = order("race", "acct", T0);
    o.status = OrderStatus::Processing;
    s.put_order(&o).await.unwrap();
    let o = &o;
    let wins = count(race(8, |t| async move {
        let mut done = o.clone();
        done.status = OrderStatus::Valid;
        done.cert_serial = Some(format!("{t:02x}"));
        s.record_issuance(&issuance(&format!("{t:02x}"), Some(done), None))
            .await
            .is_ok()
    }));
    assert_eq!(wins, 1, "exactly one issuance wins an order");
    assert_eq!(s.audit_head().await.unwrap().unwrap().seq, 1);
}

pub(crate) fn tenant(id: &str) -> TenantRecord {
    TenantRecord {
        id: id.into(),
        name: format!("Tenant {id}"),
        names: TenantNames {
            dns: vec!["*.a.example".into()],
            ip: vec!["10.1.0.0/16".into()],
            uri: vec![],
            email: vec![],
        },
        profiles: vec!["default".into()],
        created_at: T0,
        created_by: "key:k1".into(),
        disabled_at: None,
        caa_disabled: false,
    }
}

pub(crate) fn eab(kid: &str, tenant_id: &str) -> EabKeyRecord {
    EabKeyRecord {
        kid: kid.into(),
        tenant_id: tenant_id.into(),
        sealed_hmac_key: vec![1, 2, 3],
        created_at: T0,
        created_by: "key:k1".into(),
        bound_account: None,
        disabled_at: None,
    }
}

pub(crate) async fn tenants_and_eab(s: &dyn Store) {
    s.create_tenant(&tenant("b")).await.unwrap();
    s.create_tenant(&tenant("a")).await.unwrap();
    assert!(matches!(
        s.create_tenant(&tenant("a")).await,
        Err(StoreError::Conflict(_))
    ));
    let ids: Vec<String> = s
        .list_tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, vec!["a", "b"]);
    assert_eq!(s.get_tenant("a").await.unwrap().unwrap(), tenant("a"));
    let off = s
        .disable_tenant("b", T0 + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(off.disabled_at, Some(T0 + Duration::hours(1)));
    assert!(matches!(
        s.disable_tenant("b", T0).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.disable_tenant("zz", T0).await, Err(StoreError::NotFound));

    s.create_eab_key(&eab("k2", "b")).await.unwrap();
    s.create_eab_key(&eab("k1", "a")).await.unwrap();
    s.create_eab_key(&eab("k3", "a")).await.unwrap();
    assert!(matches!(
        s.create_eab_key(&eab("k1", "b")).await,
        Err(StoreError::Conflict(_))
    ));
    let of_a: Vec<String> = s
        .list_eab_keys(Some("a"))
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(of_a, vec!["k1", "k3"]);
    assert_eq!(s.list_eab_keys(None).await.unwrap().len(), 3);

    // Binding: one account per key, atomically with the account.
    let mut acct = account("acc1", "th1");
    acct.tenant_id = Some("a".into());
    acct.eab_kid = Some("k1".into());
    assert_eq!(
        s.create_account_bound(&acct, "nokey").await,
        Err(StoreError::NotFound)
    );
    assert_eq!(s.get_account("acc1").await.unwrap(), None);
    s.create_account_bound(&acct, "k1").await.unwrap();
    assert_eq!(s.get_account("acc1").await.unwrap().unwrap(), acct);
    assert_eq!(
        s.get_eab_key("k1")
            .await
            .unwrap()
            .unwrap()
            .bound_account
            .as_deref(),
        Some("acc1")
    );
    let second = account("acc2", "th2");
    assert!(matches!(
        s.create_account_bound(&second, "k1").await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.get_account("acc2").await.unwrap(), None);
    // A key already used by an account cannot create another through a key.
    assert!(matches!(
        s.create_account_bound(&account("acc3", "th1"), "k3").await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        s.get_eab_key("k3").await.unwrap().unwrap().bound_account,
        None
    );
    // Disabled keys bind nothing.
    s.disable_eab_key("k3", T0).await.unwrap();
    assert!(matches!(
        s.create_account_bound(&second, "k3").await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.disable_eab_key("k3", T0).await,
        Err(StoreError::Conflict(_))
    ));
}

pub(crate) async fn eab_bind_race(s: &dyn Store) {
    s.create_eab_key(&eab("race", "a")).await.unwrap();
    let wins = count(race(8, |t| async move {
        let a = account(&format!("r{t}"), &format!("rt{t}"));
        s.create_account_bound(&a, "race").await.is_ok()
    }));
    assert_eq!(wins, 1, "an EAB key binds exactly one account");
}

pub(crate) fn approval(id: &str, at: OffsetDateTime) -> ApprovalRecord {
    ApprovalRecord {
        id: id.into(),
        status: ApprovalStatus::Pending,
        protocol: "acme".into(),
        requester: "acme:acct".into(),
        tenant_id: Some("a".into()),
        profile: "sensitive".into(),
        names: vec!["dns:x.a.example".into()],
        csr_der: vec![0x30, 0x00],
        context: json!({"order": "o1"}),
        requested_at: at,
        decided_by: None,
        decided_at: None,
        comment: None,
        cert_serial: None,
        error: None,
    }
}

pub(crate) async fn approvals(s: &dyn Store) {
    s.create_approval(&approval("p2", T0 + Duration::seconds(2)))
        .await
        .unwrap();
    s.create_approval(&approval("p1", T0 + Duration::seconds(1)))
        .await
        .unwrap();
    s.create_approval(&approval("p3", T0 + Duration::seconds(3)))
        .await
        .unwrap();
    assert!(matches!(
        s.create_approval(&approval("p1", T0)).await,
        Err(StoreError::Conflict(_))
    ));
    let ids = |st: Option<ApprovalStatus>| async move {
        s.list_approvals(st)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect::<Vec<String>>()
    };
    assert_eq!(ids(None).await, vec!["p1", "p2", "p3"]);
    let mut decided = approval("p2", T0 + Duration::seconds(2));
    decided.status = ApprovalStatus::Rejected;
    decided.decided_by = Some("key:k2".into());
    assert!(s
        .update_approval(&decided, ApprovalStatus::Pending)
        .await
        .unwrap());
    // A second decision loses.
    let mut late = decided.clone();
    late.status = ApprovalStatus::Approved;
    assert!(!s
        .update_approval(&late, ApprovalStatus::Pending)
        .await
        .unwrap());
    assert_eq!(s.get_approval("p2").await.unwrap().unwrap(), decided);
    assert_eq!(ids(Some(ApprovalStatus::Pending)).await, vec!["p1", "p3"]);
    assert_eq!(ids(Some(ApprovalStatus::Rejected)).await, vec!["p2"]);
    assert_eq!(
        s.update_approval(&approval("nope", T0), ApprovalStatus::Pending)
            .await,
        Err(StoreError::NotFound)
    );
}

pub(crate) fn scep_tx(
    id: &str,
    request: &str,
    state: ScepTransactionState,
) -> ScepTransactionRecord {
    ScepTransactionRecord {
        transaction_id: id.into(),
        request: request.into(),
        signer_key: "k".into(),
        state,
        updated_at: T0,
    }
}

pub(crate) async fn scep_transactions(s: &dyn Store) {
    assert_eq!(s.get_scep_transaction("t1").await.unwrap(), None);
    let claim = scep_tx("t1", "r1", ScepTransactionState::InFlight);
    assert!(s.put_scep_transaction(&claim, None).await.unwrap());
    // A second claim of the same transactionID loses.
    assert!(!s.put_scep_transaction(&claim, None).await.unwrap());
    let issued = scep_tx(
        "t1",
        "r1",
        ScepTransactionState::Issued {
            serial: "0a".into(),
        },
    );
    // A stale expectation loses; the right one wins.
    assert!(!s
        .put_scep_transaction(&issued, Some(&issued))
        .await
        .unwrap());
    assert!(s.put_scep_transaction(&issued, Some(&claim)).await.unwrap());
    assert_eq!(
        s.get_scep_transaction("t1").await.unwrap(),
        Some(issued.clone())
    );
    // Delete only what was expected.
    assert!(!s.delete_scep_transaction(&claim).await.unwrap());
    assert!(s.delete_scep_transaction(&issued).await.unwrap());
    assert_eq!(s.get_scep_transaction("t1").await.unwrap(), None);
    assert!(!s.delete_scep_transaction(&issued).await.unwrap());
}

/// Eight threads claim one transactionID at once: exactly one wins.
/// The retention purge's candidates: written before the cut-off, in
/// transactionID order, paged with `after`.
pub(crate) async fn scep_transactions_before(s: &dyn Store) {
    let at = |id: &str, minutes: i64| {
        let mut r = scep_tx(id, "r", ScepTransactionState::InFlight);
        r.updated_at = T0 + time::Duration::minutes(minutes);
        r
    };
    for r in [at("c", 0), at("a", 1), at("d", 10), at("b", 2)] {
        assert!(s.put_scep_transaction(&r, None).await.unwrap());
    }
    let cut = T0 + time::Duration::minutes(5);
    let ids = |v: Vec<ScepTransactionRecord>| -> Vec<String> {
        v.into_iter().map(|r| r.transaction_id).collect()
    };
    assert_eq!(
        ids(s.scep_transactions_before(cut, None, 10).await.unwrap()),
        ["a", "b", "c"]
    );
    assert_eq!(
        ids(s.scep_transactions_before(cut, None, 2).await.unwrap()),
        ["a", "b"]
    );
    assert_eq!(
        ids(s.scep_transactions_before(cut, Some("b"), 2).await.unwrap()),
        ["c"]
    );
    assert!(s
        .scep_transactions_before(T0, None, 10)
        .await
        .unwrap()
        .is_empty());
    let found = s.scep_transactions_before(cut, Some("b"), 1).await.unwrap();
    assert_eq!(found, vec![at("c", 0)], "whole records, as stored");
}

pub(crate) async fn scep_transaction_race(s: &dyn Store) {
    let wins = count(race(8, |t| async move {
        let claim = scep_tx("race", &format!("r{t}"), ScepTransactionState::InFlight);
        s.put_scep_transaction(&claim, None).await.unwrap()
    }));
    assert_eq!(wins, 1, "one claim per transactionID");
}

pub(crate) fn est_user(name: &str, tenant_id: Option<&str>) -> ironseal_storage::EstUserRecord {
    ironseal_storage::EstUserRecord {
        username: name.into(),
        tenant_id: tenant_id.map(Into::into),
        password_hash: "$pbkdf2-sha512$i=1$c2FsdA$aGFzaA".into(),
        created_at: T0,
        created_by: "key:k1".into(),
        disabled_at: None,
    }
}

pub(crate) async fn est_users(s: &dyn Store) {
    s.create_est_user(&est_user("dev-b", Some("t1")))
        .await
        .unwrap();
    s.create_est_user(&est_user("dev-a", None)).await.unwrap();
    assert!(matches!(
        s.create_est_user(&est_user("dev-a", Some("t1"))).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        s.get_est_user("dev-a").await.unwrap().unwrap().tenant_id,
        None
    );
    assert!(s.get_est_user("nobody").await.unwrap().is_none());
    let all: Vec<String> = s
        .list_est_users(None)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(all, ["dev-a", "dev-b"]);
    assert_eq!(s.list_est_users(Some("t1")).await.unwrap().len(), 1);
    let u = s.disable_est_user("dev-b", T0).await.unwrap();
    assert!(!u.is_active());
    assert!(!s.get_est_user("dev-b").await.unwrap().unwrap().is_active());
    assert!(matches!(
        s.disable_est_user("dev-b", T0).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.disable_est_user("nobody", T0).await,
        Err(StoreError::NotFound)
    ));
}

pub(crate) async fn populate_and_verify(s: &dyn Store) {
    populate(s).await;
    verify_populated(s).await;
}

// ----------------------------------------------------------------- nonces

/// A nonce is redeemed once; a second redemption (any caller) is a
/// replay; expired entries are forgotten, unexpired ones kept.
pub(crate) async fn nonce_redemption(s: &dyn Store) {
    let (a, b) = (0x0123_4567_89ab_cdef_u128 << 64, 42u128);
    assert!(s.redeem_nonce(a, 1_000).await.unwrap());
    assert!(!s.redeem_nonce(a, 1_000).await.unwrap(), "a replay");
    assert!(s.redeem_nonce(b, 5_000).await.unwrap());
    assert_eq!(s.purge_nonces(2_000).await.unwrap(), 1);
    assert!(
        !s.redeem_nonce(b, 5_000).await.unwrap(),
        "unexpired entries stay"
    );
    assert_eq!(s.purge_nonces(2_000).await.unwrap(), 0);
    // Of concurrent redemptions of one nonce exactly one wins.
    let wins = count(race(8, |_| async move {
        s.redeem_nonce(7, 9_000).await.unwrap()
    }));
    assert_eq!(wins, 1);
}

/// A nonce redeemed together with the signing account's read (one call
/// per kid-signed ACME request): the same verdicts as `redeem_nonce`
/// (shared with it: a nonce redeemed one way is a replay the other), the
/// account read either way, `None` for an unknown account; of concurrent
/// redemptions of one nonce exactly one wins.
pub(crate) async fn nonce_redemption_reading_account(s: &dyn Store) {
    s.create_account(&account("acct-n", "thumb-n"))
        .await
        .unwrap();
    let (fresh, acct) = s
        .redeem_nonce_reading_account(11, 1_000, "acct-n")
        .await
        .unwrap();
    assert!(fresh);
    assert_eq!(acct.unwrap().id, "acct-n");
    let (fresh, acct) = s
        .redeem_nonce_reading_account(11, 1_000, "acct-n")
        .await
        .unwrap();
    assert!(!fresh, "a replay");
    assert_eq!(acct.map(|a| a.id).as_deref(), Some("acct-n"));
    assert!(!s.redeem_nonce(11, 1_000).await.unwrap(), "one ledger");
    assert!(s.redeem_nonce(12, 1_000).await.unwrap());
    let (fresh, _) = s
        .redeem_nonce_reading_account(12, 1_000, "acct-n")
        .await
        .unwrap();
    assert!(!fresh, "redeemed by redeem_nonce");
    let (fresh, acct) = s
        .redeem_nonce_reading_account(13, 1_000, "no-such-account")
        .await
        .unwrap();
    assert!(fresh);
    assert!(acct.is_none());
    let wins = count(race(8, |_| async move {
        let (fresh, acct) = s
            .redeem_nonce_reading_account(14, 9_000, "acct-n")
            .await
            .unwrap();
        assert!(acct.is_some());
        fresh
    }));
    assert_eq!(wins, 1);
}

/// Rate-limit buckets: a burst, refusal with the time to wait, refill,
/// forced events past the budget, purge; and of concurrent takes on one
/// bucket exactly `burst` are admitted (replicas on one database share it).
pub(crate) async fn rate_buckets(s: &dyn Store) {
    use ironseal_storage::{BucketOp, Gcra};
    let g = Gcra {
        interval_ns: 1_000,
        burst: 3,
    };
    let now = 1_000_000;
    for _ in 0..3 {
        assert!(
            s.rate_bucket("k", BucketOp::Take, g, now)
                .await
                .unwrap()
                .admitted
        );
    }
    let refused = s.rate_bucket("k", BucketOp::Take, g, now).await.unwrap();
    assert!(!refused.admitted);
    assert_eq!(refused.wait_ns(g, now), 1_000);
    assert!(
        s.rate_bucket("other", BucketOp::Take, g, now)
            .await
            .unwrap()
            .admitted
    );
    assert!(
        s.rate_bucket("k", BucketOp::Take, g, now + 1_000)
            .await
            .unwrap()
            .admitted,
        "refilled after one interval"
    );
    // Forced events go one interval past the budget, no further.
    for _ in 0..5 {
        s.rate_bucket("f", BucketOp::Force, g, now).await.unwrap();
    }
    let peek = s.rate_bucket("f", BucketOp::Peek, g, now).await.unwrap();
    assert_eq!(peek.over_ns(g, now), 1_000);
    let fresh = s
        .rate_bucket("never", BucketOp::Peek, g, now)
        .await
        .unwrap();
    assert_eq!((fresh.over_ns(g, now), fresh.wait_ns(g, now)), (0, 0));
    // Purge forgets buckets whose time has passed, keeps the others.
    assert_eq!(
        s.purge_rate_buckets(now + 3_500).await.unwrap(),
        1,
        "only 'other'"
    );
    assert_eq!(s.purge_rate_buckets(now + 10_000).await.unwrap(), 2);
    assert!(
        s.rate_bucket("k", BucketOp::Peek, g, now)
            .await
            .unwrap()
            .tat_ns
            <= now
    );

    // Concurrent takes: exactly the burst is admitted.
    let g = Gcra {
        interval_ns: 1_000_000_000_000,
        burst: 20,
    };
    let admitted: usize = race(8, |_| async move {
        let mut admitted = 0;
        for _ in 0..5 {
            let bucket = s.rate_bucket("race", BucketOp::Take, g, now).await;
            admitted += usize::from(bucket.unwrap().admitted);
        }
        admitted
    })
    .into_iter()
    .sum();
    assert_eq!(admitted, 20);
}

// ------------------------------------------------------------------ purge

/// Expired orders that never issued and expired authorizations go, in
/// batches of `limit`, with their index entries; valid and processing
/// orders and unexpired records stay.
/// Change generations (issue 11): each kind's counter moves with a change
/// of that kind and with nothing else (an issuance is no revocation);
/// settings are a compare-and-swap, of racing creators one wins.
pub(crate) async fn change_generations(s: &dyn Store) {
    use ironseal_storage::ChangeKind;
    async fn moved(s: &dyn Store, before: &ironseal_storage::Generations) -> Vec<ChangeKind> {
        s.change_generations().await.unwrap().changed_since(before)
    }
    let g = s.change_generations().await.unwrap();
    s.put_ca(&ca("ca1", T0)).await.unwrap();
    assert_eq!(moved(s, &g).await, vec![ChangeKind::Cas]);

    let g = s.change_generations().await.unwrap();
    s.create_tenant(&tenant("t1")).await.unwrap();
    s.disable_tenant("t1", T0).await.unwrap();
    assert_eq!(moved(s, &g).await, vec![ChangeKind::Tenants]);

    let g = s.change_generations().await.unwrap();
    s.create_eab_key(&eab("kid1", "t1")).await.unwrap();
    assert_eq!(moved(s, &g).await, vec![ChangeKind::EabKeys]);

    let g = s.change_generations().await.unwrap();
    s.create_api_key(&api_key("k1", ApiRole::Admin, T0))
        .await
        .unwrap();
    s.create_api_key(&api_key("k2", ApiRole::Admin, T0))
        .await
        .unwrap();
    let g1 = s.change_generations().await.unwrap();
    assert_eq!(g1.changed_since(&g), vec![ChangeKind::ApiKeys]);
    s.disable_api_key("k1", T0).await.unwrap();
    assert_eq!(moved(s, &g1).await, vec![ChangeKind::ApiKeys]);

    let g = s.change_generations().await.unwrap();
    s.create_est_user(&est_user("u1", None)).await.unwrap();
    s.disable_est_user("u1", T0).await.unwrap();
    assert_eq!(moved(s, &g).await, vec![ChangeKind::EstUsers]);

    // Issuing is not revoking: the hot path leaves every counter alone.
    let g = s.change_generations().await.unwrap();
    s.insert_certificate(&cert("0a", "ca1")).await.unwrap();
    s.record_issuance(&issuance("0b", None, None))
        .await
        .unwrap();
    assert_eq!(moved(s, &g).await, vec![]);
    s.revoke_certificate("0a", rev(1)).await.unwrap();
    let g1 = s.change_generations().await.unwrap();
    assert_eq!(g1.changed_since(&g), vec![ChangeKind::Revocations]);
    assert!(g1.get(ChangeKind::Revocations) > g.get(ChangeKind::Revocations));
    assert_eq!(
        s.revoke_certificate("0a", rev(1)).await,
        Err(StoreError::AlreadyRevoked)
    );

    // Settings: create once, then compare-and-swap on the version.
    let g = s.change_generations().await.unwrap();
    assert_eq!(s.get_setting("x").await.unwrap(), None);
    assert_eq!(s.put_setting("x", b"one", None).await.unwrap(), Some(1));
    assert_eq!(
        s.put_setting("x", b"two", None).await.unwrap(),
        None,
        "exists"
    );
    assert_eq!(
        s.put_setting("x", b"two", Some(2)).await.unwrap(),
        None,
        "stale"
    );
    assert_eq!(s.put_setting("x", b"two", Some(1)).await.unwrap(), Some(2));
    assert_eq!(
        s.put_setting("y", b"", Some(1)).await.unwrap(),
        None,
        "absent"
    );
    let got = s.get_setting("x").await.unwrap().unwrap();
    assert_eq!((got.version, got.value.as_slice()), (2, &b"two"[..]));
    assert_eq!(moved(s, &g).await, vec![ChangeKind::Settings]);

    // Eight racing creators of one setting: one wins, the rest lose.
    let wins = race(8, |i| async move {
        s.put_setting("race", &[i as u8], None).await.unwrap()
    })
    .into_iter()
    .flatten()
    .count();
    assert_eq!(wins, 1);
    // Eight racing rotations from version 1: one wins.
    let wins = race(8, |i| async move {
        let i = i as u8;
        s.put_setting("race", &[i, i], Some(1)).await.unwrap()
    })
    .into_iter()
    .flatten()
    .count();
    assert_eq!(wins, 1);
    assert_eq!(s.get_setting("race").await.unwrap().unwrap().version, 2);
    // The bootstrap lock can be taken and given back.
    drop(s.bootstrap_lock().await.unwrap());
    drop(s.bootstrap_lock().await.unwrap());
}

pub(crate) async fn purge_expired(s: &dyn Store) {
    let cut = T0;
    let old = T0 - Duration::days(10);
    let mut expect_kept = Vec::new();
    for (id, status, created) in [
        ("o-pend", OrderStatus::Pending, old),
        ("o-ready", OrderStatus::Ready, old),
        ("o-inv", OrderStatus::Invalid, old),
        ("o-valid", OrderStatus::Valid, old),
        ("o-proc", OrderStatus::Processing, old),
        ("o-fresh", OrderStatus::Pending, T0),
    ] {
        let mut o = order(id, "pa", created);
        o.status = status;
        s.put_order(&o).await.unwrap();
        if !matches!(id, "o-pend" | "o-ready" | "o-inv") {
            expect_kept.push(id);
        }
    }
    s.put_authz(&authz(
        "a-valid-old",
        "pa",
        "old.test",
        false,
        AuthzStatus::Valid,
        old,
    ))
    .await
    .unwrap();
    s.put_authz(&authz(
        "a-pend-old",
        "pa",
        "pend.test",
        false,
        AuthzStatus::Pending,
        old,
    ))
    .await
    .unwrap();
    let fresh_until = T0 + Duration::days(30);
    s.put_authz(&authz(
        "a-fresh",
        "pa",
        "fresh.test",
        false,
        AuthzStatus::Valid,
        fresh_until,
    ))
    .await
    .unwrap();

    let first = s.purge_expired(cut, 2).await.unwrap();
    assert_eq!((first.orders, first.authzs), (2, 2), "limit respected");
    let second = s.purge_expired(cut, 100).await.unwrap();
    assert_eq!((second.orders, second.authzs), (1, 0));
    assert_eq!(s.purge_expired(cut, 100).await.unwrap().total(), 0);

    for id in ["o-pend", "o-ready", "o-inv"] {
        assert_eq!(s.get_order(id).await.unwrap(), None, "{id} not purged");
    }
    let mut listed = s.list_orders("pa", None, 100).await.unwrap();
    listed.sort();
    expect_kept.sort();
    assert_eq!(listed, expect_kept, "the account's order index");
    assert_eq!(s.get_authz("a-valid-old").await.unwrap(), None);
    assert_eq!(s.get_authz("a-pend-old").await.unwrap(), None);
    assert_eq!(
        s.find_reusable_authz("pa", &Identifier::dns("fresh.test"), T0)
            .await
            .unwrap()
            .unwrap()
            .id,
        "a-fresh"
    );
    // The purged authorization's index entry is gone too: a new one for
    // the same name is found, not a dangling id.
    s.put_authz(&authz(
        "a-pend-new",
        "pa",
        "pend.test",
        false,
        AuthzStatus::Pending,
        fresh_until,
    ))
    .await
    .unwrap();
    assert_eq!(
        s.find_reusable_authz("pa", &Identifier::dns("pend.test"), T0)
            .await
            .unwrap()
            .unwrap()
            .id,
        "a-pend-new"
    );
}

/// Unfinished orders and authorizations are counted per account, only
/// while unexpired, up to the limit, and follow every status change and
/// purge.
pub(crate) async fn pending_counts(s: &dyn Store) {
    let old = T0 - Duration::days(10);
    for (id, status, created) in [
        ("p-pend", OrderStatus::Pending, T0),
        ("p-ready", OrderStatus::Ready, T0),
        ("p-proc", OrderStatus::Processing, T0),
        ("p-valid", OrderStatus::Valid, T0),
        ("p-inv", OrderStatus::Invalid, T0),
        ("p-pend-old", OrderStatus::Pending, old),
    ] {
        let mut o = order(id, "pc", created);
        o.status = status;
        s.put_order(&o).await.unwrap();
    }
    s.put_order(&order("q-pend", "other", T0)).await.unwrap();
    let later = T0 + Duration::days(30);
    for (id, status, expires) in [
        ("pa1", AuthzStatus::Pending, later),
        ("pa2", AuthzStatus::Pending, later),
        ("pa3", AuthzStatus::Pending, later),
        ("pa-valid", AuthzStatus::Valid, later),
        ("pa-inv", AuthzStatus::Invalid, later),
        ("pa-old", AuthzStatus::Pending, old),
    ] {
        s.put_authz(&authz(
            id,
            "pc",
            &format!("{id}.test"),
            false,
            status,
            expires,
        ))
        .await
        .unwrap();
    }
    s.put_authz(&authz(
        "qa",
        "other",
        "q.test",
        false,
        AuthzStatus::Pending,
        later,
    ))
    .await
    .unwrap();
    let counts = |limit| async move {
        let c = s.count_pending("pc", T0, limit).await.unwrap();
        (c.orders, c.authzs)
    };
    assert_eq!(
        counts(100).await,
        (2, 3),
        "pending+ready orders, pending authzs"
    );
    assert_eq!(counts(2).await, (2, 2), "each count stops at the limit");
    assert_eq!(counts(0).await, (0, 0));
    let nobody = s.count_pending("nobody", T0, 100).await.unwrap();
    assert_eq!((nobody.orders, nobody.authzs), (0, 0));
    // Past every expiry nothing counts.
    let c = s.count_pending("pc", later, 100).await.unwrap();
    assert_eq!((c.orders, c.authzs), (0, 0));

    // Status changes move records in and out.
    let mut o = s.get_order("p-ready").await.unwrap().unwrap();
    o.status = OrderStatus::Processing;
    assert!(s.transition_order(&o, OrderStatus::Ready).await.unwrap());
    let mut a = s.get_authz("pa1").await.unwrap().unwrap();
    a.status = AuthzStatus::Valid;
    assert!(s.transition_authz(&a, AuthzStatus::Pending).await.unwrap());
    assert_eq!(counts(100).await, (1, 2));
    let mut o = s.get_order("p-inv").await.unwrap().unwrap();
    o.status = OrderStatus::Pending;
    s.put_order(&o).await.unwrap();
    assert_eq!(
        counts(100).await,
        (2, 2),
        "a put back to pending counts again"
    );

    // The purge takes the expired ones and leaves the counts right.
    let purged = s.purge_expired(T0, 100).await.unwrap();
    assert_eq!((purged.orders, purged.authzs), (1, 1));
    assert_eq!(counts(100).await, (2, 2));
    let purged = s
        .purge_expired(later + Duration::days(1), 100)
        .await
        .unwrap();
    assert_eq!((purged.orders, purged.authzs), (3, 6));
    let c = s.count_pending("pc", T0, 100).await.unwrap();
    assert_eq!(
        (c.orders, c.authzs),
        (0, 0),
        "purged records leave no pending keys"
    );
    let other = s.count_pending("other", T0, 100).await.unwrap();
    assert_eq!((other.orders, other.authzs), (0, 0), "other's purged too");
    // The account's listing is untouched by the pending keys.
    let mut listed = s.list_orders("pc", None, 100).await.unwrap();
    listed.sort();
    assert_eq!(listed, vec!["p-proc", "p-ready", "p-valid"]);
}

// ------------------------------------------------- one-time SCEP challenges

pub(crate) fn scep_challenge(hash: &str, tenant_id: Option<&str>) -> ScepChallengeRecord {
    ScepChallengeRecord {
        challenge_hash: hash.into(),
        id: format!("id-{hash}"),
        tenant_id: tenant_id.map(Into::into),
        path: None,
        created_at: T0,
        created_by: "key:k1".into(),
        expires_at: T0 + Duration::hours(1),
        redeemed_at: None,
    }
}

pub(crate) async fn scep_challenges(s: &dyn Store) {
    s.create_scep_challenge(&scep_challenge("h2", Some("t1")))
        .await
        .unwrap();
    s.create_scep_challenge(&scep_challenge("h1", None))
        .await
        .unwrap();
    s.create_scep_challenge(&scep_challenge("h3", Some("t1")))
        .await
        .unwrap();
    assert!(matches!(
        s.create_scep_challenge(&scep_challenge("h1", Some("t1")))
            .await,
        Err(StoreError::Conflict(_))
    ));
    let all: Vec<String> = s
        .list_scep_challenges(None)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.challenge_hash)
        .collect();
    assert_eq!(all, ["h1", "h2", "h3"]);
    assert_eq!(s.list_scep_challenges(Some("t1")).await.unwrap().len(), 2);
    assert!(s.get_scep_challenge("nope").await.unwrap().is_none());

    // Redeemed once, at the instant given; never again.
    let at = T0 + Duration::minutes(5);
    let r = s.redeem_scep_challenge("h2", at).await.unwrap().unwrap();
    assert_eq!(r.redeemed_at, Some(at));
    assert_eq!(r.tenant_id.as_deref(), Some("t1"));
    assert_eq!(s.redeem_scep_challenge("h2", at).await.unwrap(), None);
    assert_eq!(
        s.get_scep_challenge("h2")
            .await
            .unwrap()
            .unwrap()
            .redeemed_at,
        Some(at)
    );
    // Expired (at or after expires_at): not redeemable, left untouched.
    let late = T0 + Duration::hours(1);
    assert_eq!(s.redeem_scep_challenge("h3", late).await.unwrap(), None);
    assert_eq!(
        s.get_scep_challenge("h3")
            .await
            .unwrap()
            .unwrap()
            .redeemed_at,
        None
    );
    assert_eq!(s.redeem_scep_challenge("unknown", at).await.unwrap(), None);
    assert!(s.redeem_scep_challenge("h3", at).await.unwrap().is_some());

    // Removed: gone from lookups and listings, never redeemable again;
    // removing it twice (or an unknown hash) answers false.
    assert!(s.remove_scep_challenge("h1").await.unwrap());
    assert!(!s.remove_scep_challenge("h1").await.unwrap());
    assert!(!s.remove_scep_challenge("unknown").await.unwrap());
    assert!(s.get_scep_challenge("h1").await.unwrap().is_none());
    assert_eq!(s.redeem_scep_challenge("h1", T0).await.unwrap(), None);
    assert_eq!(s.list_scep_challenges(None).await.unwrap().len(), 2);
}

/// Eight threads redeem one challenge at once: exactly one wins.
pub(crate) async fn scep_challenge_redeem_race(s: &dyn Store) {
    s.create_scep_challenge(&scep_challenge("race", None))
        .await
        .unwrap();
    let wins = count(race(8, |_| async move {
        s.redeem_scep_challenge("race", T0).await.unwrap().is_some()
    }));
    assert_eq!(wins, 1, "a one-time challenge is redeemed exactly once");
}

// ------------------------------------------------------ export and import

/// Fills `s` with at least one record of every kind an export carries.
pub(crate) async fn populate_every_kind(s: &dyn Store) {
    populate(s).await;
    s.put_ca(&ca("xroot", T0 - Duration::days(1)))
        .await
        .unwrap();
    assert!(s
        .create_audit_key(&audit_key_record(audit::AUDIT_MAC_KEY, 1))
        .await
        .unwrap());
    s.create_tenant(&tenant("xt")).await.unwrap();
    s.create_api_key(&api_key("xk1", ApiRole::Admin, T0))
        .await
        .unwrap();
    s.create_api_key(&api_key("xk2", ApiRole::Operator, T0))
        .await
        .unwrap();
    s.disable_api_key("xk2", T0 + Duration::hours(1))
        .await
        .unwrap();
    s.create_eab_key(&eab("xeab", "xt")).await.unwrap();
    s.create_est_user(&est_user("xuser", Some("xt")))
        .await
        .unwrap();
    s.create_approval(&approval("xap", T0)).await.unwrap();
    assert!(s
        .put_scep_transaction(&scep_tx("xtx", "r", ScepTransactionState::InFlight), None)
        .await
        .unwrap());
    s.create_scep_challenge(&scep_challenge("xch", Some("xt")))
        .await
        .unwrap();
    // Settings: the issuing-CA pin and an opaque (RA-like) value.
    assert!(s
        .put_setting(settings::ISSUING_CA, b"pica", None)
        .await
        .unwrap()
        .is_some());
    assert!(s
        .put_setting(settings::SCEP_RA, &[0, 1, 2, 255], None)
        .await
        .unwrap()
        .is_some());
    for n in 0..5 {
        s.append_audit(&event(n)).await.unwrap();
    }
}

/// Every record of `s`, as JSON lines in export order.
pub(crate) async fn exported(s: &dyn Store) -> Vec<String> {
    let mut out = Vec::new();
    let n = s
        .export_records(&mut |r| {
            out.push(serde_json::to_string(&r).unwrap());
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(n, out.len() as u64);
    assert_eq!(s.count_records().await.unwrap(), n);
    out
}

/// An export file of `s`.
pub(crate) async fn export_file(s: &dyn Store) -> Vec<u8> {
    let mut file = Vec::new();
    let mut last = 0;
    export::write_export(
        s,
        "test",
        &mut file,
        &[("issuing-ca".into(), b"pica\n".to_vec())],
        &mut |n| last = n,
    )
    .await
    .unwrap();
    assert_eq!(last, s.count_records().await.unwrap());
    file
}

/// Imports an export file into `s`; returns its files. The file is read
/// and checked whole first (`read_export` hands records to a synchronous
/// callback), then every record is written in file order, stopping at the
/// first error.
pub(crate) async fn import_file(
    s: &dyn Store,
    file: &[u8],
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let mut records = Vec::new();
    let (_, _, files) = export::read_export(
        &mut std::io::BufReader::new(file),
        &mut |r| {
            records.push(r);
            Ok(())
        },
        &mut |_| {},
    )?;
    for r in &records {
        export::import_record(s, r).await?;
    }
    Ok(files)
}

/// An export of this backend, imported into memory, exports to the same
/// records: nothing lost, nothing changed, whatever the engine.
pub(crate) async fn export_round_trip(s: &dyn Store) {
    populate_every_kind(s).await;
    let before = exported(s).await;
    let kinds: std::collections::BTreeSet<String> = before
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"].to_string())
        .collect();
    assert_eq!(kinds.len(), 17, "every record kind is exported: {kinds:?}");
    let target = MemoryStore::new();
    let files = import_file(&target, &export_file(s).await).await.unwrap();
    assert_eq!(files, vec![("issuing-ca".to_string(), b"pica\n".to_vec())]);
    assert_eq!(sorted(exported(&target).await), sorted(before));
    verify_populated(&target).await;
    verify_chain(
        &target.audit_entries(0, 100).await.unwrap(),
        None,
        target.audit_head().await.unwrap().as_ref(),
    )
    .unwrap();
}

/// An export made elsewhere (memory) imports into this backend, which then
/// behaves like the original: indexes built, counters carried on, the
/// audit chain continuing.
pub(crate) async fn import_into_backend(s: &dyn Store) {
    let source = MemoryStore::new();
    populate_every_kind(&source).await;
    assert!(export::is_empty(s).await.unwrap());
    import_file(s, &export_file(&source).await).await.unwrap();
    assert_eq!(sorted(exported(s).await), sorted(exported(&source).await));
    verify_populated(s).await;
    // Settings arrive as they were, at version 1.
    let ra = s.get_setting(settings::SCEP_RA).await.unwrap().unwrap();
    assert_eq!((ra.version, ra.value), (1, vec![0, 1, 2, 255]));
    let next = s.append_audit(&event(9)).await.unwrap();
    assert_eq!(next.seq, 6);
    verify_chain(
        &s.audit_entries(0, 100).await.unwrap(),
        None,
        s.audit_head().await.unwrap().as_ref(),
    )
    .unwrap();
    // The disabled operator key stays disabled; the admin count is right:
    // the one enabled admin key is the last.
    assert_eq!(
        s.disable_api_key("xk1", T0 + Duration::hours(2)).await,
        Err(StoreError::LastAdminKey)
    );
    // Now the store is not empty: a second import is refused by callers.
    assert!(!export::is_empty(s).await.unwrap());
}

/// An audit entry that does not follow the chain (altered, then the file's
/// trailer recomputed, as an attacker would) stops the import.
pub(crate) async fn import_refuses_a_broken_chain(s: &dyn Store) {
    let source = MemoryStore::new();
    for n in 0..3 {
        source.append_audit(&event(n)).await.unwrap();
    }
    let mut records = Vec::new();
    source
        .export_records(&mut |r| {
            records.push(r);
            Ok(())
        })
        .await
        .unwrap();
    if let Some(ExportRecord::AuditEntry(e)) = records.get_mut(1) {
        e.summary = "{\"rewritten\":true}".into();
    } else {
        panic!("expected audit entries: {records:?}");
    }
    let mut file = Vec::new();
    let mut w = backup::Writer::with_format(&mut file, export::EXPORT_FORMAT, "test").unwrap();
    for r in &records {
        w.entry(&backup::Entry::Record(serde_json::to_value(r).unwrap()))
            .unwrap();
    }
    w.finish().unwrap();
    let e = import_file(s, &file).await.unwrap_err();
    assert!(e.to_string().contains("audit entry 2"), "{e}");
    assert_eq!(s.audit_head().await.unwrap().unwrap().seq, 1);
}

/// Leases: acquire when free, refuse while another's is live, renew (same
/// token), take over after expiry (token + 1), release only our own, read,
/// purge; of concurrent acquirers of one free lease exactly one wins.
pub(crate) async fn leases(s: &dyn Store) {
    let (now, ttl) = (1_000_000i64, 1_000i64);
    assert_eq!(s.get_lease("crl:x").await.unwrap(), None);
    let a = s
        .acquire_lease("crl:x", "a", now, ttl)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (a.holder.as_str(), a.token, a.expires_ns),
        ("a", 1, now + ttl)
    );
    assert_eq!(s.get_lease("crl:x").await.unwrap(), Some(a.clone()));
    assert!(a.live(now + ttl - 1) && !a.live(now + ttl));
    // Another holder is refused while it is live, and changes nothing.
    assert_eq!(
        s.acquire_lease("crl:x", "b", now + ttl - 1, ttl)
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.get_lease("crl:x").await.unwrap(), Some(a.clone()));
    // Renewal keeps the token and moves the expiry.
    let r = s
        .acquire_lease("crl:x", "a", now + 500, ttl)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((r.token, r.expires_ns), (1, now + 500 + ttl));
    // Expired: another holder takes it with a higher token.
    let b = s
        .acquire_lease("crl:x", "b", now + 500 + ttl, ttl)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((b.holder.as_str(), b.token), ("b", 2));
    assert_eq!(
        s.acquire_lease("crl:x", "a", now + 500 + ttl, ttl)
            .await
            .unwrap(),
        None
    );
    // Release only by the holder; then anyone takes it at once.
    assert!(!s.release_lease("crl:x", "a").await.unwrap());
    assert!(!s.release_lease("absent", "a").await.unwrap());
    assert!(s.release_lease("crl:x", "b").await.unwrap());
    assert!(
        !s.release_lease("crl:x", "b").await.unwrap(),
        "already released"
    );
    let released = s.get_lease("crl:x").await.unwrap().unwrap();
    assert!(!released.live(i64::MIN + 1));
    let a2 = s
        .acquire_lease("crl:x", "a", now + 600 + ttl, ttl)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((a2.holder.as_str(), a2.token), ("a", 3));
    // Names are independent.
    let o = s
        .acquire_lease("order:1", "b", now, ttl)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(o.token, 1);
    // Purge forgets leases expired before the bound, keeps the others.
    s.acquire_lease("authz:old", "a", 0, 10)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.purge_leases(now).await.unwrap(), 1);
    assert_eq!(s.get_lease("authz:old").await.unwrap(), None);
    assert!(s.get_lease("order:1").await.unwrap().is_some());
    // Concurrent acquirers of a free lease: exactly one wins.
    for round in 0..5 {
        let name = format!("race:{round}");
        let name = &name;
        let wins = count(race(8, |t| async move {
            s.acquire_lease(name, &format!("h{t}"), now, ttl)
                .await
                .unwrap()
                .is_some()
        }));
        assert_eq!(wins, 1, "round {round}");
    }
}

fn stored_crl(
    ca: &str,
    part: ironseal_storage::CrlPart,
    number: u64,
    generation: u64,
) -> ironseal_storage::StoredCrl {
    ironseal_storage::StoredCrl {
        ca_id: ca.into(),
        part,
        head: ironseal_storage::CrlHead {
            number,
            generation,
            this_update: T0 + Duration::seconds(number as i64),
            next_update: T0 + Duration::days(1),
        },
        der: vec![0x30, 3, 2, 1, number as u8],
    }
}

/// Stored CRLs: put, get, head with the CA's generation; a lower number
/// never replaces a higher one; parts and CAs are independent; generations
/// count per CA.
pub(crate) async fn stored_crls(s: &dyn Store) {
    use ironseal_storage::CrlPart;
    assert_eq!(s.crl_head("ca", CrlPart::Full).await.unwrap(), (0, None));
    assert_eq!(s.get_crl("ca", CrlPart::Full).await.unwrap(), None);
    let full = stored_crl("ca", CrlPart::Full, 2, 0);
    assert!(s.put_crl(&full).await.unwrap());
    assert_eq!(
        s.get_crl("ca", CrlPart::Full).await.unwrap(),
        Some(full.clone())
    );
    assert_eq!(
        s.crl_head("ca", CrlPart::Full).await.unwrap(),
        (0, Some(full.head))
    );
    assert_eq!(
        s.crl_head("ca", CrlPart::Shard(0)).await.unwrap(),
        (0, None)
    );
    // A slow builder's older CRL does not replace the newer one.
    assert!(!s
        .put_crl(&stored_crl("ca", CrlPart::Full, 1, 0))
        .await
        .unwrap());
    assert_eq!(
        s.get_crl("ca", CrlPart::Full).await.unwrap(),
        Some(full.clone())
    );
    // The same number again (a retry) and a higher one are written.
    assert!(s.put_crl(&full).await.unwrap());
    let newer = stored_crl("ca", CrlPart::Full, 3, 1);
    assert!(s.put_crl(&newer).await.unwrap());
    let shard = stored_crl("ca", CrlPart::Shard(7), 3, 1);
    assert!(s.put_crl(&shard).await.unwrap());
    assert_eq!(
        s.get_crl("ca", CrlPart::Shard(7)).await.unwrap(),
        Some(shard)
    );
    assert_eq!(
        s.get_crl("ca", CrlPart::Full).await.unwrap(),
        Some(newer.clone())
    );
    assert_eq!(s.get_crl("other", CrlPart::Full).await.unwrap(), None);
    // Generations: per CA, strictly increasing, reported with the head.
    assert_eq!(s.bump_crl_generation("ca").await.unwrap(), 1);
    assert_eq!(s.bump_crl_generation("ca").await.unwrap(), 2);
    assert_eq!(s.bump_crl_generation("other").await.unwrap(), 1);
    assert_eq!(
        s.crl_head("ca", CrlPart::Full).await.unwrap(),
        (2, Some(newer.head))
    );
    assert_eq!(s.crl_head("other", CrlPart::Full).await.unwrap(), (1, None));
    // A big CRL survives the round trip.
    let mut big = stored_crl("ca", CrlPart::Full, 4, 2);
    big.der = (0..200_000u32).map(|i| i as u8).collect();
    assert!(s.put_crl(&big).await.unwrap());
    assert_eq!(s.get_crl("ca", CrlPart::Full).await.unwrap(), Some(big));
}

/// OCSP responder records: put, replace, get per CA.
pub(crate) async fn ocsp_responders(s: &dyn Store) {
    use ironseal_storage::OcspResponderRecord;
    assert_eq!(s.get_ocsp_responder("ca").await.unwrap(), None);
    let mut r = OcspResponderRecord {
        ca_id: "ca".into(),
        cert_der: vec![1, 2, 3],
        sealed_key: vec![4, 5],
        not_after: T0,
    };
    s.put_ocsp_responder(&r).await.unwrap();
    assert_eq!(s.get_ocsp_responder("ca").await.unwrap(), Some(r.clone()));
    r.cert_der = vec![9];
    r.not_after = T0 + Duration::days(30);
    s.put_ocsp_responder(&r).await.unwrap();
    assert_eq!(s.get_ocsp_responder("ca").await.unwrap(), Some(r));
    assert_eq!(s.get_ocsp_responder("other").await.unwrap(), None);
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Instantiates every battery test for one backend. `$make` evaluates to
/// `(store, guard)`: the store under test and whatever must outlive it
/// (a temporary directory); it may `.await`. The tests in the second list
/// race OS threads on the store ([`race`]) and run on a multi-thread
/// runtime; the others on the default current-thread one.
#[macro_export]
macro_rules! battery {
    ($backend:ident, $make:expr) => {
        battery!(@tests $backend, $make, [
            account_create_get, account_update, account_change_key,
            account_deactivation_is_final,
            order_put_get, order_list_pagination, order_transition,
            authz_put_get, authz_transition, authz_reuse,
            cert_insert_get, cert_update, cert_revoke, cert_mark_replaced,
            blocked_keys, cas, flush_and_object_safety,
            api_keys, audit_append_read,
            audit_keyed_append,
            issuance_is_atomic, issuance_settles_scep_transaction, revocation_is_atomic,
            ca_change_is_atomic, tenants_and_eab, approvals, est_users,
            scep_transactions, scep_transactions_before, scep_challenges,
            populate_and_verify, export_round_trip, import_into_backend, purge_expired, pending_counts,
            stored_crls, ocsp_responders,
            import_refuses_a_broken_chain,
        ], [
            account_create_race, order_transition_race, cert_insert_race, cert_revoke_race,
            crl_numbers, concurrent_flush, api_key_create_race, last_admin_key_race,
            audit_append_race, audit_keys_created_once, issuance_race, eab_bind_race,
            scep_transaction_race, scep_challenge_redeem_race, nonce_redemption,
            nonce_redemption_reading_account, rate_buckets,
            change_generations, leases, revocation_race, ca_change_race,
        ]);
    };
    (@tests $backend:ident, $make:expr, [$($test:ident),+ $(,)?], [$($race:ident),+ $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test]
                async fn $test() {
                    let (store, _guard) = $make;
                    let store: std::sync::Arc<dyn ironseal_storage::Store> = store;
                    $crate::battery_body::$test(&*store).await;
                }
            )+
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $race() {
                    let (store, _guard) = $make;
                    let store: std::sync::Arc<dyn ironseal_storage::Store> = store;
                    $crate::battery_body::$race(&*store).await;
                }
            )+
        }
    };
}
