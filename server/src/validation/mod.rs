//! ACME challenge validation: the checks the CA itself performs before it
//! marks a challenge `valid`.
//!
//! * `http-01` — RFC 8555 §8.3 ([`http01`])
//! * `dns-01` — RFC 8555 §8.4 ([`dns01`])
//! * `tls-alpn-01` — RFC 8737 §3 ([`tlsalpn01`])
//! * IP identifiers — RFC 8738 (http-01 and tls-alpn-01 only, §7)
//!
//! Every validation is bounded by [`ValidationConfig::timeout`]; failures are
//! reported as a [`ValidationError`] whose [`ValidationError::acme_type`] is the
//! RFC 8555 §6.7 error type (without the `urn:ietf:params:acme:error:` prefix)
//! and whose `Display` text is meant to be shown verbatim to the ACME client's
//! user as the problem `detail`.
//!
//! Error classification used throughout (RFC 8555 §6.7):
//!
//! | situation | error |
//! | --- | --- |
//! | name does not resolve, SERVFAIL, resolver unreachable | `dns` |
//! | TCP connect refused/reset/unreachable, HTTP protocol errors | `connection` |
//! | the whole validation exceeded the configured timeout | `connection` (`Timeout`) |
//! | TLS handshake failed | `tls` |
//! | the resource is absent: HTTP status ≠ 200, no TXT record at all | `unauthorized` |
//! | a response was received but its content is wrong (body, TXT digest, certificate, ALPN) | `incorrectResponse` |
//! | the request itself is invalid (dns-01 for an IP, bad token) | `malformed` |
//! | CAA forbids issuance, or its lookup failed ([`caa`]) | `caa` |

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tokio::sync::Semaphore;

pub use address_policy::AddressPolicy;

/// At most this many addresses of one name are tried (RFC 8555 §8.3 does
/// not require trying every A/AAAA answer; an applicant publishing hundreds
/// of them would otherwise multiply the CA's connection attempts).
pub const MAX_ADDRESSES_TRIED: usize = 4;

pub mod address_policy;
pub mod caa;
mod cert;
pub mod dns01;
pub mod hosts_file;
pub mod http01;
pub mod resolve;
pub mod tlsalpn01;

#[cfg(test)]
mod tests;

/// The challenge types this validator implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChallengeKind {
    /// `http-01`, RFC 8555 §8.3.
    Http01,
    /// `dns-01`, RFC 8555 §8.4.
    Dns01,
    /// `tls-alpn-01`, RFC 8737 §3.
    TlsAlpn01,
}

impl ChallengeKind {
    /// The challenge type string as it appears in ACME objects.
    pub fn as_str(&self) -> &'static str {
        match self {
            ChallengeKind::Http01 => "http-01",
            ChallengeKind::Dns01 => "dns-01",
            ChallengeKind::TlsAlpn01 => "tls-alpn-01",
        }
    }
}

impl std::fmt::Display for ChallengeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The identifier being validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A `dns` identifier (RFC 8555 §9.7.7), without any `*.` wildcard prefix
    /// (RFC 8555 §7.1.3: the authorization is for the base domain).
    Dns(String),
    /// An `ip` identifier (RFC 8738 §3).
    Ip(IpAddr),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Dns(name) => f.write_str(name),
            Target::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Validator settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationConfig {
    /// Port for http-01 requests (RFC 8555 §8.3 mandates 80; other values are
    /// for tests). Default 80.
    pub http01_port: u16,
    /// Port for tls-alpn-01 connections (RFC 8737 §3 mandates 443; other values
    /// are for tests). Also the only port an http-01 redirect to `https://` may
    /// target. Default 443.
    pub tlsalpn01_port: u16,
    /// `Some(addr)`: use exactly this nameserver (UDP, falling back to TCP),
    /// with no caching. `None`: the nameservers of `/etc/resolv.conf`.
    pub dns_resolver: Option<SocketAddr>,
    /// Upper bound for one whole validation (all lookups, connections,
    /// redirects). Default 10 s.
    pub timeout: Duration,
    /// Which addresses may be dialled. Default: public addresses only.
    pub address_policy: AddressPolicy,
    /// Validations running at once; further ones wait for a slot (the wait
    /// is not counted in `timeout`). Default 64.
    pub max_concurrent: usize,
    /// Names resolved from the operator's hosts file before DNS
    /// (`[validation] hosts_file`). Default none.
    pub hosts: Option<Arc<hosts_file::HostsFile>>,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        ValidationConfig {
            http01_port: 80,
            tlsalpn01_port: 443,
            dns_resolver: None,
            timeout: Duration::from_secs(10),
            address_policy: AddressPolicy::public_only(),
            max_concurrent: 64,
            hosts: None,
        }
    }
}

