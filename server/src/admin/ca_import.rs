//! CAs that do not start life on this server: an intermediate whose
//! certificate an offline or external root signs (request, then import of
//! the signed certificate), a CA certificate kept without its key (the
//! offline root itself, or a CA of an external hierarchy), and an existing
//! CA brought in with its key.
//!
//! Trust: a root is trusted when an admin puts it in the store, by creating
//! it, registering its certificate (`POST /admin/v1/cas/external`) or
//! importing it with its key. Everything else must chain, by name and
//! signature, to a CA already in the store (RFC 5280 §6.1); the chain is
//! then validated whole by the CA core.

use std::sync::Arc;

use hyper::StatusCode;
use ironseal_ca_core::cert::{cert_issuer_der, cert_subject_der};
use ironseal_ca_core::constraints::GeneralSubtree;
use ironseal_ca_core::hierarchy::CaProfile;
use ironseal_ca_core::hierarchy_ops::{
    check_external_ca, decode_certificate, import_ca, import_signed_ca, verify_cert_signature,
};
use ironseal_ca_core::keys::{CaKey, KeyAlgorithm};
use ironseal_ca_core::sealed::open;
use ironseal_protocol::admin::{ExternalCaRequest, ImportCaRequest, SignedCertificateRequest};
use ironseal_storage::{CaRecord, CaStatus, CaUpdate};
use time::OffsetDateTime;

use super::auth::Principal;
use super::cas::{
    ca_change, ca_error, ca_json, ca_name, load_ca, save_ca, save_signed_ca, seal_key, Reply,
};
use super::handlers::parse_body;
use super::{Answer, ApiError};
use crate::authority::ca_ops;
use crate::ids::new_id;
use crate::state::AppState;

/// `POST /admin/v1/cas/csr` (see the protocol crate).
type CsrRequest = ironseal_protocol::admin::CsrRequest<KeyAlgorithm, GeneralSubtree>;

/// Id of a CA made by these calls: `root-…` for a self-signed root,
/// `int-…` for anything below one.
fn ca_id(root: bool) -> String {
    let prefix = if root { "root" } else { "int" };
    format!("{prefix}-{}", &new_id()[..8]).to_lowercase()
}

/// The certificate bytes of `input` (PEM or DER), or 400.
fn certificate(input: &str) -> Result<Vec<u8>, ApiError> {
    decode_certificate(input.as_bytes())
        .map_err(|e| ApiError::bad_request(format!("certificatePem: {e}")))
}

/// Refuses a certificate already in the store under another record.
async fn refuse_duplicate(state: &AppState, der: &[u8]) -> Result<(), ApiError> {
    if let Some(r) = state
        .store
        .list_cas()
        .await?
        .into_iter()
        .find(|r| r.cert_der == der)
    {
        return Err(ApiError::conflict(
            "ca_exists",
            format!("this certificate is already CA {} ({:?})", r.id, r.name),
        ));
    }
    Ok(())
}

/// True when the certificate's issuer and subject names are the same
/// bytes (a self-issued certificate, RFC 5280 §3.2: a root or a key
/// rollover certificate).
fn self_issued(der: &[u8]) -> Result<bool, ApiError> {
    let subject = cert_subject_der(der).map_err(ca_error)?;
    let issuer = cert_issuer_der(der).map_err(ca_error)?;
    Ok(subject == issuer)
}

/// The CA of the store that issued `der` (subject equals its issuer name,
/// signature verifies) and the certificates from it up to its root, issuer
/// first. A retired issuer is refused; 422 `issuer_unknown` when no CA of
/// the store issued it.
async fn issuer_in_store(
    state: &AppState,
    der: &[u8],
) -> Result<(CaRecord, Vec<Vec<u8>>), ApiError> {
    let issuer_name = cert_issuer_der(der).map_err(ca_error)?;
    let records = state.store.list_cas().await?;
    let issuer = records
        .iter()
        .filter(|r| !r.cert_der.is_empty() && r.cert_der != der)
        .filter(|r| cert_subject_der(&r.cert_der).is_ok_and(|s| s == issuer_name))
        .find(|r| verify_cert_signature(der, &r.cert_der).is_ok())
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "issuer_unknown",
                "no CA in this server issued this certificate; register its issuer first \
                 (POST /admin/v1/cas/external with the issuer's certificate, root first)",
            )
        })?;
    if issuer.status == CaStatus::Retired {
        return Err(ApiError::conflict(
            "ca_retired",
            format!("the issuer, CA {}, is retired", issuer.id),
        ));
    }
    let mut chain = Vec::new();
    let mut cur = Some(issuer.id.clone());
    while let Some(id) = cur {
        let Some(r) = records.iter().find(|r| r.id == id) else {
            break;
        };
        if chain.len() > 16 {
            return Err(ApiError::internal(format!(
                "the parents of CA {} form a loop",
                issuer.id
            )));
        }
        chain.push(r.cert_der.clone());
        cur = r.parent_id.clone();
    }
    Ok((issuer, chain))
}

