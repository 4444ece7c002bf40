//! Shared helpers for `acme_protocol.rs` and `crash.rs`: a restartable
//! ironseal on loopback (same data dir, same ports), an in-test http-01
//! responder, a hand-rolled ACME/JWS client (josekit signatures, our own
//! hyper + rustls client) for the negative cases, and instant-acme helpers
//! for the positive flows.
//!
//! Everything here talks to the real release binary; nothing links the
//! server's crates.

#![allow(
    dead_code,
    reason = "shared by several test binaries; each uses a different subset"
)]
#![allow(clippy::unwrap_used, reason = "tests: a panic is a test failure")]

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewOrder, Order, OrderStatus,
    RetryPolicy,
};
use ironseal_conformance::challtestsrv::ChallTestSrv;
use ironseal_conformance::{http, net, proc, subject};
use josekit::jwk::KeyPair as _;
use josekit::jws::JwsSigner as _;
use serde_json::{json, Value};

pub mod pki;

pub const ERR: &str = "urn:ietf:params:acme:error:";

/// Runs blocking work (curl, openssl, process waits) from async test code.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

// ---------------------------------------------------------------------------
// The server under test, restartable on the same data dir and ports.
// ---------------------------------------------------------------------------

pub struct Srv {
    pub data: PathBuf,
    pub work: PathBuf,
    pub port: u16,
    pub http_port: u16,
    pub h01_port: u16,
    pub alpn_port: u16,
    pub dns_addr: String,
    pub admin_key: String,
    pub starts: u32,
    /// Extra `ironseal serve` arguments.
    pub extra: Vec<String>,
    guard: Option<proc::Guard>,
}

impl Srv {
    pub fn new(work: &Path, dns: &ChallTestSrv) -> Srv {
        let data = work.join("ironseal-data");
        std::fs::create_dir_all(&data).expect("mkdir data");
        let mut k = [0u8; 18];
        aws_lc_rs::rand::fill(&mut k).expect("rand");
        Srv {
            data,
            work: work.to_path_buf(),
            port: net::free_tcp_port(),
            http_port: net::free_tcp_port(),
            h01_port: net::free_tcp_port(),
            alpn_port: net::free_tcp_port(),
            dns_addr: dns.dns_addr(),
            admin_key: format!("isk_test_{}", B64.encode(k)),
            starts: 0,
            extra: Vec::new(),
            guard: None,
        }
    }

    pub fn base(&self) -> String {
        format!("https://localhost:{}", self.port)
    }
    pub fn dir_url(&self) -> String {
        format!("{}/directory", self.base())
    }
    pub fn root(&self) -> PathBuf {
        self.data.join("root.pem")
    }
    pub fn log_path(&self) -> PathBuf {
        self.work.join(format!("ironseal-{}.log", self.starts))
    }

    /// Starts the binary and waits until the directory answers 200.
    pub fn start(&mut self) {
        assert!(self.guard.is_none(), "server already running");
        let bin = subject::ironseal_bin().unwrap_or_else(|e| panic!("{e}"));
        self.starts += 1;
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--http-listen")
            .arg(format!("127.0.0.1:{}", self.http_port))
            // AIA / CRL DP URLs: the default base is http://localhost:P2, and
            // pkilint (python `validators`) rejects a dotless host as
            // pkix.invalid_uri_syntax; an IP literal is what a relying party
            // on loopback would use anyway.
            .arg("--http-public-url")
            .arg(format!("http://127.0.0.1:{}", self.http_port))
            .args(["--hostname", "localhost", "--hostname", "127.0.0.1"])
            .arg("--test-dns-resolver")
            .arg(&self.dns_addr)
            .arg("--test-http01-port")
            .arg(self.h01_port.to_string())
            .arg("--test-tlsalpn01-port")
            .arg(self.alpn_port.to_string())
            .args(["--ari-retry-after-secs", "1", "--log-format", "json"])
            .args(&self.extra)
            .env("IRONSEAL_INITIAL_ADMIN_KEY", &self.admin_key);
        let mut g = proc::Guard::spawn("ironseal", cmd, &self.log_path()).expect("spawn ironseal");
        let root = self.root();
        let url = self.dir_url();
        let mut last = String::new();
        let ok = proc::wait_for(Duration::from_secs(30), Duration::from_millis(50), || {
            if let Some(st) = g.exited() {
                last = format!("exited: {st}");
                return Some(false);
            }
            if !std::fs::read_to_string(&root)
                .map(|s| s.contains("END CERTIFICATE"))
                .unwrap_or(false)
            {
                return None;
            }
            match http::get(&url, Some(&root)) {
                Ok(r) if r.status == 200 => Some(true),
                Ok(r) => {
                    last = format!("HTTP {}", r.status);
                    None
                }
                Err(e) => {
                    last = e;
                    None
                }
            }
        });
        assert_eq!(
            ok,
            Some(true),
            "ironseal not ready ({last})\n{}",
            g.log_tail(6000)
        );
        self.guard = Some(g);
    }

