//! Durability under SIGKILL: "everything acknowledged to a client is flushed
//! before the response goes out" (README), checked from outside.
//!
//! 8 concurrent instant-acme clients loop complete orders (http-01, finalize,
//! download) and revoke some of the certificates. Every download that
//! succeeded and every revocation that got 200 is recorded. After ~3 s of
//! load (and at least 20 downloads) the server is killed with SIGKILL while
//! orders are in flight, restarted on the same data dir and ports, and then:
//! every recorded certificate is downloadable again by its account from its
//! URL, byte-identical; every recorded revocation stands (on the CRL, ARI
//! window in the past); and orders after the restart never reuse a serial.
//! Two kill/restart cycles, then a final round of orders.
//!
//! Run: `cargo build --release -p ironseal && cargo test -p ironseal-conformance --test crash -- --nocapture`

#![allow(clippy::unwrap_used, reason = "tests: a panic is a test failure")]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use instant_acme::{Account, NewOrder, RevocationReason, RevocationRequest};
use ironseal_conformance::prelude::*;
use rustls_pki_types::CertificateDer;
use serde_json::Value;

const CLIENTS: usize = 8;
const KILLS: usize = 2;
const MIN_LOAD: Duration = Duration::from_secs(3);
const MIN_DOWNLOADS: usize = 20;

fn rand_below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    aws_lc_rs::rand::fill(&mut b).expect("rand");
    u64::from_le_bytes(b) % n
}

#[derive(Clone)]
struct Cert {
    worker: usize,
    serial: String,
    url: String,
    chain: String,
    leaf_pem: String,
}

#[derive(Default)]
struct Record {
    certs: Vec<Cert>,
    /// serial → worker
    revoked: BTreeMap<String, usize>,
    /// Every serial ever downloaded (to detect reuse).
    serials: BTreeSet<String>,
    dup_serials: Vec<String>,
    errors_by_round: BTreeMap<usize, usize>,
    /// Orders created but not (yet) downloaded: order URL → worker.
    open_orders: BTreeMap<String, usize>,
}

struct Worker {
    acct: Account,
    key: AcctKey,
}