/// Where a CA certificate goes in the hierarchy: a self-issued one is a
/// root (no parent, empty chain); anything else sits under the store CA
/// that issued it, with that CA's certificates up to its root.
async fn placement(
    state: &AppState,
    der: &[u8],
) -> Result<(Option<String>, Vec<Vec<u8>>), ApiError> {
    if self_issued(der)? {
        return Ok((None, Vec::new()));
    }
    let (issuer, chain) = issuer_in_store(state, der).await?;
    Ok((Some(issuer.id), chain))
}

/// A new record named `name` in `status`, created now, with an id for its
/// place (`root-…` without a parent); certificate, key and request empty.
fn new_record(name: &str, parent: Option<String>, status: CaStatus) -> CaRecord {
    CaRecord {
        id: ca_id(parent.is_none() && status != CaStatus::Pending),
        name: name.to_string(),
        parent_id: parent,
        cert_der: Vec::new(),
        sealed_key: Vec::new(),
        algorithm: None,
        status,
        created_at: OffsetDateTime::now_utc(),
        cross_certs: Vec::new(),
        csr_der: Vec::new(),
        predecessor_id: None,
    }
}

/// `POST /admin/v1/cas/csr`: generates the key of a new intermediate,
/// seals it, and answers with its PKCS#10 request (RFC 2986) for an
/// offline or external root to sign. The CA is `pending` until
/// [`import_signed`].
pub(super) async fn create_csr(
    state: &Arc<AppState>,
    caller: &Principal,
    body: &[u8],
) -> Result<Answer, ApiError> {
    let req: CsrRequest = parse_body(body)?;
    let name = ca_name(&req.name)?;
    let caller = caller.clone();
    ca_change(state, move |state| async move {
        let now = OffsetDateTime::now_utc();
        let nc = req.name_constraints.unwrap_or_default();
        let mut profile = CaProfile::new(&name, req.algorithm, now, now + time::Duration::days(1));
        profile.organization = Some("ironseal".to_string());
        profile.path_len = req.path_len;
        profile.policies = req.policies;
        profile.name_constraints.permitted = nc.permitted;
        profile.name_constraints.excluded = nc.excluded;
        // Key generation (slow for RSA) on a blocking thread.
        let algorithm = req.algorithm;
        let (key, signed) = tokio::task::spawn_blocking(move || {
            let key = CaKey::generate(algorithm).map_err(ApiError::internal)?;
            let signed = ca_ops::sign_ca_request(&profile, &key).map_err(ca_error)?;
            Ok::<_, ApiError>((key, signed))
        })
        .await
        .map_err(ApiError::internal)??;
        let mut record = new_record(&name, None, CaStatus::Pending);
        let id = record.id.clone();
        record.csr_der = signed.get().clone();
        record.sealed_key = seal_key(state, &key, &id)?;
        record.algorithm = Some(req.algorithm);
        tracing::info!(id = %id, "CA key and request made for an external issuer");
        save_signed_ca(
            state,
            &caller,
            signed,
            CaUpdate::create(record.clone()),
            "ca.csr",
            format!("id={id} name={name:?} algorithm={}", req.algorithm.as_str()),
            Reply {
                status: StatusCode::CREATED,
                note: format!("pending CA {id}"),
            },
        )
        .await
        .map(|(answer, _)| answer)
    })
    .await
}

