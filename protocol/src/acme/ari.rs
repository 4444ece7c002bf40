//! ACME Renewal Information certificate identifiers (RFC 9773 §4.1).
//!
//! A `CertID` is `base64url(AKI keyIdentifier) "." base64url(serial)`, where
//! the serial part is the content octets of the certificate's DER INTEGER
//! serialNumber (keeping a leading 0x00 if the encoding has one), and both
//! parts use base64url without padding.

use std::fmt;

use super::b64;

/// Why a CertID string was rejected (→ ACME `malformed`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AriError {
    /// Not of the form `<b64url>.<b64url>` with exactly one dot.
    #[error("CertID must be two base64url parts separated by one dot")]
    Format,
    /// A part is empty.
    #[error("CertID has an empty {0} part")]
    Empty(&'static str),
    /// A part is not base64url without padding.
    #[error("CertID {0} part is not base64url without padding")]
    Base64(&'static str),
    /// The serial is not a valid DER INTEGER content encoding
    /// (non-minimal or negative).
    #[error("CertID serial is not a minimal positive DER INTEGER")]
    Serial,
}

/// A certificate identifier for the renewalInfo resource and the
/// `"replaces"` field of newOrder (RFC 9773 §4.1, §5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertId {
    /// The keyIdentifier of the certificate's Authority Key Identifier.
    pub key_identifier: Vec<u8>,
    /// The DER INTEGER content octets of the serial number.
    pub serial: Vec<u8>,
}

impl CertId {
    /// Parses a CertID (RFC 9773 §4.1). Rejects padding, empty parts,
    /// extra dots and a serial that is not a minimal, positive DER INTEGER
    /// content encoding (X.690 §8.3.2, RFC 5280 §4.1.2.2).
    pub fn parse(s: &str) -> Result<CertId, AriError> {
        let mut parts = s.split('.');
        let (Some(aki), Some(serial), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(AriError::Format);
        };
        if aki.is_empty() {
            return Err(AriError::Empty("keyIdentifier"));
        }
        if serial.is_empty() {
            return Err(AriError::Empty("serial"));
        }
        let key_identifier = b64::decode(aki).ok_or(AriError::Base64("keyIdentifier"))?;
        let serial = b64::decode(serial).ok_or(AriError::Base64("serial"))?;
        match serial.as_slice() {
            // Negative numbers are not valid serials.
            [first, ..] if first & 0x80 != 0 => return Err(AriError::Serial),
            // A leading zero is only allowed to keep the high bit clear.
            [0, second, ..] if second & 0x80 == 0 => return Err(AriError::Serial),
            _ => {}
        }
        Ok(CertId {
            key_identifier,
            serial,
        })
    }

    /// Builds a CertID from an AKI keyIdentifier and serial DER content octets.
    pub fn new(key_identifier: Vec<u8>, serial: Vec<u8>) -> Self {
        Self {
            key_identifier,
            serial,
        }
    }
}

impl fmt::Display for CertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}",
            b64::encode(&self.key_identifier),
            b64::encode(&self.serial)
        )
    }
}

impl std::str::FromStr for CertId {
    type Err = AriError;
    fn from_str(s: &str) -> Result<Self, AriError> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9773 §4.1 example: AKI 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4,
    /// serial 00:87:65:43:21.
    #[test]
    fn rfc9773_example() {
        let id = CertId::parse("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE").unwrap();
        assert_eq!(
            id.key_identifier,
            vec![
                0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3, 0x7B, 0x84, 0x7B, 0xA0,
                0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4
            ]
        );
        assert_eq!(id.serial, vec![0x00, 0x87, 0x65, 0x43, 0x21]);
        assert_eq!(id.to_string(), "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
    }

    #[test]
    fn rejects_bad_forms() {
        for bad in [
            "",
            ".",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.",
            ".AIdlQyE",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE.",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE.x",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ=.AIdlQyE",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE=",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdl+yE",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdl QyE",
            // Non-minimal and negative serials.
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AAE",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.gA",
        ] {
            assert!(CertId::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(CertId::parse("a.b.c"), Err(AriError::Format));
        assert!(
            CertId::parse("AA.AA").is_ok(),
            "serial zero is a valid encoding"
        );
    }

    #[test]
    fn round_trip() {
        let id = CertId::new(vec![1, 2, 3], vec![0x7f, 0xff]);
        assert_eq!(CertId::parse(&id.to_string()).unwrap(), id);
    }
}
