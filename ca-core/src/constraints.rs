//! Name constraints (RFC 5280 §4.2.1.10), certificate policies
//! (RFC 5280 §4.2.1.4) and path-length enforcement (RFC 5280 §4.2.1.9)
//! for CA hierarchies, checked *before* signing, the way path validation
//! (RFC 5280 §6.1.3 (b)/(c), §6.1.4 (l)/(m)) would check them afterwards.
//!
//! * [`NameConstraints`] / [`GeneralSubtree`] describe what a CA profile
//!   asks for and are encoded into the critical nameConstraints extension.
//! * [`ChainPolicy`] is parsed from the certificates of a chain (issuing CA
//!   first, root last) and answers "may this CA sign a certificate for these
//!   names?" and "may this CA certify another CA?".
//!
//! Matching rules (RFC 5280 §4.2.1.10, with the widely implemented
//! leading-dot convention for dNSName):
//!
//! * dNSName `example.com` matches `example.com` and every name built by
//!   adding labels on the left; `.example.com` matches only the latter; the
//!   empty string matches every DNS name. Comparison is label-wise and
//!   ASCII case-insensitive (RFC 4343).
//! * iPAddress subtrees are an address plus a CIDR mask; an IPv4 name never
//!   matches an IPv6 subtree and vice versa.
//! * rfc822Name: a mailbox (`user@host`, local part case-sensitive), a host
//!   (every mailbox on exactly that host) or `.domain` (every mailbox on a
//!   host below the domain).
//! * uniformResourceIdentifier: a host (exactly that host) or `.domain`
//!   (hosts below the domain), compared with the URI's authority host; a URI
//!   without a DNS host never satisfies (and always violates) a URI
//!   constraint.
//! * A CA's permitted subtrees of one type constrain only names of that
//!   type; a name must be permitted by *every* CA on the chain that has
//!   permitted subtrees of its type, and excluded by *none*.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use der::asn1::{Ia5String, ObjectIdentifier, OctetString};
use der::Encode;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::constraints::name::{
    GeneralSubtree as X509Subtree, NameConstraints as X509NameConstraints,
};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, CertificatePolicies};

use crate::cert::parse;
use crate::error::CaError;
use crate::names::SubjectName;

/// id-ce-nameConstraints (RFC 5280 §4.2.1.10) as rcgen wants it.
pub(crate) const OID_NAME_CONSTRAINTS_ARCS: &[u64] = &[2, 5, 29, 30];
/// id-ce-certificatePolicies (RFC 5280 §4.2.1.4) as rcgen wants it.
pub(crate) const OID_CERTIFICATE_POLICIES_ARCS: &[u64] = &[2, 5, 29, 32];
/// anyPolicy (RFC 5280 §4.2.1.4).
pub const ANY_POLICY: &str = "2.5.29.32.0";

fn bad_request(m: impl fmt::Display) -> CaError {
    CaError::InvalidRequest(m.to_string())
}

fn bad_cert(m: impl fmt::Display) -> CaError {
    CaError::InvalidCertificate(m.to_string())
}

// ---------------------------------------------------------------------------
// Subtrees
// ---------------------------------------------------------------------------

/// One `GeneralSubtree` base (RFC 5280 §4.2.1.10). `minimum` is always 0
/// and `maximum` absent, as RFC 5280 requires of conforming CAs.
///
/// Text form (used by `Display`, `FromStr` and serde): `dns:example.com`,
/// `dns:.example.com`, `ip:10.0.0.0/8`, `ip:2001:db8::/32`,
/// `email:user@example.com`, `email:example.com`, `email:.example.com`,
/// `uri:host.example.com`, `uri:.example.com`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GeneralSubtree {
    /// dNSName: `example.com` (the name and its subdomains),
    /// `.example.com` (subdomains only) or `""` (every DNS name).
    Dns(String),
    /// iPAddress: a network address and its prefix length (0..=32 for
    /// IPv4, 0..=128 for IPv6), encoded as address‖mask (8 or 32 octets).
    Ip(IpAddr, u8),
    /// rfc822Name: `user@host`, `host` or `.domain`.
    Email(String),
    /// uniformResourceIdentifier: `host` or `.domain`.
    Uri(String),
}

/// The name types a subtree (or a name) can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dns,
    Ip,
    Email,
    Uri,
}

impl GeneralSubtree {
    fn kind(&self) -> Kind {
        match self {
            GeneralSubtree::Dns(_) => Kind::Dns,
            GeneralSubtree::Ip(..) => Kind::Ip,
            GeneralSubtree::Email(_) => Kind::Email,
            GeneralSubtree::Uri(_) => Kind::Uri,
        }
    }

    /// Checks that this subtree is something ironseal is willing to put in
    /// a certificate: ASCII LDH labels, no trailing dot, no wildcard, no
    /// leading dot on a dNSName (RFC 5280 defines that form only for
    /// rfc822Name and URI; `.example.com` dNSName subtrees are still
    /// *matched* when found in parsed certificates); IP prefixes in range
    /// with no host bits set.
    pub fn validate(&self) -> Result<(), CaError> {
        match self {
            GeneralSubtree::Dns(d) => {
                if d.is_empty() {
                    return Ok(());
                }
                if let Some(rest) = d.strip_prefix('.') {
                    // RFC 5280 §4.2.1.10 defines the leading-dot form for
                    // rfc822Name and URI only; for dNSName it is an
                    // OpenSSL/Go extension that pkilint reports as
                    // pkix.invalid_domain_name_syntax (ERROR). We match it
                    // in certificates we parse, but never emit it.
                    return Err(bad_request(format!(
                        "dns subtree {d:?}: RFC 5280 has no leading-dot form for dNSName \
                         (use {:?}, which also covers the name itself)",
                        rest
                    )));
                }
                check_domain(d).map_err(|why| bad_request(format!("dns subtree {d:?}: {why}")))
            }
            GeneralSubtree::Ip(ip, prefix) => {
                let max = if ip.is_ipv4() { 32 } else { 128 };
                if *prefix > max {
                    return Err(bad_request(format!(
                        "ip subtree {ip}/{prefix}: prefix longer than {max}"
                    )));
                }
                if mask_ip(*ip, *prefix) != *ip {
                    return Err(bad_request(format!(
                        "ip subtree {ip}/{prefix}: host bits are set"
                    )));
                }
                Ok(())
            }
            GeneralSubtree::Email(e) => {
                let why = |w: &str| bad_request(format!("email subtree {e:?}: {w}"));
                if let Some((local, host)) = e.rsplit_once('@') {
                    if local.is_empty()
                        || !local
                            .bytes()
                            .all(|b| b.is_ascii_graphic() && b != b'@' && b != b'"')
                    {
                        return Err(why("bad local part"));
                    }
                    check_domain(host).map_err(|w| why(&w))
                } else {
                    check_domain(e.strip_prefix('.').unwrap_or(e)).map_err(|w| why(&w))
                }
            }
            GeneralSubtree::Uri(u) => check_domain(u.strip_prefix('.').unwrap_or(u))
                .map_err(|w| bad_request(format!("uri subtree {u:?}: {w} (a host or .domain)"))),
        }
    }

