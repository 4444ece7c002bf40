//! ACME request payloads (RFC 8555 §7.3–§7.6, RFC 9773 §5) and the checks
//! the server applies to contacts and identifiers.
//!
//! All payloads use camelCase member names, ignore unknown members and
//! default absent optional members.
//!
//! Unknown identifier types: [`Identifier`] only knows `dns` and `ip`, so
//! deserializing a [`NewOrderRequest`] with any other type through serde
//! fails (→ `malformed`). Servers should parse newOrder payloads with
//! [`NewOrderRequest::from_payload`] instead, which reads identifiers as
//! [`RawIdentifier`]s first and reports unknown types as
//! `unsupportedIdentifier` (RFC 8555 §7.4) with one subproblem each.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::b64;
use super::problem::{Problem, ProblemType, Subproblem};
use super::types::{Identifier, IdentifierKind};

/// newAccount payload (RFC 8555 §7.3).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NewAccountRequest {
    /// Contact URLs (`mailto:` only on this server).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<Vec<String>>,
    /// Agreement to the terms of service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub terms_of_service_agreed: Option<bool>,
    /// Look the account up without creating it (RFC 8555 §7.3.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub only_return_existing: Option<bool>,
    /// External account binding JWS (RFC 8555 §7.3.4), unparsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_account_binding: Option<Value>,
}

/// Account update / deactivation payload (RFC 8555 §7.3.2, §7.3.6).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AccountUpdateRequest {
    /// New contact URLs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<Vec<String>>,
    /// `"deactivated"` to deactivate; other values are for the server to reject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// newOrder payload (RFC 8555 §7.4; `replaces` RFC 9773 §5;
/// `profile` draft-ietf-acme-profiles).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NewOrderRequest {
    /// Requested identifiers.
    pub identifiers: Vec<Identifier>,
    /// Requested notBefore (RFC 3339), unparsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// Requested notAfter (RFC 3339), unparsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// The ARI CertID of the certificate this order replaces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    /// The requested certificate profile name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// An identifier object whose type has not been checked yet (RFC 8555 §7.1.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawIdentifier {
    /// The `"type"` string as sent.
    #[serde(rename = "type")]
    pub kind: String,
    /// The `"value"` as sent.
    pub value: String,
}

impl RawIdentifier {
    /// Converts to an [`Identifier`]; an unknown type gives
    /// `unsupportedIdentifier` (RFC 8555 §7.4).
    pub fn into_identifier(self) -> Result<Identifier, Problem> {
        let kind = match self.kind.as_str() {
            "dns" => IdentifierKind::Dns,
            "ip" => IdentifierKind::Ip,
            other => {
                return Err(Problem::new(
                    ProblemType::UnsupportedIdentifier,
                    format!("identifier type {other:?} is not supported"),
                ))
            }
        };
        Ok(Identifier {
            kind,
            value: self.value,
        })
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[derive(Default)]
struct RawNewOrderRequest {
    identifiers: Vec<RawIdentifier>,
    not_before: Option<String>,
    not_after: Option<String>,
    replaces: Option<String>,
    profile: Option<String>,
}

impl NewOrderRequest {
    /// Parses a newOrder payload (RFC 8555 §7.4). Bad JSON → `malformed`;
    /// identifiers of unknown types → `unsupportedIdentifier` with one
    /// subproblem per offending identifier (RFC 8555 §6.7.1). Identifier
    /// values are not validated here (see [`validate_identifier`]).
    pub fn from_payload(payload: &[u8]) -> Result<NewOrderRequest, Problem> {
        let raw: RawNewOrderRequest = serde_json::from_slice(payload)
            .map_err(|e| Problem::malformed(format!("invalid newOrder payload: {e}")))?;
        let mut identifiers = Vec::with_capacity(raw.identifiers.len());
        let mut subproblems = Vec::new();
        for raw_id in raw.identifiers {
            let value = raw_id.value.clone();
            match raw_id.into_identifier() {
                Ok(id) => identifiers.push(id),
                Err(p) => subproblems.push(Subproblem::new(
                    p.kind,
                    format!("{} (value {value:?})", p.detail),
                    None,
                )),
            }
        }
        if !subproblems.is_empty() {
            return Err(Problem::new(
                ProblemType::UnsupportedIdentifier,
                "the order contains identifiers of unsupported types",
            )
            .with_subproblems(subproblems));
        }
        Ok(NewOrderRequest {
            identifiers,
            not_before: raw.not_before,
            not_after: raw.not_after,
            replaces: raw.replaces,
            profile: raw.profile,
        })
    }
}

/// Order finalization payload (RFC 8555 §7.4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FinalizeRequest {
    /// base64url (no padding) DER of a PKCS#10 CSR.
    pub csr: String,
}

impl FinalizeRequest {
    /// The decoded CSR DER; `badCSR` when not base64url (RFC 8555 §7.4).
    pub fn csr_der(&self) -> Result<Vec<u8>, Problem> {
        decode_nonempty(&self.csr)
            .ok_or_else(|| Problem::new(ProblemType::BadCsr, "csr is not base64url-encoded DER"))
    }
}

/// Certificate revocation payload (RFC 8555 §7.6).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RevokeRequest {
    /// base64url (no padding) DER of the certificate.
    pub certificate: String,
    /// RFC 5280 §5.3.1 reason code; checked by the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<u8>,
}

