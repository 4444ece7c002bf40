//! The EST front end (RFC 7030, RFC 8951, RFC 9266) on the HTTPS listener:
//! `/.well-known/est/[label/]{cacerts,simpleenroll,simplereenroll,csrattrs}`.
//!
//! It only translates: decode the body ([`ironseal_protocol::est`]),
//! authenticate the client ([`auth`]), check channel binding, build an
//! [`IssuanceRequest`] for the label's profile and tenant, and map the
//! authority's answer to HTTP in one place ([`error`]). A request held for
//! approval answers 202 with Retry-After; the retry with the same CSR gets
//! the decision.

pub mod auth;
pub mod config;
pub mod error;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use ironseal_protocol::est as wire;
use ironseal_storage::ApprovalStatus;
use rustls::server::danger::ClientCertVerifier;
use time::OffsetDateTime;

use self::config::{EstAuth, EstConfig, EstLabel};
use self::error::EstError;
use crate::authority::approvals::stored_error;
use crate::authority::{self, IssuanceRequest, Outcome, ProfileChoice, Requester};
use crate::http::{full, Body, PeerCertificates, TlsExporter};
use crate::state::AppState;

/// Where EST lives (RFC 7030 §3.2.2).
pub const PATH_PREFIX: &str = "/.well-known/est/";

/// Seconds a client is told to wait before retrying a held request
/// (RFC 7030 §4.2.3).
const RETRY_AFTER_SECS: u32 = 60;

/// EST state built at start: the bootstrap CA verifiers per label.
pub struct Est {
    bootstrap: HashMap<String, Arc<dyn ClientCertVerifier>>,
}

impl Est {
    /// Loads every label's `bootstrap_ca`.
    pub fn new(config: &EstConfig) -> Result<Est, String> {
        let mut bootstrap = HashMap::new();
        for l in &config.labels {
            if let Some(v) = auth::bootstrap_verifier(l)? {
                bootstrap.insert(l.label.clone(), v);
            }
        }
        Ok(Est { bootstrap })
    }
}

/// The EST operations (RFC 7030 §3.2.2, Table 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    CaCerts,
    SimpleEnroll,
    SimpleReenroll,
    CsrAttrs,
    ServerKeygen,
    FullCmc,
}

/// The label (None: unlabelled) and operation of a path under
/// [`PATH_PREFIX`], or `None` if it names no operation.
fn route(path: &str) -> Option<(Option<&str>, Operation)> {
    let rest = path.strip_prefix(PATH_PREFIX)?;
    let (label, op) = match rest.split_once('/') {
        Some((l, op)) => (Some(l), op),
        None => (None, rest),
    };
    let op = match op {
        "cacerts" => Operation::CaCerts,
        "simpleenroll" => Operation::SimpleEnroll,
        "simplereenroll" => Operation::SimpleReenroll,
        "csrattrs" => Operation::CsrAttrs,
        "serverkeygen" => Operation::ServerKeygen,
        "fullcmc" => Operation::FullCmc,
        _ => return None,
    };
    Some((label, op))
}

/// Serves one EST request.
pub async fn handle(state: &Arc<AppState>, est: &Est, req: Request<Incoming>) -> Response<Body> {
    match serve(state, est, req).await {
        Ok(r) => r,
        Err(e) => {
            tracing::info!(status = %e.status(), reason = %e.text(), "EST request refused");
            e.response()
        }
    }
}

async fn serve(
    state: &Arc<AppState>,
    est: &Est,
    req: Request<Incoming>,
) -> Result<Response<Body>, EstError> {
    let path = req.uri().path().to_string();
    let (label_name, op) =
        route(&path).ok_or_else(|| EstError::NotFound(format!("no EST operation at {path}")))?;
    let label = state.config.est.label(label_name).ok_or_else(|| {
        EstError::NotFound(match label_name {
            Some(l) => format!("no EST label {l:?}"),
            None => "no default EST label is configured; use /.well-known/est/<label>/".into(),
        })
    })?;
    match op {
        Operation::CaCerts => {
            expect(&req, &Method::GET, "GET")?;
            cacerts(state, label)
        }
        Operation::CsrAttrs => {
            expect(&req, &Method::GET, "GET")?;
            csrattrs(state, label)
        }
        Operation::SimpleEnroll | Operation::SimpleReenroll => {
            expect(&req, &Method::POST, "POST")?;
            enroll(state, est, label, req, op == Operation::SimpleReenroll).await
        }
        Operation::ServerKeygen => Err(EstError::NotImplemented("/serverkeygen")),
        Operation::FullCmc => Err(EstError::NotImplemented("/fullcmc")),
    }
}

