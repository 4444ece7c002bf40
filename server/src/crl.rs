//! CRLs per issuing CA (RFC 5280 §5), DER over plain HTTP.
//!
//! - **Full CRL** at `/crl/{ca}.crl`: every revocation of the CA, no
//!   issuingDistributionPoint. This is the URL certificates carry today.
//! - **Partitions** (Boulder's sharded CRLs, EJBCA's partitioned CRLs) when
//!   [`shard_count`] N > 1: shard k of N at `/crl/{ca}/{k}.crl` holds the
//!   revocations whose serial maps to k ([`shard_of`]: SHA-256 of the
//!   serial's DER content octets, first 8 bytes big-endian, mod N), with a
//!   critical issuingDistributionPoint naming that URL (§5.2.5) and
//!   onlyContainsUserCerts when the CA issues end entities only (pathLen 0).
//!   [`crl_url_for`] is the URL a new certificate of a serial must carry in
//!   its CRL DP. N must not change while certificates with shard URLs are
//!   valid: their serials would map elsewhere.
//! - **Numbering**: one persisted, strictly increasing counter per CA
//!   (`Store::next_crl_number`, flushed before the CRL is served). One build
//!   produces the full CRL and every shard under the same number; each scope
//!   (full, shard k) therefore sees strictly increasing numbers.
//! - **Freshness**: built on first fetch or by [`refresh_due`], which the
//!   housekeeping loop calls every minute: a CA whose CRLs are missing or
//!   older than [`CRL_REFRESH`] is rebuilt without waiting for a request, so
//!   a CRL is always replaced long before its nextUpdate ([`CRL_VALIDITY`]).
//!   A revocation drops the CA's CRLs ([`CrlCache::invalidate`]) and the next
//!   fetch rebuilds them. Builds are serialized, and an epoch counter keeps a
//!   CRL built from a pre-revocation read out of the cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ironseal_ca_core::crl::{Partition, RevokedEntry};
use ironseal_ca_core::serial::Serial;
use time::OffsetDateTime;

use crate::authority::IssuingCa;
use crate::config::Config;
use crate::state::AppState;

/// How long a CRL is valid (thisUpdate to nextUpdate).
pub const CRL_VALIDITY: time::Duration = time::Duration::hours(24);
/// After this age a CRL is rebuilt (by a request or by [`refresh_due`]).
pub const CRL_REFRESH: time::Duration = time::Duration::hours(6);
/// Upper bound on the shard count.
pub const MAX_SHARDS: u32 = 4096;

/// One built CRL.
pub struct CachedCrl {
    pub der: bytes::Bytes,
    pub number: u64,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
    /// Entries in this CRL.
    pub entries: usize,
}

/// Which CRL of a CA: the full one or shard k.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    Full,
    Shard(u32),
}

/// The CRLs built so far, by CA id.
#[derive(Default)]
pub struct CrlCache {
    inner: Mutex<HashMap<String, HashMap<Part, Arc<CachedCrl>>>>,
    /// Serializes builds so two never race for numbers or the cache.
    building: Mutex<()>,
    /// Bumped by every invalidation.
    epoch: AtomicU64,
}

impl CrlCache {
    /// Drops every CRL of `ca_id`; call after a revocation is durable.
    pub fn invalidate(&self, ca_id: &str) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(ca_id);
    }
    fn get(&self, ca_id: &str, part: Part) -> Option<Arc<CachedCrl>> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(ca_id)
            .and_then(|m| m.get(&part))
            .cloned()
    }
    /// Stores a whole build unless an invalidation happened since `epoch`.
    fn put(&self, ca_id: &str, built: HashMap<Part, Arc<CachedCrl>>, epoch: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if self.epoch.load(Ordering::SeqCst) == epoch {
            inner.insert(ca_id.to_string(), built);
        }
    }
}

