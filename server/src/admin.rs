//! The admin API (JSON over HTTPS under /admin/v1), authenticated with a
//! bearer API key compared by SHA-256 in constant time. This first slice
//! covers certificate lookup and marking a certificate for early renewal
//! (which ARI then reports, RFC 9773 §4.2).

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::acme::render::ts;
use crate::http::{full, Body};
use crate::state::AppState;

fn reply(status: StatusCode, body: Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .header("cache-control", "no-store")
        .body(full(body.to_string()))
        .unwrap_or_else(|_| Response::new(full(Vec::new())))
}

fn error(status: StatusCode, msg: &str) -> Response<Body> {
    reply(status, json!({ "error": msg }))
}

/// True when the request carries the admin key.
fn authorized(state: &AppState, req: &Request<Incoming>) -> bool {
    let Some(token) = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.trim().as_bytes());
    aws_lc_rs::constant_time::verify_slices_are_equal(digest.as_ref(), &state.admin_key_sha256)
        .is_ok()
}

/// Handles /admin/v1/... requests.
pub async fn handle(state: &Arc<AppState>, req: Request<Incoming>) -> Response<Body> {
    if !authorized(state, &req) {
        tracing::warn!(path = %req.uri().path(), "admin request without a valid API key");
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header("www-authenticate", "Bearer")
            .header(CONTENT_TYPE, "application/json")
            .body(full(
                json!({"error": "a valid admin API key is required (Authorization: Bearer ...)"})
                    .to_string(),
            ))
            .unwrap_or_else(|_| Response::new(full(Vec::new())));
    }
    let path = req.uri().path().to_string();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let result = match (req.method().clone(), segs.as_slice()) {
        (Method::GET, ["admin", "v1", "certificates", serial]) => get_certificate(state, serial),
        (Method::POST, ["admin", "v1", "certificates", serial, "renew-early"]) => {
            renew_early(state, serial).await
        }
        _ => error(StatusCode::NOT_FOUND, "no such admin endpoint"),
    };
    let resp = result;
    tracing::info!(target: "audit", method = %req.method(), path = %path, status = resp.status().as_u16(), "admin call");
    resp
}

fn cert_json(c: &ironseal_storage::CertificateRecord) -> Value {
    json!({
        "serial": c.serial,
        "issuer": c.issuer_id,
        "account": c.account_id,
        "notBefore": ts(c.not_before),
        "notAfter": ts(c.not_after),
        "identifiers": c.identifiers,
        "revoked": c.revocation.as_ref().map(|r| json!({"at": ts(r.revoked_at), "reason": r.reason})),
        "replacedBy": c.replaced_by,
        "renewEarly": c.renew_early,
    })
}

fn get_certificate(state: &AppState, serial: &str) -> Response<Body> {
    match state.store.get_certificate(&serial.to_ascii_lowercase()) {
        Ok(Some(c)) => reply(StatusCode::OK, cert_json(&c)),
        Ok(None) => error(StatusCode::NOT_FOUND, "no certificate with that serial"),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn renew_early(state: &Arc<AppState>, serial: &str) -> Response<Body> {
    let mut c = match state.store.get_certificate(&serial.to_ascii_lowercase()) {
        Ok(Some(c)) => c,
        Ok(None) => return error(StatusCode::NOT_FOUND, "no certificate with that serial"),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    c.renew_early = true;
    if let Err(e) = state.store.update_certificate(&c) {
        return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
    }
    if let Err(e) = state.durable().await {
        return error(StatusCode::INTERNAL_SERVER_ERROR, &e.problem.detail);
    }
    reply(StatusCode::OK, cert_json(&c))
}