fn expect(req: &Request<Incoming>, m: &Method, allowed: &'static str) -> Result<(), EstError> {
    if req.method() == m {
        Ok(())
    } else {
        Err(EstError::Method(allowed))
    }
}

/// A base64 body with `Content-Transfer-Encoding: base64` (RFC 8951 §3).
fn base64_response(status: StatusCode, content_type: &str, der: &[u8]) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-transfer-encoding", "base64")
        .body(full(Bytes::from(wire::encode_base64_body(der))))
        .unwrap_or_else(|_| Response::new(full(Bytes::new())))
}

const PKCS7_CERTS_ONLY: &str = "application/pkcs7-mime; smime-type=certs-only";

/// `/cacerts` (RFC 7030 §4.1): the label's issuing CA, its intermediates
/// and the root, as a certs-only PKCS#7.
fn cacerts(state: &AppState, label: &EstLabel) -> Result<Response<Body>, EstError> {
    let cas = state.ca_set();
    let ctx = authority::Ctx {
        config: &state.config,
        store: state.store.as_ref(),
        cas: &cas,
    };
    let profile = authority::resolve_profile(
        &ctx,
        &ProfileChoice::Configured(Some(label.profile.clone())),
    )?;
    let issuer = authority::profile_issuer(&ctx, &profile, None)?;
    let mut certs: Vec<Vec<u8>> = issuer.chain_der.clone();
    if let Ok((_, root)) = der::pem::decode_vec(cas.active_root_pem.as_bytes()) {
        if !certs.contains(&root) {
            certs.push(root);
        }
    }
    let refs: Vec<&[u8]> = certs.iter().map(Vec::as_slice).collect();
    let p7 = ironseal_protocol::pkcs7::certs_only(&refs).map_err(AuthorityError::internal)?;
    Ok(base64_response(
        StatusCode::OK,
        "application/pkcs7-mime",
        &p7,
    ))
}

use crate::authority::AuthorityError;

/// `/csrattrs` (RFC 7030 §4.5): the key types the label's profile accepts.
fn csrattrs(state: &AppState, label: &EstLabel) -> Result<Response<Body>, EstError> {
    use ironseal_ca_core::profile::KeyType;
    use wire::csrattrs::*;
    let profile = state.config.profile(&label.profile).ok_or_else(|| {
        AuthorityError::new(
            crate::authority::ErrorKind::UnknownProfile,
            "the label's profile is gone",
        )
    })?;
    let mut items = Vec::new();
    if label.channel_binding {
        items.push(AttrOrOid::Oid(OID_CHALLENGE_PASSWORD));
    }
    let mut curves = Vec::new();
    for k in &profile.key_types {
        match k {
            KeyType::P256 => curves.push(OID_SECP256R1),
            KeyType::P384 => curves.push(OID_SECP384R1),
            KeyType::Rsa => items.push(AttrOrOid::Oid(OID_RSA_ENCRYPTION)),
            KeyType::Ed25519 => items.push(AttrOrOid::Oid(OID_ED25519)),
        }
    }
    if !curves.is_empty() {
        items.push(
            AttrOrOid::attribute_of_oids(OID_EC_PUBLIC_KEY, &curves)
                .map_err(AuthorityError::internal)?,
        );
    }
    let der = encode_csr_attrs(&items).map_err(AuthorityError::internal)?;
    Ok(base64_response(
        StatusCode::OK,
        "application/csrattrs",
        &der,
    ))
}

