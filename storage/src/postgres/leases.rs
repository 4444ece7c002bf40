//! Leases shared by every replica (`leases`, migration 6; see
//! [`crate::leases`]). Acquire and release are one statement each, so the
//! row lock of the upsert orders concurrent callers on any replica.

use deadpool_postgres::Pool;
use tokio_postgres::Row;

use crate::leases::{Lease, RELEASED};
use crate::postgres::sql::{col, unbig, Cached};
use crate::StoreError;

fn lease_of(r: &Row) -> Result<Lease, StoreError> {
    Ok(Lease {
        name: col(r, 0)?,
        holder: col(r, 1)?,
        token: unbig(col(r, 2)?)?,
        expires_ns: col(r, 3)?,
    })
}

/// Insert, or take over a free lease (token + 1), or renew our live one
/// (same token); a live lease of another holder fails the WHERE and no row
/// comes back.
pub(crate) async fn acquire(
    pool: &Pool,
    name: &str,
    holder: &str,
    now_ns: i64,
    ttl_ns: i64,
) -> Result<Option<Lease>, StoreError> {
    let c = pool.get().await?;
    let expires = now_ns.saturating_add(ttl_ns.max(1));
    let row = c
        .query_opt_cached(
            "INSERT INTO leases AS l (name, holder, token, expires_ns) VALUES ($1, $2, 1, $4)
             ON CONFLICT (name) DO UPDATE
             SET holder = excluded.holder,
                 token = CASE WHEN l.holder = excluded.holder AND l.expires_ns > $3
                              THEN l.token ELSE l.token + 1 END,
                 expires_ns = excluded.expires_ns
             WHERE l.expires_ns <= $3 OR l.holder = excluded.holder
             RETURNING name, holder, token, expires_ns",
            &[&name, &holder, &now_ns, &expires],
        )
        .await?;
    row.as_ref().map(lease_of).transpose()
}

pub(crate) async fn release(pool: &Pool, name: &str, holder: &str) -> Result<bool, StoreError> {
    let c = pool.get().await?;
    let n = c
        .execute_cached(
            "UPDATE leases SET expires_ns = $3
             WHERE name = $1 AND holder = $2 AND expires_ns <> $3",
            &[&name, &holder, &RELEASED],
        )
        .await?;
    Ok(n == 1)
}

pub(crate) async fn get(pool: &Pool, name: &str) -> Result<Option<Lease>, StoreError> {
    let c = pool.get().await?;
    let row = c
        .query_opt_cached(
            "SELECT name, holder, token, expires_ns FROM leases WHERE name = $1",
            &[&name],
        )
        .await?;
    row.as_ref().map(lease_of).transpose()
}

pub(crate) async fn purge(pool: &Pool, before_ns: i64) -> Result<u64, StoreError> {
    let c = pool.get().await?;
    Ok(
        c.execute_cached("DELETE FROM leases WHERE expires_ns < $1", &[&before_ns])
            .await?,
    )
}
