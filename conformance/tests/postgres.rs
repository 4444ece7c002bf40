//! The release binary on the PostgreSQL backend (`[storage] backend =
//! "postgres"`, issue 11 phase 1): a certificate issued and revoked through
//! ACME (instant-acme) survives a restart. Checked from outside: `openssl
//! ocsp` says revoked before and after the restart, `psql` finds the
//! certificate row flagged revoked, no sled database was created, and the
//! account (kept in PostgreSQL) issues again after the restart with a new
//! serial.
//!
//! Needs `IRONSEAL_TEST_PG_URL` (a PostgreSQL server where the user may
//! create databases); without it the test FAILS with instructions.
//! `scripts/test.sh` starts a throwaway cluster. By hand:
//!
//! ```sh
//! dir=$(scripts/pg-throwaway.sh start); export IRONSEAL_TEST_PG_URL=$(scripts/pg-throwaway.sh url "$dir")
//! cargo build --release -p ironseal && cargo test -p ironseal-conformance --test postgres
//! scripts/pg-throwaway.sh stop "$dir"
//! ```

#![allow(clippy::unwrap_used, reason = "tests: a panic is a test failure")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use instant_acme::{RevocationReason, RevocationRequest};
use ironseal_conformance::pg::{fresh_database, psql};
use ironseal_conformance::prelude::*;
use ironseal_conformance::proc;
use rustls_pki_types::CertificateDer;

fn ocsp(url: &str, root: &Path, inter: &Path, leaf: &Path) -> String {
    let mut c = Command::new("openssl");
    c.args([
        "ocsp",
        "-url",
        url,
        "-CAfile",
        p(root),
        "-issuer",
        p(inter),
        "-cert",
        p(leaf),
        "-timeout",
        "20",
    ]);
    proc::run(c, Duration::from_secs(60)).combined()
}

struct Leaf {
    pem: PathBuf,
    serial: String,
    der: Vec<u8>,
}

