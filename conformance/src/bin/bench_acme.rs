//! ACME benchmark driver: runs N complete RFC 8555 orders with C concurrent
//! clients against a running ACME server and prints figures.
//!
//! This is a command, not a test ("performance is measured, not asserted").
//! `scripts/bench-acme.sh` runs it side by side against Pebble and ironseal;
//! `docs/benchmarks.md` defines every figure it prints.
//!
//! Each client owns one account (created before the timer starts; timed
//! separately) and its own HTTPS connection pool. Per order it does:
//! newOrder for one random name (`o<random>.<domain>`), fetch the authz, put the
//! http-01 key authorization in the shared map served by the driver's own
//! http-01 responder, POST the challenge, poll the order until `ready`,
//! finalize with a fresh P-256 CSR (rcgen), poll until `valid`, download the
//! certificate. Latency is measured from just before newOrder to the end of the
//! certificate download.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, RETRY_AFTER};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::{TokioExecutor, TokioIo};
use instant_acme::{
    Account, AuthorizationStatus, BodyWrapper, BytesResponse, ChallengeType, HttpClient,
    Identifier, NewAccount, NewOrder, Order, OrderStatus,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::time::Instant;

#[derive(Parser, Debug)]
#[command(
    name = "bench_acme",
    about = "Run N complete ACME orders with C concurrent clients against a running ACME server and print figures"
)]
struct Args {
    /// ACME directory URL (https://...)
    #[arg(long)]
    directory: String,
    /// PEM file with the CA certificate(s) to trust for the server's HTTPS
    #[arg(long)]
    ca_cert: PathBuf,
    /// Number of orders to complete
    #[arg(long, default_value_t = 1000)]
    orders: usize,
    /// Number of concurrent clients (one ACME account each)
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Port on 127.0.0.1 where the driver answers http-01 validation requests
    #[arg(long)]
    http01_port: u16,
    /// PID of the server under test: CPU from /proc/PID/stat, memory from
    /// /proc/PID/status. Several (comma-separated, e.g. the replicas
    /// behind a load balancer): their CPU and memory are summed
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// PID of a database's parent process (PostgreSQL's postmaster): CPU
    /// of it and its children (the backends) is reported as database CPU
    #[arg(long)]
    db_pid: Option<u32>,
    /// Hard cap on the run (account setup + orders), in seconds
    #[arg(long, default_value_t = 300)]
    max_seconds: u64,
    /// Abort the run when no order has finished for this many seconds (0 = never)
    #[arg(long, default_value_t = 10)]
    stall_seconds: u64,
    /// Label printed with the figures
    #[arg(long, default_value = "acme")]
    label: String,
    /// Poll interval (ms) when the server sends no Retry-After
    #[arg(long, default_value_t = 10)]
    poll_ms: u64,
    /// Upper bound (ms) on any poll sleep, including a server's Retry-After
    #[arg(long, default_value_t = 50)]
    poll_cap_ms: u64,
    /// Parent domain of the random order names (o<random>.<domain>)
    #[arg(long, default_value = "bench.test")]
    domain: String,
}

// ---------------------------------------------------------------------------
// HTTP client: hyper-rustls trusting --ca-cert, wrapped to count requests and
// to expose the last Retry-After (instant-acme keeps it private).

type Hyper = HyperClient<hyper_rustls::HttpsConnector<HttpConnector>, BodyWrapper<Bytes>>;

#[derive(Default)]
struct ClientStats {
    requests: AtomicU64,
    /// Responses that carried a Retry-After header.
    retry_after_seen: AtomicU64,
    /// Retry-After of the most recent response (each client is sequential, so
    /// "most recent" is the response to the request it just made).
    /// `Some(None)` = header present but not delay-seconds (an HTTP-date).
    last_retry_after: Mutex<Option<Option<Duration>>>,
}

struct BenchHttp {
    inner: Hyper,
    stats: Arc<ClientStats>,
}

impl HttpClient for BenchHttp {
    fn request(
        &self,
        req: Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let fut = self.inner.request(req);
        let stats = self.stats.clone();
        Box::pin(async move {
            let rsp = fut
                .await
                .map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            stats.requests.fetch_add(1, Ordering::Relaxed);
            let ra = rsp.headers().get(RETRY_AFTER).map(|v| {
                v.to_str()
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .map(Duration::from_secs)
            });
            if ra.is_some() {
                stats.retry_after_seen.fetch_add(1, Ordering::Relaxed);
            }
            if let Ok(mut slot) = stats.last_retry_after.lock() {
                *slot = ra;
            }
            Ok(BytesResponse::from(rsp))
        })
    }
}

