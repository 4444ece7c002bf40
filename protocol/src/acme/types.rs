//! Identifiers and status enums of ACME resources (RFC 8555 §7.1).
//!
//! Every enum serializes exactly as on the wire: statuses in lowercase,
//! challenge types as `"http-01"`, `"dns-01"`, `"tls-alpn-01"`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The type of an [`Identifier`] (RFC 8555 §9.7.7; `ip` from RFC 8738 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentifierKind {
    /// A fully qualified domain name, possibly a wildcard (RFC 8555 §7.1.3).
    Dns,
    /// An IPv4 or IPv6 address in canonical text form (RFC 8738 §3).
    Ip,
}

impl IdentifierKind {
    /// The wire name, `"dns"` or `"ip"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dns => "dns",
            Self::Ip => "ip",
        }
    }
}

impl fmt::Display for IdentifierKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An ACME identifier object, `{"type": "dns", "value": "example.org"}`
/// (RFC 8555 §7.1.3, §7.1.4).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identifier {
    /// The identifier type (`"type"` on the wire).
    #[serde(rename = "type")]
    pub kind: IdentifierKind,
    /// The identifier value.
    pub value: String,
}

impl Identifier {
    /// A `dns` identifier.
    pub fn dns(value: impl Into<String>) -> Self {
        Self {
            kind: IdentifierKind::Dns,
            value: value.into(),
        }
    }

    /// An `ip` identifier (RFC 8738).
    pub fn ip(value: impl Into<String>) -> Self {
        Self {
            kind: IdentifierKind::Ip,
            value: value.into(),
        }
    }

    /// True for a `dns` identifier whose value starts with `"*."`
    /// (RFC 8555 §7.1.3, wildcard domain names).
    pub fn is_wildcard(&self) -> bool {
        self.kind == IdentifierKind::Dns && self.value.starts_with("*.")
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $wire:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $wire)] $variant, )+
        }

        impl $name {
            /// The value as it appears on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $( Self::$variant => $wire, )+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                match s {
                    $( $wire => Ok(Self::$variant), )+
                    other => Err(UnknownValue(other.to_owned())),
                }
            }
        }
    };
}

/// A string that names no variant of a wire enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value {0:?}")]
pub struct UnknownValue(pub String);

wire_enum! {
    /// Account status (RFC 8555 §7.1.2, §7.1.6).
    AccountStatus {
        /// Usable.
        Valid => "valid",
        /// Deactivated by the client (RFC 8555 §7.3.6).
        Deactivated => "deactivated",
        /// Revoked by the server.
        Revoked => "revoked",
    }
}

wire_enum! {
    /// Order status (RFC 8555 §7.1.3, §7.1.6).
    OrderStatus {
        /// Authorizations outstanding.
        Pending => "pending",
        /// All authorizations valid; ready to finalize.
        Ready => "ready",
        /// Finalization in progress.
        Processing => "processing",
        /// Certificate issued.
        Valid => "valid",
        /// Failed or expired.
        Invalid => "invalid",
    }
}

wire_enum! {
    /// Authorization status (RFC 8555 §7.1.4, §7.1.6).
    AuthzStatus {
        /// No challenge has succeeded yet.
        Pending => "pending",
        /// A challenge succeeded.
        Valid => "valid",
        /// A challenge failed.
        Invalid => "invalid",
        /// Deactivated by the client (RFC 8555 §7.5.2).
        Deactivated => "deactivated",
        /// Expired.
        Expired => "expired",
        /// Revoked by the server.
        Revoked => "revoked",
    }
}

wire_enum! {
    /// Challenge status (RFC 8555 §7.1.5, §7.1.6).
    ChallengeStatus {
        /// Not yet attempted.
        Pending => "pending",
        /// Validation in progress.
        Processing => "processing",
        /// Validation succeeded.
        Valid => "valid",
        /// Validation failed.
        Invalid => "invalid",
    }
}

wire_enum! {
    /// Challenge type (RFC 8555 §8.3, §8.4; RFC 8737 §3).
    ChallengeType {
        /// HTTP challenge (RFC 8555 §8.3).
        Http01 => "http-01",
        /// DNS challenge (RFC 8555 §8.4).
        Dns01 => "dns-01",
        /// TLS with ALPN challenge (RFC 8737 §3).
        TlsAlpn01 => "tls-alpn-01",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identifier_wire_form() {
        let id = Identifier::dns("example.org");
        assert_eq!(
            serde_json::to_value(&id).unwrap(),
            json!({"type": "dns", "value": "example.org"})
        );
        let ip: Identifier =
            serde_json::from_value(json!({"type": "ip", "value": "192.0.2.1"})).unwrap();
        assert_eq!(ip, Identifier::ip("192.0.2.1"));
        assert!(
            serde_json::from_value::<Identifier>(json!({"type": "email", "value": "x"})).is_err()
        );
        assert!(Identifier::dns("*.example.org").is_wildcard());
        assert!(!Identifier::ip("*.example.org").is_wildcard());
    }

    #[test]
    fn enums_wire_form() {
        assert_eq!(
            serde_json::to_value(ChallengeType::Http01).unwrap(),
            json!("http-01")
        );
        assert_eq!(
            serde_json::to_value(ChallengeType::Dns01).unwrap(),
            json!("dns-01")
        );
        assert_eq!(
            serde_json::to_value(ChallengeType::TlsAlpn01).unwrap(),
            json!("tls-alpn-01")
        );
        assert_eq!(
            serde_json::to_value(OrderStatus::Processing).unwrap(),
            json!("processing")
        );
        assert_eq!(
            serde_json::to_value(AuthzStatus::Deactivated).unwrap(),
            json!("deactivated")
        );
        assert_eq!(
            serde_json::to_value(AccountStatus::Revoked).unwrap(),
            json!("revoked")
        );
        assert_eq!(
            serde_json::to_value(ChallengeStatus::Pending).unwrap(),
            json!("pending")
        );
        let t: ChallengeType = serde_json::from_value(json!("tls-alpn-01")).unwrap();
        assert_eq!(t, ChallengeType::TlsAlpn01);
        assert!(serde_json::from_value::<ChallengeType>(json!("HTTP-01")).is_err());
        assert_eq!("dns-01".parse::<ChallengeType>(), Ok(ChallengeType::Dns01));
        assert!("x".parse::<OrderStatus>().is_err());
        assert_eq!(OrderStatus::Ready.to_string(), "ready");
    }
}
