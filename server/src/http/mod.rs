//! Listener plumbing: TLS and plain HTTP accept loops on hyper, with a
//! connection cap per listener and per client IP, a first-byte / handshake
//! timeout, header read and idle timeouts, HTTP/2 keep-alive pings, a
//! per-request deadline, a bound on bodies in flight, and graceful
//! shutdown.

pub mod connections;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use rustls_pki_types::CertificateDer;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use self::connections::{ConnectionCaps, Connections};

/// The response body type used throughout the server.
pub type Body = Full<Bytes>;

/// A complete body from bytes.
pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into())
}

/// A plain-text response.
pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(full(body))
        .unwrap_or_else(|_| Response::new(full(Bytes::new())))
}

/// The certificate chain a TLS client sent (leaf first), attached to each
/// request of its connection as a request extension.
///
/// It proves only that the client holds the leaf's private key (the
/// handshake's CertificateVerify); the chain itself is NOT verified by the
/// TLS layer. Only `client_cert::ClientCertAuth::verify` turns it
/// into an identity.
#[derive(Clone, Debug)]
pub struct PeerCertificates(pub Arc<Vec<CertificateDer<'static>>>);

/// A slot for work a front end does once per TLS connection and reuses
/// on the connection's later requests (EST: the client certificate chain
/// checked against a label's bootstrap CA). Attached, like
/// [`PeerCertificates`], to every request of a connection that presented
/// a client certificate; the chain cannot change within a connection
/// (rustls offers neither renegotiation nor TLS 1.3 post-handshake
/// authentication), so what was proven about it stays proven, and the
/// front end decides how long (validity) a memo may be used.
#[derive(Clone, Default)]
pub struct ConnMemo(Arc<std::sync::Mutex<Option<Arc<dyn std::any::Any + Send + Sync>>>>);

impl ConnMemo {
    /// The memo, if one of type `T` is stored.
    pub fn get<T: std::any::Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let slot = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.clone().and_then(|v| v.downcast::<T>().ok())
    }

    /// Stores `value`, replacing any earlier memo.
    pub fn set<T: std::any::Any + Send + Sync>(&self, value: Arc<T>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(value);
    }
}

impl std::fmt::Debug for ConnMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnMemo")
    }
}

/// The connection's RFC 9266 `tls-exporter` channel-binding value (TLS 1.3
/// only: the keying-material exporter of RFC 8446 §7.5 with label
/// `EXPORTER-Channel-Binding`, no context, 32 bytes), attached to each
/// request of the connection. EST checks it against the CSR's
/// challengePassword (RFC 7030 §3.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsExporter(pub [u8; ironseal_protocol::est::TLS_EXPORTER_LEN]);

impl TlsExporter {
    /// The value for `conn`, or `None` before TLS 1.3.
    fn of(conn: &rustls::ServerConnection) -> Option<TlsExporter> {
        if conn.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3) {
            return None;
        }
        let mut out = [0u8; ironseal_protocol::est::TLS_EXPORTER_LEN];
        conn.export_keying_material(&mut out, ironseal_protocol::est::TLS_EXPORTER_LABEL, None)
            .ok()?;
        Some(TlsExporter(out))
    }
}

/// Timeouts and caps applied to every connection and request of a
/// listener.
#[derive(Clone, Copy)]
pub struct Limits {
    /// Time for the TLS handshake, the client's first bytes, and each
    /// request's headers.
    pub header_read_timeout: Duration,
    /// Deadline for one request.
    pub request_timeout: Duration,
    /// A connection with no request in flight for this long is closed
    /// (HTTP/1 keep-alive and HTTP/2 alike).
    pub idle_timeout: Duration,
    /// Open connections per listener and per client IP.
    pub connections: ConnectionCaps,
    /// Requests with a body handled at once per listener: bounds how
    /// many bodies are buffered before their sender is authenticated.
    pub max_body_requests: usize,
}

