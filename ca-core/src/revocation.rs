//! Revocation reasons (RFC 5280 §5.3.1, CRLReason).

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A CRLReason code (RFC 5280 §5.3.1). Value 7 is unused by the RFC.
/// Serialized as its integer code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
#[repr(u8)]
pub enum RevocationReason {
    /// unspecified (0)
    Unspecified = 0,
    /// keyCompromise (1)
    KeyCompromise = 1,
    /// cACompromise (2)
    CaCompromise = 2,
    /// affiliationChanged (3)
    AffiliationChanged = 3,
    /// superseded (4)
    Superseded = 4,
    /// cessationOfOperation (5)
    CessationOfOperation = 5,
    /// certificateHold (6)
    CertificateHold = 6,
    /// removeFromCRL (8), only meaningful in delta CRLs
    RemoveFromCrl = 8,
    /// privilegeWithdrawn (9)
    PrivilegeWithdrawn = 9,
    /// aACompromise (10)
    AaCompromise = 10,
}

/// A code that is not a CRLReason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("invalid revocation reason code {0}")]
pub struct InvalidReasonCode(pub u8);

impl RevocationReason {
    /// The numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }

    pub(crate) fn to_rcgen(self) -> rcgen::RevocationReason {
        use rcgen::RevocationReason as R;
        match self {
            RevocationReason::Unspecified => R::Unspecified,
            RevocationReason::KeyCompromise => R::KeyCompromise,
            RevocationReason::CaCompromise => R::CaCompromise,
            RevocationReason::AffiliationChanged => R::AffiliationChanged,
            RevocationReason::Superseded => R::Superseded,
            RevocationReason::CessationOfOperation => R::CessationOfOperation,
            RevocationReason::CertificateHold => R::CertificateHold,
            RevocationReason::RemoveFromCrl => R::RemoveFromCrl,
            RevocationReason::PrivilegeWithdrawn => R::PrivilegeWithdrawn,
            RevocationReason::AaCompromise => R::AaCompromise,
        }
    }
}

impl From<RevocationReason> for u8 {
    fn from(r: RevocationReason) -> u8 {
        r as u8
    }
}

impl TryFrom<u8> for RevocationReason {
    type Error = InvalidReasonCode;
    fn try_from(v: u8) -> Result<Self, Self::Error> {
        Ok(match v {
            0 => RevocationReason::Unspecified,
            1 => RevocationReason::KeyCompromise,
            2 => RevocationReason::CaCompromise,
            3 => RevocationReason::AffiliationChanged,
            4 => RevocationReason::Superseded,
            5 => RevocationReason::CessationOfOperation,
            6 => RevocationReason::CertificateHold,
            8 => RevocationReason::RemoveFromCrl,
            9 => RevocationReason::PrivilegeWithdrawn,
            10 => RevocationReason::AaCompromise,
            other => return Err(InvalidReasonCode(other)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for c in 0u8..=255 {
            match RevocationReason::try_from(c) {
                Ok(r) => {
                    assert_eq!(u8::from(r), c);
                    let j = serde_json::to_string(&r).expect("json");
                    assert_eq!(j, c.to_string());
                    let back: RevocationReason = serde_json::from_str(&j).expect("json");
                    assert_eq!(back, r);
                }
                Err(e) => {
                    assert!(c == 7 || c > 10, "{c}");
                    assert_eq!(e, InvalidReasonCode(c));
                    assert!(serde_json::from_str::<RevocationReason>(&c.to_string()).is_err());
                }
            }
        }
    }
}
