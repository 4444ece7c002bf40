//! Fills an ironseal data directory's sled store with N certificate records
//! of its real issuing CA (optionally R of them revoked), so the server can
//! then be benchmarked against a large store. A benchmark tool, not a test;
//! `scripts/bench-scale.sh` drives it, `docs/benchmarks.md` ("Scale") says
//! what it measures.
//!
//! ```text
//! cargo run --release -p ironseal-storage --example seed_store -- \
//!     --data-dir DIR --certs N [--revoked R] [--sample K --sample-out FILE]
//!     [--issuer-pem-out FILE] [--der-bytes B]
//! ```
//!
//! Run it while the server is stopped: sled locks `<DIR>/db` exclusively.
//! The data directory must have been initialised by one `ironseal serve`
//! (that creates the CA hierarchy and pins its issuing CA in the store).
//!
//! Each record goes through [`Store::insert_certificate`], the same call
//! issuance makes (`server/src/issue.rs`), with one [`Store::flush`] at the
//! end; the store has no bulk-insert API. Records carry the issuing CA's id,
//! a fresh random 16-byte serial (as `Serial::from_random` draws them),
//! realistic validity, one DNS identifier, and a *placeholder* DER of B bytes
//! (default 650; a P-256 leaf ironseal issues over ACME for one identifier is
//! about 640 bytes): the paths this tool exists for never parse it. OCSP (`server/src/ocsp.rs`,
//! `status_of`) reads only `issuer_id` and `revocation` of the decoded
//! record, and the CRL build (`server/src/crl.rs`) reads only the `revoked`
//! index. Serving such a record's certificate (ACME download, ARI, admin
//! API) would hand out the placeholder bytes, so do not point real clients
//! at a seeded directory. `account_id` and `order_id` name no stored
//! account or order, for the same reason.
//!
//! The first R records are revoked (revocation time within the last 30 days,
//! reasons cycling through unspecified, keyCompromise, superseded,
//! cessationOfOperation), which also fills the `revoked` index the CRL
//! builder reads. `--sample K` writes K serials spread evenly over the
//! inserted records to `--sample-out`, one lowercase hex serial per line;
//! `--issuer-pem-out` writes the issuing CA's certificate (PEM), from which
//! OCSP requests for those serials can be made.
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ironseal_ca_core::cert::pem_encode;
use ironseal_ca_core::serial::Serial;
use ironseal_storage::{
    settings, CertificateRecord, Identifier, RevocationReason, RevocationRecord, SledStore, Store,
    StoreError,
};
use time::{Duration, OffsetDateTime};

struct Args {
    data_dir: PathBuf,
    certs: u64,
    revoked: u64,
    sample: u64,
    sample_out: Option<PathBuf>,
    issuer_pem_out: Option<PathBuf>,
    der_bytes: usize,
}

const USAGE: &str = "usage: seed_store --data-dir DIR --certs N [--revoked R] \
[--sample K --sample-out FILE] [--issuer-pem-out FILE] [--der-bytes B]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        data_dir: PathBuf::new(),
        certs: 0,
        revoked: 0,
        sample: 0,
        sample_out: None,
        issuer_pem_out: None,
        der_bytes: 650,
    };
    let mut it = std::env::args().skip(1);
    let num = |v: Option<String>, name: &str| -> Result<u64, String> {
        v.ok_or_else(|| format!("{name} needs a value"))?
            .replace('_', "")
            .parse()
            .map_err(|e| format!("{name}: {e}"))
    };
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--data-dir" => a.data_dir = it.next().ok_or("--data-dir needs a value")?.into(),
            "--certs" => a.certs = num(it.next(), "--certs")?,
            "--revoked" => a.revoked = num(it.next(), "--revoked")?,
            "--sample" => a.sample = num(it.next(), "--sample")?,
            "--sample-out" => {
                a.sample_out = Some(it.next().ok_or("--sample-out needs a value")?.into())
            }
            "--issuer-pem-out" => {
                a.issuer_pem_out = Some(it.next().ok_or("--issuer-pem-out needs a value")?.into());
            }
            "--der-bytes" => {
                a.der_bytes = usize::try_from(num(it.next(), "--der-bytes")?)
                    .map_err(|e| format!("--der-bytes: {e}"))?;
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if a.data_dir.as_os_str().is_empty() {
        return Err(format!("--data-dir is required\n{USAGE}"));
    }
    if a.revoked > a.certs {
        return Err("--revoked cannot exceed --certs".into());
    }
    if a.sample > 0 && a.sample_out.is_none() {
        return Err("--sample needs --sample-out".into());
    }
    Ok(a)
}

/// Random bytes from the system generator (aws-lc-rs, already a dependency).
fn random<const N: usize>() -> Result<[u8; N], String> {
    let mut b = [0u8; N];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| "system randomness failed".to_string())?;
    Ok(b)
}

