//! Domain-level writes that must land together or not at all (issue 11,
//! "domain-level atomic operations instead of sequences of writes"): a
//! revocation with its blocked key, CRL generation and audit entry, and a
//! change of the CA hierarchy with the issuing-CA pin and its audit entry.
//! Issuance has its own ([`crate::IssuanceWrite`]).
//!
//! With several replicas on one database, a sequence of separate writes
//! can be cut by a crash or interleaved with another replica's; these
//! operations are one transaction on PostgreSQL and sled and one lock
//! holding on the memory store.

use crate::audit::AuditEvent;
use crate::records::{CaRecord, RevocationRecord};

/// One revocation (RFC 5280 §5.3.1 reason, RFC 8555 §7.6 for ACME), written
/// by [`crate::Store::record_revocation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationWrite {
    /// Hex serial of the certificate (case-insensitive). `NotFound` if
    /// absent, `AlreadyRevoked` if it is revoked.
    pub serial: String,
    /// When and why.
    pub revocation: RevocationRecord,
    /// The SHA-256 (hex) of the certificate's public key to block as well
    /// (keyCompromise), if any.
    pub block_key: Option<String>,
    /// The CA whose CRL generation is bumped, so every replica rebuilds its
    /// CRLs before serving them again.
    pub issuer_id: String,
    /// The audit entry of the revocation.
    pub audit: AuditEvent,
}

/// What the stored CA record must be for a [`CaWrite`] to apply
/// (compare-and-swap against another replica's concurrent change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaExpect {
    /// The record must not exist yet (a new CA).
    Absent,
    /// The stored record must equal this one (the version the caller read
    /// and changed).
    Is(Box<CaRecord>),
}

/// One CA record to store, with what must be stored now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaUpdate {
    pub record: CaRecord,
    pub expect: CaExpect,
}

impl CaUpdate {
    /// A new CA record: `Conflict` if its id exists.
    pub fn create(record: CaRecord) -> CaUpdate {
        CaUpdate {
            record,
            expect: CaExpect::Absent,
        }
    }

    /// `record` in place of `before`, which must still be what is stored.
    pub fn replace(before: &CaRecord, record: CaRecord) -> CaUpdate {
        CaUpdate {
            record,
            expect: CaExpect::Is(Box::new(before.clone())),
        }
    }

    /// Whether `stored` is what this update expects.
    pub fn expects(&self, stored: Option<&CaRecord>) -> bool {
        match (&self.expect, stored) {
            (CaExpect::Absent, None) => true,
            (CaExpect::Is(want), Some(have)) => **want == *have,
            _ => false,
        }
    }
}

/// One change of the hierarchy (create, import, cross-sign, activation,
/// status change, rollover), written by [`crate::Store::record_ca_change`]:
/// every CA record checked and stored, the issuing-CA pin
/// ([`crate::settings::ISSUING_CA`]) moved if asked, and the audit entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaWrite {
    pub records: Vec<CaUpdate>,
    /// The id of the CA that issues from now on (an activation), if the
    /// change moves it.
    pub issuing_pin: Option<String>,
    pub audit: AuditEvent,
}

impl CaWrite {
    /// The `Conflict` of an update whose expectation failed.
    pub(crate) fn conflict(update: &CaUpdate) -> crate::StoreError {
        crate::StoreError::Conflict(format!(
            "CA {} was changed by another request; read it again",
            update.record.id
        ))
    }
}
