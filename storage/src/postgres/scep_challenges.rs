//! One-time SCEP challenges (see [`crate::scep_challenges`]).

use deadpool_postgres::Pool;
use time::OffsetDateTime;

use crate::postgres::sql::{conflict_on_unique, doc_of, docs_of, enc, Cached};
use crate::scep_challenges::ScepChallengeRecord;
use crate::StoreError;

pub(crate) async fn create(pool: &Pool, c: &ScepChallengeRecord) -> Result<(), StoreError> {
    let client = pool.get().await?;
    conflict_on_unique(
        client
            .execute_cached(
                "INSERT INTO scep_challenges (challenge_hash, tenant_id, doc) VALUES ($1, $2, $3)",
                &[&c.challenge_hash, &c.tenant_id, &enc(c)?],
            )
            .await,
        "SCEP challenge exists",
    )?;
    Ok(())
}

pub(crate) async fn get(
    pool: &Pool,
    hash: &str,
) -> Result<Option<ScepChallengeRecord>, StoreError> {
    let c = pool.get().await?;
    doc_of(
        c.query_opt_cached(
            "SELECT doc FROM scep_challenges WHERE challenge_hash = $1",
            &[&hash],
        )
        .await?,
    )
}

pub(crate) async fn list(
    pool: &Pool,
    tenant_id: Option<&str>,
) -> Result<Vec<ScepChallengeRecord>, StoreError> {
    let c = pool.get().await?;
    let rows = match tenant_id {
        None => {
            c.query_cached(
                "SELECT doc FROM scep_challenges ORDER BY challenge_hash",
                &[],
            )
            .await?
        }
        Some(t) => {
            c.query_cached(
                "SELECT doc FROM scep_challenges WHERE tenant_id = $1 ORDER BY challenge_hash",
                &[&t],
            )
            .await?
        }
    };
    docs_of(rows)
}

/// Locks the row, checks it is redeemable and marks it redeemed in one
/// transaction; a concurrent redemption waits on the lock and then reads
/// the redeemed document.
pub(crate) async fn redeem(
    pool: &Pool,
    hash: &str,
    at: OffsetDateTime,
) -> Result<Option<ScepChallengeRecord>, StoreError> {
    let mut c = pool.get().await?;
    let tx = c.transaction().await?;
    let row = tx
        .query_opt_cached(
            "SELECT doc FROM scep_challenges WHERE challenge_hash = $1 FOR UPDATE",
            &[&hash],
        )
        .await?;
    let Some(mut record) = doc_of::<ScepChallengeRecord>(row)? else {
        return Ok(None);
    };
    if !record.is_redeemable(at) {
        return Ok(None);
    }
    record.redeemed_at = Some(at);
    tx.execute_cached(
        "UPDATE scep_challenges SET doc = $2 WHERE challenge_hash = $1",
        &[&hash, &enc(&record)?],
    )
    .await?;
    tx.commit().await?;
    Ok(Some(record))
}

pub(crate) async fn remove(pool: &Pool, hash: &str) -> Result<bool, StoreError> {
    let c = pool.get().await?;
    let n = c
        .execute_cached(
            "DELETE FROM scep_challenges WHERE challenge_hash = $1",
            &[&hash],
        )
        .await?;
    Ok(n == 1)
}
