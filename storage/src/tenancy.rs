//! Tenants and their ACME external account binding keys (RFC 8555 §7.3.4).
//!
//! A tenant owns a name policy (which names its credentials may ever
//! yield), the issuance profiles it may use, and its credentials. EAB keys
//! are kept sealed (AES-256-GCM under the key-encryption key, like CA keys):
//! the HMAC key is a shared secret the server must read back to verify a
//! binding, so a hash would not do.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::records::b64;

pub use ironseal_protocol::admin::TenantNames;

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRecord {
    /// Short URL-safe id chosen by the operator (`team-a`); unique.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Allowed names.
    pub names: TenantNames,
    /// Issuance profiles the tenant may use (names from the configuration).
    pub profiles: Vec<String>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Who created it (an actor as in the audit log).
    pub created_by: String,
    /// Set once the tenant is disabled (never cleared): its credentials
    /// then authenticate nothing and its accounts get no certificate.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub disabled_at: Option<OffsetDateTime>,
    /// CAA (RFC 8659) is not checked for this tenant's validations (an
    /// internal zone without CAA records). Absent in older records: checked.
    #[serde(default)]
    pub caa_disabled: bool,
}

impl TenantRecord {
    /// True unless disabled.
    pub fn is_active(&self) -> bool {
        self.disabled_at.is_none()
    }
}

/// An ACME external account binding key (RFC 8555 §7.3.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EabKeyRecord {
    /// The key identifier the client sends as the binding's `kid`; unique.
    pub kid: String,
    /// The tenant the bound account belongs to.
    pub tenant_id: String,
    /// The HMAC key, sealed under the key-encryption key (aad `eab:<kid>`).
    #[serde(with = "b64")]
    pub sealed_hmac_key: Vec<u8>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Who created it.
    pub created_by: String,
    /// The account this key was bound to (at most one, never cleared).
    #[serde(default)]
    pub bound_account: Option<String>,
    /// Set once disabled (never cleared).
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub disabled_at: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests panic on unexpected failures")]

    use super::*;

    /// Tenants stored before the CAA switch existed read back with CAA on.
    #[test]
    fn older_tenant_records_check_caa() {
        let old = r#"{"id":"a","name":"A","names":{"dns":[],"ip":[],"uri":[],"email":[]},
            "profiles":["default"],"created_at":"2026-01-01T00:00:00Z","created_by":"key:k"}"#;
        let t: TenantRecord = serde_json::from_str(old).unwrap();
        assert!(!t.caa_disabled);
    }
}
