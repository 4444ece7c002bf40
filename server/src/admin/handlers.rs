//! The admin endpoints behind [`super::routes::ROUTES`].

use std::sync::Arc;

use hyper::StatusCode;
use ironseal_ca_core::constraints::{GeneralSubtree, NameConstraints};
use ironseal_ca_core::error::CaError;
use ironseal_ca_core::hierarchy::{create_intermediate, create_root, CaProfile};
use ironseal_ca_core::keys::KeyAlgorithm;
use ironseal_ca_core::revocation::RevocationReason;
use ironseal_ca_core::sealed::seal;
use ironseal_ca_core::serial::Serial;
use ironseal_storage::{
    verify_chain, ApiKeyRecord, ApiRole, AuditEntry, AuditEvent, AuditHead, CaRecord, CaStatus,
    CertificateRecord, CrossCert, StoreError,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::auth::{generate_key, Principal};
use super::routes::{Op, BULK_MAX_SERIALS};
use super::{ca_import, rollover};
use super::{Answer, ApiError};
use crate::acme::render::ts;
use crate::bootstrap::{listener_names, load_cas, read_issuing, write_issuing, BootError};
use crate::revocation::{self, parse_reason, reason_name, RevokeError};
use crate::state::{new_id, AppState, CaSet};

/// Most audit entries returned by one call.
const AUDIT_MAX_LIMIT: usize = 1000;
/// Default page size of the audit log.
const AUDIT_DEFAULT_LIMIT: usize = 100;

/// Runs one admin operation.
pub async fn dispatch(
    state: &Arc<AppState>,
    caller: &Principal,
    op: Op,
    params: &[String],
    query: Option<&str>,
    body: &[u8],
) -> Result<Answer, ApiError> {
    let param = |i: usize| params.get(i).map(String::as_str).unwrap_or_default();
    match op {
        Op::Whoami => Ok(Answer::ok(json!({
            "id": caller.id,
            "name": caller.name,
            "role": caller.role,
            "credential": caller.credential.as_str(),
        }))),
        Op::CreateKey => create_key(state, caller, body),
        Op::ListKeys => list_keys(state),
        Op::DeleteKey => delete_key(state, param(0)),
        Op::GetCertificate => get_certificate(state, param(0)),
        Op::RenewEarly => renew_early(state, param(0)),
        Op::RevokeCertificate => revoke_one(state, caller, param(0), body).await,
        Op::BulkRevoke => bulk_revoke(state, caller, body).await,
        Op::ListCas => list_cas(state),
        Op::CreateCa => create_ca(state, caller, body).await,
        Op::ActivateCa => activate_ca(state, caller, param(0)).await,
        Op::SetCaStatus => set_ca_status(state, caller, param(0), body).await,
        Op::CrossSignCa => cross_sign_ca(state, caller, param(0), body).await,
        Op::GetCa => ca_import::get_ca(state, param(0)),
        Op::CreateCaCsr => ca_import::create_csr(state, caller, body).await,
        Op::ImportSignedCa => ca_import::import_signed(state, caller, param(0), body).await,
        Op::RegisterExternalCa => ca_import::register_external(state, caller, body).await,
        Op::ImportCa => ca_import::import_existing(state, caller, body).await,
        Op::RolloverCa => rollover::rollover(state, caller, param(0), body).await,
        Op::Audit => audit(state, query),
    }
}

/// Decodes what an admin call carries — path parameters, query and JSON
/// body — the way its handler does before it touches any state, and
/// reports the first refusal. Used by the `admin_json` fuzz target (via
/// [`super::decode_for_fuzzing`]): arbitrary bytes must give an error,
/// never a panic.
pub(super) fn decode_request(
    op: Op,
    params: &[&str],
    query: Option<&str>,
    body: &[u8],
) -> Result<(), ApiError> {
    for p in params {
        // Serial parameters are normalized; ids are looked up verbatim.
        let _ = normalize_serial(p);
    }
    match op {
        Op::CreateKey => parse_body::<CreateKeyRequest>(body).map(drop),
        Op::RevokeCertificate => {
            parse_body::<RevokeRequest>(body).and_then(|r| admin_reason(r.reason).map(drop))
        }
        Op::BulkRevoke => parse_body::<BulkRequest>(body).and_then(|r| {
            r.serials.iter().for_each(|s| drop(normalize_serial(s)));
            admin_reason(r.reason).map(drop)
        }),
        Op::CreateCa => {
            parse_body::<CreateCaRequest>(body).and_then(|r| ca_name(&r.name).map(drop))
        }
        Op::SetCaStatus => parse_body::<CaStatusRequest>(body).map(drop),
        Op::CrossSignCa => parse_body::<CrossSignRequest>(body).map(drop),
        Op::CreateCaCsr | Op::ImportSignedCa | Op::RegisterExternalCa | Op::ImportCa => {
            ca_import::decode_request(op, body)
        }
        Op::RolloverCa => parse_body::<rollover::RolloverRequest>(body).map(drop),
        Op::Audit => parse_audit_query(query).map(drop),
        Op::Whoami
        | Op::ListKeys
        | Op::DeleteKey
        | Op::GetCertificate
        | Op::RenewEarly
        | Op::ListCas
        | Op::ActivateCa
        | Op::GetCa => Ok(()),
    }
}

/// Parses a JSON body, rejecting unknown fields (via the type's
/// `deny_unknown_fields`); an empty body reads as `{}`.
pub(super) fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("request body: {e}")))
}