    /// The X.509 `GeneralSubtree` (RFC 5280 §4.2.1.10).
    fn to_x509(&self) -> Result<X509Subtree, CaError> {
        let ia5 = |s: &str| Ia5String::new(s).map_err(bad_request);
        let base = match self {
            GeneralSubtree::Dns(d) => GeneralName::DnsName(ia5(d)?),
            GeneralSubtree::Email(e) => GeneralName::Rfc822Name(ia5(e)?),
            GeneralSubtree::Uri(u) => GeneralName::UniformResourceIdentifier(ia5(u)?),
            GeneralSubtree::Ip(ip, prefix) => {
                let mut bytes = ip_octets(*ip);
                bytes.extend(prefix_mask(bytes.len(), *prefix));
                GeneralName::IpAddress(OctetString::new(bytes).map_err(bad_request)?)
            }
        };
        Ok(X509Subtree {
            base,
            minimum: 0,
            maximum: None,
        })
    }

    /// Whether `name` lies in this subtree (RFC 5280 §4.2.1.10). Names of
    /// another type never match.
    pub fn matches(&self, name: &ConstrainedName) -> bool {
        self.matches_inner(name, false)
    }

    /// `excluded` makes foreign (parsed) bases match more, never less: a
    /// trailing dot on an excluded dNSName base is ignored.
    fn matches_inner(&self, name: &ConstrainedName, excluded: bool) -> bool {
        match (self, name) {
            (GeneralSubtree::Dns(base), ConstrainedName::Dns(n)) => dns_matches(base, n, excluded),
            (GeneralSubtree::Ip(base, prefix), ConstrainedName::Ip(ip)) => {
                same_family(*base, *ip) && mask_ip(*ip, *prefix) == mask_ip(*base, *prefix)
            }
            (GeneralSubtree::Email(base), ConstrainedName::Email(m)) => email_matches(base, m),
            (GeneralSubtree::Uri(base), ConstrainedName::Uri(u)) => {
                uri_host(u).is_some_and(|h| host_matches(base, &h))
            }
            _ => false,
        }
    }

    /// Whether every name in `self` also lies in `other` (subtree
    /// containment; different types are never contained).
    pub fn is_within(&self, other: &GeneralSubtree) -> bool {
        match (self, other) {
            (GeneralSubtree::Dns(c), GeneralSubtree::Dns(p)) => {
                let (c_sub, cd) = split_dot(c);
                let (p_sub, pd) = split_dot(p);
                if pd.is_empty() && !p_sub {
                    return true;
                }
                if cd.is_empty() {
                    return false;
                }
                if p_sub && !c_sub {
                    is_strict_subdomain(&cd, &pd)
                } else {
                    is_subdomain_or_equal(&cd, &pd)
                }
            }
            (GeneralSubtree::Ip(c, cp), GeneralSubtree::Ip(p, pp)) => {
                same_family(*c, *p) && cp >= pp && mask_ip(*c, *pp) == mask_ip(*p, *pp)
            }
            (GeneralSubtree::Email(c), GeneralSubtree::Email(p)) => {
                if c.contains('@') {
                    return email_matches(p, c);
                }
                if p.contains('@') {
                    return false;
                }
                host_within(c, p)
            }
            (GeneralSubtree::Uri(c), GeneralSubtree::Uri(p)) => host_within(c, p),
            _ => false,
        }
    }
}

/// Host-or-`.domain` containment shared by rfc822Name host forms and URI
/// subtrees.
fn host_within(c: &str, p: &str) -> bool {
    let (c_sub, cd) = split_dot(c);
    let (p_sub, pd) = split_dot(p);
    match (c_sub, p_sub) {
        (false, false) => cd == pd,
        (false, true) => is_strict_subdomain(&cd, &pd),
        (true, true) => is_subdomain_or_equal(&cd, &pd),
        (true, false) => false,
    }
}

impl fmt::Display for GeneralSubtree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GeneralSubtree::Dns(d) => write!(f, "dns:{d}"),
            GeneralSubtree::Ip(ip, p) => write!(f, "ip:{ip}/{p}"),
            GeneralSubtree::Email(e) => write!(f, "email:{e}"),
            GeneralSubtree::Uri(u) => write!(f, "uri:{u}"),
        }
    }
}

impl FromStr for GeneralSubtree {
    type Err = CaError;

    /// Parses the text form (see the type docs) and validates it.
    fn from_str(s: &str) -> Result<Self, CaError> {
        let (kind, rest) = s
            .split_once(':')
            .ok_or_else(|| bad_request(format!("subtree {s:?}: expected <type>:<value>")))?;
        let t = match kind.to_ascii_lowercase().as_str() {
            "dns" => GeneralSubtree::Dns(rest.to_string()),
            "email" => GeneralSubtree::Email(rest.to_string()),
            "uri" => GeneralSubtree::Uri(rest.to_string()),
            "ip" => {
                let (addr, prefix) = rest.rsplit_once('/').ok_or_else(|| {
                    bad_request(format!("ip subtree {rest:?}: expected addr/len"))
                })?;
                let ip = addr
                    .parse::<IpAddr>()
                    .map_err(|e| bad_request(format!("ip subtree {rest:?}: {e}")))?;
                let prefix = prefix
                    .parse::<u8>()
                    .map_err(|e| bad_request(format!("ip subtree {rest:?}: {e}")))?;
                GeneralSubtree::Ip(ip, prefix)
            }
            other => return Err(bad_request(format!("unknown subtree type {other:?}"))),
        };
        t.validate()?;
        Ok(t)
    }
}

