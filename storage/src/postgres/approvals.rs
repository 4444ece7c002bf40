//! The approval queue (two-person integrity): status moves by
//! compare-and-swap under the row lock.

use deadpool_postgres::Pool;

use crate::approvals::{ApprovalRecord, ApprovalStatus};
use crate::postgres::sql::{conflict_on_unique, doc_of, docs_of, enc, ns, Cached};
use crate::StoreError;

pub(crate) async fn create(pool: &Pool, a: &ApprovalRecord) -> Result<(), StoreError> {
    let c = pool.get().await?;
    conflict_on_unique(
        c.execute_cached(
            "INSERT INTO approvals (id, status, requested_ns, doc) VALUES ($1, $2, $3, $4)",
            &[&a.id, &a.status.as_str(), &ns(a.requested_at)?, &enc(a)?],
        )
        .await,
        "approval id exists",
    )?;
    Ok(())
}

pub(crate) async fn get(pool: &Pool, id: &str) -> Result<Option<ApprovalRecord>, StoreError> {
    let c = pool.get().await?;
    doc_of(
        c.query_opt_cached("SELECT doc FROM approvals WHERE id = $1", &[&id])
            .await?,
    )
}

pub(crate) async fn list(
    pool: &Pool,
    status: Option<ApprovalStatus>,
) -> Result<Vec<ApprovalRecord>, StoreError> {
    let c = pool.get().await?;
    let rows = match status {
        None => {
            c.query_cached("SELECT doc FROM approvals ORDER BY requested_ns, id", &[])
                .await?
        }
        Some(s) => {
            c.query_cached(
                "SELECT doc FROM approvals WHERE status = $1 ORDER BY requested_ns, id",
                &[&s.as_str()],
            )
            .await?
        }
    };
    docs_of(rows)
}

pub(crate) async fn update(
    pool: &Pool,
    a: &ApprovalRecord,
    expected: ApprovalStatus,
) -> Result<bool, StoreError> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    let row = tx
        .query_opt_cached(
            "SELECT doc FROM approvals WHERE id = $1 FOR UPDATE",
            &[&a.id],
        )
        .await?;
    let stored: ApprovalRecord = doc_of(row)?.ok_or(StoreError::NotFound)?;
    if stored.status != expected {
        return Ok(false);
    }
    tx.execute_cached(
        "UPDATE approvals SET status = $2, requested_ns = $3, doc = $4 WHERE id = $1",
        &[&a.id, &a.status.as_str(), &ns(a.requested_at)?, &enc(a)?],
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}
