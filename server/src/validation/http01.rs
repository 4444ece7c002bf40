//! `http-01` validation, RFC 8555 §8.3 (and RFC 8738 §7 for IP identifiers).
//!
//! The CA sends `GET http://{identifier}:{http01_port}/.well-known/acme-challenge/{token}`
//! to an address of the identifier (IPv4 addresses first, then IPv6; the
//! first address that accepts the connection is used) and expects status 200
//! with a body equal to the key authorization; trailing whitespace is ignored
//! (RFC 8555 §8.3). At most 8 KiB of body are read.
//!
//! Request details:
//! * `Host` is the identifier — for IP identifiers the address literal,
//!   bracketed for IPv6 (`[::1]`, RFC 3986 §3.2.2 / RFC 9110 §7.2; an
//!   unbracketed IPv6 `Host` is invalid and was a known bug in other CAs) —
//!   followed by `:port` only when the port is not the scheme's default
//!   (RFC 9110 §7.2), so in production (port 80) it is exactly the identifier.
//! * `User-Agent: ironseal-validator`, `Accept: */*`, `Connection: close`.
//!
//! Redirects (RFC 8555 §8.3: the server SHOULD follow them): statuses 301,
//! 302, 303, 307 and 308 are followed, at most 10 times. Policy chosen here:
//! * `http://` targets only on `http01_port` (80 in production);
//! * `https://` targets only on `tlsalpn01_port` (443 in production); the
//!   certificate is NOT verified (the client is proving control, not
//!   operating a valid HTTPS site; this matches common CA practice);
//! * any other scheme or port, a missing/unparsable `Location`, or more than
//!   10 redirects fail with `incorrectResponse`.
//!
//! Redirect targets may be DNS names or IP literals; names are resolved with
//! the validator's resolver again, and every address, of the identifier and
//! of each redirect hop, must pass the address policy
//! ([`super::address_policy`]).
//!
//! Error details carry the URL, the status and a short fixed reason; never
//! the response body.
//!
//! Failures: DNS → `dns`; TCP/HTTP protocol errors → `connection`; TLS on an
//! https redirect → `tls`; a final status other than 200 → `unauthorized`;
//! a 200 with the wrong body (or oversized body, or bad redirect) →
//! `incorrectResponse`.

use std::net::IpAddr;
use std::pin::pin;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::header::{HeaderValue, ACCEPT, CONNECTION, HOST, LOCATION, USER_AGENT};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{
    connect_first, normalize_dns_name, resolve, ChallengeKind, Inner, Target, ValidationError,
};

/// Maximum body size read from the challenge response.
pub const MAX_BODY: usize = 8 * 1024;
/// Maximum number of redirects followed.
pub const MAX_REDIRECTS: usize = 10;
/// The `User-Agent` sent with every request.
pub const USER_AGENT_VALUE: &str = "ironseal-validator";

const KIND: ChallengeKind = ChallengeKind::Http01;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Host {
    Name(String),
    Ip(IpAddr),
}

impl Host {
    /// The host as written in a URL or `Host` header (IPv6 bracketed).
    fn authority_host(&self) -> String {
        match self {
            Host::Name(n) => n.clone(),
            Host::Ip(IpAddr::V4(v4)) => v4.to_string(),
            Host::Ip(IpAddr::V6(v6)) => format!("[{v6}]"),
        }
    }
}

#[derive(Debug, Clone)]
struct Url {
    scheme: Scheme,
    host: Host,
    port: u16,
    /// Path and query, starting with `/`.
    path: String,
}

impl Url {
    /// `host` or `host:port` (port omitted when it is the scheme default).
    fn authority(&self) -> String {
        if self.port == self.scheme.default_port() {
            self.host.authority_host()
        } else {
            format!("{}:{}", self.host.authority_host(), self.port)
        }
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.as_str(),
            self.authority(),
            self.path
        )
    }
}

