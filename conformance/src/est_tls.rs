//! A blocking HTTP/1.1-over-TLS connection for EST tests and the EST
//! benchmark: one TCP + rustls connection kept alive for several requests,
//! with the connection's RFC 9266 `tls-exporter` value at hand.
//!
//! curl cannot read a connection's exporter value, so the channel-binding
//! tests (RFC 7030 §3.5 with RFC 9266) need a client that owns the TLS
//! session: this one computes the value on the very connection that then
//! carries the CSR.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// RFC 9266 §2: the exporter label of the `tls-exporter` channel binding.
pub const TLS_EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";
/// RFC 9266 §2: the `tls-exporter` value is 32 bytes.
pub const TLS_EXPORTER_LEN: usize = 32;

/// Which TLS versions the client offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.3 only.
    Tls13,
    /// TLS 1.2 only.
    Tls12,
}

/// A rustls client configuration trusting `root` (PEM), offering only
/// `version`, presenting `client` (PEM chain, PEM key) when given. No
/// ALPN: the server speaks HTTP/1.1.
pub fn client_config(
    root: &Path,
    client: Option<(&Path, &Path)>,
    version: TlsVersion,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(root).map_err(|e| format!("{}: {e}", root.display()))? {
        roots
            .add(c.map_err(|e| format!("{}: {e}", root.display()))?)
            .map_err(|e| format!("{}: {e}", root.display()))?;
    }
    let versions: &[&'static rustls::SupportedProtocolVersion] = match version {
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
        TlsVersion::Tls12 => &[&rustls::version::TLS12],
    };
    let builder = rustls::ClientConfig::builder_with_protocol_versions(versions)
        .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| format!("{}: {e}", cert.display()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{}: {e}", cert.display()))?;
            let key =
                PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate: {e}"))?
        }
    };
    Ok(Arc::new(config))
}

/// One HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
}

/// A kept-alive HTTP/1.1 connection over TLS.
pub struct EstConn {
    host: String,
    stream: BufReader<StreamOwned<ClientConnection, TcpStream>>,
}

impl EstConn {
    /// Connects to `addr` (`127.0.0.1:PORT`) with SNI `host` and completes
    /// the handshake.
    pub fn connect(
        addr: &str,
        host: &str,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<EstConn, String> {
        let name = ServerName::try_from(host.to_string()).map_err(|e| format!("{host}: {e}"))?;
        let tcp = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        let conn = ClientConnection::new(config, name).map_err(|e| e.to_string())?;
        let mut stream = StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|e| format!("TLS handshake with {addr}: {e}"))?;
        }
        Ok(EstConn {
            host: host.to_string(),
            stream: BufReader::new(stream),
        })
    }

    /// The negotiated TLS version.
    pub fn version(&self) -> Option<rustls::ProtocolVersion> {
        self.stream.get_ref().conn.protocol_version()
    }

    /// This connection's keying-material exporter value for the RFC 9266
    /// `tls-exporter` binding: label `EXPORTER-Channel-Binding`, no
    /// context, 32 bytes. (Under TLS 1.2 rustls computes the RFC 5705
    /// exporter, which RFC 9266 does not define as a channel binding.)
    pub fn exporter(&self) -> Result<[u8; TLS_EXPORTER_LEN], String> {
        let mut out = [0u8; TLS_EXPORTER_LEN];
        self.stream
            .get_ref()
            .conn
            .export_keying_material(&mut out, TLS_EXPORTER_LABEL, None)
            .map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// Sends one request and reads its answer (the body must be framed by
    /// Content-Length, as ironseal's are).
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Answer, String> {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        );
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let s = self.stream.get_mut();
        s.write_all(req.as_bytes())
            .and_then(|_| s.write_all(body))
            .and_then(|_| s.flush())
            .map_err(|e| format!("write: {e}"))?;
        self.read_answer()
    }

    fn read_answer(&mut self) -> Result<Answer, String> {
        let mut line = String::new();
        self.stream
            .read_line(&mut line)
            .map_err(|e| format!("read status: {e}"))?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {line:?}"))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.stream
                .read_line(&mut line)
                .map_err(|e| format!("read header: {e}"))?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((n, v)) = l.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .ok_or("answer without Content-Length")?;
        let mut body = vec![0u8; len];
        self.stream
            .read_exact(&mut body)
            .map_err(|e| format!("read body: {e}"))?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}
