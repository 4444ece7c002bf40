//! The approval queue: issuance requests held for a second person's
//! decision (two-person integrity). ACME, SCEP, EST and the admin API put
//! their held requests here; the admin API approves or rejects them.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::records::b64;

pub use ironseal_protocol::admin::ApprovalStatus;

/// One held issuance request with everything needed to issue it later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// Opaque URL-safe id.
    pub id: String,
    /// Decision state.
    pub status: ApprovalStatus,
    /// The front end that asked (`acme`, `scep`, `est`, `admin`).
    pub protocol: String,
    /// Who asked, as an audit actor (`acme:<account>`, `key:<id>`, ...).
    pub requester: String,
    /// The tenant, if the requester belongs to one.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// The issuance profile.
    pub profile: String,
    /// The names asked for, as displayed (`dns:a.example`, `ip:10.0.0.1`).
    pub names: Vec<String>,
    /// The PKCS#10 request (DER).
    #[serde(with = "b64")]
    pub csr_der: Vec<u8>,
    /// Protocol-specific data the front end needs to finish the request
    /// (e.g. the ACME order id and the requested validity).
    #[serde(default)]
    pub context: Value,
    /// When it was queued.
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    /// Who decided (an audit actor).
    #[serde(default)]
    pub decided_by: Option<String>,
    /// When it was decided.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub decided_at: Option<OffsetDateTime>,
    /// The approver's or rejecter's comment.
    #[serde(default)]
    pub comment: Option<String>,
    /// The serial of the certificate issued after approval.
    #[serde(default)]
    pub cert_serial: Option<String>,
    /// Why issuance failed after approval, if it did.
    #[serde(default)]
    pub error: Option<String>,
}
