//! ACME (RFC 8555) wire formats.
//!
//! * [`types`]: identifiers and the status enums of RFC 8555 §7.1.
//! * [`jwk`]: public JSON Web Keys (RFC 7517/7518) and thumbprints (RFC 7638).
//! * [`jws`]: flattened JSON JWS parsing and verification (RFC 8555 §6.2).
//! * [`problem`]: ACME problem documents (RFC 8555 §6.7, RFC 7807).
//! * [`ari`]: ACME Renewal Information certificate identifiers (RFC 9773 §4.1).
//! * [`eab`]: external account binding (RFC 8555 §7.3.4).
//! * [`requests`]: request payloads (RFC 8555 §7.3–§7.6) and their validation.

pub mod ari;
pub mod eab;
pub mod jwk;
pub mod jws;
pub mod problem;
pub mod requests;
pub mod types;

pub(crate) mod b64 {
    //! Strict base64url without padding (RFC 7515 §2, "Base64url Encoding").
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    /// Encodes `data` as base64url without padding.
    pub(crate) fn encode(data: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(data)
    }

    /// Decodes base64url without padding. Rejects padding, the standard
    /// alphabet, whitespace and non-canonical trailing bits.
    pub(crate) fn decode(s: &str) -> Option<Vec<u8>> {
        URL_SAFE_NO_PAD.decode(s.as_bytes()).ok()
    }
}
