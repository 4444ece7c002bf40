//! The records the [`crate::Store`] keeps.
//!
//! Every record is a serde struct stored as one JSON document. Timestamps are
//! RFC 3339 strings; byte fields (`der`, `cert_der`, `sealed_key`) are standard
//! base64 strings inside the JSON (see [`b64`]), so a record is one
//! self-contained value and a dump of a tree is readable with any JSON tool.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::types::{
    AccountStatus, AuthzStatus, ChallengeStatus, ChallengeType, Identifier, KeyAlgorithm,
    OrderStatus, RevocationReason,
};

/// An ACME account (RFC 8555 §7.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecord {
    /// Opaque URL-safe id (see [`crate::new_id`]).
    pub id: String,
    /// The account's public JWK (RFC 7517), canonical public members only.
    pub jwk: Value,
    /// RFC 7638 thumbprint of `jwk`; unique across accounts.
    pub thumbprint: String,
    /// `mailto:` contact URLs.
    pub contact: Vec<String>,
    /// Account status.
    pub status: AccountStatus,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// The tenant the account is bound to (through an EAB key), if any.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// The EAB key id the account was created with, if any.
    #[serde(default)]
    pub eab_kid: Option<String>,
}

/// An ACME order (RFC 8555 §7.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    /// Opaque URL-safe id.
    pub id: String,
    /// The owning account.
    pub account_id: String,
    /// Order status.
    pub status: OrderStatus,
    /// When the order expires.
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    /// Identifiers as requested (wildcards keep their `*.` label).
    pub identifiers: Vec<Identifier>,
    /// Requested notBefore, if any.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub not_before: Option<OffsetDateTime>,
    /// Requested notAfter, if any.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub not_after: Option<OffsetDateTime>,
    /// Authorization ids, one per identifier, in identifier order.
    pub authz_ids: Vec<String>,
    /// Problem document (RFC 7807) if the order failed.
    #[serde(default)]
    pub error: Option<Value>,
    /// Hex serial of the issued certificate once `valid`.
    #[serde(default)]
    pub cert_serial: Option<String>,
    /// ARI CertID (RFC 9773 §5) of the certificate this order replaces.
    #[serde(default)]
    pub replaces: Option<String>,
    /// Requested profile name, if any.
    #[serde(default)]
    pub profile: Option<String>,
    /// The approval request holding this order's issuance, if its profile
    /// requires approval.
    #[serde(default)]
    pub approval_id: Option<String>,
    /// Creation time; orders are listed per account in this order.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// An ACME authorization (RFC 8555 §7.1.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthzRecord {
    /// Opaque URL-safe id.
    pub id: String,
    /// The owning account.
    pub account_id: String,
    /// The identifier, without the `*.` label for wildcard authorizations.
    pub identifier: Identifier,
    /// Authorization status.
    pub status: AuthzStatus,
    /// When the authorization expires.
    #[serde(with = "time::serde::rfc3339")]
    pub expires: OffsetDateTime,
    /// True if this authorizes a wildcard name (RFC 8555 §7.1.4).
    pub wildcard: bool,
    /// The offered challenges.
    pub challenges: Vec<ChallengeRecord>,
}

/// An ACME challenge (RFC 8555 §7.1.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeRecord {
    /// Opaque URL-safe id.
    pub id: String,
    /// Challenge type.
    pub kind: ChallengeType,
    /// The challenge token (RFC 8555 §8.3, base64url, ≥128 bits of entropy).
    pub token: String,
    /// Challenge status.
    pub status: ChallengeStatus,
    /// When validation succeeded.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub validated: Option<OffsetDateTime>,
    /// Problem document if validation failed.
    #[serde(default)]
    pub error: Option<Value>,
}

/// An issued certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRecord {
    /// Serial number as lowercase hex (the key; lookups are case-insensitive).
    pub serial: String,
    /// The issuing CA's id.
    pub issuer_id: String,
    /// The account that ordered it.
    pub account_id: String,
    /// The order that produced it.
    pub order_id: String,
    /// The certificate DER.
    #[serde(with = "b64")]
    pub der: Vec<u8>,
    /// notBefore.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// notAfter.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Hex SHA-256 of the subject public key info's key bits.
    pub public_key_sha256: String,
    /// The identifiers in the certificate's SAN.
    pub identifiers: Vec<Identifier>,
    /// Set once the certificate is revoked (never cleared).
    #[serde(default)]
    pub revocation: Option<RevocationRecord>,
    /// Id of the order that replaced it (RFC 9773 §5; never cleared).
    #[serde(default)]
    pub replaced_by: Option<String>,
    /// ARI hint: ask the client to renew early (RFC 9773 §4.2).
    #[serde(default)]
    pub renew_early: bool,
    /// Protocol, requester, tenant and profile it was issued for.
    #[serde(default)]
    pub origin: crate::issuance::CertOrigin,
}

