//! Subject names a certificate can be issued for.
//!
//! A stand-in for `ironseal_protocol::acme::types::Identifier` so this crate
//! builds independently of the protocol crate; the server converts between
//! the two. These are the two `GeneralName` forms we issue in the
//! subjectAltName extension (RFC 5280 §4.2.1.6): `dNSName` and `iPAddress`
//! (RFC 8738 for ACME IP identifiers).

use std::fmt;
use std::net::IpAddr;

/// A name to be placed in (or found in) a certificate's subjectAltName.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubjectName {
    /// A DNS name (`dNSName`, RFC 5280 §4.2.1.6), possibly a `*.` wildcard.
    Dns(String),
    /// An IP address (`iPAddress`, RFC 5280 §4.2.1.6).
    Ip(IpAddr),
}

impl SubjectName {
    /// The name in the canonical form used for comparisons: DNS names are
    /// ASCII-lowercased (DNS names compare case-insensitively, RFC 4343),
    /// IP addresses are kept as parsed values.
    pub fn normalized(&self) -> SubjectName {
        match self {
            SubjectName::Dns(d) => SubjectName::Dns(d.to_ascii_lowercase()),
            SubjectName::Ip(ip) => SubjectName::Ip(*ip),
        }
    }
}

impl fmt::Display for SubjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubjectName::Dns(d) => write!(f, "dns:{d}"),
            SubjectName::Ip(ip) => write!(f, "ip:{ip}"),
        }
    }
}
