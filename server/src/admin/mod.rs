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
mod backups;
mod ca_import;
mod cas;
mod certificates;
mod est_users;
mod handlers;
mod issuance;
mod keys;
mod refusals;
mod rollover;
mod scep_challenges;
/// The route table (the protocol crate's).
pub use ironseal_protocol::admin::routes;
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
use ironseal_protocol::admin::{summarize, RequestError};
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

/// A request that cannot be decoded: 400 with the decoder's code.
impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, e.code, e.message)
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

    let header = parts.headers.get(AUTHORIZATION).cloned();
    let peer = parts.extensions.get::<PeerCertificates>().cloned();
    let client = parts
        .extensions
        .get::<crate::http::ClientAddr>()
        .map_or_else(|| "-".to_string(), |c| c.0.ip().to_string());
    let auth = auth::authenticate_request(
        state.store.as_ref(),
        header.as_ref(),
        state.client_certs.as_deref(),
        peer.as_ref().map(|p| p.0.as_slice()),
        rustls_pki_types::UnixTime::now(),
    )
    .await;
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
            // PostgreSQL: one budget for every replica (issue 11).
            let permit = match state.config.storage {
                crate::config::StorageBackend::Postgres { .. } => {
                    REFUSAL_LOG.take_shared(state.store.as_ref()).await
                }
                crate::config::StorageBackend::Sled => REFUSAL_LOG.take(std::time::Instant::now()),
            };
            if let refusals::Permit::Log { suppressed } = permit {
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
    let durable = match state.store.append_audit(&event).await {
        Ok(_) => state.durable().await.map_err(|e| e.problem.detail),
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
    use super::handlers::decode_request;
    use super::routes::{lookup, Lookup};
    use super::ApiError;

    /// Routes and decodes as the server does before touching state.
    fn decode(method: &str, path: &str, query: Option<&str>, body: &[u8]) -> Result<(), ApiError> {
        match lookup(method, path) {
            Lookup::Found(route, _) => decode_request(route.op, query, body),
            Lookup::MethodNotAllowed(_) | Lookup::NotFound => Ok(()),
        }
    }

    /// The fuzz target's seeds are valid requests, and decode as such,
    /// including the checks the CA core makes; broken variants of them
    /// are refused, not accepted or panicked on.
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
            decode(method, path, query, body.as_bytes())
                .unwrap_or_else(|e| panic!("{line}: {}", e.message));
            if !body.is_empty() {
                let cut = &body.as_bytes()[..body.len() / 2];
                assert!(decode(method, path, query, cut).is_err(), "{line}");
                let extra = body.replacen('{', r#"{"unknownField": 1, "#, 1);
                assert!(
                    decode(method, path, query, extra.as_bytes()).is_err(),
                    "{line}: unknown field accepted"
                );
            }
            n += 1;
        }
        assert!(n >= 10, "only {n} seeds");
        assert!(decode("GET", "/admin/v1/audit", Some("limit=-1"), b"").is_err());
    }
}
