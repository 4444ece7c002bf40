//! Rate-limit buckets shared by every replica (`rate_buckets`, migration 4;
//! see [`crate::rate_buckets`]). `Take` and `Force` are one statement each,
//! an upsert whose row lock orders concurrent callers on any replica.

use deadpool_postgres::Pool;

use crate::postgres::sql::{col, Cached};
use crate::rate_buckets::{Bucket, BucketOp, Gcra};
use crate::StoreError;

pub(crate) async fn rate_bucket(
    pool: &Pool,
    key: &str,
    op: BucketOp,
    gcra: Gcra,
    now_ns: i64,
) -> Result<Bucket, StoreError> {
    let c = pool.get().await?;
    let interval = gcra.interval_ns;
    let tolerance = gcra.tolerance_ns();
    let row = match op {
        BucketOp::Peek => {
            let tat: Option<i64> = c
                .query_opt_cached("SELECT tat_ns FROM rate_buckets WHERE key = $1", &[&key])
                .await?
                .map(|r| col(&r, 0))
                .transpose()?;
            return Ok(Bucket {
                admitted: true,
                tat_ns: tat.unwrap_or(now_ns),
            });
        }
        // Admitted when the new TAT stays within the tolerance; otherwise
        // the WHERE leaves the row alone and nothing is returned.
        BucketOp::Take => {
            c.query_opt_cached(
                "INSERT INTO rate_buckets AS b (key, tat_ns) VALUES ($1, $2::bigint + $3::bigint)
                 ON CONFLICT (key) DO UPDATE SET tat_ns = GREATEST(b.tat_ns, $2) + $3
                 WHERE GREATEST(b.tat_ns, $2::bigint) + $3::bigint - $2::bigint <= $4::bigint
                 RETURNING tat_ns",
                &[&key, &now_ns, &interval, &tolerance],
            )
            .await?
        }
        BucketOp::Force => {
            c.query_opt_cached(
                "INSERT INTO rate_buckets AS b (key, tat_ns) VALUES ($1, $2::bigint + $3::bigint)
                 ON CONFLICT (key) DO UPDATE
                 SET tat_ns = LEAST(GREATEST(b.tat_ns, $2) + $3, $2 + $4 + $3)
                 RETURNING tat_ns",
                &[&key, &now_ns, &interval, &tolerance],
            )
            .await?
        }
    };
    match row {
        Some(r) => Ok(Bucket {
            admitted: true,
            tat_ns: col(&r, 0)?,
        }),
        None => {
            let tat: Option<i64> = c
                .query_opt_cached("SELECT tat_ns FROM rate_buckets WHERE key = $1", &[&key])
                .await?
                .map(|r| col(&r, 0))
                .transpose()?;
            Ok(Bucket {
                admitted: false,
                tat_ns: tat.unwrap_or(now_ns),
            })
        }
    }
}

pub(crate) async fn purge_rate_buckets(pool: &Pool, now_ns: i64) -> Result<u64, StoreError> {
    let c = pool.get().await?;
    Ok(
        c.execute_cached("DELETE FROM rate_buckets WHERE tat_ns < $1", &[&now_ns])
            .await?,
    )
}
