//! One-time SCEP challenges (issue 8): the admin API creates them
//! ([`crate::admin`] `scep_challenges`), the store keeps only their
//! SHA-256, and a PKCSReq on a path with `challenge_kind = "dynamic"` (or
//! `"static+dynamic"`) redeems one atomically. A challenge is bound to a
//! tenant, whose names policy then applies to the CSR, and optionally to
//! one SCEP path.

use aws_lc_rs::digest::{digest, SHA256};
use ironseal_storage::ScepChallengeRecord;
use time::OffsetDateTime;

/// Random bytes of a generated challenge (160 bits).
pub const CHALLENGE_BYTES: usize = 20;

/// SHA-256 (lowercase hex) of a challenge password: its store key.
pub fn hash(challenge: &str) -> String {
    hex::encode(digest(&SHA256, challenge.as_bytes()).as_ref())
}

/// A new challenge: lowercase hex, so it is a valid PrintableString
/// (RFC 2985 §5.4.1) for every client.
pub fn generate() -> Option<String> {
    let mut raw = [0u8; CHALLENGE_BYTES];
    aws_lc_rs::rand::fill(&mut raw).ok()?;
    Some(hex::encode(raw))
}

/// Why a challenge cannot be used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no such one-time challenge")]
    Unknown,
    #[error("the one-time challenge was already used")]
    Redeemed,
    #[error("the one-time challenge expired")]
    Expired,
    #[error("the one-time challenge is for another SCEP path")]
    OtherPath,
    #[error("the one-time challenge belongs to another tenant than the SCEP path")]
    OtherTenant,
}

/// Checks `record` for a request on `path` (whose own tenant is
/// `path_tenant`) at `now`; answers the tenant whose policy applies.
pub fn check(
    record: &ScepChallengeRecord,
    path: &str,
    path_tenant: Option<&str>,
    now: OffsetDateTime,
) -> Result<Option<String>, Refusal> {
    if record.redeemed_at.is_some() {
        return Err(Refusal::Redeemed);
    }
    if now >= record.expires_at {
        return Err(Refusal::Expired);
    }
    if record.path.as_deref().is_some_and(|p| p != path) {
        return Err(Refusal::OtherPath);
    }
    match (record.tenant_id.as_deref(), path_tenant) {
        (Some(a), Some(b)) if a != b => Err(Refusal::OtherTenant),
        (Some(a), _) => Ok(Some(a.to_string())),
        (None, b) => Ok(b.map(str::to_string)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use time::Duration;

    fn rec(tenant: Option<&str>, path: Option<&str>) -> ScepChallengeRecord {
        ScepChallengeRecord {
            challenge_hash: hash("x"),
            id: "i".into(),
            tenant_id: tenant.map(Into::into),
            path: path.map(Into::into),
            created_at: OffsetDateTime::UNIX_EPOCH,
            created_by: "k".into(),
            expires_at: OffsetDateTime::UNIX_EPOCH + Duration::hours(1),
            redeemed_at: None,
        }
    }

    #[test]
    fn bindings_expiry_and_use() {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(
            check(&rec(Some("a"), None), "p", None, t0),
            Ok(Some("a".into()))
        );
        assert_eq!(
            check(&rec(None, None), "p", Some("b"), t0),
            Ok(Some("b".into()))
        );
        assert_eq!(
            check(&rec(Some("a"), None), "p", Some("b"), t0),
            Err(Refusal::OtherTenant)
        );
        assert_eq!(
            check(&rec(None, Some("q")), "p", None, t0),
            Err(Refusal::OtherPath)
        );
        assert_eq!(
            check(&rec(None, None), "p", None, t0 + Duration::hours(1)),
            Err(Refusal::Expired)
        );
        let mut used = rec(None, None);
        used.redeemed_at = Some(t0);
        assert_eq!(check(&used, "p", None, t0), Err(Refusal::Redeemed));
        let g = generate().unwrap();
        assert_eq!(g.len(), 2 * CHALLENGE_BYTES);
        assert_ne!(generate().unwrap(), g);
        assert_eq!(hash("x").len(), 64);
    }
}
