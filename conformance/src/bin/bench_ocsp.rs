//! OCSP benchmark driver. A command, not a test: `scripts/bench-ocsp.sh`
//! runs it against ironseal, `openssl ocsp` and a fixed-body server, and
//! `docs/benchmarks.md` ("OCSP responder") defines the figures.
//!
//! Subcommands:
//!
//! - `issue`: K certificates for the IP identifier 127.0.0.1 from an ACME
//!   server (instant-acme, http-01 answered by a built-in responder), written
//!   as `leaf{i}.pem` plus `inter.pem` into `--out`.
//! - `fixed`: a trivial HTTP/1.1 server (hyper, like ironseal's) that answers
//!   every request with the bytes of one file: the ceiling for a given client.
//! - `requests`: OCSP requests (RFC 6960 §4.1.1, one SHA-1 CertID each, as
//!   RFC 5019 §2.1.1 clients send them, optionally with a fresh RFC 8954
//!   nonce each) for the serials in a file and/or the given certificates,
//!   under one issuer certificate; written one base64 DER per line.
//!   `scripts/bench-scale.sh` uses it for thousands of seeded serials.
//! - `load`: sends requests for `--seconds` (or until `--max-requests`) over
//!   `--connections` concurrent connections, either keep-alive or a new TCP
//!   connection per request (`--new-connection`, with `Connection: close`):
//!   GET of `--url`, POST of the `--body` files, or the requests of a
//!   `--requests` file as POST bodies or (`--get`) as RFC 6960 Appendix A.1
//!   GET paths under `--url`. Several requests are used round-robin over all
//!   connections (one shared counter), so `--max-requests` = the number of
//!   requests sends each exactly once. It counts HTTP 200 answers with a
//!   non-empty body whose first byte is a DER SEQUENCE (0x30), and prints
//!   responses/s, latency percentiles and errors, then one machine-readable
//!   `RESULT` line.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONNECTION, CONTENT_TYPE, HOST};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use tokio::net::{TcpListener, TcpStream};

#[derive(Parser, Debug)]
#[command(
    name = "bench_ocsp",
    about = "OCSP benchmark driver (see docs/benchmarks.md)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Issue certificates for 127.0.0.1 through ACME (http-01).
    Issue {
        /// ACME directory URL
        #[arg(long)]
        directory: String,
        /// PEM trust root for the ACME server's HTTPS
        #[arg(long)]
        ca_cert: PathBuf,
        /// Port the server connects to for http-01 (its --test-http01-port)
        #[arg(long)]
        http01_port: u16,
        /// Number of certificates
        #[arg(long, default_value_t = 3)]
        count: usize,
        /// Output directory
        #[arg(long)]
        out: PathBuf,
    },
    /// Serve one file's bytes to every request.
    Fixed {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        file: PathBuf,
    },
    /// Write OCSP requests (one base64 DER per line) for serials under an issuer.
    Requests {
        /// PEM certificate of the CA that issued the serials
        #[arg(long)]
        issuer: PathBuf,
        /// File with one hex serial per line
        #[arg(long)]
        serials: Option<PathBuf>,
        /// Certificates (PEM) whose serials to add
        #[arg(long)]
        cert: Vec<PathBuf>,
        /// Give every request its own random nonce (RFC 8954)
        #[arg(long)]
        nonce: bool,
        /// Output file
        #[arg(long)]
        out: PathBuf,
    },
    /// Generate load and print figures.
    Load {
        /// Label for the RESULT line
        #[arg(long)]
        name: String,
        /// Target URL (http://127.0.0.1:PORT/path)
        #[arg(long)]
        url: String,
        /// POST these DER request bodies (round-robin); GET when absent
        #[arg(long)]
        body: Vec<PathBuf>,
        /// Requests file from `requests` (one base64 DER per line), used round-robin
        #[arg(long, conflicts_with = "body")]
        requests: Option<PathBuf>,
        /// With --requests: send them as GET /<url path>/<percent-encoded base64>
        #[arg(long, requires = "requests")]
        get: bool,
        /// Concurrent connections
        #[arg(long, default_value_t = 16)]
        connections: usize,
        /// New TCP connection for every request (Connection: close)
        #[arg(long)]
        new_connection: bool,
        /// Stop after this many seconds
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Stop after this many responses
        #[arg(long, default_value_t = 2_000_000)]
        max_requests: u64,
        /// Client runtime worker threads
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let threads = match &cli.cmd {
        Cmd::Load { threads, .. } => (*threads).max(1),
        _ => 2,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cli.cmd {
            Cmd::Issue {
                directory,
                ca_cert,
                http01_port,
                count,
                out,
            } => issue(&directory, ca_cert, http01_port, count, out).await,
            Cmd::Fixed { listen, file } => fixed(listen, file).await,
            Cmd::Requests {
                issuer,
                serials,
                cert,
                nonce,
                out,
            } => requests(&issuer, serials.as_deref(), &cert, nonce, &out),
            Cmd::Load {
                name,
                url,
                body,
                requests,
                get,
                connections,
                new_connection,
                seconds,
                max_requests,
                ..
            } => {
                load(LoadSpec {
                    name,
                    url,
                    bodies: body,
                    requests,
                    get,
                    connections,
                    new_connection,
                    seconds,
                    max_requests,
                })
                .await
            }
        }
    })
}