    /// SIGKILL (std::process::Child::kill) and reap.
    pub fn kill9(&mut self) {
        // proc::Guard's Drop is Child::kill (SIGKILL) plus a bounded reap.
        self.guard.take();
    }

    pub fn log_tail(&self) -> String {
        self.guard
            .as_ref()
            .map(|g| g.log_tail(6000))
            .unwrap_or_else(|| std::fs::read_to_string(self.log_path()).unwrap_or_default())
    }
}

// ---------------------------------------------------------------------------
// http-01 responder
// ---------------------------------------------------------------------------

#[derive(Clone, Default)]
pub struct Http01 {
    pub map: Arc<Mutex<HashMap<String, String>>>,
    task: Arc<Option<tokio::task::JoinHandle<()>>>,
}

impl Http01 {
    pub async fn start(port: u16) -> Http01 {
        let map: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind http-01 port");
        let m = map.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let m = m.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let m = m.clone();
                            async move {
                                let path = req.uri().path().to_string();
                                let tok = path
                                    .strip_prefix("/.well-known/acme-challenge/")
                                    .unwrap_or("");
                                let v = m.lock().unwrap().get(tok).cloned();
                                let resp = match v {
                                    Some(ka) => hyper::Response::builder()
                                        .status(200)
                                        .header("Content-Type", "application/octet-stream")
                                        .body(Full::new(Bytes::from(ka))),
                                    None => hyper::Response::builder()
                                        .status(404)
                                        .body(Full::new(Bytes::new())),
                                };
                                Ok::<_, Infallible>(resp.expect("response"))
                            }
                        },
                    );
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await;
                });
            }
        });
        Http01 {
            map,
            task: Arc::new(Some(task)),
        }
    }

    pub fn set(&self, token: &str, key_auth: &str) {
        self.map
            .lock()
            .unwrap()
            .insert(token.to_string(), key_auth.to_string());
    }
}

impl Drop for Http01 {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            if let Some(t) = self.task.as_ref() {
                t.abort();
            }
        }
    }
}

// ---------------------------------------------------------------------------
// One test's world: temp dir, fake DNS, server, http-01 responder.
// ---------------------------------------------------------------------------

pub struct Env {
    pub h01: Http01,
    pub srv: Srv,
    pub dns: ChallTestSrv,
    pub dir: tempfile::TempDir,
}

impl Env {
    pub async fn start(name: &str) -> Env {
        Self::start_with(name, &[]).await
    }

