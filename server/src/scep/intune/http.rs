//! The HTTPS client of the Intune calls (hyper + rustls, as the rest of
//! ironseal's outbound HTTP): system trust anchors plus an optional extra
//! PEM file, HTTPS only, one timeout per exchange, and bounded retries with
//! exponential backoff on 429, 5xx and transport errors (honouring a
//! `Retry-After` in seconds, capped).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::IntuneError;

/// Largest answer body read (Intune's answers are a few hundred bytes).
const MAX_ANSWER: usize = 256 * 1024;
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// One request, rebuilt for each attempt.
pub struct Call<'a> {
    pub method: hyper::Method,
    pub url: &'a str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// An answer: status and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// The client with its retry policy.
#[derive(Clone)]
pub struct Http {
    client: HttpsClient,
    timeout: Duration,
    max_attempts: u32,
    backoff: Duration,
}

/// System trust anchors plus those of `extra` (PEM).
fn roots(extra: Option<&Path>) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A system anchor rustls cannot use is skipped, as browsers do.
        let _ = roots.add(cert);
    }
    if let Some(path) = extra {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
        let mut n = 0;
        for cert in certs {
            let cert = cert.map_err(|e| format!("ca_file {}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
            n += 1;
        }
        if n == 0 {
            return Err(format!("ca_file {}: no certificates", path.display()));
        }
    }
    if roots.is_empty() {
        return Err("no trust anchors: the system has none and no ca_file is set".into());
    }
    Ok(roots)
}

impl Http {
    /// Builds the client; fails on an unreadable `ca_file`.
    pub fn new(
        ca_file: Option<&Path>,
        timeout: Duration,
        max_attempts: u32,
        backoff: Duration,
    ) -> Result<Http, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration: {e}"))?
            .with_root_certificates(roots(ca_file)?)
            .with_no_client_auth();
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .wrap_connector(tcp);
        Ok(Http {
            client: Client::builder(TokioExecutor::new()).build(https),
            timeout,
            max_attempts: max_attempts.max(1),
            backoff,
        })
    }

    /// One exchange, no retry.
    async fn once(&self, call: &Call<'_>) -> Result<(Answer, Option<Duration>), IntuneError> {
        let mut req = hyper::Request::builder()
            .method(call.method.clone())
            .uri(call.url);
        for (k, v) in &call.headers {
            req = req.header(*k, v);
        }
        let req = req
            .body(Full::new(Bytes::from(call.body.clone())))
            .map_err(|e| IntuneError::Unreachable(format!("{}: {e}", call.url)))?;
        let exchange = async {
            let res = self
                .client
                .request(req)
                .await
                .map_err(|e| IntuneError::Unreachable(format!("{}: {e:?}", call.url)))?;
            let status = res.status().as_u16();
            let retry_after = res
                .headers()
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
            let body = Limited::new(res.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| IntuneError::Unreachable(format!("{}: body: {e}", call.url)))?
                .to_bytes()
                .to_vec();
            Ok((Answer { status, body }, retry_after))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| IntuneError::Unreachable(format!("{}: timed out", call.url)))?
    }

    /// The exchange with retries: 429, 5xx and transport errors are tried
    /// again up to the attempt limit, waiting `backoff`, then twice that,
    /// and so on (or `Retry-After` when the server sends one). The last
    /// answer (or error) is returned.
    pub async fn send(&self, call: &Call<'_>) -> Result<Answer, IntuneError> {
        let mut attempt = 1;
        loop {
            let result = self.once(call).await;
            let (retryable, wait) = match &result {
                Ok((a, ra)) => (a.status == 429 || a.status >= 500, *ra),
                Err(_) => (true, None),
            };
            if !retryable || attempt >= self.max_attempts {
                return result.map(|(a, _)| a);
            }
            let wait = wait.unwrap_or_else(|| self.backoff * 2u32.saturating_pow(attempt - 1));
            match &result {
                Ok((a, _)) => {
                    tracing::info!(url = %call.url, status = a.status, attempt, ?wait, "Intune call retried")
                }
                Err(e) => {
                    tracing::info!(url = %call.url, error = %e, attempt, ?wait, "Intune call retried")
                }
            }
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(b))
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A random (version 4) UUID for `client-request-id`.
pub fn request_id() -> String {
    let mut b = [0u8; 16];
    // Only a correlation id: zeros if randomness fails are harmless.
    let _ = aws_lc_rs::rand::fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_and_request_ids() {
        assert_eq!(
            form_encode("https://api.manage.microsoft.com//.default"),
            "https%3A%2F%2Fapi.manage.microsoft.com%2F%2F.default"
        );
        assert_eq!(form_encode("a b+c~"), "a%20b%2Bc~");
        let id = request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(request_id(), id);
    }
}
