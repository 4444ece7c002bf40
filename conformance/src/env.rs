//! One test's world for the ironseal-only tests: a temp dir, fake DNS,
//! the [`Server`] handle and an in-test http-01 responder (the server's VA
//! is pointed at it).

#![allow(
    clippy::unwrap_used,
    reason = "test harness: a panic is a test failure"
)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use instant_acme::Account;

use crate::acme::{AcctKey, Raw};
use crate::challtestsrv::ChallTestSrv;
use crate::server::Server;

/// Runs blocking work (processes, blocking HTTP, waits) from async test code.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

// ---------------------------------------------------------------------------
// http-01 responder
// ---------------------------------------------------------------------------

#[derive(Clone, Default)]
pub struct Http01 {
    pub map: Arc<Mutex<HashMap<String, String>>>,
    /// Tokens whose answer is held back this long (a slow client).
    pub delays: Arc<Mutex<HashMap<String, std::time::Duration>>>,
    task: Arc<Option<tokio::task::JoinHandle<()>>>,
}

impl Http01 {
    pub async fn start(port: u16) -> Http01 {
        let map: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let delays: Arc<Mutex<HashMap<String, std::time::Duration>>> = Arc::default();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind http-01 port");
        let m = map.clone();
        let d = delays.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let m = m.clone();
                let d = d.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let m = m.clone();
                            let d = d.clone();
                            async move {
                                let path = req.uri().path().to_string();
                                let tok = path
                                    .strip_prefix("/.well-known/acme-challenge/")
                                    .unwrap_or("");
                                let delay = d.lock().unwrap().get(tok).copied();
                                if let Some(delay) = delay {
                                    tokio::time::sleep(delay).await;
                                }
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
            delays,
            task: Arc::new(Some(task)),
        }
    }

    /// Like [`Http01::set`], answering only after `delay`.
    pub fn set_delayed(&self, token: &str, key_auth: &str, delay: std::time::Duration) {
        self.delays.lock().unwrap().insert(token.to_string(), delay);
        self.set(token, key_auth);
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

/// Temp dir, fake DNS, the server and an http-01 responder. Dropping it
/// kills the server and the DNS, and removes the dir unless the test failed
/// (or `IRONSEAL_KEEP_TMP` is set).
pub struct Env {
    pub h01: Http01,
    pub srv: Server,
    pub dns: ChallTestSrv,
    pub dir: tempfile::TempDir,
}

impl Env {
    pub async fn start(name: &str) -> Env {
        Self::start_opts(name, None, &[]).await
    }

    /// Like [`Env::start`] with a config file holding `toml`
    /// (`--config`; the harness's flags win over the file).
    pub async fn start_with_config(name: &str, toml: &str) -> Env {
        Self::start_opts(name, Some(toml), &[]).await
    }

    /// Like [`Env::start`] with extra `ironseal serve` arguments.
    pub async fn start_with(name: &str, extra: &[&str]) -> Env {
        Self::start_opts(name, None, extra).await
    }

    /// Like [`Env::start`] with an optional config file holding `toml` and
    /// extra `ironseal serve` arguments.
    pub async fn start_opts(name: &str, toml: Option<&str>, extra: &[&str]) -> Env {
        let dir = tempfile::Builder::new()
            .prefix(&format!("ironseal-{name}-"))
            .tempdir()
            .expect("tempdir");
        let dns = blocking(|| ChallTestSrv::start(dir.path())).unwrap_or_else(|e| panic!("{e}"));
        let mut srv = Server::new(dir.path(), &dns.dns_addr());
        // ARI clients here poll again quickly.
        srv.ari_retry_after_secs = Some(1);
        if let Some(t) = toml {
            srv.set_config(t);
        }
        srv.extra = extra.iter().map(|s| s.to_string()).collect();
        let h01 = Http01::start(srv.h01_port).await;
        blocking(|| srv.start());
        eprintln!(
            "[{name}] ironseal at {} work dir {}",
            srv.base_url(),
            dir.path().display()
        );
        Env { h01, srv, dns, dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub async fn raw(&self) -> Raw {
        Raw::new(&self.srv).await
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

pub async fn new_account(srv: &Server) -> (Account, AcctKey) {
    let key = AcctKey::generate();
    let acct = account_from_key(srv, &key).await;
    (acct, key)
}

pub async fn account_from_key(srv: &Server, key: &AcctKey) -> Account {
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
            srv.directory_url(),
        )
        .await
        .unwrap_or_else(|e| panic!("newAccount: {e}"));
    acct
}
