//! Keys the authority generates for a requester (EST `/serverkeygen`,
//! RFC 7030 §4.4). The requester's CSR is only a template: its subject,
//! attributes and extension requests are kept, its public key and
//! signature are ignored (RFC 7030 §4.4.1 "the server MUST ignore the
//! public key values and signature in the CSR"). The authority generates a
//! fresh key pair, puts its public key into the request info and signs it
//! with the new key, so the rest of the pipeline checks and certifies a
//! well-formed request exactly as for any other front end.
//!
//! The private key leaves only in the [`GeneratedKey`] handed back to the
//! caller: it is never stored, logged or audited (its `Debug` prints
//! nothing of it).

use der::{Decode, Encode};
use ironseal_ca_core::profile::KeyType;
use rcgen::{KeyPair, PublicKeyData, RsaKeySize, SigningKey};
use x509_cert::request::CertReq;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use super::error::{AuthorityError, ErrorKind};

/// Modulus size of a generated RSA key.
pub const RSA_BITS: usize = 3072;

/// A private key generated for the requester: PKCS#8 `PrivateKeyInfo`
/// (RFC 5958), DER.
#[derive(Clone, PartialEq, Eq)]
pub struct GeneratedKey(Vec<u8>);

impl GeneratedKey {
    /// The PKCS#8 DER (secret: send it to the requester, keep it nowhere).
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for GeneratedKey {
    /// Wipes the key once it has been sent (or the request failed).
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GeneratedKey(..)")
    }
}

/// The signature algorithm a key of `key_type` signs its request with.
fn signature_algorithm(key_type: KeyType) -> Result<AlgorithmIdentifierOwned, der::Error> {
    use der::asn1::ObjectIdentifier as Oid;
    let (oid, null) = match key_type {
        // ecdsa-with-SHA256 / -SHA384 (RFC 5758 §3.2): no parameters.
        KeyType::P256 => (Oid::new_unwrap("1.2.840.10045.4.3.2"), false),
        KeyType::P384 => (Oid::new_unwrap("1.2.840.10045.4.3.3"), false),
        // sha256WithRSAEncryption (RFC 4055 §5): NULL parameters.
        KeyType::Rsa => (Oid::new_unwrap("1.2.840.113549.1.1.11"), true),
        // id-Ed25519 (RFC 8410 §3): no parameters.
        KeyType::Ed25519 => (Oid::new_unwrap("1.3.101.112"), false),
    };
    Ok(AlgorithmIdentifierOwned {
        oid,
        parameters: if null {
            Some(der::Any::from(der::asn1::Null))
        } else {
            None
        },
    })
}

fn generate_pair(key_type: KeyType) -> Result<KeyPair, rcgen::Error> {
    match key_type {
        KeyType::P256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        KeyType::P384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        KeyType::Rsa => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_3072),
        KeyType::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519),
    }
}

/// Generates a `key_type` key and the request the pipeline certifies:
/// `template`'s request info with the new public key, signed by it.
pub fn rekey_request(
    template: &[u8],
    key_type: KeyType,
) -> Result<(Vec<u8>, GeneratedKey), AuthorityError> {
    let bad = |e: der::Error| {
        AuthorityError::new(
            ErrorKind::BadCsr,
            format!("the request template is not a PKCS#10 request: {e}"),
        )
    };
    let mut req = CertReq::from_der(template).map_err(bad)?;
    let pair = generate_pair(key_type)
        .map_err(|e| AuthorityError::internal(format!("key generation failed: {e}")))?;
    req.info.public_key = SubjectPublicKeyInfoOwned::from_der(&pair.subject_public_key_info())
        .map_err(AuthorityError::internal)?;
    let tbs = req.info.to_der().map_err(bad)?;
    let signature = pair
        .sign(&tbs)
        .map_err(|e| AuthorityError::internal(format!("signing the request failed: {e}")))?;
    req.algorithm = signature_algorithm(key_type).map_err(AuthorityError::internal)?;
    req.signature =
        der::asn1::BitString::from_bytes(&signature).map_err(AuthorityError::internal)?;
    let csr = req.to_der().map_err(AuthorityError::internal)?;
    Ok((csr, GeneratedKey(pair.serialize_der())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use ironseal_ca_core::csr::{check_csr, CsrPolicy, LeafKey};

    fn template() -> Vec<u8> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["dev.example".to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "dev1");
        params.serialize_request(&key).unwrap().der().to_vec()
    }

    #[test]
    fn every_key_type_makes_a_valid_request_with_the_template_names() {
        let t = template();
        let policy = CsrPolicy {
            allow_ed25519: true,
            ..CsrPolicy::default()
        };
        let original = check_csr(&t, &policy).unwrap();
        for (kt, want) in [
            (KeyType::P256, LeafKey::EcdsaP256),
            (KeyType::P384, LeafKey::EcdsaP384),
            (KeyType::Rsa, LeafKey::Rsa { bits: RSA_BITS }),
            (KeyType::Ed25519, LeafKey::Ed25519),
        ] {
            let (csr, key) = rekey_request(&t, kt).unwrap();
            let checked = check_csr(&csr, &policy).unwrap();
            assert_eq!(checked.key, want, "{kt:?}");
            assert_eq!(checked.subject_der, original.subject_der);
            assert_eq!(checked.san_names, original.san_names);
            assert_ne!(checked.spki_der, original.spki_der);
            let reloaded = KeyPair::try_from(key.pkcs8_der()).unwrap();
            assert_eq!(reloaded.subject_public_key_info(), checked.spki_der);
            assert_eq!(format!("{key:?}"), "GeneratedKey(..)");
        }
    }

    #[test]
    fn a_template_that_is_not_a_request_is_a_bad_csr() {
        let e = rekey_request(b"\x30\x03\x02\x01\x00", KeyType::P256).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadCsr);
    }
}