// ---------------------------------------------------------------------------
// issue
// ---------------------------------------------------------------------------

type Tokens = Arc<Mutex<HashMap<String, String>>>;

async fn http01_responder(port: u16, tokens: Tokens) -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tokens = tokens.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let tokens = tokens.clone();
                    async move {
                        let tok = req
                            .uri()
                            .path()
                            .strip_prefix("/.well-known/acme-challenge/")
                            .unwrap_or("")
                            .to_string();
                        let body = tokens
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get(&tok)
                            .cloned();
                        let resp = match body {
                            Some(b) => Response::new(Full::new(Bytes::from(b))),
                            None => {
                                let mut r = Response::new(Full::new(Bytes::new()));
                                *r.status_mut() = StatusCode::NOT_FOUND;
                                r
                            }
                        };
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(())
}

async fn issue(
    directory: &str,
    ca_cert: PathBuf,
    http01_port: u16,
    count: usize,
    out: PathBuf,
) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&out)?;
    let tokens: Tokens = Arc::default();
    http01_responder(http01_port, tokens.clone()).await?;
    let (acct, _) = Account::builder_with_root(&ca_cert)?
        .create(
            &NewAccount {
                contact: &[],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            directory.to_string(),
            None,
        )
        .await?;
    let retry = RetryPolicy::new()
        .initial_delay(Duration::from_millis(50))
        .backoff(1.5)
        .timeout(Duration::from_secs(30));
    let idents = [Identifier::Ip("127.0.0.1".parse()?)];
    for i in 0..count {
        let mut order = acct.new_order(&NewOrder::new(&idents)).await?;
        let mut auths = order.authorizations();
        while let Some(a) = auths.next().await {
            let mut a = a?;
            if a.status != AuthorizationStatus::Pending {
                continue;
            }
            let mut ch = a
                .challenge(ChallengeType::Http01)
                .ok_or("no http-01 challenge")?;
            tokens.lock().unwrap_or_else(|e| e.into_inner()).insert(
                ch.token.clone(),
                ch.key_authorization().as_str().to_string(),
            );
            ch.set_ready().await?;
        }
        let status = order.poll_ready(&retry).await?;
        if status != OrderStatus::Ready {
            return Err(format!("order {i} became {status:?}").into());
        }
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.subject_alt_names = vec![rcgen::SanType::IpAddress("127.0.0.1".parse()?)];
        let csr = params.serialize_request(&key)?;
        order.finalize_csr(csr.der()).await?;
        let chain = order.poll_certificate(&retry).await?;
        let blocks: Vec<&str> = chain
            .split_inclusive("-----END CERTIFICATE-----")
            .map(str::trim)
            .filter(|b| b.contains("BEGIN CERTIFICATE"))
            .collect();
        let leaf = blocks.first().ok_or("empty chain")?;
        std::fs::write(out.join(format!("leaf{i}.pem")), format!("{leaf}\n"))?;
        if i == 0 {
            let inter = blocks.get(1).ok_or("chain without intermediate")?;
            std::fs::write(out.join("inter.pem"), format!("{inter}\n"))?;
        }
    }
    println!("issued {count} certificates into {}", out.display());
    Ok(())
}

