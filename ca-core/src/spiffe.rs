//! SPIFFE IDs (SPIFFE ID specification §2, X.509-SVID specification §2):
//! `spiffe://<trust-domain>/<path>`.

use std::fmt;

/// The URI prefix of every SPIFFE ID.
pub const SPIFFE_SCHEME_PREFIX: &str = "spiffe://";

/// Longest SPIFFE ID accepted, in bytes (SPIFFE ID §2.3: 2048).
pub const MAX_SPIFFE_ID_LEN: usize = 2048;

/// Longest trust domain name accepted, in bytes (SPIFFE ID §2.1: 255).
pub const MAX_TRUST_DOMAIN_LEN: usize = 255;

/// A syntactically valid SPIFFE ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpiffeId {
    id: String,
    trust_domain_len: usize,
}

impl SpiffeId {
    /// Parses and validates `s` per the SPIFFE ID specification §2: scheme
    /// `spiffe` (lowercase), a trust domain of lowercase letters, digits,
    /// `.`, `-` and `_` (so no userinfo `@`, no port `:`, no uppercase), a
    /// path of `/`-separated segments of letters, digits, `.`, `-` and `_`,
    /// none empty, `.` or `..`, no trailing `/`, no query or fragment. A
    /// workload ID needs a path (X.509-SVID §2: the trust domain ID alone
    /// names no workload), so an empty path is refused too.
    pub fn parse(s: &str) -> Result<SpiffeId, String> {
        if s.len() > MAX_SPIFFE_ID_LEN {
            return Err(format!("longer than {MAX_SPIFFE_ID_LEN} bytes"));
        }
        let rest = s
            .strip_prefix(SPIFFE_SCHEME_PREFIX)
            .ok_or("scheme must be spiffe:// (lowercase)")?;
        let (td, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if td.is_empty() {
            return Err("empty trust domain".into());
        }
        if td.len() > MAX_TRUST_DOMAIN_LEN {
            return Err(format!(
                "trust domain longer than {MAX_TRUST_DOMAIN_LEN} bytes"
            ));
        }
        if let Some(c) = td
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_".contains(*c)))
        {
            return Err(match c {
                ':' => "trust domain must not carry a port".into(),
                '@' => "trust domain must not carry userinfo".into(),
                '?' => "a SPIFFE ID must not have a query".into(),
                '#' => "a SPIFFE ID must not have a fragment".into(),
                c if c.is_ascii_uppercase() => "trust domain must be lowercase".into(),
                c => format!("character {c:?} not allowed in the trust domain"),
            });
        }
        if path.is_empty() {
            return Err("a workload SPIFFE ID needs a path".into());
        }
        for seg in path.split('/').skip(1) {
            if seg.is_empty() {
                return Err("empty path segment (or trailing /)".into());
            }
            if seg == "." || seg == ".." {
                return Err("path segments . and .. are not allowed".into());
            }
            if let Some(c) = seg
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || ".-_".contains(*c)))
            {
                return Err(match c {
                    '?' => "a SPIFFE ID must not have a query".into(),
                    '#' => "a SPIFFE ID must not have a fragment".into(),
                    '%' => "percent-encoding is not allowed in a SPIFFE ID".into(),
                    c => format!("character {c:?} not allowed in a path segment"),
                });
            }
        }
        Ok(SpiffeId {
            id: s.to_string(),
            trust_domain_len: td.len(),
        })
    }

    /// The trust domain name.
    pub fn trust_domain(&self) -> &str {
        let start = SPIFFE_SCHEME_PREFIX.len();
        self.id
            .get(start..start + self.trust_domain_len)
            .unwrap_or_default()
    }

    /// The whole ID.
    pub fn as_str(&self) -> &str {
        &self.id
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ids() {
        for ok in [
            "spiffe://example.org/ns/prod/sa/web",
            "spiffe://a-b_c.9/x",
            "spiffe://td/A.b-C_d",
        ] {
            assert!(SpiffeId::parse(ok).is_ok(), "{ok}");
        }
        let id = SpiffeId::parse("spiffe://example.org/w").expect("valid");
        assert_eq!(id.trust_domain(), "example.org");
    }

    #[test]
    fn invalid_ids() {
        for bad in [
            "https://example.org/w",
            "SPIFFE://example.org/w",
            "spiffe://Example.org/w",
            "spiffe://example.org",
            "spiffe://example.org/",
            "spiffe:///w",
            "spiffe://example.org//w",
            "spiffe://example.org/w/",
            "spiffe://example.org/./w",
            "spiffe://example.org/a/..",
            "spiffe://example.org:8443/w",
            "spiffe://user@example.org/w",
            "spiffe://example.org/w?x=1",
            "spiffe://example.org/w#f",
            "spiffe://example.org/w%20x",
            "spiffe://example.org/w x",
        ] {
            assert!(SpiffeId::parse(bad).is_err(), "{bad}");
        }
    }
}
