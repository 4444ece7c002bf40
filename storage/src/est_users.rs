//! EST users for HTTP Basic authentication (RFC 7030 §3.2.3): a name, the
//! tenant it belongs to, and a slow salted hash of its password (never the
//! password). The hash format is chosen by the server; the store keeps it
//! as an opaque string.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One EST Basic-auth user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EstUserRecord {
    /// The user name the client sends; unique across tenants.
    pub username: String,
    /// The tenant whose EST labels it may enrol on (`None`: labels
    /// without a tenant).
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// The password hash (PHC-style string, e.g. `$pbkdf2-sha512$i=...`).
    pub password_hash: String,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Who created it.
    pub created_by: String,
    /// Set once disabled (never cleared).
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub disabled_at: Option<OffsetDateTime>,
}

impl EstUserRecord {
    /// True unless disabled.
    pub fn is_active(&self) -> bool {
        self.disabled_at.is_none()
    }
}
