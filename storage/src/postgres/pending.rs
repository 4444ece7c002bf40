//! Counting an account's unfinished orders and authorizations (see
//! [`crate::pending`]) through the partial indexes of migration 4; each
//! count stops at `limit` rows.

use deadpool_postgres::Pool;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::pending::PendingCounts;
use crate::postgres::sql::{col, Cached};
use crate::StoreError;

pub(crate) async fn count_pending(
    pool: &Pool,
    account_id: &str,
    now: OffsetDateTime,
    limit: usize,
) -> Result<PendingCounts, StoreError> {
    let c = pool.get().await?;
    let now = now
        .format(&Rfc3339)
        .map_err(|e| StoreError::Backend(format!("time: {e}")))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let row = c
        .query_one_cached(
            "SELECT
               (SELECT count(*) FROM (SELECT 1 FROM orders
                  WHERE account_id = $1
                    AND (doc::jsonb->>'status') IN ('pending', 'ready')
                    AND (doc::jsonb->>'expires')::timestamptz > $2::text::timestamptz
                  LIMIT $3) o),
               (SELECT count(*) FROM (SELECT 1 FROM authzs
                  WHERE account_id = $1
                    AND (doc::jsonb->>'status') = 'pending'
                    AND (doc::jsonb->>'expires')::timestamptz > $2::text::timestamptz
                  LIMIT $3) a)",
            &[&account_id, &now, &limit],
        )
        .await?;
    let orders: i64 = col(&row, 0)?;
    let authzs: i64 = col(&row, 1)?;
    Ok(PendingCounts {
        orders: u64::try_from(orders).unwrap_or(0),
        authzs: u64::try_from(authzs).unwrap_or(0),
    })
}
