//! Small helpers shared by the record families: statements cached per
//! connection ([`Cached`]), JSON documents in and out, timestamps as
//! ordering keys, and the mapping of PostgreSQL errors to [`StoreError`].

use deadpool_postgres::{GenericClient, StatementCache};
use serde::de::DeserializeOwned;
use serde::Serialize;
use time::OffsetDateTime;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::StoreError;

/// Runs fixed SQL as a prepared statement cached on its connection
/// (deadpool-postgres' per-connection statement cache, decision 0008):
/// the first use of a text on a connection prepares it (a Parse/Describe
/// round trip), every later use only binds and executes it (one round
/// trip), where tokio-postgres' `query(&str)` prepares anew each time.
/// Implemented for pooled clients and their transactions; the methods
/// mirror tokio-postgres' and take the SQL text.
///
/// # Schema changes
///
/// A cached statement outlives schema changes: PostgreSQL re-plans a
/// prepared statement when a table it uses changes (a column or an index
/// added, a table rebuilt under its name), so additive migrations leave
/// it working. Only a change of a result column's type makes it fail
/// ("cached plan must not change result type"); then the statement is
/// evicted from this connection's cache, so this one call fails and the
/// next prepares it afresh (`postgres_cached_statements_survive_a_schema_change`).
/// This binary's own migrations run at open ([`super::migrations`],
/// uncached), before any statement is cached.
pub(crate) trait Cached: GenericClient {
    /// This connection's statement cache.
    fn statement_cache(&self) -> &StatementCache;

    async fn query_cached(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let statement = self.prepare_cached(sql).await?;
        self.evict_if_stale(sql, self.query(&statement, params).await)
    }

    async fn query_opt_cached(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, tokio_postgres::Error> {
        let statement = self.prepare_cached(sql).await?;
        self.evict_if_stale(sql, self.query_opt(&statement, params).await)
    }

    async fn query_one_cached(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, tokio_postgres::Error> {
        let statement = self.prepare_cached(sql).await?;
        self.evict_if_stale(sql, self.query_one(&statement, params).await)
    }

    async fn execute_cached(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, tokio_postgres::Error> {
        let statement = self.prepare_cached(sql).await?;
        self.evict_if_stale(sql, self.execute(&statement, params).await)
    }

    /// Drops `sql`'s statement from the cache if `result` says its result
    /// columns changed type under it (see "Schema changes" above).
    fn evict_if_stale<T>(
        &self,
        sql: &str,
        result: Result<T, tokio_postgres::Error>,
    ) -> Result<T, tokio_postgres::Error> {
        if let Err(e) = &result {
            let stale = e.code() == Some(&SqlState::FEATURE_NOT_SUPPORTED)
                && e.as_db_error().is_some_and(|db| {
                    db.message()
                        .contains("cached plan must not change result type")
                });
            if stale {
                self.statement_cache().remove(sql, &[]);
            }
        }
        result
    }
}

impl Cached for deadpool_postgres::Client {
    fn statement_cache(&self) -> &StatementCache {
        &self.statement_cache
    }
}

impl Cached for deadpool_postgres::Transaction<'_> {
    fn statement_cache(&self) -> &StatementCache {
        &self.statement_cache
    }
}

/// A record as its JSON document (the `doc` column).
pub(crate) fn enc<T: Serialize>(record: &T) -> Result<String, StoreError> {
    serde_json::to_string(record).map_err(|e| StoreError::Backend(format!("encode: {e}")))
}

/// A status enum's wire form (`"pending"`, `"valid"`, ...), the text a
/// compare-and-swap statement matches against `doc::jsonb->>'status'`.
pub(crate) fn status_text<T: Serialize>(status: &T) -> Result<String, StoreError> {
    match serde_json::to_value(status) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        Ok(v) => Err(StoreError::Backend(format!("status {v} is not a string"))),
        Err(e) => Err(StoreError::Backend(format!("encode status: {e}"))),
    }
}

/// A `doc` column back into its record; a bad document is `Corrupt`.
pub(crate) fn dec<T: DeserializeOwned>(doc: &str) -> Result<T, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Column `idx` of a row, typed; a type mismatch is `Corrupt`.
pub(crate) fn col<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    idx: usize,
) -> Result<T, StoreError> {
    row.try_get(idx)
        .map_err(|e| StoreError::Corrupt(format!("column {idx}: {e}")))
}

/// The record in column 0 of an optional row.
pub(crate) fn doc_of<T: DeserializeOwned>(row: Option<Row>) -> Result<Option<T>, StoreError> {
    row.map(|r| dec(col::<&str>(&r, 0)?)).transpose()
}

/// The records in column 0 of rows.
pub(crate) fn docs_of<T: DeserializeOwned>(rows: Vec<Row>) -> Result<Vec<T>, StoreError> {
    rows.iter().map(|r| dec(col::<&str>(r, 0)?)).collect()
}

/// A timestamp as Unix nanoseconds, the ordering key columns (`*_ns`).
/// Covers the years 1677 to 2262.
pub(crate) fn ns(t: OffsetDateTime) -> Result<i64, StoreError> {
    i64::try_from(t.unix_timestamp_nanos())
        .map_err(|_| StoreError::Backend(format!("timestamp {t} out of range")))
}

/// A u64 (audit seq, CRL number) as a bigint.
pub(crate) fn big(n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Backend(format!("{n} exceeds bigint")))
}

/// A bigint column back into a u64.
pub(crate) fn unbig(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative counter {n}")))
}

/// Whether a PostgreSQL error is a unique-constraint violation.
pub(crate) fn is_unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// Any other PostgreSQL error: the engine failed.
pub(crate) fn backend(e: tokio_postgres::Error) -> StoreError {
    // `Display` of a server error is only "db error"; the details are in
    // the source.
    match e.as_db_error() {
        Some(db) => StoreError::Backend(format!("postgres: {db}")),
        None => StoreError::Backend(format!("postgres: {e}")),
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        backend(e)
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Backend(format!("postgres pool: {e}"))
    }
}

/// Runs `insert` and turns a unique violation into `Conflict(what)`.
pub(crate) fn conflict_on_unique(
    r: Result<u64, tokio_postgres::Error>,
    what: &str,
) -> Result<u64, StoreError> {
    match r {
        Ok(n) => Ok(n),
        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(what.into())),
        Err(e) => Err(backend(e)),
    }
}
