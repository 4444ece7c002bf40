//! Purging expired orders and authorizations (see [`crate::purge`]). One
//! statement per table: the candidates are picked with `FOR UPDATE SKIP
//! LOCKED` (a row another transaction is updating is left for next time)
//! and the `DELETE` re-checks the condition on the row it deletes.
//!
//! The filter reads the JSON document (`status`, `expires`), so each run
//! scans the table; runs are hourly and bounded by `limit`.

use deadpool_postgres::Pool;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::postgres::sql::Cached;
use crate::purge::{Purged, PURGEABLE_ORDER_STATUSES};
use crate::StoreError;

pub(crate) async fn purge_expired(
    pool: &Pool,
    before: OffsetDateTime,
    limit: usize,
) -> Result<Purged, StoreError> {
    let c = pool.get().await?;
    let before = before
        .format(&Rfc3339)
        .map_err(|e| StoreError::Backend(format!("cut-off time: {e}")))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let statuses: Vec<String> = PURGEABLE_ORDER_STATUSES
        .iter()
        .map(|s| s.to_string())
        .collect();
    let orders = c
        .execute_cached(
            "DELETE FROM orders WHERE id IN (
                 SELECT id FROM orders
                 WHERE (doc::jsonb->>'status') = ANY($1)
                   AND (doc::jsonb->>'expires')::timestamptz < $2::text::timestamptz
                 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
             AND (doc::jsonb->>'status') = ANY($1)
             AND (doc::jsonb->>'expires')::timestamptz < $2::text::timestamptz",
            &[&statuses, &before, &limit],
        )
        .await?;
    let authzs = c
        .execute_cached(
            "DELETE FROM authzs WHERE id IN (
                 SELECT id FROM authzs
                 WHERE (doc::jsonb->>'expires')::timestamptz < $1::text::timestamptz
                 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
             AND (doc::jsonb->>'expires')::timestamptz < $1::text::timestamptz",
            &[&before, &limit],
        )
        .await?;
    Ok(Purged { orders, authzs })
}
