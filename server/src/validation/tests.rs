//! Network tests of the validator against real peers on loopback only:
//! `pebble-challtestsrv` (fake DNS, http-01 and tls-alpn-01 responder, one
//! child process per test, killed on drop), plus small in-process servers
//! (hyper, rustls + rcgen, a raw UDP DNS responder) for the cases
//! pebble-challtestsrv cannot produce.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use super::*;

const PEBBLE: &str = "/usr/bin/pebble-challtestsrv";
const LO4: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const TOKEN: &str = "tok_EN-abc123";
const KEYAUTH: &str = "tok_EN-abc123.thumbprintXYZ_-0123456789";
/// Upper bound for any single test step that waits on a peer.
const STEP: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------- helpers

/// A port that is currently free for both TCP and UDP on 127.0.0.1.
fn free_port() -> u16 {
    for _ in 0..50 {
        let t = std::net::TcpListener::bind((LO4, 0)).unwrap();
        let p = t.local_addr().unwrap().port();
        if std::net::UdpSocket::bind((LO4, p)).is_ok() {
            return p;
        }
    }
    panic!("no free port found");
}

/// A `pebble-challtestsrv` child process bound to 127.0.0.1 only.
struct Pebble {
    child: Child,
    dns: u16,
    http: u16,
    tlsalpn: u16,
    mgmt: u16,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Pebble {
    /// Starts the peer on fresh ports; if it exits (a port was taken between
    /// choosing and binding) it is retried on new ports. Readiness waits up to
    /// 20 s so a loaded machine does not fail the test.
    async fn start() -> Pebble {
        for _attempt in 0..3 {
            if let Some(p) = Self::try_start().await {
                return p;
            }
        }
        panic!("pebble-challtestsrv did not start listening after 3 attempts");
    }

    async fn try_start() -> Option<Pebble> {
        let (dns, http, tlsalpn, mgmt) = (free_port(), free_port(), free_port(), free_port());
        let child = Command::new(PEBBLE)
            .args(["-dns01", &format!("127.0.0.1:{dns}")])
            .args(["-http01", &format!("127.0.0.1:{http}")])
            .args(["-https01", ""])
            .args(["-tlsalpn01", &format!("127.0.0.1:{tlsalpn}")])
            .args(["-management", &format!("127.0.0.1:{mgmt}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn pebble-challtestsrv");
        let mut p = Pebble {
            child,
            dns,
            http,
            tlsalpn,
            mgmt,
        };
        // Ready when every TCP listener accepts (the DNS server also listens
        // on TCP on the same port).
        let deadline = Instant::now() + Duration::from_secs(20);
        for port in [mgmt, http, tlsalpn, dns] {
            loop {
                if TcpStream::connect((LO4, port)).await.is_ok() {
                    break;
                }
                if matches!(p.child.try_wait(), Ok(Some(_))) || Instant::now() >= deadline {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        Some(p)
    }

    fn cfg(&self) -> ValidationConfig {
        ValidationConfig {
            http01_port: self.http,
            tlsalpn01_port: self.tlsalpn,
            dns_resolver: Some(SocketAddr::new(LO4, self.dns)),
            timeout: STEP,
            address_policy: AddressPolicy::public_only().allow_loopback(),
            max_concurrent: 64,
            hosts: None,
        }
    }

    fn validator(&self) -> Validator {
        Validator::new(self.cfg()).unwrap()
    }

    /// POSTs a JSON body to the management API and asserts 200.
    async fn mgmt(&self, path: &str, json: &str) {
        let fut = async {
            let tcp = TcpStream::connect((LO4, self.mgmt)).await.unwrap();
            let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
                .await
                .unwrap();
            tokio::spawn(conn);
            let req = Request::post(path)
                .header("host", format!("127.0.0.1:{}", self.mgmt))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(json.to_string())))
                .unwrap();
            let resp = tx.send_request(req).await.unwrap();
            let status = resp.status();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(status, 200, "management {path} {json}: {body:?}");
        };
        tokio::time::timeout(STEP, fut)
            .await
            .expect("management API timed out");
    }

    async fn add_http01(&self, token: &str, content: &str) {
        self.mgmt(
            "/add-http01",
            &format!(r#"{{"token":"{token}","content":"{content}"}}"#),
        )
        .await;
    }

    async fn add_txt(&self, host: &str, value: &str) {
        self.mgmt(
            "/set-txt",
            &format!(r#"{{"host":"{host}.","value":"{value}"}}"#),
        )
        .await;
    }

    async fn add_tlsalpn01(&self, host: &str, content: &str) {
        self.mgmt(
            "/add-tlsalpn01",
            &format!(r#"{{"host":"{host}","content":"{content}"}}"#),
        )
        .await;
    }
}

fn dns(name: &str) -> Target {
    Target::Dns(name.to_string())
}

async fn run(
    v: &Validator,
    kind: ChallengeKind,
    t: &Target,
    ka: &str,
) -> Result<(), ValidationError> {
    // The validator bounds itself; this outer bound only guards the test.
    tokio::time::timeout(STEP * 3, v.validate(kind, t, TOKEN, ka))
        .await
        .expect("validate() exceeded its own timeout")
}

fn expect_err(r: Result<(), ValidationError>, acme_type: &str, needle: &str) -> ValidationError {
    let e = match r {
        Ok(()) => panic!("expected a {acme_type} error containing {needle:?}, got success"),
        Err(e) => e,
    };
    assert_eq!(e.acme_type(), acme_type, "wrong error type: {e:?}");
    assert!(
        e.to_string().contains(needle),
        "error message {:?} does not contain {needle:?}",
        e.to_string()
    );
    e
}

/// A hyper HTTP/1.1 server on `addr` answering every request with `handler`.
async fn http_server<F>(addr: SocketAddr, handler: F) -> SocketAddr
where
    F: Fn(&Request<hyper::body::Incoming>) -> (u16, String) + Send + Sync + 'static,
{
    let l = TcpListener::bind(addr).await.unwrap();
    let local = l.local_addr().unwrap();
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let h = handler.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let (code, body) = h(&req);
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            Response::builder()
                                .status(code)
                                .body(Full::new(Bytes::from(body)))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    local
}

/// A listener that accepts connections and never sends a byte.
async fn black_hole() -> u16 {
    let l = TcpListener::bind((LO4, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    port
}

/// What the raw DNS responder answers.
#[derive(Clone)]
enum DnsMode {
    /// RCODE 3 to every query.
    NxDomain,
    /// These TXT records (each a list of character-strings) for TXT
    /// queries, NOERROR/NODATA otherwise.
    Txt(Vec<Vec<&'static [u8]>>),
}

/// A minimal UDP DNS responder on 127.0.0.1 (hand-built RFC 1035 messages).
async fn dns_server(mode: DnsMode) -> SocketAddr {
    let sock = UdpSocket::bind((LO4, 0)).await.unwrap();
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = sock.recv_from(&mut buf).await {
            let q = &buf[..n];
            if n < 12 {
                continue;
            }
            // End of the (single) question: QNAME labels, then QTYPE+QCLASS.
            let mut i = 12;
            while i < n && q[i] != 0 {
                i += 1 + q[i] as usize;
            }
            let qend = i + 5;
            if qend > n {
                continue;
            }
            let qtype = u16::from_be_bytes([q[i + 1], q[i + 2]]);
            let mut r = Vec::with_capacity(512);
            r.extend_from_slice(&q[..2]); // id
            r.push(0x80 | (q[2] & 0x79)); // QR, opcode, RD
            let rcode = match mode {
                DnsMode::NxDomain => 3,
                DnsMode::Txt(_) => 0,
            };
            r.push(0x80 | rcode); // RA, RCODE
            r.extend_from_slice(&[0, 1]); // QDCOUNT
            let answers: Vec<Vec<u8>> = match (&mode, qtype) {
                (DnsMode::Txt(recs), 16) => recs
                    .iter()
                    .map(|strings| {
                        let mut rd = Vec::new();
                        for s in strings {
                            rd.push(s.len() as u8);
                            rd.extend_from_slice(s);
                        }
                        rd
                    })
                    .collect(),
                _ => Vec::new(),
            };
            r.extend_from_slice(&(answers.len() as u16).to_be_bytes()); // ANCOUNT
            r.extend_from_slice(&[0, 0, 0, 0]); // NSCOUNT, ARCOUNT
            r.extend_from_slice(&q[12..qend]);
            for rd in answers {
                r.extend_from_slice(&[0xC0, 12, 0, 16, 0, 1, 0, 0, 0, 0]);
                r.extend_from_slice(&(rd.len() as u16).to_be_bytes());
                r.extend_from_slice(&rd);
            }
            let _ = sock.send_to(&r, peer).await;
        }
    });
    addr
}

/// A rustls server on 127.0.0.1 presenting `cert` with the given ALPN list.
async fn tls_server(cert: rcgen::Certificate, key: rcgen::KeyPair, alpn: Vec<Vec<u8>>) -> u16 {
    tls_server_on(LO4, cert, key, alpn).await.0
}

/// Like [`tls_server`] on `ip`; also returns the SNI of the last handshake.
async fn tls_server_on(
    ip: IpAddr,
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
    alpn: Vec<Vec<u8>>,
) -> (u16, Arc<std::sync::Mutex<Option<String>>>) {
    use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    // `with_single_cert` would reject the certificate: rustls parses it with
    // webpki to check the key, and webpki refuses the critical acmeIdentifier
    // extension. A fixed resolver skips that check.
    #[derive(Debug)]
    struct Fixed(
        Arc<rustls::sign::CertifiedKey>,
        Arc<std::sync::Mutex<Option<String>>>,
    );
    impl rustls::server::ResolvesServerCert for Fixed {
        fn resolve(
            &self,
            hello: rustls::server::ClientHello<'_>,
        ) -> Option<Arc<rustls::sign::CertifiedKey>> {
            *self.1.lock().unwrap() = hello.server_name().map(str::to_string);
            Some(self.0.clone())
        }
    }
    let sni = Arc::new(std::sync::Mutex::new(None));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let signing_key = provider
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            key.serialize_der(),
        )))
        .unwrap();
    let ck = rustls::sign::CertifiedKey::new(vec![cert.der().clone()], signing_key);
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(Arc::new(ck), sni.clone())));
    cfg.alpn_protocols = alpn;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = TcpListener::bind((ip, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let a = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = a.accept(s).await {
                    use tokio::io::AsyncReadExt;
                    let mut b = [0u8; 16];
                    let _ = tokio::time::timeout(STEP, tls.read(&mut b)).await;
                }
            });
        }
    });
    (port, sni)
}

