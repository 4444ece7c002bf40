//! DNS resolution for the validator (hickory-resolver).
//!
//! * With an explicit nameserver (`ValidationConfig::dns_resolver`) exactly
//!   that server is queried, UDP first and TCP on truncation/error, with no
//!   search domains and no `/etc/hosts`.
//! * Without one, the `nameserver` lines of `/etc/resolv.conf` are used (read
//!   here, because hickory's `system-config` feature is not enabled), again
//!   without search domains and without `/etc/hosts`: a CA validates what the
//!   public DNS says, not local overrides.
//!
//! Names listed in the operator's hosts file (`with_hosts`, opt-in) are
//! answered from it for A/AAAA before any query.
//!
//! The response cache is disabled in both cases (`cache_size` 0 and TTL caps of
//! 0): RFC 8555 §8.4 expects the CA to see TXT records the client has just
//! provisioned, and tests change records between validations.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;

use super::ValidationError;

/// Thin wrapper around a hickory [`TokioResolver`].
#[derive(Clone)]
pub struct DnsResolver {
    inner: TokioResolver,
    /// Names answered from the operator's hosts file before DNS.
    hosts: Option<std::sync::Arc<super::hosts_file::HostsFile>>,
}

/// Outcome of a lookup that did not produce records.
#[derive(Debug)]
pub enum LookupFailure {
    /// NXDOMAIN: the name does not exist.
    NxDomain,
    /// NOERROR but no records of the requested type (NODATA).
    NoData,
    /// Any other failure (SERVFAIL, REFUSED, timeout, unreachable server).
    Other(String),
}

impl std::fmt::Display for LookupFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LookupFailure::NxDomain => f.write_str("NXDOMAIN (name does not exist)"),
            LookupFailure::NoData => f.write_str("no records of that type"),
            LookupFailure::Other(s) => f.write_str(s),
        }
    }
}

fn classify(err: NetError) -> LookupFailure {
    if let NetError::Dns(DnsError::NoRecordsFound(nr)) = &err {
        return if nr.response_code == ResponseCode::NXDomain {
            LookupFailure::NxDomain
        } else {
            LookupFailure::NoData
        };
    }
    if let NetError::Dns(DnsError::ResponseCode(code)) = &err {
        return LookupFailure::Other(format!("DNS server answered {code}"));
    }
    LookupFailure::Other(err.to_string())
}

/// Parses the `nameserver` lines of a resolv.conf (port 53). Unparsable lines
/// and IPv6 zone ids are skipped.
pub(crate) fn parse_resolv_conf(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| {
            let l = l.split(['#', ';']).next().unwrap_or("");
            let mut it = l.split_whitespace();
            match (it.next(), it.next()) {
                (Some("nameserver"), Some(addr)) => addr.parse::<IpAddr>().ok(),
                _ => None,
            }
        })
        .collect()
}

impl DnsResolver {
    /// See the module docs. `server = None` reads `/etc/resolv.conf`.
    ///
    /// Each DNS query attempt is bounded by a fifth of `validation_timeout`
    /// (clamped to 100 ms ..= 3 s), three attempts (a lost UDP datagram is
    /// retried): a dead nameserver is still reported as a `dns` error before
    /// the overall validation timeout.
    pub fn new(
        server: Option<SocketAddr>,
        validation_timeout: Duration,
    ) -> Result<DnsResolver, ValidationError> {
        let name_servers: Vec<NameServerConfig> = match server {
            Some(sa) => vec![name_server(sa)],
            None => {
                let text = std::fs::read_to_string("/etc/resolv.conf").map_err(|e| {
                    ValidationError::Dns(format!("cannot read /etc/resolv.conf: {e}"))
                })?;
                let ips = parse_resolv_conf(&text);
                if ips.is_empty() {
                    return Err(ValidationError::Dns(
                        "/etc/resolv.conf lists no usable nameserver".into(),
                    ));
                }
                ips.into_iter()
                    .map(|ip| name_server(SocketAddr::new(ip, 53)))
                    .collect()
            }
        };
        let config = ResolverConfig::from_parts(None, vec![], name_servers);
        let mut opts = ResolverOpts::default();
        opts.cache_size = 0;
        opts.positive_max_ttl = Some(Duration::ZERO);
        opts.negative_max_ttl = Some(Duration::ZERO);
        opts.use_hosts_file = ResolveHosts::Never;
        opts.timeout =
            (validation_timeout / 5).clamp(Duration::from_millis(100), Duration::from_secs(3));
        opts.attempts = 3;
        opts.ndots = 0;
        opts.try_tcp_on_error = true;
        let inner = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_options(opts)
            .build()
            .map_err(|e| ValidationError::Dns(format!("cannot build DNS resolver: {e}")))?;
        Ok(DnsResolver { inner, hosts: None })
    }