pub(crate) async fn validate(
    inner: &Inner,
    target: &Target,
    token: &str,
    key_authorization: &str,
) -> Result<(), ValidationError> {
    let host = match target {
        Target::Dns(n) => Host::Name(normalize_dns_name(KIND, n)?),
        Target::Ip(ip) => Host::Ip(*ip),
    };
    let mut url = Url {
        scheme: Scheme::Http,
        host,
        port: inner.cfg.http01_port,
        path: format!("/.well-known/acme-challenge/{token}"),
    };
    let first = url.to_string();
    let mut redirects = 0usize;
    loop {
        let (status, location, body) = fetch(inner, &url).await?;
        if matches!(
            status,
            StatusCode::MOVED_PERMANENTLY
                | StatusCode::FOUND
                | StatusCode::SEE_OTHER
                | StatusCode::TEMPORARY_REDIRECT
                | StatusCode::PERMANENT_REDIRECT
        ) {
            redirects += 1;
            if redirects > MAX_REDIRECTS {
                return Err(ValidationError::IncorrectResponse(format!(
                    "http-01: GET {first}: too many redirects (more than {MAX_REDIRECTS})"
                )));
            }
            let Some(loc) = location else {
                return Err(ValidationError::IncorrectResponse(format!(
                    "http-01: GET {url} returned {status} without a Location header"
                )));
            };
            let next = resolve_location(&url, &loc).map_err(|m| {
                ValidationError::IncorrectResponse(format!(
                    "http-01: GET {url} redirected to {loc:?}: {m}"
                ))
            })?;
            check_redirect_policy(inner, &next).map_err(|m| {
                ValidationError::IncorrectResponse(format!(
                    "http-01: GET {url} redirected to {next}: {m}"
                ))
            })?;
            tracing::debug!(from = %url, to = %next, "http-01 following redirect");
            url = next;
            continue;
        }
        if status != StatusCode::OK {
            let via = if redirects > 0 {
                format!(" (after {redirects} redirect(s) from {first})")
            } else {
                String::new()
            };
            return Err(ValidationError::Unauthorized(format!(
                "http-01: GET {url} returned {}{via}",
                status_text(status)
            )));
        }
        let body = body.map_err(|()| {
            ValidationError::IncorrectResponse(format!(
                "http-01: GET {url}: response body is larger than {MAX_BODY} bytes"
            ))
        })?;
        if body.trim_ascii_end() == key_authorization.as_bytes() {
            return Ok(());
        }
        // The body is not echoed: it may be anything the peer chose to
        // send (or an internal page), and only its mismatch matters.
        return Err(ValidationError::IncorrectResponse(format!(
            "http-01: GET {url} returned 200 but the body ({} bytes) is not the key authorization",
            body.len()
        )));
    }
}

fn status_text(s: StatusCode) -> String {
    match s.canonical_reason() {
        Some(r) => format!("{} {r}", s.as_u16()),
        None => s.as_u16().to_string(),
    }
}

fn check_redirect_policy(inner: &Inner, next: &Url) -> Result<(), String> {
    let allowed = match next.scheme {
        Scheme::Http => inner.cfg.http01_port,
        Scheme::Https => inner.cfg.tlsalpn01_port,
    };
    if next.port != allowed {
        return Err(format!(
            "{} redirects are only followed to port {allowed}, not {}",
            next.scheme.as_str(),
            next.port
        ));
    }
    if let Host::Name(n) = &next.host {
        normalize_dns_name(KIND, n).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Resolves a `Location` header value against the current URL (RFC 9110
/// §10.2.2, RFC 3986 §5 for the common forms: absolute, `//authority/path`,
/// `/path`, `relative`).
fn resolve_location(base: &Url, loc: &str) -> Result<Url, String> {
    let loc = loc.trim();
    if loc.is_empty() {
        return Err("empty Location".into());
    }
    // Fragment is never sent.
    let loc = loc.split('#').next().unwrap_or("");
    if let Some(rest) = loc.strip_prefix("//") {
        return parse_absolute(&format!("{}://{rest}", base.scheme.as_str()));
    }
    if loc.starts_with('/') {
        return Ok(Url {
            path: loc.to_string(),
            ..base.clone()
        });
    }
    let lower = loc.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return parse_absolute(loc);
    }
    if lower.split('/').next().is_some_and(|s| s.contains(':')) {
        return Err("only http and https redirects are followed".into());
    }
    // Relative path: replace the last segment of the base path.
    let base_path = base.path.split('?').next().unwrap_or("/");
    let dir = match base_path.rfind('/') {
        Some(i) => &base_path[..=i],
        None => "/",
    };
    Ok(Url {
        path: format!("{dir}{loc}"),
        ..base.clone()
    })
}

fn parse_absolute(s: &str) -> Result<Url, String> {
    let uri: Uri = s.parse().map_err(|e| format!("invalid URL: {e}"))?;
    let scheme = match uri.scheme_str().map(|x| x.to_ascii_lowercase()).as_deref() {
        Some("http") => Scheme::Http,
        Some("https") => Scheme::Https,
        _ => return Err("only http and https redirects are followed".into()),
    };
    let auth = uri.authority().ok_or("URL has no host")?;
    if auth.as_str().contains('@') {
        return Err("URLs with user information are not followed".into());
    }
    let raw_host = auth.host();
    let host = if let Some(v6) = raw_host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Host::Ip(IpAddr::V6(
            v6.parse()
                .map_err(|_| format!("invalid IPv6 literal {raw_host}"))?,
        ))
    } else if let Ok(ip) = raw_host.parse::<std::net::Ipv4Addr>() {
        Host::Ip(IpAddr::V4(ip))
    } else {
        Host::Name(raw_host.to_ascii_lowercase())
    };
    let port = auth.port_u16().unwrap_or(scheme.default_port());
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/".to_string());
    Ok(Url {
        scheme,
        host,
        port,
        path,
    })
}

/// Body: `Ok(bytes)` or `Err(())` when larger than [`MAX_BODY`].
type FetchResult = (StatusCode, Option<String>, Result<Bytes, ()>);

/// One GET of `url`: resolve, connect, (TLS), request, read ≤ 8 KiB.
async fn fetch(inner: &Inner, url: &Url) -> Result<FetchResult, ValidationError> {
    let addrs = match &url.host {
        Host::Ip(ip) => vec![*ip],
        Host::Name(n) => inner
            .resolver
            .lookup_ips(n)
            .await
            .map_err(|f| resolve::address_error(KIND, n, f))?,
    };
    let (tcp, peer) = connect_first(
        KIND,
        &inner.cfg.address_policy,
        &addrs,
        url.port,
        inner.cfg.timeout,
    )
    .await
    .map_err(|e| match e {
        ValidationError::Connection(m) => {
            ValidationError::Connection(format!("http-01: GET {url}: {}", strip_kind(&m)))
        }
        other => other,
    })?;
    tracing::debug!(%url, %peer, "http-01 request");
    let host_header = HeaderValue::from_str(&url.authority()).map_err(|_| {
        ValidationError::Malformed(format!("http-01: cannot build a Host header for {url}"))
    })?;
    let req = Request::builder()
        .method(Method::GET)
        .uri(url.path.as_str())
        .header(HOST, host_header)
        .header(USER_AGENT, USER_AGENT_VALUE)
        .header(ACCEPT, "*/*")
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| {
            ValidationError::Malformed(format!("http-01: invalid request for {url}: {e}"))
        })?;

    match url.scheme {
        Scheme::Http => exchange(tcp, req, url).await,
        Scheme::Https => {
            let sn = match &url.host {
                Host::Ip(ip) => ServerName::IpAddress((*ip).into()),
                Host::Name(n) => ServerName::try_from(n.clone()).map_err(|e| {
                    ValidationError::Malformed(format!("http-01: invalid host in {url}: {e}"))
                })?,
            };
            let tls = tokio_rustls::TlsConnector::from(inner.tls_https.clone())
                .connect(sn, tcp)
                .await
                .map_err(|e| {
                    ValidationError::Tls(format!(
                        "http-01: GET {url}: TLS handshake with {peer} failed: {e}"
                    ))
                })?;
            exchange(tls, req, url).await
        }
    }
}

