//! The plain-HTTP listener: OCSP (RFC 6960, RFC 5019), CA certificates
//! (AIA caIssuers, RFC 5280 §4.2.2.1), CRLs (§4.2.1.13, served as application/pkix-crl with caching
//! headers), Prometheus metrics and a health check. Relying parties fetch
//! these without TLS, as RFC 5280 expects.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, ETAG, EXPIRES, IF_NONE_MATCH,
    LAST_MODIFIED, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode};
use time::format_description::well_known::Rfc2822;

use crate::crl::Part;
use crate::http::{full, text, Body};
use crate::state::AppState;

/// Whether a `/metrics` request may be answered: always when no token is
/// configured, else only with `Authorization: Bearer <token>` (compared
/// in constant time, over SHA-256 digests so the length leaks nothing).
pub fn metrics_authorized(token: Option<&str>, authorization: Option<&HeaderValue>) -> bool {
    let Some(token) = token else {
        return true;
    };
    let Some(given) = authorization
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let d = |s: &str| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.trim().as_bytes());
    aws_lc_rs::constant_time::verify_slices_are_equal(d(given).as_ref(), d(token).as_ref()).is_ok()
}

/// `/metrics`: the Prometheus text, or 401 without the configured token.
async fn metrics(state: &AppState, req: &Request<Incoming>) -> Response<Body> {
    let token = state.config.metrics_token.as_ref().map(|s| s.0.as_str());
    if !metrics_authorized(token, req.headers().get(AUTHORIZATION)) {
        let mut r = text(StatusCode::UNAUTHORIZED, "a bearer token is required\n");
        r.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"ironseal metrics\""),
        );
        return r;
    }
    Response::builder()
        .header(CONTENT_TYPE, "text/plain; version=0.0.4")
        .body(full(render_metrics(state).await))
        .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, ""))
}

/// Handles one request on the separate metrics listener (`[metrics]
/// listen`): `/metrics` and `/health` only.
pub async fn handle_metrics_listener(
    state: &Arc<AppState>,
    req: Request<Incoming>,
) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    }
    match req.uri().path() {
        "/metrics" => metrics(state, &req).await,
        "/health" => text(StatusCode::OK, "ok\n"),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Handles one request on the plain-HTTP listener.
pub async fn handle(state: &Arc<AppState>, req: Request<Incoming>) -> Response<Body> {
    if req.uri().path() == "/ocsp" || req.uri().path().starts_with("/ocsp/") {
        return crate::ocsp::handle(state, req).await;
    }
    if req.uri().path() == "/scep" || req.uri().path().starts_with("/scep/") {
        return crate::scep::handle(state, req).await;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    }
    let path = req.uri().path().to_string();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        ["health"] => text(StatusCode::OK, "ok\n"),
        // Moved to its own listener when `[metrics] listen` is set.
        ["metrics"] if state.config.metrics_listen.is_none() => metrics(state, &req).await,
        ["ca", "root.pem"] => Response::builder()
            .header(CONTENT_TYPE, "application/x-pem-file")
            .body(full(state.ca_set().root_pem.clone()))
            .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "")),
        ["ca", file] => match file.strip_suffix(".der") {
            Some(id) => {
                let set = state.ca_set();
                let der = match set.by_id.get(id) {
                    Some(ca) => Some(ca.issuer.cert_der().to_vec()),
                    None => set.external_by_id.get(id).cloned(),
                };
                match der {
                    Some(der) => Response::builder()
                        .header(CONTENT_TYPE, "application/pkix-cert")
                        .header(CACHE_CONTROL, "public, max-age=86400")
                        .body(full(der))
                        .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "")),
                    None => text(StatusCode::NOT_FOUND, "no such CA\n"),
                }
            }
            None => text(StatusCode::NOT_FOUND, "not found\n"),
        },
        ["crl", file] => match file.strip_suffix(".crl") {
            Some(id) => crl(state, id, Part::Full, &req).await,
            None => text(StatusCode::NOT_FOUND, "not found\n"),
        },
        // A CRL partition (shard), see crate::crl.
        ["crl", id, file] => match file.strip_suffix(".crl").map(str::parse::<u32>) {
            Some(Ok(k)) if crate::crl::shard_count(&state.config) > 1 => {
                crl(state, id, Part::Shard(k), &req).await
            }
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        },
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Prometheus text: the request metrics plus the flusher's batching counts.
async fn render_metrics(state: &AppState) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = crate::metrics::render(state).await;
    out.push_str(&format!(
        "# TYPE ironseal_store_flushes_total counter\nironseal_store_flushes_total {}\n\
         # TYPE ironseal_store_flush_waiters_total counter\nironseal_store_flush_waiters_total {}\n",
        state.flush_stats.flushes.load(Relaxed),
        state.flush_stats.waiters.load(Relaxed)
    ));
    out
}