fn tls_roots(path: &Path) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("parsing {}: {e}", path.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("adding root from {}: {e}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("no certificates in {}", path.display()));
    }
    Ok(roots)
}

fn hyper_client(roots: rustls::RootCertStore) -> Result<Hyper, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("rustls config: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // TCP_NODELAY: hyper-util's HttpConnector leaves Nagle on (so does
    // instant-acme's default client), which adds ~40 ms delayed-ACK stalls per
    // request on loopback and would swamp the server's own latency.
    let mut tcp = HttpConnector::new();
    tcp.set_nodelay(true);
    tcp.enforce_http(false);
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .enable_http2()
        .wrap_connector(tcp);
    Ok(HyperClient::builder(TokioExecutor::new()).build(https))
}

// ---------------------------------------------------------------------------
// http-01 responder: token -> key authorization.

type Tokens = Arc<RwLock<HashMap<String, String>>>;

async fn serve_http01(listener: TcpListener, tokens: Tokens, hits: Arc<AtomicU64>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let tokens = tokens.clone();
        let hits = hits.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let found = req
                    .uri()
                    .path()
                    .strip_prefix("/.well-known/acme-challenge/")
                    .and_then(|t| tokens.read().ok().and_then(|m| m.get(t).cloned()));
                hits.fetch_add(1, Ordering::Relaxed);
                async move {
                    let mut rsp = match found {
                        Some(ka) => Response::new(Full::new(Bytes::from(ka))),
                        None => {
                            let mut r = Response::new(Full::new(Bytes::from_static(b"not found")));
                            *r.status_mut() = StatusCode::NOT_FOUND;
                            r
                        }
                    };
                    rsp.headers_mut().insert(
                        CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static("text/plain"),
                    );
                    Ok::<_, Infallible>(rsp)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

// ---------------------------------------------------------------------------
// One order.

#[derive(Clone, Copy, Default)]
struct Phases {
    total: Duration,
    /// newOrder + authz fetch + challenge POST
    setup: Duration,
    /// challenge POST done -> order ready
    validation: Duration,
    /// CSR + finalize POST -> order valid
    issuance: Duration,
    /// certificate download
    download: Duration,
    polls: u32,
    requests: u64,
}

struct Poller {
    stats: Arc<ClientStats>,
    base: Duration,
    cap: Duration,
}

impl Poller {
    /// Sleep before the next poll: the server's Retry-After if it sent one,
    /// else the base interval; never more than the cap, never less than 1 ms.
    async fn pause(&self) {
        let ra = self.stats.last_retry_after.lock().ok().and_then(|g| *g);
        let d = match ra {
            Some(Some(d)) => d.min(self.cap),
            Some(None) => self.cap,
            None => self.base.min(self.cap),
        };
        tokio::time::sleep(d.max(Duration::from_millis(1))).await;
    }
}

/// An error with its whole `source()` chain (hyper's "client error (Connect)"
/// hides the TLS or socket cause one level down).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

fn err<E: std::error::Error + 'static>(stage: &'static str) -> impl FnOnce(E) -> String {
    move |e| format!("{stage}: {}", chain(&e))
}

struct TokenGuard<'a> {
    tokens: &'a Tokens,
    keys: Vec<String>,
}

impl Drop for TokenGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut m) = self.tokens.write() {
            for k in &self.keys {
                m.remove(k);
            }
        }
    }
}

