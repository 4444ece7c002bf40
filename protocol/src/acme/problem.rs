//! ACME problem documents (RFC 8555 §6.7) in RFC 7807 form.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::types::Identifier;

/// The media type of a problem document (RFC 7807 §3).
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// The URN prefix of ACME error types (RFC 8555 §6.7).
pub const ACME_ERROR_URN_PREFIX: &str = "urn:ietf:params:acme:error:";

macro_rules! problem_types {
    ( $( $(#[$vmeta:meta])* $variant:ident => ($name:literal, $status:literal) ),+ $(,)? ) => {
        /// An ACME error type: every type of RFC 8555 §6.7, plus
        /// `alreadyReplaced` (RFC 9773 §5, §7.4) and `invalidProfile`
        /// (draft-ietf-acme-profiles).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ProblemType {
            $( $(#[$vmeta])* $variant, )+
        }

        impl ProblemType {
            /// Every problem type, in RFC table order.
            pub const ALL: &'static [ProblemType] = &[ $( ProblemType::$variant, )+ ];

            /// The short name, e.g. `"badNonce"`.
            pub fn name(self) -> &'static str {
                match self { $( Self::$variant => $name, )+ }
            }

            /// The HTTP status this server uses for the type unless a caller
            /// overrides it (RFC 8555 does not fix statuses; values follow
            /// common practice, e.g. Boulder: 400 for request errors, 403 for
            /// authorization failures, 429 for rate limits, 500 internal).
            pub fn default_status(self) -> u16 {
                match self { $( Self::$variant => $status, )+ }
            }

            /// Looks a type up by its short name (`"badNonce"`).
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $( $name => Some(Self::$variant), )+
                    _ => None,
                }
            }
        }
    };
}

problem_types! {
    /// The request specified an account that does not exist.
    AccountDoesNotExist => ("accountDoesNotExist", 400),
    /// The request specified a certificate to be revoked that has already been revoked.
    AlreadyRevoked => ("alreadyRevoked", 400),
    /// The CSR is unacceptable (e.g., due to a short key).
    BadCsr => ("badCSR", 400),
    /// The client sent an unacceptable anti-replay nonce.
    BadNonce => ("badNonce", 400),
    /// The JWS was signed by a public key the server does not support.
    BadPublicKey => ("badPublicKey", 400),
    /// The revocation reason provided is not allowed by the server.
    BadRevocationReason => ("badRevocationReason", 400),
    /// The JWS was signed with an algorithm the server does not support.
    BadSignatureAlgorithm => ("badSignatureAlgorithm", 400),
    /// Certification Authority Authorization (CAA) records forbid issuance.
    Caa => ("caa", 403),
    /// Specific error conditions are indicated in the "subproblems" array.
    Compound => ("compound", 400),
    /// The server could not connect to the validation target.
    Connection => ("connection", 400),
    /// There was a problem with a DNS query during identifier validation.
    Dns => ("dns", 400),
    /// The request must include a value for "externalAccountBinding".
    ExternalAccountRequired => ("externalAccountRequired", 403),
    /// Response received didn't match the challenge's requirements.
    IncorrectResponse => ("incorrectResponse", 403),
    /// A contact URL for an account was invalid.
    InvalidContact => ("invalidContact", 400),
    /// The request message was malformed.
    Malformed => ("malformed", 400),
    /// The request attempted to finalize an order that is not ready.
    OrderNotReady => ("orderNotReady", 403),
    /// The request exceeds a rate limit.
    RateLimited => ("rateLimited", 429),
    /// The server will not issue certificates for the identifier.
    RejectedIdentifier => ("rejectedIdentifier", 400),
    /// The server experienced an internal error.
    ServerInternal => ("serverInternal", 500),
    /// The server received a TLS error during validation.
    Tls => ("tls", 400),
    /// The client lacks sufficient authorization.
    Unauthorized => ("unauthorized", 403),
    /// A contact URL for an account used an unsupported protocol scheme.
    UnsupportedContact => ("unsupportedContact", 400),
    /// An identifier is of an unsupported type.
    UnsupportedIdentifier => ("unsupportedIdentifier", 400),
    /// Visit the "instance" URL and take actions specified there.
    UserActionRequired => ("userActionRequired", 403),
    /// The certificate named in "replaces" was already replaced (RFC 9773 §5;
    /// 409 Conflict as Boulder answers).
    AlreadyReplaced => ("alreadyReplaced", 409),
    /// The requested certificate profile is unknown (draft-ietf-acme-profiles).
    InvalidProfile => ("invalidProfile", 400),
}