/// `/simpleenroll` and `/simplereenroll` (RFC 7030 §4.2).
async fn enroll(
    state: &Arc<AppState>,
    est: &Est,
    label: &EstLabel,
    req: Request<Incoming>,
    reenroll: bool,
) -> Result<Response<Body>, EstError> {
    let (parts, body) = req.into_parts();
    let peer = parts.extensions.get::<PeerCertificates>().cloned();
    let exporter = parts.extensions.get::<TlsExporter>().copied();
    let cte = parts
        .headers
        .get("content-transfer-encoding")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let limit = wire::MAX_BODY_LEN.min(state.config.max_body_bytes.max(wire::MAX_BODY_LEN));
    let body = http_body_util::Limited::new(body, limit)
        .collect()
        .await
        .map_err(|e| EstError::BadRequest(format!("cannot read the body: {e}")))?
        .to_bytes();
    let csr_der = wire::decode_body(&body, cte.as_deref())?;
    let now = OffsetDateTime::now_utc();
    let allowed: &[EstAuth] = if reenroll {
        &[EstAuth::ClientCert]
    } else {
        &label.auth
    };
    let client = auth::authenticate(
        state.store.as_ref(),
        label,
        allowed,
        est.bootstrap.get(&label.label),
        peer.as_ref().map(|p| p.0.as_slice()),
        now,
    )?;
    if reenroll {
        auth::same_identity(&client.leaf, &csr_der)?;
    }
    if label.channel_binding {
        let pw = wire::challenge_password(&csr_der)?;
        wire::verify_channel_binding(pw.as_deref(), exporter.as_ref().map(|x| &x.0[..]))?;
    }
    let profile = state.config.profile(&label.profile).ok_or_else(|| {
        AuthorityError::new(
            crate::authority::ErrorKind::UnknownProfile,
            "the label's profile is gone",
        )
    })?;
    let requester = Requester::Est {
        client: client.id.clone(),
    };
    // A profile that requires approval: the retry with the same CSR picks
    // up the decision on the earlier request (RFC 7030 §4.2.3).
    if profile.requires_approval {
        if let Some(r) = earlier_decision(state, &requester, &csr_der)? {
            return r;
        }
    }
    let names = if matches!(profile.kind, ironseal_ca_core::profile::ProfileKind::Tls) {
        ironseal_ca_core::csr::check_csr(&csr_der, &ironseal_ca_core::csr::CsrPolicy::default())
            .map_err(|e| EstError::BadRequest(format!("CSR: {e}")))?
            .names
    } else {
        Vec::new()
    };
    let mut request = IssuanceRequest::new(requester, csr_der, names);
    request.tenant = label.tenant.clone();
    request.profile = ProfileChoice::Configured(Some(label.profile.clone()));
    match authority::issue(state, &request).await? {
        Outcome::Issued(issued) => certs_only_response(&issued.record.der),
        Outcome::Held(a) => Ok(held(&a.id)),
    }
}

/// The 202 answer for a held request (RFC 7030 §4.2.3).
fn held(approval: &str) -> Response<Body> {
    Response::builder()
        .status(StatusCode::ACCEPTED)
        .header("retry-after", RETRY_AFTER_SECS.to_string())
        .header("content-type", "text/plain; charset=utf-8")
        .body(full(Bytes::from(format!(
            "held for approval {approval}; retry with the same request later\n"
        ))))
        .unwrap_or_else(|_| Response::new(full(Bytes::new())))
}

fn certs_only_response(leaf: &[u8]) -> Result<Response<Body>, EstError> {
    let p7 = ironseal_protocol::pkcs7::certs_only(&[leaf]).map_err(AuthorityError::internal)?;
    Ok(base64_response(StatusCode::OK, PKCS7_CERTS_ONLY, &p7))
}

/// The answer for a CSR this requester already submitted under a profile
/// that requires approval: 202 while pending, the certificate once
/// approved and issued, the refusal once rejected. `None`: first time.
fn earlier_decision(
    state: &AppState,
    requester: &Requester,
    csr_der: &[u8],
) -> Result<Option<Result<Response<Body>, EstError>>, EstError> {
    let actor = requester.actor();
    let earlier = state
        .store
        .list_approvals(None)?
        .into_iter()
        .rev()
        .find(|a| a.protocol == "est" && a.requester == actor && a.csr_der == csr_der);
    let Some(a) = earlier else {
        return Ok(None);
    };
    Ok(Some(match a.status {
        ApprovalStatus::Pending => Ok(held(&a.id)),
        ApprovalStatus::Rejected => Err(EstError::Forbidden(format!(
            "the request was rejected by an approver ({})",
            a.comment.as_deref().unwrap_or("no comment")
        ))),
        ApprovalStatus::Approved => match (&a.cert_serial, &a.error) {
            (Some(serial), _) => match state.store.get_certificate(serial)? {
                Some(rec) => certs_only_response(&rec.der),
                None => Err(AuthorityError::internal("approved certificate missing").into()),
            },
            (None, Some(err)) => Err(stored_error(err).into()),
            // Approved, issuance not finished yet.
            (None, None) => Ok(held(&a.id)),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route("/.well-known/est/cacerts"),
            Some((None, Operation::CaCerts))
        );
        assert_eq!(
            route("/.well-known/est/iot/simpleenroll"),
            Some((Some("iot"), Operation::SimpleEnroll))
        );
        assert_eq!(
            route("/.well-known/est/iot/simplereenroll"),
            Some((Some("iot"), Operation::SimpleReenroll))
        );
        assert_eq!(route("/.well-known/est/iot/x/cacerts"), None);
        assert_eq!(route("/.well-known/est/nothing"), None);
        assert_eq!(route("/directory"), None);
    }
}
