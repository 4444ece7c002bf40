//! Used ACME nonces shared by every replica (`used_nonces`, migration 3):
//! redemption is one insert that only the first caller wins.

use deadpool_postgres::Pool;

use crate::postgres::sql::{big, Cached};
use crate::StoreError;

/// Records a used nonce once (`ON CONFLICT DO NOTHING`): `true` if this
/// call inserted it.
pub(crate) async fn redeem_nonce(pool: &Pool, id: u128, expires: u64) -> Result<bool, StoreError> {
    let c = pool.get().await?;
    let id = id.to_be_bytes().to_vec();
    let expires = big(expires)?;
    let n = c
        .execute_cached(
            "INSERT INTO used_nonces (id, expires) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
            &[&id, &expires],
        )
        .await?;
    Ok(n == 1)
}

/// Deletes used nonces that expired before `now`.
pub(crate) async fn purge_nonces(pool: &Pool, now: u64) -> Result<u64, StoreError> {
    let c = pool.get().await?;
    let now = big(now)?;
    Ok(
        c.execute_cached("DELETE FROM used_nonces WHERE expires < $1", &[&now])
            .await?,
    )
}
