//! SCEP transactions (RFC 8894 §3.2.1.1): what each transactionID asked
//! for and where it stands, so that a retried request gets the same answer
//! (no second certificate), a transactionID replayed with another request
//! is refused, and CertPoll (§3.3.3) finds a held or issued request.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Where a SCEP transaction stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum ScepTransactionState {
    /// Being issued now by one request; a concurrent identical request is
    /// answered PENDING and polls.
    InFlight,
    /// Held in the approval queue.
    Held {
        /// The approval record.
        approval_id: String,
        /// Intune validated the request (`challenge_kind = "intune"`): the
        /// approver's decision is reported to Intune when it is made.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        intune: bool,
    },
    /// Issued.
    Issued {
        /// The certificate's serial (lowercase hex).
        serial: String,
    },
}

/// One SCEP transaction, keyed by its transactionID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScepTransactionRecord {
    /// The client's transactionID (a PrintableString, at most 128 chars).
    pub transaction_id: String,
    /// SHA-256 (hex) over the message type, the signer certificate and the
    /// CSR: equal for a retry of the same request, different for another.
    pub request: String,
    /// SHA-256 (hex) of the signer's SubjectPublicKeyInfo: CertPoll must
    /// be signed with the same key.
    pub signer_key: String,
    /// Where it stands.
    pub state: ScepTransactionState,
    /// When this state was written.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}