/// `POST /admin/v1/cas/{id}/certificate`: imports the certificate an
/// external issuer signed for pending CA `id`. The certificate must carry
/// the pending key, be a CA, and chain to a root of the store through CAs
/// of the store; the whole path is validated (RFC 5280 §6.1) before the CA
/// becomes `active` (it issues ACME leaves only after `activate`).
pub(super) async fn import_signed(
    state: &Arc<AppState>,
    caller: &Principal,
    id: &str,
    body: &[u8],
) -> Result<Answer, ApiError> {
    let req: SignedCertificateRequest = parse_body(body)?;
    let der = certificate(&req.certificate_pem)?;
    let id = id.to_string();
    let caller = caller.clone();
    ca_change(state, move |state| async move {
        let mut record = load_ca(state, &id).await?;
        let before = record.clone();
        if record.status != CaStatus::Pending {
            return Err(ApiError::conflict(
                "not_pending",
                format!(
                    "CA {id} is {}; only a pending CA takes a signed certificate",
                    record.status.as_str()
                ),
            ));
        }
        refuse_duplicate(state, &der).await?;
        let (issuer, chain) = issuer_in_store(state, &der).await?;
        let pkcs8 = open(&state.kek, &record.sealed_key, id.as_bytes())
            .map_err(|e| ApiError::internal(format!("cannot unseal the key of CA {id}: {e}")))?;
        let key = CaKey::from_pkcs8_der(&pkcs8).map_err(ApiError::internal)?;
        let root = chain.last().cloned().unwrap_or_default();
        let now = OffsetDateTime::now_utc();
        let imported = import_signed_ca(&der, &key, &chain, &[root], now).map_err(ca_error)?;
        record.cert_der = imported.cert_der;
        record.parent_id = Some(issuer.id.clone());
        record.status = CaStatus::Active;
        record.csr_der = Vec::new();
        tracing::info!(id = %id, issuer = %issuer.id, "externally signed CA certificate imported");
        save_ca(
            state,
            &caller,
            CaUpdate::replace(&before, record.clone()),
            "ca.import-signed",
            format!("id={id} issuer={}", issuer.id),
            Reply {
                status: StatusCode::OK,
                note: format!("CA {id} signed by {}", issuer.id),
            },
        )
        .await
    })
    .await
}

/// `POST /admin/v1/cas/external`: keeps a CA certificate whose key stays
/// outside (an offline root, or a CA of an external hierarchy) as a trust
/// anchor and chain member. A self-signed root stands alone; anything else
/// must chain to CAs already in the store. The CA signs nothing here.
pub(super) async fn register_external(
    state: &Arc<AppState>,
    caller: &Principal,
    body: &[u8],
) -> Result<Answer, ApiError> {
    let req: ExternalCaRequest = parse_body(body)?;
    let name = ca_name(&req.name)?;
    let der = certificate(&req.certificate_pem)?;
    let caller = caller.clone();
    ca_change(state, move |state| async move {
        refuse_duplicate(state, &der).await?;
        let (parent, chain) = placement(state, &der).await?;
        let mut record = new_record(&name, parent.clone(), CaStatus::External);
        record.cert_der =
            check_external_ca(&der, &chain, OffsetDateTime::now_utc()).map_err(ca_error)?;
        let id = record.id.clone();
        tracing::info!(id = %id, parent = ?parent, "external CA certificate registered");
        save_ca(
            state,
            &caller,
            CaUpdate::create(record.clone()),
            "ca.register-external",
            format!(
                "id={id} name={name:?} parent={}",
                parent.as_deref().unwrap_or("-")
            ),
            Reply {
                status: StatusCode::CREATED,
                note: format!("external CA {id}"),
            },
        )
        .await
    })
    .await
}

/// `POST /admin/v1/cas/import`: brings an existing CA and its private key
/// under management. The key must be the certificate's and the certificate
/// a CA; a self-signed root is taken as a new trust anchor, anything else
/// must chain to CAs already in the store and is validated as a path
/// (RFC 5280 §6.1). The key is sealed like the keys made here; the CA
/// starts `active` and issues ACME leaves only after `activate`.
pub(super) async fn import_existing(
    state: &Arc<AppState>,
    caller: &Principal,
    body: &[u8],
) -> Result<Answer, ApiError> {
    let req: ImportCaRequest = parse_body(body)?;
    let name = ca_name(&req.name)?;
    let caller = caller.clone();
    ca_change(state, move |state| async move {
        let (key, der) = import_ca(
            req.certificate_pem.as_bytes(),
            req.private_key_pem.as_bytes(),
        )
        .map_err(ca_error)?;
        refuse_duplicate(state, &der).await?;
        let (parent, chain) = placement(state, &der).await?;
        let now = OffsetDateTime::now_utc();
        match chain.last() {
            None => check_external_ca(&der, &[], now).map(drop),
            Some(root) => {
                import_signed_ca(&der, &key, &chain, std::slice::from_ref(root), now).map(drop)
            }
        }
        .map_err(ca_error)?;
        let algorithm = key.algorithm();
        let mut record = new_record(&name, parent.clone(), CaStatus::Active);
        let id = record.id.clone();
        record.cert_der = der;
        record.sealed_key = seal_key(state, &key, &id)?;
        record.algorithm = Some(algorithm);
        tracing::info!(id = %id, parent = ?parent, "existing CA imported with its key");
        save_ca(
            state,
            &caller,
            CaUpdate::create(record.clone()),
            "ca.import",
            format!(
                "id={id} name={name:?} parent={} algorithm={}",
                parent.as_deref().unwrap_or("-"),
                algorithm.as_str()
            ),
            Reply {
                status: StatusCode::CREATED,
                note: format!("imported CA {id}"),
            },
        )
        .await
    })
    .await
}

