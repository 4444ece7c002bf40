//! The EST front end (RFC 7030, RFC 8951, RFC 9266) on the HTTPS listener:
//! `/.well-known/est/[label/]{cacerts,simpleenroll,simplereenroll,csrattrs,serverkeygen}`.
//!
//! It only translates: decode the body ([`ironseal_protocol::est`]),
//! authenticate the client ([`auth`]), check channel binding, build an
//! [`IssuanceRequest`] for the label's profile and tenant, and map the
//! authority's answer to HTTP in one place ([`error`]). A request held for
//! approval answers 202 with Retry-After; the retry with the same CSR gets
//! the decision.

pub mod auth;
pub mod basic;
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
use crate::http::{full, Body, ConnMemo, PeerCertificates, TlsExporter};
use crate::state::AppState;

/// Where EST lives (RFC 7030 §3.2.2).
pub const PATH_PREFIX: &str = "/.well-known/est/";

/// Seconds a client is told to wait before retrying a held request
/// (RFC 7030 §4.2.3).
const RETRY_AFTER_SECS: u32 = 60;

/// EST state built at start: the bootstrap CA verifiers per label and
/// the failed-Basic-attempt limiter.
pub struct Est {
    bootstrap: HashMap<String, Arc<dyn ClientCertVerifier>>,
    failures: basic::FailureLimiter,
}

impl Est {
    /// Loads every label's `bootstrap_ca`. With `shared_store`
    /// (PostgreSQL), failed Basic attempts are counted in its rate buckets,
    /// so a lockout holds on every replica.
    pub fn new(
        config: &EstConfig,
        shared_store: Option<Arc<dyn ironseal_storage::Store>>,
    ) -> Result<Est, String> {
        let mut bootstrap = HashMap::new();
        for l in &config.labels {
            if let Some(v) = auth::bootstrap_verifier(l)? {
                bootstrap.insert(l.label.clone(), v);
            }
        }
        let failures = match shared_store {
            Some(store) => {
                basic::FailureLimiter::shared(basic::FAILURE_BURST, basic::FAILURE_REFILL, store)
            }
            None => basic::FailureLimiter::default(),
        };
        Ok(Est {
            bootstrap,
            failures,
        })
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
    // Read a POST body before any answer: a client that is still sending
    // (HTTP/2 especially) must not see its stream reset by an early 404.
    let (parts, body) = req.into_parts();
    let body = if parts.method == Method::POST {
        let limit = wire::MAX_BODY_LEN.min(state.config.max_body_bytes.max(wire::MAX_BODY_LEN));
        http_body_util::Limited::new(body, limit)
            .collect()
            .await
            .map_err(|e| EstError::BadRequest(format!("cannot read the body: {e}")))?
            .to_bytes()
    } else {
        Bytes::new()
    };
    let req = Request::from_parts(parts, body);
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
            cacerts(state, label).await
        }
        Operation::CsrAttrs => {
            expect(&req, &Method::GET, "GET")?;
            csrattrs(state, label)
        }
        Operation::SimpleEnroll | Operation::SimpleReenroll | Operation::ServerKeygen => {
            expect(&req, &Method::POST, "POST")?;
            enroll(state, est, label, req, op).await
        }
        Operation::FullCmc => Err(EstError::NotImplemented("/fullcmc")),
    }
}