impl ProblemType {
    /// The full URN, e.g. `"urn:ietf:params:acme:error:badNonce"` (RFC 8555 §6.7).
    pub fn urn(self) -> String {
        format!("{ACME_ERROR_URN_PREFIX}{}", self.name())
    }

    /// Parses a full URN as produced by [`ProblemType::urn`].
    pub fn from_urn(urn: &str) -> Option<Self> {
        urn.strip_prefix(ACME_ERROR_URN_PREFIX)
            .and_then(Self::from_name)
    }
}

impl fmt::Display for ProblemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for ProblemType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.urn())
    }
}

impl<'de> Deserialize<'de> for ProblemType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::from_urn(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown ACME error type {s:?}")))
    }
}

/// One entry of a problem document's `"subproblems"` array (RFC 8555 §6.7.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subproblem {
    /// The error type (`"type"` on the wire, a URN).
    #[serde(rename = "type")]
    pub kind: ProblemType,
    /// Human-readable detail.
    pub detail: String,
    /// The identifier the subproblem relates to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
}

impl Subproblem {
    /// A subproblem about `identifier`.
    pub fn new(
        kind: ProblemType,
        detail: impl Into<String>,
        identifier: Option<Identifier>,
    ) -> Self {
        Self {
            kind,
            detail: detail.into(),
            identifier,
        }
    }
}

/// An ACME problem document (RFC 8555 §6.7, RFC 7807 §3.1).
///
/// Serializes to `{"type", "detail", "status", "subproblems"?, "identifier"?,
/// "algorithms"?}`; empty or absent optional members are omitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The error type (`"type"` on the wire, a URN).
    #[serde(rename = "type")]
    pub kind: ProblemType,
    /// Human-readable detail.
    pub detail: String,
    /// The HTTP status code (RFC 7807 §3.1).
    pub status: u16,
    /// Per-identifier problems (RFC 8555 §6.7.1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subproblems: Vec<Subproblem>,
    /// The identifier the problem relates to (RFC 8555 §6.7.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
    /// The supported JWS algorithms, for `badSignatureAlgorithm` (RFC 8555 §6.2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithms: Option<Vec<String>>,
}

impl Problem {
    /// A problem of type `kind` with its [default status](ProblemType::default_status).
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            status: kind.default_status(),
            subproblems: Vec::new(),
            identifier: None,
            algorithms: None,
        }
    }

    /// Shorthand for a `malformed` problem.
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::Malformed, detail)
    }

    /// Shorthand for a `serverInternal` problem.
    pub fn server_internal(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::ServerInternal, detail)
    }

    /// Replaces the subproblems (RFC 8555 §6.7.1).
    #[must_use]
    pub fn with_subproblems(mut self, subproblems: Vec<Subproblem>) -> Self {
        self.subproblems = subproblems;
        self
    }

    /// Sets the identifier.
    #[must_use]
    pub fn with_identifier(mut self, identifier: Identifier) -> Self {
        self.identifier = Some(identifier);
        self
    }

    /// Sets the supported algorithms list (RFC 8555 §6.2).
    #[must_use]
    pub fn with_algorithms(mut self, algorithms: Vec<String>) -> Self {
        self.algorithms = Some(algorithms);
        self
    }

    /// Overrides the HTTP status.
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// This problem as a subproblem (keeps type, detail and identifier).
    pub fn to_subproblem(&self) -> Subproblem {
        Subproblem::new(self.kind, self.detail.clone(), self.identifier.clone())
    }

    /// The problem document as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        map.insert("type".into(), self.kind.urn().into());
        map.insert("detail".into(), self.detail.clone().into());
        map.insert("status".into(), self.status.into());
        if !self.subproblems.is_empty() {
            let subs = self
                .subproblems
                .iter()
                .map(|s| {
                    let mut m = serde_json::Map::new();
                    m.insert("type".into(), s.kind.urn().into());
                    m.insert("detail".into(), s.detail.clone().into());
                    if let Some(id) = &s.identifier {
                        m.insert("identifier".into(), identifier_json(id));
                    }
                    serde_json::Value::Object(m)
                })
                .collect();
            map.insert("subproblems".into(), serde_json::Value::Array(subs));
        }
        if let Some(id) = &self.identifier {
            map.insert("identifier".into(), identifier_json(id));
        }
        if let Some(algs) = &self.algorithms {
            map.insert("algorithms".into(), algs.clone().into());
        }
        serde_json::Value::Object(map)
    }
}

