//! Error type of the CA core.

use thiserror::Error;

/// Errors raised by CA operations (key handling, issuance, CRL building).
///
/// CSR problems have their own type, [`crate::csr::CsrError`], because they
/// all map to the ACME `badCSR` problem (RFC 8555 §7.4).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CaError {
    /// A private key could not be generated, parsed or used.
    #[error("key error: {0}")]
    Key(String),
    /// The key-encryption key is not 32 bytes of valid input.
    #[error("invalid key-encryption key: {0}")]
    InvalidKek(String),
    /// A sealed blob failed authentication or has an unknown version.
    #[error("sealed blob could not be opened")]
    Unseal,
    /// A serial number is not a positive DER INTEGER of at most 20 octets
    /// (RFC 5280 §4.1.2.2).
    #[error("invalid serial number: {0}")]
    InvalidSerial(String),
    /// A validity period is empty, inverted or outside the issuer's
    /// (RFC 5280 §4.1.2.5).
    #[error("invalid validity: {0}")]
    InvalidValidity(String),
    /// The issuing CA certificate, key or configuration is unusable.
    #[error("invalid issuer: {0}")]
    InvalidIssuer(String),
    /// A certificate could not be parsed (RFC 5280 §4.1).
    #[error("invalid certificate: {0}")]
    InvalidCertificate(String),
    /// The request to issue is inconsistent (e.g. no identifiers).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Encoding or signing failed inside the certificate builder.
    #[error("encoding failed: {0}")]
    Encoding(String),
    /// A post-signing self-check failed; the artifact must not be used.
    #[error("self-check failed: {0}")]
    SelfCheck(String),
}

impl From<rcgen::Error> for CaError {
    fn from(e: rcgen::Error) -> Self {
        CaError::Encoding(e.to_string())
    }
}