// ---------------------------------------------------------------------------
// requests
// ---------------------------------------------------------------------------

/// One DER TLV (definite length, long form when needed).
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// `AlgorithmIdentifier` of SHA-1 (OID 1.3.14.3.2.26, NULL parameters), as
/// `openssl ocsp` writes it.
const SHA1_ALG_ID: &[u8] = &[
    0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00,
];
/// DER of the OID id-pkix-ocsp-nonce (1.3.6.1.5.5.7.48.1.2).
const NONCE_OID: &[u8] = &[
    0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02,
];

/// An `OCSPRequest` (RFC 6960 §4.1.1) for one serial (INTEGER content
/// octets), with an RFC 8954 nonce extension when `nonce` is given.
fn ocsp_request(name_hash: &[u8], key_hash: &[u8], serial: &[u8], nonce: Option<&[u8]>) -> Vec<u8> {
    let mut cert_id = SHA1_ALG_ID.to_vec();
    cert_id.extend(tlv(0x04, name_hash));
    cert_id.extend(tlv(0x04, key_hash));
    cert_id.extend(tlv(0x02, serial));
    let request = tlv(0x30, &tlv(0x30, &cert_id));
    let mut tbs = tlv(0x30, &request); // requestList
    if let Some(n) = nonce {
        let mut ext = NONCE_OID.to_vec();
        ext.extend(tlv(0x04, &tlv(0x04, n))); // extnValue wraps the nonce OCTET STRING
        tbs.extend(tlv(0xa2, &tlv(0x30, &tlv(0x30, &ext))));
    }
    tlv(0x30, &tlv(0x30, &tbs))
}

/// DER INTEGER content octets of a hex serial (a leading zero octet added
/// if the top bit is set).
fn serial_octets(hex_serial: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let s = hex_serial.trim();
    let s = if s.len() % 2 == 1 {
        format!("0{s}")
    } else {
        s.to_string()
    };
    let mut out = Vec::with_capacity(s.len() / 2 + 1);
    for i in (0..s.len()).step_by(2) {
        out.push(u8::from_str_radix(s.get(i..i + 2).ok_or("bad hex")?, 16)?);
    }
    while out.len() > 1 && out[0] == 0 && out[1] & 0x80 == 0 {
        out.remove(0);
    }
    if out.first().is_none_or(|b| b & 0x80 != 0) {
        out.insert(0, 0);
    }
    Ok(out)
}

