//! Builds and signs one CRL with many revoked entries and prints the time
//! and peak memory (VmHWM). A benchmark command, not a test:
//!
//! ```sh
//! cargo run --release -p ironseal-ca-core --example crl_million [-- N [ALG]]
//! ```
//!
//! N defaults to 1,000,000; ALG is `p256` (default), `p384` or `ed25519`.
//! The input is shaped like the server's path (`server/src/crl.rs`): the
//! store hands over `(hex serial, revocation)` pairs, which are parsed into
//! [`RevokedEntry`]s and then encoded and signed by [`build_crl`]. Both the
//! full CRL and a partitioned one (critical IDP) are built.
#![forbid(unsafe_code)]

use std::time::Instant;

use ironseal_ca_core::crl::{build_crl, build_partitioned_crl, Partition, RevokedEntry};
use ironseal_ca_core::hierarchy::{create_root, CaProfile, Issuer, IssuerUrls};
use ironseal_ca_core::keys::KeyAlgorithm;
use ironseal_ca_core::revocation::RevocationReason;
use ironseal_ca_core::serial::Serial;
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

/// xorshift64*: deterministic, fast serial material.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let alg = match args.next().as_deref() {
        None | Some("p256") => KeyAlgorithm::EcdsaP256,
        Some("p384") => KeyAlgorithm::EcdsaP384,
        Some("ed25519") => KeyAlgorithm::Ed25519,
        Some(o) => return Err(format!("unknown algorithm {o}").into()),
    };
    let now = OffsetDateTime::now_utc().replace_nanosecond(0)?;
    let profile = CaProfile {
        common_name: "crl_million root".into(),
        organization: Some("ironseal bench".into()),
        algorithm: alg,
        not_before: now - Duration::days(1),
        not_after: now + Duration::days(365),
        path_len: Some(0),
        ..Default::default()
    };
    let (key, der) = create_root(&profile, Serial::from_random([7; 16]))?;
    let issuer = Issuer::new("bench".into(), der, key, IssuerUrls::default())?;
    let base_rss = status_kib("VmRSS:");

    // 1. What the store returns: (lowercase hex serial, time, reason).
    let t0 = Instant::now();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let reasons = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
    ];
    let mut stored: Vec<(String, OffsetDateTime, RevocationReason)> = Vec::with_capacity(n);
    for i in 0..n {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&rng.next().to_be_bytes());
        b[8..].copy_from_slice(&rng.next().to_be_bytes());
        let at = now - Duration::seconds((i % 7_776_000) as i64);
        stored.push((
            Serial::from_random(b).to_hex(),
            at,
            reasons[i % reasons.len()],
        ));
    }
    stored.sort_by(|a, b| a.0.cmp(&b.0));
    let t_gen = t0.elapsed();

    // 2. The server's conversion into entries (the store's Vec is dropped
    //    before signing, as in server/src/crl.rs).
    let t1 = Instant::now();
    let mut entries = Vec::with_capacity(stored.len());
    for (hex, at, reason) in stored {
        entries.push(RevokedEntry {
            serial: Serial::from_hex(&hex)?,
            revoked_at: at,
            reason,
        });
    }
    let t_conv = t1.elapsed();

    // 3. Encode and sign.
    let t2 = Instant::now();
    let crl = build_crl(&issuer, 1, now, now + Duration::hours(24), &entries)?;
    let t_full = t2.elapsed();
    let hwm_full = status_kib("VmHWM:");

    let t3 = Instant::now();
    let part = build_partitioned_crl(
        &issuer,
        2,
        now,
        now + Duration::hours(24),
        &entries,
        &Partition {
            url: "http://127.0.0.1/crl/bench/0.crl".into(),
            only_user_certs: true,
        },
    )?;
    let t_part = t3.elapsed();

    let out = std::env::temp_dir().join(format!("crl_million_{}.der", std::process::id()));
    std::fs::write(&out, &crl)?;
    println!("crl_million: {n} entries, {alg:?}");
    println!("  generate store rows      {:>8.3} s", t_gen.as_secs_f64());
    println!("  parse into entries       {:>8.3} s", t_conv.as_secs_f64());
    println!(
        "  build + sign full CRL    {:>8.3} s   ({:.1} MiB DER)",
        t_full.as_secs_f64(),
        crl.len() as f64 / 1048576.0
    );
    println!(
        "  build + sign partition   {:>8.3} s   ({:.1} MiB DER, critical IDP)",
        t_part.as_secs_f64(),
        part.len() as f64 / 1048576.0
    );
    println!(
        "  end-to-end (2+3 full)    {:>8.3} s",
        (t_conv + t_full).as_secs_f64()
    );
    println!(
        "  RSS before {:.1} MiB; peak (VmHWM) after full CRL {:.1} MiB, at end {:.1} MiB",
        mib(base_rss),
        mib(hwm_full),
        mib(status_kib("VmHWM:"))
    );
    println!("  wrote {}", out.display());
    let ok = (t_conv + t_full).as_secs_f64() < 10.0 && status_kib("VmHWM:") < 1024 * 1024;
    println!(
        "  target (< 10 s, < 1 GiB peak): {}",
        if ok { "met" } else { "MISSED" }
    );
    Ok(())
}
