//! Refused authentication on the admin API. A failed or missing credential
//! is an event for logs and metrics, not for the hash-chained audit log:
//! that log records what the CA did, and nothing an anonymous caller sizes
//! or repeats goes into it. Log lines are rate limited so that a flood of
//! anonymous requests cannot flood the log stream either: per process, or
//! on PostgreSQL in one rate bucket of the store that every replica takes
//! from ([`LogBudget::take_shared`]), so N replicas log at most one
//! budget, not N.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most this many refusal lines per [`WINDOW`]; the rest are counted and
/// reported in one line when the next window opens.
const LINES_PER_WINDOW: u32 = 20;
const WINDOW: Duration = Duration::from_secs(10);

/// The store's rate bucket of the shared budget.
const SHARED_BUCKET: &str = "admin-refusal-log";

/// How much of a request path a log line shows.
pub const PATH_SHOWN: usize = 100;

/// A log budget: [`LINES_PER_WINDOW`] lines per [`WINDOW`].
#[derive(Debug)]
pub struct LogBudget {
    inner: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    opened: Instant,
    logged: u32,
    suppressed: u64,
}

/// What the caller may log now.
#[derive(Debug, PartialEq, Eq)]
pub enum Permit {
    /// Log this line; `suppressed` lines of the previous window were
    /// dropped (say so once).
    Log { suppressed: u64 },
    /// Over budget: do not log.
    Drop,
}

impl Default for LogBudget {
    fn default() -> Self {
        LogBudget {
            inner: Mutex::new(Window {
                opened: Instant::now(),
                logged: 0,
                suppressed: 0,
            }),
        }
    }
}

impl LogBudget {
    /// Takes one line from the budget at `now`.
    pub fn take(&self, now: Instant) -> Permit {
        let mut w = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut suppressed = 0;
        if now.duration_since(w.opened) >= WINDOW {
            suppressed = w.suppressed;
            *w = Window {
                opened: now,
                logged: 0,
                suppressed: 0,
            };
        }
        if w.logged < LINES_PER_WINDOW {
            w.logged += 1;
            Permit::Log { suppressed }
        } else {
            w.suppressed += 1;
            Permit::Drop
        }
    }
}

impl LogBudget {
    /// Takes one line from the budget every process on `store` shares: a
    /// burst of [`LINES_PER_WINDOW`], refilled at that many per
    /// [`WINDOW`] (GCRA). Lines this process dropped are counted here and
    /// reported with its next permitted line. A store error permits the
    /// line (logged): refusals must stay visible.
    pub async fn take_shared(&self, store: &dyn ironseal_storage::Store) -> Permit {
        let gcra = ironseal_storage::Gcra {
            interval_ns: i64::try_from((WINDOW / LINES_PER_WINDOW).as_nanos()).unwrap_or(i64::MAX),
            burst: LINES_PER_WINDOW,
        };
        let now = i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos())
            .unwrap_or(i64::MAX);
        let admitted = match store
            .rate_bucket(SHARED_BUCKET, ironseal_storage::BucketOp::Take, gcra, now)
            .await
        {
            Ok(b) => b.admitted,
            Err(e) => {
                tracing::warn!(error = %e, "shared refusal log budget unavailable");
                true
            }
        };
        let mut w = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if admitted {
            Permit::Log {
                suppressed: std::mem::take(&mut w.suppressed),
            }
        } else {
            w.suppressed += 1;
            Permit::Drop
        }
    }
}

/// The first [`PATH_SHOWN`] characters of `path`, marked when cut.
pub fn shown_path(path: &str) -> String {
    if path.chars().count() <= PATH_SHOWN {
        path.to_string()
    } else {
        format!(
            "{}...({} bytes)",
            path.chars().take(PATH_SHOWN).collect::<String>(),
            path.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_drops_lines_over_it_and_reports_them_once() {
        let b = LogBudget::default();
        let t0 = Instant::now();
        for _ in 0..LINES_PER_WINDOW {
            assert_eq!(b.take(t0), Permit::Log { suppressed: 0 });
        }
        for _ in 0..5 {
            assert_eq!(b.take(t0), Permit::Drop);
        }
        assert_eq!(b.take(t0 + WINDOW), Permit::Log { suppressed: 5 });
        assert_eq!(b.take(t0 + WINDOW), Permit::Log { suppressed: 0 });
    }

    #[tokio::test]
    async fn the_shared_budget_is_one_for_every_process_on_the_store() {
        let store = ironseal_storage::MemoryStore::new();
        let (a, b) = (LogBudget::default(), LogBudget::default());
        for i in 0..LINES_PER_WINDOW {
            let budget = if i % 2 == 0 { &a } else { &b };
            assert_eq!(
                budget.take_shared(&store).await,
                Permit::Log { suppressed: 0 }
            );
        }
        assert_eq!(a.take_shared(&store).await, Permit::Drop);
        assert_eq!(b.take_shared(&store).await, Permit::Drop);
        assert_eq!(b.take_shared(&store).await, Permit::Drop);
        // b's drops are b's to report, with its next permitted line.
        tokio::time::sleep(WINDOW / LINES_PER_WINDOW).await;
        assert_eq!(b.take_shared(&store).await, Permit::Log { suppressed: 2 });
    }

    #[test]
    fn long_paths_are_cut() {
        assert_eq!(shown_path("/admin/v1/keys"), "/admin/v1/keys");
        let long = format!("/admin/{}", "a".repeat(3000));
        let s = shown_path(&long);
        assert!(s.len() < 130 && s.ends_with("(3007 bytes)"), "{s}");
    }
}
