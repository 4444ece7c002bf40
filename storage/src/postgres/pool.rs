//! The connection pool: a libpq-style connection string in, a
//! `deadpool-postgres` pool out.
//!
//! The string is parsed by tokio-postgres (URL or `key=value` form), so
//! several hosts and `target_session_attrs=read-write` work as in libpq:
//! `postgres://ironseal@db1:5432,db2:5432/ironseal?target_session_attrs=read-write`
//! connects to whichever host currently accepts writes, and a new
//! connection after a failover follows the promoted standby.
//!
//! TLS to the database is not supported yet (`NoTls`): run the database
//! on loopback, a private network or behind a TLS tunnel
//! (docs/storage-postgres.md).

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::StoreError;

/// How to reach the database.
#[derive(Clone)]
pub struct PgOptions {
    /// libpq connection string (URL or `key=value` form).
    pub url: String,
    /// Most connections the pool opens.
    pub pool_size: usize,
    /// A schema to keep every table in (created if missing, put first on
    /// the `search_path`); `None`: the connection's default (`public`).
    /// Tests use one schema per test.
    pub schema: Option<String>,
}

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password.
        f.debug_struct("PgOptions")
            .field("url", &"<redacted>")
            .field("pool_size", &self.pool_size)
            .field("schema", &self.schema)
            .finish()
    }
}

/// How long a caller waits for a free connection, and how long opening
/// one may take, before the store reports a backend error.
const WAIT: Duration = Duration::from_secs(10);

/// Whether `name` is a plain schema identifier (lowercase letters, digits,
/// `_`, not starting with a digit, at most 63 bytes).
pub(crate) fn valid_schema(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit()
}

/// Builds the pool (opens no connection yet).
pub(crate) fn build(options: &PgOptions) -> Result<Pool, StoreError> {
    let mut config = tokio_postgres::Config::from_str(&options.url)
        .map_err(|e| StoreError::Backend(format!("postgres connection string: {e}")))?;
    if config.get_application_name().is_none() {
        config.application_name("ironseal");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(WAIT);
    }
    if let Some(schema) = &options.schema {
        if !valid_schema(schema) {
            return Err(StoreError::Backend(format!(
                "postgres schema {schema:?}: use lowercase letters, digits and _"
            )));
        }
        config.options(format!("-c search_path={schema}"));
    }
    // `Fast` recycling runs nothing between checkouts: a connection keeps
    // its prepared statements, which the statement cache (`sql::Cached`)
    // relies on (a `DISCARD ALL` or `DEALLOCATE ALL` would drop them under
    // it).
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(options.pool_size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(WAIT))
        .create_timeout(Some(WAIT))
        .build()
        .map_err(|e| StoreError::Backend(format!("postgres pool: {e}")))
}
