//! Revocation requests, one certificate or many.

use serde::Deserialize;

/// A CRLReason (RFC 5280 §5.3.1) as a name (`"keyCompromise"`) or a code
/// (`1`); the server maps it to a reason and refuses the unsupported ones.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ReasonInput {
    /// A reason code.
    Code(u8),
    /// A reason name.
    Name(String),
}

/// `POST /admin/v1/certificates/{serial}/revoke`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// Default: unspecified.
    #[serde(default)]
    pub reason: Option<ReasonInput>,
}

/// `POST /admin/v1/revocations`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    /// Serials as [`super::normalize_serial`] reads them.
    pub serials: Vec<String>,
    /// Default: unspecified.
    #[serde(default)]
    pub reason: Option<ReasonInput>,
}
