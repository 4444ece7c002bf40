//! Why a PKIMessage was refused, each mapped to the failInfo a CertRep
//! carries (RFC 8894 §3.2.1.4).

use super::FailInfo;

/// A PKIMessage that could not be decoded, verified or decrypted.
#[derive(Debug, thiserror::Error)]
pub enum ScepError {
    /// Not well-formed DER/BER, or not the CMS shape SCEP requires.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A required SCEP attribute is missing or has the wrong type.
    #[error("missing or invalid attribute {0}")]
    Attribute(&'static str),
    /// messageType is not one RFC 8894 defines.
    #[error("unknown messageType {0}")]
    UnknownMessageType(String),
    /// Digest, signature, key transport or content cipher we do not support.
    #[error("unsupported algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// The signer certificate is missing or not usable.
    #[error("signer certificate: {0}")]
    SignerCertificate(String),
    /// The signature over the signed attributes or the messageDigest does
    /// not verify.
    #[error("signature or message digest does not verify")]
    BadSignature,
    /// The envelope could not be opened with the RA key.
    #[error("cannot decrypt the envelope: {0}")]
    Decrypt(&'static str),
    /// The envelope is not addressed to the RA certificate.
    #[error("no recipient matches the RA certificate")]
    NotForUs,
    /// Building the answer failed (encoding, key, randomness).
    #[error("cannot build the answer: {0}")]
    Build(String),
}

impl ScepError {
    /// The failInfo to answer with (RFC 8894 §3.2.1.4).
    pub fn fail_info(&self) -> FailInfo {
        match self {
            ScepError::UnsupportedAlgorithm(_) => FailInfo::BadAlg,
            ScepError::BadSignature | ScepError::Decrypt(_) => FailInfo::BadMessageCheck,
            ScepError::NotForUs => FailInfo::BadCertId,
            ScepError::Malformed(_)
            | ScepError::Attribute(_)
            | ScepError::UnknownMessageType(_)
            | ScepError::SignerCertificate(_)
            | ScepError::Build(_) => FailInfo::BadRequest,
        }
    }
}

impl From<der::Error> for ScepError {
    fn from(e: der::Error) -> Self {
        ScepError::Malformed(e.to_string())
    }
}
