//! Delegated OCSP responder certificates (RFC 6960 §4.2.2.2) kept in the
//! store, so that every replica signs with the same responder (issue 11).
//! The replica holding the CA's `ocsp-responder:<ca id>` lease issues and
//! rotates it; the others load it. The key is sealed under the KEK like the
//! CA keys (the replicas share the KEK).
//!
//! Not exported: a store moved elsewhere issues fresh responders (they are
//! short-lived and carry id-pkix-ocsp-nocheck).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The responder of one CA.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OcspResponderRecord {
    /// The CA that issued it (and whose responses it signs).
    pub ca_id: String,
    /// The responder certificate.
    #[serde(with = "crate::records::b64")]
    pub cert_der: Vec<u8>,
    /// Its PKCS#8 key, sealed under the KEK.
    #[serde(with = "crate::records::b64")]
    pub sealed_key: Vec<u8>,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
}

impl std::fmt::Debug for OcspResponderRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OcspResponderRecord")
            .field("ca_id", &self.ca_id)
            .field("sealed_key", &"<sealed>")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}
