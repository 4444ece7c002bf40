//! The CA hierarchy through the admin API: list, create roots and
//! intermediates, activate, retire, cross-sign.

use std::sync::Arc;

use hyper::StatusCode;
use ironseal_ca_core::constraints::{GeneralSubtree, NameConstraints};
use ironseal_ca_core::error::CaError;
use ironseal_ca_core::hierarchy::CaProfile;
use ironseal_ca_core::keys::KeyAlgorithm;
use ironseal_ca_core::sealed::seal;
use ironseal_protocol::admin::{CaStatusRequest, CrossSignRequest};
use ironseal_storage::{CaRecord, CaStatus, CaUpdate, CrossCert, StoreError};

/// Name constraints as text subtrees, as the API takes them.
pub(super) type NameConstraintsInput =
    ironseal_protocol::admin::NameConstraintsInput<GeneralSubtree>;
/// `POST /admin/v1/cas`.
pub(super) type CreateCaRequest =
    ironseal_protocol::admin::CreateCaRequest<KeyAlgorithm, GeneralSubtree>;

/// A CA's display name: trimmed, 1 to 64 characters, no control
/// characters.
pub(super) fn ca_name(name: &str) -> Result<String, ApiError> {
    Ok(ironseal_protocol::admin::ca_name(name)?)
}
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::auth::Principal;
use super::{Answer, ApiError};
use crate::acme::render::ts;
use crate::authority::ca_ops::{self, CaChange, Signed};
use crate::authority::CaSet;
use crate::bootstrap::{listener_names, read_issuing_pin, BootError};
use crate::ids::new_id;
use crate::state::AppState;

/// Most audit entries returned by one call.
use super::handlers::parse_body;

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
        "predecessor": r.predecessor_id,
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

pub(super) async fn list_cas(state: &AppState) -> Result<Answer, ApiError> {
    let set = state.ca_set();
    let out: Vec<Value> = state
        .store
        .list_cas()
        .await?
        .iter()
        .map(|r| ca_json(r, &set))
        .collect();
    Ok(Answer::ok(json!({ "cas": out })))
}

/// Longest validity of a CA created through the API.
pub(super) const CA_MAX_VALIDITY_DAYS: u32 = 36_500;

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

pub(super) fn boot_error(e: BootError) -> ApiError {
    match e {
        BootError::Ca(e) => ca_error(e),
        other => ApiError::internal(other),
    }
}

/// Rebuilds the CA set from the store, puts it in force and sets up the
/// OCSP responders of new CAs. Call with `state.ca_admin` held. The root
/// served as `/root.pem` stays the one the HTTPS certificate chains to
/// (it changes at the next start if the issuing CA moved to another root).
pub(super) async fn reload_cas(state: &AppState) -> Result<(), ApiError> {
    crate::propagate::reload_cas(state)
        .await
        .map_err(boot_error)
}

/// What an admin call answers after a hierarchy change.
pub(super) struct Reply {
    pub(super) status: StatusCode,
    pub(super) note: String,
}

/// Pins the current issuing CA first (older stores may lack the pin): a
/// new active CA never takes over issuance before it is activated.
async fn pin_issuing(state: &AppState) -> Result<(), ApiError> {
    if read_issuing_pin(state.store.as_ref())
        .await
        .map_err(ApiError::internal)?
        .is_none()
    {
        // Only if still absent: a pin another replica wrote meanwhile stays.
        state
            .store
            .put_setting(
                ironseal_storage::settings::ISSUING_CA,
                state.active_issuer().issuer.id().as_bytes(),
                None,
            )
            .await?;
    }
    Ok(())
}

/// The common end of a hierarchy change: makes the records and their
/// audit entry durable, rebuilds the CA set, and answers with `record`.
async fn finish_change(
    state: &AppState,
    record: &CaRecord,
    reply: Reply,
) -> Result<Answer, ApiError> {
    state.durable_store().await?;
    reload_cas(state).await?;
    Ok(Answer {
        status: reply.status,
        body: ca_json(record, &state.ca_set()),
        note: Some(reply.note),
    })
}

/// A hierarchy change that lost a compare-and-swap to another request
/// (on this replica or another): 409, the operator reads the CA again.
/// Any other store failure is internal.
fn ca_write_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(why) => ApiError::conflict("ca_changed", why),
        other => other.into(),
    }
}