    /// Answers the names `hosts` lists from it, before DNS
    /// (`[validation] hosts_file`).
    pub fn with_hosts(
        mut self,
        hosts: Option<std::sync::Arc<super::hosts_file::HostsFile>>,
    ) -> DnsResolver {
        self.hosts = hosts;
        self
    }

    /// True when the operator's hosts file answers for `name`.
    pub(crate) fn in_hosts_file(&self, name: &str) -> bool {
        self.hosts
            .as_ref()
            .is_some_and(|h| h.lookup(name).is_some())
    }

    /// A then AAAA records of `name` (RFC 8555 §8.3 / RFC 8737 §3: the CA
    /// connects to the addresses the name resolves to). IPv4 addresses come
    /// first. Errors only if both lookups fail to produce an address.
    pub(crate) async fn lookup_ips(&self, name: &str) -> Result<Vec<IpAddr>, LookupFailure> {
        if let Some(ips) = self.hosts.as_ref().and_then(|h| h.lookup(name)) {
            let mut ips = ips.to_vec();
            ips.sort_by_key(|ip| ip.is_ipv6());
            return Ok(ips);
        }
        let fqdn = fqdn(name);
        let (v4, v6) = tokio::join!(
            self.inner.lookup(fqdn.as_str(), RecordType::A),
            self.inner.lookup(fqdn.as_str(), RecordType::AAAA)
        );
        let mut out = Vec::new();
        let mut failures = Vec::new();
        match v4 {
            Ok(l) => out.extend(l.answers().iter().filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                _ => None,
            })),
            Err(e) => failures.push(classify(e)),
        }
        match v6 {
            Ok(l) => out.extend(l.answers().iter().filter_map(|r| match &r.data {
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            })),
            Err(e) => failures.push(classify(e)),
        }
        if !out.is_empty() {
            return Ok(out);
        }
        // Report the most specific failure.
        if failures
            .iter()
            .any(|f| matches!(f, LookupFailure::NxDomain))
        {
            return Err(LookupFailure::NxDomain);
        }
        if let Some(LookupFailure::Other(s)) = failures
            .into_iter()
            .find(|f| matches!(f, LookupFailure::Other(_)))
        {
            return Err(LookupFailure::Other(s));
        }
        Err(LookupFailure::NoData)
    }

    /// TXT records of `name`; each record's character-strings are
    /// concatenated (RFC 8555 §8.4 / RFC 7208 §3.3 style).
    pub(crate) async fn lookup_txt(&self, name: &str) -> Result<Vec<Vec<u8>>, LookupFailure> {
        let l = self
            .inner
            .lookup(fqdn(name).as_str(), RecordType::TXT)
            .await
            .map_err(classify)?;
        let recs: Vec<Vec<u8>> = l
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::TXT(t) => Some(t.txt_data.iter().flat_map(|s| s.iter().copied()).collect()),
                _ => None,
            })
            .collect();
        if recs.is_empty() {
            return Err(LookupFailure::NoData);
        }
        Ok(recs)
    }
}

impl super::caa::CaaSource for DnsResolver {
    /// CAA records of `name` (RFC 8659 §3); the resolver follows CNAMEs.
    async fn lookup_caa(&self, name: &str) -> Result<Vec<super::caa::CaaRecord>, LookupFailure> {
        let l = self
            .inner
            .lookup(fqdn(name).as_str(), RecordType::CAA)
            .await
            .map_err(classify)?;
        Ok(l.answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::CAA(c) => Some(super::caa::CaaRecord {
                    critical: c.issuer_critical,
                    tag: c.tag.clone(),
                    value: c.value.clone(),
                }),
                _ => None,
            })
            .collect())
    }
}

fn name_server(sa: SocketAddr) -> NameServerConfig {
    let mut udp = ConnectionConfig::udp();
    udp.port = sa.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = sa.port();
    NameServerConfig::new(sa.ip(), true, vec![udp, tcp])
}

/// Absolute form so no search list or ndots logic applies.
fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

/// Maps an address lookup failure for http-01/tls-alpn-01 to a `Dns` error.
pub(crate) fn address_error(
    kind: super::ChallengeKind,
    name: &str,
    f: LookupFailure,
) -> ValidationError {
    match f {
        LookupFailure::NxDomain => ValidationError::Dns(format!(
            "{kind}: DNS lookup of {name} failed: NXDOMAIN (the name does not exist)"
        )),
        LookupFailure::NoData => ValidationError::Dns(format!(
            "{kind}: DNS lookup of {name} returned no A or AAAA records"
        )),
        LookupFailure::Other(s) => {
            ValidationError::Dns(format!("{kind}: DNS lookup of {name} failed: {s}"))
        }
    }
}
