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
    /// A name (or a new CA's permitted subtree) is outside the permitted
    /// subtrees, or inside the excluded subtrees, of a CA on the chain
    /// (RFC 5280 §4.2.1.10, §6.1.3 (b)/(c)). Refused before signing; for
    /// ACME this is `rejectedIdentifier` (RFC 8555 §6.7).
    #[error("name constraint violation for {name}: {reason}")]
    NameConstraintViolation {
        /// The offending name, e.g. `dns:other.com` or `ip:192.168.1.1`.
        name: String,
        /// Which CA and which subtree refused it.
        reason: String,
    },
    /// Certifying another CA here would break a pathLenConstraint on the
    /// chain (RFC 5280 §4.2.1.9, §6.1.4 (l)/(m)). Refused before signing.
    #[error("pathLenConstraint {path_len} of {ca} exceeded: {reason}")]
    PathLenExceeded {
        /// Subject of the CA whose constraint would be broken.
        ca: String,
        /// That CA's pathLenConstraint.
        path_len: u8,
        /// What was attempted.
        reason: String,
    },
    /// The private key does not belong to the certificate: its public key
    /// differs from the subjectPublicKeyInfo (RFC 5280 §4.1.2.7).
    #[error("the private key does not match the certificate's subjectPublicKeyInfo")]
    KeyMismatch,
    /// A certificate that must be a CA is not one: no basicConstraints
    /// cA=TRUE (RFC 5280 §4.2.1.9) or no keyCertSign (§4.2.1.3). `depth` 0
    /// is the certificate being imported, 1 its issuer, and so on.
    #[error("certificate at depth {depth} is not a CA: {reason}")]
    NotACa {
        /// Position in the path (0 = the certificate itself).
        depth: usize,
        /// What is missing.
        reason: String,
    },
    /// The signature of the certificate at `depth` does not verify under
    /// the public key of the certificate at `depth + 1` (RFC 5280 §6.1.3
    /// (a)(1)), or uses an algorithm ironseal cannot verify.
    #[error("signature of the certificate at depth {depth} does not verify: {reason}")]
    BadSignature {
        /// Position in the path (0 = the certificate itself).
        depth: usize,
        /// Why.
        reason: String,
    },
    /// The path does not end in one of the trust anchors given
    /// (RFC 5280 §6.1.1 (d)), or the anchor is not a valid self-signed
    /// certificate.
    #[error("untrusted chain: {0}")]
    Untrusted(String),
    /// A certificate on the path has expired (RFC 5280 §6.1.3 (a)(2)).
    #[error("certificate at depth {depth} expired at {not_after}")]
    Expired {
        /// Position in the path (0 = the certificate itself).
        depth: usize,
        /// Its notAfter.
        not_after: time::OffsetDateTime,
    },
    /// A certificate on the path is not valid yet (RFC 5280 §6.1.3 (a)(2)).
    #[error("certificate at depth {depth} is not valid before {not_before}")]
    NotYetValid {
        /// Position in the path (0 = the certificate itself).
        depth: usize,
        /// Its notBefore.
        not_before: time::OffsetDateTime,
    },
    /// The validity of the certificate at `depth` is not inside the
    /// validity of its issuer (ironseal's nesting rule for CA
    /// certificates, RFC 5280 §4.1.2.5).
    #[error("validity of the certificate at depth {depth} is not inside its issuer's")]
    ValidityNotNested {
        /// Position in the path (0 = the certificate itself).
        depth: usize,
    },
    /// The issuer name of the certificate at `depth` is not byte-identical
    /// to the subject of the certificate at `depth + 1` (RFC 5280
    /// §4.1.2.4, §6.1.3 (a)(4)).
    #[error("issuer name of the certificate at depth {depth} differs from its issuer's subject")]
    NameChain {
        /// Position in the path (0 = the certificate itself).
        depth: usize,
    },
}

impl From<rcgen::Error> for CaError {
    fn from(e: rcgen::Error) -> Self {
        CaError::Encoding(e.to_string())
    }
}
