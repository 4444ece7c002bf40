//! The purge of expired ACME orders and authorizations (issue 10 item 4):
//! without it, anyone who can create an account grows the store for ever.
//! Runs from the housekeeping loop at start and then every `[acme]
//! purge_interval_minutes` (60; 0 turns it off) and deletes what expired more than `[acme]
//! purge_after_hours` (24) ago — orders that never issued and every expired
//! authorization ([`ironseal_storage::purge`] says exactly which).
//! Certificates and revocations are never purged; valid orders stay (they
//! name their certificate).
//!
//! A run deletes in batches of [`BATCH`] and at most [`MAX_BATCHES`]
//! batches, so one run is bounded; the next run continues.

use std::time::Instant;

use ironseal_storage::{Purged, StoreError};
use time::OffsetDateTime;

use crate::state::AppState;

/// Records of each kind deleted per store call.
pub const BATCH: usize = 1000;
/// Store calls per run at most.
pub const MAX_BATCHES: usize = 100;

/// Deletes what expired before `now - purge_after`; returns the totals.
pub async fn run(state: &AppState, now: OffsetDateTime) -> Result<Purged, StoreError> {
    let started = Instant::now();
    let before = now - state.config.purge_after;
    let mut total = Purged::default();
    for _ in 0..MAX_BATCHES {
        let batch = state.store.purge_expired(before, BATCH).await?;
        total.orders += batch.orders;
        total.authzs += batch.authzs;
        state.metrics.add("orders_purged", batch.orders);
        state.metrics.add("authzs_purged", batch.authzs);
        if batch.orders < BATCH as u64 && batch.authzs < BATCH as u64 {
            break;
        }
    }
    // Used nonces in the shared store (PostgreSQL replicas) once expired.
    let unix_now = u64::try_from(now.unix_timestamp()).unwrap_or(0);
    let nonces = state.store.purge_nonces(unix_now).await?;
    state.metrics.add("nonces_purged", nonces);
    if total.total() > 0 {
        state.durable_store().await?;
        tracing::info!(
            orders = total.orders,
            authorizations = total.authzs,
            expired_before = %before,
            ms = started.elapsed().as_millis() as u64,
            "purged expired orders and authorizations"
        );
    }
    Ok(total)
}

/// Whether a purge is due at housekeeping tick `tick` (1 at start, then
/// one a minute): at start, then every `purge_interval_minutes`.
pub fn due(state: &AppState, tick: u64) -> bool {
    let every = u64::from(state.config.purge_interval_minutes);
    every > 0 && tick.saturating_sub(1).is_multiple_of(every)
}