enum AcmeExt {
    None,
    Digest { of: &'static str, critical: bool },
}

fn challenge_cert(
    sans: &[&str],
    ips: &[IpAddr],
    ext: AcmeExt,
) -> (rcgen::Certificate, rcgen::KeyPair) {
    let mut p =
        rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    for ip in ips {
        p.subject_alt_names.push(rcgen::SanType::IpAddress(*ip));
    }
    if let AcmeExt::Digest { of, critical } = ext {
        let digest = key_authorization_digest(of);
        let mut v = vec![0x04, 32];
        v.extend_from_slice(&digest);
        let mut e = rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 31], v);
        e.set_criticality(critical);
        p.custom_extensions.push(e);
    }
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    (cert, key)
}

fn local_cfg(http: u16, tlsalpn: u16, dns: Option<SocketAddr>, timeout: Duration) -> Validator {
    Validator::new(ValidationConfig {
        http01_port: http,
        tlsalpn01_port: tlsalpn,
        dns_resolver: dns,
        timeout,
        address_policy: AddressPolicy::public_only().allow_loopback(),
        max_concurrent: 64,
        hosts: None,
    })
    .unwrap()
}

// ---------------------------------------------------------------- unit

#[test]
fn acme_types() {
    let cases = [
        (ValidationError::Dns(String::new()), "dns"),
        (ValidationError::Connection(String::new()), "connection"),
        (
            ValidationError::IncorrectResponse(String::new()),
            "incorrectResponse",
        ),
        (ValidationError::Tls(String::new()), "tls"),
        (ValidationError::Unauthorized(String::new()), "unauthorized"),
        (ValidationError::Malformed(String::new()), "malformed"),
        (ValidationError::Timeout, "connection"),
    ];
    for (e, t) in cases {
        assert_eq!(e.acme_type(), t);
    }
}