fn expect(req: &Request<Bytes>, m: &Method, allowed: &'static str) -> Result<(), EstError> {
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
async fn cacerts(state: &AppState, label: &EstLabel) -> Result<Response<Body>, EstError> {
    let cas = state.ca_set();
    let ctx = authority::Ctx {
        config: &state.config,
        store: &state.store,
        cas: &cas,
    };
    let profile = authority::resolve_profile(
        &ctx,
        &ProfileChoice::Configured(Some(label.profile.clone())),
    )?;
    let issuer = authority::profile_issuer(&ctx, &profile, None).await?;
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

/// `/simpleenroll` and `/simplereenroll` (RFC 7030 §4.2), and
/// `/serverkeygen` (RFC 7030 §4.4), whose CSR is only a template: the
/// authority generates the key and it is returned with the certificate,
/// unencrypted inside the TLS channel (see docs/rfc-divergences.md).
async fn enroll(
    state: &Arc<AppState>,
    est: &Est,
    label: &EstLabel,
    req: Request<Bytes>,
    op: Operation,
) -> Result<Response<Body>, EstError> {
    let reenroll = op == Operation::SimpleReenroll;
    let keygen = op == Operation::ServerKeygen;
    let (parts, body) = req.into_parts();
    let peer = parts.extensions.get::<PeerCertificates>().cloned();
    let memo = parts.extensions.get::<ConnMemo>();
    let exporter = parts.extensions.get::<TlsExporter>().copied();
    let cte = parts
        .headers
        .get("content-transfer-encoding")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let csr_der = wire::decode_body(&body, cte.as_deref())?;
    let now = OffsetDateTime::now_utc();
    let allowed: &[EstAuth] = if reenroll {
        &[EstAuth::ClientCert]
    } else {
        &label.auth
    };
    let by_cert = auth::authenticate(
        state.store.as_ref(),
        label,
        allowed,
        est.bootstrap.get(&label.label),
        peer.as_ref().map(|p| p.0.as_slice()),
        memo,
        now,
    )
    .await;
    let client = match by_cert {
        Ok(c) => c,
        Err(e) if allowed.contains(&EstAuth::Basic) => {
            let header = parts
                .headers
                .get(hyper::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            match header.and_then(basic::parse_basic) {
                Some(Ok(creds)) => basic_client(state, est, label, creds).await?,
                Some(Err(why)) => return Err(EstError::BasicRequired(why.into())),
                None if peer.is_some() => return Err(e),
                None => {
                    return Err(EstError::BasicRequired(
                        "this EST label requires HTTP Basic credentials or a TLS client \
                         certificate (RFC 7030 section 3.2.3)"
                            .into(),
                    ))
                }
            }
        }
        Err(e) => return Err(e),
    };
    if reenroll {
        let leaf = client.leaf.as_ref().ok_or_else(|| {
            EstError::Forbidden("re-enrolment requires the client certificate".into())
        })?;
        auth::same_identity(leaf, &csr_der)?;
    }
    let recipient = match keygen {
        true => key_recipient(&csr_der, &client)?,
        false => None,
    };
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
    if profile.requires_approval && !keygen {
        if let Some(r) = earlier_decision(state, &requester, &csr_der).await? {
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
    let key_type = keygen.then(|| generated_key_type(&profile.key_types, &csr_der));
    let mut request = IssuanceRequest::new(requester, csr_der, names);
    request.tenant = label.tenant.clone();
    request.profile = ProfileChoice::Configured(Some(label.profile.clone()));
    request.generate_key = key_type;
    match authority::issue(state, &request).await? {
        Outcome::Issued(issued) => match &issued.generated_key {
            Some(key) => {
                serverkeygen_response(key.pkcs8_der(), recipient.as_ref(), &issued.record.der)
            }
            None => certs_only_response(&issued.record.der),
        },
        Outcome::Held(a) => Ok(held(&a.id)),
    }
}

/// Checks HTTP Basic credentials (RFC 7030 §3.2.3) against the EST users
/// of the label's tenant: refused while the name is locked out, the slow
/// hash on a blocking thread (the same cost for unknown names), each
/// failure counted.
async fn basic_client(
    state: &Arc<AppState>,
    est: &Est,
    label: &EstLabel,
    creds: basic::Credentials,
) -> Result<auth::Client, EstError> {
    if let Some(wait) = est.failures.locked(&label.label, &creds.username).await {
        return Err(EstError::TooManyFailures(wait.as_secs().max(1)));
    }
    let user = state.store.get_est_user(&creds.username).await?;
    let stored = user
        .filter(|u| u.is_active() && u.tenant_id == label.tenant)
        .map(|u| u.password_hash);
    let password = creds.password.clone();
    let ok = tokio::task::spawn_blocking(move || match stored {
        Some(h) => basic::verify_password(&password, &h),
        None => {
            basic::verify_nobody(&password);
            false
        }
    })
    .await
    .unwrap_or(false);
    if !ok {
        est.failures.failed(&label.label, &creds.username).await;
        return Err(EstError::BasicRequired(
            "wrong EST user name or password for this label".into(),
        ));
    }
    Ok(auth::Client {
        method: EstAuth::Basic,
        leaf: None,
        id: format!("{}:user:{}", label.label, creds.username),
    })
}

/// The key type the authority generates for `/serverkeygen`: the type of
/// the template CSR's key when the profile accepts it (the device asked
/// for that kind), else the profile's first.
fn generated_key_type(
    allowed: &[ironseal_ca_core::profile::KeyType],
    csr_der: &[u8],
) -> ironseal_ca_core::profile::KeyType {
    use ironseal_ca_core::profile::KeyType;
    let policy = ironseal_ca_core::csr::CsrPolicy {
        allow_ed25519: true,
        ..Default::default()
    };
    let asked = ironseal_ca_core::csr::check_csr(csr_der, &policy)
        .ok()
        .map(|c| KeyType::of(c.key));
    match asked {
        Some(k) if allowed.contains(&k) => k,
        _ => allowed.first().copied().unwrap_or(KeyType::P256),
    }
}

/// RFC 7030 §4.4.1: the certificate whose key the generated private key
/// is encrypted to, or `None` for the unencrypted PKCS#8.
///
/// - AsymmetricDecryptKeyIdentifier (§4.4.1.2) names a public key the
///   server knows; the only client key ironseal knows is the one of the
///   TLS client certificate this request authenticated with, so the
///   identifier must be that certificate's key identifier (its
///   subjectKeyIdentifier). Anything else is "no public key matching the
///   identifier": the request is refused (400) before anything is issued.
///   Only RSA keys can receive it (key transport, RFC 5652 §6.2.1); an EC
///   or Ed25519 certificate would need key agreement, not offered (501).
/// - DecryptKeyIdentifier (§4.4.1.1, a shared symmetric key): not offered
///   (501), never answered in clear.
fn key_recipient(
    csr_der: &[u8],
    client: &auth::Client,
) -> Result<Option<x509_cert::Certificate>, EstError> {
    use wire::KeyDelivery;
    const RSA_ENCRYPTION: der::asn1::ObjectIdentifier =
        der::asn1::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
    match wire::requested_key_delivery(csr_der)? {
        KeyDelivery::Plain => Ok(None),
        KeyDelivery::Symmetric(_) => Err(EstError::NotImplemented(
            "encrypting the server-generated key with a shared symmetric key \
             (DecryptKeyIdentifier, RFC 7030 section 4.4.1.1)",
        )),
        KeyDelivery::Asymmetric(id) => {
            let leaf = client
                .leaf
                .as_ref()
                .filter(|leaf| wire::key_identifier(leaf) == id)
                .ok_or_else(|| {
                    EstError::BadRequest(
                        "no public key matches the AsymmetricDecryptKeyIdentifier: it must be \
                         the subjectKeyIdentifier of the TLS client certificate this request \
                         authenticates with (RFC 7030 section 4.4.1.2)"
                            .into(),
                    )
                })?;
            let alg = &leaf.tbs_certificate().subject_public_key_info().algorithm;
            if alg.oid != RSA_ENCRYPTION {
                return Err(EstError::NotImplemented(
                    "encrypting the server-generated key to a non-RSA client key \
                     (key agreement, RFC 7030 section 4.4.2); use an RSA client certificate",
                ));
            }
            Ok(Some(x509_cert::Certificate::clone(leaf)))
        }
    }
}

/// The `/serverkeygen` answer (RFC 7030 §4.4.2): `multipart/mixed` with
/// the private key (the PKCS#8, or encrypted to `recipient` as
/// `smime-type=server-generated-key`) and the certs-only PKCS#7.
fn serverkeygen_response(
    pkcs8: &[u8],
    recipient: Option<&x509_cert::Certificate>,
    leaf: &[u8],
) -> Result<Response<Body>, EstError> {
    let p7 = ironseal_protocol::pkcs7::certs_only(&[leaf]).map_err(AuthorityError::internal)?;
    let boundary = format!("est_{}", hex::encode(rand::random::<[u8; 12]>()));
    let encrypted = match recipient {
        Some(cert) => Some(
            wire::encrypted_key_package(pkcs8, cert, &aws_lc_rs::rand::SystemRandom::new())
                .map_err(AuthorityError::internal)?,
        ),
        None => None,
    };
    let key = match &encrypted {
        Some(p7) => wire::KeyPart::Encrypted(p7),
        None => wire::KeyPart::Pkcs8(pkcs8),
    };
    let r = wire::serverkeygen_response(key, &p7, &boundary)
        .ok_or_else(|| AuthorityError::internal("multipart boundary refused"))?;
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", r.content_type)
        .header("cache-control", "no-store")
        .body(full(Bytes::from(r.body)))
        .map_err(|e| AuthorityError::internal(e).into())
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
async fn earlier_decision(
    state: &AppState,
    requester: &Requester,
    csr_der: &[u8],
) -> Result<Option<Result<Response<Body>, EstError>>, EstError> {
    let actor = requester.actor();
    let earlier = state
        .store
        .list_approvals(None)
        .await?
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
            (Some(serial), _) => match state.store.get_certificate(serial).await? {
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
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use ironseal_ca_core::profile::KeyType;

    fn csr(alg: &'static rcgen::SignatureAlgorithm, attrs: Vec<rcgen::Attribute>) -> Vec<u8> {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "dev1");
        params
            .serialize_request_with_attributes(&key, attrs)
            .unwrap()
            .der()
            .to_vec()
    }

    #[test]
    fn serverkeygen_key_type_follows_the_template_when_allowed() {
        let p384 = csr(&rcgen::PKCS_ECDSA_P384_SHA384, vec![]);
        assert_eq!(
            generated_key_type(&[KeyType::P256, KeyType::P384], &p384),
            KeyType::P384
        );
        assert_eq!(generated_key_type(&[KeyType::Rsa], &p384), KeyType::Rsa);
        assert_eq!(generated_key_type(&[KeyType::P256], b"junk"), KeyType::P256);
    }

    fn client(leaf: Option<&[u8]>) -> auth::Client {
        use der::Decode;
        auth::Client {
            method: EstAuth::ClientCert,
            leaf: leaf.map(|d| Arc::new(x509_cert::Certificate::from_der(d).unwrap())),
            id: "t".into(),
        }
    }

    fn key_id_attr(oid: &'static [u64], id: &[u8]) -> rcgen::Attribute {
        // SET { OCTET STRING id }
        let mut v = vec![0x31, id.len() as u8 + 2, 0x04, id.len() as u8];
        v.extend_from_slice(id);
        rcgen::Attribute { oid, values: v }
    }

    #[test]
    fn serverkeygen_key_recipient_follows_rfc7030_4_4_1() {
        let p256 = &rcgen::PKCS_ECDSA_P256_SHA256;
        // No attribute: the plain PKCS#8.
        assert_eq!(
            key_recipient(&csr(p256, vec![]), &client(None)).unwrap(),
            None
        );
        // DecryptKeyIdentifier (§4.4.1.1): 501, never in clear.
        let sym = csr(
            p256,
            vec![key_id_attr(&[1, 2, 840, 113549, 1, 9, 16, 2, 37], &[7])],
        );
        let e = key_recipient(&sym, &client(None)).unwrap_err();
        assert_eq!(e.status(), StatusCode::NOT_IMPLEMENTED);
        // AsymmetricDecryptKeyIdentifier without a client certificate
        // (Basic): no key known, 400.
        let asym_oid: &[u64] = &[1, 2, 840, 113549, 1, 9, 16, 2, 54];
        let rsa_cert = include_bytes!("../../../protocol/tests/vectors/scep/micromdm-ca-ra.der");
        let ec_cert = include_bytes!("../../../protocol/tests/vectors/est/ec-cert.der");
        let rsa_id = {
            use der::Decode;
            wire::key_identifier(&x509_cert::Certificate::from_der(rsa_cert).unwrap())
        };
        let asym = csr(p256, vec![key_id_attr(asym_oid, &rsa_id)]);
        let e = key_recipient(&asym, &client(None)).unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert!(
            e.text().contains("AsymmetricDecryptKeyIdentifier"),
            "{}",
            e.text()
        );
        // The identifier of the client's RSA certificate: encrypted to it.
        let got = key_recipient(&asym, &client(Some(rsa_cert))).unwrap();
        assert!(got.is_some());
        // Another identifier: 400.
        let other = csr(p256, vec![key_id_attr(asym_oid, &[1, 2, 3])]);
        let e = key_recipient(&other, &client(Some(rsa_cert))).unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        // An EC client certificate: key agreement is not offered, 501.
        let ec_id = {
            use der::Decode;
            wire::key_identifier(&x509_cert::Certificate::from_der(ec_cert).unwrap())
        };
        let ec = csr(p256, vec![key_id_attr(asym_oid, &ec_id)]);
        let e = key_recipient(&ec, &client(Some(ec_cert))).unwrap_err();
        assert_eq!(e.status(), StatusCode::NOT_IMPLEMENTED);
        assert_eq!(
            key_recipient(b"junk", &client(None)).unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
    }

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
        assert_eq!(
            route("/.well-known/est/iot/serverkeygen"),
            Some((Some("iot"), Operation::ServerKeygen))
        );
        assert_eq!(route("/.well-known/est/iot/x/cacerts"), None);
        assert_eq!(route("/.well-known/est/nothing"), None);
        assert_eq!(route("/directory"), None);
    }
}
