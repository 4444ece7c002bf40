//! The admin endpoints behind [`super::routes::ROUTES`].

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::json;

use super::audit_log::*;
use super::auth::Principal;
use super::cas::*;
use super::certificates::*;
use super::keys::*;
use super::routes::Op;
use super::{approvals, ca_import, est_users, issuance, rollover, tenants};
use super::{Answer, ApiError};
use crate::authority::approvals::Decision;
use crate::state::AppState;

/// Runs the handler of `op`.
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
        Op::GetCertificate => get_certificate(state, caller, param(0)),
        Op::RenewEarly => renew_early(state, caller, param(0)),
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
        Op::CreateTenant => tenants::create_tenant(state, caller, body),
        Op::ListTenants => tenants::list_tenants(state, caller),
        Op::GetTenant => tenants::get_tenant(state, caller, param(0)),
        Op::DisableTenant => tenants::disable_tenant(state, caller, param(0)),
        Op::CreateEabKey => tenants::create_eab_key(state, caller, param(0)),
        Op::ListEabKeys => tenants::list_eab_keys(state, caller, param(0)),
        Op::DisableEabKey => tenants::disable_eab_key(state, caller, param(0)),
        Op::CreateEstUser => est_users::create(state, caller, body).await,
        Op::ListEstUsers => est_users::list(state, caller, query),
        Op::DisableEstUser => est_users::disable(state, caller, param(0)),
        Op::IssueCertificate => issuance::issue(state, caller, body).await,
        Op::ListApprovals => approvals::list(state, caller, query),
        Op::GetApproval => approvals::get(state, caller, param(0)),
        Op::Approve => {
            approvals::decide_one(state, caller, param(0), body, Decision::Approve).await
        }
        Op::Reject => approvals::decide_one(state, caller, param(0), body, Decision::Reject).await,
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
        Op::IssueCertificate => parse_body::<issuance::IssueRequest>(body)
            .and_then(|r| issuance::csr_der(&r.csr_pem).map(drop)),
        Op::ListApprovals => approvals::parse_status(query).map(drop),
        Op::CreateEstUser => est_users::decode_create(body).map(drop),
        Op::ListEstUsers => est_users::parse_query(query).map(drop),
        Op::Approve | Op::Reject => parse_body::<approvals::DecisionRequest>(body).map(drop),
        Op::CreateTenant => parse_body::<tenants::CreateTenantRequest>(body)
            .and_then(|r| tenants::tenant_id(&r.id).map(drop)),
        Op::Whoami
        | Op::ListKeys
        | Op::DeleteKey
        | Op::GetCertificate
        | Op::RenewEarly
        | Op::ListCas
        | Op::ActivateCa
        | Op::GetCa
        | Op::ListTenants
        | Op::GetTenant
        | Op::DisableTenant
        | Op::CreateEabKey
        | Op::ListEabKeys
        | Op::DisableEabKey
        | Op::DisableEstUser
        | Op::GetApproval => Ok(()),
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
