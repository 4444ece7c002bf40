//! Admin API keys; disabling checks "not the last enabled admin key" under
//! a table lock, so two concurrent disables of the last two leave one.

use deadpool_postgres::Pool;
use time::OffsetDateTime;

use crate::postgres::sql::{conflict_on_unique, doc_of, docs_of, enc, ns, Cached};
use crate::records::{ApiKeyRecord, ApiRole};
use crate::StoreError;

pub(crate) async fn create(pool: &Pool, key: &ApiKeyRecord) -> Result<(), StoreError> {
    let c = pool.get().await?;
    conflict_on_unique(
        c.execute_cached(
            "INSERT INTO api_keys (id, created_ns, doc) VALUES ($1, $2, $3)",
            &[&key.id, &ns(key.created_at)?, &enc(key)?],
        )
        .await,
        "API key id exists",
    )?;
    Ok(())
}

pub(crate) async fn get(pool: &Pool, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
    let c = pool.get().await?;
    doc_of(
        c.query_opt_cached("SELECT doc FROM api_keys WHERE id = $1", &[&id])
            .await?,
    )
}

pub(crate) async fn list(pool: &Pool) -> Result<Vec<ApiKeyRecord>, StoreError> {
    let c = pool.get().await?;
    docs_of(
        c.query_cached("SELECT doc FROM api_keys ORDER BY created_ns, id", &[])
            .await?,
    )
}

pub(crate) async fn disable(
    pool: &Pool,
    id: &str,
    at: OffsetDateTime,
) -> Result<ApiKeyRecord, StoreError> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    // (A simple query: one round trip, nothing to prepare or cache.)
    // SHARE ROW EXCLUSIVE conflicts with itself and with every row write:
    // disables (and creates) are serialised while readers go on. Keys are
    // few and disabling is rare, so the whole table is read.
    tx.batch_execute("LOCK TABLE api_keys IN SHARE ROW EXCLUSIVE MODE")
        .await?;
    let keys: Vec<ApiKeyRecord> = docs_of(tx.query_cached("SELECT doc FROM api_keys", &[]).await?)?;
    let enabled_admins = keys
        .iter()
        .filter(|k| k.role == ApiRole::Admin && k.disabled_at.is_none())
        .count();
    let mut key = keys
        .into_iter()
        .find(|k| k.id == id)
        .ok_or(StoreError::NotFound)?;
    if key.disabled_at.is_some() {
        return Err(StoreError::Conflict("API key already disabled".into()));
    }
    if key.role == ApiRole::Admin && enabled_admins <= 1 {
        return Err(StoreError::LastAdminKey);
    }
    key.disabled_at = Some(at);
    tx.execute_cached(
        "UPDATE api_keys SET doc = $2 WHERE id = $1",
        &[&key.id, &enc(&key)?],
    )
    .await?;
    tx.commit().await?;
    Ok(key)
}
