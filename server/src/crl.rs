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
//! - **Shared by replicas** (issue 11): the signed CRLs live in the store
//!   (`ironseal_storage::crls`). One replica at a time holds the CA's
//!   `crl:<ca id>` lease ([`crate::leases`]) and builds every part, numbers
//!   it and stores the bytes; every replica serves the stored bytes (kept
//!   in a local cache by number). On sled the one process always holds it.
//! - **Freshness**: every fetch reads the stored CRL's head and the CA's
//!   generation, which each revocation bumps in the store
//!   ([`crate::authority::revoke_staged`]). A CRL that is missing, older
//!   than [`CRL_REFRESH`] or built before the latest revocation is rebuilt
//!   before it is served: at once when this replica holds (or can take) the
//!   lease, else by the holder, whose [`tick`] (every [`tick_interval`])
//!   renews the lease and rebuilds what is due; the fetch waits for it up to
//!   [`CRL_WAIT`], then serves the stored CRL while its nextUpdate has not
//!   passed. If the holder dies, another replica's tick takes the lease once
//!   it expires (`[storage] lease_ttl_secs`); numbers keep increasing since
//!   they come from the store. So a CRL is always replaced long before its
//!   nextUpdate ([`CRL_VALIDITY`]), requests or not. Builds within a
//!   process are serialized.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ironseal_ca_core::crl::{Partition, RevokedEntry};
use ironseal_ca_core::serial::Serial;
use ironseal_storage::{CrlHead, StoredCrl};
use time::OffsetDateTime;

use crate::authority::IssuingCa;
use crate::config::Config;
use crate::state::AppState;

/// How long a CRL is valid (thisUpdate to nextUpdate).
pub const CRL_VALIDITY: time::Duration = time::Duration::hours(24);
/// After this age a CRL is rebuilt (by a request or by [`tick`]).
pub const CRL_REFRESH: time::Duration = time::Duration::hours(6);
/// Upper bound on the shard count.
pub const MAX_SHARDS: u32 = 4096;
/// How long a fetch waits for another replica to rebuild a stale CRL.
pub const CRL_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Which CRL of a CA: the full one or shard k.
pub use ironseal_storage::CrlPart as Part;

/// One built CRL.
pub struct CachedCrl {
    pub der: bytes::Bytes,
    pub number: u64,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
}

impl From<StoredCrl> for CachedCrl {
    fn from(c: StoredCrl) -> CachedCrl {
        CachedCrl {
            der: bytes::Bytes::from(c.der),
            number: c.head.number,
            this_update: c.head.this_update,
            next_update: c.head.next_update,
        }
    }
}

/// The stored CRLs this process has read or built, by CA and part (the
/// store says which number is current).
#[derive(Default)]
pub struct CrlCache {
    inner: Mutex<HashMap<(String, Part), Arc<CachedCrl>>>,
    /// Serializes builds in this process (held across store calls).
    building: tokio::sync::Mutex<()>,
}

impl CrlCache {
    /// Drops every cached CRL of `ca_id` (they are re-read from the store).
    pub fn invalidate(&self, ca_id: &str) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(ca, _), _| ca != ca_id);
    }
    fn get(&self, ca_id: &str, part: Part) -> Option<Arc<CachedCrl>> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(ca_id.to_string(), part))
            .cloned()
    }
    fn put(&self, ca_id: &str, part: Part, crl: Arc<CachedCrl>) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let key = (ca_id.to_string(), part);
        // Never replace a newer one (a slower reader of an older number).
        if inner.get(&key).is_none_or(|c| c.number <= crl.number) {
            inner.insert(key, crl);
        }
    }
}

/// Whether a stored CRL may be served at `now` as current: built from the
/// CA's latest generation, younger than [`CRL_REFRESH`], not past
/// nextUpdate.
fn current_enough(head: &CrlHead, generation: u64, now: OffsetDateTime) -> bool {
    head.generation >= generation && now - head.this_update < CRL_REFRESH && now < head.next_update
}

