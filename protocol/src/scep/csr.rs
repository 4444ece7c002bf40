//! The PKCS#10 request inside a PKCSReq (RFC 8894 §3.3.1): its
//! challengePassword attribute (RFC 2985 §5.4.1) authenticates the
//! client.

use der::{Decode, Tagged};
use x509_cert::request::CertReq;

use super::ScepError;

/// challengePassword (RFC 2985 §5.4.1).
const CHALLENGE_PASSWORD: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.7");

/// The challengePassword of a DER PKCS#10 request, if it has one. The
/// value is a DirectoryString; PrintableString, UTF8String, IA5String and
/// T61String (read as Latin-1-free ASCII) are accepted.
pub fn challenge_password(csr_der: &[u8]) -> Result<Option<String>, ScepError> {
    let req = CertReq::from_der(csr_der)?;
    let Some(attr) = req
        .info
        .attributes
        .iter()
        .find(|a| a.oid == CHALLENGE_PASSWORD)
    else {
        return Ok(None);
    };
    let mut values = attr.values.iter();
    let (Some(v), None) = (values.next(), values.next()) else {
        return Err(ScepError::Attribute("challengePassword"));
    };
    match v.tag() {
        der::Tag::PrintableString
        | der::Tag::Utf8String
        | der::Tag::Ia5String
        | der::Tag::TeletexString => String::from_utf8(v.value().to_vec())
            .map(Some)
            .map_err(|_| ScepError::Attribute("challengePassword")),
        _ => Err(ScepError::Attribute("challengePassword")),
    }
}
