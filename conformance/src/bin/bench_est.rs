//! EST enrolment benchmark driver. A command, not a test:
//! `scripts/bench-est.sh` starts ironseal and runs it; `docs/benchmarks.md`
//! ("EST enrolment") defines the figures.
//!
//! Before the timer starts it makes `--count` P-256 keys and PKCS#10
//! requests (rcgen, one key each), base64 wrapped at 64 columns as
//! devices send them, and opens `--clients` TLS 1.3 connections
//! presenting the bootstrap certificate. Then each client thread POSTs
//! `/simpleenroll` on its kept-alive connection, one request at a time,
//! taking the next CSR from a shared counter, until all are sent or
//! `--max-seconds` pass. It counts 200 answers whose body is a base64
//! certs-only PKCS#7, and prints enrolments/s, latency percentiles and,
//! with `--server-pid`, the server's CPU time per enrolment (utime + stime
//! from `/proc/<pid>/stat` before and after) and its own, then one machine-readable
//! `RESULT` line.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use clap::Parser;
use ironseal_conformance::bench::{cpu_seconds, CpuSpan, Tally};
use ironseal_conformance::est_tls::{client_config, EstConn, TlsVersion};

#[derive(Parser, Debug)]
#[command(
    name = "bench_est",
    about = "EST enrolment benchmark driver (see docs/benchmarks.md)"
)]
struct Cli {
    /// Server address (loopback), e.g. 127.0.0.1:14000
    #[arg(long)]
    addr: String,
    /// TLS server name
    #[arg(long, default_value = "localhost")]
    host: String,
    /// Request path
    #[arg(long, default_value = "/.well-known/est/bench/simpleenroll")]
    path: String,
    /// PEM trust root of the server's TLS certificate
    #[arg(long)]
    ca_cert: PathBuf,
    /// PEM client (bootstrap) certificate and key
    #[arg(long)]
    client_cert: PathBuf,
    #[arg(long)]
    client_key: PathBuf,
    /// Concurrent clients, one kept-alive connection each
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Enrolments (one fresh key and CSR each)
    #[arg(long, default_value_t = 5000)]
    count: usize,
    /// Stop sending after this many seconds
    #[arg(long, default_value_t = 60)]
    max_seconds: u64,
    /// Server process whose CPU time is measured
    #[arg(long)]
    server_pid: Option<u32>,
    /// Label for the RESULT line
    #[arg(long, default_value = "est")]
    name: String,
}

/// A CSR body for a fresh P-256 key: base64 wrapped at 64 columns.
fn csr_body(i: usize) -> Result<Vec<u8>, String> {
    let key =
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| e.to_string())?;
    let mut params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("bench-device-{i}"));
    let der = params
        .serialize_request(&key)
        .map_err(|e| e.to_string())?
        .der()
        .to_vec();
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = Vec::with_capacity(b64.len() + b64.len() / 64 + 1);
    for line in b64.as_bytes().chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    Ok(out)
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(&cli) {
        eprintln!("bench_est: {e}");
        std::process::exit(1);
    }
}

fn run(cli: &Cli) -> Result<(), String> {
    let made = Instant::now();
    let bodies: Vec<Vec<u8>> = (0..cli.count).map(csr_body).collect::<Result<_, _>>()?;
    eprintln!(
        "bench_est: {} P-256 keys and CSRs made in {:.1} s (before the timer)",
        bodies.len(),
        made.elapsed().as_secs_f64()
    );
    let bodies = Arc::new(bodies);
    let config = client_config(
        &cli.ca_cert,
        Some((&cli.client_cert, &cli.client_key)),
        TlsVersion::Tls13,
    )?;
    let mut conns = Vec::new();
    for _ in 0..cli.clients {
        conns.push(EstConn::connect(&cli.addr, &cli.host, config.clone())?);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let start = Arc::new(Barrier::new(cli.clients + 1));
    let deadline = Duration::from_secs(cli.max_seconds);
    let mut threads = Vec::new();
    for mut conn in conns {
        let (bodies, next, tally, start) =
            (bodies.clone(), next.clone(), tally.clone(), start.clone());
        let path = cli.path.clone();
        threads.push(std::thread::spawn(move || {
            let mut mine = Tally::default();
            start.wait();
            let t0 = Instant::now();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= bodies.len() || t0.elapsed() > deadline {
                    break;
                }
                let sent = Instant::now();
                let answer = conn.request(
                    "POST",
                    &path,
                    &[
                        ("Content-Type", "application/pkcs10"),
                        ("Content-Transfer-Encoding", "base64"),
                    ],
                    &bodies[i],
                );
                let took = sent.elapsed();
                match answer {
                    Ok(a) if a.status == 200 && a.body.starts_with(b"MI") => {
                        mine.ok += 1;
                        mine.latencies.push(took);
                    }
                    Ok(a) => {
                        mine.bad += 1;
                        mine.first_problem
                            .get_or_insert_with(|| format!("HTTP {}: {}", a.status, a.text()));
                    }
                    Err(e) => {
                        mine.errors += 1;
                        mine.first_problem.get_or_insert(e);
                        break;
                    }
                }
            }
            if let Ok(mut t) = tally.lock() {
                t.absorb(mine);
            }
        }));
    }
    let cpu0 = cli.server_pid.and_then(cpu_seconds);
    let own0 = cpu_seconds(std::process::id());
    start.wait();
    let t0 = Instant::now();
    for t in threads {
        t.join().map_err(|_| "a client thread panicked")?;
    }
    let elapsed = t0.elapsed();
    let server = CpuSpan {
        before: cpu0,
        after: cli.server_pid.and_then(cpu_seconds),
    };
    let driver = CpuSpan {
        before: own0,
        after: cpu_seconds(std::process::id()),
    };
    let mut t = tally.lock().map_err(|_| "tally poisoned")?;
    t.report(&cli.name, cli.clients, elapsed, server, driver)
}
