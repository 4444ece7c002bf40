//! The admin API: JSON over HTTPS under `/admin/v1`, authenticated with
//! bearer API keys that carry a role (admin, operator, auditor; see
//! [`auth`]) or, when configured, TLS client certificates mapped to a role
//! (see [`client_cert`]). Every call, answered or refused, is appended to the
//! hash-chained audit log (who, what, a short summary of the body, when,
//! the HTTP status) and made durable before the response goes out.
//!
//! Routes live in one table ([`routes::ROUTES`]) that dispatch uses and
//! that a test compares with `docs/openapi.yaml`. Errors are
//! `{"error": "...", "code": "..."}` with the matching HTTP status.

mod approvals;
mod audit_log;
pub mod auth;
mod ca_import;
mod cas;
mod certificates;
mod est_users;
mod handlers;
mod issuance;
mod keys;
mod refusals;
mod rollover;
pub mod routes;
pub mod tenants;

#[cfg(test)]
mod openapi_test;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{ALLOW, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use ironseal_storage::AuditEvent;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::http::{full, Body, PeerCertificates};
use crate::state::AppState;
use auth::AuthError;
use routes::Lookup;

/// An admin API error: HTTP status, machine-readable code, message.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::CONFLICT, code, message)
    }
    pub fn internal(message: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %message, "admin API internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            message.to_string(),
        )
    }
}

/// The authority's errors as admin API answers: the status says who must
/// act (the caller: 4xx; the operator or the server: 5xx), the code names
/// the rule.
impl From<crate::authority::AuthorityError> for ApiError {
    fn from(e: crate::authority::AuthorityError) -> Self {
        use crate::authority::ErrorKind;
        let status = match e.kind {
            ErrorKind::BadCsr | ErrorKind::BadKey => StatusCode::BAD_REQUEST,
            ErrorKind::ForbiddenKey
            | ErrorKind::RejectedName
            | ErrorKind::UnknownProfile
            | ErrorKind::ProfileNotAllowed => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::Unauthorized | ErrorKind::Rejected => StatusCode::FORBIDDEN,
            ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Conflict | ErrorKind::AlreadyRevoked => StatusCode::CONFLICT,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::CaUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.kind.as_str(), e.detail)
    }
}

impl From<ironseal_storage::StoreError> for ApiError {
    fn from(e: ironseal_storage::StoreError) -> Self {
        crate::metrics::storage_error(crate::metrics::StorageOp::Request, &e);
        ApiError::internal(e)
    }
}

/// What a handler produces: status, JSON body, and an optional note for
/// the audit summary (e.g. the id of a key it created).
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub note: Option<String>,
}

impl Answer {
    pub fn ok(body: Value) -> Answer {
        Answer {
            status: StatusCode::OK,
            body,
            note: None,
        }
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let text = serde_json::to_string_pretty(body).unwrap_or_else(|_| body.to_string());
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .header("cache-control", "no-store")
        .body(full(text))
        .unwrap_or_else(|_| Response::new(full(Vec::new())))
}

fn error_body(e: &ApiError) -> Value {
    json!({ "error": e.message, "code": e.code })
}

/// A short, secret-free summary of a request for the audit log: the query
/// string and the JSON body with long arrays shortened, at most 300 chars.
/// Members named like a secret (`privateKeyPem`, ...) and strings holding
/// a PEM private key are replaced by `<redacted>`: even the first 80
/// characters of a PKCS#8 EC key carry part of the private scalar.
fn summarize(query: Option<&str>, body: &[u8]) -> String {
    fn secret_name(name: &str) -> bool {
        let n = name.to_ascii_lowercase();
        n.contains("private") || n.contains("secret") || n.contains("password")
    }
    fn shorten(v: &Value) -> Value {
        match v {
            Value::String(s) if s.contains("PRIVATE KEY") => Value::String("<redacted>".into()),
            Value::Array(a) if a.len() > 3 => {
                let mut out: Vec<Value> = a.iter().take(3).map(shorten).collect();
                out.push(Value::String(format!("... {} items in all", a.len())));
                Value::Array(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(shorten).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| {
                        let v = if secret_name(k) {
                            Value::String("<redacted>".into())
                        } else {
                            shorten(v)
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            Value::String(s) if s.chars().count() > 80 => {
                Value::String(format!("{}...", s.chars().take(80).collect::<String>()))
            }
            other => other.clone(),
        }
    }
    let mut parts = Vec::new();
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        parts.push(format!("query={}", q.chars().take(120).collect::<String>()));
    }
    if !body.is_empty() {
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => parts.push(format!("body={}", shorten(&v))),
            Err(_) => parts.push(format!("body=<{} bytes, not JSON>", body.len())),
        }
    }
    let s = parts.join(" ");
    if s.chars().count() > 300 {
        format!("{}...", s.chars().take(300).collect::<String>())
    } else {
        s
    }
}

/// Fuzzing entry point (`fuzz/fuzz_targets/admin_json.rs`): routes
/// `method path`, decodes its parameters, query and body as the handler
/// would before touching state, and summarizes the call for the audit log.
/// Nothing is stored. Any input must come back as `Ok` or an [`ApiError`],
/// never a panic.
pub fn decode_for_fuzzing(
    method: &str,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Result<(), ApiError> {
    let _ = summarize(query, body);
    match routes::lookup(method, path) {
        Lookup::Found(route, params) => handlers::decode_request(route.op, &params, query, body),
        Lookup::MethodNotAllowed(_) | Lookup::NotFound => Ok(()),
    }
}

/// Reads a request body of at most `limit` bytes.
async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("request body larger than {limit} bytes"),
                ))
            } else {
                Err(ApiError::bad_request(format!(
                    "cannot read request body: {e}"
                )))
            }
        }
    }
}

