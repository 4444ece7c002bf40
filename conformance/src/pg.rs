//! The PostgreSQL server the tests use (`IRONSEAL_TEST_PG_URL`, started by
//! `scripts/pg-throwaway.sh` in `scripts/test.sh`): its URL, a fresh
//! database per test, and `psql` (the PostgreSQL client, an outside tool).

use std::process::Command;
use std::time::Duration;

use crate::proc;

/// The server's URL, or a failure that says how to get one (no silent skip).
pub fn pg_url() -> String {
    match std::env::var("IRONSEAL_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "IRONSEAL_TEST_PG_URL is not set: this test runs ironseal on PostgreSQL. Start a \
             throwaway server with `dir=$(scripts/pg-throwaway.sh start); export \
             IRONSEAL_TEST_PG_URL=$(scripts/pg-throwaway.sh url \"$dir\")`, or run scripts/test.sh"
        ),
    }
}

/// `psql` runs one statement; returns its unaligned output.
pub fn psql(url: &str, sql: &str) -> String {
    let mut c = Command::new("psql");
    c.args([url, "-X", "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql]);
    let o = proc::run(c, Duration::from_secs(30));
    o.expect_success(&format!("psql {sql}"));
    o.stdout.trim().to_string()
}

/// The URL of `db` on the same server as `url` (`…/postgres` → `…/db`).
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match base.rsplit_once('/') {
        Some((host, _)) if host.contains('@') || host.matches('/').count() > 2 => host,
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

/// A fresh, empty database for one test; returns its URL.
pub fn fresh_database() -> String {
    let admin = pg_url();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let db = format!("ironseal_conf_{}_{nanos:x}", std::process::id());
    psql(&admin, &format!("CREATE DATABASE {db}"));
    with_database(&admin, &db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database(
                "postgres://u@h1,h2/postgres?target_session_attrs=read-write",
                "x"
            ),
            "postgres://u@h1,h2/x?target_session_attrs=read-write"
        );
    }
}