async fn one_order(
    account: &Account,
    poller: &Poller,
    tokens: &Tokens,
    name: String,
) -> Result<Phases, String> {
    let req0 = poller.stats.requests.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let ids = [Identifier::Dns(name.clone())];
    let mut order: Order = account
        .new_order(&NewOrder::new(&ids))
        .await
        .map_err(err("newOrder"))?;

    let mut guard = TokenGuard {
        tokens,
        keys: Vec::new(),
    };
    {
        let mut authzs = order.authorizations();
        while let Some(authz) = authzs.next().await {
            let mut authz = authz.map_err(err("fetch authz"))?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                s => return Err(format!("authz in unexpected state {s:?}")),
            }
            let mut ch = authz
                .challenge(ChallengeType::Http01)
                .ok_or_else(|| "authz offers no http-01 challenge".to_string())?;
            let ka = ch.key_authorization();
            if let Ok(mut m) = tokens.write() {
                m.insert(ch.token.clone(), ka.as_str().to_owned());
            }
            guard.keys.push(ch.token.clone());
            ch.set_ready().await.map_err(err("POST challenge"))?;
        }
    }
    let t1 = Instant::now();

    // Poll the order until ready (first poll immediately: a synchronous
    // validator may already be done).
    let mut polls = 0u32;
    loop {
        let state = order.refresh().await.map_err(err("poll order"))?;
        polls += 1;
        match state.status {
            OrderStatus::Ready => break,
            OrderStatus::Pending => poller.pause().await,
            OrderStatus::Valid | OrderStatus::Processing => break,
            OrderStatus::Invalid => {
                return Err(format!(
                    "order invalid after challenge: {}",
                    state
                        .error
                        .as_ref()
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "no error detail".into())
                ))
            }
        }
    }
    drop(guard);
    let t2 = Instant::now();

    // Finalize with a fresh P-256 key.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(err("generate key"))?;
    let mut params = rcgen::CertificateParams::new(vec![name]).map_err(err("CSR params"))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key).map_err(err("CSR"))?;
    if order.state().status == OrderStatus::Ready {
        order
            .finalize_csr(csr.der())
            .await
            .map_err(err("finalize"))?;
    }
    loop {
        match order.state().status {
            OrderStatus::Valid => break,
            OrderStatus::Processing | OrderStatus::Ready => {
                poller.pause().await;
                order.refresh().await.map_err(err("poll order"))?;
                polls += 1;
            }
            s => {
                return Err(format!(
                    "order {s:?} after finalize: {}",
                    order
                        .state()
                        .error
                        .as_ref()
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "no error detail".into())
                ))
            }
        }
    }
    let t3 = Instant::now();

    let pem = order
        .certificate()
        .await
        .map_err(err("download certificate"))?
        .ok_or_else(|| "no certificate".to_string())?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err("downloaded certificate is not PEM".into());
    }
    let t4 = Instant::now();
    Ok(Phases {
        total: t4 - t0,
        setup: t1 - t0,
        validation: t2 - t1,
        issuance: t3 - t2,
        download: t4 - t3,
        polls,
        requests: poller.stats.requests.load(Ordering::Relaxed) - req0,
    })
}

// ---------------------------------------------------------------------------
// /proc sampling.

#[derive(Clone, Copy, Default)]
struct ProcSample {
    cpu_ticks: u64,
    rss_kb: u64,
    hwm_kb: u64,
}

fn proc_sample(pid: &str) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the ")" that closes comm: state(3) ... utime(14) stime(15).
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Some(ProcSample {
        cpu_ticks: utime + stime,
        rss_kb: kb("VmRSS:"),
        hwm_kb: kb("VmHWM:"),
    })
}

/// The sum over `pids` (None when any cannot be read).
fn sum_samples(pids: &[String]) -> Option<ProcSample> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().try_fold(ProcSample::default(), |acc, pid| {
        let s = proc_sample(pid)?;
        Some(ProcSample {
            cpu_ticks: acc.cpu_ticks + s.cpu_ticks,
            rss_kb: acc.rss_kb + s.rss_kb,
            hwm_kb: acc.hwm_kb + s.hwm_kb,
        })
    })
}

/// `pid` and its direct children (`/proc/PID/task/PID/children`), summed:
/// a PostgreSQL postmaster and its backends. A backend that exits between
/// two samples takes its CPU with it; pooled connections live on.
fn tree_sample(pid: u32) -> Option<ProcSample> {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    let mut pids = vec![pid.to_string()];
    pids.extend(children.split_whitespace().map(str::to_string));
    // Children may exit while we read: skip those instead of failing.
    Some(
        pids.iter()
            .filter_map(|p| proc_sample(p))
            .fold(ProcSample::default(), |acc, s| ProcSample {
                cpu_ticks: acc.cpu_ticks + s.cpu_ticks,
                rss_kb: acc.rss_kb + s.rss_kb,
                hwm_kb: acc.hwm_kb + s.hwm_kb,
            }),
    )
}

