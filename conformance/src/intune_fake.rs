//! A local fake of the Microsoft services behind Intune SCEP validation,
//! a real HTTPS server on loopback: the Entra token endpoint
//! (`POST /{tenant}/oauth2/v2.0/token`, client credentials), Graph service
//! discovery (`GET /v1.0/servicePrincipals/appId=.../endpoints`) and
//! `ScepActions` (`validateRequest`, `successNotification`,
//! `failureNotification`). Its certificate chains to a test CA written to
//! [`IntuneFake::ca_file`], which the server gets as `[scep.intune] ca_file`.
//!
//! `validateRequest` answers from a script ([`IntuneFake::script`]): each
//! call takes the next [`Reply`] (an Intune result code, or a bare HTTP
//! status such as 429 or 503), and `Success` once the script is used up.
//! Every call is recorded in order ([`IntuneFake::calls`]).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{json, Value};

/// The Entra tenant the fake serves.
pub const TENANT: &str = "contoso.onmicrosoft.com";
/// The client id and secret the fake accepts.
pub const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
pub const CLIENT_SECRET: &str = "fake-secret~with+specials/=";

/// What `validateRequest` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// HTTP 200 with `{"code": <code>}`.
    Code(String),
    /// This HTTP status with an empty JSON body.
    Status(u16),
}

/// One call the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    /// `token`, `discovery`, or the ScepActions action name.
    pub name: String,
    /// The request body: JSON, or the form as a string.
    pub body: Value,
    /// The `api-version` header, if any.
    pub api_version: Option<String>,
    /// The `authorization` header, if any.
    pub authorization: Option<String>,
    /// The scope of a token request.
    pub scope: Option<String>,
}

#[derive(Default)]
struct State {
    script: VecDeque<Reply>,
    calls: Vec<Call>,
}

