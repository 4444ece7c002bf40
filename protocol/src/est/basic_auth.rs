//! The `Authorization: Basic` header of EST's HTTP-based client
//! authentication (RFC 7030 §3.2.3, RFC 7617 §2), parsed without I/O so
//! that it is fuzzed with the other EST inputs. Checking the password is
//! the server's (slow hash, rate limit).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::admin::MAX_CREDENTIAL_LEN;

/// Credentials from an `Authorization: Basic` header (RFC 7617 §2).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Parses an `Authorization` header value; `None` if it is not Basic.
/// `Some(Err)` when it is Basic but malformed.
pub fn parse_basic(header: &str) -> Option<Result<Credentials, &'static str>> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    Some((|| {
        let raw = STANDARD
            .decode(rest.trim())
            .map_err(|_| "the Basic credentials are not base64")?;
        let text = String::from_utf8(raw).map_err(|_| "the Basic credentials are not UTF-8")?;
        let (u, p) = text
            .split_once(':')
            .ok_or("the Basic credentials have no ':'")?;
        if u.is_empty() || u.len() > MAX_CREDENTIAL_LEN || p.len() > MAX_CREDENTIAL_LEN {
            return Err("the Basic user name or password is empty or too long");
        }
        Ok(Credentials {
            username: u.to_string(),
            password: p.to_string(),
        })
    })())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn basic_headers() {
        let c = parse_basic("Basic ZGV2MTpzM2NyZXQ6eA==").unwrap().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("dev1", "s3cret:x")
        );
        assert!(parse_basic("basic ZGV2MTpwdw==").unwrap().is_ok());
        assert!(parse_basic("Bearer abc").is_none());
        assert!(parse_basic("Basic !!").unwrap().is_err());
        assert!(parse_basic("Basic OnB3").unwrap().is_err(), "empty user");
        assert!(parse_basic("Basic ZGV2MQ==").unwrap().is_err(), "no colon");
        assert!(parse_basic("Basic").is_none(), "no credentials at all");
        assert!(
            !format!("{c:?}").contains("s3cret"),
            "password not in Debug"
        );
    }
}
