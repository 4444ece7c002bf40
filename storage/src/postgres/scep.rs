//! SCEP transactions (RFC 8894 §3.2.1.1), written and removed by
//! compare-and-swap: the stored record must equal the expected one, checked
//! under the row lock (or, for "none expected", by the primary key).

use deadpool_postgres::Pool;

use time::OffsetDateTime;

use crate::postgres::sql::{doc_of, docs_of, enc, Cached};
use crate::scep::ScepTransactionRecord;
use crate::StoreError;

pub(crate) async fn get(
    pool: &Pool,
    id: &str,
) -> Result<Option<ScepTransactionRecord>, StoreError> {
    let c = pool.get().await?;
    doc_of(
        c.query_opt_cached(
            "SELECT doc FROM scep_transactions WHERE transaction_id = $1",
            &[&id],
        )
        .await?,
    )
}

pub(crate) async fn put(
    pool: &Pool,
    record: &ScepTransactionRecord,
    expected: Option<&ScepTransactionRecord>,
) -> Result<bool, StoreError> {
    let mut c = pool.get().await?;
    let Some(expected) = expected else {
        let n = c
            .execute_cached(
                "INSERT INTO scep_transactions (transaction_id, doc) VALUES ($1, $2)
                 ON CONFLICT (transaction_id) DO NOTHING",
                &[&record.transaction_id, &enc(record)?],
            )
            .await?;
        return Ok(n == 1);
    };
    let tx = c.transaction().await?;
    if !replace_in(&tx, expected, record).await? {
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

/// Inside the caller's transaction: locks the row of `expected`'s
/// transactionID and, if the stored record equals `expected`, replaces it
/// with `record`. False (nothing written) otherwise.
pub(crate) async fn replace_in<C: Cached>(
    c: &C,
    expected: &ScepTransactionRecord,
    record: &ScepTransactionRecord,
) -> Result<bool, StoreError> {
    let row = c
        .query_opt_cached(
            "SELECT doc FROM scep_transactions WHERE transaction_id = $1 FOR UPDATE",
            &[&expected.transaction_id],
        )
        .await?;
    if doc_of::<ScepTransactionRecord>(row)?.as_ref() != Some(expected) {
        return Ok(false);
    }
    c.execute_cached(
        "UPDATE scep_transactions SET doc = $2 WHERE transaction_id = $1",
        &[&record.transaction_id, &enc(record)?],
    )
    .await?;
    Ok(true)
}

pub(crate) async fn delete(
    pool: &Pool,
    expected: &ScepTransactionRecord,
) -> Result<bool, StoreError> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    let row = tx
        .query_opt_cached(
            "SELECT doc FROM scep_transactions WHERE transaction_id = $1 FOR UPDATE",
            &[&expected.transaction_id],
        )
        .await?;
    if doc_of::<ScepTransactionRecord>(row)?.as_ref() != Some(expected) {
        return Ok(false);
    }
    tx.execute_cached(
        "DELETE FROM scep_transactions WHERE transaction_id = $1",
        &[&expected.transaction_id],
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Records written before `before` (their `updated_at`, RFC 3339 in the
/// document), in transactionID order after `after`.
pub(crate) async fn before(
    pool: &Pool,
    before: OffsetDateTime,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<ScepTransactionRecord>, StoreError> {
    let c = pool.get().await?;
    let before = before
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| StoreError::Backend(format!("cut-off time: {e}")))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = c
        .query_cached(
            "SELECT doc FROM scep_transactions
             WHERE ($1::text IS NULL OR transaction_id > $1)
               AND (doc::jsonb ->> 'updated_at')::timestamptz < $2::text::timestamptz
             ORDER BY transaction_id LIMIT $3",
            &[&after, &before, &limit],
        )
        .await?;
    docs_of(rows)
}