fn clk_tck() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|v| *v > 0.0)
        .unwrap_or(100.0)
}

// ---------------------------------------------------------------------------

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // aws-lc-rs is already linked (rustls provider); fall back to time on error.
    if aws_lc_rs::rand::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        return t;
    }
    u64::from_le_bytes(b)
}

/// Nearest-rank percentile of a sorted slice, in ms.
fn pct_ms(sorted: &[Duration], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let idx = rank.clamp(1, sorted.len()) - 1;
    Some(sorted[idx].as_secs_f64() * 1000.0)
}

fn mean_ms(v: impl Iterator<Item = Duration>) -> Option<f64> {
    let (mut sum, mut n) = (0.0, 0usize);
    for d in v {
        sum += d.as_secs_f64() * 1000.0;
        n += 1;
    }
    (n > 0).then(|| sum / n as f64)
}

fn fmt_opt(v: Option<f64>, prec: usize) -> String {
    match v {
        Some(x) => format!("{x:.prec$}"),
        None => "n/a".into(),
    }
}

struct Shared {
    next: AtomicUsize,
    failed: AtomicUsize,
    timed_out: AtomicUsize,
    /// ms after t0 at which the last order finished (completed or failed)
    progress_ms: AtomicU64,
    results: Mutex<Vec<Phases>>,
    errors: Mutex<Vec<String>>,
}

impl Shared {
    fn record_error(&self, e: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut errs) = self.errors.lock() {
            if errs.len() < 1000 {
                errs.push(e);
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    match run(args).await {
        Ok(all_ok) => std::process::exit(if all_ok { 0 } else { 1 }),
        Err(e) => {
            eprintln!("bench_acme: {e}");
            std::process::exit(2);
        }
    }
}

async fn run(args: Args) -> Result<bool, String> {
    if args.concurrency == 0 {
        return Err("--concurrency must be at least 1".into());
    }
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.max_seconds);
    let roots = tls_roots(&args.ca_cert)?;
    let tck = clk_tck();
    let server_pids: Vec<String> = args.server_pid.iter().map(u32::to_string).collect();
    let server_sample = || sum_samples(&server_pids);
    for pid in &server_pids {
        if proc_sample(pid).is_none() {
            return Err(format!("cannot read /proc/{pid}/stat and status"));
        }
    }
    let db_sample = || args.db_pid.and_then(tree_sample);

    // http-01 responder.
    let tokens: Tokens = Arc::new(RwLock::new(HashMap::new()));
    let hits = Arc::new(AtomicU64::new(0));
    let addr = SocketAddr::from(([127, 0, 0, 1], args.http01_port));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("binding http-01 responder on {addr}: {e}"))?;
    tokio::spawn(serve_http01(listener, tokens.clone(), hits.clone()));

