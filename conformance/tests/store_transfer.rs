//! `ironseal store export` / `ironseal store import` with the release
//! binary: a CA that ran on sled moves to PostgreSQL and back, and every
//! record survives (issue 11; progress lines: issue 12).
//!
//! On sled: three certificates through ACME (instant-acme), one revoked,
//! the CRL fetched. Stopped, exported. A truncated export imports nothing;
//! the good one imports into a fresh database, a second import into it is
//! refused. The server then starts on PostgreSQL with the same data
//! directory (KEK): `openssl ocsp` says revoked and good as before, the CRL
//! lists the revocation with a higher CRL number, `ironseal admin audit
//! --verify` passes, and the same account orders again. Then back: export
//! from PostgreSQL, import into a new sled data directory, export that, and
//! the two exports hold exactly the same records; every certificate record
//! of the first export is in them unchanged. Export and import draw their
//! progress on a terminal (run under `script`), and none with JSON logs.
//!
//! Needs `IRONSEAL_TEST_PG_URL` (see conformance/tests/postgres.rs).
//! Run: `cargo build --release -p ironseal && cargo test -p ironseal-conformance --test store_transfer`

#![allow(clippy::unwrap_used, reason = "tests: a panic is a test failure")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use instant_acme::{RevocationReason, RevocationRequest};
use ironseal_conformance::pg::{fresh_database, psql};
use ironseal_conformance::prelude::*;
use ironseal_conformance::proc;
use ironseal_conformance::pty::run_on_pty;
use rustls_pki_types::CertificateDer;

/// `ironseal store <args>` (JSON summary on stdout).
fn store_cmd(args: &[&str]) -> proc::Output {
    let mut c = Command::new(ironseal_bin().unwrap());
    c.arg("store").args(args).env_remove("IRONSEAL_LOG_FORMAT");
    proc::run(c, Duration::from_secs(120))
}

fn store_ok(args: &[&str]) -> serde_json::Value {
    let o = store_cmd(args);
    assert!(o.success(), "ironseal store {args:?}: {}", o.describe());
    serde_json::from_str(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", o.describe()))
}

/// The record lines of an export file (between header and trailer).
fn record_lines(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 2, "{} is too short", file.display());
    assert!(lines[0].contains("\"ironseal-export\""), "{}", lines[0]);
    assert!(lines[lines.len() - 1].starts_with("{\"end\""));
    lines[1..lines.len() - 1]
        .iter()
        .filter(|l| l.starts_with("{\"record\""))
        .map(|l| l.to_string())
        .collect()
}

fn kind_of(line: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v["record"]["kind"].as_str().unwrap().to_string()
}

/// GetCACert's answer (the SCEP RA and issuing CA certificates).
fn scep_ca_certs(srv: &Server) -> Vec<u8> {
    let url = format!("{}/scep?operation=GetCACert", srv.http_base_url());
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "10", &url])
        .output()
        .unwrap();
    assert!(out.status.success(), "GetCACert: {out:?}");
    assert!(!out.stdout.is_empty(), "GetCACert: empty");
    out.stdout
}

