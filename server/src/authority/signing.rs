//! The authority's other signatures with CA keys: CRLs (RFC 5280 §5) and
//! delegated OCSP responder certificates (RFC 6960 §4.2.2.2). Each leaves
//! one audit entry: a CRL number (with all its shards) is one entry, a
//! responder certificate is one entry.

//!
//! The signatures themselves (CRLs of many entries, responder key
//! generation) run on a blocking thread; the store writes around them are
//! awaited on the caller's task.

use std::sync::Arc;

use ironseal_ca_core::crl::{build_crl, build_partitioned_crl, Partition, RevokedEntry};
use ironseal_ca_core::error::CaError;
use ironseal_ca_core::ocsp::{issue_responder_cert, OcspResponder};
use ironseal_ca_core::serial::Serial;
use ironseal_storage::{AuditEvent, Store, StoreError};
use time::{Duration, OffsetDateTime};

use super::IssuingCa;

/// Why a CRL or responder could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The CA core refused or failed.
    #[error("signing: {0}")]
    Ca(#[from] CaError),
    /// The audit entry could not be written; nothing is published.
    #[error("audit: {0}")]
    Store(#[from] StoreError),
    /// The blocking thread that signed failed (panicked or was cancelled).
    #[error("signing task: {0}")]
    Task(String),
}

impl From<tokio::task::JoinError> for SigningError {
    fn from(e: tokio::task::JoinError) -> SigningError {
        SigningError::Task(e.to_string())
    }
}

/// A CRL number's worth of CRLs: the full CRL and, when partitioned, one
/// per shard.
pub struct SignedCrls {
    /// The full CRL (DER).
    pub full: Vec<u8>,
    /// The shard CRLs (DER), in the order of the partitions given.
    pub shards: Vec<Vec<u8>>,
}

/// Signs the full CRL and its shards for CRL `number` of `ca` (on a
/// blocking thread: a CRL of many entries takes a while) and records one
/// audit entry for the number.
#[allow(
    clippy::too_many_arguments,
    reason = "the fields of one CRL number, each passed once by the builder"
)]
pub async fn sign_crls(
    store: &dyn Store,
    ca: Arc<IssuingCa>,
    number: u64,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    entries: Arc<Vec<RevokedEntry>>,
    partitions: Vec<(Partition, Vec<RevokedEntry>)>,
) -> Result<SignedCrls, SigningError> {
    let ca_id = ca.issuer.id().to_string();
    let count = entries.len();
    let (full, shards) = tokio::task::spawn_blocking(move || {
        let issuer = &ca.issuer;
        let full = build_crl(issuer, number, this_update, next_update, &entries)?;
        let shards = partitions
            .iter()
            .map(|(p, e)| build_partitioned_crl(issuer, number, this_update, next_update, e, p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok::<_, CaError>((full, shards))
    })
    .await??;
    store
        .append_audit(&AuditEvent {
            at: this_update,
            actor: "system".into(),
            action: "crl.sign".into(),
            summary: format!(
                "ca={ca_id} number={number} entries={count} shards={} next_update={next_update}",
                shards.len()
            ),
            outcome: None,
        })
        .await?;
    Ok(SignedCrls { full, shards })
}

/// Issues a delegated OCSP responder certificate (fresh key of the CA's
/// algorithm, id-kp-OCSPSigning, id-pkix-ocsp-nocheck) valid for
/// `validity` from `now − backdate`, never past the CA's notAfter, records
/// the signature in the audit log and makes it durable. Key generation and
/// signing run on a blocking thread.
pub async fn sign_ocsp_responder(
    store: &Arc<dyn Store>,
    ca: &Arc<IssuingCa>,
    now: OffsetDateTime,
    validity: Duration,
    backdate: Duration,
) -> Result<OcspResponder, SigningError> {
    let issuer = &ca.issuer;
    let not_before = now - backdate;
    let not_after = (not_before + validity).min(issuer.not_after());
    if not_after <= now {
        return Err(CaError::InvalidValidity("the CA has expired".into()).into());
    }
    let serial = Serial::from_random(rand::random());
    let signing_ca = ca.clone();
    let signing_serial = serial.clone();
    let responder = tokio::task::spawn_blocking(move || {
        let issuer = &signing_ca.issuer;
        let (key, cert) = issue_responder_cert(
            issuer,
            issuer.key().algorithm(),
            signing_serial,
            not_before,
            not_after,
        )?;
        OcspResponder::new(issuer, key, cert)
    })
    .await??;
    store
        .append_audit(&AuditEvent {
            at: now,
            actor: "system".into(),
            action: "ocsp_responder.issue".into(),
            summary: format!(
                "ca={} serial={} not_after={}",
                issuer.id(),
                serial.to_hex(),
                responder.not_after()
            ),
            outcome: None,
        })
        .await?;
    crate::durability::flush(store).await?;
    Ok(responder)
}