/// The running fake; it stops accepting when dropped.
pub struct IntuneFake {
    port: u16,
    ca_file: PathBuf,
    state: Arc<Mutex<State>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl IntuneFake {
    /// Starts the fake on a free loopback port; writes its CA to
    /// `dir/intune-fake-ca.pem`.
    pub fn start(dir: &Path) -> IntuneFake {
        let ca_key = KeyPair::generate().expect("keygen");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.distinguished_name
            .push(DnType::CommonName, "fake Intune test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).expect("CA");
        let ca_file = dir.join("intune-fake-ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).expect("write CA");
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().expect("keygen");
        let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        leaf.subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().expect("ip")));
        let cert = leaf.signed_by(&key, &issuer).expect("leaf");
        let chain = vec![
            CertificateDer::from(cert.der().to_vec()),
            CertificateDer::from(ca_cert.der().to_vec()),
        ];
        let pk = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_no_client_auth()
                .with_single_cert(chain, pk)
                .expect("server config"),
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (st, stp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stp.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((tcp, _)) => {
                        let (tls, st) = (tls.clone(), st.clone());
                        std::thread::spawn(move || serve(tcp, tls, port, &st));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        IntuneFake {
            port,
            ca_file,
            state,
            stop,
        }
    }

    /// `https://127.0.0.1:<port>`: the login and Graph base URL.
    pub fn base_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The CA certificate (PEM) the fake's TLS certificate chains to.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The next answers of `validateRequest`.
    pub fn script(&self, replies: &[Reply]) {
        let mut g = self.state.lock().expect("lock");
        g.script = replies.iter().cloned().collect();
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().expect("lock").calls.clone()
    }

    /// The names of the ScepActions calls so far, in order.
    pub fn actions(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .map(|c| c.name)
            .filter(|n| n != "token" && n != "discovery")
            .collect()
    }

    /// Forgets the calls so far.
    pub fn clear(&self) {
        self.state.lock().expect("lock").calls.clear();
    }

    /// The `[scep.intune]` section pointing at this fake; `secret_file`
    /// must hold [`CLIENT_SECRET`].
    pub fn config_section(&self, secret_file: &Path) -> String {
        format!(
            "[scep.intune]\ntenant = \"{TENANT}\"\nclient_id = \"{CLIENT_ID}\"\n\
             client_secret_file = {secret:?}\nlogin_url = \"{base}\"\ngraph_url = \"{base}\"\n\
             ca_file = {ca:?}\nmax_attempts = 3\nbackoff_ms = 50\ntimeout_secs = 5\n",
            secret = secret_file.display().to_string(),
            base = self.base_url(),
            ca = self.ca_file.display().to_string(),
        )
    }
}

impl Drop for IntuneFake {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Decodes `%XX` and `+` of a form value.
fn form_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(h, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

fn form(body: &str) -> Value {
    let mut m = serde_json::Map::new();
    for pair in body.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        m.insert(form_decode(k), Value::String(form_decode(v)));
    }
    Value::Object(m)
}

/// One connection: one request, one answer, close.
fn serve(tcp: TcpStream, tls: Arc<rustls::ServerConfig>, port: u16, state: &Mutex<State>) {
    let _ = tcp.set_nonblocking(false);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(conn) = rustls::ServerConnection::new(tls) else {
        return;
    };
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    let mut reader = BufReader::new(&mut stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() {
            return;
        }
        let h = h.trim_end().to_string();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let len: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let text = String::from_utf8_lossy(&body).to_string();
    let (status, answer) = route(&method, &path, &text, port, &header, state);
    let payload = answer.to_string();
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        429 => "Too Many Requests",
        _ => "Status",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{payload}",
        payload.len()
    );
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
    stream.conn.send_close_notify();
    let _ = stream.flush();
}

fn route(
    method: &str,
    path: &str,
    body: &str,
    port: u16,
    header: &dyn Fn(&str) -> Option<String>,
    state: &Mutex<State>,
) -> (u16, Value) {
    let mut g = state.lock().expect("lock");
    let bearer_ok = |scope_token: &str| header("authorization").as_deref() == Some(scope_token);
    if method == "POST" && path == format!("/{TENANT}/oauth2/v2.0/token") {
        let f = form(body);
        let scope = f["scope"].as_str().unwrap_or_default().to_string();
        g.calls.push(Call {
            name: "token".into(),
            body: f.clone(),
            api_version: None,
            authorization: None,
            scope: Some(scope.clone()),
        });
        let ok = f["grant_type"] == "client_credentials"
            && f["client_id"] == CLIENT_ID
            && f["client_secret"] == CLIENT_SECRET;
        if !ok {
            return (401, json!({"error": "invalid_client"}));
        }
        let token = if scope.contains("graph") {
            "graph-token"
        } else {
            "intune-token"
        };
        return (
            200,
            json!({"token_type": "Bearer", "expires_in": 3599, "access_token": token}),
        );
    }
    if method == "GET"
        && path == "/v1.0/servicePrincipals/appId=0000000a-0000-0000-c000-000000000000/endpoints"
    {
        g.calls.push(Call {
            name: "discovery".into(),
            body: Value::Null,
            api_version: None,
            authorization: header("authorization"),
            scope: None,
        });
        if !bearer_ok("Bearer graph-token") {
            return (401, json!({}));
        }
        return (
            200,
            json!({"value": [
                {"providerName": "SomethingElse", "uri": "https://127.0.0.1:1/nope"},
                {"providerName": "ScepRequestValidationFEService",
                 "uri": format!("https://127.0.0.1:{port}/ScepRequestValidationFEService/")}
            ]}),
        );
    }
    if let Some(action) = path.strip_prefix("/ScepRequestValidationFEService/ScepActions/") {
        let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        g.calls.push(Call {
            name: action.to_string(),
            body: json,
            api_version: header("api-version"),
            authorization: header("authorization"),
            scope: None,
        });
        if method != "POST" || !bearer_ok("Bearer intune-token") {
            return (401, json!({}));
        }
        let reply = match action {
            "validateRequest" => g
                .script
                .pop_front()
                .unwrap_or_else(|| Reply::Code("Success".into())),
            "successNotification" | "failureNotification" => Reply::Code("Success".into()),
            _ => return (404, json!({})),
        };
        return match reply {
            Reply::Code(c) => (200, json!({"code": c, "errorDescription": ""})),
            Reply::Status(s) => (s, json!({})),
        };
    }
    (404, json!({}))
}
