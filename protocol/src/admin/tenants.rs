//! Tenants: what creating one carries.

use serde::{Deserialize, Serialize};

use super::RequestError;

/// The names a tenant's credentials may yield. An empty list allows no name
/// of that kind. The rules are evaluated by `ironseal_ca_core::name_policy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantNames {
    /// DNS suffixes: `example.com` allows `example.com` and every name below
    /// it; `*.example.com` additionally allows wildcard names below it.
    #[serde(default)]
    pub dns: Vec<String>,
    /// IP ranges in CIDR form (`10.1.0.0/16`, `2001:db8::/32`).
    #[serde(default)]
    pub ip: Vec<String>,
    /// URI prefixes (`spiffe://td.example/ns/team-a`), matched on a path
    /// segment boundary.
    #[serde(default)]
    pub uri: Vec<String>,
    /// Email domains: `example.com` allows mailboxes at that host;
    /// `.example.com` those at hosts below it.
    #[serde(default)]
    pub email: Vec<String>,
}

/// `POST /admin/v1/tenants`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateTenantRequest {
    /// The tenant id (see [`tenant_id`]).
    pub id: String,
    /// Display name (default: the id).
    #[serde(default)]
    pub name: Option<String>,
    /// Allowed names.
    #[serde(default)]
    pub names: TenantNames,
    /// Profiles the tenant may use (default: all).
    #[serde(default)]
    pub profiles: Option<Vec<String>>,
    /// Whether CAA (RFC 8659) is checked for the tenant's validations
    /// (default: true).
    #[serde(default)]
    pub caa: Option<bool>,
}

/// A tenant id: 1 to 64 of `[a-z0-9-]`, starting with a letter or digit,
/// so it is safe in URLs, logs and file names.
pub fn tenant_id(id: &str) -> Result<&str, RequestError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-');
    if ok {
        Ok(id)
    } else {
        Err(RequestError::bad_request(
            "tenant id must be 1 to 64 characters of a-z, 0-9 and '-', not starting with '-'",
        ))
    }
}
