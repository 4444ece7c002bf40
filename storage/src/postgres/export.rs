//! Export and verbatim import (`ironseal store export` / `import`, see
//! [`crate::export`]).
//!
//! An export reads every table in one `REPEATABLE READ READ ONLY`
//! transaction, so it is one consistent snapshot even while replicas keep
//! writing. Rows are fetched through a portal in batches and handed to the
//! caller's thread over a bounded channel: memory stays bounded however
//! large the database is.

use deadpool_postgres::Pool;
use tokio_postgres::IsolationLevel;

use crate::audit::AuditEntry;
use crate::export::{CrlNumber, ExportRecord, ExportSink};
use crate::postgres::audit::head_of;
use crate::postgres::sql::{big, col, dec, enc, unbig, Cached};
use crate::settings::NamedSetting;
use crate::StoreError;

/// Rows fetched per round trip.
const BATCH: i32 = 500;

/// The tables in export order with their key column (rows go out in key
/// order, so two exports of one state are identical).
const TABLES: &[(&str, &str)] = &[
    ("cas", "id"),
    ("audit_keys", "name"),
    ("settings", "name"),
    ("tenants", "id"),
    ("api_keys", "id"),
    ("eab_keys", "kid"),
    ("est_users", "username"),
    ("accounts", "id"),
    ("orders", "id"),
    ("authzs", "id"),
    ("certificates", "serial"),
    ("blocked_keys", "public_key_sha256"),
    ("crl_numbers", "ca_id"),
    ("approvals", "id"),
    ("scep_transactions", "transaction_id"),
    ("scep_challenges", "challenge_hash"),
    ("audit_log", "seq"),
];

/// One row of `table` as its export record.
fn record(table: &str, row: &tokio_postgres::Row) -> Result<ExportRecord, StoreError> {
    let doc = || col::<&str>(row, 0);
    Ok(match table {
        "cas" => ExportRecord::Ca(dec(doc()?)?),
        "audit_keys" => ExportRecord::AuditKey(dec(doc()?)?),
        "settings" => ExportRecord::Setting(NamedSetting {
            name: col::<String>(row, 0)?,
            value: col::<Vec<u8>>(row, 1)?,
        }),
        "tenants" => ExportRecord::Tenant(dec(doc()?)?),
        "api_keys" => ExportRecord::ApiKey(dec(doc()?)?),
        "eab_keys" => ExportRecord::EabKey(dec(doc()?)?),
        "est_users" => ExportRecord::EstUser(dec(doc()?)?),
        "accounts" => ExportRecord::Account(dec(doc()?)?),
        "orders" => ExportRecord::Order(dec(doc()?)?),
        "authzs" => ExportRecord::Authz(dec(doc()?)?),
        "certificates" => ExportRecord::Certificate(dec(doc()?)?),
        "blocked_keys" => ExportRecord::BlockedKey(col::<String>(row, 0)?),
        "crl_numbers" => ExportRecord::CrlNumber(CrlNumber {
            ca_id: col::<String>(row, 0)?,
            last: unbig(col(row, 1)?)?,
        }),
        "approvals" => ExportRecord::Approval(dec(doc()?)?),
        "scep_transactions" => ExportRecord::ScepTransaction(dec(doc()?)?),
        "scep_challenges" => ExportRecord::ScepChallenge(dec(doc()?)?),
        "audit_log" => ExportRecord::AuditEntry(dec(doc()?)?),
        other => return Err(StoreError::Backend(format!("no export for table {other}"))),
    })
}

/// The columns an export reads from `table`.
fn columns(table: &str) -> &'static str {
    match table {
        "blocked_keys" => "public_key_sha256",
        "crl_numbers" => "ca_id, last",
        "settings" => "name, value",
        _ => "doc",
    }
}

/// Hands every record to `sink`, table by table in [`TABLES`]'s order,
/// from one read-only REPEATABLE READ snapshot, fetched in batches of
/// [`BATCH`] rows through a portal (memory stays bounded); returns how
/// many. An error from `sink` stops the export.
pub(crate) async fn export(pool: &Pool, sink: &mut ExportSink<'_>) -> Result<u64, StoreError> {
    let mut c = pool.get().await?;
    let tx = c
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let mut n = 0;
    for (table, key) in TABLES {
        // Built per table and run once per export: not worth a cache entry.
        let stmt = tx
            .prepare(&format!(
                "SELECT {} FROM {table} ORDER BY {key}",
                columns(table)
            ))
            .await?;
        let portal = tx.bind(&stmt, &[]).await?;
        loop {
            let rows = tx.query_portal(&portal, BATCH).await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                sink(record(table, row)?)?;
                n += 1;
            }
        }
    }
    tx.commit().await?;
    Ok(n)
}

/// How many rows an export would hand out.
pub(crate) async fn count(pool: &Pool) -> Result<u64, StoreError> {
    let c = pool.get().await?;
    let sum = TABLES
        .iter()
        .map(|(t, _)| format!("(SELECT count(*) FROM {t})"))
        .collect::<Vec<_>>()
        .join(" + ");
    let row = c
        .query_one_cached(&format!("SELECT ({sum})::bigint"), &[])
        .await?;
    unbig(col(&row, 0)?)
}

/// Appends `entry` verbatim after checking, under the head row's lock,
/// that it follows the head.
pub(crate) async fn import_audit_entry(pool: &Pool, entry: &AuditEntry) -> Result<(), StoreError> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    let row = tx
        .query_one_cached(
            "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await?;
    entry
        .check_follows(head_of(&row)?.as_ref())
        .map_err(StoreError::Corrupt)?;
    let seq = big(entry.seq)?;
    tx.execute_cached(
        "INSERT INTO audit_log (seq, doc) VALUES ($1, $2)",
        &[&seq, &enc(entry)?],
    )
    .await?;
    tx.execute_cached(
        "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1",
        &[&seq, &entry.entry_hash],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Sets the last CRL number of a CA.
pub(crate) async fn set_crl_number(pool: &Pool, ca_id: &str, last: u64) -> Result<(), StoreError> {
    let c = pool.get().await?;
    let last = big(last)?;
    c.execute_cached(
        "INSERT INTO crl_numbers (ca_id, last) VALUES ($1, $2)
         ON CONFLICT (ca_id) DO UPDATE SET last = EXCLUDED.last",
        &[&ca_id, &last],
    )
    .await?;
    Ok(())
}
