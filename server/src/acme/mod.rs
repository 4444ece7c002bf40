//! ACME front end (RFC 8555, RFC 9773): routing, the JWS request pipeline
//! and response helpers. Handlers live in the sibling modules.

pub mod account;
pub mod ari;
pub mod authz;
pub mod eab;
pub mod error;
pub mod finalize;
pub mod nonce;
pub mod order;
pub mod purge;
pub mod render;
pub mod revoke;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, HOST, LINK, LOCATION};
use hyper::{Method, Request, Response, StatusCode};
use ironseal_protocol::acme::jwk::Jwk;
use ironseal_protocol::acme::jws::{self, KeyRef, VerifiedJws};
use ironseal_protocol::acme::problem::ProblemType;
use ironseal_storage::AccountRecord;
use ironseal_storage::AccountStatus;
use serde_json::Value;

use crate::http::{full, Body};
use crate::state::AppState;
use error::AcmeError;
use nonce::AccountLookup;

/// Per-request context: the externally visible base URL (from the Host
/// header when it names one of our hostnames) and the request path.
pub struct Ctx {
    pub base: String,
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// The client's IP address (rate limits per client).
    pub client_ip: Option<std::net::IpAddr>,
}

impl Ctx {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
    pub fn directory(&self) -> String {
        self.url("/directory")
    }
    pub fn account_url(&self, id: &str) -> String {
        self.url(&format!("/acme/acct/{id}"))
    }
    pub fn order_url(&self, id: &str) -> String {
        self.url(&format!("/acme/order/{id}"))
    }
    pub fn authz_url(&self, id: &str) -> String {
        self.url(&format!("/acme/authz/{id}"))
    }
    pub fn challenge_url(&self, authz: &str, id: &str) -> String {
        self.url(&format!("/acme/chall/{authz}/{id}"))
    }
    pub fn cert_url(&self, serial: &str) -> String {
        self.url(&format!("/acme/cert/{serial}"))
    }
    /// The full URL the client requested, query included (RFC 8555 §6.4).
    pub fn request_url(&self) -> String {
        match &self.query {
            Some(q) => format!("{}{}?{q}", self.base, self.path),
            None => self.url(&self.path),
        }
    }
    /// One query parameter's value (no percent-decoding: our values are URL-safe).
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.as_deref()?.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name).then(|| v.to_string())
        })
    }
}

/// An ACME response under construction: status, JSON or raw body, headers.
pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
    pub content_type: &'static str,
    pub location: Option<String>,
    pub links: Vec<(String, &'static str)>,
    pub retry_after: Option<u64>,
}

impl Reply {
    pub fn json(status: StatusCode, value: &Value) -> Reply {
        Reply {
            status,
            body: Bytes::from(value.to_string()),
            content_type: "application/json",
            location: None,
            links: Vec::new(),
            retry_after: None,
        }
    }
    pub fn empty(status: StatusCode) -> Reply {
        Reply {
            status,
            body: Bytes::new(),
            content_type: "application/json",
            location: None,
            links: Vec::new(),
            retry_after: None,
        }
    }
    pub fn location(mut self, url: String) -> Reply {
        self.location = Some(url);
        self
    }
    pub fn link(mut self, url: String, rel: &'static str) -> Reply {
        self.links.push((url, rel));
        self
    }
    pub fn retry_after(mut self, secs: u64) -> Reply {
        self.retry_after = Some(secs);
        self
    }
}

/// A request that passed the JWS pipeline (RFC 8555 §6.2-§6.5).
pub struct Authed {
    pub jws: VerifiedJws,
    /// The key that verified the signature.
    pub jwk: Jwk,
    /// The account for `kid`-signed requests.
    pub account: Option<AccountRecord>,
}