/// The HTTP/2 connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Waits up to `limit` for the client's first bytes and tells the
/// HTTP/2 preface from HTTP/1. `None`: nothing in time, or closed.
/// (hyper-util's own sniffing has no timeout: a silent socket would be
/// held for ever.)
async fn sniff_h2(stream: &TcpStream, limit: Duration) -> Option<bool> {
    let mut buf = [0u8; 24];
    let sniff = async {
        loop {
            let n = stream.peek(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            if buf[..n] != H2_PREFACE[..n] {
                return Some(false);
            }
            if n == H2_PREFACE.len() {
                return Some(true);
            }
            // A partial preface: wait for the rest.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(limit, sniff).await.ok().flatten()
}

/// Requests in flight on one connection and when the last one ended.
struct Activity {
    in_flight: AtomicUsize,
    idle_since: std::sync::Mutex<Instant>,
}

/// Marks one request in flight until dropped.
struct Busy(Arc<Activity>);

impl Activity {
    fn new() -> Arc<Activity> {
        Arc::new(Activity {
            in_flight: AtomicUsize::new(0),
            idle_since: std::sync::Mutex::new(Instant::now()),
        })
    }

    fn busy(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    /// How long the connection has had nothing in flight (zero while busy).
    fn idle_for(&self) -> Duration {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return Duration::ZERO;
        }
        self.idle_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        *self.0.idle_since.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

fn http1(limits: Limits) -> http1::Builder {
    let mut b = http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    b
}

fn http2(limits: Limits) -> http2::Builder<TokioExecutor> {
    let mut b = http2::Builder::new(TokioExecutor::new());
    b.timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(limits.idle_timeout.min(Duration::from_secs(30))))
        .keep_alive_timeout(limits.header_read_timeout);
    b
}

/// Runs one connection until it ends: closed gracefully once idle for
/// `limits.idle_timeout` or when the server shuts down.
async fn drive<C>(
    conn: C,
    activity: Arc<Activity>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) where
    C: GracefulConnection,
{
    let mut conn = std::pin::pin!(conn);
    let check = (limits.idle_timeout / 4).max(Duration::from_millis(250));
    let mut closing = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = tokio::time::sleep(check), if !closing => {
                if activity.idle_for() >= limits.idle_timeout {
                    connections::CLOSED_IDLE.fetch_add(1, Ordering::Relaxed);
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
            _ = shutdown.changed(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// The address of the client that opened the connection, attached to
/// every request (rate limits per client IP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// What every request of a connection carries along.
#[derive(Clone)]
struct ConnInfo {
    limits: Limits,
    client: SocketAddr,
    peer: Option<PeerCertificates>,
    memo: Option<ConnMemo>,
    exporter: Option<TlsExporter>,
    bodies: Arc<Semaphore>,
    activity: Arc<Activity>,
}

/// Wraps a handler with the request deadline and the body bound;
/// attaches the client's address and the connection's client
/// certificates, if any.
async fn with_deadline<F, Fut>(
    info: ConnInfo,
    f: F,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, Infallible>
where
    F: Fn(Request<Incoming>) -> Fut,
    Fut: Future<Output = Response<Body>>,
{
    use hyper::body::Body as _;
    let _busy = info.activity.busy();
    req.extensions_mut().insert(ClientAddr(info.client));
    if let Some(p) = info.peer {
        req.extensions_mut().insert(p);
    }
    if let Some(m) = info.memo {
        req.extensions_mut().insert(m);
    }
    if let Some(x) = info.exporter {
        req.extensions_mut().insert(x);
    }
    let has_body = !req.body().is_end_stream();
    let bodies = info.bodies;
    let run = async move {
        let _permit = match has_body {
            true => Some(bodies.acquire_owned().await),
            false => None,
        };
        f(req).await
    };
    match tokio::time::timeout(info.limits.request_timeout, run).await {
        Ok(r) => Ok(r),
        Err(_) => Ok(text(StatusCode::SERVICE_UNAVAILABLE, "request timed out\n")),
    }
}

/// Serves `handler` on `listener`, over TLS when `tls` is given, until
/// `shutdown` flips; then drains open connections for up to 10 s.
pub async fn serve<F, Fut>(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Limits,
    handler: F,
    mut shutdown: watch::Receiver<bool>,
) where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    let acceptor = tls.map(TlsAcceptor::from);
    let conns = Connections::new(limits.connections);
    let bodies = Arc::new(Semaphore::new(limits.max_body_requests.max(1)));
    loop {
        let (stream, client) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let slot = match conns.admit(client.ip()) {
            Ok(s) => s,
            Err(why) => {
                connections::count_refused(why);
                tracing::debug!(%client, ?why, "connection refused: over the connection cap");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let acceptor = acceptor.clone();
        let bodies = bodies.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let activity = Activity::new();
            let mut info = ConnInfo {
                limits,
                client,
                peer: None,
                memo: None,
                exporter: None,
                bodies,
                activity: activity.clone(),
            };
            match acceptor {
                Some(acc) => {
                    let accepted =
                        tokio::time::timeout(limits.header_read_timeout, acc.accept(stream)).await;
                    let tls = match accepted {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%client, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            connections::CLOSED_IDLE.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    };
                    let conn = tls.get_ref().1;
                    info.peer = conn.peer_certificates().filter(|c| !c.is_empty()).map(|c| {
                        PeerCertificates(Arc::new(
                            c.iter().map(|d| d.clone().into_owned()).collect(),
                        ))
                    });
                    info.memo = info.peer.as_ref().map(|_| ConnMemo::default());
                    info.exporter = TlsExporter::of(conn);
                    let h2 = conn.alpn_protocol() == Some(b"h2");
                    let service = hyper::service::service_fn(move |req| {
                        with_deadline(info.clone(), handler.clone(), req)
                    });
                    let io = TokioIo::new(tls);
                    match h2 {
                        true => {
                            let c = http2(limits).serve_connection(io, service);
                            drive(c, activity, limits, shutdown).await
                        }
                        false => {
                            let c = http1(limits).serve_connection(io, service);
                            drive(c, activity, limits, shutdown).await
                        }
                    }
                }
                None => {
                    let Some(h2) = sniff_h2(&stream, limits.header_read_timeout).await else {
                        connections::CLOSED_IDLE.fetch_add(1, Ordering::Relaxed);
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| {
                        with_deadline(info.clone(), handler.clone(), req)
                    });
                    let io = TokioIo::new(stream);
                    match h2 {
                        true => {
                            let c = http2(limits).serve_connection(io, service);
                            drive(c, activity, limits, shutdown).await
                        }
                        false => {
                            let c = http1(limits).serve_connection(io, service);
                            drive(c, activity, limits, shutdown).await
                        }
                    }
                }
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while conns.open() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if conns.open() > 0 {
        tracing::warn!(
            open = conns.open(),
            "connections still open after 10 s; closing them"
        );
    }
}