impl RevokeRequest {
    /// The decoded certificate DER; `malformed` when not base64url.
    pub fn certificate_der(&self) -> Result<Vec<u8>, Problem> {
        decode_nonempty(&self.certificate)
            .ok_or_else(|| Problem::malformed("certificate is not base64url-encoded DER"))
    }
}

/// Inner payload of a key change (RFC 8555 §7.3.5).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KeyChangeRequest {
    /// The account URL.
    pub account: String,
    /// The old account key as a JWK, unparsed.
    pub old_key: Value,
}

fn decode_nonempty(s: &str) -> Option<Vec<u8>> {
    b64::decode(s).filter(|v| !v.is_empty())
}

/// Maximum length of a domain name in presentation form (RFC 1035 §2.3.4).
const MAX_DNS_NAME_LEN: usize = 253;
/// Maximum length of a label (RFC 1035 §2.3.4).
const MAX_LABEL_LEN: usize = 63;

/// Checks a host name: LDH labels (RFC 1123 §2.1, RFC 5890 §2.3.1) of 1–63
/// characters, at least two labels, at most 253 characters, no trailing dot,
/// a top-level label that is not all digits (RFC 3696 §2), not an IPv4
/// literal. Case-insensitive. Returns a reason on failure.
fn check_host_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty domain name".into());
    }
    if name.len() > MAX_DNS_NAME_LEN {
        return Err(format!(
            "domain name longer than {MAX_DNS_NAME_LEN} characters"
        ));
    }
    if name.ends_with('.') {
        return Err("domain name ends in a dot".into());
    }
    if name.parse::<IpAddr>().is_ok() {
        return Err("an IP address is not a DNS name; use an \"ip\" identifier".into());
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Err("domain name needs at least two labels".into());
    }
    for label in &labels {
        if label.is_empty() {
            return Err("domain name has an empty label".into());
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(format!("label longer than {MAX_LABEL_LEN} characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(format!(
                "label {label:?} has characters other than letters, digits and hyphens"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label {label:?} starts or ends with a hyphen"));
        }
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("top-level label is all digits".into());
    }
    Ok(())
}

/// Checks an identifier's value (RFC 8555 §7.1.4, §7.4).
///
/// * `dns`: a host name per `check_host_name` rules (LDH labels of 1–63
///   characters, at least two labels, ≤ 253 characters, no trailing dot,
///   not an IP literal, case-insensitive), optionally preceded by a single
///   `"*."` wildcard label (RFC 8555 §7.1.3).
/// * `ip`: an IPv4 or IPv6 address in canonical text form (RFC 8738 §3,
///   RFC 5952 §4 for IPv6).
///
/// Failures are `malformed` problems (as Boulder answers for syntax errors)
/// carrying the identifier, ready to be used as a subproblem; the server
/// answers `rejectedIdentifier` for policy refusals.
pub fn validate_identifier(identifier: &Identifier) -> Result<(), Problem> {
    let fail = |reason: String| {
        Problem::malformed(format!(
            "invalid identifier {:?}: {reason}",
            identifier.value
        ))
        .with_identifier(identifier.clone())
    };
    match identifier.kind {
        IdentifierKind::Dns => {
            let name = identifier
                .value
                .strip_prefix("*.")
                .unwrap_or(&identifier.value);
            if name.contains('*') {
                return Err(fail(
                    "a wildcard may only be a single leading \"*.\" label".into(),
                ));
            }
            check_host_name(name).map_err(fail)
        }
        IdentifierKind::Ip => {
            let addr: IpAddr = identifier
                .value
                .parse()
                .map_err(|_| fail("not an IP address".into()))?;
            if let IpAddr::V6(v6) = addr {
                // RFC 4291 §2.5.5: an IPv4 address in IPv6 form would
                // escape IPv4 name constraints and policies.
                if let Some(v4) = v6.to_ipv4_mapped() {
                    return Err(fail(format!(
                        "an IPv4-mapped IPv6 address; ask for the IPv4 address {v4}"
                    )));
                }
            }
            let canonical = addr.to_string();
            if canonical != identifier.value {
                return Err(fail(format!(
                    "IP address is not in canonical form (expected {canonical:?})"
                )));
            }
            Ok(())
        }
    }
}

/// Characters allowed in an unquoted local part (RFC 5322 §3.2.3 atext).
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

/// Checks a contact URL (RFC 8555 §7.3, RFC 6068).
///
/// Only `mailto:` is supported (else `unsupportedContact`). The address must
/// be exactly one ASCII dot-atom addr-spec (RFC 5322 §3.4.1) with a
/// plausible host name; hfields (`?`), several addresses (`,`),
/// percent-encoding and whitespace are refused (`invalidContact`).
pub fn validate_contact(contact: &str) -> Result<(), Problem> {
    let invalid = |reason: &str| {
        Problem::new(
            ProblemType::InvalidContact,
            format!("invalid contact {contact:?}: {reason}"),
        )
    };
    let Some((scheme, addr)) = contact.split_once(':') else {
        return Err(Problem::new(
            ProblemType::UnsupportedContact,
            format!("contact {contact:?} is not a mailto: URL"),
        ));
    };
    if !scheme.eq_ignore_ascii_case("mailto") {
        return Err(Problem::new(
            ProblemType::UnsupportedContact,
            format!("contact scheme {scheme:?} is not supported; only mailto: is"),
        ));
    }
    if addr.contains('?') {
        return Err(invalid("hfields are not allowed"));
    }
    if addr.contains(',') {
        return Err(invalid("exactly one address is allowed"));
    }
    if addr.contains('%') {
        return Err(invalid("percent-encoding is not allowed"));
    }
    if !addr.is_ascii()
        || addr
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(invalid("only printable ASCII without spaces is allowed"));
    }
    let Some((local, domain)) = addr.rsplit_once('@') else {
        return Err(invalid("no @ in the address"));
    };
    if local.is_empty() || local.len() > 64 {
        return Err(invalid("local part must be 1 to 64 characters"));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(invalid("local part has misplaced dots"));
    }
    if !local.bytes().all(|b| b == b'.' || is_atext(b)) {
        return Err(invalid("local part has characters outside RFC 5322 atext"));
    }
    check_host_name(domain).map_err(|reason| invalid(&format!("bad domain: {reason}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vector(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/vectors/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn rfc8555_newaccount_payload() {
        let req: NewAccountRequest =
            serde_json::from_slice(&vector("rfc8555-7.3-newaccount.json")).unwrap();
        assert_eq!(req.terms_of_service_agreed, Some(true));
        assert_eq!(
            req.contact.as_deref(),
            Some(
                &[
                    "mailto:cert-admin@example.org".to_owned(),
                    "mailto:admin@example.org".to_owned()
                ][..]
            )
        );
        assert_eq!(req.only_return_existing, None);
        for c in req.contact.unwrap() {
            validate_contact(&c).unwrap();
        }
        let empty: NewAccountRequest = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, NewAccountRequest::default());
        let ore: NewAccountRequest =
            serde_json::from_value(json!({"onlyReturnExisting": true, "x": 1})).unwrap();
        assert_eq!(ore.only_return_existing, Some(true));
    }

    #[test]
    fn rfc8555_neworder_payload() {
        let req = NewOrderRequest::from_payload(&vector("rfc8555-7.4-neworder.json")).unwrap();
        assert_eq!(
            req.identifiers,
            vec![
                Identifier::dns("www.example.org"),
                Identifier::dns("example.org")
            ]
        );
        assert_eq!(req.not_before.as_deref(), Some("2016-01-01T00:04:00+04:00"));
        assert_eq!(req.not_after.as_deref(), Some("2016-01-08T00:04:00+04:00"));
        let via_serde: NewOrderRequest =
            serde_json::from_slice(&vector("rfc8555-7.4-neworder.json")).unwrap();
        assert_eq!(via_serde, req);
        for id in &req.identifiers {
            validate_identifier(id).unwrap();
        }
    }

    #[test]
    fn neworder_unknown_identifier_type() {
        let body = json!({"identifiers": [
            {"type": "dns", "value": "example.org"},
            {"type": "email", "value": "a@example.org"},
            {"type": "permanent-identifier", "value": "x"}
        ], "replaces": "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE", "profile": "tlsserver"});
        let err = NewOrderRequest::from_payload(body.to_string().as_bytes()).unwrap_err();
        assert_eq!(err.kind, ProblemType::UnsupportedIdentifier);
        assert_eq!(err.subproblems.len(), 2);
        // Without the unknown ones it parses, including ARI and profile fields.
        let body = json!({"identifiers": [{"type": "ip", "value": "192.0.2.1"}],
            "replaces": "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE", "profile": "tlsserver"});
        let req = NewOrderRequest::from_payload(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            req.replaces.as_deref(),
            Some("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE")
        );
        assert_eq!(req.profile.as_deref(), Some("tlsserver"));
        let err = NewOrderRequest::from_payload(b"[").unwrap_err();
        assert_eq!(err.kind, ProblemType::Malformed);
    }

    #[test]
    fn other_payloads() {
        let f: FinalizeRequest =
            serde_json::from_slice(&vector("rfc8555-7.4-finalize.json")).unwrap();
        assert!(!f.csr_der().unwrap().is_empty());
        assert_eq!(
            FinalizeRequest { csr: "a+b".into() }
                .csr_der()
                .unwrap_err()
                .kind,
            ProblemType::BadCsr
        );
        let r: RevokeRequest =
            serde_json::from_slice(&vector("rfc8555-7.6-revokecert.json")).unwrap();
        assert_eq!(r.reason, Some(4));
        assert!(!r.certificate_der().unwrap().is_empty());
        let k: KeyChangeRequest =
            serde_json::from_slice(&vector("rfc8555-7.3.5-keychange-inner.json")).unwrap();
        assert_eq!(k.account, "https://example.com/acme/acct/evOfKhNU60wg");
        assert_eq!(k.old_key["kty"], json!("EC"));
        let u: AccountUpdateRequest =
            serde_json::from_value(json!({"status": "deactivated"})).unwrap();
        assert_eq!(u.status.as_deref(), Some("deactivated"));
        assert_eq!(u.contact, None);
    }

    #[test]
    fn contacts() {
        for ok in [
            "mailto:admin@example.org",
            "MAILTO:admin@example.org",
            "mailto:first.last+tag@sub.example.co.uk",
        ] {
            validate_contact(ok).unwrap();
        }
        for (bad, kind) in [
            ("tel:+12025551212", ProblemType::UnsupportedContact),
            ("https://example.org", ProblemType::UnsupportedContact),
            ("admin@example.org", ProblemType::UnsupportedContact),
            (
                "mailto:admin@example.org?subject=hi",
                ProblemType::InvalidContact,
            ),
            (
                "mailto:a@example.org,b@example.org",
                ProblemType::InvalidContact,
            ),
            ("mailto:", ProblemType::InvalidContact),
            ("mailto:admin", ProblemType::InvalidContact),
            ("mailto:admin@localhost", ProblemType::InvalidContact),
            ("mailto:admin@example.org.", ProblemType::InvalidContact),
            ("mailto:admin@192.0.2.1", ProblemType::InvalidContact),
            ("mailto:admin@[192.0.2.1]", ProblemType::InvalidContact),
            ("mailto:ad min@example.org", ProblemType::InvalidContact),
            ("mailto:.admin@example.org", ProblemType::InvalidContact),
            ("mailto:a..b@example.org", ProblemType::InvalidContact),
            ("mailto:a%40b@example.org", ProblemType::InvalidContact),
            ("mailto:\"a@b\"@example.org", ProblemType::InvalidContact),
            ("mailto:admin@exämple.org", ProblemType::InvalidContact),
        ] {
            assert_eq!(validate_contact(bad).unwrap_err().kind, kind, "{bad}");
        }
    }

    #[test]
    fn dns_identifiers() {
        let long_label = "a".repeat(63);
        let ok_long = format!("{long_label}.example.org");
        for ok in [
            "example.org",
            "WWW.Example.ORG",
            "*.example.org",
            "xn--bcher-kva.example",
            "a-b.c1.example",
            ok_long.as_str(),
        ] {
            validate_identifier(&Identifier::dns(ok)).unwrap();
        }
        let too_long_label = format!("{}a.example.org", long_label);
        let too_long_name = format!("{}.org", vec!["a".repeat(60); 5].join("."));
        for bad in [
            "",
            "org",
            "example.org.",
            "*.org",
            "*.*.example.org",
            "www.*.example.org",
            "*example.org",
            "-a.example.org",
            "a-.example.org",
            "a..example.org",
            ".example.org",
            "exa_mple.org",
            "exa mple.org",
            "exämple.org",
            "192.0.2.1",
            "1.2.3.4.5",
            "example.123",
            "::1",
            too_long_label.as_str(),
            too_long_name.as_str(),
        ] {
            let id = Identifier::dns(bad);
            let p = validate_identifier(&id).unwrap_err();
            assert_eq!(p.kind, ProblemType::Malformed, "{bad}");
            assert_eq!(p.identifier.as_ref(), Some(&id));
        }
    }

    #[test]
    fn ip_identifiers() {
        for ok in ["192.0.2.1", "2001:db8::1", "::1"] {
            validate_identifier(&Identifier::ip(ok)).unwrap();
        }
        for bad in [
            "",
            "192.0.2.01",
            "192.0.2",
            "2001:DB8::1",
            "2001:db8:0:0:0:0:0:1",
            "2001:0db8::1",
            "[2001:db8::1]",
            "192.0.2.1/32",
            "example.org",
            " 192.0.2.1",
            // IPv4-mapped: would escape IPv4 constraints (issue 10 item 11).
            "::ffff:192.0.2.1",
            "::ffff:10.1.2.3",
        ] {
            assert!(validate_identifier(&Identifier::ip(bad)).is_err(), "{bad}");
        }
        let p = validate_identifier(&Identifier::ip("::ffff:10.1.2.3")).unwrap_err();
        assert!(p.detail.contains("10.1.2.3"), "{}", p.detail);
    }
}