impl Authed {
    /// The account, for endpoints that require `kid`.
    pub fn account(&self) -> Result<&AccountRecord, AcmeError> {
        self.account
            .as_ref()
            .ok_or_else(|| AcmeError::malformed("this request must be signed with kid"))
    }
    /// Requires a POST-as-GET (empty payload, RFC 8555 §6.3).
    pub fn require_post_as_get(&self) -> Result<(), AcmeError> {
        if self.jws.is_post_as_get() {
            Ok(())
        } else {
            Err(AcmeError::malformed(
                "this resource is fetched with POST-as-GET: the payload must be empty",
            ))
        }
    }
}

/// Which key reference an endpoint accepts (RFC 8555 §6.2).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    Jwk,
    Kid,
    Either,
}

/// Entry point for every request on the HTTPS listener under /acme,
/// /directory, and the Pebble-compatible helpers.
pub async fn handle(state: &Arc<AppState>, req: Request<Incoming>) -> Response<Body> {
    let ctx = Ctx {
        // HTTP/1.1 names the server in Host; HTTP/2 in :authority, which
        // hyper puts in the request URI (RFC 9113 §8.3.1).
        base: state.base_url_for(
            req.headers()
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .or_else(|| req.uri().authority().map(|a| a.as_str())),
        ),
        path: req.uri().path().to_string(),
        query: req.uri().query().map(str::to_string),
        client_ip: req
            .extensions()
            .get::<crate::http::ClientAddr>()
            .map(|c| c.0.ip()),
    };
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let route = route_name(&ctx.path);
    let result = dispatch(state, &ctx, req).await;
    let resp = match result {
        Ok(reply) => finish(state, &ctx, reply),
        Err(err) => problem_response(state, &ctx, err),
    };
    state
        .metrics
        .observe_acme(route, resp.status().as_u16(), started.elapsed());
    tracing::debug!(%method, path = %ctx.path, status = resp.status().as_u16(), "acme request");
    resp
}

/// A low-cardinality name of the route, for metrics.
fn route_name(path: &str) -> &'static str {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        ["directory"] | ["dir"] => "directory",
        ["acme", "new-nonce"] => "new-nonce",
        ["acme", "new-account"] => "new-account",
        ["acme", "new-order"] => "new-order",
        ["acme", "revoke-cert"] => "revoke-cert",
        ["acme", "key-change"] => "key-change",
        ["acme", "acct", _] => "account",
        ["acme", "acct", _, "orders"] => "orders",
        ["acme", "order", _] => "order",
        ["acme", "order", _, "finalize"] => "finalize",
        ["acme", "authz", _] => "authz",
        ["acme", "chall", _, _] => "challenge",
        ["acme", "cert", ..] => "certificate",
        ["acme", "renewal-info", ..] => "renewal-info",
        _ => "other",
    }
}

async fn dispatch(
    state: &Arc<AppState>,
    ctx: &Ctx,
    req: Request<Incoming>,
) -> Result<Reply, AcmeError> {
    let path = ctx.path.clone();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = req.method().clone();
    match (method.clone(), segs.as_slice()) {
        (Method::GET, ["directory"]) | (Method::GET, ["dir"]) => Ok(directory(state, ctx)),
        (Method::HEAD, ["acme", "new-nonce"]) => Ok(Reply::empty(StatusCode::OK)),
        (Method::GET, ["acme", "new-nonce"]) => Ok(Reply::empty(StatusCode::NO_CONTENT)),
        (Method::GET, ["acme", "renewal-info", cert_id]) => ari::renewal_info(state, cert_id).await,
        (Method::POST, _) => {
            let (parts, body) = req.into_parts();
            check_content_type(&parts.headers)?;
            let body = read_body(body, state.config.max_body_bytes).await?;
            post(state, ctx, &segs, &body).await
        }
        (_, ["directory"] | ["dir"] | ["acme", ..]) => Err(AcmeError::malformed(format!(
            "method {method} is not allowed here"
        ))
        .with_status(405)),
        _ => Err(AcmeError::not_found(format!("no resource at {}", ctx.path))),
    }
}

