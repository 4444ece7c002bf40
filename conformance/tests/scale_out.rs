//! Issue 11, "Proof with real parts": three ironseal replicas on one
//! PostgreSQL (a throwaway cluster of this test's own), behind HAProxy
//! balancing every request on its own (`conformance/src/replicas.rs`).
//!
//! 1. Consecutive requests on one connection land on every replica
//!    (their own `/metrics` count them).
//! 2. certbot (venv) and lego (Debian) issue, renew and revoke through the
//!    balancer, http-01 on one port every replica's VA dials.
//! 3. A bounded load (150 orders, 8 clients with an account each, our
//!    own ACME driver below) during which the replica that built the
//!    last CRL is SIGKILLed and PostgreSQL is restarted (`pg_ctl
//!    restart`); clients retry transient errors (transport errors, 5xx)
//!    as real clients do, and count them. Every 15th order replays the
//!    nonce of an answered request; every 10th certificate is revoked.
//! 4. Then: every downloaded certificate is in the store (psql), no serial
//!    repeats, one certificate per order, every replay was `badNonce`,
//!    OCSP and the CRL fetched from every surviving replica directly (not
//!    through HAProxy) report every revocation, and the CRL number kept
//!    increasing after the replica that built the last CRL was killed.
//!
//! Checks in parts 2–4 are collected and reported together, each under a
//! name, so a run shows every property that does not hold.
//!
//! Needs haproxy, PostgreSQL 15 (scripts/install-test-deps.sh,
//! scripts/pg-throwaway.sh install them), certbot in `IRONSEAL_VENV`,
//! lego, and the release binary:
//!
//! ```sh
//! cargo build --release -p ironseal
//! IRONSEAL_VENV=/work/main/.venv cargo test -p ironseal-conformance --test scale_out
//! ```

#![allow(clippy::unwrap_used, reason = "tests: a panic is a test failure")]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ironseal_conformance::certs;
use ironseal_conformance::clients::{Certbot, Lego};
use ironseal_conformance::prelude::*;
use ironseal_conformance::replicas::Replicas;
use serde_json::{json, Value};

const REPLICAS: usize = 3;
const ORDERS: usize = 150;
/// New orders one name may take after the outage ended its order.
const MAX_REORDERS: usize = 2;
/// At most this many orders of the load may need a new order: the ones in
/// flight on the killed replica or during the database restart.
const REORDER_BUDGET: usize = ORDERS / 10;

/// Whether an order's failure is one the chaos causes and a real client
/// answers with a new order: the server ended it with serverInternal
/// (issuance or validation interrupted, its write failed during the
/// restart) or it did not finish within the poll time.
fn needs_new_order(e: &str) -> bool {
    (e.contains(" invalid: ") && e.contains("serverInternal")) || e.contains(" still ")
}
const WORKERS: usize = 8;
/// Every REPLAY_EVERY-th order replays a nonce; every REVOKE_EVERY-th
/// certificate is revoked.
const REPLAY_EVERY: usize = 15;
const REVOKE_EVERY: usize = 10;
/// The whole load run, kill and restart included.
const LOAD_LIMIT: Duration = Duration::from_secs(240);
/// How long revocations may take to show on every replica (the lease
/// holder's CRL rebuild, generation polling).
const CONVERGE_LIMIT: Duration = Duration::from_secs(60);

/// Named checks, collected rather than fatal one by one.
#[derive(Default)]
struct Checks {
    failed: Vec<String>,
    passed: Vec<String>,
}

impl Checks {
    fn check(&mut self, name: &str, ok: bool, detail: impl FnOnce() -> String) {
        if ok {
            eprintln!("[scale-out] PASS {name}");
            self.passed.push(name.to_string());
        } else {
            let d = detail();
            eprintln!("[scale-out] FAIL {name}: {d}");
            self.failed.push(format!("{name}: {d}"));
        }
    }
}

