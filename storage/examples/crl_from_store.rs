//! Reads every revocation of a data directory's issuing CA from its sled
//! store and builds and signs the full CRL from them, printing each phase's
//! time and the peak memory (VmHWM). A benchmark command, not a test; the
//! counterpart of `ca-core/examples/crl_million.rs` that includes the store
//! read. `scripts/bench-scale.sh` runs it on a directory filled by
//! `seed_store --revoked R`.
//!
//! ```text
//! cargo run --release -p ironseal-storage --example crl_from_store -- DATA_DIR
//! ```
//!
//! Run it while the server is stopped (sled locks the store). The phases
//! follow `server/src/crl.rs` (`build_all`): `Store::revoked_certificates`
//! (a prefix scan of the `revoked` index tree, one JSON decode per entry),
//! hex serials parsed into `RevokedEntry`s, then `build_crl`. The CRL is
//! signed by a throwaway CA of the issuing CA's algorithm (the real key is
//! sealed with the server's KEK, which this tool does not touch): the
//! signature covers one hash of the TBS, so the cost is the same. The CRL
//! number and the flush the server does in between are left out (one small
//! write).
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Instant;

use ironseal_ca_core::crl::{build_crl, RevokedEntry};
use ironseal_ca_core::hierarchy::{create_root, CaProfile, Issuer, IssuerUrls};
use ironseal_ca_core::serial::Serial;
use ironseal_storage::{settings, SledStore, Store};
use time::{Duration, OffsetDateTime};

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir: PathBuf = std::env::args()
        .nth(1)
        .ok_or("usage: crl_from_store DATA_DIR")?
        .into();
    let t_open = Instant::now();
    let store = SledStore::open(&dir.join("db"))?;
    let open_s = t_open.elapsed().as_secs_f64();
    let issuing = settings::issuing_ca(&store)
        .await?
        .ok_or("the store has no issuing-CA pin (start the server on it once)")?;
    let ca = store
        .get_ca(&issuing)
        .await?
        .ok_or_else(|| format!("issuing CA {issuing:?} is not in the store"))?;
    let rss_open = status_kib("VmRSS:");

    // 1. The store read, as server/src/crl.rs does it.
    let t1 = Instant::now();
    let revoked = store.revoked_certificates(&issuing).await?;
    let read_s = t1.elapsed().as_secs_f64();
    let n = revoked.len();
    let hwm_read = status_kib("VmHWM:");

    // 2. The server's conversion into entries.
    let t2 = Instant::now();
    let mut entries = Vec::with_capacity(n);
    let mut skipped = 0usize;
    for (serial_hex, rev) in revoked {
        let Ok(serial) = Serial::from_hex(&serial_hex) else {
            skipped += 1;
            continue;
        };
        entries.push(RevokedEntry {
            serial,
            revoked_at: rev.revoked_at,
            reason: rev.reason,
        });
    }
    let conv_s = t2.elapsed().as_secs_f64();

    // 3. Encode and sign (throwaway CA of the same algorithm).
    let now = OffsetDateTime::now_utc().replace_nanosecond(0)?;
    // The issuing CA holds its key, so its algorithm is known (P-256 if not).
    let algorithm = ca
        .algorithm
        .unwrap_or(ironseal_storage::KeyAlgorithm::EcdsaP256);
    let profile = CaProfile {
        common_name: "crl_from_store signer".into(),
        organization: Some("ironseal bench".into()),
        algorithm,
        not_before: now - Duration::days(1),
        not_after: now + Duration::days(365),
        path_len: Some(0),
        ..Default::default()
    };
    let (key, der) = create_root(&profile, Serial::from_random([7; 16]))?;
    let signer = Issuer::new("bench".into(), der, key, IssuerUrls::default())?;
    let t3 = Instant::now();
    let crl = build_crl(&signer, 1, now, now + Duration::hours(24), &entries)?;
    let build_s = t3.elapsed().as_secs_f64();

    println!(
        "crl_from_store: {} (issuing CA {issuing}, {}), {n} revocations{}",
        dir.display(),
        algorithm,
        if skipped > 0 {
            format!(", {skipped} unparseable serials skipped")
        } else {
            String::new()
        }
    );
    println!("  open sled store              {open_s:>8.3} s");
    println!("  read revocations (store API) {read_s:>8.3} s");
    println!("  parse into entries           {conv_s:>8.3} s");
    println!(
        "  build + sign full CRL        {build_s:>8.3} s   ({:.1} MiB DER)",
        crl.len() as f64 / 1048576.0
    );
    println!(
        "  read + parse + build         {:>8.3} s",
        read_s + conv_s + build_s
    );
    println!(
        "  RSS after open {:.1} MiB; peak (VmHWM) after the read {:.1} MiB, at end {:.1} MiB",
        mib(rss_open),
        mib(hwm_read),
        mib(status_kib("VmHWM:"))
    );
    println!(
        "RESULT name=crl_from_store entries={n} open_s={open_s:.3} read_s={read_s:.3} parse_s={conv_s:.3} build_s={build_s:.3} total_s={:.3} peak_mib={:.1} der_mib={:.1}",
        read_s + conv_s + build_s,
        mib(status_kib("VmHWM:")),
        crl.len() as f64 / 1048576.0
    );
    Ok(())
}