    /// Like [`Env::start`] with extra `ironseal serve` arguments.
    pub async fn start_with(name: &str, extra: &[&str]) -> Env {
        let dir = tempfile::Builder::new()
            .prefix(&format!("ironseal-{name}-"))
            .tempdir()
            .expect("tempdir");
        let dns = blocking(|| ChallTestSrv::start(dir.path())).unwrap_or_else(|e| panic!("{e}"));
        let mut srv = Srv::new(dir.path(), &dns);
        srv.extra = extra.iter().map(|s| s.to_string()).collect();
        let h01 = Http01::start(srv.h01_port).await;
        blocking(|| srv.start());
        eprintln!(
            "[{name}] ironseal at {} work dir {}",
            srv.base(),
            dir.path().display()
        );
        Env { h01, srv, dns, dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub async fn raw(&self) -> Raw {
        Raw::new(&self.srv.root(), &self.srv.dir_url()).await
    }

    /// A new instant-acme account with a key we hold (so the raw client can
    /// sign as the same account).
    pub async fn account(&self) -> (Account, AcctKey) {
        new_account(&self.srv).await
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("IRONSEAL_KEEP_TMP").is_some() {
            self.dir.disable_cleanup(true);
            eprintln!(
                "[conformance] kept work dir {}\n--- ironseal log tail ---\n{}",
                self.dir.path().display(),
                self.srv.log_tail()
            );
        }
    }
}

pub async fn new_account(srv: &Srv) -> (Account, AcctKey) {
    let key = AcctKey::generate();
    let acct = account_from_key(srv, &key).await;
    (acct, key)
}

pub async fn account_from_key(srv: &Srv, key: &AcctKey) -> Account {
    let ik = instant_acme::Key::from_pkcs8_der(rustls_pki_types::PrivatePkcs8KeyDer::from(
        key.pkcs8.clone(),
    ))
    .expect("instant-acme key");
    let (acct, _creds) = Account::builder_with_root(srv.root())
        .expect("builder")
        .create_from_key(
            (
                ik,
                rustls_pki_types::PrivateKeyDer::Pkcs8(key.pkcs8.clone().into()),
            ),
            srv.dir_url(),
        )
        .await
        .unwrap_or_else(|e| panic!("newAccount: {e}"));
    acct
}

/// The ACME problem type of an instant-acme error ("" when it is not a problem).
pub fn api_type(e: &instant_acme::Error) -> String {
    match e {
        instant_acme::Error::Api(p) => p.r#type.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

// ---------------------------------------------------------------------------
// Keys and JWS (josekit signs; we assemble the flattened JSON by hand so the
// negative cases can break it in every way).
// ---------------------------------------------------------------------------

pub struct AcctKey {
    /// PKCS#8 DER of a P-256 key.
    pub pkcs8: Vec<u8>,
    /// Public JWK (kty, crv, x, y only).
    pub jwk: Value,
    signer: josekit::jws::alg::ecdsa::EcdsaJwsSigner,
}

impl AcctKey {
    pub fn generate() -> AcctKey {
        let kp = rcgen::KeyPair::generate().expect("keygen");
        AcctKey::from_pkcs8(&kp.serialize_der())
    }

    pub fn from_pkcs8(der: &[u8]) -> AcctKey {
        let kp = josekit::jws::ES256
            .key_pair_from_der(der)
            .expect("josekit key");
        let pubjwk = kp.to_jwk_public_key();
        let m = pubjwk.as_ref();
        let jwk = json!({
            "kty": m["kty"], "crv": m["crv"], "x": m["x"], "y": m["y"],
        });
        let signer = josekit::jws::ES256
            .signer_from_der(der)
            .expect("josekit signer");
        AcctKey {
            pkcs8: der.to_vec(),
            jwk,
            signer,
        }
    }

    pub fn rcgen(&self) -> rcgen::KeyPair {
        rcgen::KeyPair::try_from(self.pkcs8.as_slice()).expect("rcgen key from pkcs8")
    }

    pub fn thumbprint(&self) -> String {
        let canon = format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            self.jwk["crv"].as_str().unwrap(),
            self.jwk["x"].as_str().unwrap(),
            self.jwk["y"].as_str().unwrap()
        );
        B64.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            canon.as_bytes(),
        ))
    }

    pub fn sign(&self, input: &[u8]) -> Vec<u8> {
        self.signer.sign(input).expect("sign")
    }
}

pub fn b64(data: impl AsRef<[u8]>) -> String {
    B64.encode(data)
}

/// Flattened JWS of `payload` (already serialized; "" for POST-as-GET)
/// with the given protected header, signed by `key`.
pub fn jws_with(key: &AcctKey, protected: &Value, payload: &str) -> Value {
    let p = b64(protected.to_string());
    let pl = b64(payload);
    let sig = key.sign(format!("{p}.{pl}").as_bytes());
    json!({ "protected": p, "payload": pl, "signature": b64(sig) })
}

/// The ordinary ES256 protected header: kid when given, else jwk.
pub fn header(key: &AcctKey, kid: Option<&str>, nonce: Option<&str>, url: &str) -> Value {
    let mut h = json!({ "alg": "ES256", "url": url });
    match kid {
        Some(k) => h["kid"] = json!(k),
        None => h["jwk"] = key.jwk.clone(),
    }
    if let Some(n) = nonce {
        h["nonce"] = json!(n);
    }
    h
}

// ---------------------------------------------------------------------------
// Raw ACME client: our own hyper + rustls, trusting root.pem.
// ---------------------------------------------------------------------------

pub struct Resp {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("bad JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
    pub fn headers_all(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect()
    }
    pub fn nonce(&self) -> Option<String> {
        self.header("Replay-Nonce")
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn describe(&self) -> String {
        format!("HTTP {} {:?}\n{}", self.status, self.headers, self.text())
    }
    /// Asserts an RFC 7807 problem of `urn:ietf:params:acme:error:{kind}`
    /// with HTTP `status`, and a fresh Replay-Nonce on the error.
    #[track_caller]
    pub fn expect_problem(&self, status: u16, kind: &str, what: &str) -> Value {
        assert_eq!(
            self.status,
            status,
            "{what}: HTTP status\n{}",
            self.describe()
        );
        let ct = self.header("Content-Type").unwrap_or_default();
        assert!(
            ct.starts_with("application/problem+json"),
            "{what}: Content-Type {ct:?}\n{}",
            self.describe()
        );
        let v = self.json();
        assert_eq!(
            v["type"].as_str().unwrap_or(""),
            format!("{ERR}{kind}"),
            "{what}: problem type\n{}",
            self.describe()
        );
        assert!(
            self.nonce().is_some_and(|n| !n.is_empty()),
            "{what}: error response carries no Replay-Nonce\n{}",
            self.describe()
        );
        v
    }
    #[track_caller]
    pub fn expect_status(&self, status: u16, what: &str) -> &Self {
        assert_eq!(self.status, status, "{what}\n{}", self.describe());
        self
    }
}

pub struct Raw {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    pub dir: Value,
}

impl Raw {
    pub async fn new(root: &Path, dir_url: &str) -> Raw {
        use rustls_pki_types::pem::PemObject as _;
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pki_types::CertificateDer::pem_file_iter(root).expect("read root.pem") {
            roots.add(c.expect("root pem")).expect("add root");
        }
        let tls = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let conn = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new()).build(conn);
        let mut raw = Raw {
            client,
            dir: Value::Null,
        };
        let r = raw.get(dir_url).await;
        assert_eq!(r.status, 200, "directory: {}", r.describe());
        raw.dir = r.json();
        raw
    }

    pub fn url(&self, name: &str) -> String {
        self.dir[name]
            .as_str()
            .unwrap_or_else(|| panic!("directory has no {name}"))
            .to_string()
    }

    pub async fn request(
        &self,
        method: &str,
        url: &str,
        ctype: Option<&str>,
        body: Vec<u8>,
    ) -> Resp {
        let mut b = hyper::Request::builder().method(method).uri(url);
        if let Some(ct) = ctype {
            b = b.header("Content-Type", ct);
        }
        let req = b.body(Full::new(Bytes::from(body))).expect("request");
        let fut = self.client.request(req);
        let resp = tokio::time::timeout(Duration::from_secs(20), fut)
            .await
            .unwrap_or_else(|_| panic!("{method} {url}: timed out"))
            .unwrap_or_else(|e| panic!("{method} {url}: {e:?}"));
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.expect("read body").to_bytes();
        Resp {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        }
    }

    /// Like `request` but returns Err instead of panicking (for the crash test).
    pub async fn try_request(
        &self,
        method: &str,
        url: &str,
        ctype: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Resp, String> {
        let mut b = hyper::Request::builder().method(method).uri(url);
        if let Some(ct) = ctype {
            b = b.header("Content-Type", ct);
        }
        let req = b
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let resp = tokio::time::timeout(Duration::from_secs(20), self.client.request(req))
            .await
            .map_err(|_| "timeout".to_string())?
            .map_err(|e| format!("{e:?}"))?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(Resp {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }

    pub async fn get(&self, url: &str) -> Resp {
        self.request("GET", url, None, Vec::new()).await
    }

    pub async fn nonce(&self) -> String {
        let r = self
            .request("HEAD", &self.url("newNonce"), None, Vec::new())
            .await;
        assert_eq!(r.status, 200, "newNonce: {}", r.describe());
        r.nonce().expect("newNonce has no Replay-Nonce")
    }

    /// POSTs a JWS body (any JSON) as application/jose+json.
    pub async fn post_body(&self, url: &str, body: &Value) -> Resp {
        self.request(
            "POST",
            url,
            Some("application/jose+json"),
            body.to_string().into_bytes(),
        )
        .await
    }

    /// A correctly signed request: kid when given, else jwk; `payload` None
    /// is POST-as-GET.
    pub async fn signed(
        &self,
        key: &AcctKey,
        kid: Option<&str>,
        url: &str,
        payload: Option<&Value>,
    ) -> Resp {
        let nonce = self.nonce().await;
        let pl = payload.map(|p| p.to_string()).unwrap_or_default();
        let body = jws_with(key, &header(key, kid, Some(&nonce), url), &pl);
        self.post_body(url, &body).await
    }

    pub async fn try_signed(
        &self,
        key: &AcctKey,
        kid: &str,
        url: &str,
        payload: Option<&Value>,
    ) -> Result<Resp, String> {
        let mut last = String::new();
        for _ in 0..3 {
            let n = self
                .try_request("HEAD", &self.url("newNonce"), None, Vec::new())
                .await?
                .nonce()
                .ok_or("no nonce")?;
            let pl = payload.map(|p| p.to_string()).unwrap_or_default();
            let body = jws_with(key, &header(key, Some(kid), Some(&n), url), &pl);
            let r = self
                .try_request(
                    "POST",
                    url,
                    Some("application/jose+json"),
                    body.to_string().into_bytes(),
                )
                .await?;
            if r.status == 400 && r.text().contains("badNonce") {
                last = r.describe();
                continue;
            }
            return Ok(r);
        }
        Err(format!("badNonce three times: {last}"))
    }
}

// ---------------------------------------------------------------------------
// Orders with instant-acme
// ---------------------------------------------------------------------------

pub struct Issued {
    pub chain: String,
    pub leaf_der: Vec<u8>,
    pub cert_url: String,
    pub order_url: String,
    /// Certificate key (PKCS#8).
    pub key_pkcs8: Vec<u8>,
}

impl Issued {
    /// Serial from the certificate URL (`/acme/cert/{serial}`).
    pub fn url_serial(&self) -> String {
        self.cert_url
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string()
    }
    pub fn leaf_pem(&self) -> String {
        ironseal_conformance::certs::pem_blocks(&self.chain)
            .into_iter()
            .next()
            .expect("leaf")
    }
}

pub fn dns(name: &str) -> Identifier {
    Identifier::Dns(name.to_string())
}

pub fn ip(addr: &str) -> Identifier {
    Identifier::Ip(addr.parse().expect("ip"))
}

pub fn ident_name(i: &Identifier) -> String {
    match i {
        Identifier::Dns(d) => d.clone(),
        Identifier::Ip(a) => a.to_string(),
        other => panic!("unexpected identifier {other:?}"),
    }
}

pub fn retry() -> RetryPolicy {
    RetryPolicy::new()
        .initial_delay(Duration::from_millis(100))
        .backoff(1.5)
        .timeout(Duration::from_secs(30))
}

/// Answers every pending authorization of `order` (http-01, or dns-01 via
/// challtestsrv for wildcards) and waits for `ready`.
pub async fn authorize(
    order: &mut Order,
    h01: &Http01,
    dns: Option<&ChallTestSrv>,
) -> Result<(), String> {
    let mut auths = order.authorizations();
    while let Some(a) = auths.next().await {
        let mut a = a.map_err(|e| format!("authz: {e}"))?;
        if a.status != AuthorizationStatus::Pending {
            continue;
        }
        let kind = if a.wildcard {
            ChallengeType::Dns01
        } else {
            ChallengeType::Http01
        };
        let mut ch = a
            .challenge(kind.clone())
            .ok_or_else(|| format!("no {kind:?} challenge"))?;
        let ka = ch.key_authorization();
        match kind {
            ChallengeType::Dns01 => {
                let name = ch.identifier().identifier.clone();
                let Identifier::Dns(d) = name else {
                    return Err("dns-01 on non-DNS".into());
                };
                let dns = dns.ok_or("dns-01 needs challtestsrv")?;
                let host = format!("_acme-challenge.{}.", d.trim_start_matches("*."));
                let v = ka.dns_value();
                blocking(|| dns.set_txt(&host, &v))?;
            }
            _ => h01.set(&ch.token, ka.as_str()),
        }
        ch.set_ready()
            .await
            .map_err(|e| format!("set_ready: {e}"))?;
    }
    match order.poll_ready(&retry()).await {
        Ok(OrderStatus::Ready) => Ok(()),
        Ok(s) => Err(format!("order became {s:?}: {:?}", order.state().error)),
        Err(e) => Err(format!("poll_ready: {e}")),
    }
}

/// A CSR for `names` with `key`.
pub fn csr(names: &[String], key: &rcgen::KeyPair) -> Vec<u8> {
    let mut params = rcgen::CertificateParams::new(names.to_vec()).expect("csr params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.serialize_request(key).expect("csr").der().to_vec()
}

/// newOrder → authorize → finalize (fresh key unless given) → download.
pub async fn issue(
    acct: &Account,
    h01: &Http01,
    dns: Option<&ChallTestSrv>,
    idents: &[Identifier],
    key: Option<&AcctKey>,
) -> Result<Issued, String> {
    let mut order = acct
        .new_order(&NewOrder::new(idents))
        .await
        .map_err(|e| format!("newOrder: {e}"))?;
    finish(&mut order, h01, dns, idents, key).await
}

pub async fn finish(
    order: &mut Order,
    h01: &Http01,
    dns: Option<&ChallTestSrv>,
    idents: &[Identifier],
    key: Option<&AcctKey>,
) -> Result<Issued, String> {
    authorize(order, h01, dns).await?;
    let names: Vec<String> = idents.iter().map(ident_name).collect();
    let owned;
    let key = match key {
        Some(k) => k,
        None => {
            owned = AcctKey::generate();
            &owned
        }
    };
    order
        .finalize_csr(&csr(&names, &key.rcgen()))
        .await
        .map_err(|e| format!("finalize: {e}"))?;
    let chain = order
        .poll_certificate(&retry())
        .await
        .map_err(|e| format!("certificate: {e}"))?;
    let cert_url = order
        .state()
        .certificate
        .clone()
        .ok_or("valid order without certificate URL")?;
    let leaf_pem = ironseal_conformance::certs::pem_blocks(&chain)
        .into_iter()
        .next()
        .ok_or("no certificate in chain")?;
    let leaf_der = pem_to_der(&leaf_pem);
    Ok(Issued {
        chain,
        leaf_der,
        cert_url,
        order_url: order.url().to_string(),
        key_pkcs8: key.pkcs8.clone(),
    })
}

pub fn pem_to_der(pem: &str) -> Vec<u8> {
    let b: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    base64::engine::general_purpose::STANDARD
        .decode(b.trim())
        .expect("PEM base64")
}

// ---------------------------------------------------------------------------
// openssl / CRL helpers
// ---------------------------------------------------------------------------

/// Normalized serial: uppercase hex without leading zero bytes.
pub fn norm_serial(s: &str) -> String {
    let s = s.trim().replace(':', "").to_ascii_uppercase();
    let t = s.trim_start_matches('0');
    if t.is_empty() {
        "0".into()
    } else {
        t.to_string()
    }
}

/// Serial of a DER certificate as uppercase hex (x509-cert).
pub fn der_serial(der: &[u8]) -> String {
    use x509_cert::der::Decode as _;
    let c = x509_cert::Certificate::from_der(der).expect("parse certificate");
    norm_serial(&hex_upper(c.tbs_certificate().serial_number().as_bytes()))
}

pub fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// The CRL distribution point URI of a PEM certificate.
pub fn crl_dp(leaf_pem_path: &Path) -> String {
    let mut c = Command::new("openssl");
    c.args(["x509", "-noout", "-ext", "crlDistributionPoints", "-in"])
        .arg(leaf_pem_path);
    let o = proc::run(c, Duration::from_secs(30));
    o.expect_success("openssl x509 -ext crlDistributionPoints");
    o.stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("URI:").map(str::to_string))
        .unwrap_or_else(|| panic!("no CRL DP URI in {}", o.stdout))
}

/// Downloads the DER CRL at `url` into `work`.
pub fn crl_fetch(url: &str, work: &Path) -> PathBuf {
    let n = std::fs::read_dir(work).map(|d| d.count()).unwrap_or(0);
    let file = work.join(format!("crl-{n}.der"));
    let mut c = Command::new("curl");
    c.args(["-sS", "-f", "--max-time", "15", "-o"])
        .arg(&file)
        .arg(url);
    proc::run(c, Duration::from_secs(20)).expect_success("curl CRL");
    file
}

/// Downloads the DER CRL at `url` and returns the revoked serials
/// (normalized) as printed by `openssl crl -text`, plus the text.
pub fn crl_serials(url: &str, work: &Path) -> (Vec<String>, String) {
    let file = crl_fetch(url, work);
    let mut c = Command::new("openssl");
    c.args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
        .arg(&file);
    let o = proc::run(c, Duration::from_secs(30));
    o.expect_success("openssl crl -text");
    let serials = o
        .stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Serial Number:").map(norm_serial))
        .collect();
    (serials, o.stdout)
}

/// The CRL's signature verifies against `ca_file` (issuer + root, PEM) and
/// pkilint's `lint_crl` (PKIX profile) reports no ERROR/FATAL.
pub fn crl_check(crl: &Path, ca_file: &Path) {
    let mut c = Command::new("openssl");
    c.args(["crl", "-inform", "DER", "-noout", "-in"])
        .arg(crl)
        .arg("-CAfile")
        .arg(ca_file);
    let o = proc::run(c, Duration::from_secs(30));
    assert!(
        o.success() && o.combined().contains("verify OK"),
        "CRL signature does not verify:\n{}",
        o.describe()
    );
    let bin = ironseal_conformance::clients::venv().join("bin/lint_crl");
    let mut c = Command::new(&bin);
    c.args([
        "lint",
        "-t",
        "CRL",
        "-p",
        "PKIX",
        "-s",
        "ERROR",
        "-f",
        "TEXT",
        "--document-format",
        "DER",
    ])
    .arg(crl);
    let o = proc::run(c, Duration::from_secs(60));
    assert!(!o.timed_out(), "lint_crl timed out");
    let findings: Vec<&str> = o
        .stdout
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("FATAL"))
        .collect();
    assert!(
        findings.is_empty() && o.success(),
        "lint_crl failed or reports ERROR/FATAL findings:\n{}",
        o.describe()
    );
}

/// GET renewalInfo/{certID}: (start, end, Retry-After).
pub async fn ari(
    raw: &Raw,
    cert_id: &str,
) -> (time::OffsetDateTime, time::OffsetDateTime, Option<String>) {
    let r = raw
        .get(&format!("{}/{cert_id}", raw.url("renewalInfo")))
        .await;
    assert_eq!(r.status, 200, "renewalInfo {cert_id}: {}", r.describe());
    let v = r.json();
    let p = |k: &str| {
        time::OffsetDateTime::parse(
            v["suggestedWindow"][k]
                .as_str()
                .unwrap_or_else(|| panic!("no {k}: {v}")),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("RFC 3339")
    };
    (p("start"), p("end"), r.header("Retry-After"))
}

/// ARI certID of a PEM certificate file (conformance::certs, x509-cert based).
pub fn cert_id_of(pem: &str, work: &Path) -> String {
    let n = std::fs::read_dir(work).map(|d| d.count()).unwrap_or(0);
    let f = work.join(format!("ari-{n}.pem"));
    std::fs::write(&f, pem).expect("write pem");
    ironseal_conformance::certs::ari_cert_id(&f)
}

pub fn new_account_payload() -> Value {
    json!({ "termsOfServiceAgreed": true })
}
