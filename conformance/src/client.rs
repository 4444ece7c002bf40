//! The one HTTP client of the harness: hyper + rustls, trusting a given root
//! (the server's `root.pem`), speaking HTTPS and plain HTTP, optionally
//! presenting a client certificate (admin mTLS, and EST later). Every request
//! has a time limit. Async tests call [`HttpClient::request`]; synchronous
//! code (the Pebble / certbot / lego harness, fake DNS) calls
//! [`HttpClient::request_blocking`], which runs the request on a private
//! runtime so it works from inside and outside tokio alike.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;

/// Time limit of one request (connect, send, read the whole body).
pub const REQUEST_LIMIT: Duration = Duration::from_secs(20);

/// One HTTP answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Response {
    /// The body as JSON; `Err` with the body when it is not JSON.
    pub fn try_json(&self) -> Result<Value, String> {
        serde_json::from_slice(&self.body)
            .map_err(|e| format!("bad JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    /// The body as JSON; panics (a test failure) when it is not JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        self.try_json().unwrap_or_else(|e| panic!("{e}"))
    }
    /// Value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
    /// Every value of the header `name`.
    pub fn headers_all(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect()
    }
    /// `Replay-Nonce` (RFC 8555 §6.5).
    pub fn nonce(&self) -> Option<String> {
        self.header("Replay-Nonce")
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// Status, headers and body, for assertion messages.
    pub fn describe(&self) -> String {
        format!("HTTP {} {:?}\n{}", self.status, self.headers, self.text())
    }
}

/// What a client trusts and presents. Cheap to clone; [`HttpClient::new`]
/// turns it into a client.
#[derive(Debug, Clone, Default)]
pub struct ClientConfig {
    /// PEM file of trusted roots for https URLs (none: plain HTTP only).
    pub root: Option<PathBuf>,
    /// PEM certificate chain and PEM private key presented to the server.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

impl ClientConfig {
    /// Trusting `root` (PEM).
    pub fn trusting(root: &Path) -> ClientConfig {
        ClientConfig {
            root: Some(root.to_path_buf()),
            client_cert: None,
        }
    }
    /// Plain HTTP only (https URLs fail: nothing is trusted).
    pub fn plain() -> ClientConfig {
        ClientConfig::default()
    }
    /// Also presents `cert` (PEM chain) with `key` (PEM) in the handshake.
    pub fn with_client_cert(mut self, cert: &Path, key: &Path) -> ClientConfig {
        self.client_cert = Some((cert.to_path_buf(), key.to_path_buf()));
        self
    }
}

/// hyper + rustls client for `http://` and `https://` URLs.
#[derive(Clone)]
pub struct HttpClient {
    config: ClientConfig,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

fn tls_config(cfg: &ClientConfig) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(root) = &cfg.root {
        for c in CertificateDer::pem_file_iter(root)
            .map_err(|e| format!("read {}: {e}", root.display()))?
        {
            let c = c.map_err(|e| format!("{}: {e}", root.display()))?;
            roots
                .add(c)
                .map_err(|e| format!("{}: {e}", root.display()))?;
        }
    }
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    match &cfg.client_cert {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| format!("read {}: {e}", cert.display()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{}: {e}", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| format!("read {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate: {e}"))
        }
    }
}

impl HttpClient {
    pub fn new(config: ClientConfig) -> Result<HttpClient, String> {
        let tls = tls_config(&config)?;
        let conn = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(HttpClient {
            config,
            client: Client::builder(TokioExecutor::new()).build(conn),
        })
    }

    /// A client trusting `root` (PEM), no client certificate.
    pub fn trusting(root: &Path) -> Result<HttpClient, String> {
        HttpClient::new(ClientConfig::trusting(root))
    }

    /// One request with `headers` and `body` (empty for none).
    pub async fn request(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Response, String> {
        let mut b = hyper::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("{method} {url}: {e}"))?;
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| format!("{method} {url}: {e:?}"))?;
            let (parts, body) = resp.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| format!("{method} {url}: reading body: {e}"))?
                .to_bytes();
            Ok(Response {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(REQUEST_LIMIT, exchange)
            .await
            .map_err(|_| format!("{method} {url}: timed out after {REQUEST_LIMIT:?}"))?
    }

    pub async fn get(&self, url: &str) -> Result<Response, String> {
        self.request("GET", url, &[], Vec::new()).await
    }

    /// [`HttpClient::request`] from synchronous code: runs on a private
    /// current-thread runtime in its own thread (so it is safe inside a
    /// tokio runtime too), with a fresh connection pool.
    pub fn request_blocking(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Response, String> {
        let config = self.config.clone();
        let method = method.to_string();
        let url = url.to_string();
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        std::thread::scope(|s| {
            s.spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("runtime: {e}"))?;
                rt.block_on(async {
                    let client = HttpClient::new(config)?;
                    let h: Vec<(&str, &str)> = headers
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    client.request(&method, &url, &h, body).await
                })
            })
            .join()
            .map_err(|_| "HTTP client thread panicked".to_string())?
        })
    }

    pub fn get_blocking(&self, url: &str) -> Result<Response, String> {
        self.request_blocking("GET", url, &[], Vec::new())
    }
}

/// Blocking GET of a plain-HTTP or https URL trusting `root` (if any).
pub fn get(url: &str, root: Option<&Path>) -> Result<Response, String> {
    let cfg = ClientConfig {
        root: root.map(Path::to_path_buf),
        client_cert: None,
    };
    HttpClient::new(cfg)?.get_blocking(url)
}

/// Blocking POST of a JSON body to `url` (plain HTTP or https trusting `root`).
pub fn post_json(url: &str, root: Option<&Path>, body: &str) -> Result<Response, String> {
    let cfg = ClientConfig {
        root: root.map(Path::to_path_buf),
        client_cert: None,
    };
    HttpClient::new(cfg)?.request_blocking(
        "POST",
        url,
        &[("Content-Type", "application/json")],
        body.as_bytes().to_vec(),
    )
}