/// What an OCSP answer needs of a certificate (RFC 6960 §2.2): its issuer
/// and its revocation. Kept by the sled backend in a compact index next to
/// the full record, so a status lookup reads tens of bytes instead of the
/// whole JSON record with its DER.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateStatus {
    /// The issuing CA's id.
    pub issuer_id: String,
    /// Set once the certificate is revoked.
    #[serde(default)]
    pub revocation: Option<RevocationRecord>,
}

impl From<&CertificateRecord> for CertificateStatus {
    fn from(c: &CertificateRecord) -> Self {
        CertificateStatus {
            issuer_id: c.issuer_id.clone(),
            revocation: c.revocation,
        }
    }
}

/// A revocation (RFC 5280 §5.3.1 reason, time of revocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationRecord {
    /// When the certificate was revoked.
    #[serde(with = "time::serde::rfc3339")]
    pub revoked_at: OffsetDateTime,
    /// The CRL reason code.
    pub reason: RevocationReason,
}

pub use ironseal_protocol::admin::CaStatus;

/// A CA (root or intermediate) and its sealed private key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaRecord {
    /// Opaque id.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// The parent CA's id; `None` for a root.
    #[serde(default)]
    pub parent_id: Option<String>,
    /// The CA certificate DER.
    #[serde(with = "b64")]
    pub cert_der: Vec<u8>,
    /// The PKCS#8 private key, sealed with the KEK (AES-256-GCM blob).
    #[serde(with = "b64")]
    pub sealed_key: Vec<u8>,
    /// The algorithm of the key ironseal holds; `None` for an `External`
    /// CA, whose key (of any type) is held elsewhere.
    #[serde(default)]
    pub algorithm: Option<KeyAlgorithm>,
    /// Lifecycle state.
    pub status: CaStatus,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Cross certificates of this CA (same subject and key, issued by
    /// another CA of the store). Absent in older records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cross_certs: Vec<CrossCert>,
    /// The PKCS#10 request (RFC 2986) of a `Pending` CA, DER; empty
    /// otherwise and in older records.
    #[serde(default, with = "b64", skip_serializing_if = "Vec::is_empty")]
    pub csr_der: Vec<u8>,
    /// The CA this one succeeds: set on the successor a rollover creates
    /// (`POST /admin/v1/cas/{id}/rollover`), which SCEP's GetNextCACert
    /// (RFC 8894 §3.5.1) offers while the predecessor still issues.
    /// Absent in older records and for CAs made otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predecessor_id: Option<String>,
}

/// A cross certificate of a CA: its subject and key certified by `by`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrossCert {
    /// The id of the cross-signing CA.
    pub by: String,
    /// The cross certificate DER.
    #[serde(with = "b64")]
    pub der: Vec<u8>,
}

impl std::fmt::Debug for CaRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The sealed key is ciphertext, but keep it out of logs anyway.
        f.debug_struct("CaRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("parent_id", &self.parent_id)
            .field("cert_der_len", &self.cert_der.len())
            .field("sealed_key", &"<sealed>")
            .field("algorithm", &self.algorithm)
            .field("status", &self.status)
            .field("created_at", &self.created_at)
            .field("cross_certs", &self.cross_certs.len())
            .field("csr_der_len", &self.csr_der.len())
            .finish()
    }
}

/// Serde helper: `Vec<u8>` as a standard (padded) base64 string.
pub mod b64 {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialize bytes as base64.
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    /// Deserialize bytes from base64.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        STANDARD
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

pub use ironseal_protocol::admin::ApiRole;

/// An admin API key. Only the SHA-256 of the presented key is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// Public key id (the `<id>` of `isk_<id>_<secret>`); unique.
    pub id: String,
    /// Human-readable label.
    pub name: String,
    /// What the key may do.
    pub role: ApiRole,
    /// Lowercase hex SHA-256 of the whole key string as presented.
    pub secret_sha256: String,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Who created it (an actor as in the audit log).
    pub created_by: String,
    /// Set once the key is revoked (never cleared); a disabled key
    /// authenticates nothing.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub disabled_at: Option<OffsetDateTime>,
    /// The tenant the key is scoped to: it then sees and acts on that
    /// tenant's certificates, credentials and approvals only.
    #[serde(default)]
    pub tenant_id: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn ca_record_without_cross_certs_loads() {
        let old = r#"{"id":"int-1","name":"I","parent_id":"root-1","cert_der":"MAA=",
            "sealed_key":"AAE=","algorithm":"p256","status":"active",
            "created_at":"2026-01-01T00:00:00Z"}"#;
        let r: CaRecord = serde_json::from_str(old).unwrap();
        assert!(r.cross_certs.is_empty());
        // An empty list is not written, so older binaries read new records.
        assert!(!serde_json::to_string(&r).unwrap().contains("cross_certs"));
        let mut r2 = r.clone();
        r2.cross_certs.push(CrossCert {
            by: "root-2".into(),
            der: vec![0x30, 0x00],
        });
        let back: CaRecord = serde_json::from_str(&serde_json::to_string(&r2).unwrap()).unwrap();
        assert_eq!(back, r2);
    }
}
