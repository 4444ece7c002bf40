//! Small helpers shared by the record families: JSON documents in and out,
//! timestamps as ordering keys, and the mapping of PostgreSQL errors to
//! [`StoreError`].

use serde::de::DeserializeOwned;
use serde::Serialize;
use time::OffsetDateTime;
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;

use crate::StoreError;

/// A record as its JSON document (the `doc` column).
pub(crate) fn enc<T: Serialize>(record: &T) -> Result<String, StoreError> {
    serde_json::to_string(record).map_err(|e| StoreError::Backend(format!("encode: {e}")))
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
