//! Schema migrations, embedded in the binary.
//!
//! Each migration is a plain SQL file applied once, in order, and recorded
//! in `schema_version`. Every start runs [`migrate`]: one transaction that
//! takes a transaction-scoped advisory lock first, so replicas starting
//! together apply each migration exactly once (the others wait, then find
//! it recorded).

use deadpool_postgres::Pool;

use crate::postgres::sql::col;
use crate::StoreError;

/// (version, SQL), ascending. Never edit a released migration; add one.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("migrations/0001_initial.sql")),
    (2, include_str!("migrations/0002_audit_keys.sql")),
    (3, include_str!("migrations/0003_used_nonces.sql")),
    (
        4,
        include_str!("migrations/0004_pending_and_rate_buckets.sql"),
    ),
    (5, include_str!("migrations/0005_scep_challenges.sql")),
    (6, include_str!("migrations/0006_leases_and_crls.sql")),
    (
        7,
        include_str!("migrations/0007_generations_and_settings.sql"),
    ),
];

/// The advisory lock key that serialises migrations ("ironseal" in ASCII).
const LOCK_KEY: i64 = 0x6972_6f6e_7365_616c;

/// The schema version this binary expects.
pub(crate) fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Applies the missing migrations; refuses a database newer than this
/// binary. Returns the schema version.
///
/// Its statements are not cached (plain `execute`, unlike the record
/// families' [`Cached`](crate::postgres::sql::Cached)): they run once per
/// open, on a pooled connection whose statement cache is still empty, so
/// every statement the store caches is prepared after the schema is
/// current.
pub(crate) async fn migrate(pool: &Pool, schema: Option<&str>) -> Result<i32, StoreError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await?;
    if let Some(schema) = schema {
        // Checked by `pool::valid_schema`: a plain identifier.
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await?;
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version    integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let row = tx
        .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
        .await?;
    let current: i32 = col(&row, 0)?;
    if current > latest() {
        return Err(StoreError::Backend(format!(
            "the database schema is version {current}, newer than this binary's {}; \
             upgrade ironseal",
            latest()
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[version],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(latest())
}