async fn post(
    state: &Arc<AppState>,
    ctx: &Ctx,
    segs: &[&str],
    body: &[u8],
) -> Result<Reply, AcmeError> {
    match segs {
        ["acme", "new-account"] => {
            let a = authenticate(state, ctx, body, KeyMode::Jwk).await?;
            account::new_account(state, ctx, a).await
        }
        ["acme", "new-order"] => {
            let a = authenticate(state, ctx, body, KeyMode::Kid).await?;
            order::new_order(state, ctx, a).await
        }
        ["acme", "revoke-cert"] => {
            let a = authenticate(state, ctx, body, KeyMode::Either).await?;
            revoke::revoke_cert(state, a).await
        }
        ["acme", "key-change"] => {
            let a = authenticate(state, ctx, body, KeyMode::Kid).await?;
            account::key_change(state, ctx, a).await
        }
        ["acme", "acct", id] => {
            let a = authenticate(state, ctx, body, KeyMode::Kid).await?;
            account::account(state, ctx, a, id).await
        }
        ["acme", "acct", id, "orders"] => {
            let a = authenticate(state, ctx, body, KeyMode::Kid).await?;
            order::list_orders(state, ctx, a, id).await
        }
        ["acme", "order", id] => {
            let a = authenticate(state, ctx, body, KeyMode::Kid).await?;
            order::get_order(state, ctx, a, id).await
        }
        ["acme", "order", id, "finalize"] => {
            let a = authenticate(state, ctx, body, KeyMode::Kid).await?;
            finalize::finalize(state, ctx, a, id).await
        }
        ["acme", "authz", id] => {
            let a = authenticate(state, ctx, body, KeyMode::Kid).await?;
            authz::authz(state, ctx, a, id).await
        }
        ["acme", "chall", authz_id, id] => {
            let a = authenticate(state, ctx, body, KeyMode::Kid).await?;
            authz::challenge(state, ctx, a, authz_id, id).await
        }
        ["acme", "cert", serial] => {
            let a = authenticate(state, ctx, body, KeyMode::Kid).await?;
            order::certificate(state, ctx, a, serial, 0).await
        }
        ["acme", "cert", serial, alt] => {
            let a = authenticate(state, ctx, body, KeyMode::Kid).await?;
            let n: usize = alt
                .parse()
                .map_err(|_| AcmeError::not_found("no such alternate chain"))?;
            order::certificate(state, ctx, a, serial, n).await
        }
        _ => Err(AcmeError::not_found(format!("no resource at {}", ctx.path))),
    }
}

/// RFC 8555 §6.2: ACME POST bodies are `application/jose+json`.
fn check_content_type(headers: &hyper::HeaderMap) -> Result<(), AcmeError> {
    let ct = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/jose+json") {
        Ok(())
    } else {
        Err(AcmeError::malformed(format!(
            "Content-Type must be application/jose+json, got {ct:?}"
        ))
        .with_status(415))
    }
}

/// Reads a request body of at most `limit` bytes.
async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, AcmeError> {
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(
                    AcmeError::malformed(format!("request body larger than {limit} bytes"))
                        .with_status(413),
                )
            } else {
                Err(AcmeError::malformed(format!(
                    "cannot read request body: {e}"
                )))
            }
        }
    }
}

