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
    // The highest numbered migration file (numbers may have gaps while
    // parallel branches each add one).
    let migrations = std::fs::read_dir(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../storage/src/postgres/migrations"),
    )
    .unwrap()
    .filter_map(|e| {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        let n = name
            .strip_suffix(".sql")?
            .split('_')
            .next()?
            .parse::<u32>()
            .ok()?;
        Some(n)
    })
    .max()
    .unwrap();
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

/// The bound a change through one replica takes to be in force on another
/// (docs/storage-postgres.md: one poll of `change_poll_ms`, 1 s by
/// default, plus the refresh), with room for a loaded test machine.
const PROPAGATION_BOUND: Duration = Duration::from_secs(5);

/// Retries `f` until it returns `Some` or [`PROPAGATION_BOUND`] passes;
/// returns the value and how long it took.
fn within_bound<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> (T, Duration) {
    let started = std::time::Instant::now();
    loop {
        if let Some(v) = f() {
            return (v, started.elapsed());
        }
        assert!(
            started.elapsed() < PROPAGATION_BOUND,
            "{what}: not seen within {PROPAGATION_BOUND:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

const PROPAGATE_CONFIG: &str = r#"
[[profiles]]
name = "default"
lifetime_days = 90
ekus = ["serverAuth", "clientAuth"]

[[profiles]]
name = "devices"
kind = "device"
lifetime_days = 30
ekus = ["clientAuth"]

[scep]

[[scep.profiles]]
path = "devices"
profile = "devices"
challenge = "s3cret-challenge"
"#;

fn curl_bytes(url: &str) -> Vec<u8> {
    let o = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "30", url])
        .output()
        .expect("curl");
    assert!(
        o.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// Issue 11: a change made through replica A is in force on replica B
/// within the documented bound: a CA created and activated through A
/// issues B's next certificate; a revocation through A turns B's OCSP
/// answer (fetched before, so B's cache was warm) to revoked; an API key
/// created through A works on B and, disabled through A, is refused on B;
/// both replicas hand out the same SCEP RA and CA (GetCACert).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_see_changes_through_each_other() {
    let db = fresh_database();
    let config = format!(
        "[storage]\nbackend = \"postgres\"\nurl = \"{db}\"\npool_size = 4\n{PROPAGATE_CONFIG}"
    );
    let env = Env::start_with_config("pg-propagate-a", &config).await;
    let a = &env.srv;
    let work_b = env.path().join("replica-b");
    std::fs::create_dir_all(&work_b).unwrap();
    let mut b = Server::new(&work_b, &env.dns.dns_addr());
    b.set_config(&config);
    // B validates http-01 against the same responder as A.
    b.h01_port = a.h01_port;
    b.extra = vec!["--kek-file".into(), a.kek_path().display().to_string()];
    blocking(|| b.start());
    let key = a.admin_key.clone();
    let on_a = |args: &[&str]| admin_as(a, &key, args, None).ok(&format!("A: admin {args:?}"));
    let on_b = |args: &[&str]| admin_as(&b, &key, args, None);
    assert_eq!(
        std::fs::read(a.root()).unwrap(),
        std::fs::read(b.root()).unwrap(),
        "one root for both replicas"
    );

    // SCEP: one RA and issuing CA, whichever replica answers.
    let scep_a = curl_bytes(&format!(
        "{}/scep/devices?operation=GetCACert",
        a.http_base_url()
    ));
    let scep_b = curl_bytes(&format!(
        "{}/scep/devices?operation=GetCACert",
        b.http_base_url()
    ));
    assert!(!scep_a.is_empty());
    assert_eq!(scep_a, scep_b, "GetCACert differs between the replicas");
    let ra_files = ["scep-ra.der", "scep-ra.key.sealed"];
    for f in ra_files {
        assert!(
            !a.data.join(f).exists() && !b.data.join(f).exists(),
            "{f} in a data dir"
        );
    }
    assert_eq!(
        blocking(|| psql(&db, "SELECT count(*) FROM settings WHERE name = 'scep-ra'")),
        "1"
    );

    // A new issuing CA, created and activated through A.
    let list = on_a(&["cas", "list"]);
    let root_id = list["cas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["parent"].is_null())
        .map(|c| c["id"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no root: {list:#}"));
    let created = on_a(&[
        "cas",
        "create",
        "--name",
        "Propagated Issuing CA",
        "--parent",
        &root_id,
        "--algorithm",
        "p256",
        "--validity-days",
        "365",
        "--path-len",
        "0",
    ]);
    let new_id = created["id"].as_str().unwrap().to_string();
    on_a(&["cas", "activate", &new_id]);
    let (_, took) = within_bound("activation on B", || {
        let list = on_b(&["cas", "list"]).ok("B: cas list");
        (issuing_in(&list)["id"] == new_id.as_str()).then_some(())
    });
    eprintln!("activation through A in force on B after {took:?}");
    let (acct_b, key_b) = new_account(&b).await;
    let c = issue(&acct_b, &env.h01, None, &[dns("from-b.pg.test")], None)
        .await
        .unwrap_or_else(|e| panic!("issue on B: {e}\n{}", b.log_tail()));
    let work = env.path().join("leaf");
    std::fs::create_dir_all(&work).unwrap();
    let leaf = work.join("leaf.pem");
    std::fs::write(&leaf, c.leaf_pem()).unwrap();
    let inter = work.join("inter.pem");
    std::fs::write(
        &inter,
        ironseal_conformance::certs::pem_blocks(&c.chain)
            .get(1)
            .cloned()
            .unwrap(),
    )
    .unwrap();
    let mut x = Command::new("openssl");
    x.args(["x509", "-noout", "-issuer", "-in", p(&leaf)]);
    let issuer = proc::run(x, Duration::from_secs(30)).combined();
    assert!(
        issuer.contains("Propagated Issuing CA"),
        "B issued from the old CA: {issuer}"
    );

    // Revoked through A; B's OCSP (warm cache) says revoked within the bound.
    let root = b.root();
    let ocsp_b = format!("{}/ocsp", b.http_base_url());
    let out = blocking(|| ocsp(&ocsp_b, &root, &inter, &leaf));
    assert!(out.contains(&format!("{}: good", p(&leaf))), "{out}");
    let out = blocking(|| ocsp(&ocsp_b, &root, &inter, &leaf));
    assert!(
        out.contains(&format!("{}: good", p(&leaf))),
        "cached: {out}"
    );
    // The account (in the store) revokes through A.
    let acct_a = account_from_key(a, &key_b).await;
    acct_a
        .revoke(&RevocationRequest {
            certificate: &CertificateDer::from(c.leaf_der.clone()),
            reason: Some(RevocationReason::KeyCompromise),
        })
        .await
        .unwrap_or_else(|e| panic!("revoke through A: {e}\n{}", a.log_tail()));
    let (_, took) = within_bound("revocation in B's OCSP", || {
        let out = ocsp(&ocsp_b, &root, &inter, &leaf);
        out.contains(&format!("{}: revoked", p(&leaf)))
            .then_some(())
    });
    eprintln!("revocation through A in B's OCSP after {took:?}");

    // An API key created through A works on B; disabled through A, refused on B.
    let k = on_a(&[
        "keys",
        "create",
        "--name",
        "replica test",
        "--role",
        "auditor",
    ]);
    let (k_id, k_key) = (k["id"].as_str().unwrap(), k["key"].as_str().unwrap());
    within_bound("new key on B", || {
        let r = b
            .call("GET", "/admin/v1/whoami", Some(k_key), None)
            .unwrap();
        (r.status == 200).then_some(())
    });
    on_a(&["keys", "delete", k_id]);
    within_bound("disabled key on B", || {
        let r = b
            .call("GET", "/admin/v1/whoami", Some(k_key), None)
            .unwrap();
        (r.status == 401).then_some(())
    });

    // Two activations racing through different replicas (issue 11:
    // compare-and-swap on the CA records): each reads the same pinned
    // issuing CA; the store lets one win and the other is 409 ca_changed,
    // or, if one ran after the other committed, the second retires the
    // first. Never two CAs that were pinned left active.
    let make = |name: &str| {
        on_a(&[
            "cas",
            "create",
            "--name",
            name,
            "--parent",
            &root_id,
            "--algorithm",
            "p256",
            "--validity-days",
            "365",
            "--path-len",
            "0",
        ])["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (x, y) = (make("Race X"), make("Race Y"));
    within_bound("both race CAs on B", || {
        let list = on_b(&["cas", "list"]).ok("B: cas list");
        let ids: Vec<&str> = list["cas"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["id"].as_str())
            .collect();
        (ids.contains(&x.as_str()) && ids.contains(&y.as_str())).then_some(())
    });
    let activate = |srv: &Server, id: &str| {
        srv.call(
            "POST",
            &format!("/admin/v1/cas/{id}/activate"),
            Some(&key),
            Some("{}"),
        )
        .unwrap()
    };
    let (rx, ry) = std::thread::scope(|scope| {
        let tx = scope.spawn(|| activate(a, &x));
        let ty = scope.spawn(|| activate(&b, &y));
        (tx.join().unwrap(), ty.join().unwrap())
    });
    let body =
        |r: &ironseal_conformance::client::Response| String::from_utf8_lossy(&r.body).to_string();
    for r in [&rx, &ry] {
        assert!(
            r.status == 200 || (r.status == 409 && body(r).contains("ca_changed")),
            "activation: {} {}",
            r.status,
            body(r)
        );
    }
    assert!(
        rx.status == 200 || ry.status == 200,
        "both activations refused"
    );
    let pinned = blocking(|| {
        psql(
            &db,
            "SELECT convert_from(value, 'UTF8') FROM settings WHERE name = 'issuing-ca'",
        )
    });
    let status_of = |list: &serde_json::Value, id: &str| {
        ca_in(list, id)["status"].as_str().unwrap().to_string()
    };
    let list = on_a(&["cas", "list"]);
    match (rx.status, ry.status) {
        (200, 409) => assert_eq!(pinned, x),
        (409, 200) => assert_eq!(pinned, y),
        _ => {
            // Both applied, one after the other: the first is retiring.
            let first = if pinned == x { &y } else { &x };
            assert!(pinned == x || pinned == y, "pin {pinned}");
            assert_eq!(status_of(&list, first), "retiring", "{list:#}");
        }
    }
    assert_eq!(status_of(&list, &new_id), "retiring", "{list:#}");
    eprintln!(
        "racing activations: A {} B {}, pinned {pinned}",
        rx.status, ry.status
    );
    within_bound("B issues from the pinned CA", || {
        let list = on_b(&["cas", "list"]).ok("B: cas list");
        (issuing_in(&list)["id"] == pinned.as_str()).then_some(())
    });

    // B counted its reloads.
    let metrics = curl_bytes(&format!("{}/metrics", b.http_base_url()));
    let metrics = String::from_utf8_lossy(&metrics);
    for kind in ["cas", "settings", "revocations"] {
        assert!(
            metrics.contains(&format!(
                "ironseal_store_change_reloads_total{{kind=\"{kind}\"}}"
            )),
            "no reload of {kind} counted:\n{metrics}"
        );
    }
}

/// Issue 11: two replicas started at the same moment on an empty database
/// create one hierarchy (one root and one issuing CA in the store, the
/// same root.pem in both data directories) and one admin key.
#[test]
fn simultaneous_first_starts_make_one_hierarchy() {
    let db = fresh_database();
    let config = format!("[storage]\nbackend = \"postgres\"\nurl = \"{db}\"\npool_size = 4\n");
    let dir = tempfile::tempdir().unwrap();
    // One KEK for both, made beforehand (as an operator distributes it).
    let kek = dir.path().join("shared.kek");
    let mut k = [0u8; 32];
    aws_lc_rs::rand::fill(&mut k).unwrap();
    {
        use base64::Engine as _;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&kek)
            .unwrap();
        std::io::Write::write_all(
            &mut f,
            base64::engine::general_purpose::STANDARD
                .encode(k)
                .as_bytes(),
        )
        .unwrap();
    }
    let mut servers: Vec<Server> = ["a", "b"]
        .iter()
        .map(|n| {
            let work = dir.path().join(n);
            std::fs::create_dir_all(&work).unwrap();
            let mut s = Server::without_dns(&work);
            s.set_config(&config);
            s.extra = vec!["--kek-file".into(), kek.display().to_string()];
            s
        })
        .collect();
    let barrier = std::sync::Barrier::new(servers.len());
    std::thread::scope(|scope| {
        for s in servers.iter_mut() {
            let barrier = &barrier;
            scope.spawn(move || {
                barrier.wait();
                s.try_start()
                    .unwrap_or_else(|e| panic!("start: {e}\n{}", s.log_tail()));
            });
        }
    });
    let roots: Vec<Vec<u8>> = servers
        .iter()
        .map(|s| std::fs::read(s.root()).unwrap())
        .collect();
    assert_eq!(roots[0], roots[1], "the replicas made different roots");
    assert_eq!(
        psql(&db, "SELECT count(*) FROM cas"),
        "2",
        "one root and one issuing CA"
    );
    assert_eq!(
        psql(&db, "SELECT count(*) FROM api_keys"),
        "1",
        "one first admin key"
    );
    assert_eq!(
        psql(
            &db,
            "SELECT count(*) FROM audit_log WHERE doc LIKE '%\"ca.create\"%'"
        ),
        "2"
    );
    // Both issue from it: the same issuing CA is pinned for both.
    let pin = psql(
        &db,
        "SELECT convert_from(value, 'UTF8') FROM settings WHERE name = 'issuing-ca'",
    );
    assert!(pin.starts_with("int-"), "pin {pin:?}");
}

/// `openssl crl -text` of a DER CRL: the serials it lists (normalised).
fn crl_serials(crl_der: &Path) -> std::collections::BTreeSet<String> {
    let mut c = Command::new("openssl");
    c.args([
        "crl",
        "-inform",
        "DER",
        "-noout",
        "-text",
        "-in",
        p(crl_der),
    ]);
    let out = proc::run(c, Duration::from_secs(30)).combined();
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("Serial Number:").map(norm_serial))
        .collect()
}

/// The `Responder Id:` line of `openssl ocsp -resp_text` output.
fn responder_id(out: &str) -> String {
    out.lines()
        .find_map(|l| l.trim().strip_prefix("Responder Id:"))
        .unwrap_or_else(|| panic!("no Responder Id in:\n{out}"))
        .trim()
        .to_string()
}

/// `openssl ocsp -resp_text` (no nonce: cacheable answer).
fn ocsp_text(url: &str, root: &Path, inter: &Path, leaf: &Path) -> String {
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
        "-resp_text",
        "-timeout",
        "20",
    ]);
    proc::run(c, Duration::from_secs(60)).combined()
}

/// Issue 11, leases: two replicas on one database (lease TTL 3 s).
///
/// * A validation running on A (its http-01 answer delayed) reads as
///   `processing` on B, never as interrupted, and B sees its outcome.
/// * Both serve the same CRL bytes under the same number, and the same
///   OCSP responder (one row per CA in `ocsp_responders`).
/// * A revocation through A is listed in the CRL served by B at once.
/// * SIGKILL of the replica holding the CRL lease: after the TTL the other
///   takes the lease over and serves a new CRL, with a higher number, that
///   lists a revocation made through it after the kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_crls_responders_and_processing_leases() {
    let db = fresh_database();
    let config = |id: &str| {
        format!(
            "[storage]\nbackend = \"postgres\"\nurl = \"{db}\"\npool_size = 4\n\
             lease_ttl_secs = 3\nreplica_id = \"{id}\"\n"
        )
    };
    let mut env = Env::start_with_config("pg-leases-a", &config("replica-a")).await;
    let work = env.path().join("leases");
    std::fs::create_dir_all(&work).unwrap();
    let work_b = env.path().join("replica-b");
    std::fs::create_dir_all(&work_b).unwrap();
    let mut b = Server::new(&work_b, &env.dns.dns_addr());
    b.set_config(&config("replica-b"));
    b.extra = vec![
        "--kek-file".into(),
        env.srv.kek_path().display().to_string(),
    ];
    blocking(|| b.start());
    let root = env.srv.root();
    let inter = work.join("inter.pem");

    // --- a validation in flight on A is in flight for B too
    let raw_a = env.raw().await;
    let raw_b = Raw::new(&b).await;
    let (acct, key) = env.account().await;
    let kid_a = acct.id().to_string();
    let kid_b = kid_a.replace(&env.srv.base_url(), &b.base_url());
    let order = raw_a
        .signed(
            &key,
            Some(&kid_a),
            &raw_a.url("newOrder"),
            Some(
                &serde_json::json!({"identifiers": [{"type": "dns", "value": "slow.leases.test"}]}),
            ),
        )
        .await;
    order.expect_status(201, "newOrder on A");
    let authz_a = order.json()["authorizations"][0]
        .as_str()
        .unwrap()
        .to_string();
    let authz_b = authz_a.replace(&env.srv.base_url(), &b.base_url());
    let az = raw_a
        .signed(&key, Some(&kid_a), &authz_a, None)
        .await
        .json();
    let ch = az["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "http-01")
        .unwrap()
        .clone();
    let token = ch["token"].as_str().unwrap();
    env.h01.set_delayed(
        token,
        &format!("{token}.{}", key.thumbprint()),
        Duration::from_secs(6),
    );
    let r = raw_a
        .signed(
            &key,
            Some(&kid_a),
            ch["url"].as_str().unwrap(),
            Some(&serde_json::json!({})),
        )
        .await;
    r.expect_status(200, "start the validation on A");
    assert_eq!(r.json()["status"], "processing", "{}", r.describe());
    let seen = raw_b.signed(&key, Some(&kid_b), &authz_b, None).await;
    seen.expect_status(200, "the authorization read on B");
    let seen = seen.json();
    assert_eq!(seen["status"], "pending", "B while A validates: {seen}");
    let ch_b = seen["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "http-01")
        .unwrap()
        .clone();
    assert_eq!(
        ch_b["status"], "processing",
        "B reported A's validation as interrupted: {seen}"
    );
    let held = blocking(|| {
        psql(
            &db,
            &format!(
                "SELECT holder FROM leases WHERE name = 'authz:{}'",
                authz_a.rsplit('/').next().unwrap()
            ),
        )
    });
    assert_eq!(held, "replica-a");
    // B waits for A's outcome (polling the lease), then shows it.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let v = raw_b
            .signed(&key, Some(&kid_b), &authz_b, None)
            .await
            .json();
        if v["status"] == "valid" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline && v["status"] == "pending",
            "the validation on A did not end valid as seen by B: {v}\n{}",
            env.srv.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // --- the same CRL and the same OCSP responder on both
    let leaf = issue_leaf(&env, &acct, "one.leases.test", &work).await;
    let second = issue_leaf(&env, &acct, "two.leases.test", &work).await;
    let crl_a = blocking(|| crl_dp(&leaf.pem));
    let crl_b = crl_a.replace(&env.srv.http_base_url(), &b.http_base_url());
    assert_ne!(crl_a, crl_b);
    let fetch_both = |tag: &str| {
        let fa = crl_fetch(&crl_a, &work);
        let fb = crl_fetch(&crl_b, &work);
        let (da, dbb) = (std::fs::read(&fa).unwrap(), std::fs::read(&fb).unwrap());
        assert_eq!(da, dbb, "{tag}: A and B serve different CRL bytes");
        (crl_number(&fa), crl_serials(&fa))
    };
    let (n0, listed) = blocking(|| fetch_both("start"));
    assert!(listed.is_empty(), "{listed:?}");
    let ocsp_a = format!("{}/ocsp", env.srv.http_base_url());
    let ocsp_b = format!("{}/ocsp", b.http_base_url());
    let out_a = blocking(|| ocsp_text(&ocsp_a, &root, &inter, &leaf.pem));
    let out_b = blocking(|| ocsp_text(&ocsp_b, &root, &inter, &leaf.pem));
    assert!(out_a.contains("Response verify OK"), "{out_a}");
    assert!(out_b.contains("Response verify OK"), "{out_b}");
    assert_eq!(
        responder_id(&out_a),
        responder_id(&out_b),
        "the replicas sign with different OCSP responders"
    );
    let responders = blocking(|| psql(&db, "SELECT count(*) FROM ocsp_responders"));
    let cas = blocking(|| psql(&db, "SELECT count(*) FROM cas"));
    assert_eq!(responders, cas, "one stored responder per CA");

    // --- revoke through A: B's next CRL lists it
    let admin_key = env.srv.admin_key.clone();
    let revoke = |srv: &Server, serial: &str| {
        let r = srv
            .call(
                "POST",
                &format!(
                    "/admin/v1/certificates/{}/revoke",
                    serial.to_ascii_lowercase()
                ),
                Some(&admin_key),
                Some(r#"{"reason":"keyCompromise"}"#),
            )
            .unwrap();
        assert_eq!(r.status, 200, "revoke {serial}: {}", r.describe());
    };
    blocking(|| revoke(&env.srv, &leaf.serial));
    let fb = blocking(|| crl_fetch(&crl_b, &work));
    let n1 = blocking(|| crl_number(&fb));
    assert!(n1 > n0, "CRL number {n1} after {n0}");
    assert!(
        blocking(|| crl_serials(&fb)).contains(&leaf.serial),
        "B's CRL misses the revocation made through A"
    );
    let (n1a, _) = blocking(|| fetch_both("after the revocation"));
    assert_eq!(n1a, n1);

    // --- SIGKILL the CRL lease holder; the survivor takes over
    let ca_id = crl_a
        .rsplit('/')
        .next()
        .unwrap()
        .trim_end_matches(".crl")
        .to_string();
    let holder = blocking(|| {
        psql(
            &db,
            &format!("SELECT holder FROM leases WHERE name = 'crl:{ca_id}'"),
        )
    });
    let (survivor, survivor_crl) = match holder.as_str() {
        "replica-a" => {
            blocking(|| env.srv.kill9());
            (&b, crl_b.clone())
        }
        "replica-b" => {
            blocking(|| b.kill9());
            (&env.srv, crl_a.clone())
        }
        other => panic!("CRL lease holder {other:?}"),
    };
    let killed_at = std::time::Instant::now();
    blocking(|| revoke(survivor, &second.serial));
    let deadline = killed_at + Duration::from_secs(30);
    let n2 = loop {
        let f = blocking(|| crl_fetch(&survivor_crl, &work));
        let n = blocking(|| crl_number(&f));
        if blocking(|| crl_serials(&f)).contains(&second.serial) {
            break n;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no CRL with the second revocation 30 s after the holder died (number {n})\n{}",
            survivor.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(n2 > n1, "CRL number {n2} after {n1}");
    assert!(
        killed_at.elapsed() >= Duration::from_secs(2),
        "taken over before the dead holder's lease could expire"
    );
    let now_holder = blocking(|| {
        psql(
            &db,
            &format!("SELECT holder FROM leases WHERE name = 'crl:{ca_id}'"),
        )
    });
    assert_ne!(now_holder, holder, "the lease did not move");
}

/// Issue 11: a validation that a killed replica left `processing` (its
/// lease gone) ends for a client that polls only the order, and a new
/// order for the same name does not reuse the stuck authorization.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_validations_end_on_the_order_and_are_not_reused() {
    let db = fresh_database();
    let config = format!("[storage]\nbackend = \"postgres\"\nurl = \"{db}\"\npool_size = 4\n");
    let env = Env::start_with_config("pg-interrupted", &config).await;
    let (acct, _) = env.account().await;
    let name = "stuck.pg.test";
    let mut order = acct
        .new_order(&instant_acme::NewOrder::new(&[dns(name)]))
        .await
        .unwrap();
    let stuck_url = order.state().authorizations[0].url.clone();
    let stuck_id = stuck_url.rsplit('/').next().unwrap().to_string();
    // What a replica killed mid-validation leaves behind: the challenge
    // `processing`, and no live lease for it.
    let changed = blocking(|| {
        psql(
            &db,
            &format!(
                "UPDATE authzs SET doc = jsonb_set(doc::jsonb, '{{challenges,0,status}}', \
                 '\"processing\"')::text WHERE id = '{stuck_id}'; \
                 SELECT count(*) FROM authzs WHERE id = '{stuck_id}' AND doc LIKE '%processing%'"
            ),
        )
    });
    assert!(
        changed.ends_with('1'),
        "authz not set processing: {changed}"
    );
    let st = order.refresh().await.map(|s| s.status);
    assert!(
        matches!(st, Ok(instant_acme::OrderStatus::Invalid)),
        "order over an interrupted validation: {st:?}"
    );
    // A new order for the name gets a new authorization and completes.
    let c = issue(&acct, &env.h01, None, &[dns(name)], None)
        .await
        .unwrap_or_else(|e| panic!("issue after the interruption: {e}\n{}", env.srv.log_tail()));
    let fresh = blocking(|| {
        psql(
            &db,
            &format!(
                "SELECT count(*) FROM authzs WHERE doc LIKE '%{name}%' AND id <> '{stuck_id}'"
            ),
        )
    });
    assert_eq!(fresh, "1", "the new order reused the stuck authorization");
    assert!(!c.leaf_der.is_empty());
}