#[test]
fn reverse_names() {
    assert_eq!(reverse_dns_name(&LO4), "1.0.0.127.in-addr.arpa");
    assert_eq!(
        reverse_dns_name(&IpAddr::V6(Ipv6Addr::LOCALHOST)),
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa"
    );
    let v6: IpAddr = "2001:db8::567:89ab".parse().unwrap();
    assert_eq!(
        reverse_dns_name(&v6),
        "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
    );
}

#[test]
fn txt_value_vector() {
    // RFC 8555 §8.4: base64url(SHA-256("abc")) — known SHA-256 test vector.
    assert_eq!(
        dns01_txt_value("abc"),
        "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
    );
}

#[test]
fn resolv_conf_parsing() {
    let ips = resolve::parse_resolv_conf(
        "# c\nnameserver 10.0.0.1\nsearch x\nnameserver ::1 # tail\nnameserver bogus\noptions ndots:2\n",
    );
    assert_eq!(
        ips,
        vec![
            "10.0.0.1".parse::<IpAddr>().unwrap(),
            "::1".parse().unwrap()
        ]
    );
}

#[test]
fn system_resolver_builds() {
    // Only meaningful where /etc/resolv.conf names a server; both outcomes are
    // well-defined errors, never a panic.
    match Validator::new(ValidationConfig::default()) {
        Ok(v) => assert_eq!(v.config().http01_port, 80),
        Err(e) => assert_eq!(e.acme_type(), "dns"),
    }
}

#[tokio::test]
async fn malformed_inputs() {
    let v = local_cfg(1, 1, Some(SocketAddr::new(LO4, 1)), STEP);
    let r = v
        .validate(
            ChallengeKind::Http01,
            &dns("example.test"),
            "bad/token",
            KEYAUTH,
        )
        .await;
    expect_err(r, "malformed", "token");
    let r = v
        .validate(ChallengeKind::Http01, &dns("bad name!"), TOKEN, KEYAUTH)
        .await;
    expect_err(r, "malformed", "not a valid DNS identifier");
    let r = v
        .validate(ChallengeKind::Dns01, &Target::Ip(LO4), TOKEN, KEYAUTH)
        .await;
    expect_err(r, "malformed", "RFC 8738");
}

// ---------------------------------------------------------------- http-01