/// The log budget of refused admin requests.
static REFUSAL_LOG: std::sync::LazyLock<refusals::LogBudget> =
    std::sync::LazyLock::new(refusals::LogBudget::default);

/// Handles /admin/... requests.
pub async fn handle(state: &Arc<AppState>, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let (parts, body) = req.into_parts();
    // The path is the caller's: only its start goes into the audit log.
    let action = format!("{method} {}", refusals::shown_path(&path));
    let lookup = routes::lookup(&method, &path);
    let limit = match &lookup {
        Lookup::Found(r, _) => r.max_body.unwrap_or(state.config.max_body_bytes),
        _ => state.config.max_body_bytes,
    };

    let st = state.clone();
    let header = parts.headers.get(AUTHORIZATION).cloned();
    let peer = parts.extensions.get::<PeerCertificates>().cloned();
    let client = parts
        .extensions
        .get::<crate::http::ClientAddr>()
        .map_or_else(|| "-".to_string(), |c| c.0.ip().to_string());
    let auth = tokio::task::spawn_blocking(move || {
        auth::authenticate_request(
            st.store.as_ref(),
            header.as_ref(),
            st.client_certs.as_deref(),
            peer.as_ref().map(|p| p.0.as_slice()),
            rustls_pki_types::UnixTime::now(),
        )
    })
    .await
    .unwrap_or_else(|e| {
        Err(AuthError::Store(ironseal_storage::StoreError::Backend(
            e.to_string(),
        )))
    });
    // Read the body before answering, even a refusal: an HTTP/2 client
    // still sending it would otherwise see its stream reset.
    let body = read_body(body, limit).await;
    let principal = match auth {
        Ok(p) => p,
        Err(AuthError::Store(e)) => {
            let err = ApiError::internal(e);
            return json_response(err.status, &error_body(&err));
        }
        Err(e) => {
            // Not audited (see `refusals`): logged within a budget, counted.
            state.metrics.inc("admin_auth_failures");
            let (status, code, www) = match &e {
                AuthError::NoRole { .. } => (StatusCode::FORBIDDEN, "forbidden", false),
                _ => (StatusCode::UNAUTHORIZED, "unauthorized", true),
            };
            if let refusals::Permit::Log { suppressed } =
                REFUSAL_LOG.take(std::time::Instant::now())
            {
                if suppressed > 0 {
                    tracing::warn!(suppressed, "more refused admin requests were not logged");
                }
                tracing::warn!(
                    method = %method,
                    path = %refusals::shown_path(&path),
                    client = %client,
                    error = %e,
                    "admin request refused: no valid API key or client certificate"
                );
            }
            let err = ApiError::new(status, code, e.to_string());
            let mut resp = json_response(err.status, &error_body(&err));
            if www {
                resp.headers_mut().insert(
                    "www-authenticate",
                    hyper::header::HeaderValue::from_static("Bearer"),
                );
            }
            return resp;
        }
    };
    let actor = principal.actor();

    let (route, params) = match lookup {
        Lookup::Found(r, params) => (r, params),
        Lookup::MethodNotAllowed(methods) => {
            let err = ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{path} allows {}", methods.join(", ")),
            );
            let mut resp = finish(state, &actor, &action, String::new(), Err(err)).await;
            if let Ok(v) = hyper::header::HeaderValue::from_str(&methods.join(", ")) {
                resp.headers_mut().insert(ALLOW, v);
            }
            return resp;
        }
        Lookup::NotFound => {
            let err = ApiError::not_found("no such admin endpoint");
            return finish(state, &actor, &action, String::new(), Err(err)).await;
        }
    };
    let body = match body {
        Ok(b) => b,
        Err(err) => return finish(state, &actor, &action, String::new(), Err(err)).await,
    };
    let summary = summarize(query.as_deref(), &body);
    if !auth::allows(principal.role, route.permission) {
        let err = ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "the {} role may not call {} {}",
                principal.role.as_str(),
                route.method,
                route.path
            ),
        );
        return finish(state, &actor, &action, summary, Err(err)).await;
    }
    let params: Vec<String> = params.into_iter().map(str::to_string).collect();
    let result = handlers::dispatch(
        state,
        &principal,
        route.op,
        &params,
        query.as_deref(),
        &body,
    )
    .await;
    finish(state, &actor, &action, summary, result).await
}