impl Serialize for GeneralSubtree {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GeneralSubtree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A name to test against constraints: the SubjectName forms plus the
/// rfc822Name and URI forms (RFC 5280 §4.2.1.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConstrainedName {
    /// A dNSName.
    Dns(String),
    /// An iPAddress.
    Ip(IpAddr),
    /// An rfc822Name mailbox, `local@host`.
    Email(String),
    /// A uniformResourceIdentifier.
    Uri(String),
}

impl ConstrainedName {
    fn kind(&self) -> Kind {
        match self {
            ConstrainedName::Dns(_) => Kind::Dns,
            ConstrainedName::Ip(_) => Kind::Ip,
            ConstrainedName::Email(_) => Kind::Email,
            ConstrainedName::Uri(_) => Kind::Uri,
        }
    }
}

impl From<&SubjectName> for ConstrainedName {
    fn from(n: &SubjectName) -> Self {
        match n {
            SubjectName::Dns(d) => ConstrainedName::Dns(d.clone()),
            SubjectName::Ip(ip) => ConstrainedName::Ip(*ip),
            SubjectName::Uri(u) => ConstrainedName::Uri(u.clone()),
            SubjectName::Email(m) => ConstrainedName::Email(m.clone()),
        }
    }
}

impl fmt::Display for ConstrainedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConstrainedName::Dns(d) => write!(f, "dns:{d}"),
            ConstrainedName::Ip(ip) => write!(f, "ip:{ip}"),
            ConstrainedName::Email(e) => write!(f, "email:{e}"),
            ConstrainedName::Uri(u) => write!(f, "uri:{u}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Matching helpers
// ---------------------------------------------------------------------------

fn check_domain(d: &str) -> Result<(), String> {
    if d.is_empty() {
        return Err("empty domain".into());
    }
    if d.len() > 253 {
        return Err("longer than 253 octets".into());
    }
    for label in d.split('.') {
        if label.is_empty() {
            return Err("empty label (leading, trailing or doubled dot)".into());
        }
        if label.len() > 63 {
            return Err("label longer than 63 octets".into());
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(format!("label {label:?} is not LDH (use A-labels)"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label {label:?} starts or ends with a hyphen"));
        }
    }
    Ok(())
}

/// `(leading_dot, lowercased_rest)`.
fn split_dot(s: &str) -> (bool, String) {
    match s.strip_prefix('.') {
        Some(rest) => (true, rest.to_ascii_lowercase()),
        None => (false, s.to_ascii_lowercase()),
    }
}

/// Label-wise, case-insensitive: `name` == `domain` or ends with `.domain`
/// on a label boundary.
fn is_subdomain_or_equal(name: &str, domain: &str) -> bool {
    labels_suffix(name, domain).is_some()
}

fn is_strict_subdomain(name: &str, domain: &str) -> bool {
    labels_suffix(name, domain).is_some_and(|extra| extra > 0)
}

/// If `domain`'s labels are a suffix of `name`'s, how many labels `name`
/// has in front of them.
fn labels_suffix(name: &str, domain: &str) -> Option<usize> {
    if domain.is_empty() {
        return Some(name.split('.').count());
    }
    let n: Vec<&str> = name.split('.').collect();
    let d: Vec<&str> = domain.split('.').collect();
    if d.len() > n.len() {
        return None;
    }
    let extra = n.len() - d.len();
    n[extra..]
        .iter()
        .zip(&d)
        .all(|(a, b)| a.eq_ignore_ascii_case(b))
        .then_some(extra)
}

fn dns_matches(base: &str, name: &str, excluded: bool) -> bool {
    let (sub_only, mut base) = split_dot(base);
    if excluded {
        if let Some(b) = base.strip_suffix('.') {
            base = b.to_string();
        }
    }
    if base.is_empty() {
        // "" matches every DNS name; "." is treated the same way.
        return true;
    }
    match labels_suffix(name, &base) {
        Some(extra) => !sub_only || extra > 0,
        None => false,
    }
}

fn email_matches(base: &str, mailbox: &str) -> bool {
    let Some((local, host)) = mailbox.rsplit_once('@') else {
        return false;
    };
    if let Some((b_local, b_host)) = base.rsplit_once('@') {
        return local == b_local && host.eq_ignore_ascii_case(b_host);
    }
    host_matches(base, host)
}

/// `base` is `host` (exact) or `.domain` (strictly below).
fn host_matches(base: &str, host: &str) -> bool {
    let (sub_only, b) = split_dot(base);
    if sub_only {
        is_strict_subdomain(host, &b)
    } else {
        host.eq_ignore_ascii_case(&b)
    }
}

/// The DNS host of a URI's authority (RFC 3986 §3.2.2), or `None` if there
/// is no authority or the host is an IP literal (RFC 5280 §4.2.1.10: such
/// URIs must be rejected when URI constraints are present).
fn uri_host(uri: &str) -> Option<String> {
    let (_, rest) = uri.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if hostport.starts_with('[') {
        return None;
    }
    let host = match hostport.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        Some(_) => return None,
        None => hostport,
    };
    if host.is_empty() || host.parse::<IpAddr>().is_ok() {
        return None;
    }
    Some(host.to_ascii_lowercase())
}

/// The IPv4 address an IPv4-mapped (`::ffff:a.b.c.d`) or IPv4-compatible
/// (`::a.b.c.d`, deprecated; not `::` or `::1`) IPv6 address carries.
pub fn embedded_ipv4(v6: &std::net::Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    if s[..6] == [0; 6] && (s[6] != 0 || s[7] > 1) {
        let o = v6.octets();
        return Some(std::net::Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    None
}

fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

fn ip_octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

fn prefix_mask(len: usize, prefix: u8) -> Vec<u8> {
    let mut left = usize::from(prefix);
    (0..len)
        .map(|_| {
            let take = left.min(8);
            left -= take;
            if take == 0 {
                0
            } else {
                0xffu8 << (8 - take)
            }
        })
        .collect()
}

fn mask_ip(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v) => {
            let m = prefix_mask(4, prefix);
            let mut o = v.octets();
            o.iter_mut().zip(&m).for_each(|(a, b)| *a &= b);
            IpAddr::from(o)
        }
        IpAddr::V6(v) => {
            let m = prefix_mask(16, prefix);
            let mut o = v.octets();
            o.iter_mut().zip(&m).for_each(|(a, b)| *a &= b);
            IpAddr::from(o)
        }
    }
}

/// The prefix length of a contiguous mask, or `None`.
fn mask_prefix(mask: &[u8]) -> Option<u8> {
    let mut prefix = 0u32;
    let mut ended = false;
    for b in mask {
        let ones = b.leading_ones();
        if ended && *b != 0 {
            return None;
        }
        if ones < 8 {
            if b.checked_shl(ones).is_some_and(|rest| rest != 0) {
                return None;
            }
            ended = true;
        }
        prefix += ones;
    }
    u8::try_from(prefix).ok()
}

// ---------------------------------------------------------------------------
// NameConstraints and policies as extensions
// ---------------------------------------------------------------------------

/// The nameConstraints of a CA profile (RFC 5280 §4.2.1.10). Empty = no
/// extension.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NameConstraints {
    /// permittedSubtrees.
    #[serde(default)]
    pub permitted: Vec<GeneralSubtree>,
    /// excludedSubtrees.
    #[serde(default)]
    pub excluded: Vec<GeneralSubtree>,
}

impl NameConstraints {
    /// No subtrees at all (the extension is then omitted).
    pub fn is_empty(&self) -> bool {
        self.permitted.is_empty() && self.excluded.is_empty()
    }

    /// Validates every subtree ([`GeneralSubtree::validate`]).
    pub fn validate(&self) -> Result<(), CaError> {
        self.permitted
            .iter()
            .chain(&self.excluded)
            .try_for_each(GeneralSubtree::validate)
    }

    /// The DER of the extension value (`NameConstraints`, RFC 5280
    /// §4.2.1.10); empty lists are omitted, never encoded as empty
    /// SEQUENCEs.
    pub fn to_der(&self) -> Result<Vec<u8>, CaError> {
        let conv = |v: &[GeneralSubtree]| -> Result<Option<Vec<X509Subtree>>, CaError> {
            if v.is_empty() {
                return Ok(None);
            }
            v.iter()
                .map(GeneralSubtree::to_x509)
                .collect::<Result<_, _>>()
                .map(Some)
        };
        X509NameConstraints {
            permitted_subtrees: conv(&self.permitted)?,
            excluded_subtrees: conv(&self.excluded)?,
        }
        .to_der()
        .map_err(|e| CaError::Encoding(e.to_string()))
    }

    /// Parses a certificate's extension. Subtrees of forms we do not model
    /// are reported in the second element: directoryName (it constrains
    /// the subject DN of everything below) and any subtree with a non-zero
    /// minimum or a maximum. Other forms (otherName, registeredID, …) are
    /// dropped: ironseal never issues names of those types.
    fn from_x509(nc: &X509NameConstraints) -> Result<(Self, Vec<String>), CaError> {
        let mut unsupported = Vec::new();
        let mut conv = |v: &Option<Vec<X509Subtree>>| -> Result<Vec<GeneralSubtree>, CaError> {
            let mut out = Vec::new();
            for s in v.iter().flatten() {
                if s.minimum != 0 || s.maximum.is_some() {
                    unsupported.push("a subtree with minimum/maximum".to_string());
                    continue;
                }
                match &s.base {
                    GeneralName::DnsName(d) => out.push(GeneralSubtree::Dns(d.to_string())),
                    GeneralName::Rfc822Name(e) => out.push(GeneralSubtree::Email(e.to_string())),
                    GeneralName::UniformResourceIdentifier(u) => {
                        out.push(GeneralSubtree::Uri(u.to_string()))
                    }
                    GeneralName::IpAddress(o) => {
                        let b = o.as_bytes();
                        let (ip, mask): (IpAddr, &[u8]) = match b.len() {
                            8 => {
                                let mut a = [0u8; 4];
                                a.copy_from_slice(&b[..4]);
                                (IpAddr::from(a), &b[4..])
                            }
                            32 => {
                                let mut a = [0u8; 16];
                                a.copy_from_slice(&b[..16]);
                                (IpAddr::from(a), &b[16..])
                            }
                            n => return Err(bad_cert(format!("iPAddress subtree of {n} octets"))),
                        };
                        let prefix = mask_prefix(mask)
                            .ok_or_else(|| bad_cert("non-contiguous iPAddress subtree mask"))?;
                        out.push(GeneralSubtree::Ip(mask_ip(ip, prefix), prefix));
                    }
                    GeneralName::DirectoryName(_) => {
                        unsupported.push("a directoryName subtree".to_string())
                    }
                    _ => {}
                }
            }
            Ok(out)
        };
        let permitted = conv(&nc.permitted_subtrees)?;
        let excluded = conv(&nc.excluded_subtrees)?;
        Ok((
            NameConstraints {
                permitted,
                excluded,
            },
            unsupported,
        ))
    }
}

/// Validates dotted policy OIDs and encodes the certificatePolicies
/// extension value (RFC 5280 §4.2.1.4): one PolicyInformation per OID,
/// no qualifiers; duplicates are refused ("A certificate policy OID MUST
/// NOT appear more than once").
pub fn encode_policies(policies: &[String]) -> Result<Vec<u8>, CaError> {
    let mut infos: Vec<PolicyInformation> = Vec::new();
    for p in policies {
        let oid =
            ObjectIdentifier::new(p).map_err(|e| bad_request(format!("policy OID {p:?}: {e}")))?;
        if infos.iter().any(|i| i.policy_identifier == oid) {
            return Err(bad_request(format!("policy OID {p} listed twice")));
        }
        infos.push(PolicyInformation {
            policy_identifier: oid,
            policy_qualifiers: None,
        });
    }
    if infos.is_empty() {
        return Err(bad_request("certificatePolicies needs at least one OID"));
    }
    CertificatePolicies(infos)
        .to_der()
        .map_err(|e| CaError::Encoding(e.to_string()))
}

// ---------------------------------------------------------------------------
// ChainPolicy
// ---------------------------------------------------------------------------

/// What one CA certificate of a chain imposes on what is issued below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaConstraints {
    /// The CA's subject (RFC 4514 string), for error messages.
    pub subject: String,
    /// Whether the certificate is self-issued (issuer = subject, RFC 5280
    /// §3.2); self-issued intermediates do not count toward pathLen.
    pub self_issued: bool,
    /// basicConstraints pathLenConstraint (RFC 5280 §4.2.1.9).
    pub path_len: Option<u8>,
    /// The nameConstraints we can evaluate (RFC 5280 §4.2.1.10).
    pub name_constraints: NameConstraints,
    /// Constraint forms present that we cannot evaluate; any one of them
    /// makes every check through this CA fail closed.
    pub unsupported: Vec<String>,
    /// certificatePolicies OIDs, dotted (RFC 5280 §4.2.1.4).
    pub policies: Vec<String>,
}