fn strip_kind(m: &str) -> &str {
    m.strip_prefix("http-01: ").unwrap_or(m)
}

/// HTTP/1.1 exchange on an established stream. The connection future is
/// driven in this task (no spawned task outlives the validation).
async fn exchange<IO>(
    io: IO,
    req: Request<Empty<Bytes>>,
    url: &Url,
) -> Result<FetchResult, ValidationError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn_err =
        |e: hyper::Error| ValidationError::Connection(format!("http-01: GET {url} failed: {e}"));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(conn_err)?;
    let request = async {
        let resp = sender.send_request(req).await.map_err(conn_err)?;
        let status = resp.status();
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = match Limited::new(resp.into_body(), MAX_BODY).collect().await {
            Ok(c) => Ok(c.to_bytes()),
            Err(e) => {
                if e.is::<http_body_util::LengthLimitError>() {
                    Err(())
                } else {
                    return Err(ValidationError::Connection(format!(
                        "http-01: GET {url}: error reading the response body: {e}"
                    )));
                }
            }
        };
        Ok((status, location, body))
    };
    let mut request = pin!(request);
    let mut conn = pin!(conn);
    tokio::select! {
        r = &mut request => r,
        c = &mut conn => {
            // The connection ended; the response (if any) is buffered.
            if let Err(e) = c {
                tracing::debug!(%url, error = %e, "http-01 connection ended with error");
            }
            request.await
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    fn base() -> Url {
        Url {
            scheme: Scheme::Http,
            host: Host::Name("example.test".into()),
            port: 5002,
            path: "/.well-known/acme-challenge/tok".into(),
        }
    }

    #[test]
    fn location_forms() {
        let b = base();
        assert_eq!(
            resolve_location(&b, "/x").map(|u| u.to_string()),
            Ok("http://example.test:5002/x".to_string())
        );
        assert_eq!(
            resolve_location(&b, "other").map(|u| u.to_string()),
            Ok("http://example.test:5002/.well-known/acme-challenge/other".to_string())
        );
        assert_eq!(
            resolve_location(&b, "https://[::1]:8443/p?q=1").map(|u| u.to_string()),
            Ok("https://[::1]:8443/p?q=1".to_string())
        );
        assert_eq!(
            resolve_location(&b, "//Other.Test/a").map(|u| u.to_string()),
            Ok("http://other.test/a".to_string())
        );
        assert!(resolve_location(&b, "ftp://x/").is_err());
        assert!(resolve_location(&b, "").is_err());
    }

    #[test]
    fn host_header_forms() {
        let mut u = base();
        u.host = Host::Ip("::1".parse().unwrap_or(IpAddr::V4([0, 0, 0, 0].into())));
        assert_eq!(u.authority(), "[::1]:5002");
        u.port = 80;
        assert_eq!(u.authority(), "[::1]");
        u.host = Host::Ip(IpAddr::V4([127, 0, 0, 1].into()));
        assert_eq!(u.authority(), "127.0.0.1");
    }
}
