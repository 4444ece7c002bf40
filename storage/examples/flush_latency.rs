//! Flush latency of `SledStore`: N sequential insert_certificate + flush
//! pairs, then the same with T concurrent writer threads (group commit).
//!
//! ```text
//! cargo run --release -p ironseal-storage --example flush_latency -- [N] [T] [DIR]
//! ```
//!
//! DIR defaults to a fresh temporary directory under the system temp dir; pass
//! a path on the disk you want to measure.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::{Duration as StdDuration, Instant};

use ironseal_storage::{CertificateRecord, Identifier, SledStore, Store, StoreError};
use time::macros::datetime;
use time::Duration;

fn cert(serial: String) -> CertificateRecord {
    let t0 = datetime!(2026-01-01 00:00 UTC);
    CertificateRecord {
        serial,
        issuer_id: "ica".into(),
        account_id: "acct".into(),
        order_id: "ord".into(),
        der: vec![0x5a; 1400],
        not_before: t0,
        not_after: t0 + Duration::days(90),
        public_key_sha256: "ab".repeat(32),
        identifiers: vec![Identifier::dns("bench.example.com")],
        revocation: None,
        replaced_by: None,
        renew_early: false,
        origin: Default::default(),
    }
}

fn percentile(sorted: &[StdDuration], p: f64) -> StdDuration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(idx).copied().unwrap_or_default()
}

fn report(label: &str, total: StdDuration, mut lat: Vec<StdDuration>) {
    lat.sort_unstable();
    let n = lat.len().max(1);
    println!(
        "{label}: {n} ops in {:.3} s = {:.0} ops/s; wall time per op {:.1} µs; latency p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        total.as_secs_f64(),
        n as f64 / total.as_secs_f64(),
        total.as_secs_f64() * 1e6 / n as f64,
        percentile(&lat, 0.50).as_secs_f64() * 1e6,
        percentile(&lat, 0.99).as_secs_f64() * 1e6,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e6,
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), StoreError> {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let threads: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(4);
    let dir = match args.next() {
        Some(d) => PathBuf::from(d),
        None => std::env::temp_dir().join(format!("ironseal-flush-bench-{}", std::process::id())),
    };
    let store = SledStore::open(&dir)?;
    println!("sled flush latency, db at {}", dir.display());

    // Sequential: insert + flush, one at a time.
    let mut lat = Vec::with_capacity(n as usize);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        store
            .insert_certificate(&cert(format!("01{i:08x}")))
            .await?;
        store.flush()?;
        lat.push(t.elapsed());
    }
    report("sequential insert+flush", start.elapsed(), lat);

    // Inserts alone (no flush) for comparison.
    let mut lat = Vec::with_capacity(n as usize);
    let start = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        store
            .insert_certificate(&cert(format!("02{i:08x}")))
            .await?;
        lat.push(t.elapsed());
    }
    report("sequential insert, no flush", start.elapsed(), lat);
    store.flush()?;

    // Concurrent: T threads, each insert + flush; flushes overlap.
    let start = Instant::now();
    let per_thread: Vec<Result<Vec<StdDuration>, StoreError>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let store = &store;
                sc.spawn(move || {
                    // sled works inline: a current-thread runtime per
                    // writer thread keeps the threads truly concurrent.
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .build()
                        .map_err(|e| StoreError::Backend(e.to_string()))?;
                    let mut lat = Vec::with_capacity(n as usize);
                    for i in 0..n {
                        let s = Instant::now();
                        runtime.block_on(
                            store.insert_certificate(&cert(format!("1{t:03x}{i:08x}"))),
                        )?;
                        store.flush()?;
                        lat.push(s.elapsed());
                    }
                    Ok(lat)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(StoreError::Backend("bench thread panicked".into())))
            })
            .collect()
    });
    let total = start.elapsed();
    let mut lat = Vec::new();
    for r in per_thread {
        lat.extend(r?);
    }
    report(&format!("{threads} threads insert+flush"), total, lat);
    drop(store);
    std::fs::remove_dir_all(&dir).map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(())
}