#[tokio::test]
async fn http01_success_via_pebble_dns() {
    let p = Pebble::start().await;
    p.add_http01(TOKEN, KEYAUTH).await;
    run(
        &p.validator(),
        ChallengeKind::Http01,
        &dns("example.test"),
        KEYAUTH,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn http01_wrong_content() {
    let p = Pebble::start().await;
    p.add_http01(TOKEN, "something-else").await;
    let r = run(
        &p.validator(),
        ChallengeKind::Http01,
        &dns("example.test"),
        KEYAUTH,
    )
    .await;
    let e = expect_err(
        r,
        "incorrectResponse",
        "returned 200 but the body (14 bytes)",
    );
    assert!(
        !e.to_string().contains("something-else"),
        "body echoed: {e}"
    );
}

#[tokio::test]
async fn http01_unknown_token_at_pebble_is_empty_200() {
    // pebble-challtestsrv answers 200 with an empty body (not 404) for a
    // token it does not know; that is a wrong-content failure.
    let p = Pebble::start().await;
    let r = run(
        &p.validator(),
        ChallengeKind::Http01,
        &dns("example.test"),
        KEYAUTH,
    )
    .await;
    expect_err(
        r,
        "incorrectResponse",
        "returned 200 but the body (0 bytes)",
    );
}

#[tokio::test]
async fn http01_404() {
    // DNS from pebble (example.test → 127.0.0.1), HTTP from a local server
    // that answers 404 to everything.
    let p = Pebble::start().await;
    let addr = http_server(SocketAddr::new(LO4, 0), |_req| (404, "nope".into())).await;
    let mut cfg = p.cfg();
    cfg.http01_port = addr.port();
    let r = run(
        &Validator::new(cfg).unwrap(),
        ChallengeKind::Http01,
        &dns("example.test"),
        KEYAUTH,
    )
    .await;
    let want = format!(
        "http-01: GET http://example.test:{}/.well-known/acme-challenge/{TOKEN} returned 404",
        addr.port()
    );
    expect_err(r, "unauthorized", &want);
}

#[tokio::test]
async fn http01_follows_redirect_on_same_port() {
    let p = Pebble::start().await;
    p.add_http01("second", KEYAUTH).await;
    p.mgmt(
        "/add-redirect",
        &format!(
            r#"{{"path":"/.well-known/acme-challenge/{TOKEN}","targetURL":"http://other.test:{}/.well-known/acme-challenge/second"}}"#,
            p.http
        ),
    )
    .await;
    run(
        &p.validator(),
        ChallengeKind::Http01,
        &dns("example.test"),
        KEYAUTH,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn http01_refuses_redirect_to_other_port() {
    let p = Pebble::start().await;
    p.add_http01("second", KEYAUTH).await;
    p.mgmt(
        "/add-redirect",
        &format!(
            r#"{{"path":"/.well-known/acme-challenge/{TOKEN}","targetURL":"http://example.test:{}/.well-known/acme-challenge/second"}}"#,
            p.mgmt
        ),
    )
    .await;
    let r = run(
        &p.validator(),
        ChallengeKind::Http01,
        &dns("example.test"),
        KEYAUTH,
    )
    .await;
    expect_err(r, "incorrectResponse", "only followed to port");
}

#[tokio::test]
async fn http01_redirect_loop_is_bounded() {
    // A server that always answers 302 to another challenge path.
    let l = TcpListener::bind((LO4, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h2 = hits.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let h = h2.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req| {
                    h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            Response::builder()
                                .status(302)
                                .header("location", "/.well-known/acme-challenge/again")
                                .body(Full::new(Bytes::new()))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    let v = local_cfg(port, 1, Some(SocketAddr::new(LO4, 1)), STEP);
    let r = run(&v, ChallengeKind::Http01, &Target::Ip(LO4), KEYAUTH).await;
    expect_err(r, "incorrectResponse", "too many redirects");
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        MAX_REDIRECTS_PLUS_ONE
    );
}

const MAX_REDIRECTS_PLUS_ONE: usize = http01::MAX_REDIRECTS + 1;

#[tokio::test]
async fn http01_no_address_records() {
    let p = Pebble::start().await;
    p.mgmt("/set-default-ipv4", r#"{"ip":""}"#).await;
    p.mgmt("/set-default-ipv6", r#"{"ip":""}"#).await;
    let r = run(
        &p.validator(),
        ChallengeKind::Http01,
        &dns("example.test"),
        KEYAUTH,
    )
    .await;
    expect_err(r, "dns", "no A or AAAA records");
}

#[tokio::test]
async fn http01_servfail() {
    let p = Pebble::start().await;
    p.mgmt("/set-servfail", r#"{"host":"example.test."}"#).await;
    let r = run(
        &p.validator(),
        ChallengeKind::Http01,
        &dns("example.test"),
        KEYAUTH,
    )
    .await;
    expect_err(r, "dns", "DNS lookup of example.test failed");
}

#[tokio::test]
async fn http01_nxdomain() {
    let ns = dns_server(DnsMode::NxDomain).await;
    let v = local_cfg(1, 1, Some(ns), STEP);
    let r = run(&v, ChallengeKind::Http01, &dns("missing.test"), KEYAUTH).await;
    expect_err(r, "dns", "NXDOMAIN");
}

#[tokio::test]
async fn http01_connection_refused() {
    let p = Pebble::start().await;
    let mut cfg = p.cfg();
    // A port nobody listens on: bind, learn the port, close.
    cfg.http01_port = {
        let l = std::net::TcpListener::bind((LO4, 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    // Pebble's default AAAA (::1) would add a second refused address; keep
    // the check to IPv4.
    p.mgmt("/set-default-ipv6", r#"{"ip":""}"#).await;
    let v = Validator::new(cfg).unwrap();
    let r = run(&v, ChallengeKind::Http01, &dns("example.test"), KEYAUTH).await;
    expect_err(r, "connection", "could not connect");
}

#[tokio::test]
async fn http01_timeout_on_silent_peer() {
    let port = black_hole().await;
    let v = local_cfg(
        port,
        port,
        Some(SocketAddr::new(LO4, 1)),
        Duration::from_millis(300),
    );
    let t0 = Instant::now();
    let r = run(&v, ChallengeKind::Http01, &Target::Ip(LO4), KEYAUTH).await;
    assert_eq!(r, Err(ValidationError::Timeout));
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t0.elapsed()
    );
    // tls-alpn-01 against the same silent listener (handshake never completes).
    let r = run(&v, ChallengeKind::TlsAlpn01, &Target::Ip(LO4), KEYAUTH).await;
    assert_eq!(r, Err(ValidationError::Timeout));
}

#[tokio::test]
async fn http01_body_too_large() {
    let addr = http_server(SocketAddr::new(LO4, 0), |_req| (200, "x".repeat(9000))).await;
    let v = local_cfg(addr.port(), 1, Some(SocketAddr::new(LO4, 1)), STEP);
    let r = run(&v, ChallengeKind::Http01, &Target::Ip(LO4), KEYAUTH).await;
    expect_err(r, "incorrectResponse", "larger than 8192 bytes");
}

/// Serves `KEYAUTH` + "\r\n" only if Host, User-Agent and path are exactly
/// as RFC 8555 §8.3 / RFC 8738 §7 require; otherwise 400 with the reason.
fn strict_handler(
    expected_host: String,
) -> impl Fn(&Request<hyper::body::Incoming>) -> (u16, String) {
    move |req| {
        let host = req
            .headers()
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let ua = req
            .headers()
            .get("user-agent")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if host != expected_host {
            return (400, format!("bad host {host:?}"));
        }
        if ua != "ironseal-validator" {
            return (400, format!("bad user-agent {ua:?}"));
        }
        if req.uri().path() != format!("/.well-known/acme-challenge/{TOKEN}") {
            return (404, String::new());
        }
        (200, format!("{KEYAUTH}\r\n"))
    }
}

#[tokio::test]
async fn http01_ip_identifier_v4() {
    let l = std::net::TcpListener::bind((LO4, 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let addr = http_server(
        SocketAddr::new(LO4, port),
        strict_handler(format!("127.0.0.1:{port}")),
    )
    .await;
    let v = local_cfg(addr.port(), 1, Some(SocketAddr::new(LO4, 1)), STEP);
    run(&v, ChallengeKind::Http01, &Target::Ip(LO4), KEYAUTH)
        .await
        .unwrap();
    // Same server, wrong key authorization → incorrectResponse.
    let r = run(&v, ChallengeKind::Http01, &Target::Ip(LO4), "other.ka").await;
    expect_err(r, "incorrectResponse", "is not the key authorization");
}

#[tokio::test]
async fn http01_ip_identifier_v6() {
    let lo6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let l = match std::net::TcpListener::bind((lo6, 0)) {
        Ok(l) => l,
        Err(e) => {
            println!("SKIPPED http01_ip_identifier_v6: cannot bind [::1]: {e}");
            return;
        }
    };
    let port = l.local_addr().unwrap().port();
    drop(l);
    let addr = http_server(
        SocketAddr::new(lo6, port),
        strict_handler(format!("[::1]:{port}")),
    )
    .await;
    let v = local_cfg(addr.port(), 1, Some(SocketAddr::new(LO4, 1)), STEP);
    run(&v, ChallengeKind::Http01, &Target::Ip(lo6), KEYAUTH)
        .await
        .unwrap();
}

// ---------------------------------------------------------------- dns-01

#[tokio::test]
async fn dns01_success() {
    let p = Pebble::start().await;
    p.add_txt("_acme-challenge.example.test", &dns01_txt_value(KEYAUTH))
        .await;
    run(
        &p.validator(),
        ChallengeKind::Dns01,
        &dns("example.test"),
        KEYAUTH,
    )
    .await
    .unwrap();
    // Records change between validations and the resolver must see it (no
    // cache): clear and expect failure.
    p.mgmt("/clear-txt", r#"{"host":"_acme-challenge.example.test."}"#)
        .await;
    let r = run(
        &p.validator(),
        ChallengeKind::Dns01,
        &dns("example.test"),
        KEYAUTH,
    )
    .await;
    expect_err(
        r,
        "unauthorized",
        "no TXT record found at _acme-challenge.example.test",
    );
}

#[tokio::test]
async fn dns01_same_validator_sees_changes() {
    let p = Pebble::start().await;
    let v = p.validator();
    let r = run(&v, ChallengeKind::Dns01, &dns("example.test"), KEYAUTH).await;
    expect_err(r, "unauthorized", "no TXT record");
    p.add_txt("_acme-challenge.example.test", &dns01_txt_value(KEYAUTH))
        .await;
    run(&v, ChallengeKind::Dns01, &dns("example.test"), KEYAUTH)
        .await
        .unwrap();
}

#[tokio::test]
async fn dns01_wrong_txt() {
    let p = Pebble::start().await;
    p.add_txt("_acme-challenge.example.test", "wrong-one").await;
    p.add_txt(
        "_acme-challenge.example.test",
        &dns01_txt_value("another.ka"),
    )
    .await;
    let r = run(
        &p.validator(),
        ChallengeKind::Dns01,
        &dns("example.test"),
        KEYAUTH,
    )
    .await;
    expect_err(
        r,
        "incorrectResponse",
        "dns-01: no TXT record at _acme-challenge.example.test matches the key authorization digest (found 2 records",
    );
}

#[tokio::test]
async fn dns01_one_of_several_matches() {
    let p = Pebble::start().await;
    p.add_txt("_acme-challenge.example.test", "stale-value")
        .await;
    p.add_txt("_acme-challenge.example.test", &dns01_txt_value(KEYAUTH))
        .await;
    run(
        &p.validator(),
        ChallengeKind::Dns01,
        &dns("Example.TEST"),
        KEYAUTH,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn dns01_missing_txt() {
    let p = Pebble::start().await;
    let r = run(
        &p.validator(),
        ChallengeKind::Dns01,
        &dns("example.test"),
        KEYAUTH,
    )
    .await;
    expect_err(
        r,
        "unauthorized",
        "no TXT record found at _acme-challenge.example.test",
    );
}

#[tokio::test]
async fn dns01_nxdomain() {
    let ns = dns_server(DnsMode::NxDomain).await;
    let v = local_cfg(1, 1, Some(ns), STEP);
    let r = run(&v, ChallengeKind::Dns01, &dns("missing.test"), KEYAUTH).await;
    expect_err(r, "dns", "_acme-challenge.missing.test: NXDOMAIN");
}

#[tokio::test]
async fn dns01_servfail() {
    let p = Pebble::start().await;
    p.mgmt(
        "/set-servfail",
        r#"{"host":"_acme-challenge.example.test."}"#,
    )
    .await;
    let r = run(
        &p.validator(),
        ChallengeKind::Dns01,
        &dns("example.test"),
        KEYAUTH,
    )
    .await;
    expect_err(
        r,
        "dns",
        "TXT lookup of _acme-challenge.example.test failed",
    );
}

#[tokio::test]
async fn dns01_split_character_strings_are_concatenated() {
    let value = dns01_txt_value(KEYAUTH);
    let leaked: &'static str = Box::leak(value.into_boxed_str());
    let (a, b) = leaked.as_bytes().split_at(10);
    let ns = dns_server(DnsMode::Txt(vec![vec![b"unrelated"], vec![a, b]])).await;
    let v = local_cfg(1, 1, Some(ns), STEP);
    run(&v, ChallengeKind::Dns01, &dns("split.test"), KEYAUTH)
        .await
        .unwrap();
    // And a record whose parts do not concatenate to the digest fails.
    let ns = dns_server(DnsMode::Txt(vec![vec![a], vec![b]])).await;
    let v = local_cfg(1, 1, Some(ns), STEP);
    let r = run(&v, ChallengeKind::Dns01, &dns("split.test"), KEYAUTH).await;
    expect_err(r, "incorrectResponse", "found 2 records");
}

#[tokio::test]
async fn dns01_resolver_unreachable() {
    // Nothing listens on this UDP/TCP port (hickory ignores the ICMP port
    // unreachable and times out): with a 2 s validation timeout each query
    // attempt gets 400 ms, so the lookup fails as `dns` before the deadline.
    let port = free_port();
    let v = local_cfg(
        1,
        1,
        Some(SocketAddr::new(LO4, port)),
        Duration::from_secs(2),
    );
    let t0 = Instant::now();
    let r = run(&v, ChallengeKind::Dns01, &dns("example.test"), KEYAUTH).await;
    expect_err(
        r,
        "dns",
        "TXT lookup of _acme-challenge.example.test failed",
    );
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t0.elapsed()
    );
}

// ---------------------------------------------------------------- tls-alpn-01

#[tokio::test]
async fn tlsalpn01_success_via_pebble() {
    let p = Pebble::start().await;
    p.add_tlsalpn01("example.test", KEYAUTH).await;
    run(
        &p.validator(),
        ChallengeKind::TlsAlpn01,
        &dns("example.test"),
        KEYAUTH,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn tlsalpn01_ip_identifier_via_pebble_sends_reverse_sni() {
    // pebble-challtestsrv 2.4.0 only answers an SNI it has a challenge for,
    // so a certificate coming back proves the validator sent the RFC 8738 §6
    // reverse name. Its certificate, however, carries that reverse name as a
    // dNSName instead of the iPAddress RFC 8738 §6 requires, which the
    // validator must reject.
    let p = Pebble::start().await;
    p.add_tlsalpn01("1.0.0.127.in-addr.arpa", KEYAUTH).await;
    let r = run(
        &p.validator(),
        ChallengeKind::TlsAlpn01,
        &Target::Ip(LO4),
        KEYAUTH,
    )
    .await;
    expect_err(
        r,
        "incorrectResponse",
        "(SNI 1.0.0.127.in-addr.arpa): certificate subjectAltName is DNS:1.0.0.127.in-addr.arpa but must be 127.0.0.1",
    );
}

#[tokio::test]
async fn tlsalpn01_ip_identifier_v6_own_server() {
    let lo6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    if let Err(e) = std::net::TcpListener::bind((lo6, 0)) {
        println!("SKIPPED tlsalpn01_ip_identifier_v6_own_server: cannot bind [::1]: {e}");
        return;
    }
    let (c, k) = challenge_cert(
        &[],
        &[lo6],
        AcmeExt::Digest {
            of: KEYAUTH,
            critical: true,
        },
    );
    let (port, sni) = tls_server_on(lo6, c, k, vec![b"acme-tls/1".to_vec()]).await;
    let v = local_cfg(1, port, Some(SocketAddr::new(LO4, 1)), STEP);
    run(&v, ChallengeKind::TlsAlpn01, &Target::Ip(lo6), KEYAUTH)
        .await
        .unwrap();
    assert_eq!(
        sni.lock().unwrap().clone().as_deref(),
        Some(reverse_dns_name(&lo6).as_str())
    );
}

#[tokio::test]
async fn tlsalpn01_wrong_digest() {
    let p = Pebble::start().await;
    p.add_tlsalpn01("example.test", "not-the-key-authorization")
        .await;
    let r = run(
        &p.validator(),
        ChallengeKind::TlsAlpn01,
        &dns("example.test"),
        KEYAUTH,
    )
    .await;
    expect_err(r, "incorrectResponse", "acmeIdentifier extension holds");
}

#[tokio::test]
async fn tlsalpn01_unknown_sni_handshake_fails() {
    // pebble-challtestsrv aborts the handshake for an SNI it has no
    // challenge for.
    let p = Pebble::start().await;
    let r = run(
        &p.validator(),
        ChallengeKind::TlsAlpn01,
        &dns("example.test"),
        KEYAUTH,
    )
    .await;
    expect_err(r, "tls", "TLS handshake with 127.0.0.1");
}

#[tokio::test]
async fn tlsalpn01_connection_refused() {
    let port = {
        let l = std::net::TcpListener::bind((LO4, 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    let v = local_cfg(1, port, Some(SocketAddr::new(LO4, 1)), STEP);
    let r = run(&v, ChallengeKind::TlsAlpn01, &Target::Ip(LO4), KEYAUTH).await;
    expect_err(r, "connection", "could not connect");
}

#[tokio::test]
async fn tlsalpn01_own_server_success_dns_and_ip() {
    // Control case for the negative own-server tests below.
    let (c, k) = challenge_cert(
        &["example.test"],
        &[],
        AcmeExt::Digest {
            of: KEYAUTH,
            critical: true,
        },
    );
    let (port, sni) = tls_server_on(LO4, c, k, vec![b"acme-tls/1".to_vec()]).await;
    let ns = dns_server(DnsMode::NxDomain).await; // not used for IPs
    let p = Pebble::start().await; // DNS: example.test → 127.0.0.1
    let mut cfg = p.cfg();
    cfg.tlsalpn01_port = port;
    p.mgmt("/set-default-ipv6", r#"{"ip":""}"#).await;
    run(
        &Validator::new(cfg).unwrap(),
        ChallengeKind::TlsAlpn01,
        &dns("EXAMPLE.test"),
        KEYAUTH,
    )
    .await
    .unwrap();
    assert_eq!(sni.lock().unwrap().clone().as_deref(), Some("example.test"));
    let (c, k) = challenge_cert(
        &[],
        &[LO4],
        AcmeExt::Digest {
            of: KEYAUTH,
            critical: true,
        },
    );
    let (port, sni) = tls_server_on(LO4, c, k, vec![b"acme-tls/1".to_vec()]).await;
    let v = local_cfg(1, port, Some(ns), STEP);
    run(&v, ChallengeKind::TlsAlpn01, &Target::Ip(LO4), KEYAUTH)
        .await
        .unwrap();
    assert_eq!(
        sni.lock().unwrap().clone().as_deref(),
        Some("1.0.0.127.in-addr.arpa")
    );
}

#[tokio::test]
async fn tlsalpn01_missing_extension() {
    let (c, k) = challenge_cert(&[], &[LO4], AcmeExt::None);
    let port = tls_server(c, k, vec![b"acme-tls/1".to_vec()]).await;
    let v = local_cfg(1, port, Some(SocketAddr::new(LO4, 1)), STEP);
    let r = run(&v, ChallengeKind::TlsAlpn01, &Target::Ip(LO4), KEYAUTH).await;
    expect_err(r, "incorrectResponse", "no acmeIdentifier extension");
}

#[tokio::test]
async fn tlsalpn01_extension_not_critical() {
    let (c, k) = challenge_cert(
        &[],
        &[LO4],
        AcmeExt::Digest {
            of: KEYAUTH,
            critical: false,
        },
    );
    let port = tls_server(c, k, vec![b"acme-tls/1".to_vec()]).await;
    let v = local_cfg(1, port, Some(SocketAddr::new(LO4, 1)), STEP);
    let r = run(&v, ChallengeKind::TlsAlpn01, &Target::Ip(LO4), KEYAUTH).await;
    expect_err(r, "incorrectResponse", "must be critical");
}

#[tokio::test]
async fn tlsalpn01_san_mismatch() {
    let (c, k) = challenge_cert(
        &["other.test"],
        &[],
        AcmeExt::Digest {
            of: KEYAUTH,
            critical: true,
        },
    );
    let port = tls_server(c, k, vec![b"acme-tls/1".to_vec()]).await;
    let v = local_cfg(1, port, Some(SocketAddr::new(LO4, 1)), STEP);
    let r = run(&v, ChallengeKind::TlsAlpn01, &Target::Ip(LO4), KEYAUTH).await;
    expect_err(
        r,
        "incorrectResponse",
        "subjectAltName is DNS:other.test but must be 127.0.0.1",
    );
}

#[tokio::test]
async fn tlsalpn01_two_sans_rejected() {
    let (c, k) = challenge_cert(
        &["a.test"],
        &[LO4],
        AcmeExt::Digest {
            of: KEYAUTH,
            critical: true,
        },
    );
    let port = tls_server(c, k, vec![b"acme-tls/1".to_vec()]).await;
    let v = local_cfg(1, port, Some(SocketAddr::new(LO4, 1)), STEP);
    let r = run(&v, ChallengeKind::TlsAlpn01, &Target::Ip(LO4), KEYAUTH).await;
    expect_err(r, "incorrectResponse", "exactly one subjectAltName entry");
}

#[tokio::test]
async fn tlsalpn01_alpn_not_negotiated() {
    let (c, k) = challenge_cert(
        &[],
        &[LO4],
        AcmeExt::Digest {
            of: KEYAUTH,
            critical: true,
        },
    );
    let port = tls_server(c, k, vec![]).await;
    let v = local_cfg(1, port, Some(SocketAddr::new(LO4, 1)), STEP);
    let r = run(&v, ChallengeKind::TlsAlpn01, &Target::Ip(LO4), KEYAUTH).await;
    expect_err(
        r,
        "incorrectResponse",
        "did not negotiate the \"acme-tls/1\"",
    );
}

// ---------------------------------------------------------------- https redirect

#[tokio::test]
async fn http01_follows_redirect_to_https_on_tlsalpn_port() {
    use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    // HTTPS server with a self-signed certificate (not verified by design).
    let (cert, key) = challenge_cert(&["example.test"], &[], AcmeExt::None);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut scfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    scfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(scfg));
    let tl = TcpListener::bind((LO4, 0)).await.unwrap();
    let https_port = tl.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = tl.accept().await {
            let a = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = a.accept(s).await else { return };
                let svc = hyper::service::service_fn(
                    move |req: Request<hyper::body::Incoming>| async move {
                        // Host must name the redirect target, with its port.
                        let host = req.headers().get("host").and_then(|h| h.to_str().ok());
                        let want = format!("example.test:{https_port}");
                        let ok = req.uri().path() == "/final" && host == Some(want.as_str());
                        let (code, body) = if ok {
                            (200, KEYAUTH.to_string())
                        } else {
                            (404, String::new())
                        };
                        Ok::<_, std::convert::Infallible>(
                            Response::builder()
                                .status(code)
                                .body(Full::new(Bytes::from(body)))
                                .unwrap(),
                        )
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    // Plain HTTP server redirecting to it.
    let l = TcpListener::bind((LO4, 0)).await.unwrap();
    let http_port = l.local_addr().unwrap().port();
    redirect_from(l, 301, format!("https://example.test:{https_port}/final"));
    let p = Pebble::start().await; // DNS only: example.test → 127.0.0.1
    p.mgmt("/set-default-ipv6", r#"{"ip":""}"#).await;
    let mut cfg = p.cfg();
    cfg.http01_port = http_port;
    cfg.tlsalpn01_port = https_port;
    run(
        &Validator::new(cfg.clone()).unwrap(),
        ChallengeKind::Http01,
        &dns("example.test"),
        KEYAUTH,
    )
    .await
    .unwrap();
    // The same redirect is refused when the https port is not tlsalpn01_port.
    cfg.tlsalpn01_port = https_port.wrapping_add(1);
    let r = run(
        &Validator::new(cfg).unwrap(),
        ChallengeKind::Http01,
        &dns("example.test"),
        KEYAUTH,
    )
    .await;
    expect_err(
        r,
        "incorrectResponse",
        "https redirects are only followed to port",
    );
}

#[tokio::test]
async fn http01_falls_back_to_ipv6() {
    // example.test has A 127.0.0.1 (nothing listens on the port there) and
    // AAAA ::1 (a strict server listens): IPv4 is tried first, refused, then
    // IPv6 succeeds; the Host header is the name, not the address.
    let lo6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let l = match std::net::TcpListener::bind((lo6, 0)) {
        Ok(l) => l,
        Err(e) => {
            println!("SKIPPED http01_falls_back_to_ipv6: cannot bind [::1]: {e}");
            return;
        }
    };
    let port = l.local_addr().unwrap().port();
    drop(l);
    if std::net::TcpListener::bind((LO4, port)).is_err() {
        println!("SKIPPED http01_falls_back_to_ipv6: port {port} busy on 127.0.0.1");
        return;
    }
    let addr = http_server(
        SocketAddr::new(lo6, port),
        strict_handler(format!("example.test:{port}")),
    )
    .await;
    let p = Pebble::start().await;
    p.mgmt(
        "/add-aaaa",
        r#"{"host":"example.test.","addresses":["::1"]}"#,
    )
    .await;
    let mut cfg = p.cfg();
    cfg.http01_port = addr.port();
    run(
        &Validator::new(cfg).unwrap(),
        ChallengeKind::Http01,
        &dns("example.test"),
        KEYAUTH,
    )
    .await
    .unwrap();
}

#[test]
fn validator_is_clone_send_sync() {
    fn assert_traits<T: Clone + Send + Sync + 'static>() {}
    assert_traits::<Validator>();
    assert_traits::<ValidationError>();
    assert_eq!(ValidationConfig::default().timeout, Duration::from_secs(10));
    assert_eq!(ValidationConfig::default().http01_port, 80);
    assert_eq!(ValidationConfig::default().tlsalpn01_port, 443);
}

// ---------------------------------------------------------------- address policy

/// A validator with the production address policy (public only) plus
/// `allowed`, on the given test ports.
fn policy_cfg(http: u16, allowed: &[&str]) -> Validator {
    Validator::new(ValidationConfig {
        http01_port: http,
        tlsalpn01_port: http,
        dns_resolver: Some(SocketAddr::new(LO4, 1)),
        timeout: STEP,
        address_policy: AddressPolicy::with_allowed(
            allowed.iter().map(|a| a.parse().unwrap()).collect(),
        ),
        max_concurrent: 64,
        hosts: None,
    })
    .unwrap()
}

#[tokio::test]
async fn policy_refuses_loopback_ip_identifier_by_default() {
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    let addr = http_server(SocketAddr::new(LO4, 0), move |_req| {
        h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        (200, KEYAUTH.into())
    })
    .await;
    let v = policy_cfg(addr.port(), &[]);
    for kind in [ChallengeKind::Http01, ChallengeKind::TlsAlpn01] {
        let r = run(&v, kind, &Target::Ip(LO4), KEYAUTH).await;
        expect_err(r, "connection", "not allowed (loopback address)");
    }
    let mapped = Target::Ip("::ffff:127.0.0.1".parse().unwrap());
    let r = run(&v, ChallengeKind::Http01, &mapped, KEYAUTH).await;
    expect_err(r, "connection", "not allowed (loopback address)");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    // The operator may allow the range explicitly.
    let v = policy_cfg(addr.port(), &["127.0.0.1/32"]);
    run(&v, ChallengeKind::Http01, &Target::Ip(LO4), KEYAUTH)
        .await
        .unwrap();
}

/// Answers every request with `302 Location: location`.
async fn redirect_server(addr: SocketAddr, location: String) {
    redirect_from(TcpListener::bind(addr).await.unwrap(), 302, location);
}

/// Answers every request on `l` with `status` and `Location: location`.
fn redirect_from(l: TcpListener, status: u16, location: String) {
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let loc = location.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req| {
                    let loc = loc.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            Response::builder()
                                .status(status)
                                .header("location", loc)
                                .body(Full::new(Bytes::new()))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
}

#[tokio::test]
async fn policy_is_checked_on_every_redirect_hop() {
    // 127.0.0.1 is allowed; the redirect goes to 127.0.0.2 (standing in for
    // an internal service), which is not. Both on the http-01 port, since
    // redirects must stay on it.
    let inner_ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let internal_hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = internal_hits.clone();
    let internal = http_server(SocketAddr::new(inner_ip, 0), move |_req| {
        h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        (200, KEYAUTH.to_string())
    })
    .await;
    let port = internal.port();
    redirect_server(
        SocketAddr::new(LO4, port),
        format!("http://127.0.0.2:{port}/.well-known/acme-challenge/{TOKEN}"),
    )
    .await;
    let v = policy_cfg(port, &["127.0.0.1/32"]);
    let r = run(&v, ChallengeKind::Http01, &Target::Ip(LO4), KEYAUTH).await;
    expect_err(r, "connection", "127.0.0.2");
    assert_eq!(internal_hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    // Allowing the internal range lets the redirect through.
    let v = policy_cfg(port, &["127.0.0.1/32", "127.0.0.2/32"]);
    run(&v, ChallengeKind::Http01, &Target::Ip(LO4), KEYAUTH)
        .await
        .unwrap();
    assert_eq!(internal_hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn hosts_file_names_validate_and_their_addresses_are_allowed() {
    let addr = http_server(SocketAddr::new(LO4, 0), |_req| (200, KEYAUTH.into())).await;
    let hosts =
        Arc::new(super::hosts_file::HostsFile::parse("127.0.0.1 quick.internal.test\n").unwrap());
    // The DNS resolver is dead (port 1): only the file can answer.
    let v = Validator::new(ValidationConfig {
        http01_port: addr.port(),
        tlsalpn01_port: addr.port(),
        dns_resolver: Some(SocketAddr::new(LO4, 1)),
        timeout: STEP,
        address_policy: AddressPolicy::public_only().allow_hosts(&hosts.addresses()),
        max_concurrent: 64,
        hosts: Some(hosts),
    })
    .unwrap();
    let name = Target::Dns("Quick.Internal.Test".into());
    run(&v, ChallengeKind::Http01, &name, KEYAUTH)
        .await
        .unwrap();
    // CAA: the file's names are not in DNS, so there is nothing to check;
    // other names still need a CAA answer (the dead resolver refuses).
    let caa_req = |name| super::caa::CaaRequest {
        name,
        wildcard: false,
        identities: &[],
        account_uri: "https://ca.test/acct/1",
        method: ChallengeKind::Http01,
    };
    v.check_caa(&caa_req("quick.internal.test")).await.unwrap();
    let e = v
        .check_caa(&caa_req("other.internal.test"))
        .await
        .unwrap_err();
    assert_eq!(e.acme_type(), "caa", "{e:?}");
    // A name the file does not list still goes to DNS (dead here).
    let other = Target::Dns("other.internal.test".into());
    let r = run(&v, ChallengeKind::Http01, &other, KEYAUTH).await;
    expect_err(r, "dns", "other.internal.test");
    // Without the file the name does not validate.
    let v = policy_cfg(addr.port(), &["127.0.0.1/32"]);
    let r = run(&v, ChallengeKind::Http01, &name, KEYAUTH).await;
    expect_err(r, "dns", "DNS lookup of");
}