async fn crl(
    state: &Arc<AppState>,
    id: &str,
    part: Part,
    req: &Request<Incoming>,
) -> Response<Body> {
    if !state.ca_set().by_id.contains_key(id) {
        return text(StatusCode::NOT_FOUND, "no such CA\n");
    }
    // A task of its own, so that a client going away does not cut a build
    // short (its signature runs on a blocking thread, see crate::crl).
    let (st, ca) = (state.clone(), id.to_string());
    let c = match tokio::spawn(async move { crate::crl::current(&st, &ca, part).await }).await {
        Ok(Ok(c)) => c,
        Ok(Err(crate::crl::CrlError::UnknownShard(..))) => {
            return text(StatusCode::NOT_FOUND, "no such CRL shard\n")
        }
        Ok(Err(e)) => {
            tracing::error!(ca = id, error = %e, "CRL build failed");
            return text(StatusCode::INTERNAL_SERVER_ERROR, "CRL unavailable\n");
        }
        Err(_) => return text(StatusCode::INTERNAL_SERVER_ERROR, "CRL unavailable\n"),
    };
    let etag = match part {
        Part::Full => format!("\"{id}-{}\"", c.number),
        Part::Shard(k) => format!("\"{id}-{k}-{}\"", c.number),
    };
    if req
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag)
    {
        return Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .header(ETAG, &etag)
            .body(full(Vec::new()))
            .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, ""));
    }
    let max_age = (c.next_update - time::OffsetDateTime::now_utc())
        .whole_seconds()
        .clamp(0, 3600);
    Response::builder()
        .header(CONTENT_TYPE, "application/pkix-crl")
        .header(ETAG, &etag)
        .header(
            LAST_MODIFIED,
            c.this_update
                .format(&Rfc2822)
                .unwrap_or_default()
                .replace("+0000", "GMT"),
        )
        .header(
            EXPIRES,
            c.next_update
                .format(&Rfc2822)
                .unwrap_or_default()
                .replace("+0000", "GMT"),
        )
        .header(CACHE_CONTROL, format!("public, max-age={max_age}"))
        .body(full(c.der.clone()))
        .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hardening (issue 10 item 15): with a token configured, `/metrics`
    /// needs exactly `Authorization: Bearer <token>`.
    #[test]
    fn metrics_bearer_token() {
        let h = |s: &'static str| HeaderValue::from_static(s);
        assert!(metrics_authorized(None, None));
        assert!(metrics_authorized(None, Some(&h("Bearer anything"))));
        let t = Some("0123456789abcdef-token");
        assert!(metrics_authorized(
            t,
            Some(&h("Bearer 0123456789abcdef-token"))
        ));
        assert!(!metrics_authorized(t, None));
        assert!(!metrics_authorized(
            t,
            Some(&h("Bearer 0123456789abcdef-tokeN"))
        ));
        assert!(!metrics_authorized(t, Some(&h("Bearer 0123456789abcdef"))));
        assert!(!metrics_authorized(
            t,
            Some(&h("Basic 0123456789abcdef-token"))
        ));
        assert!(!metrics_authorized(t, Some(&h("0123456789abcdef-token"))));
        assert!(!metrics_authorized(t, Some(&h("Bearer "))));
    }
}