/// Why a CRL could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum CrlError {
    #[error("no CA {0}")]
    UnknownCa(String),
    #[error("no shard {0} (the CA has {1})")]
    UnknownShard(u32, u32),
    #[error("store: {0}")]
    Store(#[from] ironseal_storage::StoreError),
    #[error("signing: {0}")]
    Ca(#[from] ironseal_ca_core::error::CaError),
    #[error("{0}")]
    Signing(#[from] crate::authority::signing::SigningError),
}

/// The number of CRL shards per CA (`crl_shards` in the configuration,
/// default 1: a single full CRL, no partitions), clamped to 1..=[`MAX_SHARDS`].
pub fn shard_count(config: &Config) -> u32 {
    config.crl_shards.clamp(1, MAX_SHARDS)
}

/// The shard of `serial` among `shards`: a stable hash, independent of the
/// platform and the release.
pub fn shard_of(serial: &Serial, shards: u32) -> u32 {
    if shards <= 1 {
        return 0;
    }
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, serial.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d.as_ref()[..8]);
    (u64::from_be_bytes(b) % u64::from(shards)) as u32
}

/// The URL of the full CRL of `ca_id`.
pub fn full_crl_url(config: &Config, ca_id: &str) -> String {
    format!("{}/crl/{ca_id}.crl", config.http_public_url)
}

/// The URL of shard `k` of `ca_id`.
pub fn shard_url(config: &Config, ca_id: &str, k: u32) -> String {
    format!("{}/crl/{ca_id}/{k}.crl", config.http_public_url)
}

/// The CRL distribution point a new certificate of `serial` under
/// `issuer_id` must carry: the full CRL with one shard, else its shard.
pub fn crl_url_for(config: &Config, issuer_id: &str, serial: &Serial) -> String {
    match shard_count(config) {
        1 => full_crl_url(config, issuer_id),
        n => shard_url(config, issuer_id, shard_of(serial, n)),
    }
}

/// The current CRL `part` of `ca_id`, from cache or freshly built.
pub fn current(state: &AppState, ca_id: &str, part: Part) -> Result<Arc<CachedCrl>, CrlError> {
    let shards = shard_count(&state.config);
    if let Part::Shard(k) = part {
        if shards <= 1 || k >= shards {
            return Err(CrlError::UnknownShard(k, shards));
        }
    }
    let fresh = |c: &Arc<CachedCrl>| OffsetDateTime::now_utc() - c.this_update < CRL_REFRESH;
    if let Some(c) = state.crl_cache.get(ca_id, part).filter(fresh) {
        return Ok(c);
    }
    let _guard = state
        .crl_cache
        .building
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    // Another caller may have built it while we waited.
    if let Some(c) = state.crl_cache.get(ca_id, part).filter(fresh) {
        return Ok(c);
    }
    let mut built = build_all(state, ca_id, shards)?;
    built.remove(&part).ok_or(CrlError::UnknownShard(0, shards))
}

/// Builds, numbers and caches every CRL of `ca_id` (full + shards). The
/// caller holds the build lock. A rebuild of `[crl] stage_log_entries`
/// (50,000) revocations or more logs its stages in the human log format.
fn build_all(
    state: &AppState,
    ca_id: &str,
    shards: u32,
) -> Result<HashMap<Part, Arc<CachedCrl>>, CrlError> {
    let cas = state.ca_set();
    let ca: &Arc<IssuingCa> = cas
        .by_id
        .get(ca_id)
        .ok_or_else(|| CrlError::UnknownCa(ca_id.to_string()))?;
    let epoch = state.crl_cache.epoch.load(Ordering::SeqCst);
    let now = OffsetDateTime::now_utc();
    let read_started = std::time::Instant::now();
    let revoked = state.store.revoked_certificates(ca_id)?;
    // A large rebuild takes seconds: say where it is, in the human log
    // format only (JSON logs get the one "CRLs built" line).
    let show_stages = revoked.len() >= state.config.crl_stage_log_entries
        && state.config.log_format == crate::config::LogFormat::Human;
    if show_stages {
        tracing::info!(
            ca = ca_id,
            entries = revoked.len(),
            read_ms = read_started.elapsed().as_millis() as u64,
            "CRL rebuild 1/2: revocations read; encoding and signing next"
        );
    }
    let mut entries = Vec::with_capacity(revoked.len());
    for (serial_hex, rev) in revoked {
        let Ok(serial) = Serial::from_hex(&serial_hex) else {
            tracing::warn!(serial = %serial_hex, "unparseable serial in revocation index");
            continue;
        };
        entries.push(RevokedEntry {
            serial,
            revoked_at: rev.revoked_at,
            reason: rev.reason,
        });
    }
    let number = state.store.next_crl_number(ca_id)?;
    state.store.flush()?;
    let this_update = now.replace_nanosecond(0).unwrap_or(now);
    let next_update = this_update + CRL_VALIDITY;
    let started = std::time::Instant::now();
    let mut out = HashMap::new();
    let mut partitions = Vec::new();
    if shards > 1 {
        let mut parts: Vec<Vec<RevokedEntry>> = (0..shards).map(|_| Vec::new()).collect();
        for e in &entries {
            let k = shard_of(&e.serial, shards) as usize;
            if let Some(p) = parts.get_mut(k) {
                p.push(e.clone());
            }
        }
        let only_user_certs = ca.issuer.path_len() == Some(0);
        for (k, part_entries) in parts.into_iter().enumerate() {
            let partition = Partition {
                url: shard_url(&state.config, ca_id, k as u32),
                only_user_certs,
            };
            partitions.push((partition, part_entries));
        }
    }
    if show_stages {
        tracing::info!(
            ca = ca_id,
            number,
            entries = entries.len(),
            shards,
            "CRL rebuild 2/2: encoding and signing"
        );
    }
    let signed = crate::authority::signing::sign_crls(
        state.store.as_ref(),
        &ca.issuer,
        number,
        this_update,
        next_update,
        &entries,
        &partitions,
    )?;
    let mk = |der: Vec<u8>, n: usize| {
        Arc::new(CachedCrl {
            der: bytes::Bytes::from(der),
            number,
            this_update,
            next_update,
            entries: n,
        })
    };
    out.insert(Part::Full, mk(signed.full, entries.len()));
    for (k, (der, (_, part_entries))) in signed.shards.into_iter().zip(&partitions).enumerate() {
        out.insert(Part::Shard(k as u32), mk(der, part_entries.len()));
    }
    tracing::info!(
        ca = ca_id,
        number,
        shards,
        entries = out.get(&Part::Full).map(|c| c.entries).unwrap_or(0),
        ms = started.elapsed().as_millis() as u64,
        "CRLs built"
    );
    state.crl_cache.put(ca_id, out.clone(), epoch);
    state.metrics.crl_built(ca_id, this_update, next_update);
    Ok(out)
}

/// Rebuilds the CRLs of every CA whose CRLs are missing or older than
/// [`CRL_REFRESH`], so they are replaced well before nextUpdate even when
/// nobody fetches them. Call from a blocking context (housekeeping). Returns
/// how many CAs were rebuilt.
pub fn refresh_due(state: &AppState) -> usize {
    let cas = state.ca_set();
    let mut ids: Vec<&String> = cas.by_id.keys().collect();
    ids.sort();
    let shards = shard_count(&state.config);
    let mut rebuilt = 0;
    for id in ids {
        let due = |c: Option<Arc<CachedCrl>>| {
            c.is_none_or(|c| OffsetDateTime::now_utc() - c.this_update >= CRL_REFRESH)
        };
        if !due(state.crl_cache.get(id, Part::Full)) {
            continue;
        }
        let _guard = state
            .crl_cache
            .building
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if !due(state.crl_cache.get(id, Part::Full)) {
            continue;
        }
        match build_all(state, id, shards) {
            Ok(_) => rebuilt += 1,
            Err(e) => {
                if let CrlError::Store(se) = &e {
                    crate::metrics::storage_error(crate::metrics::StorageOp::Crl, se);
                }
                tracing::error!(ca = %id, error = %e, "scheduled CRL rebuild failed")
            }
        }
    }
    rebuilt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        let s = Serial::from_hex("0123456789abcdef0123456789abcdef").expect("serial");
        assert_eq!(shard_of(&s, 1), 0);
        let k = shard_of(&s, 16);
        assert!(k < 16);
        assert_eq!(shard_of(&s, 16), k, "deterministic");
        let mut counts = [0u32; 8];
        for i in 0u32..8000 {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&i.to_be_bytes());
            b[15] = 1;
            counts[shard_of(&Serial::from_random(b), 8) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }
}