// ------------------------------------------------------------------ keys

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKeyRequest {
    name: String,
    role: ApiRole,
}

fn key_json(k: &ApiKeyRecord) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "role": k.role,
        "createdAt": ts(k.created_at),
        "createdBy": k.created_by,
        "disabledAt": k.disabled_at.map(ts),
    })
}

fn create_key(state: &AppState, caller: &Principal, body: &[u8]) -> Result<Answer, ApiError> {
    let req: CreateKeyRequest = parse_body(body)?;
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "name must be 1 to 128 characters without control characters",
        ));
    }
    let new = generate_key(name, req.role, &caller.actor(), OffsetDateTime::now_utc());
    state.store.create_api_key(&new.record)?;
    let mut body = key_json(&new.record);
    body["key"] = Value::String(new.key);
    Ok(Answer {
        status: StatusCode::CREATED,
        body,
        note: Some(format!("created key {}", new.record.id)),
    })
}

fn list_keys(state: &AppState) -> Result<Answer, ApiError> {
    let keys: Vec<Value> = state.store.list_api_keys()?.iter().map(key_json).collect();
    Ok(Answer::ok(json!({ "keys": keys })))
}

fn delete_key(state: &AppState, id: &str) -> Result<Answer, ApiError> {
    let keys = state.store.list_api_keys()?;
    let Some(target) = keys.iter().find(|k| k.id == id) else {
        return Err(ApiError::not_found("no API key with that id"));
    };
    if target.disabled_at.is_some() {
        return Err(ApiError::conflict(
            "already_disabled",
            "the API key is already disabled",
        ));
    }
    let active_admins = keys
        .iter()
        .filter(|k| k.role == ApiRole::Admin && k.disabled_at.is_none())
        .count();
    if target.role == ApiRole::Admin && active_admins <= 1 {
        return Err(ApiError::conflict(
            "last_admin_key",
            "this is the last enabled admin key; create another admin key first",
        ));
    }
    match state.store.disable_api_key(id, OffsetDateTime::now_utc()) {
        Ok(k) => Ok(Answer::ok(key_json(&k))),
        Err(StoreError::NotFound) => Err(ApiError::not_found("no API key with that id")),
        Err(StoreError::Conflict(_)) => Err(ApiError::conflict(
            "already_disabled",
            "the API key is already disabled",
        )),
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------- certificates

fn cert_json(c: &CertificateRecord) -> Value {
    json!({
        "serial": c.serial,
        "issuer": c.issuer_id,
        "account": c.account_id,
        "notBefore": ts(c.not_before),
        "notAfter": ts(c.not_after),
        "identifiers": c.identifiers,
        "revoked": c.revocation.as_ref().map(|r| json!({
            "at": ts(r.revoked_at),
            "reason": r.reason,
            "reasonName": reason_name(r.reason),
        })),
        "replacedBy": c.replaced_by,
        "renewEarly": c.renew_early,
    })
}

/// A serial as given in a path or list (hex, any case, colons allowed,
/// leading zeros optional) in the stored form: the DER INTEGER content in
/// lowercase hex, i.e. minimal, with one `00` byte only before a high bit.
fn normalize_serial(s: &str) -> Option<String> {
    let s: String = s.trim().chars().filter(|c| *c != ':').collect();
    if s.is_empty() || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let digits = s.trim_start_matches('0').to_ascii_lowercase();
    let mut out = if digits.len() % 2 == 1 {
        format!("0{digits}")
    } else {
        digits
    };
    if out.is_empty() {
        out = "00".into();
    } else if out
        .as_bytes()
        .first()
        .is_some_and(|b| b"89abcdef".contains(b))
    {
        out.insert_str(0, "00");
    }
    Some(out)
}

fn load_certificate(state: &AppState, serial: &str) -> Result<CertificateRecord, ApiError> {
    let serial = normalize_serial(serial)
        .ok_or_else(|| ApiError::not_found("no certificate with that serial"))?;
    state
        .store
        .get_certificate(&serial)?
        .ok_or_else(|| ApiError::not_found("no certificate with that serial"))
}

fn get_certificate(state: &AppState, serial: &str) -> Result<Answer, ApiError> {
    Ok(Answer::ok(cert_json(&load_certificate(state, serial)?)))
}

fn renew_early(state: &AppState, serial: &str) -> Result<Answer, ApiError> {
    let mut c = load_certificate(state, serial)?;
    c.renew_early = true;
    state.store.update_certificate(&c)?;
    Ok(Answer::ok(cert_json(&c)))
}

/// A reason as a name (`"keyCompromise"`) or a code (`1`).
#[derive(Deserialize)]
#[serde(untagged)]
enum ReasonInput {
    Code(u8),
    Name(String),
}

fn admin_reason(input: Option<ReasonInput>) -> Result<RevocationReason, ApiError> {
    let reason = match input {
        None => RevocationReason::Unspecified,
        Some(ReasonInput::Code(c)) => RevocationReason::try_from(c)
            .map_err(|_| ApiError::bad_request(format!("{c} is not an RFC 5280 reason code")))?,
        Some(ReasonInput::Name(n)) => parse_reason(&n)
            .ok_or_else(|| ApiError::bad_request(format!("{n:?} is not an RFC 5280 reason")))?,
    };
    match reason {
        // Revocation here is final and CRLs are full CRLs: no hold, no
        // delta-CRL removal.
        RevocationReason::CertificateHold | RevocationReason::RemoveFromCrl => {
            Err(ApiError::bad_request(format!(
                "reason {} is not supported (revocation is permanent)",
                reason_name(reason)
            )))
        }
        r => Ok(r),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeRequest {
    #[serde(default)]
    reason: Option<ReasonInput>,
}

fn revoke_error(e: RevokeError) -> ApiError {
    match e {
        RevokeError::AlreadyRevoked => {
            ApiError::conflict("already_revoked", "certificate is already revoked")
        }
        RevokeError::NotFound => ApiError::not_found("no certificate with that serial"),
        other => ApiError::internal(other),
    }
}

async fn revoke_one(
    state: &Arc<AppState>,
    caller: &Principal,
    serial: &str,
    body: &[u8],
) -> Result<Answer, ApiError> {
    let req: RevokeRequest = parse_body(body)?;
    let reason = admin_reason(req.reason)?;
    let record = load_certificate(state, serial)?;
    if record.revocation.is_some() {
        return Err(revoke_error(RevokeError::AlreadyRevoked));
    }
    revocation::revoke_certificate(state, &record, reason, &caller.actor())
        .await
        .map_err(revoke_error)?;
    let updated = load_certificate(state, &record.serial)?;
    Ok(Answer {
        status: StatusCode::OK,
        body: cert_json(&updated),
        note: Some(format!("revoked {}", record.serial)),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BulkRequest {
    serials: Vec<String>,
    #[serde(default)]
    reason: Option<ReasonInput>,
}

async fn bulk_revoke(
    state: &Arc<AppState>,
    caller: &Principal,
    body: &[u8],
) -> Result<Answer, ApiError> {
    let req: BulkRequest = parse_body(body)?;
    let reason = admin_reason(req.reason)?;
    if req.serials.is_empty() {
        return Err(ApiError::bad_request("serials is empty"));
    }
    if req.serials.len() > BULK_MAX_SERIALS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "too_many_serials",
            format!(
                "{} serials; at most {BULK_MAX_SERIALS} per call",
                req.serials.len()
            ),
        ));
    }
    let st = state.clone();
    let actor = caller.actor();
    // Store writes for up to 10,000 certificates: off the async workers.
    let (results, staged) = tokio::task::spawn_blocking(move || {
        let mut results = Vec::with_capacity(req.serials.len());
        let mut staged = Vec::new();
        for given in &req.serials {
            let outcome = match normalize_serial(given) {
                None => "invalid_serial",
                Some(serial) => match st.store.get_certificate(&serial) {
                    Ok(None) => "not_found",
                    Ok(Some(r)) if r.revocation.is_some() => "already_revoked",
                    Ok(Some(r)) => match revocation::stage(&st, &r, reason, &actor) {
                        Ok(_) => {
                            staged.push(r);
                            "revoked"
                        }
                        Err(RevokeError::AlreadyRevoked) => "already_revoked",
                        Err(RevokeError::NotFound) => "not_found",
                        Err(e) => {
                            tracing::error!(serial = %serial, error = %e, "bulk revocation failed");
                            "error"
                        }
                    },
                    Err(e) => {
                        tracing::error!(serial = %serial, error = %e, "bulk revocation lookup failed");
                        "error"
                    }
                },
            };
            results.push(json!({ "serial": given, "outcome": outcome }));
        }
        (results, staged)
    })
    .await
    .map_err(ApiError::internal)?;
    if !staged.is_empty() {
        state
            .durable()
            .await
            .map_err(|e| ApiError::internal(e.problem.detail))?;
        for r in &staged {
            revocation::publish(state, r, reason);
            state.metrics.certificate_revoked(
                crate::metrics::Protocol::Admin,
                revocation::reason_name(reason),
            );
        }
    }
    let count = |o: &str| results.iter().filter(|r| r["outcome"] == o).count();
    let note = format!(
        "revoked {} of {} (already_revoked {}, not_found {}, invalid {}, error {})",
        staged.len(),
        results.len(),
        count("already_revoked"),
        count("not_found"),
        count("invalid_serial"),
        count("error"),
    );
    Ok(Answer {
        status: StatusCode::OK,
        body: json!({
            "reason": reason_name(reason),
            "revoked": staged.len(),
            "results": results,
        }),
        note: Some(note),
    })
}

// ------------------------------------------------------------------- CAs

/// The JSON of one CA (list items and the answers of the CA calls).
pub(super) fn ca_json(r: &CaRecord, set: &CaSet) -> Value {
    use ironseal_ca_core::cert::{
        cert_not_after, cert_not_before, cert_ski, cert_subject_der, pem_encode,
    };
    use x509_cert::der::Decode as _;
    let der = &r.cert_der;
    let subject = cert_subject_der(der)
        .ok()
        .and_then(|d| x509_cert::name::Name::from_der(&d).ok())
        .map(|n| n.to_string());
    let path_len = set
        .by_id
        .get(&r.id)
        .and_then(|c| c.issuer.chain_policy().cas().first())
        .and_then(|c| c.path_len);
    json!({
        "id": r.id,
        "name": r.name,
        "parent": r.parent_id,
        "status": r.status,
        "issuing": r.id == set.active.issuer.id(),
        "algorithm": r.algorithm,
        "pathLen": path_len,
        "notBefore": cert_not_before(der).ok().map(ts),
        "notAfter": cert_not_after(der).ok().map(ts),
        "subject": subject,
        "ski": cert_ski(der).ok().flatten().map(hex::encode),
        "createdAt": ts(r.created_at),
        "keyHeld": r.status != CaStatus::External,
        "certificatePem": (!der.is_empty()).then(|| pem_encode("CERTIFICATE", der)),
        "csrPem": (!r.csr_der.is_empty()).then(|| pem_encode("CERTIFICATE REQUEST", &r.csr_der)),
        "crossCertificates": r.cross_certs.iter().map(|c| json!({
            "by": c.by,
            "certificatePem": pem_encode("CERTIFICATE", &c.der),
        })).collect::<Vec<_>>(),
    })
}

fn list_cas(state: &AppState) -> Result<Answer, ApiError> {
    let set = state.ca_set();
    let out: Vec<Value> = state
        .store
        .list_cas()?
        .iter()
        .map(|r| ca_json(r, &set))
        .collect();
    Ok(Answer::ok(json!({ "cas": out })))
}

/// Name constraints as text subtrees (`dns:example.com`, `ip:10.0.0.0/8`, ...).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct NameConstraintsInput {
    #[serde(default)]
    pub(super) permitted: Vec<GeneralSubtree>,
    #[serde(default)]
    pub(super) excluded: Vec<GeneralSubtree>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateCaRequest {
    name: String,
    #[serde(default)]
    parent: Option<String>,
    algorithm: KeyAlgorithm,
    validity_days: u32,
    #[serde(default)]
    path_len: Option<u8>,
    #[serde(default)]
    policies: Vec<String>,
    #[serde(default)]
    name_constraints: Option<NameConstraintsInput>,
}

/// Longest validity of a CA created through the API.
const CA_MAX_VALIDITY_DAYS: u32 = 36_500;

/// A refusal of the CA core as an API error: what breaks the hierarchy's
/// rules is 422 with the reason, malformed input 400.
pub(super) fn ca_error(e: CaError) -> ApiError {
    let unprocessable =
        |code, e: &CaError| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string());
    match &e {
        CaError::PathLenExceeded { .. } => unprocessable("path_len_exceeded", &e),
        CaError::NameConstraintViolation { .. } => unprocessable("name_constraint_violation", &e),
        CaError::InvalidValidity(_) | CaError::ValidityNotNested { .. } => {
            unprocessable("invalid_validity", &e)
        }
        // An imported certificate or key that does not fit (RFC 5280 §6.1).
        CaError::KeyMismatch => unprocessable("key_mismatch", &e),
        CaError::NotACa { .. } => unprocessable("not_a_ca", &e),
        CaError::BadSignature { .. } => unprocessable("bad_signature", &e),
        CaError::Untrusted(_) => unprocessable("untrusted", &e),
        CaError::NameChain { .. } => unprocessable("name_chain", &e),
        CaError::Expired { .. } | CaError::NotYetValid { .. } => unprocessable("not_valid_now", &e),
        CaError::InvalidIssuer(_) => unprocessable("unusable_ca_certificate", &e),
        CaError::InvalidRequest(_)
        | CaError::Encoding(_)
        | CaError::InvalidCertificate(_)
        | CaError::Key(_) => ApiError::bad_request(e.to_string()),
        _ => ApiError::internal(e),
    }
}

fn boot_error(e: BootError) -> ApiError {
    match e {
        BootError::Ca(e) => ca_error(e),
        other => ApiError::internal(other),
    }
}

/// Rebuilds the CA set from the store, puts it in force and sets up the
/// OCSP responders of new CAs. Call with `state.ca_admin` held. The root
/// served as `/root.pem` stays the one the HTTPS certificate chains to
/// (it changes at the next start if the issuing CA moved to another root).
pub(super) fn reload_cas(state: &AppState) -> Result<(), ApiError> {
    let old = state.ca_set();
    let mut set = load_cas(&state.config, state.store.as_ref(), &state.kek).map_err(boot_error)?;
    set.root_pem = old.root_pem.clone();
    state.replace_cas(set);
    if let Err(e) = crate::ocsp::ensure_responders(state) {
        tracing::warn!(error = %e, "OCSP responder setup after a CA change incomplete");
    }
    if let Err(e) = state.refresh_listener_cert() {
        tracing::warn!(error = %e, "HTTPS listener certificate not moved to the new issuing CA");
    }
    Ok(())
}

pub(super) fn audit_ca(
    state: &AppState,
    caller: &Principal,
    action: &str,
    summary: String,
) -> Result<(), ApiError> {
    state.store.append_audit(&AuditEvent {
        at: OffsetDateTime::now_utc(),
        actor: caller.actor(),
        action: action.into(),
        summary,
        outcome: None,
    })?;
    Ok(())
}

/// The common end of a hierarchy change: stores `record`, appends the
/// audit entry, makes both durable, rebuilds the CA set, and answers with
/// the CA. Call inside [`ca_change`].
pub(super) fn save_ca(
    state: &AppState,
    caller: &Principal,
    record: &CaRecord,
    action: &str,
    summary: String,
    status: StatusCode,
    note: String,
) -> Result<Answer, ApiError> {
    // Pin the current issuing CA first (older data directories may lack
    // the file): a new active CA never takes over issuance before it is
    // activated.
    if read_issuing(&state.config).is_none() {
        write_issuing(&state.config, state.active_issuer().issuer.id())
            .map_err(ApiError::internal)?;
    }
    state.store.put_ca(record)?;
    audit_ca(state, caller, action, summary)?;
    state.store.flush()?;
    reload_cas(state)?;
    Ok(Answer {
        status,
        body: ca_json(record, &state.ca_set()),
        note: Some(note),
    })
}

/// Runs a hierarchy change off the async workers (key generation, store
/// writes, unsealing every CA) with `state.ca_admin` held, then makes it
/// durable.
pub(super) async fn ca_change<F>(state: &Arc<AppState>, f: F) -> Result<Answer, ApiError>
where
    F: FnOnce(&AppState) -> Result<Answer, ApiError> + Send + 'static,
{
    let st = state.clone();
    let answer = tokio::task::spawn_blocking(move || {
        let _guard = st.ca_admin.lock().unwrap_or_else(|e| e.into_inner());
        f(&st)
    })
    .await
    .map_err(ApiError::internal)??;
    state
        .durable()
        .await
        .map_err(|e| ApiError::internal(e.problem.detail))?;
    Ok(answer)
}

/// A CA's display name: trimmed, 1 to 64 characters, no control
/// characters.
pub(super) fn ca_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim().to_string();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "name must be 1 to 64 characters without control characters",
        ));
    }
    Ok(name)
}