// ---------------------------------------------------------------------------
// The load driver: a plain RFC 8555 client over the harness's HTTP client.
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Tally {
    /// Transport errors and 5xx answers a client retried.
    transient: AtomicUsize,
    /// badNonce on a fresh nonce (retried).
    bad_nonce_retries: AtomicUsize,
    replays: AtomicUsize,
    replays_refused: AtomicUsize,
    /// A second finalize of an order refused with orderNotReady (after a
    /// finalize whose answer was lost).
    refinalize_refused: AtomicUsize,
    completed: AtomicUsize,
    errors: Mutex<Vec<String>>,
    /// Orders the chaos ended (invalid with serverInternal, or not
    /// finished in time) that the client placed again.
    reorders: Mutex<Vec<String>>,
    /// Replays the server did not refuse with badNonce.
    replay_problems: Mutex<Vec<String>>,
}

/// One order's outcome.
#[derive(Clone)]
struct Got {
    order_id: String,
    serial: String,
    pem_chain: String,
    revoked: bool,
}

struct Client {
    http: HttpClient,
    dir: Value,
    key: AcctKey,
    kid: String,
    tally: Arc<Tally>,
}

fn transient(status: u16) -> bool {
    matches!(status, 500 | 502 | 503 | 504)
}

impl Client {
    async fn new(http: HttpClient, dir_url: &str, tally: Arc<Tally>) -> Result<Client, String> {
        let mut c = Client {
            http,
            dir: Value::Null,
            key: AcctKey::generate(),
            kid: String::new(),
            tally,
        };
        for _ in 0..20 {
            match c.http.get(dir_url).await {
                Ok(r) if r.status == 200 => {
                    c.dir = r.try_json()?;
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        let url = c.url("newAccount")?;
        let r = c
            .post(&url, Some(&json!({"termsOfServiceAgreed": true})), true)
            .await?
            .0;
        if r.status != 201 && r.status != 200 {
            return Err(format!("newAccount: {}", r.describe()));
        }
        c.kid = r.header("Location").ok_or("newAccount without Location")?;
        Ok(c)
    }

    fn url(&self, name: &str) -> Result<String, String> {
        self.dir[name]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("directory has no {name}"))
    }

    async fn nonce(&self) -> Result<String, String> {
        let url = self.url("newNonce")?;
        for _ in 0..60 {
            match self.http.request("HEAD", &url, &[], Vec::new()).await {
                Ok(r) if r.status == 200 => return r.nonce().ok_or("no Replay-Nonce".into()),
                Ok(r) if !transient(r.status) => return Err(format!("newNonce: {}", r.describe())),
                _ => {
                    self.tally.transient.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
        Err("newNonce: no answer for 15 s".into())
    }

    fn jws(&self, nonce: &str, url: &str, payload: Option<&Value>, jwk: bool) -> Value {
        let kid = (!jwk).then_some(self.kid.as_str());
        let pl = payload.map(|p| p.to_string()).unwrap_or_default();
        jws_with(&self.key, &header(&self.key, kid, Some(nonce), url), &pl)
    }

    async fn send(&self, url: &str, body: &Value) -> Result<Response, String> {
        self.http
            .request(
                "POST",
                url,
                &[("Content-Type", "application/jose+json")],
                body.to_string().into_bytes(),
            )
            .await
    }

    /// A signed POST (POST-as-GET when `payload` is None) with a fresh
    /// nonce, retried on transient errors; the answer and the nonce used.
    async fn post(
        &self,
        url: &str,
        payload: Option<&Value>,
        jwk: bool,
    ) -> Result<(Response, String), String> {
        let mut last = String::new();
        for _ in 0..60 {
            let nonce = self.nonce().await?;
            let body = self.jws(&nonce, url, payload, jwk);
            match self.send(url, &body).await {
                Ok(r) if transient(r.status) => last = r.describe(),
                Ok(r) if r.status == 400 && r.text().contains("badNonce") => {
                    // A fresh nonce refused: ironseal answers so when it
                    // cannot record the redemption (database down).
                    self.tally.bad_nonce_retries.fetch_add(1, Ordering::Relaxed);
                    last = r.describe();
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
                Ok(r) => return Ok((r, nonce)),
                Err(e) => last = e,
            }
            self.tally.transient.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(format!("POST {url}: still failing after 60 tries: {last}"))
    }

    /// Sends a POST-as-GET of `url` signed with an already used `nonce`:
    /// it must be refused with badNonce, on whichever replica it lands.
    async fn replay(&self, url: &str, nonce: &str) {
        self.tally.replays.fetch_add(1, Ordering::Relaxed);
        let body = self.jws(nonce, url, None, false);
        for _ in 0..40 {
            match self.send(url, &body).await {
                Ok(r) if transient(r.status) => {}
                Ok(r) if r.status == 400 && r.text().contains("badNonce") => {
                    self.tally.replays_refused.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Ok(r) => {
                    self.tally
                        .replay_problems
                        .lock()
                        .unwrap()
                        .push(format!("replayed nonce {nonce} on {url}: {}", r.describe()));
                    return;
                }
                Err(_) => {}
            }
            self.tally.transient.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        self.tally
            .replay_problems
            .lock()
            .unwrap()
            .push(format!("replay of {nonce}: no answer"));
    }

    /// POST-as-GET `order_url` until its status is one of `want`.
    async fn poll_order(&self, order_url: &str, want: &[&str]) -> Result<Value, String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (r, _) = self.post(order_url, None, false).await?;
            if r.status != 200 {
                return Err(format!("order {order_url}: {}", r.describe()));
            }
            let v = r.try_json()?;
            let st = v["status"].as_str().unwrap_or("");
            if want.contains(&st) {
                return Ok(v);
            }
            if st == "invalid" {
                return Err(format!("order {order_url} invalid: {v}"));
            }
            if Instant::now() > deadline {
                return Err(format!("order {order_url} still {st} after 60 s"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// newOrder → http-01 → finalize → download (→ revoke), retrying
    /// steps as a client does.
    async fn order(
        &self,
        name: &str,
        h01: &Http01,
        replay: bool,
        revoke: bool,
    ) -> Result<Got, String> {
        let (r, _) = self
            .post(
                &self.url("newOrder")?,
                Some(&json!({"identifiers": [{"type": "dns", "value": name}]})),
                false,
            )
            .await?;
        if r.status != 201 {
            return Err(format!("newOrder: {}", r.describe()));
        }
        let order_url = r.header("Location").ok_or("newOrder without Location")?;
        let o = r.try_json()?;
        let finalize = o["finalize"].as_str().ok_or("no finalize")?.to_string();
        for a in o["authorizations"].as_array().ok_or("no authorizations")? {
            let a = a.as_str().ok_or("authz url")?;
            let (r, _) = self.post(a, None, false).await?;
            let v = r.try_json()?;
            if v["status"] == "valid" {
                continue;
            }
            let ch = v["challenges"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == "http-01"))
                .ok_or_else(|| format!("no http-01 in {v}"))?;
            let token = ch["token"].as_str().ok_or("no token")?;
            h01.set(token, &format!("{token}.{}", self.key.thumbprint()));
            let (r, _) = self
                .post(ch["url"].as_str().ok_or("no url")?, Some(&json!({})), false)
                .await?;
            if r.status != 200 {
                return Err(format!("challenge: {}", r.describe()));
            }
        }
        self.poll_order(&order_url, &["ready", "processing", "valid"])
            .await?;
        let key = AcctKey::generate();
        let csr_der = csr(&[name.to_string()], &key.rcgen());
        let (r, _) = self
            .post(&finalize, Some(&json!({"csr": b64(&csr_der)})), false)
            .await?;
        if r.status == 403 && r.text().contains("orderNotReady") {
            // Only after a retried finalize whose first answer was lost.
            self.tally
                .refinalize_refused
                .fetch_add(1, Ordering::Relaxed);
        } else if r.status != 200 {
            return Err(format!("finalize: {}", r.describe()));
        }
        let v = self.poll_order(&order_url, &["valid"]).await?;
        let cert_url = v["certificate"].as_str().ok_or("no certificate URL")?;
        let (r, nonce) = self.post(cert_url, None, false).await?;
        if r.status != 200 {
            return Err(format!("certificate: {}", r.describe()));
        }
        let pem_chain = r.text();
        let leaf = certs::pem_blocks(&pem_chain)
            .into_iter()
            .next()
            .ok_or("no certificate in the download")?;
        let der = pem_to_der(&leaf);
        if replay {
            self.replay(&order_url, &nonce).await;
        }
        if revoke {
            let (r, _) = self
                .post(
                    &self.url("revokeCert")?,
                    Some(&json!({"certificate": b64(&der), "reason": 1})),
                    false,
                )
                .await?;
            // A retried revocation whose first answer was lost: alreadyRevoked.
            if r.status != 200 && !r.text().contains("alreadyRevoked") {
                return Err(format!("revokeCert: {}", r.describe()));
            }
        }
        Ok(Got {
            order_id: order_url.rsplit('/').next().unwrap_or("").to_string(),
            serial: der_serial(&der),
            pem_chain,
            revoked: revoke,
        })
    }
}

// ---------------------------------------------------------------------------
// Reading the replicas.
// ---------------------------------------------------------------------------

/// The highest CRL number each replica's log says it built ("CRLs built").
fn crl_builds(w: &Replicas) -> Vec<u64> {
    w.replicas
        .iter()
        .map(|s| {
            std::fs::read_to_string(s.log_path())
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("CRLs built"))
                .filter_map(|l| {
                    let v: Value = serde_json::from_str(l).ok()?;
                    v["fields"]["number"]
                        .as_u64()
                        .or_else(|| v["number"].as_u64())
                })
                .max()
                .unwrap_or(0)
        })
        .collect()
}

/// The CRL of replica `i` fetched from it directly: (number, serials).
fn replica_crl(
    w: &Replicas,
    i: usize,
    crl_path: &str,
    work: &Path,
) -> Result<(u64, Vec<String>), String> {
    let url = format!("{}{crl_path}", w.replicas[i].http_base_url());
    let r = ironseal_conformance::client::get(&url, None)?;
    if r.status != 200 {
        return Err(format!("GET {url}: {}", r.describe()));
    }
    let file = work.join(format!("crl-r{i}.der"));
    std::fs::write(&file, &r.body).map_err(|e| e.to_string())?;
    let o = run(
        "openssl",
        &["crl", "-inform", "DER", "-noout", "-text", "-in", p(&file)],
    );
    if !o.success() {
        return Err(o.describe());
    }
    let serials = o
        .stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Serial Number:").map(norm_serial))
        .collect();
    Ok((crl_number(&file), serials))
}

/// Writes a chain's leaf and intermediate to `dir`: (leaf, intermediate).
fn split_chain(dir: &Path, name: &str, chain: &str) -> (PathBuf, PathBuf) {
    let blocks = certs::pem_blocks(chain);
    let leaf = dir.join(format!("{name}.leaf.pem"));
    let inter = dir.join(format!("{name}.inter.pem"));
    std::fs::write(&leaf, &blocks[0]).unwrap();
    std::fs::write(&inter, &blocks[1]).unwrap();
    (leaf, inter)
}

/// `openssl ocsp` against replica `i` directly: the status word.
fn replica_ocsp(w: &Replicas, i: usize, leaf: &Path, inter: &Path) -> String {
    let o = run(
        "openssl",
        &[
            "ocsp",
            "-issuer",
            p(inter),
            "-cert",
            p(leaf),
            "-CAfile",
            p(&w.root()),
            "-verify_other",
            p(inter),
            "-url",
            &format!("{}/ocsp", w.replicas[i].http_base_url()),
            "-timeout",
            "10",
        ],
    );
    if !o.combined().contains("Response verify OK") {
        return format!("unverified ({})", o.combined().trim());
    }
    let prefix = format!("{}: ", leaf.display());
    o.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| o.combined())
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_behind_haproxy_survive_kill_and_db_restart() {
    let started = Instant::now();
    // A 10 s lease TTL (default 60): work in flight on the killed replica
    // is taken for interrupted within the clients' poll time.
    let mut w = blocking(|| Replicas::start("scale-out", REPLICAS, "lease_ttl_secs = 10\n"));
    let root = w.root();
    let mut checks = Checks::default();
    let work = w.path().join("checks");
    std::fs::create_dir_all(&work).unwrap();

    // 1. Per-request round robin: 30 newNonce on one keep-alive
    // connection reach every replica about equally.
    let before: Vec<u64> = (0..REPLICAS)
        .map(|i| w.acme_requests(i, Some("new-nonce")).unwrap())
        .collect();
    let http = HttpClient::trusting(&root).unwrap();
    let nonce_url = format!("https://localhost:{}/acme/new-nonce", w.port);
    for _ in 0..30 {
        let r = http
            .request("HEAD", &nonce_url, &[], Vec::new())
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.describe());
    }
    let per: Vec<u64> = (0..REPLICAS)
        .map(|i| w.acme_requests(i, Some("new-nonce")).unwrap() - before[i])
        .collect();
    eprintln!("[scale-out] 30 newNonce on one connection, per replica: {per:?}");
    assert!(
        per.iter().all(|n| (9..=11).contains(n)) && per.iter().sum::<u64>() == 30,
        "round robin per request: {per:?}\n{}",
        w.lb.log_tail(3000)
    );

    // 2. certbot and lego through the balancer.
    let dir_url = w.directory_url();
    let mgmt = w.dns.mgmt_url();
    let h01 = w.h01_port.to_string();
    let mut revoked_chains: Vec<(String, String)> = Vec::new(); // (name, chain PEM)
    let cb = Certbot::at(&w.path().join("certbot"), &dir_url, &root, &mgmt);
    let o = blocking(|| {
        cb.certonly(&[
            "--standalone",
            "--preferred-challenges",
            "http-01",
            "--http-01-address",
            "127.0.0.1",
            "--http-01-port",
            &h01,
            "--cert-name",
            "sc",
            "-d",
            "certbot.scale.test",
        ])
    });
    assert!(
        o.success(),
        "certbot certonly:\n{}\n{}",
        o.describe(),
        w.logs()
    );
    let live = cb.live("sc", "fullchain.pem");
    blocking(|| {
        certs::check_issued(
            &live,
            &["certbot.scale.test"],
            &root,
            &work.join("cb1"),
            &[],
        )
    });
    let serial1 = certs::serial_hex(&cb.live("sc", "cert.pem"));
    let o = blocking(|| {
        cb.run(&[
            "renew",
            "--cert-name",
            "sc",
            "--force-renewal",
            "--no-random-sleep-on-renew",
        ])
    });
    assert!(
        o.success(),
        "certbot renew:\n{}\n{}",
        o.describe(),
        w.logs()
    );
    let serial2 = certs::serial_hex(&cb.live("sc", "cert.pem"));
    assert_ne!(serial1, serial2, "certbot renew kept the certificate");
    let cert = cb.live("sc", "cert.pem");
    let o = blocking(|| {
        cb.run(&[
            "revoke",
            "--cert-path",
            p(&cert),
            "--reason",
            "keycompromise",
            "--no-delete-after-revoke",
        ])
    });
    assert!(
        o.success(),
        "certbot revoke:\n{}\n{}",
        o.describe(),
        w.logs()
    );
    revoked_chains.push((
        "certbot".into(),
        std::fs::read_to_string(cb.live("sc", "fullchain.pem")).unwrap(),
    ));

    let lego = Lego::at(&w.path().join("lego"), &dir_url, &root, &mgmt);
    let flags: Vec<String> = [
        "--http",
        "--http.port",
        &format!("127.0.0.1:{}", w.h01_port),
        "-d",
        "lego.scale.test",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let o = blocking(|| lego.run(&strs(&flags), "run", &[]));
    assert!(o.success(), "lego run:\n{}\n{}", o.describe(), w.logs());
    let crt = lego.cert_file("lego.scale.test");
    let l1 = certs::serial_hex(&crt);
    let o = blocking(|| {
        lego.run(
            &strs(&flags),
            "renew",
            &["--days", "100000", "--no-random-sleep"],
        )
    });
    assert!(o.success(), "lego renew:\n{}\n{}", o.describe(), w.logs());
    assert_ne!(
        l1,
        certs::serial_hex(&crt),
        "lego renew kept the certificate"
    );
    blocking(|| certs::check_issued(&crt, &["lego.scale.test"], &root, &work.join("lego1"), &[]));
    let o = blocking(|| lego.run(&strs(&flags), "revoke", &["--keep", "--reason", "1"]));
    assert!(o.success(), "lego revoke:\n{}\n{}", o.describe(), w.logs());
    revoked_chains.push(("lego".into(), std::fs::read_to_string(&crt).unwrap()));
    let crl_path = {
        let leaf = work.join("lego.leaf.pem");
        std::fs::write(&leaf, &certs::pem_blocks(&revoked_chains[1].1)[0]).unwrap();
        let dp = crl_dp(&leaf);
        dp.strip_prefix(&w.http_base_url())
            .unwrap_or_else(|| panic!("CRL DP {dp} does not name the balancer"))
            .to_string()
    };
    let spread: Vec<u64> = (0..REPLICAS)
        .map(|i| w.acme_requests(i, None).unwrap())
        .collect();
    eprintln!(
        "[scale-out] certbot and lego done at {:.0?}; ACME requests per replica: {spread:?}",
        started.elapsed()
    );

    // The CRL as every replica serves it now; the replica whose log shows
    // the highest CRL number built is "the replica that built the last
    // CRL" (with leases: the lease holder) and is the one killed.
    for i in 0..REPLICAS {
        let r = blocking(|| replica_crl(&w, i, &crl_path, &work));
        if let Err(e) = r {
            panic!("CRL of replica {i}: {e}");
        }
    }
    let builds = crl_builds(&w);
    let crl_before = builds.iter().copied().max().unwrap_or(0);
    let victim = builds
        .iter()
        .enumerate()
        .max_by_key(|(_, n)| **n)
        .map(|(i, _)| i)
        .unwrap();
    eprintln!("[scale-out] CRL numbers built per replica {builds:?}: killing replica {victim}");

    // 3. The load run.
    let responder = Http01::start(w.h01_port).await;
    let tally = Arc::new(Tally::default());
    let next = Arc::new(AtomicUsize::new(0));
    let got: Arc<Mutex<Vec<Got>>> = Arc::default();
    let mut clients = Vec::new();
    for _ in 0..WORKERS {
        let http = HttpClient::trusting(&root).unwrap();
        clients.push(
            Client::new(http, &dir_url, tally.clone())
                .await
                .unwrap_or_else(|e| panic!("account: {e}\n{}", w.logs())),
        );
    }
    let load_started = Instant::now();
    let mut workers = Vec::new();
    for c in clients {
        let (next, got, tally, h01) = (next.clone(), got.clone(), tally.clone(), responder.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= ORDERS || load_started.elapsed() > LOAD_LIMIT {
                    break;
                }
                let name = format!("o{i}.load.scale.test");
                let replay = i % REPLAY_EVERY == REPLAY_EVERY - 1;
                let revoke = i % REVOKE_EVERY == REVOKE_EVERY / 2;
                let mut attempts = 0;
                loop {
                    match c.order(&name, &h01, replay, revoke).await {
                        Ok(g) => {
                            got.lock().unwrap().push(g);
                            tally.completed.fetch_add(1, Ordering::Relaxed);
                        }
                        // An order the outage ended (serverInternal: "create
                        // a new order") or left unfinished: a client such as
                        // cert-manager places a new one. Nothing was issued
                        // for it (checked below with every other order).
                        Err(e) if attempts < MAX_REORDERS && needs_new_order(&e) => {
                            attempts += 1;
                            tally.reorders.lock().unwrap().push(format!("{name}: {e}"));
                            continue;
                        }
                        Err(e) => tally.errors.lock().unwrap().push(format!("{name}: {e}")),
                    }
                    break;
                }
            }
        }));
    }
    // The chaos: SIGKILL at a third, PostgreSQL restart at two thirds.
    let (mut killed, mut restarted) = (false, false);
    while workers.iter().any(|h| !h.is_finished()) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let done = tally.completed.load(Ordering::Relaxed);
        if !killed && done >= ORDERS / 3 {
            killed = true;
            blocking(|| w.replicas[victim].kill9());
            eprintln!(
                "[scale-out] SIGKILL replica {victim} after {done} orders ({:.1?})",
                load_started.elapsed()
            );
        }
        if killed && !restarted && done >= 2 * ORDERS / 3 {
            restarted = true;
            let t = Instant::now();
            blocking(|| w.pg.restart()).unwrap_or_else(|e| panic!("{e}"));
            eprintln!(
                "[scale-out] pg_ctl restart after {done} orders, took {:.1?}",
                t.elapsed()
            );
        }
    }
    for h in workers {
        h.await.unwrap();
    }
    let load_secs = load_started.elapsed().as_secs_f64();
    let got = got.lock().unwrap().clone();
    let errors = tally.errors.lock().unwrap().clone();
    eprintln!(
        "[scale-out] load: {} of {ORDERS} orders in {load_secs:.1} s, {} transient errors retried, {} badNonce retries, {} re-finalizes refused, {} replays ({} refused), {} errors{}",
        got.len(),
        tally.transient.load(Ordering::Relaxed),
        tally.bad_nonce_retries.load(Ordering::Relaxed),
        tally.refinalize_refused.load(Ordering::Relaxed),
        tally.replays.load(Ordering::Relaxed),
        tally.replays_refused.load(Ordering::Relaxed),
        errors.len(),
        errors.first().map(|e| format!(": first {e}")).unwrap_or_default()
    );
    checks.check(
        "chaos happened (kill, then PostgreSQL restart)",
        killed && restarted,
        || format!("killed {killed}, restarted {restarted}"),
    );
    let fresh_refused = tally.bad_nonce_retries.load(Ordering::Relaxed);
    checks.check(
        "no fresh nonce refused with badNonce (a database outage is serverInternal, RFC 8555 §6.5/§6.7)",
        fresh_refused == 0,
        || format!("{fresh_refused} fresh nonces refused with badNonce (see the replicas' \"nonce ledger: the store refused a redemption\" warnings)"),
    );
    checks.check(
        "every order completed (clients retrying)",
        got.len() == ORDERS && errors.is_empty(),
        || format!("{} of {ORDERS}; errors: {errors:#?}", got.len()),
    );
    let reorders = tally.reorders.lock().unwrap().clone();
    eprintln!(
        "[scale-out] {} orders placed again after the chaos ended them: {reorders:#?}",
        reorders.len()
    );
    checks.check(
        "few orders needed a new order (only those the kill or restart hit)",
        reorders.len() <= REORDER_BUDGET,
        || format!("{} > {REORDER_BUDGET}: {reorders:#?}", reorders.len()),
    );

    // 4. Invariants in the store.
    let rows = blocking(|| {
        w.psql("SELECT lower(serial) || ' ' || (doc::json->>'order_id') FROM certificates")
    });
    let mut stored: HashMap<String, Vec<String>> = HashMap::new(); // order id -> serials
    let mut stored_serials = HashSet::new();
    for l in rows.lines() {
        let (s, o) = l.split_once(' ').unwrap_or((l, ""));
        stored_serials.insert(norm_serial(s));
        stored
            .entry(o.to_string())
            .or_default()
            .push(norm_serial(s));
    }
    let missing: Vec<&String> = got
        .iter()
        .map(|g| &g.serial)
        .filter(|s| !stored_serials.contains(*s))
        .collect();
    checks.check(
        "every downloaded certificate is in the store",
        missing.is_empty(),
        || format!("{missing:?}"),
    );
    let mut seen = HashSet::new();
    let repeats: Vec<&String> = got
        .iter()
        .map(|g| &g.serial)
        .filter(|s| !seen.insert(*s))
        .collect();
    checks.check(
        "no serial repeats among downloads",
        repeats.is_empty(),
        || format!("{repeats:?}"),
    );
    let twice: Vec<(&String, &Vec<String>)> = stored
        .iter()
        .filter(|(o, s)| !o.is_empty() && s.len() > 1)
        .collect();
    checks.check(
        "no order finalized twice (one certificate per order)",
        twice.is_empty(),
        || format!("{twice:?}"),
    );
    let mismatched: Vec<String> = got
        .iter()
        .filter(|g| stored.get(&g.order_id) != Some(&vec![g.serial.clone()]))
        .map(|g| {
            format!(
                "order {} downloaded {} stored {:?}",
                g.order_id,
                g.serial,
                stored.get(&g.order_id)
            )
        })
        .collect();
    checks.check(
        "each order's stored certificate is the one downloaded",
        mismatched.is_empty(),
        || format!("{mismatched:?}"),
    );
    let replays = tally.replays.load(Ordering::Relaxed);
    let refused = tally.replays_refused.load(Ordering::Relaxed);
    let problems = tally.replay_problems.lock().unwrap().clone();
    checks.check(
        "every replayed nonce was refused with badNonce",
        replays > 0 && refused == replays && problems.is_empty(),
        || format!("{refused} of {replays} refused: {problems:?}"),
    );

    // OCSP and the CRL from every surviving replica, directly.
    for (g, n) in got.iter().filter(|g| g.revoked).zip(0..) {
        revoked_chains.push((format!("load{n}"), g.pem_chain.clone()));
    }
    // One more revocation made on one surviving replica directly (not
    // through the balancer): the others learn of it only through the
    // database.
    let survivors = w.alive();
    let direct = survivors[0];
    let direct_url = w.replicas[direct].directory_url();
    let c = Client::new(
        HttpClient::trusting(&root).unwrap(),
        &direct_url,
        tally.clone(),
    )
    .await
    .unwrap_or_else(|e| panic!("account on replica {direct}: {e}\n{}", w.logs()));
    let g = c
        .order("direct.scale.test", &responder, false, true)
        .await
        .unwrap_or_else(|e| panic!("order on replica {direct}: {e}\n{}", w.logs()));
    revoked_chains.push((format!("direct-r{direct}"), g.pem_chain.clone()));
    let revoked: Vec<(String, PathBuf, PathBuf)> = revoked_chains
        .iter()
        .map(|(name, chain)| {
            let (leaf, inter) = split_chain(&work, name, chain);
            (certs::serial_hex(&leaf), leaf, inter)
        })
        .collect();
    let want: HashSet<String> = revoked.iter().map(|(s, _, _)| norm_serial(s)).collect();
    let stored_revoked = blocking(|| w.psql("SELECT count(*) FROM certificates WHERE revoked"));
    checks.check(
        "every revocation is stored",
        stored_revoked.parse::<usize>().unwrap_or(0) >= want.len(),
        || {
            format!(
                "{stored_revoked} rows revoked, {} revocations made",
                want.len()
            )
        },
    );
    let deadline = Instant::now() + CONVERGE_LIMIT;
    let (mut crl_state, mut ocsp_state);
    loop {
        crl_state = Vec::new();
        ocsp_state = Vec::new();
        for &i in &survivors {
            match blocking(|| replica_crl(&w, i, &crl_path, &work)) {
                Ok((number, serials)) => {
                    let have: HashSet<String> = serials.into_iter().collect();
                    let lacking: Vec<&String> =
                        want.iter().filter(|s| !have.contains(*s)).collect();
                    crl_state.push((
                        i,
                        number,
                        lacking.len(),
                        format!(
                            "replica {i}: CRL number {number}, lacks {} of {}: {lacking:?}",
                            lacking.len(),
                            want.len()
                        ),
                    ));
                }
                Err(e) => crl_state.push((i, 0, want.len(), format!("replica {i}: {e}"))),
            }
            for (serial, leaf, inter) in &revoked {
                let st = blocking(|| replica_ocsp(&w, i, leaf, inter));
                if st != "revoked" {
                    ocsp_state.push(format!("replica {i}: {serial} is {st}"));
                }
            }
        }
        let converged = ocsp_state.is_empty()
            && crl_state
                .iter()
                .all(|(_, n, lacking, _)| *lacking == 0 && *n > crl_before);
        if converged || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    checks.check(
        "OCSP on every surviving replica reports every revocation",
        ocsp_state.is_empty(),
        || format!("{} answers not revoked: {ocsp_state:#?}", ocsp_state.len()),
    );
    checks.check(
        "the CRL on every surviving replica lists every revocation",
        crl_state.iter().all(|(_, _, lacking, _)| *lacking == 0),
        || format!("{:#?}", crl_state.iter().map(|c| &c.3).collect::<Vec<_>>()),
    );
    checks.check(
        "the CRL number kept increasing after its builder was killed",
        crl_state.iter().all(|(_, n, _, _)| *n > crl_before),
        || {
            format!(
                "before the kill: {crl_before} (built by replica {victim}); now: {:?}",
                crl_state.iter().map(|c| (c.0, c.1)).collect::<Vec<_>>()
            )
        },
    );
    let after = crl_builds(&w);
    eprintln!(
        "[scale-out] CRL numbers built per replica after the load: {after:?}; total {:.0?}",
        started.elapsed()
    );
    assert!(
        checks.failed.is_empty(),
        "{} of {} checks failed:\n{}\n--- logs ---\n{}",
        checks.failed.len(),
        checks.failed.len() + checks.passed.len(),
        checks.failed.join("\n"),
        w.logs()
    );
}
