//! OCSP responder certificates shared by replicas (issue 11; see
//! `ironseal_storage::ocsp_responders`): the responder of a CA is kept in
//! the store with its key sealed under the KEK, as the CA keys are
//! (AES-256-GCM, `ironseal_ca_core::sealed`, with the lease name as
//! associated data). A replica whose responder is missing or due for
//! renewal (under a third of its validity left, see [`crate::ocsp`]) loads
//! the stored one if that is current; otherwise the replica that takes the
//! CA's `ocsp-responder:<ca id>` lease issues a new one and stores it, and
//! the others wait for it (bounded) and load it. On sled the one process
//! always takes the lease, so a restart reuses the stored responder.

use std::sync::Arc;

use ironseal_ca_core::hierarchy::Issuer;
use ironseal_ca_core::keys::CaKey;
use ironseal_ca_core::ocsp::OcspResponder;
use ironseal_ca_core::sealed::{open, seal, Kek};
use ironseal_storage::{OcspResponderRecord, Store};
use time::OffsetDateTime;

use crate::authority::signing::{sign_ocsp_responder, SigningError};
use crate::authority::IssuingCa;
use crate::leases::{ocsp_responder_lease, Leases};

/// How long a replica waits for another one to store a new responder.
const WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The KEK and leases responders are shared with.
pub struct ResponderShare {
    kek: Kek,
    leases: Arc<Leases>,
}

impl ResponderShare {
    pub fn new(kek: Kek, leases: Arc<Leases>) -> ResponderShare {
        ResponderShare { kek, leases }
    }

    fn unseal(
        &self,
        issuer: &Issuer,
        rec: OcspResponderRecord,
    ) -> Result<OcspResponder, SigningError> {
        let pkcs8 = open(&self.kek, &rec.sealed_key, aad(issuer.id()).as_bytes())?;
        let key = CaKey::from_pkcs8_der(&pkcs8)?;
        Ok(OcspResponder::new(issuer, key, rec.cert_der)?)
    }

    /// The stored responder of `issuer` if it can serve at `now` (`Ok(Err)`
    /// carries one that is valid but due for renewal).
    async fn stored(
        &self,
        store: &dyn Store,
        issuer: &Issuer,
        now: OffsetDateTime,
    ) -> Result<Result<OcspResponder, Option<OcspResponder>>, SigningError> {
        let Some(rec) = store.get_ocsp_responder(issuer.id()).await? else {
            return Ok(Err(None));
        };
        let r = match self.unseal(issuer, rec) {
            Ok(r) => r,
            Err(e) => {
                // E.g. written under another KEK: replace it.
                tracing::warn!(ca = issuer.id(), error = %e, "stored OCSP responder unusable");
                return Ok(Err(None));
            }
        };
        if r.not_after() <= now {
            Ok(Err(None))
        } else if crate::ocsp::needs_renewal(&r, issuer, now) {
            Ok(Err(Some(r)))
        } else {
            Ok(Ok(r))
        }
    }

    /// A responder of `issuer` for `now`: the stored one when current, else
    /// a new one (issued and stored under the lease), else, while another
    /// replica issues one, what is stored and still valid. `Ok(None)`:
    /// none to be had yet.
    pub async fn obtain(
        &self,
        store: &Arc<dyn Store>,
        ca: &Arc<IssuingCa>,
        now: OffsetDateTime,
    ) -> Result<Option<(OcspResponder, bool)>, SigningError> {
        let issuer = &ca.issuer;
        let fallback = match self.stored(store.as_ref(), issuer, now).await? {
            Ok(r) => return Ok(Some((r, false))),
            Err(f) => f,
        };
        let lease = ocsp_responder_lease(issuer.id());
        if self.leases.acquire(&lease).await?.is_some() {
            // Stored by another replica just before we took the lease?
            if let Ok(r) = self.stored(store.as_ref(), issuer, now).await? {
                self.leases.release(&lease).await?;
                return Ok(Some((r, false)));
            }
            let r = sign_ocsp_responder(
                store,
                ca,
                now,
                crate::ocsp::RESPONDER_VALIDITY,
                crate::ocsp::RESPONDER_BACKDATE,
            )
            .await;
            let r = match r {
                Ok(r) => r,
                Err(e) => {
                    self.leases.release(&lease).await?;
                    return Err(e);
                }
            };
            let sealed = seal(
                &self.kek,
                r.key().pkcs8_der(),
                aad(issuer.id()).as_bytes(),
                rand::random(),
            )?;
            store
                .put_ocsp_responder(&OcspResponderRecord {
                    ca_id: issuer.id().to_string(),
                    cert_der: r.cert_der().to_vec(),
                    sealed_key: sealed,
                    not_after: r.not_after(),
                })
                .await?;
            crate::durability::flush(store).await?;
            self.leases.release(&lease).await?;
            return Ok(Some((r, true)));
        }
        // Another replica is issuing: wait for it, bounded.
        let deadline = std::time::Instant::now() + WAIT;
        while std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            if let Ok(r) = self.stored(store.as_ref(), issuer, now).await? {
                return Ok(Some((r, false)));
            }
        }
        Ok(fallback.map(|r| (r, false)))
    }
}

/// The associated data of a sealed responder key.
fn aad(ca_id: &str) -> String {
    ocsp_responder_lease(ca_id)
}