async fn load_round(
    round: usize,
    workers: &Arc<Vec<Worker>>,
    h01: &Http01,
    rec: &Arc<Mutex<Record>>,
    stop: &Arc<AtomicBool>,
    downloads: &Arc<AtomicUsize>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut handles = Vec::new();
    for w in 0..CLIENTS {
        let workers = workers.clone();
        let h01 = h01.clone();
        let rec = rec.clone();
        let stop = stop.clone();
        let downloads = downloads.clone();
        handles.push(tokio::spawn(async move {
            let me = &workers[w];
            // Stagger the clients so the kill finds them in different phases
            // (newOrder, validation, finalize, download, revoke).
            tokio::time::sleep(Duration::from_millis(37 * w as u64 + rand_below(200))).await;
            let mut n = 0usize;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let name = format!("r{round}-w{w}-n{n}.crash.example.test");
                let idents = [dns(&name)];
                let mut order = match me.acct.new_order(&NewOrder::new(&idents)).await {
                    Ok(o) => o,
                    Err(_) => {
                        *rec.lock()
                            .unwrap()
                            .errors_by_round
                            .entry(round)
                            .or_default() += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let order_url = order.url().to_string();
                rec.lock().unwrap().open_orders.insert(order_url.clone(), w);
                match finish(&mut order, &h01, None, &idents, None).await {
                    Ok(c) => {
                        rec.lock().unwrap().open_orders.remove(&order_url);
                        let serial = der_serial(&c.leaf_der);
                        let leaf_pem = c.leaf_pem();
                        {
                            let mut r = rec.lock().unwrap();
                            if !r.serials.insert(serial.clone()) {
                                r.dup_serials.push(serial.clone());
                            }
                            r.certs.push(Cert {
                                worker: w,
                                serial: serial.clone(),
                                url: c.cert_url.clone(),
                                chain: c.chain.clone(),
                                leaf_pem,
                            });
                        }
                        downloads.fetch_add(1, Ordering::SeqCst);
                        // Revoke every third certificate.
                        if n.is_multiple_of(3) {
                            let der = CertificateDer::from(c.leaf_der.clone());
                            let req = RevocationRequest {
                                certificate: &der,
                                reason: Some(RevocationReason::CessationOfOperation),
                            };
                            if me.acct.revoke(&req).await.is_ok() {
                                rec.lock().unwrap().revoked.insert(serial, w);
                            }
                        }
                    }
                    Err(_) => {
                        *rec.lock()
                            .unwrap()
                            .errors_by_round
                            .entry(round)
                            .or_default() += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }));
    }
    handles
}

/// Every recorded certificate downloads byte-identical by its account; every
/// recorded revocation is on the CRL and has an ARI window in the past.
async fn verify(env: &Env, workers: &[Worker], rec: &Mutex<Record>, tag: &str) -> (usize, usize) {
    let raw = env.raw().await;
    let (certs, revoked) = {
        let r = rec.lock().unwrap();
        (r.certs.clone(), r.revoked.clone())
    };
    let mut bad = Vec::new();
    for c in &certs {
        let w = &workers[c.worker];
        match raw.try_signed(&w.key, w.acct.id(), &c.url, None).await {
            Ok(r) if r.status == 200 && r.body.as_ref() == c.chain.as_bytes() => {}
            Ok(r) => bad.push(format!("{} ({}): {}", c.serial, c.url, r.describe())),
            Err(e) => bad.push(format!("{} ({}): {e}", c.serial, c.url)),
        }
    }
    assert!(
        bad.is_empty(),
        "{tag}: {} of {} acknowledged certificates are lost or changed after SIGKILL:\n{}\n{}",
        bad.len(),
        certs.len(),
        bad.join("\n"),
        env.srv.log_tail()
    );
    // Orders that were in flight at the kill must not be stuck: after a
    // restart nothing is issuing or validating for them, so they must not
    // stay `processing` (nor their challenges `processing`) forever.
    let open: Vec<(String, usize)> = rec
        .lock()
        .unwrap()
        .open_orders
        .clone()
        .into_iter()
        .collect();
    let mut stuck = Vec::new();
    let mut states: BTreeMap<String, usize> = BTreeMap::new();
    for (url, w) in &open {
        let wk = &workers[*w];
        let mut o = Value::Null;
        // Give a legitimately running issuance (none after a restart) a moment.
        for _ in 0..10 {
            o = match raw.try_signed(&wk.key, wk.acct.id(), url, None).await {
                Ok(r) if r.status == 200 => r.json(),
                Ok(r) => panic!(
                    "{tag}: open order {url} unreadable after restart: {}",
                    r.describe()
                ),
                Err(e) => panic!("{tag}: open order {url}: {e}"),
            };
            if o["status"] != "processing" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        *states
            .entry(o["status"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
        if o["status"] == "processing" {
            stuck.push(format!("order {url} still processing: {o}"));
        }
        if o["status"] == "pending" {
            for az in o["authorizations"].as_array().cloned().unwrap_or_default() {
                let a = raw
                    .try_signed(&wk.key, wk.acct.id(), az.as_str().unwrap(), None)
                    .await
                    .map(|r| r.json())
                    .unwrap_or(Value::Null);
                if a["challenges"]
                    .as_array()
                    .is_some_and(|cs| cs.iter().any(|c| c["status"] == "processing"))
                {
                    stuck.push(format!(
                        "authz {az} has a challenge stuck in processing: {a}"
                    ));
                }
            }
        }
    }
    eprintln!(
        "[crash] {tag}: {} orders were open (in flight) at the kill; now {states:?}",
        open.len()
    );
    assert!(
        stuck.is_empty(),
        "{tag}: interrupted work stuck after restart:\n{}",
        stuck.join("\n")
    );
    rec.lock().unwrap().open_orders.clear();

    if !revoked.is_empty() {
        let work = env.path().join(format!("verify-{tag}"));
        std::fs::create_dir_all(&work).unwrap();
        let first = certs
            .iter()
            .find(|c| revoked.contains_key(&c.serial))
            .unwrap();
        let leaf = work.join("leaf.pem");
        std::fs::write(&leaf, &first.leaf_pem).unwrap();
        let crl_url = blocking(|| crl_dp(&leaf));
        let (on_crl, text) = blocking(|| crl_serials(&crl_url, &work));
        let on_crl: BTreeSet<String> = on_crl.into_iter().collect();
        let missing: Vec<&String> = revoked.keys().filter(|s| !on_crl.contains(*s)).collect();
        assert!(
            missing.is_empty(),
            "{tag}: acknowledged revocations missing from the CRL after SIGKILL: {missing:?}\n{text}"
        );
        let now = time::OffsetDateTime::now_utc();
        for c in certs.iter().filter(|c| revoked.contains_key(&c.serial)) {
            let cid = cert_id_of(&c.leaf_pem, &work);
            let (_, end, _) = ari(&raw, &cid).await;
            assert!(
                end < now,
                "{tag}: revoked {} has ARI window ending {end}",
                c.serial
            );
        }
    }
    (certs.len(), revoked.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_load_loses_nothing_acknowledged() {
    let mut env = Env::start("crash").await;
    let mut ws = Vec::new();
    for _ in 0..CLIENTS {
        let (acct, key) = env.account().await;
        ws.push(Worker { acct, key });
    }
    let workers = Arc::new(ws);
    let rec: Arc<Mutex<Record>> = Arc::default();
    let mut side_acct = Some(env.account().await.0);
    let mut side_checks: Vec<(String, AcctKey, String)> = Vec::new();
    let mut summary = Vec::new();

    for round in 0..=KILLS {
        let stop = Arc::new(AtomicBool::new(false));
        let downloads = Arc::new(AtomicUsize::new(0));
        let before = rec.lock().unwrap().certs.len();
        let started = Instant::now();
        let handles = load_round(round, &workers, &env.h01, &rec, &stop, &downloads).await;
        // Load until ≥3 s and ≥20 downloads in this round (bounded at 120 s).
        while started.elapsed() < MIN_LOAD || downloads.load(Ordering::SeqCst) < MIN_DOWNLOADS {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "round {round}: only {} downloads in 120 s\n{}",
                downloads.load(Ordering::SeqCst),
                env.srv.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if round < KILLS {
            // A random extra moment so the kill does not land on a fixed phase.
            tokio::time::sleep(Duration::from_millis(rand_below(700))).await;
        }
        if round < KILLS {
            // Account changes acknowledged just before the kill must survive too:
            // a key rollover and a contact update on a side account.
            let mut side = side_acct.take().expect("side account");
            let creds = side.update_key().await.expect("keyChange before kill");
            let contact = format!("mailto:round{round}@crash.example.test");
            side.update_contacts(&[contact.as_str()])
                .await
                .expect("contact update before kill");
            side_checks.push((
                side.id().to_string(),
                AcctKey::from_pkcs8(creds.private_key().secret_pkcs8_der()),
                contact,
            ));
            side_acct = Some(side);
        }
        if round < KILLS {
            // SIGKILL with the workers still running: orders are in flight.
            blocking(|| env.srv.kill9());
            let in_round = downloads.load(Ordering::SeqCst);
            eprintln!(
                "[crash] round {round}: SIGKILL after {:.1}s, {in_round} downloads this round",
                started.elapsed().as_secs_f64()
            );
        }
        stop.store(true, Ordering::SeqCst);
        for h in handles {
            tokio::time::timeout(Duration::from_secs(90), h)
                .await
                .expect("worker did not stop")
                .expect("worker panicked");
        }
        let (errs, dups) = {
            let r = rec.lock().unwrap();
            (
                r.errors_by_round.get(&round).copied().unwrap_or(0),
                r.dup_serials.clone(),
            )
        };
        assert!(dups.is_empty(), "serials issued twice: {dups:?}");
        let after = rec.lock().unwrap().certs.len();
        if round < KILLS {
            blocking(|| env.srv.start());
            eprintln!("[crash] restarted (start #{})", env.srv.starts);
        }
        let (certs, revs) = verify(&env, &workers, &rec, &format!("round{round}")).await;
        if let Some((kid, key, contact)) = side_checks.last() {
            let raw = env.raw().await;
            let r = raw
                .try_signed(key, kid, kid, None)
                .await
                .expect("side account");
            assert_eq!(
                r.status,
                200,
                "round {round}: rolled-over key lost after SIGKILL: {}",
                r.describe()
            );
            assert_eq!(
                r.json()["contact"],
                serde_json::json!([contact]),
                "round {round}: contact update lost"
            );
        }
        let line = format!(
            "round {round}: {} new downloads, {} failed orders (in-flight at kill or reconnecting), \
             total verified {certs} certificates and {revs} revocations{}",
            after - before,
            errs,
            if round < KILLS {
                " after SIGKILL + restart"
            } else {
                " (no kill; post-restart serials unique)"
            }
        );
        eprintln!("[crash] {line}");
        summary.push(line);
    }
    let r = rec.lock().unwrap();
    assert_eq!(r.serials.len(), r.certs.len(), "duplicate serials");
    eprintln!(
        "[crash] SUMMARY: {} kills, {} certificates downloaded and re-verified, {} revocations re-verified, 0 duplicate serials\n{}",
        KILLS,
        r.certs.len(),
        r.revoked.len(),
        summary.join("\n")
    );
    // Keep `env` alive (and mutable) until here.
    let _ = &mut env;
}