/// The JWS pipeline: parse, nonce, url, key lookup, signature, account
/// status (RFC 8555 §6.2-§6.5). Nothing reaches a handler without it.
pub async fn authenticate(
    state: &Arc<AppState>,
    ctx: &Ctx,
    body: &[u8],
    mode: KeyMode,
) -> Result<Authed, AcmeError> {
    let unverified = jws::parse(body)?;
    let header = &unverified.header;
    // A kid-signed request's account is read with its nonce's redemption
    // where the store records nonces (one round trip, issue 11).
    let kid_account = match (&header.key, mode) {
        (KeyRef::Kid(kid), KeyMode::Kid | KeyMode::Either) => account_id_from_kid(kid, state),
        _ => None,
    };
    let Some(n) = &header.nonce else {
        return Err(AcmeError::new(
            ProblemType::BadNonce,
            "the JWS protected header has no nonce",
        ));
    };
    let redeemed = match kid_account {
        Some(id) => state.nonces.redeem_reading_account(n, id).await,
        None => state
            .nonces
            .redeem(n)
            .await
            .map(|()| AccountLookup::NotRead),
    };
    let prefetched = match redeemed {
        Ok(lookup) => lookup,
        Err(e @ nonce::NonceError::Unavailable) => {
            let mut err =
                AcmeError::new(ProblemType::ServerInternal, e.to_string()).with_status(503);
            err.retry_after = Some(1);
            return Err(err);
        }
        Err(e) => {
            return Err(AcmeError::new(
                ProblemType::BadNonce,
                format!("{e}; retry with the Replay-Nonce of this response"),
            ))
        }
    };
    let expected = ctx.request_url();
    if !urls_match(&header.url, &expected, state) {
        return Err(AcmeError::unauthorized(format!(
            "the JWS url header {:?} does not match the request URL {expected:?}",
            header.url
        )));
    }
    let (jwk, account) = match (&header.key, mode) {
        (KeyRef::Jwk(_), KeyMode::Kid) => {
            return Err(AcmeError::malformed(
                "this request must be signed with kid (the account URL), not jwk",
            ))
        }
        (KeyRef::Kid(_), KeyMode::Jwk) => {
            return Err(AcmeError::malformed(
                "this request must be signed with jwk, not kid",
            ))
        }
        (KeyRef::Jwk(jwk), _) => (jwk.clone(), None),
        (KeyRef::Kid(kid), _) => {
            // The kid's account id, read once above.
            let id = kid_account.ok_or_else(|| {
                AcmeError::new(
                    ProblemType::AccountDoesNotExist,
                    format!("kid {kid:?} is not an account URL of this server"),
                )
            })?;
            let acct = match prefetched {
                AccountLookup::Read(acct) => acct.map(|a| *a),
                AccountLookup::NotRead => state.store.get_account(id).await?,
            }
            .ok_or_else(|| {
                AcmeError::new(ProblemType::AccountDoesNotExist, format!("no account {id}"))
            })?;
            let jwk = Jwk::from_json(&acct.jwk).map_err(AcmeError::internal)?;
            (jwk, Some(acct))
        }
    };
    let verified = unverified.verify(&jwk)?;
    if let Some(acct) = &account {
        if acct.status != AccountStatus::Valid {
            return Err(AcmeError::unauthorized(format!(
                "account {} is {:?}; it can no longer be used",
                acct.id, acct.status
            )));
        }
    }
    Ok(Authed {
        jws: verified,
        jwk,
        account,
    })
}

/// The request URL check of RFC 8555 §6.4. The JWS must name the URL the
/// client requested; we accept any of our configured host names for it.
fn urls_match(header_url: &str, expected: &str, state: &AppState) -> bool {
    if header_url == expected {
        return true;
    }
    // Same path under another configured hostname (client used another Host).
    let path_of = |u: &str| -> Option<String> {
        let rest = u.strip_prefix("https://")?;
        let slash = rest.find('/')?;
        Some(rest[slash..].to_string())
    };
    let host_of = |u: &str| -> Option<String> {
        let rest = u.strip_prefix("https://")?;
        let end = rest.find('/').unwrap_or(rest.len());
        Some(rest[..end].to_string())
    };
    match (path_of(header_url), path_of(expected), host_of(header_url)) {
        (Some(a), Some(b), Some(host)) => a == b && state.is_our_authority(&host),
        _ => false,
    }
}

