//! Message digests and RSA signature schemes SCEP signers use (RFC 8894
//! §3.5.2 "SHA-256" / "SHA-512"; SHA-1 is still accepted on input for old
//! devices).

use aws_lc_rs::{digest, signature};
use const_oid::ObjectIdentifier;

use super::{oids, ScepError};

/// A digest algorithm of a SignerInfo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAlg {
    /// SHA-1 (verify only).
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-512.
    Sha512,
}

impl DigestAlg {
    /// The digest algorithm named by `oid`; anything else is badAlg.
    pub fn from_oid(oid: &ObjectIdentifier) -> Result<Self, ScepError> {
        match *oid {
            oids::SHA1 => Ok(DigestAlg::Sha1),
            oids::SHA256 => Ok(DigestAlg::Sha256),
            oids::SHA512 => Ok(DigestAlg::Sha512),
            other => Err(ScepError::UnsupportedAlgorithm(format!("digest {other}"))),
        }
    }

    /// The algorithm's object identifier.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            DigestAlg::Sha1 => oids::SHA1,
            DigestAlg::Sha256 => oids::SHA256,
            DigestAlg::Sha512 => oids::SHA512,
        }
    }

    /// The digest of `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            DigestAlg::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            DigestAlg::Sha256 => &digest::SHA256,
            DigestAlg::Sha512 => &digest::SHA512,
        };
        digest::digest(alg, data).as_ref().to_vec()
    }

    /// RSA PKCS#1 v1.5 verification with this digest.
    pub(crate) fn rsa_verification(self) -> &'static signature::RsaParameters {
        match self {
            DigestAlg::Sha1 => &signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            DigestAlg::Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            DigestAlg::Sha512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        }
    }

    /// The digest we answer with: the client's, but never SHA-1.
    pub fn for_answer(self) -> Self {
        match self {
            DigestAlg::Sha1 => DigestAlg::Sha256,
            other => other,
        }
    }
}

/// Checks that a SignerInfo's signatureAlgorithm is RSA PKCS#1 v1.5 and
/// agrees with its digest algorithm (RFC 5754 §3.2 allows rsaEncryption or
/// the combined OID).
pub(crate) fn check_rsa_signature_alg(
    sig_alg: &ObjectIdentifier,
    digest: DigestAlg,
) -> Result<(), ScepError> {
    let ok = match *sig_alg {
        oids::RSA_ENCRYPTION => true,
        oids::SHA1_WITH_RSA => digest == DigestAlg::Sha1,
        oids::SHA256_WITH_RSA => digest == DigestAlg::Sha256,
        oids::SHA512_WITH_RSA => digest == DigestAlg::Sha512,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ScepError::UnsupportedAlgorithm(format!(
            "signature algorithm {sig_alg} with {digest:?}"
        )))
    }
}