/// Bytes on disk under `dir` (sled's `db`, `conf`, `blobs/`, snapshots).
fn disk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let db_dir = args.data_dir.join("db");
    let t_open = Instant::now();
    let store = SledStore::open(&db_dir).map_err(|e| {
        format!(
            "open {}: {e} (is the server still running?)",
            db_dir.display()
        )
    })?;
    let open_s = t_open.elapsed().as_secs_f64();
    let issuing = settings::issuing_ca(&store).await?.ok_or_else(|| {
        format!(
            "the store has no issuing-CA pin (start `ironseal serve --data-dir {}` once first, then stop it)",
            args.data_dir.display()
        )
    })?;
    let cas = store.list_cas().await?;
    let ca = cas
        .iter()
        .find(|c| c.id == issuing)
        .ok_or_else(|| format!("issuing CA {issuing:?} is not in the store"))?;
    if ca.parent_id.is_none() {
        return Err(format!("issuing CA {issuing:?} is a root").into());
    }
    if let Some(path) = &args.issuer_pem_out {
        std::fs::write(path, pem_encode("CERTIFICATE", &ca.cert_der))?;
    }
    println!(
        "seed_store: {} ({} CAs, issuing {issuing}), opened in {open_s:.2} s; inserting {} certificates, {} revoked, {} B placeholder DER",
        db_dir.display(),
        cas.len(),
        args.certs,
        args.revoked,
        args.der_bytes
    );

    let mut sample = match &args.sample_out {
        Some(p) if args.sample > 0 => Some(std::io::BufWriter::new(std::fs::File::create(p)?)),
        _ => None,
    };
    let stride = args
        .certs
        .checked_div(args.sample)
        .map_or(u64::MAX, |s| s.max(1));
    let mut sampled = 0u64;

    let now = OffsetDateTime::now_utc().replace_nanosecond(0)?;
    let reasons = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
    ];
    // Placeholder DER: a SEQUENCE header, then filler (see the module docs).
    let mut der = vec![0u8; args.der_bytes.max(4)];
    let body = u16::try_from(der.len() - 4).unwrap_or(u16::MAX);
    der[0] = 0x30;
    der[1] = 0x82;
    der[2..4].copy_from_slice(&body.to_be_bytes());
    for (i, b) in der.iter_mut().enumerate().skip(4) {
        *b = (i % 251) as u8;
    }

    let t0 = Instant::now();
    let mut last_report = Instant::now();
    let mut inserted = 0u64;
    let mut collisions = 0u64;
    while inserted < args.certs {
        let r: [u8; 16] = random()?;
        let serial = Serial::from_random(r).to_hex();
        let jitter: [u8; 4] = random()?;
        let jitter = i64::from(u32::from_be_bytes(jitter));
        let not_before = now - Duration::minutes(jitter % (80 * 24 * 60));
        let revocation = (inserted < args.revoked).then(|| RevocationRecord {
            revoked_at: now - Duration::seconds(jitter % (30 * 24 * 3600)),
            reason: reasons[(inserted % reasons.len() as u64) as usize],
        });
        let record = CertificateRecord {
            serial: serial.clone(),
            issuer_id: issuing.clone(),
            account_id: format!("seed-acct-{}", inserted / 1000),
            order_id: format!("seed-order-{inserted}"),
            der: der.clone(),
            not_before,
            not_after: not_before + Duration::days(90),
            public_key_sha256: hex::encode(random::<32>()?),
            identifiers: vec![Identifier::dns(format!("s{inserted}.seed.test"))],
            revocation,
            replaced_by: None,
            renew_early: false,
            origin: Default::default(),
        };
        match store.insert_certificate(&record).await {
            Ok(()) => {}
            Err(StoreError::DuplicateSerial) => {
                collisions += 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        if let Some(w) = sample.as_mut() {
            if inserted.is_multiple_of(stride) && sampled < args.sample {
                writeln!(w, "{serial}")?;
                sampled += 1;
            }
        }
        inserted += 1;
        if last_report.elapsed().as_secs() >= 10 {
            last_report = Instant::now();
            println!(
                "seed_store: {inserted} inserted, {:.0}/s",
                inserted as f64 / t0.elapsed().as_secs_f64()
            );
        }
    }
    if let Some(mut w) = sample.take() {
        w.flush()?;
    }
    let insert_s = t0.elapsed().as_secs_f64();
    if args.revoked > 0 {
        // Revocations written as records bypass `record_revocation`, which
        // bumps the CA's CRL generation: bump it here, or a server that
        // stored a CRL before the seeding would keep serving that one as
        // current (and never build the seeded revocations into a CRL).
        store.bump_crl_generation(&issuing).await?;
    }
    let t_flush = Instant::now();
    store.flush()?;
    let flush_s = t_flush.elapsed().as_secs_f64();
    drop(store);
    println!(
        "seed_store: {inserted} certificates ({} revoked) in {insert_s:.1} s ({:.0}/s), flush {flush_s:.2} s, {collisions} serial collisions, {sampled} serials sampled; store now {:.0} MiB on disk",
        args.revoked,
        inserted as f64 / insert_s.max(1e-9),
        disk_bytes(&db_dir) as f64 / (1024.0 * 1024.0)
    );
    Ok(())
}
