//! One-time SCEP challenge passwords issued through the admin API (RFC
//! 8894 §2.3 leaves the challenge's meaning to the CA): each is bound to a
//! tenant (whose names policy then applies to the CSR), optionally to one
//! SCEP path, expires, and is redeemed at most once. Only the SHA-256 of
//! the password is stored; it is also the record's key, so a redemption
//! is one keyed compare-and-set.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One dynamic SCEP challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScepChallengeRecord {
    /// SHA-256 of the password, lowercase hex (never the password).
    pub challenge_hash: String,
    /// A public id for listing and revoking (not secret).
    pub id: String,
    /// The tenant whose policy applies (`None`: the SCEP path's own).
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// The SCEP path it may be used on (`None`: any dynamic path).
    #[serde(default)]
    pub path: Option<String>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Who created it.
    pub created_by: String,
    /// Unusable from this instant.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Set once redeemed (never cleared).
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub redeemed_at: Option<OffsetDateTime>,
}

impl ScepChallengeRecord {
    /// Unredeemed and unexpired at `now`.
    pub fn is_redeemable(&self, now: OffsetDateTime) -> bool {
        self.redeemed_at.is_none() && now < self.expires_at
    }
}
