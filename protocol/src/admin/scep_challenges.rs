//! One-time SCEP challenges (RFC 8894 §2.3; issue 8):
//! `POST /admin/v1/scep-challenges` and `GET /admin/v1/scep-challenges?tenant=`.

use serde::Deserialize;

use super::{parse_body, RequestError};

/// Default lifetime of a challenge, in minutes.
pub const SCEP_CHALLENGE_DEFAULT_MINUTES: u32 = 60;
/// Longest lifetime of a challenge, in minutes (7 days).
pub const SCEP_CHALLENGE_MAX_MINUTES: u32 = 7 * 24 * 60;

/// The body of `POST /admin/v1/scep-challenges`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateScepChallengeRequest {
    /// The tenant whose names policy applies; a tenant-scoped caller's own
    /// when absent.
    #[serde(default)]
    pub tenant: Option<String>,
    /// The SCEP path (`[[scep.profiles]] path`) it may be used on; any
    /// path that accepts dynamic challenges when absent.
    #[serde(default)]
    pub path: Option<String>,
    /// Minutes until it expires (1 to 10080; default 60).
    #[serde(default)]
    pub expires_in_minutes: Option<u32>,
}

/// Decodes and checks the body of a create call.
pub fn decode_create(body: &[u8]) -> Result<CreateScepChallengeRequest, RequestError> {
    let r: CreateScepChallengeRequest = parse_body(body)?;
    if let Some(m) = r.expires_in_minutes {
        if !(1..=SCEP_CHALLENGE_MAX_MINUTES).contains(&m) {
            return Err(RequestError::bad_request(format!(
                "expiresInMinutes must be 1 to {SCEP_CHALLENGE_MAX_MINUTES}"
            )));
        }
    }
    if let Some(p) = &r.path {
        let ok = !p.is_empty()
            && p.len() <= 64
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        if !ok {
            return Err(RequestError::bad_request(
                "path must be 1 to 64 letters, digits, '-', '_' or '.'",
            ));
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        assert!(decode_create(b"{}").is_ok());
        assert!(decode_create(br#"{"tenant":"t","path":"devices","expiresInMinutes":5}"#).is_ok());
        assert!(decode_create(br#"{"expiresInMinutes":0}"#).is_err());
        assert!(decode_create(br#"{"expiresInMinutes":100000}"#).is_err());
        assert!(decode_create(br#"{"path":"a/b"}"#).is_err());
        assert!(decode_create(br#"{"challenge":"x"}"#).is_err());
    }
}