struct Leaf {
    pem: PathBuf,
    serial: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_to_postgres_and_back_keeps_every_record() {
    let mut env = Env::start("store-transfer").await;
    let work = env.path().join("transfer");
    std::fs::create_dir_all(&work).unwrap();
    let data = env.srv.data.clone();
    let root = env.srv.root();

    // On sled: three certificates, one revoked.
    let (acct, _) = env.account().await;
    let mut leaves = Vec::new();
    let inter = work.join("inter.pem");
    for n in 0..3 {
        let c = issue(
            &acct,
            &env.h01,
            None,
            &[dns(&format!("t{n}.move.test"))],
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("issue: {e}\n{}", env.srv.log_tail()));
        let pem = work.join(format!("leaf{n}.pem"));
        std::fs::write(&pem, c.leaf_pem()).unwrap();
        let chain = ironseal_conformance::certs::pem_blocks(&c.chain);
        std::fs::write(&inter, &chain[1]).unwrap();
        leaves.push((
            Leaf {
                pem,
                serial: der_serial(&c.leaf_der),
            },
            c.leaf_der,
        ));
    }
    acct.revoke(&RevocationRequest {
        certificate: &CertificateDer::from(leaves[0].1.clone()),
        reason: Some(RevocationReason::KeyCompromise),
    })
    .await
    .unwrap();
    let crl_url = blocking(|| crl_dp(&leaves[0].0.pem));
    let crl_before = blocking(|| crl_number(&crl_fetch(&crl_url, &work)));
    // The issuing-CA pin (kept in the store) travels with the export.
    let issuing_id = issuing_in(&admin_ok(&env.srv, &["cas", "list"]))["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The SCEP RA certificate (a store setting) travels too: devices that
    // cached it keep encrypting to a key the new store holds.
    let ra_before = blocking(|| scep_ca_certs(&env.srv));
    blocking(|| env.srv.stop());

    // Export the sled store.
    let sled_export = work.join("sled.export");
    let data_arg = data.display().to_string();
    let summary = blocking(|| {
        store_ok(&[
            "export",
            "--data-dir",
            &data_arg,
            "--out",
            sled_export.to_str().unwrap(),
        ])
    });
    assert_eq!(summary["engine"], "sled", "{summary}");
    assert!(
        summary["records"]["certificate"].as_u64().unwrap() >= 3,
        "{summary}"
    );
    assert_eq!(summary["files"], serde_json::json!(["issuing-ca"]));
    let sled_records = record_lines(&sled_export);
    assert_eq!(
        sled_records.len() as u64,
        summary["entries"].as_u64().unwrap() - 1,
        "entries = records + the issuing-ca file"
    );
    let again = blocking(|| {
        store_cmd(&[
            "export",
            "--data-dir",
            &data_arg,
            "--out",
            sled_export.to_str().unwrap(),
        ])
    });
    assert!(
        !again.success() && again.stderr.contains("exists"),
        "an export overwrote a file: {}",
        again.describe()
    );

    // A truncated export imports nothing.
    let damaged = work.join("damaged.export");
    let bytes = std::fs::read(&sled_export).unwrap();
    std::fs::write(&damaged, &bytes[..bytes.len() - 20]).unwrap();
    let scratch = blocking(fresh_database);
    let r = blocking(|| {
        store_cmd(&[
            "import",
            "--postgres-url",
            &scratch,
            "--data-dir",
            work.join("scratch").to_str().unwrap(),
            "--from",
            damaged.to_str().unwrap(),
        ])
    });
    assert!(
        !r.success(),
        "a truncated export imported: {}",
        r.describe()
    );
    assert!(r.stderr.contains("not a usable"), "{}", r.describe());
    // Checked before the store is even opened: no schema, no rows.
    let tables = blocking(|| {
        psql(
            &scratch,
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'cas'",
        )
    });
    assert_eq!(tables, "0", "a refused import touched the database");

    // The real import, into a fresh database; the pin comes along (into
    // the store).
    let url = blocking(fresh_database);
    let imported = blocking(|| {
        store_ok(&[
            "import",
            "--postgres-url",
            &url,
            "--data-dir",
            &data_arg,
            "--from",
            sled_export.to_str().unwrap(),
        ])
    });
    assert_eq!(imported["records"], summary["records"], "{imported}");
    let pin = blocking(|| {
        psql(
            &url,
            "SELECT convert_from(value, 'UTF8') FROM settings WHERE name = 'issuing-ca'",
        )
    });
    assert_eq!(pin, issuing_id);
    let certs = blocking(|| psql(&url, "SELECT count(*) FROM certificates"));
    assert_eq!(certs, summary["records"]["certificate"].to_string());
    let twice = blocking(|| {
        store_cmd(&[
            "import",
            "--postgres-url",
            &url,
            "--data-dir",
            &data_arg,
            "--from",
            sled_export.to_str().unwrap(),
        ])
    });
    assert!(
        !twice.success() && twice.stderr.contains("already holds data"),
        "{}",
        twice.describe()
    );

    // Progress on a terminal, none with JSON logs: export and import.
    let bin = ironseal_bin().unwrap().display().to_string();
    let tty_db = blocking(fresh_database);
    let shown = blocking(|| {
        run_on_pty(
            &format!(
                "{bin} store export --data-dir {data_arg} --out {}",
                work.join("tty.export").display()
            ),
            &[],
        )
    });
    assert!(
        shown.success() && shown.combined().contains("exporting: "),
        "no export progress on a terminal: {}",
        shown.describe()
    );
    let shown = blocking(|| {
        run_on_pty(
            &format!(
                "{bin} store import --postgres-url '{tty_db}' --data-dir {} --from {}",
                work.join("tty-data").display(),
                sled_export.display()
            ),
            &[],
        )
    });
    assert!(
        shown.success() && shown.combined().contains("importing: "),
        "no import progress on a terminal: {}",
        shown.describe()
    );
    let quiet = blocking(|| {
        run_on_pty(
            &format!(
                "{bin} store export --data-dir {data_arg} --out {} --log-format json",
                work.join("quiet.export").display()
            ),
            &[],
        )
    });
    assert!(
        quiet.success() && !quiet.combined().contains("exporting: "),
        "progress in JSON mode: {}",
        quiet.describe()
    );

    // The same CA on PostgreSQL.
    env.srv.set_config(&format!(
        "[storage]\nbackend = \"postgres\"\nurl = \"{url}\"\npool_size = 4\n"
    ));
    blocking(|| env.srv.start());
    let status = |leaf: &Path| blocking(|| ocsp_status(&env.srv, &inter, leaf, &root, &inter));
    assert_eq!(
        blocking(|| scep_ca_certs(&env.srv)),
        ra_before,
        "GetCACert (RA and issuing CA) changed with the store move"
    );
    assert_eq!(status(&leaves[0].0.pem), "revoked");
    assert_eq!(status(&leaves[1].0.pem), "good");
    let crl = blocking(|| crl_fetch(&crl_url, &work));
    let crl_after = blocking(|| crl_number(&crl));
    assert!(
        crl_after > crl_before,
        "the CRL number went from {crl_before} to {crl_after}"
    );
    let (on_crl, text) = blocking(|| crl_serials(&crl_url, &work));
    assert!(on_crl.contains(&leaves[0].0.serial), "{text}");
    assert!(!on_crl.contains(&leaves[1].0.serial), "{text}");
    let audit = blocking(|| admin(&env.srv, &["audit", "--verify", "--limit", "1"]));
    assert_eq!(
        audit.code,
        Some(0),
        "audit: {}\n{}",
        audit.stdout,
        audit.stderr
    );
    // The account moved too: it orders again, with a new serial.
    let c = issue(&acct, &env.h01, None, &[dns("after.move.test")], None)
        .await
        .unwrap_or_else(|e| panic!("issue on PostgreSQL: {e}\n{}", env.srv.log_tail()));
    let serial = der_serial(&c.leaf_der);
    assert!(leaves.iter().all(|(l, _)| l.serial != serial));
    blocking(|| env.srv.stop());

    // And back to sled: PostgreSQL → export → new data dir → export.
    let pg_export = work.join("pg.export");
    let s = blocking(|| {
        store_ok(&[
            "export",
            "--postgres-url",
            &url,
            "--data-dir",
            &data_arg,
            "--out",
            pg_export.to_str().unwrap(),
        ])
    });
    assert_eq!(s["engine"], "postgres");
    let back = work.join("back");
    let back_arg = back.display().to_string();
    blocking(|| {
        store_ok(&[
            "import",
            "--data-dir",
            &back_arg,
            "--from",
            pg_export.to_str().unwrap(),
        ])
    });
    assert!(back.join("db").exists());
    let back_export = work.join("back.export");
    blocking(|| {
        store_ok(&[
            "export",
            "--data-dir",
            &back_arg,
            "--out",
            back_export.to_str().unwrap(),
        ])
    });
    let pg_records = record_lines(&pg_export);
    assert_eq!(
        record_lines(&back_export),
        pg_records,
        "sled and PostgreSQL exports of the same store differ"
    );
    // Every certificate of the first export is there unchanged (and the
    // one issued on PostgreSQL besides).
    let pg_set: BTreeSet<&String> = pg_records.iter().collect();
    let sled_certs: Vec<&String> = sled_records
        .iter()
        .filter(|l| kind_of(l) == "certificate")
        .collect();
    assert!(sled_certs.len() >= 3);
    for line in &sled_certs {
        assert!(
            pg_set.contains(line),
            "a certificate changed on the way: {line}"
        );
    }
    // The leaf issued on PostgreSQL came back too (besides the server's
    // own certificates a start may renew).
    let serials: BTreeSet<String> = pg_records
        .iter()
        .filter(|l| kind_of(l) == "certificate")
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            norm_serial(v["record"]["doc"]["serial"].as_str().unwrap())
        })
        .collect();
    assert!(serials.contains(&serial), "{serial} not in {serials:?}");
}
