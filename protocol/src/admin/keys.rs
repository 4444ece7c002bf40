//! API keys: what creating one carries.

use serde::Deserialize;

use super::ApiRole;

/// `POST /admin/v1/keys`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// Display name of the key.
    pub name: String,
    /// What the key may do.
    pub role: ApiRole,
    /// Scope the key to one tenant (operator and auditor keys only).
    #[serde(default)]
    pub tenant: Option<String>,
}
