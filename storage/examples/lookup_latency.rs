//! Store-level latency of the two calls OCSP and issuance make per request on
//! a (seeded) data directory: `Store::get_certificate` for serials from a
//! file (OCSP's status lookup, `server/src/ocsp.rs` `status_of`) and
//! `Store::insert_certificate` of fresh serials (issuance,
//! `server/src/issue.rs`). No HTTP, no signing: this isolates what the
//! store's size changes. A benchmark command, not a test.
//!
//! ```text
//! cargo run --release -p ironseal-storage --example lookup_latency -- DATA_DIR SERIALS_FILE [LOOKUPS] [INSERTS]
//! ```
//!
//! LOOKUPS (default 200,000) lookups cycle through the serials in the file
//! in a shuffled order; INSERTS (default 2,000) records are inserted with
//! one `flush` at the end (so the insert figure excludes the disk sync) and
//! *stay in the store*. Run it while the server is stopped.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::{Duration as StdDuration, Instant};

use ironseal_ca_core::serial::Serial;
use ironseal_storage::{settings, CertificateRecord, Identifier, SledStore, Store};
use time::{Duration, OffsetDateTime};

fn pct(sorted: &[StdDuration], p: f64) -> f64 {
    let i = ((sorted.len().saturating_sub(1)) as f64 * p).round() as usize;
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

fn summary(what: &str, mut lat: Vec<StdDuration>, wall: StdDuration) -> String {
    lat.sort_unstable();
    let mean = lat.iter().sum::<StdDuration>().as_secs_f64() * 1e6 / lat.len().max(1) as f64;
    format!(
        "{what}: {} in {:.2} s, mean {mean:.1} µs, p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        lat.len(),
        wall.as_secs_f64(),
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0)
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: lookup_latency DATA_DIR SERIALS_FILE [LOOKUPS] [INSERTS]";
    let dir: PathBuf = args.next().ok_or(usage)?.into();
    let serials_file: PathBuf = args.next().ok_or(usage)?.into();
    let lookups: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(200_000);
    let inserts: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(2_000);
    let mut serials: Vec<String> = std::fs::read_to_string(&serials_file)?
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    if serials.is_empty() {
        return Err(format!("{}: no serials", serials_file.display()).into());
    }
    // Shuffle (Fisher-Yates) so consecutive lookups do not walk the key order.
    for i in (1..serials.len()).rev() {
        let mut r = [0u8; 8];
        aws_lc_rs::rand::fill(&mut r).map_err(|_| "randomness failed")?;
        let j = (u64::from_be_bytes(r) % (i as u64 + 1)) as usize;
        serials.swap(i, j);
    }
    let store = SledStore::open(&dir.join("db"))?;
    let issuing = settings::issuing_ca(&store)
        .await?
        .ok_or("the store has no issuing-CA pin (start the server on it once)")?;

    let mut lat = Vec::with_capacity(lookups);
    let mut found = 0usize;
    let t0 = Instant::now();
    for i in 0..lookups {
        let s = &serials[i % serials.len()];
        let t = Instant::now();
        let rec = store.get_certificate(s).await?;
        lat.push(t.elapsed());
        if rec.is_some_and(|r| r.issuer_id == issuing) {
            found += 1;
        }
    }
    let wall = t0.elapsed();
    println!(
        "lookup_latency: {} ({} distinct serials)",
        dir.display(),
        serials.len()
    );
    println!("  {}", summary("get_certificate", lat, wall));
    if found != lookups {
        return Err(format!(
            "{} of {lookups} lookups found no record of the issuing CA",
            lookups - found
        )
        .into());
    }

    let now = OffsetDateTime::now_utc().replace_nanosecond(0)?;
    let mut lat = Vec::with_capacity(inserts);
    let t0 = Instant::now();
    for i in 0..inserts {
        let mut r = [0u8; 16];
        aws_lc_rs::rand::fill(&mut r).map_err(|_| "randomness failed")?;
        let rec = CertificateRecord {
            serial: Serial::from_random(r).to_hex(),
            issuer_id: issuing.clone(),
            account_id: "lookup-latency".into(),
            order_id: format!("lookup-latency-{i}"),
            der: vec![0x30; 650],
            not_before: now,
            not_after: now + Duration::days(90),
            public_key_sha256: "00".repeat(32),
            identifiers: vec![Identifier::dns(format!("l{i}.seed.test"))],
            revocation: None,
            replaced_by: None,
            renew_early: false,
            origin: Default::default(),
        };
        let t = Instant::now();
        store.insert_certificate(&rec).await?;
        lat.push(t.elapsed());
    }
    let wall = t0.elapsed();
    store.flush()?;
    println!("  {}", summary("insert_certificate (no sync)", lat, wall));
    Ok(())
}