    // Accounts (one per client), concurrently, before the timer.
    let srv_a0 = server_sample();
    let self_a0 = proc_sample("self");
    let ta0 = Instant::now();
    let mut setups = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        let stats = Arc::new(ClientStats::default());
        let http = BenchHttp {
            inner: hyper_client(roots.clone())?,
            stats: stats.clone(),
        };
        let dir = args.directory.clone();
        setups.push(tokio::spawn(async move {
            let (account, _creds) = Account::builder_with_http(Box::new(http))
                .create(
                    &NewAccount {
                        contact: &[],
                        terms_of_service_agreed: true,
                        only_return_existing: false,
                    },
                    dir,
                    None,
                )
                .await
                .map_err(err("newAccount"))?;
            Ok::<_, String>((account, stats))
        }));
    }
    let mut clients = Vec::with_capacity(args.concurrency);
    for h in setups {
        let r = tokio::time::timeout_at(deadline, h)
            .await
            .map_err(|_| "account creation hit --max-seconds".to_string())?
            .map_err(|e| format!("account task: {e}"))??;
        clients.push(r);
    }
    let accounts_secs = ta0.elapsed().as_secs_f64();
    let account_requests: u64 = clients
        .iter()
        .map(|(_, s)| s.requests.load(Ordering::Relaxed))
        .sum();

    // Timed phase.
    let srv0 = server_sample();
    let db0 = db_sample();
    let self0 = proc_sample("self");
    let hits0 = hits.load(Ordering::Relaxed);
    let all_stats: Vec<Arc<ClientStats>> = clients.iter().map(|(_, s)| s.clone()).collect();
    let ra_seen = || -> u64 {
        all_stats
            .iter()
            .map(|s| s.retry_after_seen.load(Ordering::Relaxed))
            .sum()
    };
    let ra0 = ra_seen();
    let run_tag = random_u64() % 1_000_000;
    let shared = Arc::new(Shared {
        next: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        timed_out: AtomicUsize::new(0),
        progress_ms: AtomicU64::new(0),
        results: Mutex::new(Vec::with_capacity(args.orders)),
        errors: Mutex::new(Vec::new()),
    });
    let t0 = Instant::now();
    // Stall watchdog: a server that stops answering (Pebble 2.4 can deadlock
    // under this load) ends the run instead of holding it to --max-seconds.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stalled_at: Arc<Mutex<Option<f64>>> = Arc::new(Mutex::new(None));
    let watchdog = (args.stall_seconds > 0).then(|| {
        let shared = shared.clone();
        let stalled_at = stalled_at.clone();
        let limit_ms = args.stall_seconds * 1000;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let now_ms = t0.elapsed().as_millis() as u64;
                if now_ms.saturating_sub(shared.progress_ms.load(Ordering::Relaxed)) > limit_ms {
                    if let Ok(mut s) = stalled_at.lock() {
                        *s = Some(shared.progress_ms.load(Ordering::Relaxed) as f64 / 1000.0);
                    }
                    let _ = stop_tx.send(true);
                    break;
                }
            }
        })
    });
    let mut workers = Vec::with_capacity(clients.len());
    for (account, stats) in clients {
        let shared = shared.clone();
        let tokens = tokens.clone();
        let domain = args.domain.clone();
        let n = args.orders;
        let mut stop_rx = stop_rx.clone();
        let poller = Poller {
            stats,
            base: Duration::from_millis(args.poll_ms),
            cap: Duration::from_millis(args.poll_cap_ms),
        };
        workers.push(tokio::spawn(async move {
            loop {
                if Instant::now() >= deadline || *stop_rx.borrow() {
                    break;
                }
                let i = shared.next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let name = format!("o{}{:06}.{domain}", i, run_tag);
                let outcome = tokio::select! {
                    r = tokio::time::timeout_at(deadline, one_order(&account, &poller, &tokens, name)) => r,
                    _ = stop_rx.wait_for(|stop| *stop) => {
                        shared.timed_out.fetch_add(1, Ordering::Relaxed);
                        shared.record_error("order cut off: run stalled (--stall-seconds)".into());
                        break;
                    }
                };
                shared
                    .progress_ms
                    .fetch_max(t0.elapsed().as_millis() as u64, Ordering::Relaxed);
                match outcome {
                    Ok(Ok(p)) => {
                        if let Ok(mut r) = shared.results.lock() {
                            r.push(p);
                        }
                    }
                    Ok(Err(e)) => shared.record_error(e),
                    Err(_) => {
                        shared.timed_out.fetch_add(1, Ordering::Relaxed);
                        shared.record_error("order cut off by --max-seconds".into());
                    }
                }
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    let wall = t0.elapsed().as_secs_f64();
    if let Some(w) = watchdog {
        w.abort();
    }
    let stalled = stalled_at.lock().ok().and_then(|s| *s);
    let srv1 = server_sample();
    let db1 = db_sample();
    let self1 = proc_sample("self");
    let hits1 = hits.load(Ordering::Relaxed);
    let retry_after_responses = ra_seen() - ra0;

    // Figures.
    let results = shared.results.lock().map(|r| r.clone()).unwrap_or_default();
    let completed = results.len();
    let failed = shared.failed.load(Ordering::Relaxed);
    let timed_out = shared.timed_out.load(Ordering::Relaxed);
    let not_started = args.orders.saturating_sub(completed + failed);
    let mut lat: Vec<Duration> = results.iter().map(|p| p.total).collect();
    lat.sort();
    let (p50, p90, p99) = (pct_ms(&lat, 50.0), pct_ms(&lat, 90.0), pct_ms(&lat, 99.0));
    let max = lat.last().map(|d| d.as_secs_f64() * 1000.0);
    let mean = mean_ms(lat.iter().copied());
    let ph_setup = mean_ms(results.iter().map(|p| p.setup));
    let ph_valid = mean_ms(results.iter().map(|p| p.validation));
    let ph_issue = mean_ms(results.iter().map(|p| p.issuance));
    let ph_dl = mean_ms(results.iter().map(|p| p.download));
    let per = |x: f64| (completed > 0).then(|| x / completed as f64);
    let req_per_order = per(results.iter().map(|p| p.requests).sum::<u64>() as f64);
    let polls_per_order = per(results.iter().map(|p| f64::from(p.polls)).sum::<f64>());
    let orders_per_s = (wall > 0.0).then(|| completed as f64 / wall);
    let http01_fetches = hits1 - hits0;

    let cpu_s = |a: Option<ProcSample>, b: Option<ProcSample>| match (a, b) {
        (Some(a), Some(b)) => Some(b.cpu_ticks.saturating_sub(a.cpu_ticks) as f64 / tck),
        _ => None,
    };
    let srv_cpu = cpu_s(srv0, srv1);
    let srv_cpu_accounts = cpu_s(srv_a0, srv0);
    let db_cpu = cpu_s(db0, db1);
    let db_cpu_ms_per_order = db_cpu.and_then(|c| per(c * 1000.0));
    let srv_cpu_ms_per_order = srv_cpu.and_then(|c| per(c * 1000.0));
    let self_cpu = cpu_s(self0, self1);
    let self_cpu_accounts = cpu_s(self_a0, self0);
    let self_cpu_ms_per_order = self_cpu.and_then(|c| per(c * 1000.0));
    let mb = |kb: u64| kb as f64 / 1024.0;
    let srv_peak = srv1.map(|s| mb(s.hwm_kb));
    let srv_final = srv1.map(|s| mb(s.rss_kb));
    let srv_before = srv0.map(|s| mb(s.rss_kb));

    let l = &args.label;
    println!("== bench_acme: {l} ==");
    println!("label                {l}");
    println!("directory            {}", args.directory);
    println!(
        "orders               {} requested, {completed} completed, {failed} failed ({timed_out} cut off by --max-seconds or a stall), {not_started} not started",
        args.orders
    );
    println!(
        "clients              {} concurrent, one account each",
        args.concurrency
    );
    println!(
        "accounts (untimed)   {} created in {accounts_secs:.3} s ({:.1} ms each, concurrent), {account_requests} requests, server CPU s {}",
        args.concurrency,
        accounts_secs * 1000.0 / args.concurrency as f64,
        fmt_opt(srv_cpu_accounts, 3)
    );
    println!("wall seconds         {wall:.3}");
    if let Some(at) = stalled {
        println!(
            "STALLED              no order finished for {} s after t={at:.3} s; run aborted (orders/s over the active part: {})",
            args.stall_seconds,
            fmt_opt((at > 0.0).then(|| completed as f64 / at), 1)
        );
    }
    println!("orders/s             {}", fmt_opt(orders_per_s, 1));
    println!(
        "latency ms           p50 {}  p90 {}  p99 {}  max {}  mean {}",
        fmt_opt(p50, 1),
        fmt_opt(p90, 1),
        fmt_opt(p99, 1),
        fmt_opt(max, 1),
        fmt_opt(mean, 1)
    );
    println!(
        "phase ms (mean)      order+authz+challenge {}  validation {}  finalize+issue {}  download {}",
        fmt_opt(ph_setup, 1),
        fmt_opt(ph_valid, 1),
        fmt_opt(ph_issue, 1),
        fmt_opt(ph_dl, 1)
    );
    println!(
        "requests/order       {} (order polls/order {}), http-01 fetches {http01_fetches}, responses with Retry-After {retry_after_responses}",
        fmt_opt(req_per_order, 1),
        fmt_opt(polls_per_order, 1)
    );
    println!(
        "server CPU s         {} total, {} ms/order",
        fmt_opt(srv_cpu, 2),
        fmt_opt(srv_cpu_ms_per_order, 2)
    );
    if args.server_pid.len() > 1 {
        println!(
            "server processes     {} (CPU and RSS summed)",
            args.server_pid.len()
        );
    }
    if args.db_pid.is_some() {
        println!(
            "database CPU s       {} total, {} ms/order (postmaster and backends)",
            fmt_opt(db_cpu, 2),
            fmt_opt(db_cpu_ms_per_order, 2)
        );
    }
    println!(
        "server RSS MB        peak (VmHWM) {}, final {}, before orders {}",
        fmt_opt(srv_peak, 1),
        fmt_opt(srv_final, 1),
        fmt_opt(srv_before, 1)
    );
    println!(
        "driver CPU s         {} total, {} ms/order (accounts {})",
        fmt_opt(self_cpu, 2),
        fmt_opt(self_cpu_ms_per_order, 2),
        fmt_opt(self_cpu_accounts, 2)
    );
    if let Ok(errs) = shared.errors.lock() {
        if !errs.is_empty() {
            let mut counts: Vec<(String, usize)> = Vec::new();
            for e in errs.iter() {
                match counts.iter_mut().find(|(m, _)| m == e) {
                    Some((_, c)) => *c += 1,
                    None => counts.push((e.clone(), 1)),
                }
            }
            counts.sort_by_key(|c| std::cmp::Reverse(c.1));
            println!(
                "errors               {} recorded, {} distinct messages, most frequent:",
                errs.len(),
                counts.len()
            );
            for (m, c) in counts.iter().take(5) {
                println!("  {c:>5}x             {m}");
            }
        }
    }
    let json = serde_json::json!({
        "bench": "acme",
        "label": l,
        "directory": args.directory,
        "orders": args.orders,
        "concurrency": args.concurrency,
        "completed": completed,
        "failed": failed,
        "timed_out": timed_out,
        "stalled": stalled.is_some(),
        "stalled_after_s": stalled,
        "not_started": not_started,
        "accounts_seconds": accounts_secs,
        "wall_seconds": wall,
        "orders_per_s": orders_per_s,
        "p50_ms": p50,
        "p90_ms": p90,
        "p99_ms": p99,
        "max_ms": max,
        "mean_ms": mean,
        "phase_setup_ms": ph_setup,
        "phase_validation_ms": ph_valid,
        "phase_issuance_ms": ph_issue,
        "phase_download_ms": ph_dl,
        "requests_per_order": req_per_order,
        "polls_per_order": polls_per_order,
        "http01_fetches": http01_fetches,
        "retry_after_responses": retry_after_responses,
        "server_cpu_s": srv_cpu,
        "server_cpu_ms_per_order": srv_cpu_ms_per_order,
        "server_cpu_accounts_s": srv_cpu_accounts,
        "server_peak_rss_mb": srv_peak,
        "server_processes": server_pids.len(),
        "db_cpu_s": db_cpu,
        "db_cpu_ms_per_order": db_cpu_ms_per_order,
        "server_final_rss_mb": srv_final,
        "server_rss_before_mb": srv_before,
        "driver_cpu_s": self_cpu,
        "driver_cpu_ms_per_order": self_cpu_ms_per_order,
    });
    println!("{json}");
    Ok(completed == args.orders)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_samples_are_summed_over_pids() {
        assert!(sum_samples(&[]).is_none(), "no PID: no figure");
        let me = std::process::id().to_string();
        let one = proc_sample(&me).unwrap_or_else(|| panic!("/proc/{me}"));
        let two = sum_samples(&[me.clone(), me.clone()]).unwrap_or_else(|| panic!("sum"));
        assert!(two.rss_kb >= one.rss_kb * 2 - 1024, "RSS summed");
        assert!(two.cpu_ticks >= one.cpu_ticks * 2, "CPU summed");
        // A PID that does not exist spoils the sum rather than hiding a replica.
        assert!(sum_samples(&[me, "4194305".into()]).is_none());
    }

    #[test]
    fn database_sample_covers_the_parent() {
        let me = std::process::id();
        let tree = tree_sample(me).unwrap_or_else(|| panic!("/proc/{me}/task/{me}/children"));
        let alone = proc_sample(&me.to_string()).unwrap_or_else(|| panic!("/proc/{me}"));
        assert!(tree.cpu_ticks >= alone.cpu_ticks);
        assert!(tree_sample(4_194_305).is_none(), "no such process");
    }
}
