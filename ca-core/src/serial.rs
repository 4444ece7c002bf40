//! Certificate serial numbers (RFC 5280 §4.1.2.2).
//!
//! Serials are positive INTEGERs of at most 20 content octets. Freshly
//! drawn serials carry 16 random bytes with the top bit cleared, i.e. well
//! over the 64 bits of CSPRNG output the CA/Browser Forum Baseline
//! Requirements §7.1 ask for.

use std::fmt;

use crate::error::CaError;

/// A certificate (or CRL entry) serial number, held as the content octets of
/// its DER INTEGER encoding: positive, minimal, 1..=20 octets
/// (RFC 5280 §4.1.2.2).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(Vec<u8>);

impl Serial {
    /// Builds a serial from 16 random bytes supplied by the caller.
    ///
    /// The top bit is cleared so the INTEGER is positive without a leading
    /// zero octet; if the first octet then is zero it is set to 1, so the
    /// serial always has exactly 16 significant octets (127 bits of the
    /// caller's randomness survive, far above the 64-bit minimum).
    pub fn from_random(mut bytes: [u8; 16]) -> Serial {
        bytes[0] &= 0x7f;
        if bytes[0] == 0 {
            bytes[0] = 0x01;
        }
        Serial(bytes.to_vec())
    }

    /// Parses DER INTEGER content octets. Rejects empty, negative,
    /// non-minimal, zero and over-long (> 20 octets) values
    /// (RFC 5280 §4.1.2.2).
    pub fn from_bytes(bytes: &[u8]) -> Result<Serial, CaError> {
        let first = *bytes
            .first()
            .ok_or_else(|| CaError::InvalidSerial("empty".into()))?;
        if bytes.len() > 20 {
            return Err(CaError::InvalidSerial("longer than 20 octets".into()));
        }
        if first & 0x80 != 0 {
            return Err(CaError::InvalidSerial("negative".into()));
        }
        if first == 0 {
            match bytes.get(1) {
                None => return Err(CaError::InvalidSerial("zero".into())),
                Some(b) if b & 0x80 == 0 => {
                    return Err(CaError::InvalidSerial("non-minimal encoding".into()))
                }
                Some(_) => {}
            }
        }
        Ok(Serial(bytes.to_vec()))
    }

    /// Parses the lowercase (or uppercase) hex form produced by
    /// [`Serial::to_hex`]; no separators.
    pub fn from_hex(s: &str) -> Result<Serial, CaError> {
        let bytes = hex::decode(s).map_err(|e| CaError::InvalidSerial(e.to_string()))?;
        Serial::from_bytes(&bytes)
    }

    /// Lowercase hex of the DER INTEGER content octets, no separators.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    /// The DER INTEGER content octets (no leading zero unless needed).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The magnitude without a sign octet, as rcgen expects it.
    pub(crate) fn to_rcgen(&self) -> rcgen::SerialNumber {
        let mag = match self.0.split_first() {
            Some((0, rest)) => rest,
            _ => &self.0[..],
        };
        rcgen::SerialNumber::from_slice(mag)
    }
}

impl fmt::Debug for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Serial({})", self.to_hex())
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_is_positive_and_sixteen_octets() {
        for first in [0x00u8, 0x01, 0x7f, 0x80, 0xff] {
            let mut b = [0xabu8; 16];
            b[0] = first;
            let s = Serial::from_random(b);
            assert_eq!(s.as_bytes().len(), 16);
            assert!(s.as_bytes()[0] & 0x80 == 0);
            assert!(s.as_bytes()[0] != 0);
            assert_eq!(Serial::from_bytes(s.as_bytes()).as_ref(), Ok(&s));
        }
    }

    #[test]
    fn hex_round_trip() {
        let s = Serial::from_random([0x5a; 16]);
        let h = s.to_hex();
        assert_eq!(h, "5a".repeat(16));
        assert_eq!(Serial::from_hex(&h), Ok(s));
        assert!(Serial::from_hex("zz").is_err());
        assert!(Serial::from_hex("").is_err());
    }

    #[test]
    fn from_bytes_rules() {
        assert!(Serial::from_bytes(&[0x00]).is_err());
        assert!(Serial::from_bytes(&[0x80]).is_err());
        assert!(Serial::from_bytes(&[0x00, 0x01]).is_err());
        assert!(Serial::from_bytes(&[0x00, 0x80]).is_ok());
        assert!(Serial::from_bytes(&[0x01; 21]).is_err());
        assert!(Serial::from_bytes(&[0x01; 20]).is_ok());
        assert_eq!(
            Serial::from_bytes(&[0x00, 0x80]).map(|s| s.to_rcgen().to_bytes()),
            Ok(vec![0x80])
        );
    }
}