/// Appends the audit entry of a call, makes it (and the call's writes)
/// durable, and renders the response.
async fn finish(
    state: &Arc<AppState>,
    actor: &str,
    action: &str,
    summary: String,
    result: Result<Answer, ApiError>,
) -> Response<Body> {
    let (status, body, note) = match result {
        Ok(a) => (a.status, a.body, a.note),
        Err(e) => (e.status, error_body(&e), None),
    };
    let summary = match note {
        Some(n) if summary.is_empty() => n,
        Some(n) => format!("{summary} -> {n}"),
        None => summary,
    };
    let event = AuditEvent {
        at: OffsetDateTime::now_utc(),
        actor: actor.to_string(),
        action: action.to_string(),
        summary,
        outcome: Some(status.as_u16()),
    };
    let st = state.clone();
    let appended = tokio::task::spawn_blocking(move || st.store.append_audit(&event)).await;
    let durable = match appended {
        Ok(Ok(_)) => state.durable().await.map_err(|e| e.problem.detail),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = durable {
        let err = ApiError::internal(format!("audit log: {e}"));
        return json_response(err.status, &error_body(&err));
    }
    state.metrics.inc("admin_requests");
    tracing::info!(target: "audit", actor = %actor, action = %action, status = status.as_u16(), "admin call");
    json_response(status, &body)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::{decode_for_fuzzing, summarize};

    /// The fuzz target's seeds are valid requests, and decode as such;
    /// broken variants of them are refused, not accepted or panicked on.
    #[test]
    fn fuzz_seeds_decode_and_their_mutants_are_refused() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/seeds/admin_json");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            let text = String::from_utf8(data).unwrap();
            let (line, body) = text.split_once('\n').unwrap();
            let (method, target) = line.split_once(' ').unwrap();
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (target, None),
            };
            decode_for_fuzzing(method, path, query, body.as_bytes())
                .unwrap_or_else(|e| panic!("{line}: {}", e.message));
            if !body.is_empty() {
                let cut = &body.as_bytes()[..body.len() / 2];
                assert!(
                    decode_for_fuzzing(method, path, query, cut).is_err(),
                    "{line}"
                );
                let extra = body.replacen('{', r#"{"unknownField": 1, "#, 1);
                assert!(
                    decode_for_fuzzing(method, path, query, extra.as_bytes()).is_err(),
                    "{line}: unknown field accepted"
                );
            }
            n += 1;
        }
        assert!(n >= 10, "only {n} seeds");
        assert!(decode_for_fuzzing("GET", "/admin/v1/audit", Some("limit=-1"), b"").is_err());
    }

    #[test]
    fn summaries_never_carry_private_keys() {
        let key = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSECRETSECRETSECRET\n-----END PRIVATE KEY-----\n";
        let body = serde_json::json!({
            "name": "Imported",
            "certificatePem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
            "privateKeyPem": key,
            "nested": [{"anything": key}],
            "clientSecret": "hunter2",
        })
        .to_string();
        let s = summarize(None, body.as_bytes());
        assert!(
            !s.contains("SECRET") && !s.contains("hunter2") && !s.contains("BG0w"),
            "{s}"
        );
        assert!(
            s.contains("privateKeyPem") && s.contains("<redacted>"),
            "{s}"
        );
        assert!(
            s.contains("Imported") && s.contains("BEGIN CERTIFICATE"),
            "{s}"
        );
    }
}
