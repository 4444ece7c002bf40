//! The SCEP front end (RFC 8894) on the plain-HTTP listener: `/scep` and
//! `/scep/{path}`, GET and POST. It decodes, checks the challenge, calls
//! the authority and maps its answer to a CertRep; nothing else.

pub mod config;
pub mod dynamic;
pub mod error;
pub mod intune;
pub(crate) mod intune_flow;
mod next_ca;
mod operation;
pub mod purge;
pub mod ra;
pub mod transaction;

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, Response, StatusCode};

use crate::http::{full, text, Body};
use crate::state::AppState;

pub use operation::decode_get_message;

/// Serves one request under `/scep`.
pub async fn handle(state: &Arc<AppState>, req: Request<Incoming>) -> Response<Body> {
    if !state.config.scep.enabled {
        return text(StatusCode::NOT_FOUND, "not found\n");
    }
    let path = req.uri().path().to_string();
    let sub = match path.strip_prefix("/scep") {
        Some("") | Some("/") => None,
        Some(rest) => match rest.strip_prefix('/') {
            Some(p) if !p.contains('/') => Some(p.to_string()),
            _ => return text(StatusCode::NOT_FOUND, "not found\n"),
        },
        None => return text(StatusCode::NOT_FOUND, "not found\n"),
    };
    if let Some(p) = &sub {
        if state.config.scep.for_path(Some(p)).is_none() {
            return text(StatusCode::NOT_FOUND, "no such SCEP path\n");
        }
    }
    let query = req.uri().query().unwrap_or("").to_string();
    let op = query_param(&query, "operation").unwrap_or_default();
    match (req.method().clone(), op.as_str()) {
        (Method::GET | Method::HEAD, "GetCACaps") => get_ca_caps(state).await,
        (Method::GET | Method::HEAD, "GetCACert") => get_ca_cert(state),
        (Method::GET | Method::HEAD, "GetNextCACert") => next_ca::get_next_ca_cert(state).await,
        (Method::GET, "PKIOperation") => {
            let Some(raw) = query_param_raw(&query, "message") else {
                return text(StatusCode::BAD_REQUEST, "missing message\n");
            };
            match decode_get_message(raw) {
                Some(msg) => operation::pki_operation(state, sub, msg).await,
                None => text(StatusCode::BAD_REQUEST, "message is not base64\n"),
            }
        }
        (Method::POST, "PKIOperation") => {
            use http_body_util::BodyExt;
            let limited = http_body_util::Limited::new(
                req.into_body(),
                ironseal_protocol::scep::MAX_MESSAGE_LEN,
            );
            match limited.collect().await {
                Ok(c) => operation::pki_operation(state, sub, c.to_bytes().to_vec()).await,
                Err(_) => text(StatusCode::PAYLOAD_TOO_LARGE, "message too large\n"),
            }
        }
        (_, "GetCACaps" | "GetCACert" | "GetNextCACert" | "PKIOperation") => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => text(
            StatusCode::BAD_REQUEST,
            "unsupported operation (GetCACaps, GetCACert, GetNextCACert, PKIOperation)\n",
        ),
    }
}

/// GetCACaps (RFC 8894 §3.5.2): what we really do. GetNextCACert only
/// while a rollover successor waits (see `next_ca`).
async fn get_ca_caps(state: &Arc<AppState>) -> Response<Body> {
    let mut caps = vec![
        "POSTPKIOperation",
        "SHA-256",
        "SHA-512",
        "AES",
        "SCEPStandard",
        "Renewal",
    ];
    if state.config.scep.des3 {
        caps.push("DES3");
    }
    if next_ca::successor_waits(state).await {
        caps.push("GetNextCACert");
    }
    let mut body = caps.join("\n");
    body.push('\n');
    Response::builder()
        .header(CONTENT_TYPE, "text/plain")
        .body(full(body))
        .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, ""))
}

/// GetCACert (RFC 8894 §4.2.1.2): the RA certificate, the issuing CA and
/// its chain up to and including the root, as a degenerate certs-only
/// SignedData. The root is there for clients that take the trust anchor
/// for the CertRep signature from this answer: certmonger verifies the
/// RA's signature against the top certificate it finds here, and an
/// intermediate as the top leaves OpenSSL without a trust anchor.
fn get_ca_cert(state: &AppState) -> Response<Body> {
    let Some(ra) = state.scep_ra.get() else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "SCEP RA not ready\n");
    };
    let cas = state.ca_set();
    let mut certs: Vec<Vec<u8>> = vec![ra.key.cert_der().to_vec()];
    certs.extend(cas.active.chain_der.iter().cloned());
    if let Ok((_, root)) = der::pem::decode_vec(cas.active_root_pem.as_bytes()) {
        if !certs.contains(&root) {
            certs.push(root);
        }
    }
    let refs: Vec<&[u8]> = certs.iter().map(Vec::as_slice).collect();
    match ironseal_protocol::pkcs7::certs_only(&refs) {
        Ok(der) => Response::builder()
            .header(CONTENT_TYPE, "application/x-x509-ca-ra-cert")
            .body(full(der))
            .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "")),
        Err(e) => {
            tracing::error!(error = %e, "GetCACert encoding failed");
            text(StatusCode::INTERNAL_SERVER_ERROR, "")
        }
    }
}

/// A query parameter's raw (still percent-encoded) value.
fn query_param_raw<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A query parameter, percent-decoded.
fn query_param(query: &str, name: &str) -> Option<String> {
    let raw = query_param_raw(query, name)?;
    String::from_utf8(operation::percent_decode(raw)).ok()
}
