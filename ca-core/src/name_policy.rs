//! A tenant's name policy: which names the credentials of one tenant may
//! ever yield. Checked when a request is made (ACME newOrder) and again by
//! the authority before anything is signed.
//!
//! Rules, one list per name kind; an empty list allows no name of that kind:
//!
//! - DNS (`example.com`): the name itself and every name below it, compared
//!   case-insensitively (RFC 4343). A wildcard name (`*.x.example.com`,
//!   RFC 6125 §6.4.3) needs a rule written as a wildcard (`*.example.com`)
//!   whose base is the wildcard's parent or above it.
//! - IP (`10.1.0.0/16`, `2001:db8::/32`): addresses inside the range. An
//!   IPv4-mapped IPv6 address (`::ffff:10.1.2.3`, RFC 4291 §2.5.5.2) is
//!   judged as the IPv4 address it carries, so it cannot slip past a rule
//!   written for IPv4.
//! - URI (`spiffe://td.example/ns/a`): the URI itself or one below it on a
//!   path-segment boundary (`/ns/a/x`, not `/ns/ab`); scheme and host
//!   compare case-insensitively.
//! - Email (`example.com` or `.example.com`): a mailbox at that host, or at
//!   any host below it for the leading-dot form (the rfc822Name convention
//!   of RFC 5280 §4.2.1.10).

use std::fmt;
use std::net::IpAddr;

use crate::names::SubjectName;

/// A parsed name policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamePolicy {
    dns: Vec<DnsRule>,
    ip: Vec<IpRange>,
    uri: Vec<String>,
    email: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct DnsRule {
    base: String,
    wildcard: bool,
}

/// An IP range in CIDR form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Parses `addr/len` (or a bare address, a /32 or /128).
    pub fn parse(s: &str) -> Result<IpRange, String> {
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let network: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP range (addr/len)"))?;
        let network = canonical_ip(network);
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match len {
            None => max,
            Some(l) => l
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: prefix length must be 0..={max}"))?,
        };
        if mask(network, prefix) != network {
            return Err(format!(
                "{s:?}: host bits are set; did you mean {}/{prefix}?",
                mask(network, prefix)
            ));
        }
        Ok(IpRange { network, prefix })
    }

    /// True when `ip` lies inside the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical_ip(ip);
        ip.is_ipv4() == self.network.is_ipv4() && mask(ip, self.prefix) == self.network
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it carries.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((bits & m).into())
        }
    }
}

/// Why a name is outside the policy: the name and the rules it was held to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} is outside the tenant's allowed names ({rule})")]
pub struct PolicyViolation {
    /// The refused name, as displayed (`dns:x.example`).
    pub name: String,
    /// The rules of that kind, or why none applies.
    pub rule: String,
}

