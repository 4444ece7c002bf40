//! The `/csrattrs` answer (RFC 7030 §4.5): which attributes and key types
//! the server wants in a CSR.
//!
//! ```text
//! CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID
//! AttrOrOID ::= CHOICE (oid OBJECT IDENTIFIER, attribute Attribute }
//! Attribute { ATTRIBUTE:IOSet } ::= SEQUENCE {
//!      type   ATTRIBUTE.&id({IOSet}),
//!      values SET SIZE(1..MAX) OF ATTRIBUTE.&Type({IOSet}{@type}) }
//! ```
//!
//! The HTTP body is the base64 of this DER with
//! `Content-Type: application/csrattrs` (RFC 7030 §4.5.2); an empty
//! sequence is a valid answer, and RFC 7030 §4.5.2 also allows 204.

use der::asn1::{ObjectIdentifier, SetOfVec};
use der::{Any, Encode};
use x509_cert::attr::Attribute;

/// PKCS#9 challengePassword (RFC 2985 §5.4.1).
pub const OID_CHALLENGE_PASSWORD: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.7");
/// id-ecPublicKey (RFC 5480 §2.1.1).
pub const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp256r1 (RFC 5480 §2.1.1.1).
pub const OID_SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// secp384r1 (RFC 5480 §2.1.1.1).
pub const OID_SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// ecdsa-with-SHA256 (RFC 5758 §3.2).
pub const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
/// rsaEncryption (RFC 8017 Appendix C).
pub const OID_RSA_ENCRYPTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// id-Ed25519 (RFC 8410 §3).
pub const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// One `AttrOrOID` (RFC 7030 §4.5.2).
#[derive(Clone, Debug, Eq, PartialEq, der::Choice)]
pub enum AttrOrOid {
    /// A bare OID: "include this" (an attribute type or an algorithm).
    Oid(ObjectIdentifier),
    /// An attribute with values, e.g. id-ecPublicKey with the curve OID to
    /// say which curve the key must be on.
    Attribute(Attribute),
}

impl AttrOrOid {
    /// An attribute whose values are OIDs (the RFC 7030 §4.5.2 example's
    /// `ecPublicKey { secp384r1 }` form).
    pub fn attribute_of_oids(
        oid: ObjectIdentifier,
        values: &[ObjectIdentifier],
    ) -> Result<Self, der::Error> {
        let mut set = SetOfVec::new();
        for v in values {
            set.insert(Any::encode_from(v)?)?;
        }
        Ok(AttrOrOid::Attribute(Attribute { oid, values: set }))
    }
}

/// DER of `CsrAttrs` for `items`, in the order given.
pub fn encode_csr_attrs(items: &[AttrOrOid]) -> Result<Vec<u8>, der::Error> {
    items.to_vec().to_der()
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Decode;

    #[test]
    fn empty_is_an_empty_sequence() {
        assert_eq!(encode_csr_attrs(&[]).unwrap(), vec![0x30, 0x00]);
    }

    #[test]
    fn rfc7030_shape_round_trips() {
        let items = vec![
            AttrOrOid::Oid(OID_CHALLENGE_PASSWORD),
            AttrOrOid::attribute_of_oids(OID_EC_PUBLIC_KEY, &[OID_SECP256R1]).unwrap(),
            AttrOrOid::Oid(OID_ECDSA_SHA256),
        ];
        let der = encode_csr_attrs(&items).unwrap();
        let back: Vec<AttrOrOid> = Vec::from_der(&der).unwrap();
        assert_eq!(back, items);
        // SEQUENCE { OID, SEQUENCE { OID, SET { OID } }, OID }
        assert_eq!(der[0], 0x30);
        assert_eq!(der[2], 0x06);
    }
}