/// The constraints of a whole chain, issuing CA first, root last: what
/// RFC 5280 §6.1 path validation will enforce on anything this CA signs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChainPolicy {
    cas: Vec<CaConstraints>,
}

fn violation(name: impl fmt::Display, reason: impl Into<String>) -> CaError {
    CaError::NameConstraintViolation {
        name: name.to_string(),
        reason: reason.into(),
    }
}

fn list(v: &[&GeneralSubtree]) -> String {
    v.iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl ChainPolicy {
    /// Parses the chain `chain[0]` = the CA that will sign (issuing CA),
    /// `chain[1]` = its issuer, …, last = the root (or the highest CA the
    /// caller trusts). Checks that each certificate is a CA and was issued
    /// by the next (issuer name = next subject, RFC 5280 §6.1.3 (a)(4)),
    /// and that the chain itself respects every pathLenConstraint
    /// (RFC 5280 §6.1.4 (l)/(m)); else [`CaError::PathLenExceeded`].
    pub fn from_chain<D: AsRef<[u8]>>(chain: &[D]) -> Result<ChainPolicy, CaError> {
        if chain.is_empty() {
            return Err(CaError::InvalidIssuer("empty chain".into()));
        }
        let mut cas = Vec::with_capacity(chain.len());
        let mut names = Vec::with_capacity(chain.len());
        for der in chain {
            let cert = parse(der.as_ref())?;
            let tbs = cert.tbs_certificate();
            let bc = tbs
                .get_extension::<BasicConstraints>()
                .map_err(bad_cert)?
                .map(|(_, b)| b);
            let path_len = match bc {
                Some(b) if b.ca => b.path_len_constraint,
                _ => {
                    return Err(CaError::InvalidIssuer(format!(
                        "{} is not a CA (basicConstraints)",
                        tbs.subject()
                    )))
                }
            };
            let (name_constraints, unsupported) = match tbs
                .get_extension::<X509NameConstraints>()
                .map_err(bad_cert)?
            {
                Some((_, nc)) => NameConstraints::from_x509(&nc)?,
                None => (NameConstraints::default(), Vec::new()),
            };
            let policies = tbs
                .get_extension::<CertificatePolicies>()
                .map_err(bad_cert)?
                .map(|(_, p)| {
                    p.0.iter()
                        .map(|i| i.policy_identifier.to_string())
                        .collect()
                })
                .unwrap_or_default();
            let subject_der = tbs.subject().to_der().map_err(bad_cert)?;
            let issuer_der = tbs.issuer().to_der().map_err(bad_cert)?;
            cas.push(CaConstraints {
                subject: tbs.subject().to_string(),
                self_issued: subject_der == issuer_der,
                path_len,
                name_constraints,
                unsupported,
                policies,
            });
            names.push((subject_der, issuer_der));
        }
        for (i, pair) in names.windows(2).enumerate() {
            if pair[0].1 != pair[1].0 {
                return Err(CaError::InvalidIssuer(format!(
                    "chain[{i}] ({}) was not issued by chain[{}] ({})",
                    cas[i].subject,
                    i + 1,
                    cas[i + 1].subject
                )));
            }
        }
        let policy = ChainPolicy { cas };
        for (i, ca) in policy.cas.iter().enumerate() {
            if let Some(p) = ca.path_len {
                let below = policy.intermediates_below(i);
                if below > u32::from(p) {
                    return Err(CaError::PathLenExceeded {
                        ca: ca.subject.clone(),
                        path_len: p,
                        reason: format!("the chain already has {below} CA certificates below it"),
                    });
                }
            }
        }
        Ok(policy)
    }

    /// The CAs of the chain, issuing CA first.
    pub fn cas(&self) -> &[CaConstraints] {
        &self.cas
    }

    /// Non-self-issued intermediates between `cas[i]` and a new certificate
    /// signed by `cas[0]` (that new certificate not counted).
    fn intermediates_below(&self, i: usize) -> u32 {
        let n = self.cas[..i].iter().filter(|c| !c.self_issued).count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    fn check_unsupported(&self, what: &dyn fmt::Display) -> Result<(), CaError> {
        for ca in &self.cas {
            if let Some(u) = ca.unsupported.first() {
                return Err(violation(
                    what,
                    format!(
                        "{} has {u} in its nameConstraints, which ironseal cannot evaluate; \
                         refusing to issue (fail closed)",
                        ca.subject
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks one name against every CA: excluded by none, permitted by
    /// every CA that has permitted subtrees of the name's type
    /// (RFC 5280 §6.1.3 (b), (c)).
    pub fn check_name(&self, name: &ConstrainedName) -> Result<(), CaError> {
        self.check_unsupported(name)?;
        let kind = name.kind();
        let any_of_kind = self.cas.iter().any(|ca| {
            let nc = &ca.name_constraints;
            nc.permitted
                .iter()
                .chain(&nc.excluded)
                .any(|s| s.kind() == kind)
        });
        if !any_of_kind {
            return Ok(());
        }
        if let ConstrainedName::Dns(d) = name {
            let body = d.strip_prefix("*.").unwrap_or(d);
            if let Err(why) = check_domain(body) {
                return Err(violation(
                    name,
                    format!("not a DNS name that can be checked against name constraints: {why}"),
                ));
            }
        }
        for ca in &self.cas {
            for ex in ca
                .name_constraints
                .excluded
                .iter()
                .filter(|s| s.kind() == kind)
            {
                if ex.matches_inner(name, true) {
                    return Err(violation(
                        name,
                        format!("excluded by {ex} in the nameConstraints of {}", ca.subject),
                    ));
                }
                if let ConstrainedName::Uri(u) = name {
                    if uri_host(u).is_none() {
                        return Err(violation(
                            name,
                            format!(
                                "URI without a DNS host under the URI constraints of {}",
                                ca.subject
                            ),
                        ));
                    }
                }
                // A wildcard covers one more label: *.example.com covers
                // bad.example.com even though the string does not match.
                if let (ConstrainedName::Dns(d), GeneralSubtree::Dns(base)) = (name, ex) {
                    if let Some(parent) = d.strip_prefix("*.") {
                        let (_, b) = split_dot(base);
                        let b = b.strip_suffix('.').unwrap_or(&b);
                        if labels_suffix(b, parent) == Some(1) {
                            return Err(violation(
                                name,
                                format!(
                                    "the wildcard covers {b}, excluded by {ex} in the \
                                     nameConstraints of {}",
                                    ca.subject
                                ),
                            ));
                        }
                    }
                }
            }
        }
        for ca in &self.cas {
            let permitted: Vec<&GeneralSubtree> = ca
                .name_constraints
                .permitted
                .iter()
                .filter(|s| s.kind() == kind)
                .collect();
            if !permitted.is_empty() && !permitted.iter().any(|p| p.matches(name)) {
                return Err(violation(
                    name,
                    format!(
                        "not within the permitted subtrees of {} ({})",
                        ca.subject,
                        list(&permitted)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// [`ChainPolicy::check_name`] for every name a leaf will carry.
    ///
    /// An IPv4-mapped or IPv4-compatible IPv6 address (`::ffff:10.1.2.3`,
    /// RFC 4291 §2.5.5) is refused: subtrees of one family do not match the
    /// other, so such a name would escape excluded IPv4 subtrees.
    pub fn check_names(&self, names: &[SubjectName]) -> Result<(), CaError> {
        for n in names {
            if let SubjectName::Ip(IpAddr::V6(v6)) = n {
                if let Some(v4) = embedded_ipv4(v6) {
                    return Err(CaError::NameConstraintViolation {
                        name: format!("ip:{v6}"),
                        reason: format!("an IPv4 address in IPv6 form; ask for {v4}"),
                    });
                }
            }
            self.check_name(&ConstrainedName::from(n))?;
        }
        Ok(())
    }

    /// Checks that `cas[0]` may certify a new CA whose basicConstraints
    /// pathLenConstraint is `new_path_len` and whose nameConstraints are
    /// `new_nc` (RFC 5280 §4.2.1.9, §6.1.4 (l)/(m)):
    ///
    /// * every ancestor's pathLenConstraint leaves room for one more
    ///   intermediate, and `new_path_len` is at most what remains
    ///   (`None` is refused when anything is constrained);
    /// * every permitted subtree of the new CA lies inside the permitted
    ///   subtrees (of that type) of every CA on the chain, and none is
    ///   wholly inside an excluded subtree: such a CA could never issue
    ///   under that subtree.
    pub fn check_new_ca(
        &self,
        new_path_len: Option<u8>,
        new_nc: &NameConstraints,
    ) -> Result<(), CaError> {
        let mut remaining: Option<(u32, &CaConstraints)> = None;
        for (i, ca) in self.cas.iter().enumerate() {
            let Some(p) = ca.path_len else { continue };
            let needed = self.intermediates_below(i) + 1;
            if needed > u32::from(p) {
                return Err(CaError::PathLenExceeded {
                    ca: ca.subject.clone(),
                    path_len: p,
                    reason: format!("a new CA here would be intermediate number {needed} below it"),
                });
            }
            let left = u32::from(p) - needed;
            if remaining.is_none_or(|(r, _)| left < r) {
                remaining = Some((left, ca));
            }
        }
        if let Some((left, ca)) = remaining {
            let ok = new_path_len.is_some_and(|n| u32::from(n) <= left);
            if !ok {
                let asked = new_path_len.map_or("unlimited".to_string(), |n| n.to_string());
                return Err(CaError::PathLenExceeded {
                    ca: ca.subject.clone(),
                    path_len: ca.path_len.unwrap_or(0),
                    reason: format!(
                        "the new CA asks for pathLenConstraint {asked}, at most {left} is allowed"
                    ),
                });
            }
        }
        for sub in &new_nc.permitted {
            self.check_unsupported(sub)?;
            for ca in &self.cas {
                let nc = &ca.name_constraints;
                if let Some(ex) = nc.excluded.iter().find(|e| sub.is_within(e)) {
                    return Err(violation(
                        sub,
                        format!(
                            "permitted subtree lies wholly inside {ex}, excluded by {}",
                            ca.subject
                        ),
                    ));
                }
                let permitted: Vec<&GeneralSubtree> = nc
                    .permitted
                    .iter()
                    .filter(|p| p.kind() == sub.kind())
                    .collect();
                if !permitted.is_empty() && !permitted.iter().any(|p| sub.is_within(p)) {
                    return Err(violation(
                        sub,
                        format!(
                            "permitted subtree is not inside the permitted subtrees of {} ({})",
                            ca.subject,
                            list(&permitted)
                        ),
                    ));
                }
            }
        }
        if !self.cas.is_empty() {
            self.check_unsupported(&"the new CA's subject")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dns(s: &str) -> GeneralSubtree {
        GeneralSubtree::Dns(s.into())
    }
    fn n_dns(s: &str) -> ConstrainedName {
        ConstrainedName::Dns(s.into())
    }
    fn ip(s: &str) -> GeneralSubtree {
        let (a, p) = s.split_once('/').expect("cidr");
        GeneralSubtree::Ip(a.parse().expect("ip"), p.parse().expect("len"))
    }
    fn n_ip(s: &str) -> ConstrainedName {
        ConstrainedName::Ip(s.parse().expect("ip"))
    }
    fn policy(cas: Vec<(Option<u8>, NameConstraints)>) -> ChainPolicy {
        ChainPolicy {
            cas: cas
                .into_iter()
                .enumerate()
                .map(|(i, (path_len, nc))| CaConstraints {
                    subject: format!("CN=ca{i}"),
                    self_issued: false,
                    path_len,
                    name_constraints: nc,
                    unsupported: Vec::new(),
                    policies: Vec::new(),
                })
                .collect(),
        }
    }
    fn nc(permitted: &[GeneralSubtree], excluded: &[GeneralSubtree]) -> NameConstraints {
        NameConstraints {
            permitted: permitted.to_vec(),
            excluded: excluded.to_vec(),
        }
    }

    #[test]
    fn dns_rules() {
        let t = dns("example.com");
        assert!(t.matches(&n_dns("example.com")));
        assert!(t.matches(&n_dns("a.b.example.com")));
        assert!(t.matches(&n_dns("A.Example.COM")));
        assert!(!t.matches(&n_dns("badexample.com")));
        assert!(!t.matches(&n_dns("example.com.evil")));
        assert!(!t.matches(&n_dns("com")));
        let sub = dns(".example.com");
        assert!(!sub.matches(&n_dns("example.com")));
        assert!(sub.matches(&n_dns("x.EXAMPLE.com")));
        assert!(dns("").matches(&n_dns("anything.test")));
        assert!(dns("EXAMPLE.com").matches(&n_dns("www.example.com")));
        // types never cross
        assert!(!t.matches(&n_ip("10.0.0.1")));
        // a trailing dot on the base: literal for permitted ...
        let dotted = dns("example.com.");
        assert!(!dotted.matches(&n_dns("a.example.com")));
        // ... but ignored for excluded (conservative)
        assert!(dotted.matches_inner(&n_dns("a.example.com"), true));
    }

    #[test]
    fn trailing_dot_and_bad_names_are_refused_under_dns_constraints() {
        let p = policy(vec![(
            None,
            nc(&[dns("example.com")], &[dns("bad.example.com")]),
        )]);
        assert!(p.check_name(&n_dns("a.example.com")).is_ok());
        for bad in [
            "a.example.com.",
            "bad.example.com.",
            "a..example.com",
            ".example.com",
            "",
        ] {
            let e = p.check_name(&n_dns(bad)).expect_err(bad);
            assert!(
                matches!(e, CaError::NameConstraintViolation { .. }),
                "{bad}: {e}"
            );
        }
        // case does not help to escape an exclusion
        assert!(p.check_name(&n_dns("X.BAD.Example.Com")).is_err());
        // without DNS constraints, names are not judged here
        let none = policy(vec![(None, nc(&[ip("10.0.0.0/8")], &[]))]);
        assert!(none.check_name(&n_dns("a.example.com.")).is_ok());
    }

    #[test]
    fn wildcards() {
        let p = policy(vec![(
            None,
            nc(&[dns("example.com")], &[dns("bad.example.com")]),
        )]);
        assert!(p.check_name(&n_dns("*.good.example.com")).is_ok());
        let e = p
            .check_name(&n_dns("*.example.com"))
            .expect_err("covers bad");
        assert!(e.to_string().contains("wildcard"), "{e}");
        let narrow = policy(vec![(None, nc(&[dns("a.example.com")], &[]))]);
        assert!(narrow.check_name(&n_dns("*.example.com")).is_err());
        assert!(narrow.check_name(&n_dns("*.a.example.com")).is_ok());
    }

    #[test]
    fn ip_rules() {
        let v4 = ip("10.0.0.0/8");
        assert!(v4.matches(&n_ip("10.255.1.2")));
        assert!(!v4.matches(&n_ip("11.0.0.1")));
        assert!(!v4.matches(&n_ip("::ffff:10.0.0.1")));
        let v6 = ip("2001:db8::/32");
        assert!(v6.matches(&n_ip("2001:db8:ffff::1")));
        assert!(!v6.matches(&n_ip("2001:db9::1")));
        assert!(!v6.matches(&n_ip("10.0.0.1")));
        let v6_odd = ip("2001:db8:8000::/33");
        assert!(v6_odd.matches(&n_ip("2001:db8:8000::1")));
        assert!(!v6_odd.matches(&n_ip("2001:db8:7fff::1")));
        assert!(ip("0.0.0.0/0").matches(&n_ip("1.2.3.4")));
        assert!(ip("192.0.2.7/32").matches(&n_ip("192.0.2.7")));
        assert!(!ip("192.0.2.7/32").matches(&n_ip("192.0.2.8")));
        // a v4 permitted set does not constrain v6 names? It does: same type.
        let p = policy(vec![(None, nc(&[v4], &[]))]);
        assert!(p.check_name(&n_ip("2001:db8::1")).is_err());
        assert!(p.check_name(&n_ip("10.1.2.3")).is_ok());
        assert!(p.check_name(&n_dns("other.com")).is_ok());
    }

    #[test]
    fn ip_encoding_and_validation() {
        let der = nc(&[ip("10.0.0.0/8"), ip("2001:db8::/33")], &[])
            .to_der()
            .expect("der");
        // [0] { SEQ { [7] 0a000000 ff000000 } SEQ { [7] 32 octets } }
        let v4 = [0x87, 8, 10, 0, 0, 0, 0xff, 0, 0, 0];
        assert!(der.windows(v4.len()).any(|w| w == v4), "{der:02x?}");
        let mask33 = [0xff, 0xff, 0xff, 0xff, 0x80, 0, 0, 0];
        assert!(der.windows(mask33.len()).any(|w| w == mask33), "{der:02x?}");
        assert!(ip("10.0.0.1/8").validate().is_err());
        assert!(GeneralSubtree::Ip("10.0.0.0".parse().expect("ip"), 33)
            .validate()
            .is_err());
        assert!(ip("::/0").validate().is_ok());
        assert_eq!(mask_prefix(&[0xff, 0xfe, 0, 0]), Some(15));
        assert_eq!(mask_prefix(&[0xff, 0x7f, 0, 0]), None);
        assert_eq!(mask_prefix(&[0xff, 0, 1, 0]), None);
        // round trip through the X.509 structure
        let parsed = {
            use der::Decode;
            X509NameConstraints::from_der(&der).expect("parse")
        };
        let (back, unsupported) = NameConstraints::from_x509(&parsed).expect("back");
        assert!(unsupported.is_empty());
        assert_eq!(back, nc(&[ip("10.0.0.0/8"), ip("2001:db8::/33")], &[]));
    }

    #[test]
    fn email_rules() {
        let m = |s: &str| ConstrainedName::Email(s.into());
        let mailbox = GeneralSubtree::Email("alice@example.com".into());
        assert!(mailbox.matches(&m("alice@EXAMPLE.com")));
        assert!(!mailbox.matches(&m("Alice@example.com")));
        assert!(!mailbox.matches(&m("bob@example.com")));
        let host = GeneralSubtree::Email("example.com".into());
        assert!(host.matches(&m("bob@Example.Com")));
        assert!(!host.matches(&m("bob@mail.example.com")));
        let domain = GeneralSubtree::Email(".example.com".into());
        assert!(domain.matches(&m("bob@mail.example.com")));
        assert!(!domain.matches(&m("bob@example.com")));
        assert!(!domain.matches(&m("not-a-mailbox")));
        assert!(mailbox.is_within(&host));
        assert!(!host.is_within(&domain));
        assert!(GeneralSubtree::Email(".a.example.com".into()).is_within(&domain));
        assert!(GeneralSubtree::Email("a.example.com".into()).is_within(&domain));
        assert!(!domain.is_within(&host));
        assert!(GeneralSubtree::Email("a@b".into()).validate().is_ok());
        assert!(GeneralSubtree::Email("@b".into()).validate().is_err());
    }

    #[test]
    fn uri_rules() {
        let u = |s: &str| ConstrainedName::Uri(s.into());
        let host = GeneralSubtree::Uri("host.example.com".into());
        assert!(host.matches(&u("https://user@Host.Example.com:8443/path?q")));
        assert!(!host.matches(&u("https://x.host.example.com/")));
        let dom = GeneralSubtree::Uri(".example.com".into());
        assert!(dom.matches(&u("http://a.example.com")));
        assert!(!dom.matches(&u("http://example.com/")));
        assert!(!dom.matches(&u("http://[2001:db8::1]/")));
        assert!(!dom.matches(&u("urn:example:com")));
        let p = policy(vec![(
            None,
            nc(&[], &[GeneralSubtree::Uri(".bad.com".into())]),
        )]);
        assert!(p.check_name(&u("http://192.0.2.1/")).is_err());
        assert!(p.check_name(&u("http://good.com/")).is_ok());
        assert!(GeneralSubtree::Uri("http://x".into()).validate().is_err());
    }

    #[test]
    fn dns_containment() {
        assert!(dns("sub.example.com").is_within(&dns("example.com")));
        assert!(dns("example.com").is_within(&dns("example.com")));
        assert!(!dns("example.com").is_within(&dns(".example.com")));
        assert!(dns("sub.example.com").is_within(&dns(".example.com")));
        assert!(dns(".example.com").is_within(&dns(".example.com")));
        assert!(dns(".example.com").is_within(&dns("example.com")));
        assert!(!dns("other.com").is_within(&dns("example.com")));
        assert!(!dns("").is_within(&dns("example.com")));
        assert!(dns("x.com").is_within(&dns("")));
        assert!(ip("10.1.0.0/16").is_within(&ip("10.0.0.0/8")));
        assert!(!ip("10.0.0.0/8").is_within(&ip("10.1.0.0/16")));
        assert!(!ip("::/0").is_within(&ip("0.0.0.0/0")));
    }

    #[test]
    fn every_ca_must_permit_and_none_exclude() {
        let p = policy(vec![
            (Some(0), nc(&[dns("sub.example.com")], &[])),
            (
                Some(1),
                nc(
                    &[dns("example.com"), ip("10.0.0.0/8")],
                    &[dns("bad.example.com")],
                ),
            ),
        ]);
        assert!(p.check_name(&n_dns("a.sub.example.com")).is_ok());
        assert!(p.check_name(&n_ip("10.1.2.3")).is_ok());
        assert!(p.check_name(&n_dns("example.com")).is_err());
        assert!(p.check_name(&n_ip("192.168.1.1")).is_err());
        let e = p
            .check_name(&n_dns("bad.example.com"))
            .expect_err("excluded");
        assert!(e.to_string().contains("excluded"), "{e}");
        // pathLen: the issuing CA has pathLen 0
        assert!(matches!(
            p.check_new_ca(Some(0), &NameConstraints::default()),
            Err(CaError::PathLenExceeded { .. })
        ));
        // one level up: the policy CA (pathLen 1) can take one more
        let up = ChainPolicy {
            cas: p.cas[1..].to_vec(),
        };
        assert!(up
            .check_new_ca(Some(0), &NameConstraints::default())
            .is_ok());
        assert!(up
            .check_new_ca(Some(1), &NameConstraints::default())
            .is_err());
        assert!(up.check_new_ca(None, &NameConstraints::default()).is_err());
        assert!(up
            .check_new_ca(Some(0), &nc(&[dns("other.com")], &[]))
            .is_err());
        assert!(up
            .check_new_ca(Some(0), &nc(&[dns("x.bad.example.com")], &[]))
            .is_err());
        assert!(up
            .check_new_ca(
                Some(0),
                &nc(&[dns("sub.example.com"), ip("10.2.0.0/16")], &[])
            )
            .is_ok());
    }

    #[test]
    fn policies_encode() {
        let der =
            encode_policies(&["1.3.6.1.4.1.99999.1.1".into(), ANY_POLICY.into()]).expect("der");
        assert_eq!(der[0], 0x30);
        assert!(encode_policies(&["1.2".into(), "1.2".into()]).is_err());
        assert!(encode_policies(&["not an oid".into()]).is_err());
        assert!(encode_policies(&[]).is_err());
    }

    #[test]
    fn text_form_round_trips() {
        assert!("dns:.example.com".parse::<GeneralSubtree>().is_err());
        assert!(dns(".example.com").validate().is_err());
        assert!(dns("").validate().is_ok());
        for s in [
            "dns:example.com",
            "ip:10.0.0.0/8",
            "ip:2001:db8::/32",
            "email:a@example.com",
            "uri:.example.com",
        ] {
            let t: GeneralSubtree = s.parse().expect(s);
            assert_eq!(t.to_string(), s);
        }
        assert!("dns:bad..name".parse::<GeneralSubtree>().is_err());
        assert!("ftp:x".parse::<GeneralSubtree>().is_err());
        let j = serde_json::to_string(&nc(&[dns("example.com")], &[])).expect("json");
        assert_eq!(j, r#"{"permitted":["dns:example.com"],"excluded":[]}"#);
    }

    #[test]
    fn ipv4_in_ipv6_form_cannot_escape_excluded_ipv4_subtrees() {
        let p = policy(vec![(
            None,
            NameConstraints {
                permitted: Vec::new(),
                excluded: vec![ip("10.0.0.0/8")],
            },
        )]);
        let name = |s: &str| SubjectName::Ip(s.parse().expect("ip"));
        assert!(p.check_names(&[name("10.1.2.3")]).is_err());
        for mapped in ["::ffff:10.1.2.3", "::10.1.2.3", "::ffff:192.0.2.1"] {
            let e = p
                .check_names(&[name(mapped)])
                .map(|()| "accepted".to_string());
            assert!(
                e.as_ref()
                    .is_err_and(|e| e.to_string().contains("IPv6 form")),
                "{mapped}: {e:?}"
            );
        }
        assert!(p
            .check_names(&[name("192.0.2.1"), name("2001:db8::1")])
            .is_ok());
        assert!(p.check_names(&[name("::1")]).is_ok());
    }
}