/// Stores `update` and the audit entry of a change that signed nothing
/// in one write (see [`ca_ops::record_change`]), then [`finish_change`].
/// Call inside [`ca_change`].
pub(super) async fn save_ca(
    state: &AppState,
    caller: &Principal,
    update: CaUpdate,
    action: &str,
    summary: String,
    reply: Reply,
) -> Result<Answer, ApiError> {
    pin_issuing(state).await?;
    let record = update.record.clone();
    let change = CaChange {
        records: vec![update],
        issuing_pin: None,
        action,
        summary,
    };
    ca_ops::record_change(state.store.as_ref(), &caller.actor(), &change)
        .await
        .map_err(ca_write_error)?;
    finish_change(state, &record, reply).await
}

/// Like [`save_ca`] for a change that the authority signed: records the
/// signature with `update`, and hands back the signed value.
pub(super) async fn save_signed_ca<T>(
    state: &AppState,
    caller: &Principal,
    signed: Signed<T>,
    update: CaUpdate,
    action: &str,
    summary: String,
    reply: Reply,
) -> Result<(Answer, T), ApiError> {
    pin_issuing(state).await?;
    let record = update.record.clone();
    let change = CaChange {
        records: vec![update],
        issuing_pin: None,
        action,
        summary,
    };
    let value = signed
        .record(state.store.as_ref(), &caller.actor(), &change)
        .await
        .map_err(ca_write_error)?;
    Ok((finish_change(state, &record, reply).await?, value))
}