/// Why a validation failed. `Display` is the user-facing problem detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// DNS resolution failed (NXDOMAIN, SERVFAIL, no address, resolver down).
    #[error("{0}")]
    Dns(String),
    /// Could not connect, or the peer broke the protocol.
    #[error("{0}")]
    Connection(String),
    /// A response was received but did not satisfy the challenge.
    #[error("{0}")]
    IncorrectResponse(String),
    /// The TLS handshake failed.
    #[error("{0}")]
    Tls(String),
    /// The challenge resource is not being served (HTTP error status, no TXT).
    #[error("{0}")]
    Unauthorized(String),
    /// The request cannot be validated as given.
    #[error("{0}")]
    Malformed(String),
    /// The validation did not finish within the configured timeout.
    #[error("validation timed out")]
    Timeout,
    /// CAA records forbid issuance, or their lookup failed (RFC 8659).
    #[error("{0}")]
    Caa(String),
}

impl ValidationError {
    /// RFC 8555 §6.7 error type, without the `urn:ietf:params:acme:error:`
    /// prefix. `Timeout` maps to `connection` (as Boulder does).
    pub fn acme_type(&self) -> &'static str {
        match self {
            ValidationError::Dns(_) => "dns",
            ValidationError::Connection(_) => "connection",
            ValidationError::IncorrectResponse(_) => "incorrectResponse",
            ValidationError::Tls(_) => "tls",
            ValidationError::Unauthorized(_) => "unauthorized",
            ValidationError::Malformed(_) => "malformed",
            ValidationError::Timeout => "connection",
            ValidationError::Caa(_) => "caa",
        }
    }
}

pub(crate) struct Inner {
    pub(crate) cfg: ValidationConfig,
    pub(crate) resolver: resolve::DnsResolver,
    /// TLS client for tls-alpn-01 (ALPN `acme-tls/1`, any certificate).
    pub(crate) tls_alpn: Arc<rustls::ClientConfig>,
    /// TLS client for https redirects during http-01 (ALPN `http/1.1`, any
    /// certificate).
    pub(crate) tls_https: Arc<rustls::ClientConfig>,
    /// One permit per running validation ([`ValidationConfig::max_concurrent`]).
    slots: Semaphore,
}

/// The challenge validator. Cheap to clone; share it between tasks.
#[derive(Clone)]
pub struct Validator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("cfg", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

impl Validator {
    /// Builds a validator. Fails (`Dns`) if `dns_resolver` is `None` and
    /// `/etc/resolv.conf` has no usable nameserver, or (`Tls`) if the TLS
    /// client cannot be configured.
    pub fn new(cfg: ValidationConfig) -> Result<Validator, ValidationError> {
        let resolver =
            resolve::DnsResolver::new(cfg.dns_resolver, cfg.timeout)?.with_hosts(cfg.hosts.clone());
        let cfg_slots = cfg.max_concurrent.max(1);
        let tls_alpn = tlsalpn01::client_config(vec![tlsalpn01::ACME_TLS_1.to_vec()])?;
        let tls_https = tlsalpn01::client_config(vec![b"http/1.1".to_vec()])?;
        Ok(Validator {
            inner: Arc::new(Inner {
                cfg,
                resolver,
                tls_alpn,
                tls_https,
                slots: Semaphore::new(cfg_slots),
            }),
        })
    }

    /// The configuration this validator was built with.
    pub fn config(&self) -> &ValidationConfig {
        &self.inner.cfg
    }

    /// Runs one validation of `kind` for `target`.
    ///
    /// `token` is the challenge token (RFC 8555 §8.1: base64url characters
    /// only), `key_authorization` is `token || '.' || base64url(JWK
    /// thumbprint)` as computed by the server (RFC 8555 §8.1).
    ///
    /// The whole call is bounded by [`ValidationConfig::timeout`], once it
    /// holds one of the [`ValidationConfig::max_concurrent`] slots (a busy CA
    /// queues validations rather than opening unbounded connections).
    pub async fn validate(
        &self,
        kind: ChallengeKind,
        target: &Target,
        token: &str,
        key_authorization: &str,
    ) -> Result<(), ValidationError> {
        let _slot = self
            .inner
            .slots
            .acquire()
            .await
            .map_err(|_| ValidationError::Connection("validator is shutting down".into()))?;
        let fut = async {
            match kind {
                ChallengeKind::Http01 => {
                    check_token(kind, token)?;
                    http01::validate(&self.inner, target, token, key_authorization).await
                }
                ChallengeKind::Dns01 => {
                    dns01::validate(&self.inner, target, key_authorization).await
                }
                ChallengeKind::TlsAlpn01 => {
                    tlsalpn01::validate(&self.inner, target, key_authorization).await
                }
            }
        };
        let res = match tokio::time::timeout(self.inner.cfg.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(ValidationError::Timeout),
        };
        match &res {
            Ok(()) => tracing::debug!(%kind, %target, "challenge validated"),
            Err(e) => {
                tracing::info!(%kind, %target, acme_type = e.acme_type(), error = %e, "challenge validation failed")
            }
        }
        res
    }
}

impl Validator {
    /// Checks CAA for a DNS name (see [`caa`]) through the validator's
    /// resolver, bounded by [`ValidationConfig::timeout`] (beyond it:
    /// `caa`, as for any lookup failure).
    ///
    /// Names the operator's hosts file answers for are not in the DNS the
    /// validator asks, so they have no CAA records to honour: skipped.
    pub async fn check_caa(&self, req: &caa::CaaRequest<'_>) -> Result<(), ValidationError> {
        if self.inner.resolver.in_hosts_file(req.name) {
            tracing::debug!(
                name = req.name,
                "CAA not checked: the name is in the validation hosts file"
            );
            return Ok(());
        }
        let fut = caa::check(&self.inner.resolver, req);
        let res = match tokio::time::timeout(self.inner.cfg.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(ValidationError::Caa(format!(
                "CAA lookup for {} timed out; issuance is refused until it succeeds",
                req.name
            ))),
        };
        if let Err(e) = &res {
            tracing::info!(name = req.name, wildcard = req.wildcard, error = %e, "CAA refused issuance");
        }
        res
    }
}

/// RFC 8555 §8.1: a token MUST only contain base64url characters (and RFC
/// 8555 §8.3 puts it in a URL path, so anything else is refused outright).
fn check_token(kind: ChallengeKind, token: &str) -> Result<(), ValidationError> {
    if token.is_empty()
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ValidationError::Malformed(format!(
            "{kind}: token {token:?} is not a non-empty base64url string (RFC 8555 §8.1)"
        )));
    }
    Ok(())
}

