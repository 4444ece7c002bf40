//! The lifecycle states of a CA, as the admin API names them.

use serde::{Deserialize, Serialize};

/// Lifecycle state of a CA in the hierarchy.
///
/// `Active`, `Retiring` and `Retired` are the lifecycle of a CA whose key
/// ironseal holds. `Pending` and `External` describe records that cannot
/// sign: a key waiting for its certificate from an offline or external CA
/// (RFC 2986 request made, certificate not yet imported), and a CA
/// certificate whose key lives outside ironseal (an offline root, or an
/// intermediate of an external hierarchy) kept as a trust anchor and chain
/// member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaStatus {
    /// Issues certificates.
    Active,
    /// Still signs CRLs/OCSP for what it issued, issues nothing new.
    Retiring,
    /// Out of service.
    Retired,
    /// Key generated, certificate signing request issued; `cert_der` is
    /// empty and `csr_der` holds the request until the signed certificate
    /// is imported (then the CA becomes `Active`).
    Pending,
    /// Certificate only: the key is held elsewhere; `sealed_key` is empty.
    External,
}

impl CaStatus {
    /// The lowercase wire name (`"active"`, ...), as serde writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            CaStatus::Active => "active",
            CaStatus::Retiring => "retiring",
            CaStatus::Retired => "retired",
            CaStatus::Pending => "pending",
            CaStatus::External => "external",
        }
    }

    /// True when ironseal holds this CA's key and its certificate: it can
    /// sign CRLs and OCSP responses (and leaves or CAs when `Active`).
    pub fn has_key_and_cert(self) -> bool {
        matches!(
            self,
            CaStatus::Active | CaStatus::Retiring | CaStatus::Retired
        )
    }
}
/// `POST /admin/v1/cas/{id}/status`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaStatusRequest {
    /// The new state.
    pub status: CaStatus,
}