async fn issue_leaf(env: &Env, acct: &instant_acme::Account, name: &str, work: &Path) -> Leaf {
    let c = issue(acct, &env.h01, None, &[dns(name)], None)
        .await
        .unwrap_or_else(|e| panic!("issue {name}: {e}\n{}", env.srv.log_tail()));
    let pem = work.join(format!("{name}.pem"));
    std::fs::write(&pem, c.leaf_pem()).unwrap();
    let inter = ironseal_conformance::certs::pem_blocks(&c.chain)
        .get(1)
        .cloned()
        .expect("chain has the intermediate");
    std::fs::write(work.join("inter.pem"), inter).unwrap();
    Leaf {
        pem,
        serial: der_serial(&c.leaf_der),
        der: c.leaf_der,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_revoke_restart_on_postgres() {
    let url = fresh_database();
    let config = format!("[storage]\nbackend = \"postgres\"\nurl = \"{url}\"\npool_size = 4\n");
    let mut env = Env::start_with_config("postgres", &config).await;
    let work = env.path().join("pg");
    std::fs::create_dir_all(&work).unwrap();
    let root = env.srv.root();
    let inter = work.join("inter.pem");
    let ocsp_url = format!("{}/ocsp", env.srv.http_base_url());

    let (acct, _) = env.account().await;
    let leaf = issue_leaf(&env, &acct, "kept.pg.test", &work).await;
    acct.revoke(&RevocationRequest {
        certificate: &CertificateDer::from(leaf.der.clone()),
        reason: Some(RevocationReason::KeyCompromise),
    })
    .await
    .unwrap_or_else(|e| panic!("revoke {}: {e}", leaf.serial));
    let out = blocking(|| ocsp(&ocsp_url, &root, &inter, &leaf.pem));
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(out.contains(&format!("{}: revoked", p(&leaf.pem))), "{out}");

    // The store is PostgreSQL, not sled: no sled database in the data dir
    // (the KEK is beside it, not in it).
    let data_dir = env.srv.data.clone();
    assert!(env.srv.kek_path().exists(), "{}", data_dir.display());
    assert!(!data_dir.join("kek").exists(), "{}", data_dir.display());
    assert!(
        !data_dir.join("db").exists(),
        "a sled database was created in {}",
        data_dir.display()
    );

    blocking(|| env.srv.restart());

    // After the restart: OCSP still says revoked, the row is there.
    let out = blocking(|| ocsp(&ocsp_url, &root, &inter, &leaf.pem));
    assert!(out.contains("Response verify OK"), "{out}");
    assert!(
        out.contains(&format!("{}: revoked", p(&leaf.pem))),
        "after restart:\n{out}"
    );
    assert!(
        out.contains("Key Compromise") || out.contains("keyCompromise"),
        "{out}"
    );
    // Stored as lowercase hex; `der_serial` normalises to uppercase
    // without leading zeros.
    let rows = blocking(|| {
        psql(
            &url,
            "SELECT upper(ltrim(serial, '0')) || ' ' || revoked FROM certificates",
        )
    });
    assert!(
        rows.lines().any(|l| l == format!("{} true", leaf.serial)),
        "certificate {} not stored as revoked: {rows}",
        leaf.serial
    );
    let versions = blocking(|| psql(&url, "SELECT max(version) FROM schema_version"));
    let migrations = std::fs::read_dir(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../storage/src/postgres/migrations"),
    )
    .unwrap()
    .filter(|e| {
        e.as_ref()
            .unwrap()
            .path()
            .extension()
            .is_some_and(|x| x == "sql")
    })
    .count();
    assert_eq!(versions, migrations.to_string(), "every migration applied");
    // The audit MAC and checkpoint keys, sealed, shared by every replica.
    let keys = blocking(|| {
        psql(
            &url,
            "SELECT string_agg(name, ',' ORDER BY name) FROM audit_keys",
        )
    });
    assert_eq!(keys, "audit-checkpoint,audit-mac");

    // The account lives in PostgreSQL too: it orders again, new serial.
    let again = issue_leaf(&env, &acct, "again.pg.test", &work).await;
    assert_ne!(again.serial, leaf.serial);
    let out = blocking(|| ocsp(&ocsp_url, &root, &inter, &again.pem));
    assert!(out.contains(&format!("{}: good", p(&again.pem))), "{out}");
    let audit = blocking(|| psql(&url, "SELECT count(*) FROM audit_log"));
    assert!(audit.parse::<u64>().unwrap() >= 3, "audit entries: {audit}");
}

/// Issue 11: two ironseal replicas on one database (the same KEK, other
/// data directories and ports) share ACME nonces. A nonce replica A issued
/// opens an account on replica B; replayed on A it is `badNonce` (with a
/// fresh nonce), and replayed on B too: each nonce is good once, on any
/// replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_nonces_each_good_once() {
    let db = fresh_database();
    let config = format!("[storage]\nbackend = \"postgres\"\nurl = \"{db}\"\npool_size = 4\n");
    let env = Env::start_with_config("pg-replica-a", &config).await;
    let work_b = env.path().join("replica-b");
    std::fs::create_dir_all(&work_b).unwrap();
    let mut b = Server::new(&work_b, &env.dns.dns_addr());
    b.set_config(&config);
    b.extra = vec![
        "--kek-file".into(),
        env.srv.kek_path().display().to_string(),
    ];
    blocking(|| b.start());
    let raw_a = env.raw().await;
    let raw_b = Raw::new(&b).await;
    let key = AcctKey::generate();
    let payload = serde_json::json!({"termsOfServiceAgreed": true}).to_string();
    let new_account = |raw: &Raw, nonce: &str| {
        let url = raw.url("newAccount");
        let body = jws_with(&key, &header(&key, None, Some(nonce), &url), &payload);
        (url, body)
    };

    let nonce = raw_a.nonce().await;
    let (url, body) = new_account(&raw_b, &nonce);
    let r = raw_b.post_body(&url, &body).await;
    assert_eq!(r.status, 201, "A's nonce on B: {}", r.describe());
    for (name, raw) in [("A", &raw_a), ("B", &raw_b)] {
        let (url, body) = new_account(raw, &nonce);
        let r = raw.post_body(&url, &body).await;
        assert_eq!(r.status, 400, "replay on {name}: {}", r.describe());
        assert!(
            r.text().contains("badNonce"),
            "replay on {name}: {}",
            r.describe()
        );
        assert!(r.nonce().is_some(), "badNonce without a fresh nonce");
    }
    // And the other way round, B's nonce on A.
    let nonce = raw_b.nonce().await;
    let (url, body) = new_account(&raw_a, &nonce);
    let r = raw_a.post_body(&url, &body).await;
    assert_eq!(
        r.status,
        200,
        "B's nonce on A (existing account): {}",
        r.describe()
    );
    let used = blocking(|| psql(&db, "SELECT count(*) FROM used_nonces"));
    assert_eq!(used, "2", "one row per redeemed nonce");
}

/// Two replicas on one database enforce one rate limit, not one each
/// (issue 11): with `new_orders_per_account_per_minute = 3`, orders of one
/// account alternating between the replicas are admitted three times in
/// all; the fourth, on either replica, is `rateLimited` with a Retry-After,
/// and the bucket is one row in `rate_buckets`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_rate_limits() {
    let db = fresh_database();
    let config = format!(
        "[storage]\nbackend = \"postgres\"\nurl = \"{db}\"\npool_size = 4\n\
         [limits]\nnew_orders_per_account_per_minute = 3\n"
    );
    let env = Env::start_with_config("pg-rate-a", &config).await;
    let work_b = env.path().join("replica-b");
    std::fs::create_dir_all(&work_b).unwrap();
    let mut b = Server::new(&work_b, &env.dns.dns_addr());
    b.set_config(&config);
    b.extra = vec![
        "--kek-file".into(),
        env.srv.kek_path().display().to_string(),
    ];
    blocking(|| b.start());
    let raw_a = env.raw().await;
    let raw_b = Raw::new(&b).await;
    let (acct, key) = env.account().await;
    let kid_a = acct.id().to_string();
    let kid_b = kid_a.replace(&env.srv.base_url(), &b.base_url());
    assert_ne!(kid_a, kid_b, "the replicas have their own URLs");
    let order = |n: usize| serde_json::json!({"identifiers": [{"type": "dns", "value": format!("r{n}.example.test")}]});
    for (n, (raw, kid)) in [(&raw_a, &kid_a), (&raw_b, &kid_b), (&raw_a, &kid_a)]
        .into_iter()
        .enumerate()
    {
        raw.signed(&key, Some(kid), &raw.url("newOrder"), Some(&order(n)))
            .await
            .expect_status(201, "an order within the shared budget");
    }
    for (name, raw, kid) in [("B", &raw_b, &kid_b), ("A", &raw_a, &kid_a)] {
        let r = raw
            .signed(&key, Some(kid), &raw.url("newOrder"), Some(&order(9)))
            .await;
        let p = r.expect_problem(429, "rateLimited", &format!("the fourth order, on {name}"));
        assert!(
            p["detail"]
                .as_str()
                .is_some_and(|d| d.contains("new_orders_per_account")),
            "{p}"
        );
        let wait: u64 = r
            .header("Retry-After")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no Retry-After on {name}"));
        assert!((1..=20).contains(&wait), "Retry-After {wait} on {name}");
    }
    let account_id = kid_a.rsplit('/').next().unwrap();
    let rows = blocking(|| {
        psql(
            &db,
            &format!(
                "SELECT count(*) FROM rate_buckets WHERE key = 'new_orders_per_account:{account_id}'"
            ),
        )
    });
    assert_eq!(rows, "1", "one shared bucket for the account");
}
