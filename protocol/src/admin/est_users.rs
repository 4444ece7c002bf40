//! EST users for HTTP Basic authentication (RFC 7030 §3.2.3):
//! `POST /admin/v1/est-users` and `GET /admin/v1/est-users?tenant=`.

use serde::Deserialize;

use super::{parse_body, RequestError};

/// Shortest password accepted from the caller.
pub const MIN_PASSWORD_LEN: usize = 12;
/// Longest user name or password accepted anywhere (Basic credentials
/// longer than this are refused before hashing).
pub const MAX_CREDENTIAL_LEN: usize = 256;

/// The body of `POST /admin/v1/est-users`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateEstUserRequest {
    /// The Basic user-id.
    pub username: String,
    /// The tenant; a tenant-scoped caller's own when absent.
    #[serde(default)]
    pub tenant: Option<String>,
    /// The password; generated (and shown once) when absent.
    #[serde(default)]
    pub password: Option<String>,
}

/// A user name: 1 to 64 printable ASCII characters other than `:` (RFC
/// 7617 §2: the user-id cannot contain a colon) and space.
pub fn username(name: &str) -> Result<&str, RequestError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
    if ok {
        Ok(name)
    } else {
        Err(RequestError::bad_request(
            "username must be 1 to 64 printable ASCII characters without ':' or spaces",
        ))
    }
}

/// Decodes and checks the body of a create call.
pub fn decode_create(body: &[u8]) -> Result<CreateEstUserRequest, RequestError> {
    let r: CreateEstUserRequest = parse_body(body)?;
    username(&r.username)?;
    if let Some(p) = &r.password {
        if p.len() < MIN_PASSWORD_LEN || p.len() > MAX_CREDENTIAL_LEN {
            return Err(RequestError::bad_request(format!(
                "password must be {MIN_PASSWORD_LEN} to {MAX_CREDENTIAL_LEN} bytes"
            )));
        }
    }
    Ok(r)
}

/// `?tenant=<id>` or nothing.
pub fn parse_tenant_query(query: Option<&str>) -> Result<Option<String>, RequestError> {
    let mut tenant = None;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=') {
            Some(("tenant", v)) if !v.is_empty() => tenant = Some(v.to_string()),
            _ => {
                return Err(RequestError::bad_request(
                    "unknown query parameter; only tenant=<id> is accepted",
                ))
            }
        }
    }
    Ok(tenant)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_passwords_and_queries() {
        for ok in ["dev1", "router-7.example", "a@b"] {
            assert!(username(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a:b", "a b", &"x".repeat(65)] {
            assert!(username(bad).is_err(), "{bad:?}");
        }
        assert!(decode_create(br#"{"username":"d","password":"short"}"#).is_err());
        assert!(decode_create(br#"{"username":"d","password":"long-enough-pw"}"#).is_ok());
        assert!(decode_create(br#"{"username":"d","extra":1}"#).is_err());
        assert_eq!(
            parse_tenant_query(Some("tenant=t1")).ok(),
            Some(Some("t1".to_string()))
        );
        assert!(parse_tenant_query(Some("x=1")).is_err());
    }
}