fn normalize_dns(s: &str) -> String {
    s.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn dns_within(name: &str, base: &str) -> bool {
    name == base
        || (name.len() > base.len()
            && name.ends_with(base)
            && name.as_bytes()[name.len() - base.len() - 1] == b'.')
}

/// Splits a URI into lowercase `scheme://authority` and the rest.
fn split_uri(u: &str) -> (String, &str) {
    match u.find("://") {
        Some(i) => {
            let after = &u[i + 3..];
            let end = after.find(['/', '?', '#']).unwrap_or(after.len());
            let head = format!("{}://{}", &u[..i], &after[..end]).to_ascii_lowercase();
            (head, &after[end..])
        }
        None => (u.to_ascii_lowercase(), ""),
    }
}

/// Whether `uri` lies under `prefix`: same scheme and authority (case-
/// insensitive), and the path equals the prefix path or continues it at a
/// `/` boundary.
pub(crate) fn uri_within(uri: &str, prefix: &str) -> bool {
    if !prefix.contains("://") {
        // An opaque URI (urn:, tag:): scheme case-insensitive, the rest
        // exact, on a ':' or '/' boundary (`urn:dev:mesh` allows
        // `urn:dev:mesh:sensor-1`, not `urn:dev:meshx`).
        let (Some((us, ur)), Some((ps, pr))) = (uri.split_once(':'), prefix.split_once(':')) else {
            return false;
        };
        if !us.eq_ignore_ascii_case(ps) {
            return false;
        }
        let pr = pr.trim_end_matches([':', '/']);
        return ur == pr
            || (ur.starts_with(pr) && matches!(ur.as_bytes().get(pr.len()), Some(b':' | b'/')));
    }
    let (uh, ur) = split_uri(uri);
    let (ph, pr) = split_uri(prefix);
    if uh != ph {
        return false;
    }
    let pr = pr.trim_end_matches('/');
    ur == pr || (ur.starts_with(pr) && ur.as_bytes().get(pr.len()) == Some(&b'/'))
}

fn email_within(mailbox: &str, rule: &str) -> bool {
    let Some((_, host)) = mailbox.rsplit_once('@') else {
        return false;
    };
    let host = host.to_ascii_lowercase();
    match rule.strip_prefix('.') {
        Some(parent) => host.len() > parent.len() && dns_within(&host, parent) && host != parent,
        None => host == rule,
    }
}

impl NamePolicy {
    /// Parses the four rule lists (see the module docs for their forms).
    pub fn parse(
        dns: &[String],
        ip: &[String],
        uri: &[String],
        email: &[String],
    ) -> Result<NamePolicy, String> {
        let dns = dns
            .iter()
            .map(|d| {
                let (wildcard, base) = match d.trim().strip_prefix("*.") {
                    Some(b) => (true, normalize_dns(b)),
                    None => (false, normalize_dns(d)),
                };
                if base.is_empty() || base.contains('*') || base.contains("..") {
                    return Err(format!("{d:?} is not a DNS suffix"));
                }
                Ok(DnsRule { base, wildcard })
            })
            .collect::<Result<_, _>>()?;
        let ip = ip
            .iter()
            .map(|r| IpRange::parse(r))
            .collect::<Result<_, _>>()?;
        let uri = uri
            .iter()
            .map(|u| {
                let u = u.trim();
                let scheme_ok = u.split_once(':').is_some_and(|(scheme, rest)| {
                    !rest.is_empty()
                        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                        && scheme
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
                });
                if !scheme_ok {
                    return Err(format!("{u:?} is not an absolute URI prefix"));
                }
                Ok(u.to_string())
            })
            .collect::<Result<_, _>>()?;
        let email = email
            .iter()
            .map(|e| {
                let e = e.trim().to_ascii_lowercase();
                if e.is_empty() || e.contains('@') {
                    return Err(format!("{e:?} is not an email domain"));
                }
                Ok(e)
            })
            .collect::<Result<_, _>>()?;
        Ok(NamePolicy {
            dns,
            ip,
            uri,
            email,
        })
    }

    /// Checks one name against the policy.
    pub fn check(&self, name: &SubjectName) -> Result<(), PolicyViolation> {
        let refuse = |rules: Vec<String>, kind: &str| PolicyViolation {
            name: name.to_string(),
            rule: if rules.is_empty() {
                format!("no {kind} names are allowed")
            } else {
                format!("allowed {kind}: {}", rules.join(", "))
            },
        };
        match name {
            SubjectName::Dns(d) => {
                let d = normalize_dns(d);
                let ok = match d.strip_prefix("*.") {
                    Some(parent) => self
                        .dns
                        .iter()
                        .any(|r| r.wildcard && dns_within(parent, &r.base)),
                    None => self.dns.iter().any(|r| dns_within(&d, &r.base)),
                };
                if ok {
                    return Ok(());
                }
                let rules = self
                    .dns
                    .iter()
                    .map(|r| {
                        if r.wildcard {
                            format!("*.{}", r.base)
                        } else {
                            r.base.clone()
                        }
                    })
                    .collect();
                Err(refuse(rules, "DNS"))
            }
            SubjectName::Ip(ip) => {
                if self.ip.iter().any(|r| r.contains(*ip)) {
                    return Ok(());
                }
                Err(refuse(
                    self.ip.iter().map(ToString::to_string).collect(),
                    "IP",
                ))
            }
            SubjectName::Uri(u) => self.check_uri(u),
            SubjectName::Email(m) => self.check_email(m),
        }
    }

    /// Checks URI names (SPIFFE IDs, device URIs) against the URI rules.
    pub fn check_uri(&self, uri: &str) -> Result<(), PolicyViolation> {
        if self.uri.iter().any(|p| uri_within(uri, p)) {
            return Ok(());
        }
        Err(PolicyViolation {
            name: format!("uri:{uri}"),
            rule: if self.uri.is_empty() {
                "no URI names are allowed".into()
            } else {
                format!("allowed URI prefixes: {}", self.uri.join(", "))
            },
        })
    }

    /// Checks a mailbox (rfc822Name) against the email rules.
    pub fn check_email(&self, mailbox: &str) -> Result<(), PolicyViolation> {
        if self.email.iter().any(|r| email_within(mailbox, r)) {
            return Ok(());
        }
        Err(PolicyViolation {
            name: format!("email:{mailbox}"),
            rule: if self.email.is_empty() {
                "no email names are allowed".into()
            } else {
                format!("allowed email domains: {}", self.email.join(", "))
            },
        })
    }

    /// The URI prefixes (what a SPIFFE profile may issue under).
    pub fn uri_prefixes(&self) -> &[String] {
        &self.uri
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn policy() -> NamePolicy {
        NamePolicy::parse(
            &["a.example".into(), "*.wild.example".into()],
            &["10.1.0.0/16".into(), "2001:db8::/32".into()],
            &["spiffe://td.example/ns/a".into()],
            &["example.com".into(), ".corp.example".into()],
        )
        .unwrap()
    }

    fn dns(s: &str) -> SubjectName {
        SubjectName::Dns(s.into())
    }

    fn ip(s: &str) -> SubjectName {
        SubjectName::Ip(s.parse().unwrap())
    }

    #[test]
    fn dns_suffixes_and_wildcards() {
        let p = policy();
        for ok in [
            "a.example",
            "X.A.example",
            "deep.x.a.example",
            "wild.example",
            "h.wild.example.",
        ] {
            assert!(p.check(&dns(ok)).is_ok(), "{ok}");
        }
        for bad in ["b.example", "aa.example", "example", "xa.example"] {
            let e = p.check(&dns(bad)).unwrap_err();
            assert!(e.rule.contains("a.example"), "{e}");
        }
        // Wildcards only under a wildcard rule.
        assert!(p.check(&dns("*.wild.example")).is_ok());
        assert!(p.check(&dns("*.x.wild.example")).is_ok());
        assert!(p.check(&dns("*.a.example")).is_err());
        assert!(p.check(&dns("*.example")).is_err());
    }

    #[test]
    fn ip_ranges_and_mapped_addresses() {
        let p = policy();
        assert!(p.check(&ip("10.1.2.3")).is_ok());
        assert!(p.check(&ip("::ffff:10.1.2.3")).is_ok());
        assert!(p.check(&ip("10.2.0.1")).is_err());
        assert!(p.check(&ip("::ffff:10.2.0.1")).is_err());
        assert!(p.check(&ip("2001:db8::1")).is_ok());
        assert!(p.check(&ip("2001:db9::1")).is_err());
        // A mapped-address rule is an IPv4 rule.
        let q = NamePolicy::parse(&[], &["::ffff:192.0.2.0/120".into()], &[], &[]);
        assert!(q.is_err(), "mapped ranges are written in IPv4 form");
        assert!(IpRange::parse("10.1.0.1/16")
            .unwrap_err()
            .contains("host bits"));
        assert!(IpRange::parse("10.1.0.0/33").is_err());
        assert_eq!(
            IpRange::parse("0.0.0.0/0").unwrap().to_string(),
            "0.0.0.0/0"
        );
        assert!(IpRange::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn uri_prefixes_on_segment_boundaries() {
        let p = policy();
        assert!(p.check_uri("spiffe://td.example/ns/a").is_ok());
        assert!(p.check_uri("spiffe://TD.example/ns/a/svc").is_ok());
        assert!(p.check_uri("spiffe://td.example/ns/ab").is_err());
        assert!(p.check_uri("spiffe://td.example.evil/ns/a").is_err());
        assert!(p.check_uri("spiffe://other/ns/a").is_err());
        let urn = NamePolicy::parse(&[], &[], &["urn:dev:mesh".into()], &[]).unwrap();
        assert!(urn.check_uri("urn:dev:mesh:sensor-1").is_ok());
        assert!(urn.check_uri("URN:dev:mesh").is_ok());
        assert!(urn.check_uri("urn:dev:meshx").is_err());
        assert!(urn.check_uri("urn:dev:other:mesh").is_err());
        assert!(urn.check_uri("tag:dev:mesh").is_err());
    }

    #[test]
    fn email_domains() {
        let p = policy();
        assert!(p.check_email("alice@example.com").is_ok());
        assert!(p.check_email("alice@EXAMPLE.com").is_ok());
        assert!(p.check_email("alice@sub.example.com").is_err());
        assert!(p.check_email("bob@x.corp.example").is_ok());
        assert!(p.check_email("bob@corp.example").is_err());
        assert!(p.check_email("no-at-sign").is_err());
    }

    #[test]
    fn empty_policy_allows_nothing_and_says_so() {
        let p = NamePolicy::default();
        let e = p.check(&dns("a.example")).unwrap_err();
        assert_eq!(e.rule, "no DNS names are allowed");
        assert!(p.check_uri("spiffe://x/y").is_err());
    }

    #[test]
    fn bad_rules_are_refused() {
        assert!(NamePolicy::parse(&["*".into()], &[], &[], &[]).is_err());
        assert!(NamePolicy::parse(&[], &["ten".into()], &[], &[]).is_err());
        assert!(NamePolicy::parse(&[], &[], &["no-scheme".into()], &[]).is_err());
        assert!(NamePolicy::parse(&[], &[], &[], &["a@b".into()]).is_err());
    }
}