/// Runs a hierarchy change with `state.ca_admin` held (its key generation
/// and signatures run on blocking threads, see
/// [`ca_ops::sign_ca_off_worker`]), then makes it durable. On a shared
/// store, first catches up with changes made through other replicas.
pub(super) async fn ca_change<'a, F, Fut>(
    state: &'a Arc<AppState>,
    f: F,
) -> Result<Answer, ApiError>
where
    F: FnOnce(&'a AppState) -> Fut,
    Fut: std::future::Future<Output = Result<Answer, ApiError>> + 'a,
{
    if matches!(
        state.config.storage,
        crate::config::StorageBackend::Postgres { .. }
    ) {
        // Start from the hierarchy as the store has it now, not as this
        // replica last polled it: a CA created or activated through another
        // replica a moment ago is loaded before this change looks for it.
        crate::propagate::poll(state.as_ref()).await?;
    }
    let answer = {
        let _guard = state.ca_admin.lock().await;
        f(state.as_ref()).await?
    };
    state
        .durable()
        .await
        .map_err(|e| ApiError::internal(e.problem.detail))?;
    Ok(answer)
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

pub(super) async fn load_ca(state: &AppState, id: &str) -> Result<CaRecord, ApiError> {
    state
        .store
        .get_ca(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no CA with id {id:?}")))
}

pub(super) async fn create_ca(
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
    ca_change(state, move |state| async move {
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
        let (id, signed) = match &req.parent {
            None => {
                let id = format!("root-{}", &new_id()[..8]).to_lowercase();
                let signed = ca_ops::sign_ca_off_worker(profile, None)
                    .await
                    .map_err(ca_error)?;
                (id, signed)
            }
            Some(parent_id) => {
                let parent = load_ca(state, parent_id).await?;
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
                let signed = ca_ops::sign_ca_off_worker(profile, Some(issuer.clone()))
                    .await
                    .map_err(ca_error)?;
                (id, signed)
            }
        };
        let (key, der) = signed.get();
        let sealed = seal_key(state, key, &id)?;
        let record = CaRecord {
            id: id.clone(),
            name: name.clone(),
            parent_id: req.parent.clone(),
            cert_der: der.clone(),
            sealed_key: sealed,
            algorithm: Some(req.algorithm),
            status: CaStatus::Active,
            created_at: now,
            cross_certs: Vec::new(),
            csr_der: Vec::new(),
            predecessor_id: None,
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
        let reply = Reply {
            status: StatusCode::CREATED,
            note: format!("created CA {id}"),
        };
        save_signed_ca(
            state,
            &caller,
            signed,
            CaUpdate::create(record),
            "ca.create",
            summary,
            reply,
        )
        .await
        .map(|(answer, _)| answer)
    })
    .await
}

pub(super) async fn activate_ca(
    state: &Arc<AppState>,
    caller: &Principal,
    id: &str,
) -> Result<Answer, ApiError> {
    let id = id.to_string();
    let caller = caller.clone();
    ca_change(state, move |state| async move {
        activate_in(state, &caller, &id).await
    })
    .await
}

/// Makes intermediate `id` the issuing CA; the previous one becomes
/// `retiring`. Call inside [`ca_change`].
pub(super) async fn activate_in(
    state: &AppState,
    caller: &Principal,
    id: &str,
) -> Result<Answer, ApiError> {
    let id = id.to_string();
    let mut record = load_ca(state, &id).await?;
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
    // The issuing CA as the store pins it now, not as this replica last
    // loaded it: another replica may have moved it a moment ago.
    let previous = match read_issuing_pin(state.store.as_ref())
        .await
        .map_err(ApiError::internal)?
    {
        Some((pinned, _)) => pinned,
        None => state.active_issuer().issuer.id().to_string(),
    };
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
    // The pin (in the store, so every replica switches), both records and
    // the audit entry in one write; each record only if it is still what
    // was read here, so a concurrent activation through another replica
    // makes this one a 409 instead of leaving two CAs active.
    let before = record.clone();
    record.status = CaStatus::Active;
    let mut records = vec![CaUpdate::replace(&before, record.clone())];
    if previous != id {
        if let Some(prev) = state.store.get_ca(&previous).await? {
            // Retired if active; either way checked unchanged at the write,
            // so of two activations that read the same pin one gets 409.
            let mut after = prev.clone();
            if prev.status == CaStatus::Active {
                after.status = CaStatus::Retiring;
            }
            records.push(CaUpdate::replace(&prev, after));
        }
    }
    let change = CaChange {
        records,
        issuing_pin: Some(id.clone()),
        action: "ca.activate",
        summary: format!("id={id} previous={previous} (now retiring)"),
    };
    ca_ops::record_change(state.store.as_ref(), &caller.actor(), &change)
        .await
        .map_err(ca_write_error)?;
    finish_change(
        state,
        &record,
        Reply {
            status: StatusCode::OK,
            note: format!("activated CA {id}; {previous} retiring"),
        },
    )
    .await
}

pub(super) async fn set_ca_status(
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
    ca_change(state, move |state| async move {
        let mut record = load_ca(state, &id).await?;
        let before = record.clone();
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
            CaUpdate::replace(&before, record.clone()),
            "ca.status",
            format!("id={id} {} -> {}", from.as_str(), req.status.as_str()),
            Reply {
                status: StatusCode::OK,
                note: format!("CA {id} {}", req.status.as_str()),
            },
        )
        .await
    })
    .await
}

/// `POST /admin/v1/cas/{id}/cross-sign`: CA `by` certifies CA `id`'s
/// subject and key; the cross certificate is kept on `id`'s record and
/// every chain through `id` gains an alternate through `by`.
pub(super) async fn cross_sign_ca(
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
    ca_change(state, move |state| async move {
        let mut record = load_ca(state, &id).await?;
        let before = record.clone();
        if record.status == CaStatus::Pending {
            require_key_and_cert(&record)?;
        }
        if req.by == id {
            return Err(ApiError::bad_request("a CA cannot cross-sign itself"));
        }
        let by = load_ca(state, &req.by).await?;
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
            .cloned()
            .ok_or_else(|| ApiError::internal(format!("CA {} is not loaded", req.by)))?;
        let now = OffsetDateTime::now_utc();
        // Clamped into the cross-signer's validity.
        let not_before = (now - time::Duration::hours(1)).max(signer.issuer.not_before());
        let not_after = (now + time::Duration::days(i64::from(req.validity_days)))
            .min(signer.issuer.not_after());
        let signed =
            ca_ops::sign_cross_off_worker(record.cert_der.clone(), signer, not_before, not_after)
                .await
                .map_err(ca_error)?;
        record.cross_certs.push(CrossCert {
            by: req.by.clone(),
            der: signed.get().clone(),
        });
        let (mut answer, der) = save_signed_ca(
            state,
            &caller,
            signed,
            CaUpdate::replace(&before, record.clone()),
            "ca.cross-sign",
            format!("id={id} by={} validityDays={}", req.by, req.validity_days),
            Reply {
                status: StatusCode::CREATED,
                note: format!("CA {id} cross-signed by {}", req.by),
            },
        )
        .await?;
        answer.body["crossCertificatePem"] =
            json!(ironseal_ca_core::cert::pem_encode("CERTIFICATE", &der));
        Ok(answer)
    })
    .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

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
}
