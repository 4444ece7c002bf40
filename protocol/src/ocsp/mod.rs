//! OCSP wire formats (RFC 6960, profiled by RFC 5019): request decoding,
//! response encoding and the HTTP GET path decoding of RFC 6960 Appendix A.1.
//!
//! The types are our own, on `der` 0.8, because `x509-ocsp` 0.2 is built on
//! `der` 0.7 / `x509-cert` 0.2 and would drag a second RustCrypto stack into
//! the tree (see `docs/research/ca_core.md`).
//!
//! - [`request`]: `OCSPRequest` (RFC 6960 §4.1.1) → [`OcspRequest`], strict
//!   DER, at most [`MAX_REQUEST_SIZE`] bytes, trailing bytes rejected, the
//!   nonce extension (RFC 8954, length limits of RFC 9654) extracted.
//! - [`response`]: `OCSPResponse` / `BasicOCSPResponse` (RFC 6960 §4.2.1)
//!   encoding. The caller signs the exact `tbsResponseData` bytes returned by
//!   [`ResponseData::to_der`] and hands the signature back to
//!   [`encode_basic_response`].
//! - [`get`]: the base64 + URL-encoded path segment of an HTTP GET request
//!   (RFC 6960 Appendix A.1.1, RFC 5019 §5) → DER.

pub mod get;
pub mod request;
pub mod response;

mod der_write;

use der::asn1::ObjectIdentifier;
use thiserror::Error;

pub use get::decode_get_path;
pub use request::{CertId, OcspRequest, SingleRequest};
pub use response::{
    encode_basic_response, encode_error_response, encode_successful_response, response_status,
    CertStatus, ResponseData, ResponseStatus, SingleResponse,
};

/// Largest encoded `OCSPRequest` (or GET path segment) we look at: 64 KiB.
/// A well-formed single request is about 100 bytes.
pub const MAX_REQUEST_SIZE: usize = 64 * 1024;

/// Shortest nonce accepted (RFC 8954 §2.1: `Nonce ::= OCTET STRING (SIZE(1..32))`).
pub const MIN_NONCE_LEN: usize = 1;
/// Longest nonce accepted: 128 octets (RFC 9654 §2.1 raised RFC 8954's 32).
pub const MAX_NONCE_LEN: usize = 128;

/// id-pkix-ocsp-nonce (RFC 6960 §4.4.1).
pub const OID_OCSP_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
/// id-pkix-ocsp-basic, the `responseType` of a `BasicOCSPResponse` (RFC 6960 §4.2.1).
pub const OID_OCSP_BASIC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
/// id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1).
pub const OID_OCSP_NOCHECK: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.5");
/// id-pkix-ocsp-response, the acceptable-responses extension (RFC 6960 §4.4.3).
pub const OID_OCSP_RESPONSE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.4");
/// id-kp-OCSPSigning (RFC 6960 §4.2.2.2, RFC 5280 §4.2.1.12).
pub const OID_KP_OCSP_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.9");
/// id-sha1 (RFC 3279 §2.2.1), the CertID hash RFC 5019 §2.1.1 requires.
pub const OID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
/// id-sha256 (RFC 5754 §2.2).
pub const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
/// id-sha384 (RFC 5754 §2.3).
pub const OID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
/// id-sha512 (RFC 5754 §2.4).
pub const OID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

/// Why an OCSP request could not be decoded. Every variant maps to the
/// `malformedRequest` response status (RFC 6960 §2.3, §4.2.1).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OcspError {
    /// The input is larger than [`MAX_REQUEST_SIZE`].
    #[error("request larger than {MAX_REQUEST_SIZE} bytes")]
    TooLarge,
    /// The input is not a strict DER `OCSPRequest` (includes truncation and
    /// trailing bytes).
    #[error("malformed DER: {0}")]
    Der(String),
    /// `TBSRequest.version` is not v1 (RFC 6960 §4.1.1).
    #[error("unsupported request version {0}")]
    Version(String),
    /// `requestList` is empty.
    #[error("empty requestList")]
    NoRequests,
    /// The nonce extension is malformed, repeated, or its length is outside
    /// 1..=128 octets (RFC 8954 §2.1, RFC 9654 §2.1).
    #[error("bad nonce: {0}")]
    BadNonce(String),
    /// An extension marked critical that we do not understand
    /// (RFC 5280 §4.2 semantics, RFC 6960 §4.4).
    #[error("unsupported critical extension {0}")]
    UnsupportedCriticalExtension(ObjectIdentifier),
    /// An extension appears twice in one list.
    #[error("duplicate extension {0}")]
    DuplicateExtension(ObjectIdentifier),
    /// The GET path segment is not URL-encoded base64 (RFC 6960 Appendix A.1.1).
    #[error("bad GET encoding: {0}")]
    BadGetEncoding(String),
    /// A value handed to the encoder cannot be represented (e.g. a time
    /// outside GeneralizedTime's range).
    #[error("cannot encode: {0}")]
    Encode(String),
}

impl From<der::Error> for OcspError {
    fn from(e: der::Error) -> Self {
        OcspError::Der(e.to_string())
    }
}
