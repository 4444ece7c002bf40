//! CRLs per issuing CA (RFC 5280 §5), DER over plain HTTP. Built on first
//! fetch and cached; a revocation drops the cache, and a cached CRL is
//! rebuilt once it is older than a quarter of its validity, well before
//! its nextUpdate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ironseal_ca_core::crl::{build_crl, RevokedEntry};
use ironseal_ca_core::serial::Serial;
use time::OffsetDateTime;

use crate::state::AppState;

/// How long a CRL is valid (thisUpdate to nextUpdate).
pub const CRL_VALIDITY: time::Duration = time::Duration::hours(24);
/// After this age a cached CRL is rebuilt.
pub const CRL_REFRESH: time::Duration = time::Duration::hours(6);

/// One built CRL.
pub struct CachedCrl {
    pub der: Arc<Vec<u8>>,
    pub number: u64,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
}

/// The CRLs built so far, by CA id.
#[derive(Default)]
pub struct CrlCache {
    inner: Mutex<HashMap<String, Arc<CachedCrl>>>,
}

impl CrlCache {
    pub fn invalidate(&self, ca_id: &str) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(ca_id);
    }
    fn get(&self, ca_id: &str) -> Option<Arc<CachedCrl>> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(ca_id)
            .cloned()
    }
    fn put(&self, ca_id: &str, crl: Arc<CachedCrl>) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(ca_id.to_string(), crl);
    }
}

/// Why a CRL could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum CrlError {
    #[error("no CA {0}")]
    UnknownCa(String),
    #[error("store: {0}")]
    Store(#[from] ironseal_storage::StoreError),
    #[error("signing: {0}")]
    Ca(#[from] ironseal_ca_core::error::CaError),
}

/// The current CRL of `ca_id`, from cache or freshly built and numbered.
pub fn current_crl(state: &AppState, ca_id: &str) -> Result<Arc<CachedCrl>, CrlError> {
    let now = OffsetDateTime::now_utc();
    if let Some(c) = state.crl_cache.get(ca_id) {
        if now - c.this_update < CRL_REFRESH {
            return Ok(c);
        }
    }
    let cas = state.ca_set();
    let ca = cas
        .by_id
        .get(ca_id)
        .ok_or_else(|| CrlError::UnknownCa(ca_id.to_string()))?;
    let revoked = state.store.revoked_certificates(ca_id)?;
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
    let this_update = now;
    let next_update = now + CRL_VALIDITY;
    let der = build_crl(&ca.issuer, number, this_update, next_update, &entries)?;
    let built = Arc::new(CachedCrl {
        der: Arc::new(der),
        number,
        this_update,
        next_update,
    });
    state.crl_cache.put(ca_id, built.clone());
    state.metrics.inc("crls_built");
    Ok(built)
}