fn identifier_json(id: &Identifier) -> serde_json::Value {
    serde_json::json!({"type": id.kind.as_str(), "value": id.value})
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.kind, self.status, self.detail)
    }
}

impl std::error::Error for Problem {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn urns_and_names_round_trip() {
        assert_eq!(ProblemType::ALL.len(), 26);
        for t in ProblemType::ALL {
            assert_eq!(ProblemType::from_urn(&t.urn()), Some(*t));
            assert!(t.urn().starts_with("urn:ietf:params:acme:error:"));
        }
        assert_eq!(
            ProblemType::BadNonce.urn(),
            "urn:ietf:params:acme:error:badNonce"
        );
        assert_eq!(
            ProblemType::BadCsr.urn(),
            "urn:ietf:params:acme:error:badCSR"
        );
        assert_eq!(
            ProblemType::from_urn("urn:ietf:params:acme:error:nope"),
            None
        );
    }

    #[test]
    fn default_statuses() {
        assert_eq!(ProblemType::BadNonce.default_status(), 400);
        assert_eq!(ProblemType::Unauthorized.default_status(), 403);
        assert_eq!(ProblemType::AccountDoesNotExist.default_status(), 400);
        assert_eq!(ProblemType::OrderNotReady.default_status(), 403);
        assert_eq!(ProblemType::RateLimited.default_status(), 429);
        assert_eq!(ProblemType::ServerInternal.default_status(), 500);
        assert_eq!(ProblemType::AlreadyRevoked.default_status(), 400);
        assert_eq!(ProblemType::Malformed.default_status(), 400);
        assert_eq!(ProblemType::AlreadyReplaced.default_status(), 409);
    }

    #[test]
    fn minimal_problem_json() {
        let p = Problem::new(ProblemType::BadNonce, "stale nonce");
        assert_eq!(
            p.to_json(),
            json!({"type": "urn:ietf:params:acme:error:badNonce", "detail": "stale nonce", "status": 400})
        );
        assert_eq!(serde_json::to_value(&p).unwrap(), p.to_json());
    }

    /// The example of RFC 8555 §6.7.1.
    #[test]
    fn subproblems_json() {
        let p = Problem::new(
            ProblemType::Malformed,
            "Some of the identifiers requested were rejected",
        )
        .with_subproblems(vec![
            Subproblem::new(
                ProblemType::Malformed,
                "Invalid underscore in DNS name \"_example.org\"",
                Some(Identifier::dns("_example.org")),
            ),
            Subproblem::new(
                ProblemType::RejectedIdentifier,
                "This CA will not issue for \"example.net\"",
                Some(Identifier::dns("example.net")),
            ),
        ]);
        let v = p.to_json();
        assert_eq!(
            v["subproblems"][0]["identifier"],
            json!({"type": "dns", "value": "_example.org"})
        );
        assert_eq!(
            v["subproblems"][1]["type"],
            json!("urn:ietf:params:acme:error:rejectedIdentifier")
        );
        assert!(v.get("identifier").is_none());
        assert!(v.get("algorithms").is_none());
        assert_eq!(serde_json::to_value(&p).unwrap(), v);
        let back: Problem = serde_json::from_value(v).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn algorithms_member() {
        let p = Problem::new(ProblemType::BadSignatureAlgorithm, "no")
            .with_algorithms(vec!["ES256".into(), "EdDSA".into()]);
        assert_eq!(p.to_json()["algorithms"], json!(["ES256", "EdDSA"]));
    }
}
