//! Listener plumbing: TLS and plain HTTP accept loops on hyper, with header
//! read timeouts, a per-request deadline and graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rustls_pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

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

/// Timeouts applied to every connection and request.
#[derive(Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
}

fn builder(limits: Limits) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256);
    b
}

/// The address of the client that opened the connection, attached to
/// every request (rate limits per client IP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// Wraps a handler with the request deadline; attaches the client's
/// address and the connection's client certificates, if any.
async fn with_deadline<F, Fut>(
    limits: Limits,
    f: F,
    client: SocketAddr,
    peer: Option<PeerCertificates>,
    exporter: Option<TlsExporter>,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, Infallible>
where
    F: Fn(Request<Incoming>) -> Fut,
    Fut: Future<Output = Response<Body>>,
{
    req.extensions_mut().insert(ClientAddr(client));
    if let Some(p) = peer {
        req.extensions_mut().insert(p);
    }
    if let Some(x) = exporter {
        req.extensions_mut().insert(x);
    }
    match tokio::time::timeout(limits.request_timeout, f(req)).await {
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
    let graceful = GracefulShutdown::new();
    let acceptor = tls.map(TlsAcceptor::from);
    loop {
        let (stream, peer) = tokio::select! {
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
        let _ = stream.set_nodelay(true);
        let client = peer;
        let handler = handler.clone();
        let b = builder(limits);
        match &acceptor {
            Some(acc) => {
                let acc = acc.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let tls =
                        match tokio::time::timeout(limits.header_read_timeout, acc.accept(stream))
                            .await
                        {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => return,
                        };
                    let peer = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .filter(|c| !c.is_empty())
                        .map(|c| {
                            PeerCertificates(Arc::new(
                                c.iter().map(|d| d.clone().into_owned()).collect(),
                            ))
                        });
                    let exporter = TlsExporter::of(tls.get_ref().1);
                    let service = hyper::service::service_fn(move |req| {
                        with_deadline(limits, handler.clone(), client, peer.clone(), exporter, req)
                    });
                    let conn = b.serve_connection_with_upgrades(TokioIo::new(tls), service);
                    let _ = watcher.watch(conn.into_owned()).await;
                });
            }
            None => {
                let service = hyper::service::service_fn(move |req| {
                    with_deadline(limits, handler.clone(), client, None, None, req)
                });
                let conn = b.serve_connection_with_upgrades(TokioIo::new(stream), service);
                let fut = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    let _ = fut.await;
                });
            }
        }
    }
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => {
            tracing::warn!("connections still open after 10 s; closing them");
        }
    }
}