/// Extracts the account id from a kid URL `https://host/acme/acct/{id}`
/// whose host is one of ours (RFC 8555 §6.2: kid is the account URL).
fn account_id_from_kid<'a>(kid: &'a str, state: &AppState) -> Option<&'a str> {
    let rest = kid.strip_prefix("https://")?;
    let slash = rest.find('/')?;
    if !state.is_our_authority(&rest[..slash]) {
        return None;
    }
    let id = rest[slash..].strip_prefix("/acme/acct/")?;
    if id.is_empty() || id.contains('/') {
        None
    } else {
        Some(id)
    }
}

fn directory(state: &AppState, ctx: &Ctx) -> Reply {
    let c = &state.config;
    // draft-ietf-acme-profiles: profile name → human-readable description.
    let profiles: serde_json::Map<String, serde_json::Value> = c
        .profiles
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                serde_json::Value::String(p.description.clone()),
            )
        })
        .collect();
    let mut meta = serde_json::json!({
        "termsOfService": c.terms_of_service,
        "website": c.website,
        "caaIdentities": c.caa_identities,
        "externalAccountRequired": state.eab_required(),
        "profiles": profiles,
    });
    if c.caa_identities.is_empty() {
        if let Some(m) = meta.as_object_mut() {
            m.insert("caaIdentities".into(), serde_json::json!(c.hostnames));
        }
    }
    Reply::json(
        StatusCode::OK,
        &serde_json::json!({
            "newNonce": ctx.url("/acme/new-nonce"),
            "newAccount": ctx.url("/acme/new-account"),
            "newOrder": ctx.url("/acme/new-order"),
            "revokeCert": ctx.url("/acme/revoke-cert"),
            "keyChange": ctx.url("/acme/key-change"),
            "renewalInfo": ctx.url("/acme/renewal-info"),
            "meta": meta,
        }),
    )
}

/// Adds the headers every ACME response carries (RFC 8555 §6.5, §7.1).
fn finish(state: &AppState, ctx: &Ctx, reply: Reply) -> Response<Body> {
    let mut b = Response::builder()
        .status(reply.status)
        .header(CONTENT_TYPE, reply.content_type)
        .header(CACHE_CONTROL, "no-store")
        .header("Replay-Nonce", state.nonces.issue())
        .header(LINK, format!("<{}>;rel=\"index\"", ctx.directory()));
    if let Some(loc) = &reply.location {
        b = b.header(LOCATION, loc);
    }
    for (url, rel) in &reply.links {
        b = b.header(LINK, format!("<{url}>;rel=\"{rel}\""));
    }
    if let Some(secs) = reply.retry_after {
        b = b.header("Retry-After", secs.to_string());
    }
    b.body(full(reply.body))
        .unwrap_or_else(|_| Response::new(full(Bytes::new())))
}

/// Renders an [`AcmeError`] as `application/problem+json` (RFC 7807).
pub fn problem_response(state: &AppState, ctx: &Ctx, err: AcmeError) -> Response<Body> {
    let status = StatusCode::from_u16(err.problem.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut reply = Reply::json(status, &err.problem.to_json());
    reply.content_type = "application/problem+json";
    reply.location = err.location;
    if err.problem.kind == ProblemType::RateLimited {
        reply.retry_after = Some(err.retry_after.unwrap_or(60));
    }
    if err.problem.kind == ProblemType::BadNonce {
        state.metrics.bad_nonce();
    }
    let mut resp = finish(state, ctx, reply);
    if let Ok(v) = HeaderValue::from_str("application/problem+json") {
        resp.headers_mut().insert(CONTENT_TYPE, v);
    }
    resp
}

/// The public key bits of a stored account JWK.
pub fn jwk_bits(v: &Value) -> Result<Vec<u8>, AcmeError> {
    Ok(Jwk::from_json(v)
        .map_err(AcmeError::internal)?
        .public_key_bits())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_names_are_bounded() {
        assert_eq!(route_name("/acme/order/x/finalize"), "finalize");
        assert_eq!(route_name("/acme/cert/ab/1"), "certificate");
        assert_eq!(route_name("/nope"), "other");
    }
}