/// Seals a CA key for the record `id` (the id is the AEAD's associated
/// data, so a sealed key cannot be moved to another record).
pub(super) fn seal_key(
    state: &AppState,
    key: &ironseal_ca_core::keys::CaKey,
    id: &str,
) -> Result<Vec<u8>, ApiError> {
    seal(&state.kek, key.pkcs8_der(), id.as_bytes(), rand::random()).map_err(ApiError::internal)
}

/// Refuses a CA that cannot sign here: `pending` (no certificate yet) or
/// `external` (no key).
pub(super) fn require_key_and_cert(record: &CaRecord) -> Result<(), ApiError> {
    match record.status {
        CaStatus::Pending => Err(ApiError::conflict(
            "ca_pending",
            format!(
                "CA {} is pending: import its signed certificate first \
                 (POST /admin/v1/cas/{}/certificate)",
                record.id, record.id
            ),
        )),
        CaStatus::External => Err(ApiError::conflict(
            "ca_external",
            format!(
                "ironseal holds no key for CA {}; it signs nothing here \
                 (for a CA under it, POST /admin/v1/cas/csr and have it signed offline)",
                record.id
            ),
        )),
        CaStatus::Active | CaStatus::Retiring | CaStatus::Retired => Ok(()),
    }
}

pub(super) fn load_ca(state: &AppState, id: &str) -> Result<CaRecord, ApiError> {
    state
        .store
        .get_ca(id)?
        .ok_or_else(|| ApiError::not_found(format!("no CA with id {id:?}")))
}

