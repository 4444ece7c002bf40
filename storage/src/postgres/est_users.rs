//! EST users for HTTP Basic authentication (RFC 7030 §3.2.3).

use deadpool_postgres::Pool;
use time::OffsetDateTime;

use crate::est_users::EstUserRecord;
use crate::postgres::sql::{conflict_on_unique, doc_of, docs_of, enc, Cached};
use crate::StoreError;

pub(crate) async fn create(pool: &Pool, user: &EstUserRecord) -> Result<(), StoreError> {
    let c = pool.get().await?;
    conflict_on_unique(
        c.execute_cached(
            "INSERT INTO est_users (username, tenant_id, doc) VALUES ($1, $2, $3)",
            &[&user.username, &user.tenant_id, &enc(user)?],
        )
        .await,
        "EST user exists",
    )?;
    Ok(())
}

pub(crate) async fn get(pool: &Pool, username: &str) -> Result<Option<EstUserRecord>, StoreError> {
    let c = pool.get().await?;
    doc_of(
        c.query_opt_cached(
            "SELECT doc FROM est_users WHERE username = $1",
            &[&username],
        )
        .await?,
    )
}

pub(crate) async fn list(
    pool: &Pool,
    tenant_id: Option<&str>,
) -> Result<Vec<EstUserRecord>, StoreError> {
    let c = pool.get().await?;
    let rows = match tenant_id {
        None => {
            c.query_cached("SELECT doc FROM est_users ORDER BY username", &[])
                .await?
        }
        Some(t) => {
            c.query_cached(
                "SELECT doc FROM est_users WHERE tenant_id = $1 ORDER BY username",
                &[&t],
            )
            .await?
        }
    };
    docs_of(rows)
}

pub(crate) async fn disable(
    pool: &Pool,
    username: &str,
    at: OffsetDateTime,
) -> Result<EstUserRecord, StoreError> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    let row = tx
        .query_opt_cached(
            "SELECT doc FROM est_users WHERE username = $1 FOR UPDATE",
            &[&username],
        )
        .await?;
    let mut u: EstUserRecord = doc_of(row)?.ok_or(StoreError::NotFound)?;
    if u.disabled_at.is_some() {
        return Err(StoreError::Conflict("EST user already disabled".into()));
    }
    u.disabled_at = Some(at);
    tx.execute_cached(
        "UPDATE est_users SET doc = $2 WHERE username = $1",
        &[&username, &enc(&u)?],
    )
    .await?;
    tx.commit().await?;
    Ok(u)
}