fn requests(
    issuer: &Path,
    serials: Option<&Path>,
    certs: &[PathBuf],
    nonce: bool,
    out: &Path,
) -> Result<(), Box<dyn std::error::Error>> {
    use base64::Engine as _;
    use der::{DecodePem as _, Encode as _};
    use std::io::Write as _;
    let sha1 = |b: &[u8]| {
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, b)
            .as_ref()
            .to_vec()
    };
    let ca = x509_cert::Certificate::from_pem(std::fs::read(issuer)?)?;
    // RFC 6960 §4.1.1: hashes of the issuer's DN and of its public key's
    // BIT STRING value (without tag, length and unused-bits octet).
    let name_hash = sha1(&ca.tbs_certificate().subject().to_der()?);
    let key_hash = sha1(
        ca.tbs_certificate()
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes(),
    );
    let mut list: Vec<Vec<u8>> = Vec::new();
    if let Some(p) = serials {
        for line in std::fs::read_to_string(p)?.lines() {
            if !line.trim().is_empty() {
                list.push(serial_octets(line)?);
            }
        }
    }
    for c in certs {
        let leaf = x509_cert::Certificate::from_pem(std::fs::read(c)?)?;
        list.push(leaf.tbs_certificate().serial_number().as_bytes().to_vec());
    }
    if list.is_empty() {
        return Err("no serials: give --serials and/or --cert".into());
    }
    let mut w = std::io::BufWriter::new(std::fs::File::create(out)?);
    for serial in &list {
        let mut n = [0u8; 16];
        let nonce = if nonce {
            aws_lc_rs::rand::fill(&mut n).map_err(|_| "randomness failed")?;
            Some(&n[..])
        } else {
            None
        };
        let der = ocsp_request(&name_hash, &key_hash, serial, nonce);
        writeln!(
            w,
            "{}",
            base64::engine::general_purpose::STANDARD.encode(der)
        )?;
    }
    w.flush()?;
    println!(
        "{} OCSP requests{} written to {}",
        list.len(),
        if nonce { " with nonces" } else { "" },
        out.display()
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// fixed
// ---------------------------------------------------------------------------

async fn fixed(listen: SocketAddr, file: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let body = Bytes::from(std::fs::read(&file)?);
    let listener = TcpListener::bind(listen).await?;
    println!("fixed-body server on {listen} ({} bytes)", body.len());
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |_req: Request<Incoming>| {
                let body = body.clone();
                async move {
                    let mut r = Response::new(Full::new(body));
                    r.headers_mut().insert(
                        CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static("application/ocsp-response"),
                    );
                    Ok::<_, Infallible>(r)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

// ---------------------------------------------------------------------------
// load
// ---------------------------------------------------------------------------

struct LoadSpec {
    name: String,
    url: String,
    bodies: Vec<PathBuf>,
    requests: Option<PathBuf>,
    get: bool,
    connections: usize,
    new_connection: bool,
    seconds: f64,
    max_requests: u64,
}

struct Shared {
    addr: SocketAddr,
    authority: String,
    path: String,
    bodies: Vec<Bytes>,
    /// GET paths, used round-robin instead of `path` when not empty.
    paths: Vec<String>,
    new_connection: bool,
    stop: AtomicBool,
    started: AtomicU64,
    max: u64,
    ok: AtomicU64,
    bad: AtomicU64,
    errors: AtomicU64,
    connects: AtomicU64,
}

fn parse_url(url: &str) -> Result<(String, String), Box<dyn std::error::Error>> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Ok((authority.to_string(), path.to_string()))
}

async fn worker(sh: Arc<Shared>) -> Vec<u32> {
    let mut lat = Vec::new();
    'outer: while !sh.stop.load(Ordering::Relaxed) {
        sh.connects.fetch_add(1, Ordering::Relaxed);
        let stream = match TcpStream::connect(sh.addr).await {
            Ok(s) => s,
            Err(_) => {
                sh.errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) =
            match hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                .await
            {
                Ok(x) => x,
                Err(_) => {
                    sh.errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
        tokio::spawn(async move {
            let _ = conn.await;
        });
        loop {
            if sh.stop.load(Ordering::Relaxed) {
                break 'outer;
            }
            let n = sh.started.fetch_add(1, Ordering::Relaxed);
            if n >= sh.max {
                sh.stop.store(true, Ordering::Relaxed);
                break 'outer;
            }
            // One shared counter: round-robin over all connections.
            let n = n as usize;
            let uri = match sh.paths.len() {
                0 => sh.path.as_str(),
                k => sh.paths[n % k].as_str(),
            };
            let mut b = Request::builder()
                .uri(uri)
                .header(HOST, sh.authority.as_str());
            if sh.new_connection {
                b = b.header(CONNECTION, "close");
            }
            let req = if sh.bodies.is_empty() {
                b.method(Method::GET).body(Full::new(Bytes::new()))
            } else {
                b.method(Method::POST)
                    .header(CONTENT_TYPE, "application/ocsp-request")
                    .body(Full::new(sh.bodies[n % sh.bodies.len()].clone()))
            };
            let Ok(req) = req else {
                sh.errors.fetch_add(1, Ordering::Relaxed);
                break 'outer;
            };
            let t = Instant::now();
            let resp = match sender.send_request(req).await {
                Ok(r) => r,
                Err(_) => {
                    sh.errors.fetch_add(1, Ordering::Relaxed);
                    continue 'outer;
                }
            };
            let status = resp.status();
            let body = match resp.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => {
                    sh.errors.fetch_add(1, Ordering::Relaxed);
                    continue 'outer;
                }
            };
            lat.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
            if status == StatusCode::OK && body.first() == Some(&0x30) {
                sh.ok.fetch_add(1, Ordering::Relaxed);
            } else {
                sh.bad.fetch_add(1, Ordering::Relaxed);
            }
            if sh.new_connection {
                continue 'outer;
            }
        }
    }
    lat
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i.min(sorted.len() - 1)]) / 1000.0
}

async fn load(spec: LoadSpec) -> Result<(), Box<dyn std::error::Error>> {
    let (authority, path) = parse_url(&spec.url)?;
    let addr: SocketAddr = tokio::net::lookup_host(&authority)
        .await?
        .next()
        .ok_or("cannot resolve")?;
    let mut bodies = Vec::new();
    for b in &spec.bodies {
        bodies.push(Bytes::from(std::fs::read(b)?));
    }
    let mut paths = Vec::new();
    if let Some(file) = &spec.requests {
        use base64::Engine as _;
        let base = path.trim_end_matches('/');
        for line in std::fs::read_to_string(file)?.lines() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if spec.get {
                // RFC 6960 Appendix A.1: url-encoding of the base64 DER.
                let enc = line
                    .replace('+', "%2B")
                    .replace('/', "%2F")
                    .replace('=', "%3D");
                paths.push(format!("{base}/{enc}"));
            } else {
                bodies.push(Bytes::from(
                    base64::engine::general_purpose::STANDARD.decode(line)?,
                ));
            }
        }
        if paths.is_empty() && bodies.is_empty() {
            return Err(format!("{}: no requests", file.display()).into());
        }
    }
    let sh = Arc::new(Shared {
        addr,
        authority,
        path,
        bodies,
        paths,
        new_connection: spec.new_connection,
        stop: AtomicBool::new(false),
        started: AtomicU64::new(0),
        max: spec.max_requests,
        ok: AtomicU64::new(0),
        bad: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        connects: AtomicU64::new(0),
    });
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..spec.connections.max(1) {
        tasks.push(tokio::spawn(worker(sh.clone())));
    }
    let deadline = Duration::from_secs_f64(spec.seconds);
    while t0.elapsed() < deadline && !sh.stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sh.stop.store(true, Ordering::Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    // Workers finish their request in flight; one stuck on a server that
    // stopped answering is abandoned after a shared grace period.
    let grace = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut lat = Vec::new();
    let mut stuck = 0;
    for t in tasks {
        let abort = t.abort_handle();
        match tokio::time::timeout_at(grace, t).await {
            Ok(Ok(l)) => lat.extend(l),
            _ => {
                abort.abort();
                stuck += 1;
            }
        }
    }
    if stuck > 0 {
        println!(
            "{}: {stuck} connections got no answer and were abandoned",
            spec.name
        );
        sh.errors.fetch_add(stuck, Ordering::Relaxed);
    }
    lat.sort_unstable();
    let ok = sh.ok.load(Ordering::Relaxed);
    let rps = ok as f64 / secs;
    println!(
        "{}: {} ok, {} non-200/non-DER, {} transport errors, {} connections in {:.2} s → {:.0} responses/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        spec.name,
        ok,
        sh.bad.load(Ordering::Relaxed),
        sh.errors.load(Ordering::Relaxed),
        sh.connects.load(Ordering::Relaxed),
        secs,
        rps,
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0),
    );
    println!(
        "RESULT name={} rps={:.0} ok={} bad={} errors={} p50_ms={:.2} p99_ms={:.2}",
        spec.name,
        rps,
        ok,
        sh.bad.load(Ordering::Relaxed),
        sh.errors.load(Ordering::Relaxed),
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );
    Ok(())
}
