//! Small DER helpers and OIDs shared by the modules.

use aws_lc_rs::digest;
use der::asn1::{ObjectIdentifier, UintRef};

pub(crate) const OID_RSA_ENCRYPTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
pub(crate) const OID_SHA256_WITH_RSA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
pub(crate) const OID_SHA384_WITH_RSA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
pub(crate) const OID_SHA512_WITH_RSA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
pub(crate) const OID_EC_PUBLIC_KEY: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
pub(crate) const OID_SECP256R1: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
pub(crate) const OID_SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
pub(crate) const OID_ECDSA_SHA256: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
pub(crate) const OID_ECDSA_SHA384: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
pub(crate) const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
pub(crate) const OID_EXTENSION_REQUEST: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.14");
pub(crate) const OID_COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
pub(crate) const OID_SUBJECT_ALT_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");
pub(crate) const OID_AD_OCSP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1");
pub(crate) const OID_AD_CA_ISSUERS: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.2");
/// id-pe-authorityInfoAccess as rcgen wants it.
pub(crate) const OID_AIA_ARCS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];

/// RSAPublicKey (RFC 8017 §A.1.1).
#[derive(der::Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

/// Modulus size in bits and public exponent (if it fits in u64) of an
/// RSAPublicKey DER; `None` if it does not parse.
pub(crate) fn rsa_key_params(rsa_public_key_der: &[u8]) -> Option<(usize, Option<u64>)> {
    use der::Decode;
    let k = RsaPublicKey::from_der(rsa_public_key_der).ok()?;
    let m = k.modulus.as_bytes();
    let first = *m.first()?;
    let bits = m.len() * 8 - first.leading_zeros() as usize;
    let e = k.public_exponent.as_bytes();
    let exp = if e.len() <= 8 {
        Some(e.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    } else {
        None
    };
    Some((bits, exp))
}

/// Key identifier per RFC 7093 §2 method 1: the leftmost 160 bits of the
/// SHA-256 hash of the subjectPublicKey BIT STRING value (RFC 5280
/// §4.2.1.2 permits any method that yields unique values).
pub(crate) fn key_identifier(public_key_bits: &[u8]) -> Vec<u8> {
    let d = digest::digest(&digest::SHA256, public_key_bits);
    d.as_ref()[..20].to_vec()
}
