//! Crash durability of `SledStore`: a child process (this test binary,
//! re-executed) inserts certificates and prints each serial only after
//! `flush()` returned; the parent SIGKILLs it mid-stream, reopens the database
//! and checks that every acknowledged serial is present and intact. Three
//! rounds on the same directory, so recovery of an already-recovered
//! database is exercised too.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, reason = "tests: a panic is a test failure")]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration as StdDuration, Instant};

use ironseal_storage::{CertificateRecord, Identifier, OrderRecord, OrderStatus, SledStore, Store};
use time::macros::datetime;
use time::Duration;

const DIR_ENV: &str = "IRONSEAL_CRASH_CHILD_DIR";
const ROUND_ENV: &str = "IRONSEAL_CRASH_CHILD_ROUND";
const ROUNDS: u32 = 3;
const ACKS_BEFORE_KILL: usize = 200;

/// Deterministic DER-sized payload for a serial, so the parent can check the
/// bytes, not just the presence.
fn payload(serial: &str) -> Vec<u8> {
    let seed: u32 = serial.bytes().map(u32::from).sum();
    (0..1400u32)
        .map(|i| ((i * 31 + seed) % 251) as u8)
        .collect()
}

fn cert(serial: &str) -> CertificateRecord {
    let t0 = datetime!(2026-01-01 00:00 UTC);
    CertificateRecord {
        serial: serial.into(),
        issuer_id: "crash-ica".into(),
        account_id: "acct".into(),
        order_id: format!("ord-{serial}"),
        der: payload(serial),
        not_before: t0,
        not_after: t0 + Duration::days(90),
        public_key_sha256: "ab".repeat(32),
        identifiers: vec![Identifier::dns(format!("{serial}.example.com"))],
        revocation: None,
        replaced_by: None,
        renew_early: false,
        origin: Default::default(),
    }
}

fn ack_serial(round: u32, i: u32) -> String {
    format!("{round:02x}{i:08x}")
}

/// The child's body. A no-op in a normal test run (the env var is unset).
#[tokio::test]
async fn crash_child_writer() {
    let Some(dir) = std::env::var_os(DIR_ENV) else {
        return;
    };
    let round: u32 = std::env::var(ROUND_ENV).unwrap().parse().unwrap();
    let store = SledStore::open(Path::new(&dir)).unwrap();
    let deadline = Instant::now() + StdDuration::from_secs(60); // if the parent vanished

    // Background noise: unacknowledged writes (orders, other certs) so the
    // log is busy and the kill lands in the middle of something.
    let bg = store.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let t0 = datetime!(2026-01-01 00:00 UTC);
        for i in 0u64.. {
            let o = OrderRecord {
                id: format!("bg-{round}-{i}"),
                account_id: "bg".into(),
                status: OrderStatus::Pending,
                expires: t0,
                identifiers: vec![Identifier::dns("x".repeat(200))],
                not_before: None,
                not_after: None,
                authz_ids: vec!["a".repeat(22); 20],
                error: None,
                cert_serial: None,
                replaces: None,
                profile: None,
                approval_id: None,
                created_at: t0 + Duration::seconds(i as i64),
            };
            if runtime.block_on(bg.put_order(&o)).is_err() {
                return;
            }
        }
    });

    let mut out = std::io::stdout().lock();
    for i in 0u32.. {
        if Instant::now() > deadline {
            return;
        }
        let serial = ack_serial(round, i);
        store.insert_certificate(&cert(&serial)).await.unwrap();
        store.flush().unwrap();
        writeln!(out, "ACK {serial}").unwrap();
        out.flush().unwrap();
    }
}

#[tokio::test]
async fn sled_survives_sigkill_after_flush() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked: Vec<String> = Vec::new();

    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "crash_child_writer",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DIR_ENV, dir.path())
            .env(ROUND_ENV, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut this_round = 0usize;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(serial) = line.strip_prefix("ACK ") {
                acked.push(serial.to_owned());
                this_round += 1;
                if this_round >= ACKS_BEFORE_KILL {
                    child.kill().unwrap(); // SIGKILL
                    break;
                }
            }
        }
        let status = child.wait().unwrap();
        assert_eq!(
            this_round, ACKS_BEFORE_KILL,
            "child exited early ({status}) after {this_round} acks"
        );

        let store = SledStore::open(dir.path()).unwrap();
        let mut missing = Vec::new();
        for serial in &acked {
            match store.get_certificate(serial).await {
                Ok(Some(c)) if c.der == payload(serial) && c == cert(serial) => {}
                other => missing.push((serial.clone(), format!("{other:?}"))),
            }
        }
        // Unacknowledged writes that made it anyway (informational).
        let mut extra = 0;
        for i in ACKS_BEFORE_KILL as u32..ACKS_BEFORE_KILL as u32 + 10 {
            let found = store.get_certificate(&ack_serial(round, i)).await;
            extra += usize::from(found.unwrap().is_some());
        }
        let bg_orders = store
            .list_orders("bg", None, usize::MAX)
            .await
            .unwrap()
            .len();
        eprintln!(
            "crash round {round}: {} acknowledged in total, {} missing or damaged, \
             {extra} unacknowledged certs and {bg_orders} background orders recovered",
            acked.len(),
            missing.len()
        );
        assert!(missing.is_empty(), "round {round}: lost {missing:?}");
        // The recovered database still takes writes.
        store
            .insert_certificate(&cert(&format!("ff{round:08x}")))
            .await
            .unwrap();
        store.flush().unwrap();
    }
    assert_eq!(acked.len(), ROUNDS as usize * ACKS_BEFORE_KILL);
}
