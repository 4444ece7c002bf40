//! CA records and CRL numbers (RFC 5280 §5.2.3).

use deadpool_postgres::Pool;

use crate::postgres::sql::{col, doc_of, docs_of, enc, ns, unbig, Cached};
use crate::records::CaRecord;
use crate::StoreError;

pub(crate) async fn put(pool: &Pool, ca: &CaRecord) -> Result<(), StoreError> {
    let c = pool.get().await?;
    c.execute_cached(
        "INSERT INTO cas (id, created_ns, doc) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET created_ns = excluded.created_ns, doc = excluded.doc",
        &[&ca.id, &ns(ca.created_at)?, &enc(ca)?],
    )
    .await?;
    Ok(())
}

pub(crate) async fn get(pool: &Pool, id: &str) -> Result<Option<CaRecord>, StoreError> {
    let c = pool.get().await?;
    doc_of(
        c.query_opt_cached("SELECT doc FROM cas WHERE id = $1", &[&id])
            .await?,
    )
}

pub(crate) async fn list(pool: &Pool) -> Result<Vec<CaRecord>, StoreError> {
    let c = pool.get().await?;
    docs_of(
        c.query_cached("SELECT doc FROM cas ORDER BY created_ns, id", &[])
            .await?,
    )
}

/// One statement: insert 1 or increment, returning the new number, so
/// concurrent callers (on any replica) never get the same number.
pub(crate) async fn next_crl_number(pool: &Pool, ca_id: &str) -> Result<u64, StoreError> {
    let c = pool.get().await?;
    let row = c
        .query_one_cached(
            "INSERT INTO crl_numbers (ca_id, last) VALUES ($1, 1)
             ON CONFLICT (ca_id) DO UPDATE SET last = crl_numbers.last + 1
             RETURNING last",
            &[&ca_id],
        )
        .await?;
    // At i64::MAX PostgreSQL refuses the increment ("bigint out of range").
    unbig(col(&row, 0)?)
}
