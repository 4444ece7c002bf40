//! The hash-chained audit log (see [`crate::audit`]): `audit_log` rows by
//! seq, the one-row `audit_head`, and the sealed `audit_keys`. An append locks the head row
//! (`SELECT … FOR UPDATE`), so appends from any number of connections or
//! replicas are serialised and the chain never forks.

use deadpool_postgres::Pool;

use crate::audit::{AuditEntry, AuditEvent, AuditHead, AuditKeyRecord, AuditMacKey};
use crate::postgres::sql::{big, col, doc_of, docs_of, enc, unbig, Cached};
use crate::StoreError;

/// Appends inside the caller's transaction (the head stays locked until
/// it commits or rolls back).
pub(crate) async fn append_in<C: Cached>(
    c: &C,
    event: &AuditEvent,
    mac: Option<&AuditMacKey>,
) -> Result<AuditEntry, StoreError> {
    let row = c
        .query_one_cached(
            "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
            &[],
        )
        .await?;
    let head = head_of(&row)?;
    let entry = AuditEntry::next(head.as_ref(), event, mac).map_err(StoreError::Backend)?;
    let seq = big(entry.seq)?;
    // The entry and the new head in one statement (one round trip).
    c.execute_cached(
        "WITH entry AS (INSERT INTO audit_log (seq, doc) VALUES ($1, $2))
         UPDATE audit_head SET seq = $1, hash = $3 WHERE id = 1",
        &[&seq, &enc(&entry)?, &entry.entry_hash],
    )
    .await?;
    Ok(entry)
}

pub(crate) fn head_of(row: &tokio_postgres::Row) -> Result<Option<AuditHead>, StoreError> {
    let seq = unbig(col(row, 0)?)?;
    let hash: Option<String> = col(row, 1)?;
    match (seq, hash) {
        (0, _) => Ok(None),
        (seq, Some(hash)) => Ok(Some(AuditHead { seq, hash })),
        (_, None) => Err(StoreError::Corrupt("audit head without a hash".into())),
    }
}

pub(crate) async fn append(
    pool: &Pool,
    event: &AuditEvent,
    mac: Option<&AuditMacKey>,
) -> Result<AuditEntry, StoreError> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    let entry = append_in(&tx, event, mac).await?;
    tx.commit().await?;
    Ok(entry)
}

pub(crate) async fn entries(
    pool: &Pool,
    after: u64,
    limit: usize,
) -> Result<Vec<AuditEntry>, StoreError> {
    let c = pool.get().await?;
    // Beyond bigint nothing is stored.
    let Ok(after) = i64::try_from(after) else {
        return Ok(Vec::new());
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    docs_of(
        c.query_cached(
            "SELECT doc FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&after, &limit],
        )
        .await?,
    )
}

pub(crate) async fn head(pool: &Pool) -> Result<Option<AuditHead>, StoreError> {
    let c = pool.get().await?;
    let row = c
        .query_one_cached("SELECT seq, hash FROM audit_head WHERE id = 1", &[])
        .await?;
    head_of(&row)
}

/// Inserts unless the name exists (one statement: of concurrent creators
/// on any replica, one wins).
pub(crate) async fn create_key(pool: &Pool, record: &AuditKeyRecord) -> Result<bool, StoreError> {
    let c = pool.get().await?;
    let n = c
        .execute_cached(
            "INSERT INTO audit_keys (name, doc) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&record.name, &enc(record)?],
        )
        .await?;
    Ok(n == 1)
}

pub(crate) async fn get_key(pool: &Pool, name: &str) -> Result<Option<AuditKeyRecord>, StoreError> {
    let c = pool.get().await?;
    doc_of(
        c.query_opt_cached("SELECT doc FROM audit_keys WHERE name = $1", &[&name])
            .await?,
    )
}
