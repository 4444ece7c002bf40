//! The enumerated SCEP attribute values: messageType (RFC 8894 §3.2.1.2),
//! pkiStatus (§3.2.1.3) and failInfo (§3.2.1.4). All three travel as
//! PrintableStrings of decimal numbers.

use super::ScepError;

/// messageType (RFC 8894 §3.2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    /// CertRep, the server's answer (3).
    CertRep,
    /// RenewalReq (17).
    RenewalReq,
    /// PKCSReq (19).
    PkcsReq,
    /// CertPoll, formerly GetCertInitial (20).
    CertPoll,
    /// GetCert (21).
    GetCert,
    /// GetCRL (22).
    GetCrl,
}

impl MessageType {
    /// The decimal wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::CertRep => "3",
            MessageType::RenewalReq => "17",
            MessageType::PkcsReq => "19",
            MessageType::CertPoll => "20",
            MessageType::GetCert => "21",
            MessageType::GetCrl => "22",
        }
    }

    /// Parses the decimal wire form; unknown types are a badRequest.
    pub fn parse(s: &str) -> Result<Self, ScepError> {
        Ok(match s.trim() {
            "3" => MessageType::CertRep,
            "17" => MessageType::RenewalReq,
            "19" => MessageType::PkcsReq,
            "20" => MessageType::CertPoll,
            "21" => MessageType::GetCert,
            "22" => MessageType::GetCrl,
            other => return Err(ScepError::UnknownMessageType(other.to_owned())),
        })
    }
}

/// pkiStatus (RFC 8894 §3.2.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkiStatus {
    /// Request granted (0).
    Success,
    /// Request rejected (2).
    Failure,
    /// Request pending for manual approval (3).
    Pending,
}

impl PkiStatus {
    /// The decimal wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            PkiStatus::Success => "0",
            PkiStatus::Failure => "2",
            PkiStatus::Pending => "3",
        }
    }
}

/// failInfo (RFC 8894 §3.2.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailInfo {
    /// Unrecognized or unsupported algorithm (0).
    BadAlg,
    /// Integrity check (signature or digest) failed (1).
    BadMessageCheck,
    /// Transaction not permitted or supported (2).
    BadRequest,
    /// signingTime not close enough to the system time (3).
    BadTime,
    /// No certificate could be identified matching the criteria (4).
    BadCertId,
}

impl FailInfo {
    /// The decimal wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            FailInfo::BadAlg => "0",
            FailInfo::BadMessageCheck => "1",
            FailInfo::BadRequest => "2",
            FailInfo::BadTime => "3",
            FailInfo::BadCertId => "4",
        }
    }
}