/// SHA-256 of the key authorization (RFC 8555 §8.4, RFC 8737 §3).
pub(crate) fn key_authorization_digest(key_authorization: &str) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key_authorization.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// base64url without padding of SHA-256(key authorization): the dns-01 TXT
/// value (RFC 8555 §8.4).
pub fn dns01_txt_value(key_authorization: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(key_authorization_digest(key_authorization))
}

/// Normalises a DNS identifier for lookups and comparisons: lower case, no
/// trailing dot. Rejects empty names and names containing characters that
/// cannot appear in a hostname.
pub(crate) fn normalize_dns_name(
    kind: ChallengeKind,
    name: &str,
) -> Result<String, ValidationError> {
    let n = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if n.is_empty()
        || n.len() > 253
        || n.starts_with("*.")
        || !n
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
        || n.split('.').any(|l| l.is_empty() || l.len() > 63)
    {
        return Err(ValidationError::Malformed(format!(
            "{kind}: {name:?} is not a valid DNS identifier"
        )));
    }
    Ok(n)
}

/// RFC 8738 §6: the reverse-mapping name of an IP address, used as the TLS
/// SNI for tls-alpn-01 on IP identifiers (e.g. `1.0.0.127.in-addr.arpa`).
pub fn reverse_dns_name(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(72);
            for b in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0x0f, b >> 4));
            }
            s.push_str("ip6.arpa");
            s
        }
    }
}

/// Connects to the first address that accepts, in the given order (the
/// resolver returns IPv4 before IPv6), after checking each against the
/// address policy; at most [`MAX_ADDRESSES_TRIED`] addresses are tried. When
/// there is more than one address, each attempt is bounded by a third of
/// `validation_timeout` so that one black-holed address does not use up the
/// whole validation.
///
/// Errors name the address and a short, fixed reason only (refused, timed
/// out, unreachable, not allowed): the operating system's message is not
/// passed on to the applicant.
pub(crate) async fn connect_first(
    kind: ChallengeKind,
    policy: &AddressPolicy,
    addrs: &[IpAddr],
    port: u16,
    validation_timeout: Duration,
) -> Result<(tokio::net::TcpStream, SocketAddr), ValidationError> {
    let addrs = &addrs[..addrs.len().min(MAX_ADDRESSES_TRIED)];
    let per_attempt = if addrs.len() > 1 {
        validation_timeout / 3
    } else {
        validation_timeout
    };
    let mut errors = Vec::new();
    for ip in addrs {
        let sa = SocketAddr::new(*ip, port);
        if let Err(class) = policy.check(*ip) {
            tracing::info!(%kind, addr = %sa, class, "validation refused to connect: address policy");
            errors.push(format!("{sa}: not allowed ({class})"));
            continue;
        }
        match tokio::time::timeout(per_attempt, tokio::net::TcpStream::connect(sa)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok((s, sa));
            }
            Ok(Err(e)) => errors.push(format!("{sa}: {}", io_reason(&e))),
            Err(_) => errors.push(format!("{sa}: connect timed out")),
        }
    }
    Err(ValidationError::Connection(format!(
        "{kind}: could not connect: {}",
        if errors.is_empty() {
            "no addresses".to_string()
        } else {
            errors.join("; ")
        }
    )))
}

/// A short, fixed description of a connect error.
fn io_reason(e: &std::io::Error) -> &'static str {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "connection refused",
        K::ConnectionReset | K::ConnectionAborted => "connection reset",
        K::TimedOut => "connect timed out",
        K::HostUnreachable | K::NetworkUnreachable => "unreachable",
        _ => "connect failed",
    }
}
