//! The roles of admin API keys.

use serde::{Deserialize, Serialize};

/// What an admin API key may do (see `docs/admin-api.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiRole {
    /// Everything, including API key management.
    Admin,
    /// Revoke, mark for early renewal, read certificates and CAs.
    Operator,
    /// Read only, including the audit log.
    Auditor,
}

impl ApiRole {
    /// The lowercase name used on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiRole::Admin => "admin",
            ApiRole::Operator => "operator",
            ApiRole::Auditor => "auditor",
        }
    }
}

impl std::str::FromStr for ApiRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(ApiRole::Admin),
            "operator" => Ok(ApiRole::Operator),
            "auditor" => Ok(ApiRole::Auditor),
            other => Err(format!(
                "unknown role {other:?}; use admin, operator or auditor"
            )),
        }
    }
}
