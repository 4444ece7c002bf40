//! Subject names a certificate can be issued for.
//!
//! A stand-in for `ironseal_protocol::acme::types::Identifier` so this crate
//! builds independently of the protocol crate; the server converts between
//! the two. These are the `GeneralName` forms we issue in the
//! subjectAltName extension (RFC 5280 §4.2.1.6): `dNSName` and `iPAddress`
//! (RFC 8738 for ACME IP identifiers), and, for device and SPIFFE profiles,
//! `uniformResourceIdentifier` and `rfc822Name`.

use std::fmt;
use std::net::IpAddr;

/// A name to be placed in (or found in) a certificate's subjectAltName.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubjectName {
    /// A DNS name (`dNSName`, RFC 5280 §4.2.1.6), possibly a `*.` wildcard.
    Dns(String),
    /// An IP address (`iPAddress`, RFC 5280 §4.2.1.6).
    Ip(IpAddr),
    /// A `uniformResourceIdentifier` (RFC 5280 §4.2.1.6, RFC 3986), e.g. a
    /// SPIFFE ID or a Microsoft SID URI. Compared byte for byte.
    Uri(String),
    /// An `rfc822Name` mailbox `local@domain` (RFC 5280 §4.2.1.6). The
    /// domain compares case-insensitively, the local part exactly.
    Email(String),
}

impl SubjectName {
    /// The name in the canonical form used for comparisons: DNS names are
    /// ASCII-lowercased (DNS names compare case-insensitively, RFC 4343),
    /// IP addresses are kept as parsed values, URIs are kept as they are,
    /// mailboxes get their domain lowercased (RFC 5280 §4.2.1.6, §7.5).
    pub fn normalized(&self) -> SubjectName {
        match self {
            SubjectName::Dns(d) => SubjectName::Dns(d.to_ascii_lowercase()),
            SubjectName::Ip(ip) => SubjectName::Ip(*ip),
            SubjectName::Uri(u) => SubjectName::Uri(u.clone()),
            SubjectName::Email(m) => SubjectName::Email(match m.rsplit_once('@') {
                Some((local, domain)) => format!("{local}@{}", domain.to_ascii_lowercase()),
                None => m.clone(),
            }),
        }
    }
}

impl fmt::Display for SubjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubjectName::Dns(d) => write!(f, "dns:{d}"),
            SubjectName::Ip(ip) => write!(f, "ip:{ip}"),
            SubjectName::Uri(u) => write!(f, "uri:{u}"),
            SubjectName::Email(m) => write!(f, "email:{m}"),
        }
    }
}
