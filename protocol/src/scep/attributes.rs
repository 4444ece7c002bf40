//! The SCEP authenticated attributes (RFC 8894 §3.2.1): reading them from
//! a signer's signed attributes and writing them into a CertRep.

use const_oid::ObjectIdentifier;
use der::asn1::{OctetString, PrintableString, SetOfVec};
use der::{Any, Tagged};
use x509_cert::attr::{Attribute, Attributes};

use super::{oids, MessageType, ScepError};

/// The SCEP fields of a request's signed attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScepAttributes {
    /// transactionID (§3.2.1.1): a PrintableString the client derives from
    /// its key; we treat it as an opaque string.
    pub transaction_id: String,
    /// messageType (§3.2.1.2).
    pub message_type: MessageType,
    /// senderNonce (§3.2.1.5), echoed back as recipientNonce.
    pub sender_nonce: Vec<u8>,
}

/// The single value of attribute `oid`, if present; several values are
/// malformed.
pub(crate) fn single<'a>(
    attrs: &'a Attributes,
    oid: ObjectIdentifier,
    name: &'static str,
) -> Result<Option<&'a Any>, ScepError> {
    let mut found = None;
    for a in attrs.iter().filter(|a| a.oid == oid) {
        if found.is_some() || a.values.len() != 1 {
            return Err(ScepError::Attribute(name));
        }
        found = a.values.iter().next();
    }
    Ok(found)
}

fn required<'a>(
    attrs: &'a Attributes,
    oid: ObjectIdentifier,
    name: &'static str,
) -> Result<&'a Any, ScepError> {
    single(attrs, oid, name)?.ok_or(ScepError::Attribute(name))
}

/// A PrintableString value (messageType, pkiStatus, failInfo,
/// transactionID); some clients send UTF8String or IA5String, which we
/// accept too.
fn string(value: &Any, name: &'static str) -> Result<String, ScepError> {
    match value.tag() {
        der::Tag::PrintableString | der::Tag::Utf8String | der::Tag::Ia5String => {
            String::from_utf8(value.value().to_vec()).map_err(|_| ScepError::Attribute(name))
        }
        _ => Err(ScepError::Attribute(name)),
    }
}

fn octets(value: &Any, name: &'static str) -> Result<Vec<u8>, ScepError> {
    if value.tag() != der::Tag::OctetString {
        return Err(ScepError::Attribute(name));
    }
    Ok(value.value().to_vec())
}

impl ScepAttributes {
    /// Reads the request attributes (RFC 8894 §3.2.1). transactionID,
    /// messageType and senderNonce are all required in a request.
    pub fn from_signed_attrs(attrs: &Attributes) -> Result<Self, ScepError> {
        let transaction_id = string(
            required(attrs, oids::TRANSACTION_ID, "transactionID")?,
            "transactionID",
        )?;
        if transaction_id.is_empty() || transaction_id.len() > 256 {
            return Err(ScepError::Attribute("transactionID"));
        }
        let message_type = MessageType::parse(&string(
            required(attrs, oids::MESSAGE_TYPE, "messageType")?,
            "messageType",
        )?)?;
        let sender_nonce = octets(
            required(attrs, oids::SENDER_NONCE, "senderNonce")?,
            "senderNonce",
        )?;
        Ok(ScepAttributes {
            transaction_id,
            message_type,
            sender_nonce,
        })
    }
}

/// The messageDigest attribute's value (RFC 5652 §11.2).
pub(crate) fn message_digest(attrs: &Attributes) -> Result<Vec<u8>, ScepError> {
    octets(
        required(attrs, oids::MESSAGE_DIGEST, "messageDigest")?,
        "messageDigest",
    )
}

/// A string attribute read back from a CertRep (pkiStatus, failInfo).
pub(crate) fn optional_string(
    attrs: &Attributes,
    oid: ObjectIdentifier,
    name: &'static str,
) -> Result<Option<String>, ScepError> {
    single(attrs, oid, name)?
        .map(|v| string(v, name))
        .transpose()
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, ScepError> {
    let mut values = SetOfVec::new();
    values.insert(value).map_err(build)?;
    Ok(Attribute { oid, values })
}

/// A PrintableString-valued attribute.
pub(crate) fn printable_attr(oid: ObjectIdentifier, s: &str) -> Result<Attribute, ScepError> {
    let v = PrintableString::new(s).map_err(build)?;
    attribute(oid, Any::encode_from(&v).map_err(build)?)
}

/// An OCTET STRING-valued attribute.
pub(crate) fn octets_attr(oid: ObjectIdentifier, bytes: &[u8]) -> Result<Attribute, ScepError> {
    let v = OctetString::new(bytes).map_err(build)?;
    attribute(oid, Any::encode_from(&v).map_err(build)?)
}

/// An attribute holding any encodable value.
pub(crate) fn any_attr(
    oid: ObjectIdentifier,
    value: &(impl der::EncodeValue + der::Tagged),
) -> Result<Attribute, ScepError> {
    attribute(oid, Any::encode_from(value).map_err(build)?)
}

pub(crate) fn build(e: impl std::fmt::Display) -> ScepError {
    ScepError::Build(e.to_string())
}
