//! A tiny DER writer for the response side (X.690 §8, §10). Values are
//! written bottom-up into owned buffers; the exact bytes produced are the
//! bytes that get signed, so nothing is ever re-encoded.

use der::asn1::{GeneralizedTime, ObjectIdentifier};
use der::Encode;

use super::OcspError;

/// Universal tags used here.
pub(crate) const BIT_STRING: u8 = 0x03;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const ENUMERATED: u8 = 0x0a;
pub(crate) const SEQUENCE: u8 = 0x30;

/// `tag || length || content` with a definite, minimal length (X.690 §10.1).
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = Vec::with_capacity(len + 6);
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = &bytes[skip..];
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

/// SEQUENCE of already-encoded parts.
pub(crate) fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(SEQUENCE, &parts.concat())
}

/// `[n] EXPLICIT` around an encoded value (context-specific, constructed).
pub(crate) fn explicit(n: u8, inner: &[u8]) -> Vec<u8> {
    tlv(0xa0 | (n & 0x1f), inner)
}

/// `[n] IMPLICIT` for a constructed type: the SEQUENCE content under a
/// context-specific constructed tag.
pub(crate) fn implicit_constructed(n: u8, content: &[u8]) -> Vec<u8> {
    tlv(0xa0 | (n & 0x1f), content)
}

/// `[n] IMPLICIT` for a primitive type (e.g. NULL → `80 00`).
pub(crate) fn implicit_primitive(n: u8, content: &[u8]) -> Vec<u8> {
    tlv(0x80 | (n & 0x1f), content)
}

pub(crate) fn octet_string(b: &[u8]) -> Vec<u8> {
    tlv(OCTET_STRING, b)
}

/// BIT STRING with no unused bits (signatures, keys).
pub(crate) fn bit_string(b: &[u8]) -> Vec<u8> {
    let mut c = Vec::with_capacity(b.len() + 1);
    c.push(0);
    c.extend_from_slice(b);
    tlv(BIT_STRING, &c)
}

/// ENUMERATED of a small non-negative value (minimal two's complement).
pub(crate) fn enumerated(v: u8) -> Vec<u8> {
    if v >= 0x80 {
        tlv(ENUMERATED, &[0, v])
    } else {
        tlv(ENUMERATED, &[v])
    }
}

pub(crate) fn oid(o: &ObjectIdentifier) -> Result<Vec<u8>, OcspError> {
    o.to_der().map_err(|e| OcspError::Encode(e.to_string()))
}

/// GeneralizedTime `YYYYMMDDHHMMSSZ` (RFC 5280 §4.1.2.5.2 DER form: UTC,
/// whole seconds).
pub(crate) fn generalized_time(t: &GeneralizedTime) -> Result<Vec<u8>, OcspError> {
    t.to_der().map_err(|e| OcspError::Encode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        assert_eq!(tlv(4, &[]), vec![4, 0]);
        assert_eq!(tlv(4, &[1; 127])[..2], [4, 127]);
        assert_eq!(tlv(4, &[1; 128])[..3], [4, 0x81, 128]);
        assert_eq!(tlv(4, &[1; 256])[..4], [4, 0x82, 1, 0]);
        assert_eq!(enumerated(6), vec![0x0a, 1, 6]);
        assert_eq!(implicit_primitive(0, &[]), vec![0x80, 0]);
        assert_eq!(bit_string(&[0xaa]), vec![3, 2, 0, 0xaa]);
    }
}