async fn create_ca(
    state: &Arc<AppState>,
    caller: &Principal,
    body: &[u8],
) -> Result<Answer, ApiError> {
    let req: CreateCaRequest = parse_body(body)?;
    let name = ca_name(&req.name)?;
    if req.validity_days == 0 || req.validity_days > CA_MAX_VALIDITY_DAYS {
        return Err(ApiError::bad_request(format!(
            "validityDays must be 1 to {CA_MAX_VALIDITY_DAYS}"
        )));
    }
    let caller = caller.clone();
    ca_change(state, move |state| {
        let set = state.ca_set();
        let now = OffsetDateTime::now_utc();
        let nc = req.name_constraints.unwrap_or(NameConstraintsInput {
            permitted: Vec::new(),
            excluded: Vec::new(),
        });
        let profile = CaProfile {
            common_name: name.clone(),
            organization: Some("ironseal".to_string()),
            algorithm: req.algorithm,
            not_before: now - time::Duration::hours(1),
            not_after: now + time::Duration::days(i64::from(req.validity_days)),
            path_len: req.path_len,
            name_constraints: NameConstraints {
                permitted: nc.permitted,
                excluded: nc.excluded,
            },
            policies: req.policies,
        };
        let serial = Serial::from_random(rand::random());
        let (id, key, der) = match &req.parent {
            None => {
                let id = format!("root-{}", &new_id()[..8]).to_lowercase();
                let (key, der) = create_root(&profile, serial).map_err(ca_error)?;
                (id, key, der)
            }
            Some(parent_id) => {
                let parent = load_ca(state, parent_id)?;
                require_key_and_cert(&parent)?;
                if parent.status != CaStatus::Active {
                    return Err(ApiError::conflict(
                        "ca_not_active",
                        format!(
                            "CA {parent_id} is {}; only an active CA may certify new CAs",
                            CaStatus::as_str(parent.status)
                        ),
                    ));
                }
                let issuer = set
                    .by_id
                    .get(parent_id)
                    .ok_or_else(|| ApiError::internal(format!("CA {parent_id} is not loaded")))?;
                let id = format!("int-{}", &new_id()[..8]).to_lowercase();
                // Backdated an hour for clock skew, but never before the
                // parent's own notBefore (a parent made or imported
                // minutes ago).
                let mut profile = profile;
                profile.not_before = profile.not_before.max(issuer.issuer.not_before());
                let (key, der) =
                    create_intermediate(&profile, serial, &issuer.issuer).map_err(ca_error)?;
                (id, key, der)
            }
        };
        let sealed = seal_key(state, &key, &id)?;
        let record = CaRecord {
            id: id.clone(),
            name: name.clone(),
            parent_id: req.parent.clone(),
            cert_der: der,
            sealed_key: sealed,
            algorithm: Some(req.algorithm),
            status: CaStatus::Active,
            created_at: now,
            cross_certs: Vec::new(),
            csr_der: Vec::new(),
        };
        let summary = format!(
            "id={} name={:?} parent={} algorithm={} pathLen={}",
            id,
            name,
            req.parent.as_deref().unwrap_or("-"),
            req.algorithm.as_str(),
            req.path_len.map_or("-".to_string(), |p| p.to_string()),
        );
        tracing::info!(id = %id, parent = ?req.parent, "CA created through the admin API");
        let note = format!("created CA {id}");
        save_ca(
            state,
            &caller,
            &record,
            "ca.create",
            summary,
            StatusCode::CREATED,
            note,
        )
    })
    .await
}

