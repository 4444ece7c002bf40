//! Where the key-encryption key lives (issue 10 item 7), black box: a
//! first start with no KEK configured creates it beside the data directory
//! (`<data dir>.kek`), never in it, and says to back it up separately; a
//! KEK inside the data directory (the old default layout, or configured
//! there) or inside the backup directory is refused with what to do, and
//! `--allow-kek-in-data-dir` forces it.
//!
//! Run: `cargo build --release -p ironseal && cargo test -p ironseal-conformance --test kek_place`
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, reason = "tests: a panic is a test failure")]

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use ironseal_conformance::prelude::*;

/// A start that must be refused, with every `needle` in its output.
#[track_caller]
fn refused(srv: &mut Server, needles: &[&str]) {
    let o = blocking(|| srv.run_until_exit(Duration::from_secs(30))).unwrap();
    assert!(
        !o.timed_out() && !o.success(),
        "started although refused:\n{}",
        o.describe()
    );
    for n in needles {
        assert!(o.combined().contains(n), "no {n:?} in:\n{}", o.describe());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kek_lives_outside_the_data_directory() {
    if std::env::var_os("IRONSEAL_KEK").is_some() {
        panic!("unset IRONSEAL_KEK: this test checks the KEK file");
    }
    let dir = tempfile::tempdir().unwrap();
    let mut srv = Server::without_dns(dir.path());

    // Zero-setup first start: the KEK is created beside the data dir.
    blocking(|| srv.start());
    let kek = srv.kek_path();
    assert_eq!(kek, dir.path().join("ironseal-data.kek"));
    let mode = std::fs::metadata(&kek).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(!srv.data.join("kek").exists());
    let log = std::fs::read_to_string(srv.log_path()).unwrap();
    assert!(
        log.contains("back it up separately") && log.contains("ironseal-data.kek"),
        "no clear message where the KEK is:\n{log}"
    );
    let root = std::fs::read_to_string(srv.root()).unwrap();
    blocking(|| srv.stop());

    // The old layout (data/kek, no kek_file): refused with what to do, and
    // no second key made.
    let legacy = srv.data.join("kek");
    std::fs::rename(&kek, &legacy).unwrap();
    refused(
        &mut srv,
        &[
            "inside the data directory",
            "mv ",
            "ironseal-data.kek",
            "kek_file",
        ],
    );
    assert!(!kek.exists(), "a new KEK was made beside the old one");

    // Configured inside the data directory: refused too.
    srv.extra = vec!["--kek-file".into(), legacy.display().to_string()];
    refused(
        &mut srv,
        &["is inside the data directory", "--allow-kek-in-data-dir"],
    );

    // Forced: starts on the same CA.
    srv.extra.push("--allow-kek-in-data-dir".into());
    blocking(|| srv.start());
    assert_eq!(std::fs::read_to_string(srv.root()).unwrap(), root);
    blocking(|| srv.stop());
    // Forced, old layout without kek_file: the old file is used.
    srv.extra = vec!["--allow-kek-in-data-dir".into()];
    blocking(|| srv.start());
    assert_eq!(std::fs::read_to_string(srv.root()).unwrap(), root);
    assert!(!kek.exists());
    blocking(|| srv.stop());

    // Inside the backup directory: refused.
    let backups = dir.path().join("backups");
    std::fs::create_dir_all(&backups).unwrap();
    let in_backups = backups.join("kek");
    std::fs::rename(&legacy, &in_backups).unwrap();
    srv.extra = vec![
        "--backup-dir".into(),
        backups.display().to_string(),
        "--kek-file".into(),
        in_backups.display().to_string(),
    ];
    refused(&mut srv, &["is inside the backup directory"]);

    // Moved out as the message says: starts on the same CA.
    std::fs::rename(&in_backups, &kek).unwrap();
    srv.extra.clear();
    blocking(|| srv.start());
    assert_eq!(std::fs::read_to_string(srv.root()).unwrap(), root);
    blocking(|| srv.stop());
}
