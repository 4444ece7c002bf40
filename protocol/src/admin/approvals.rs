//! The approval queue: decisions and the list filter.

use serde::{Deserialize, Serialize};

use super::RequestError;

/// Where a held request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    /// Waiting for a decision.
    Pending,
    /// Approved; the certificate is being (or has been) issued.
    Approved,
    /// Rejected; nothing is issued.
    Rejected,
}

impl ApprovalStatus {
    /// The lowercase name used on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Rejected => "rejected",
        }
    }
}

/// `POST /admin/v1/approvals/{id}/approve` and `.../reject`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// Why, for the record.
    #[serde(default)]
    pub comment: Option<String>,
}

/// The query of `GET /admin/v1/approvals`: `status=pending|approved|rejected`
/// (default: all).
pub fn parse_status(query: Option<&str>) -> Result<Option<ApprovalStatus>, RequestError> {
    let mut status = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("status", "pending")) => status = Some(ApprovalStatus::Pending),
            Some(("status", "approved")) => status = Some(ApprovalStatus::Approved),
            Some(("status", "rejected")) => status = Some(ApprovalStatus::Rejected),
            _ => {
                return Err(RequestError::bad_request(format!(
                    "unknown query parameter {pair:?}; use status=pending|approved|rejected"
                )))
            }
        }
    }
    Ok(status)
}