/// Decodes the body of one of this module's calls as its handler does
/// before touching state: the JSON, the name, and the PEM certificate
/// (and key) it carries. See [`super::handlers::decode_request`].
#[cfg(test)]
pub(super) fn decode_request(op: super::routes::Op, body: &[u8]) -> Result<(), ApiError> {
    use super::routes::Op;
    match op {
        Op::CreateCaCsr => parse_body::<CsrRequest>(body).and_then(|r| ca_name(&r.name).map(drop)),
        Op::ImportSignedCa => parse_body::<SignedCertificateRequest>(body)
            .and_then(|r| certificate(&r.certificate_pem).map(drop)),
        Op::RegisterExternalCa => parse_body::<ExternalCaRequest>(body).and_then(|r| {
            ca_name(&r.name)?;
            let der = certificate(&r.certificate_pem)?;
            self_issued(&der)?;
            check_external_ca(&der, &[], OffsetDateTime::now_utc()).map_err(ca_error)?;
            Ok(())
        }),
        Op::ImportCa => parse_body::<ImportCaRequest>(body).and_then(|r| {
            ca_name(&r.name)?;
            import_ca(r.certificate_pem.as_bytes(), r.private_key_pem.as_bytes())
                .map_err(ca_error)?;
            Ok(())
        }),
        _ => Ok(()),
    }
}

/// `GET /admin/v1/cas/{id}`: one CA (with its request while pending).
pub(super) async fn get_ca(state: &AppState, id: &str) -> Result<Answer, ApiError> {
    let record = load_ca(state, id).await?;
    Ok(Answer::ok(ca_json(&record, &state.ca_set())))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use ironseal_ca_core::cert::pem_encode;
    use ironseal_ca_core::hierarchy_ops::intermediate_csr;

    #[test]
    fn request_bodies() {
        let r: CsrRequest = parse_body(
            br#"{"name": "Ext", "algorithm": "p384", "pathLen": 0,
                "nameConstraints": {"permitted": ["dns:shop.test"]}}"#,
        )
        .unwrap();
        assert_eq!(r.algorithm, KeyAlgorithm::EcdsaP384);
        assert_eq!(r.path_len, Some(0));
        assert_eq!(r.name_constraints.unwrap().permitted.len(), 1);
        for bad in [
            &br#"{"name": "Ext"}"#[..],
            br#"{"name": "Ext", "algorithm": "p256", "validityDays": 3}"#,
            br#"{"name": "Ext", "algorithm": "p256", "nameConstraints": {"permitted": ["bogus:x"]}}"#,
        ] {
            assert!(parse_body::<CsrRequest>(bad).is_err(), "{bad:?}");
        }
        assert!(parse_body::<SignedCertificateRequest>(br#"{"certificatePem": "x"}"#).is_ok());
        assert!(parse_body::<SignedCertificateRequest>(br#"{"cert": "x"}"#).is_err());
        assert!(parse_body::<ExternalCaRequest>(br#"{"name": "R"}"#).is_err());
        assert!(parse_body::<ImportCaRequest>(
            br#"{"name": "R", "certificatePem": "a", "privateKeyPem": "b"}"#
        )
        .is_ok());
    }

    #[test]
    fn certificates_are_decoded_or_refused() {
        let key = CaKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let now = OffsetDateTime::now_utc();
        let profile = CaProfile::new("R", KeyAlgorithm::EcdsaP256, now, now);
        let csr = intermediate_csr(&profile, &key).unwrap();
        // A request is not a certificate.
        let e = certificate(&pem_encode("CERTIFICATE REQUEST", &csr)).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(certificate("garbage").is_err());
    }
}
