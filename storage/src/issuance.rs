//! What issuing one certificate writes, as one atomic store operation:
//! the certificate, the order transition (ACME), the `replaces` link
//! (RFC 9773 §5), the SCEP transaction's outcome (RFC 8894 §3.2.1.1) and
//! the audit entry. Either all of it is stored or none.

use serde::{Deserialize, Serialize};

use crate::audit::AuditEvent;
use crate::records::{CertificateRecord, OrderRecord};
use crate::scep::ScepTransactionRecord;

/// Who and what a certificate was issued for, kept with the certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertOrigin {
    /// The front end that asked: `acme`, `scep`, `est`, `admin`, `server`.
    #[serde(default)]
    pub protocol: String,
    /// Who asked, as an audit actor (`acme:<account>`, `key:<id>`,
    /// `server:listener`, ...).
    #[serde(default)]
    pub requester: String,
    /// The requester's tenant, if any.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// The issuance profile.
    #[serde(default)]
    pub profile: String,
}

/// One issuance, written by [`crate::Store::record_issuance`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuanceWrite {
    /// The new certificate (`DuplicateSerial` if its serial exists).
    pub certificate: CertificateRecord,
    /// The order moving from `processing` to its new state, written only if
    /// the stored order is still `processing` (else `Conflict`).
    pub order: Option<OrderRecord>,
    /// Hex serial of the certificate this one replaces: its `replaced_by`
    /// is set to the order id unless already set.
    pub replaces: Option<String>,
    /// The SCEP transaction this issuance settles: written only if the
    /// stored record still equals `expected` (else `Conflict`), so a
    /// transaction is never left claimed by a certificate that exists
    /// (a crash between two writes would let a retry take the stale
    /// claim over and get a second certificate).
    pub scep_transaction: Option<ScepSettle>,
    /// The audit entry of the signature.
    pub audit: AuditEvent,
}

/// A SCEP transaction record moving from its in-flight claim to its
/// outcome in the issuance's write (see [`IssuanceWrite::scep_transaction`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScepSettle {
    /// The record as claimed; the stored one must still be equal.
    pub expected: ScepTransactionRecord,
    /// The record to store in its place.
    pub settled: ScepTransactionRecord,
}
