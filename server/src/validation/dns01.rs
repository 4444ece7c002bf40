//! `dns-01` validation, RFC 8555 §8.4.
//!
//! The CA queries TXT records at `_acme-challenge.{domain}` and succeeds if
//! any record equals `base64url(SHA-256(key authorization))` (no padding).
//! The character-strings of one TXT record are concatenated before comparing
//! (a record longer than 255 octets must be split, RFC 1035 §3.3.14).
//! IP identifiers cannot use dns-01 (RFC 8738 §7) → `malformed`.
//!
//! Failures: NXDOMAIN/SERVFAIL/unreachable resolver → `dns`; the name exists
//! but has no TXT record → `unauthorized`; TXT records present but none
//! matches → `incorrectResponse`.

use super::resolve::LookupFailure;
use super::{dns01_txt_value, normalize_dns_name, ChallengeKind, Inner, Target, ValidationError};

pub(crate) async fn validate(
    inner: &Inner,
    target: &Target,
    key_authorization: &str,
) -> Result<(), ValidationError> {
    let kind = ChallengeKind::Dns01;
    let name = match target {
        Target::Ip(ip) => {
            return Err(ValidationError::Malformed(format!(
                "dns-01: challenge type not allowed for IP identifier {ip} (RFC 8738 §7); use http-01 or tls-alpn-01"
            )))
        }
        Target::Dns(n) => normalize_dns_name(kind, n)?,
    };
    let query = format!("_acme-challenge.{name}");
    let expected = dns01_txt_value(key_authorization);
    let records = match inner.resolver.lookup_txt(&query).await {
        Ok(r) => r,
        Err(LookupFailure::NxDomain) => {
            return Err(ValidationError::Dns(format!(
                "dns-01: no TXT record found at {query}: NXDOMAIN (the name does not exist)"
            )))
        }
        Err(LookupFailure::NoData) => {
            return Err(ValidationError::Unauthorized(format!(
                "dns-01: no TXT record found at {query}"
            )))
        }
        Err(LookupFailure::Other(s)) => {
            return Err(ValidationError::Dns(format!(
                "dns-01: TXT lookup of {query} failed: {s}"
            )))
        }
    };
    if records.iter().any(|r| r.as_slice() == expected.as_bytes()) {
        return Ok(());
    }
    let n = records.len();
    let shown: Vec<String> = records
        .iter()
        .take(3)
        .map(|r| format!("{:?}", String::from_utf8_lossy(&r[..r.len().min(100)])))
        .collect();
    Err(ValidationError::IncorrectResponse(format!(
        "dns-01: no TXT record at {query} matches the key authorization digest (found {n} record{}: {}{}; expected {expected:?})",
        if n == 1 { "" } else { "s" },
        shown.join(", "),
        if n > 3 { ", ..." } else { "" },
    )))
}
