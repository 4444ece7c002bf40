//! Used ACME nonces shared by every replica (`used_nonces`, migration 3):
//! redemption is one insert that only the first caller wins.

use deadpool_postgres::Pool;

use crate::postgres::sql::{big, col, dec, Cached};
use crate::records::AccountRecord;
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

/// `Store::redeem_nonce_reading_account`: the redemption and the account
/// read in one statement (the insert's `RETURNING` says whether this call
/// recorded the nonce).
pub(crate) async fn redeem_nonce_reading_account(
    pool: &Pool,
    id: u128,
    expires: u64,
    account_id: &str,
) -> Result<(bool, Option<AccountRecord>), StoreError> {
    let c = pool.get().await?;
    let id = id.to_be_bytes().to_vec();
    let expires = big(expires)?;
    let row = c
        .query_one_cached(
            "WITH used AS (
                 INSERT INTO used_nonces (id, expires) VALUES ($1, $2)
                 ON CONFLICT (id) DO NOTHING RETURNING 1)
             SELECT EXISTS (SELECT 1 FROM used), (SELECT doc FROM accounts WHERE id = $3)",
            &[&id, &expires, &account_id],
        )
        .await?;
    let fresh: bool = col(&row, 0)?;
    let account = col::<Option<&str>>(&row, 1)?.map(dec).transpose()?;
    Ok((fresh, account))
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