/// How often [`tick`] runs: a third of the lease TTL, at most 1 s (a
/// revocation through another replica waits for it).
pub fn tick_interval(config: &Config) -> std::time::Duration {
    (config.lease_ttl / 3).clamp(
        std::time::Duration::from_millis(100),
        std::time::Duration::from_secs(1),
    )
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
    #[error("no CRL yet: another replica builds it")]
    Busy,
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

/// The current CRL `part` of `ca_id`: the stored one if it is current
/// enough, else rebuilt (here if this replica holds or can take the CA's
/// lease, else by the holder, waited for up to [`CRL_WAIT`]).
pub async fn current(
    state: &AppState,
    ca_id: &str,
    part: Part,
) -> Result<Arc<CachedCrl>, CrlError> {
    let shards = shard_count(&state.config);
    if let Part::Shard(k) = part {
        if shards <= 1 || k >= shards {
            return Err(CrlError::UnknownShard(k, shards));
        }
    }
    if !state.ca_set().by_id.contains_key(ca_id) {
        return Err(CrlError::UnknownCa(ca_id.to_string()));
    }
    let deadline = std::time::Instant::now() + CRL_WAIT;
    let lease = crate::leases::crl_lease(ca_id);
    loop {
        let (generation, head) = state.store.crl_head(ca_id, part).await?;
        let now = OffsetDateTime::now_utc();
        if let Some(h) = head.filter(|h| current_enough(h, generation, now)) {
            return load(state, ca_id, part, &h).await;
        }
        if state.leases.acquire(&lease).await?.is_some() {
            let _guard = state.crl_cache.building.lock().await;
            // Another thread of this process may have built it meanwhile.
            let (generation, head) = state.store.crl_head(ca_id, part).await?;
            if let Some(h) =
                head.filter(|h| current_enough(h, generation, OffsetDateTime::now_utc()))
            {
                return load(state, ca_id, part, &h).await;
            }
            let mut built = build_all(state, ca_id, shards).await?;
            return built.remove(&part).ok_or(CrlError::UnknownShard(0, shards));
        }
        // Another replica holds the lease: its tick rebuilds.
        if std::time::Instant::now() >= deadline {
            return match head.filter(|h| now < h.next_update) {
                Some(h) => {
                    tracing::warn!(
                        ca = ca_id,
                        number = h.number,
                        "serving a CRL older than the latest revocation: the replica holding the CRL lease has not rebuilt it"
                    );
                    load(state, ca_id, part, &h).await
                }
                None => Err(CrlError::Busy),
            };
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The stored CRL with `head`, from the local cache when it has that
/// number, else read from the store.
async fn load(
    state: &AppState,
    ca_id: &str,
    part: Part,
    head: &CrlHead,
) -> Result<Arc<CachedCrl>, CrlError> {
    if let Some(c) = state
        .crl_cache
        .get(ca_id, part)
        .filter(|c| c.number == head.number)
    {
        return Ok(c);
    }
    let stored = state
        .store
        .get_crl(ca_id, part)
        .await?
        .ok_or(CrlError::Busy)?;
    let c = Arc::new(CachedCrl::from(stored));
    state.crl_cache.put(ca_id, part, c.clone());
    if part == Part::Full {
        state.metrics.crl_built(ca_id, c.this_update, c.next_update);
    }
    Ok(c)
}

/// Builds, numbers, stores and caches every CRL of `ca_id` (full +
/// shards). The caller holds the CA's lease and the build lock. A rebuild of `[crl] stage_log_entries`
/// (50,000) revocations or more logs its stages in the human log format.
async fn build_all(
    state: &AppState,
    ca_id: &str,
    shards: u32,
) -> Result<HashMap<Part, Arc<CachedCrl>>, CrlError> {
    let cas = state.ca_set();
    let ca: Arc<IssuingCa> = cas
        .by_id
        .get(ca_id)
        .cloned()
        .ok_or_else(|| CrlError::UnknownCa(ca_id.to_string()))?;
    let now = OffsetDateTime::now_utc();
    let read_started = std::time::Instant::now();
    // The generation before the revocations: a revocation after this read
    // bumps it, so this CRL counts as stale (see the module docs).
    let (generation, _) = state.store.crl_head(ca_id, Part::Full).await?;
    let revoked = state.store.revoked_certificates(ca_id).await?;
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
    let number = state.store.next_crl_number(ca_id).await?;
    state.durable_store().await?;
    let this_update = now.replace_nanosecond(0).unwrap_or(now);
    let next_update = this_update + CRL_VALIDITY;
    let started = std::time::Instant::now();
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
    let entry_count = entries.len();
    let signed = crate::authority::signing::sign_crls(
        state.store.as_ref(),
        ca,
        number,
        this_update,
        next_update,
        Arc::new(entries),
        partitions,
    )
    .await?;
    let mut out = HashMap::new();
    let store = |part: Part, der: Vec<u8>| StoredCrl {
        ca_id: ca_id.to_string(),
        part,
        head: CrlHead {
            number,
            generation,
            this_update,
            next_update,
        },
        der,
    };
    let parts = signed
        .shards
        .into_iter()
        .enumerate()
        .map(|(k, der)| store(Part::Shard(k as u32), der))
        // The full CRL last: its head is what [`tick`] checks.
        .chain(std::iter::once(store(Part::Full, signed.full)));
    for stored in parts {
        let part = stored.part;
        state.store.put_crl(&stored).await?;
        let c = Arc::new(CachedCrl::from(stored));
        state.crl_cache.put(ca_id, part, c.clone());
        out.insert(part, c);
    }
    tracing::info!(
        ca = ca_id,
        number,
        shards,
        entries = entry_count,
        ms = started.elapsed().as_millis() as u64,
        "CRLs built"
    );
    state.metrics.crl_built(ca_id, this_update, next_update);
    Ok(out)
}

/// For every CA: takes or renews its CRL lease when free or ours, and
/// while holding it rebuilds CRLs that are missing, built before the latest
/// revocation or older than [`CRL_REFRESH`], so they are replaced well
/// before nextUpdate even when nobody fetches them. Call every
/// [`tick_interval`]. Returns how many CAs were rebuilt.
pub async fn tick(state: &AppState) -> usize {
    let cas = state.ca_set();
    let mut ids: Vec<&String> = cas.by_id.keys().collect();
    ids.sort();
    let shards = shard_count(&state.config);
    let mut rebuilt = 0;
    for id in ids {
        let r = async {
            if state
                .leases
                .acquire(&crate::leases::crl_lease(id))
                .await?
                .is_none()
            {
                return Ok(false);
            }
            if !due(state, id).await? {
                return Ok(false);
            }
            let _guard = state.crl_cache.building.lock().await;
            if !due(state, id).await? {
                return Ok(false);
            }
            build_all(state, id, shards).await?;
            Ok::<bool, CrlError>(true)
        }
        .await;
        match r {
            Ok(true) => rebuilt += 1,
            Ok(false) => {}
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

/// Whether the full CRL of `id` must be rebuilt now.
async fn due(state: &AppState, id: &str) -> Result<bool, CrlError> {
    let (generation, head) = state.store.crl_head(id, Part::Full).await?;
    Ok(!head.is_some_and(|h| current_enough(&h, generation, OffsetDateTime::now_utc())))
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
