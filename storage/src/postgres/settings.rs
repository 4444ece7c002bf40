//! Change generations, settings and the bootstrap lock (issue 11; schema
//! version 7). Generations are bumped by triggers (see the migration);
//! here they are only read.

use deadpool_postgres::Pool;

use crate::generations::{ChangeKind, Generations};
use crate::postgres::sql::{big, col, unbig, Cached};
use crate::settings::SettingRecord;
use crate::StoreError;

/// Every counter in one small query.
pub(crate) async fn generations(pool: &Pool) -> Result<Generations, StoreError> {
    let c = pool.get().await?;
    let rows = c
        .query_cached("SELECT kind, generation FROM change_generations", &[])
        .await?;
    let mut g = Generations::default();
    for row in &rows {
        let kind: &str = col(row, 0)?;
        // A kind a newer binary added: not ours to reload.
        if let Some(kind) = ChangeKind::from_name(kind) {
            g.set(kind, unbig(col(row, 1)?)?);
        }
    }
    Ok(g)
}

pub(crate) async fn get(pool: &Pool, name: &str) -> Result<Option<SettingRecord>, StoreError> {
    let c = pool.get().await?;
    let row = c
        .query_opt_cached(
            "SELECT version, value FROM settings WHERE name = $1",
            &[&name],
        )
        .await?;
    row.map(|r| {
        Ok(SettingRecord {
            version: unbig(col(&r, 0)?)?,
            value: col(&r, 1)?,
        })
    })
    .transpose()
}

/// One statement either way: an insert that does nothing on conflict
/// (create), or an update conditioned on the version (row lock: of
/// concurrent writers with one expected version, one matches).
pub(crate) async fn put(
    pool: &Pool,
    name: &str,
    value: &[u8],
    expected: Option<u64>,
) -> Result<Option<u64>, StoreError> {
    let c = pool.get().await?;
    let n = match expected {
        None => {
            c.execute_cached(
                "INSERT INTO settings (name, version, value) VALUES ($1, 1, $2)
                 ON CONFLICT (name) DO NOTHING",
                &[&name, &value],
            )
            .await?
        }
        Some(v) => {
            c.execute_cached(
                "UPDATE settings SET version = version + 1, value = $2
                  WHERE name = $1 AND version = $3",
                &[&name, &value, &big(v)?],
            )
            .await?
        }
    };
    Ok((n == 1).then(|| expected.map_or(1, |v| v + 1)))
}

/// The advisory lock key of first-start work ("ironboot" in ASCII).
const BOOTSTRAP_LOCK_KEY: i64 = 0x6972_6f6e_626f_6f74;

/// Takes the session advisory lock of first-start work on a connection
/// of its own, taken out of the pool: dropping the returned client closes
/// that connection, which releases the lock (also if the process dies).
pub(crate) async fn bootstrap_lock(
    pool: &Pool,
) -> Result<deadpool_postgres::ClientWrapper, StoreError> {
    let c = pool.get().await?;
    c.execute_cached("SELECT pg_advisory_lock($1)", &[&BOOTSTRAP_LOCK_KEY])
        .await?;
    Ok(deadpool_postgres::Object::take(c))
}
