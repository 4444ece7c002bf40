//! Changes made through one replica, seen by every replica (issue 11).
//!
//! A replica keeps copies of store state in memory; each is listed here
//! with what refreshes it when another replica changes the store:
//!
//! | in-memory copy | where | kind polled | refresh |
//! |---|---|---|---|
//! | the loaded CA set and the issuing CA | `AppState::cas` | `cas`, `settings` (pin) | [`reload_cas`] (also sets up OCSP responders of new CAs and moves the HTTPS certificate) |
//! | the SCEP RA certificate and key | `AppState::scep_ra` | `settings` | [`crate::scep::ra::reload`] |
//! | "some EAB key exists" (`externalAccountRequired` under `auto`) | `AppState::eab_in_use` | `eab_keys` | re-read |
//! | pre-signed OCSP responses, remembered statuses | `OcspService` | `revocations` | [`crate::ocsp::OcspService::invalidate_all`] |
//! | built CRLs | `CrlCache` | `revocations` | `invalidate` for every loaded CA |
//! | tenants, API keys and roles, EST users | — (read from the store per request) | `tenants`, `api_keys`, `est_users` | nothing to do; counted |
//!
//! Not store state, so not here: nonces and rate-limit buckets (shared in
//! the store already), in-flight work and OCSP responder / CRL leases
//! (the `leases` work), EST Basic lockouts and the admin refusal window
//! (shared rate buckets on PostgreSQL, see `est::basic` and
//! `admin::refusals`).
//!
//! On PostgreSQL each replica reads every change generation (one small
//! query) every `[storage] change_poll_ms` (default 1 s) and refreshes
//! what moved, so a change committed through one replica is in force on
//! every replica within one poll interval plus the refresh itself
//! (docs/storage-postgres.md). The replica that made the change refreshes
//! at once as before, and again at its next poll (harmless). sled has
//! one process: no poll.

use std::sync::Arc;

use ironseal_storage::{ChangeKind, Generations, StoreError};

use crate::bootstrap::{load_cas, BootError};
use crate::state::AppState;

/// Rebuilds the CA set from the store (the issuing CA from the store's
/// pin), puts it in force and sets up the OCSP responders of new CAs and
/// the HTTPS certificate. Call with `state.ca_admin` held. The root served
/// as `/root.pem` stays the one the HTTPS certificate chains to (it
/// changes at the next start if the issuing CA moved to another root).
pub async fn reload_cas(state: &AppState) -> Result<(), BootError> {
    let old = state.ca_set();
    let mut set = load_cas(&state.config, state.store.as_ref(), &state.kek, false).await?;
    set.root_pem = old.root_pem.clone();
    state.replace_cas(set);
    if let Err(e) = crate::ocsp::ensure_responders(state).await {
        tracing::warn!(error = %e, "OCSP responder setup after a CA change incomplete");
    }
    if let Err(e) = state.refresh_listener_cert().await {
        tracing::warn!(error = %e, "HTTPS listener certificate not moved to the new issuing CA");
    }
    Ok(())
}

/// Reads the change generations and refreshes what moved since the last
/// poll (everything, the first time). Returns the kinds refreshed.
pub async fn poll(state: &AppState) -> Result<Vec<ChangeKind>, StoreError> {
    let now = state.store.change_generations().await?;
    let changed = match state.seen_generations() {
        Some(seen) => now.changed_since(&seen),
        None => ChangeKind::ALL.to_vec(),
    };
    if changed.is_empty() {
        return Ok(changed);
    }
    // Remember first: a change committed while refreshing moves the
    // counter again and is refreshed at the next poll.
    state.set_seen_generations(now);
    refresh(state, &changed).await;
    Ok(changed)
}

/// Refreshes the in-memory copies of `kinds` (see the module table).
pub async fn refresh(state: &AppState, kinds: &[ChangeKind]) {
    if kinds.contains(&ChangeKind::Cas) || kinds.contains(&ChangeKind::Settings) {
        let _hierarchy = state.ca_admin.lock().await;
        if let Err(e) = reload_cas(state).await {
            tracing::warn!(error = %e, "reloading the CAs after a change through another replica failed");
        }
    }
    if kinds.contains(&ChangeKind::Settings) {
        if let Err(e) = crate::scep::ra::reload(state).await {
            tracing::warn!(error = %e, "reloading the SCEP RA after a change through another replica failed");
        }
    }
    if kinds.contains(&ChangeKind::EabKeys) {
        match state.store.list_eab_keys(None).await {
            Ok(keys) if !keys.is_empty() => state.eab_created(),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "re-reading the EAB keys failed"),
        }
    }
    if kinds.contains(&ChangeKind::Revocations) {
        state.ocsp.invalidate_all();
        for id in state.ca_set().by_id.keys() {
            state.invalidate_crl(id);
        }
    }
    for k in kinds {
        state.metrics.store_reloaded(k.as_str());
    }
    tracing::debug!(kinds = ?kinds, "refreshed after store changes");
}

/// Polls every `state.config.change_poll` until `shutdown` fires.
pub async fn run(state: Arc<AppState>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(state.config.change_poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = poll(&state).await {
                    tracing::warn!(error = %e, "change poll failed; retrying");
                }
            }
            _ = shutdown.changed() => break,
        }
    }
}

/// A snapshot to start from: read before the start-up loads, so a change
/// made meanwhile by another replica is refreshed at the first poll.
pub async fn initial(state_store: &dyn ironseal_storage::Store) -> Option<Generations> {
    state_store.change_generations().await.ok()
}