async fn activate_ca(
    state: &Arc<AppState>,
    caller: &Principal,
    id: &str,
) -> Result<Answer, ApiError> {
    let id = id.to_string();
    let caller = caller.clone();
    ca_change(state, move |state| activate_in(state, &caller, &id)).await
}

/// Makes intermediate `id` the issuing CA; the previous one becomes
/// `retiring`. Call inside [`ca_change`].
pub(super) fn activate_in(
    state: &AppState,
    caller: &Principal,
    id: &str,
) -> Result<Answer, ApiError> {
    let id = id.to_string();
    let mut record = load_ca(state, &id)?;
    require_key_and_cert(&record)?;
    if record.parent_id.is_none() {
        return Err(ApiError::conflict(
            "not_intermediate",
            "a root CA cannot sign leaves; activate an intermediate",
        ));
    }
    if record.status == CaStatus::Retired {
        return Err(ApiError::conflict(
            "ca_retired",
            format!("CA {id} is retired"),
        ));
    }
    let previous = state.active_issuer().issuer.id().to_string();
    if previous == id && record.status == CaStatus::Active {
        return Ok(Answer::ok(ca_json(&record, &state.ca_set())));
    }
    let set = state.ca_set();
    let Some(ca) = set.by_id.get(&id) else {
        return Err(ApiError::internal(format!("CA {id} is not loaded")));
    };
    // The HTTPS listener's certificate is issued from the issuing CA (now
    // or at the next start): refuse a CA whose chain cannot name this
    // server.
    if let Err(e) = ca.issuer.check_names(&listener_names(&state.config)) {
        return Err(ApiError::conflict(
            "hostnames_not_permitted",
            format!(
                "the server's hostnames must be permitted for the HTTPS certificate \
                 issued from the issuing CA at start: {e}"
            ),
        ));
    }
    // The file first: a crash before the records are updated leaves
    // the new CA issuing and the old one still marked active.
    write_issuing(&state.config, &id).map_err(ApiError::internal)?;
    record.status = CaStatus::Active;
    state.store.put_ca(&record)?;
    if previous != id {
        if let Some(mut prev) = state.store.get_ca(&previous)? {
            if prev.status == CaStatus::Active {
                prev.status = CaStatus::Retiring;
                state.store.put_ca(&prev)?;
            }
        }
    }
    audit_ca(
        state,
        caller,
        "ca.activate",
        format!("id={id} previous={previous} (now retiring)"),
    )?;
    state.store.flush()?;
    reload_cas(state)?;
    Ok(Answer {
        status: StatusCode::OK,
        body: ca_json(&record, &state.ca_set()),
        note: Some(format!("activated CA {id}; {previous} retiring")),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaStatusRequest {
    status: CaStatus,
}

async fn set_ca_status(
    state: &Arc<AppState>,
    caller: &Principal,
    id: &str,
    body: &[u8],
) -> Result<Answer, ApiError> {
    let req: CaStatusRequest = parse_body(body)?;
    if !req.status.has_key_and_cert() {
        return Err(ApiError::bad_request(
            "status must be active, retiring or retired",
        ));
    }
    let id = id.to_string();
    let caller = caller.clone();
    ca_change(state, move |state| {
        let mut record = load_ca(state, &id)?;
        require_key_and_cert(&record)?;
        if state.active_issuer().issuer.id() == id && req.status != CaStatus::Active {
            return Err(ApiError::conflict(
                "issuing_ca",
                "this CA signs new leaves; activate another issuing CA first",
            ));
        }
        if record.status == req.status {
            return Ok(Answer::ok(ca_json(&record, &state.ca_set())));
        }
        if record.status == CaStatus::Retired {
            return Err(ApiError::conflict(
                "ca_retired",
                format!("CA {id} is retired; that is final"),
            ));
        }
        let from = record.status;
        record.status = req.status;
        save_ca(
            state,
            &caller,
            &record,
            "ca.status",
            format!("id={id} {} -> {}", from.as_str(), req.status.as_str()),
            StatusCode::OK,
            format!("CA {id} {}", req.status.as_str()),
        )
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CrossSignRequest {
    by: String,
    validity_days: u32,
}

/// `POST /admin/v1/cas/{id}/cross-sign`: CA `by` certifies CA `id`'s
/// subject and key; the cross certificate is kept on `id`'s record and
/// every chain through `id` gains an alternate through `by`.
async fn cross_sign_ca(
    state: &Arc<AppState>,
    caller: &Principal,
    id: &str,
    body: &[u8],
) -> Result<Answer, ApiError> {
    let req: CrossSignRequest = parse_body(body)?;
    if req.validity_days == 0 || req.validity_days > CA_MAX_VALIDITY_DAYS {
        return Err(ApiError::bad_request(format!(
            "validityDays must be 1 to {CA_MAX_VALIDITY_DAYS}"
        )));
    }
    let id = id.to_string();
    let caller = caller.clone();
    ca_change(state, move |state| {
        let mut record = load_ca(state, &id)?;
        if record.status == CaStatus::Pending {
            require_key_and_cert(&record)?;
        }
        if req.by == id {
            return Err(ApiError::bad_request("a CA cannot cross-sign itself"));
        }
        let by = load_ca(state, &req.by)?;
        require_key_and_cert(&by)?;
        if by.status != CaStatus::Active {
            return Err(ApiError::conflict(
                "ca_not_active",
                format!(
                    "CA {} is {}; only an active CA may certify CAs",
                    req.by,
                    CaStatus::as_str(by.status)
                ),
            ));
        }
        let set = state.ca_set();
        let signer = set
            .by_id
            .get(&req.by)
            .ok_or_else(|| ApiError::internal(format!("CA {} is not loaded", req.by)))?;
        let now = OffsetDateTime::now_utc();
        let der = ironseal_ca_core::hierarchy_ops::cross_sign(
            &record.cert_der,
            &signer.issuer,
            Serial::from_random(rand::random()),
            // Clamped into the cross-signer's validity.
            (now - time::Duration::hours(1)).max(signer.issuer.not_before()),
            (now + time::Duration::days(i64::from(req.validity_days)))
                .min(signer.issuer.not_after()),
        )
        .map_err(ca_error)?;
        record.cross_certs.push(CrossCert {
            by: req.by.clone(),
            der: der.clone(),
        });
        let mut answer = save_ca(
            state,
            &caller,
            &record,
            "ca.cross-sign",
            format!("id={id} by={} validityDays={}", req.by, req.validity_days),
            StatusCode::CREATED,
            format!("CA {id} cross-signed by {}", req.by),
        )?;
        answer.body["crossCertificatePem"] =
            json!(ironseal_ca_core::cert::pem_encode("CERTIFICATE", &der));
        Ok(answer)
    })
    .await
}

// ----------------------------------------------------------------- audit

fn entry_json(e: &AuditEntry) -> Value {
    json!({
        "seq": e.seq,
        "at": ts(e.at),
        "actor": e.actor,
        "action": e.action,
        "summary": e.summary,
        "outcome": e.outcome,
        "prevHash": e.prev_hash,
        "entryHash": e.entry_hash,
    })
}

struct AuditQuery {
    after: u64,
    limit: usize,
    full: bool,
}

fn parse_audit_query(query: Option<&str>) -> Result<AuditQuery, ApiError> {
    let mut q = AuditQuery {
        after: 0,
        limit: AUDIT_DEFAULT_LIMIT,
        full: false,
    };
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "after" => {
                q.after = v
                    .parse()
                    .map_err(|_| ApiError::bad_request("after must be a sequence number"))?;
            }
            "limit" => {
                let n: usize = v
                    .parse()
                    .map_err(|_| ApiError::bad_request("limit must be a number"))?;
                if n == 0 || n > AUDIT_MAX_LIMIT {
                    return Err(ApiError::bad_request(format!(
                        "limit must be 1 to {AUDIT_MAX_LIMIT}"
                    )));
                }
                q.limit = n;
            }
            "verify" => {
                q.full = match v {
                    "full" => true,
                    "page" | "" => false,
                    _ => return Err(ApiError::bad_request("verify must be page or full")),
                };
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {other:?}"
                )))
            }
        }
    }
    Ok(q)
}

fn audit(state: &AppState, query: Option<&str>) -> Result<Answer, ApiError> {
    let q = parse_audit_query(query)?;
    let store = state.store.as_ref();
    // The head first: entries appended while we read are ignored, so a
    // concurrent call never looks like a truncated log.
    let head = store.audit_head()?;
    let head_seq = head.as_ref().map_or(0, |h| h.seq);
    let mut entries = store.audit_entries(q.after, q.limit)?;
    entries.retain(|e| e.seq <= head_seq);
    let prev: Option<AuditHead> = if q.after == 0 {
        None
    } else {
        store
            .audit_entries(q.after - 1, 1)?
            .first()
            .filter(|e| e.seq == q.after)
            .map(AuditEntry::head)
    };
    // The page reaches the end of the log: compare with the head too.
    let reaches_end = entries.len() < q.limit || entries.last().is_some_and(|e| e.seq >= head_seq);
    let page = if q.after > 0 && prev.is_none() && q.after <= head_seq {
        Err(format!("entry {} is missing", q.after))
    } else if q.after > head_seq {
        Ok(())
    } else {
        verify_chain(
            &entries,
            prev.as_ref(),
            if reaches_end { head.as_ref() } else { None },
        )
        .map_err(|e| e.to_string())
    };
    let (scope, checked, verdict) = if q.full {
        let (n, r) = verify_full(store, head.as_ref())?;
        ("full", n, r)
    } else {
        ("page", entries.len() as u64, page)
    };
    let next = entries.last().filter(|e| e.seq < head_seq).map(|e| e.seq);
    Ok(Answer::ok(json!({
        "entries": entries.iter().map(entry_json).collect::<Vec<_>>(),
        "next": next,
        "head": head.as_ref().map(|h| json!({"seq": h.seq, "hash": h.hash})),
        "verify": {
            "scope": scope,
            "ok": verdict.is_ok(),
            "checked": checked,
            "error": verdict.err(),
        },
    })))
}

/// Verifies the whole log up to `head`, page by page.
fn verify_full(
    store: &dyn ironseal_storage::Store,
    head: Option<&AuditHead>,
) -> Result<(u64, Result<(), String>), ApiError> {
    let Some(head) = head else {
        return Ok((0, Ok(())));
    };
    let mut prev: Option<AuditHead> = None;
    let mut checked = 0u64;
    loop {
        let after = prev.as_ref().map_or(0, |p| p.seq);
        let mut page = store.audit_entries(after, AUDIT_MAX_LIMIT)?;
        page.retain(|e| e.seq <= head.seq);
        let last_page =
            page.len() < AUDIT_MAX_LIMIT || page.last().is_some_and(|e| e.seq >= head.seq);
        if let Err(e) = verify_chain(
            &page,
            prev.as_ref(),
            if last_page { Some(head) } else { None },
        ) {
            return Ok((checked, Err(e.to_string())));
        }
        checked += page.len() as u64;
        if last_page {
            return Ok((checked, Ok(())));
        }
        prev = page.last().map(AuditEntry::head);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn reasons() {
        assert_eq!(
            admin_reason(Some(ReasonInput::Name("keyCompromise".into()))).unwrap(),
            RevocationReason::KeyCompromise
        );
        assert_eq!(
            admin_reason(Some(ReasonInput::Code(4))).unwrap(),
            RevocationReason::Superseded
        );
        assert_eq!(admin_reason(None).unwrap(), RevocationReason::Unspecified);
        assert!(admin_reason(Some(ReasonInput::Code(7))).is_err());
        assert!(admin_reason(Some(ReasonInput::Code(6))).is_err());
        assert!(admin_reason(Some(ReasonInput::Name("nope".into()))).is_err());
    }

    #[test]
    fn bodies_reject_unknown_fields() {
        assert!(parse_body::<RevokeRequest>(br#"{"reason": 1}"#).is_ok());
        assert!(parse_body::<RevokeRequest>(b"").is_ok());
        let e = parse_body::<RevokeRequest>(br#"{"reason": 1, "x": 2}"#)
            .err()
            .unwrap();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(parse_body::<CreateKeyRequest>(br#"{"name": "a", "role": "root"}"#).is_err());
        assert!(parse_body::<CreateKeyRequest>(br#"{"name": "a", "role": "auditor"}"#).is_ok());
        assert!(
            parse_body::<BulkRequest>(br#"{"serials": ["ab"], "reason": "superseded"}"#).is_ok()
        );
    }

    #[test]
    fn ca_requests() {
        let r = parse_body::<CreateCaRequest>(
            br#"{"name": "P", "parent": "root-x", "algorithm": "p384", "validityDays": 30,
                "pathLen": 1, "policies": ["1.3.6.1.4.1.99999.1.1"],
                "nameConstraints": {"permitted": ["dns:shop.test", "ip:127.0.0.1/32"]}}"#,
        )
        .unwrap();
        assert_eq!(r.algorithm, KeyAlgorithm::EcdsaP384);
        assert_eq!(r.path_len, Some(1));
        assert_eq!(r.name_constraints.unwrap().permitted.len(), 2);
        for bad in [
            &br#"{"name": "P", "algorithm": "p256", "validityDays": 1, "x": 1}"#[..],
            br#"{"name": "P", "algorithm": "dsa", "validityDays": 1}"#,
            br#"{"name": "P", "algorithm": "p256", "validityDays": 1,
                "nameConstraints": {"permitted": ["bogus"]}}"#,
            br#"{"name": "P", "algorithm": "p256", "validityDays": 1,
                "nameConstraints": {"allowed": []}}"#,
        ] {
            assert!(parse_body::<CreateCaRequest>(bad).is_err());
        }
        assert_eq!(
            parse_body::<CaStatusRequest>(br#"{"status": "retiring"}"#)
                .unwrap()
                .status,
            CaStatus::Retiring
        );
        assert!(parse_body::<CaStatusRequest>(br#"{"status": "gone"}"#).is_err());
        let e = ca_error(CaError::PathLenExceeded {
            ca: "CN=x".into(),
            path_len: 0,
            reason: "r".into(),
        });
        assert_eq!(
            (e.status, e.code),
            (StatusCode::UNPROCESSABLE_ENTITY, "path_len_exceeded")
        );
    }

    #[test]
    fn serials() {
        assert_eq!(normalize_serial("0A:bC").as_deref(), Some("0abc"));
        assert_eq!(normalize_serial("abc").as_deref(), Some("0abc"));
        assert_eq!(normalize_serial("000d7d").as_deref(), Some("0d7d"));
        assert_eq!(normalize_serial("8f01").as_deref(), Some("008f01"));
        assert_eq!(normalize_serial("008F01").as_deref(), Some("008f01"));
        assert_eq!(normalize_serial("7f").as_deref(), Some("7f"));
        assert_eq!(normalize_serial("0").as_deref(), Some("00"));
        assert_eq!(normalize_serial("xyz"), None);
        assert_eq!(normalize_serial(""), None);
    }

    #[test]
    fn audit_queries() {
        let q = parse_audit_query(Some("after=5&limit=10&verify=full")).unwrap();
        assert_eq!((q.after, q.limit, q.full), (5, 10, true));
        assert!(parse_audit_query(Some("limit=0")).is_err());
        assert!(parse_audit_query(Some("limit=100000")).is_err());
        assert!(parse_audit_query(Some("bogus=1")).is_err());
        let q = parse_audit_query(None).unwrap();
        assert_eq!((q.after, q.limit, q.full), (0, AUDIT_DEFAULT_LIMIT, false));
    }
}
