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
use super::{approvals, ca_import, est_users, issuance, rollover, scep_challenges, tenants};
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
        Op::CreateKey => create_key(state, caller, body).await,
        Op::ListKeys => list_keys(state).await,
        Op::DeleteKey => delete_key(state, param(0)).await,
        Op::GetCertificate => get_certificate(state, caller, param(0)).await,
        Op::RenewEarly => renew_early(state, caller, param(0)).await,
        Op::RevokeCertificate => revoke_one(state, caller, param(0), body).await,
        Op::BulkRevoke => bulk_revoke(state, caller, body).await,
        Op::ListCas => list_cas(state).await,
        Op::CreateCa => create_ca(state, caller, body).await,
        Op::ActivateCa => activate_ca(state, caller, param(0)).await,
        Op::SetCaStatus => set_ca_status(state, caller, param(0), body).await,
        Op::CrossSignCa => cross_sign_ca(state, caller, param(0), body).await,
        Op::GetCa => ca_import::get_ca(state, param(0)).await,
        Op::CreateCaCsr => ca_import::create_csr(state, caller, body).await,
        Op::ImportSignedCa => ca_import::import_signed(state, caller, param(0), body).await,
        Op::RegisterExternalCa => ca_import::register_external(state, caller, body).await,
        Op::ImportCa => ca_import::import_existing(state, caller, body).await,
        Op::RolloverCa => rollover::rollover(state, caller, param(0), body).await,
        Op::CreateTenant => tenants::create_tenant(state, caller, body).await,
        Op::ListTenants => tenants::list_tenants(state, caller).await,
        Op::GetTenant => tenants::get_tenant(state, caller, param(0)).await,
        Op::DisableTenant => tenants::disable_tenant(state, caller, param(0)).await,
        Op::CreateEabKey => tenants::create_eab_key(state, caller, param(0)).await,
        Op::ListEabKeys => tenants::list_eab_keys(state, caller, param(0)).await,
        Op::DisableEabKey => tenants::disable_eab_key(state, caller, param(0)).await,
        Op::CreateEstUser => est_users::create(state, caller, body).await,
        Op::ListEstUsers => est_users::list(state, caller, query).await,
        Op::DisableEstUser => est_users::disable(state, caller, param(0)).await,
        Op::CreateScepChallenge => scep_challenges::create(state, caller, body).await,
        Op::ListScepChallenges => scep_challenges::list(state, caller, query).await,
        Op::DeleteScepChallenge => scep_challenges::delete(state, caller, param(0)).await,
        Op::IssueCertificate => issuance::issue(state, caller, body).await,
        Op::ListApprovals => approvals::list(state, caller, query).await,
        Op::GetApproval => approvals::get(state, caller, param(0)).await,
        Op::Approve => {
            approvals::decide_one(state, caller, param(0), body, Decision::Approve).await
        }
        Op::Reject => approvals::decide_one(state, caller, param(0), body, Decision::Reject).await,
        Op::Audit => audit(state, query).await,
        Op::CreateAuditCheckpoint => create_checkpoint(state).await,
        Op::CreateBackup => super::backups::create(state, caller).await,
    }
}

/// Decodes what an admin call carries — query and JSON body — the way its
/// handler does before it touches any state (the protocol crate's
/// decoding, then the checks that need the CA core), and reports the first
/// refusal. The `admin_json` fuzz target makes the same two steps.
#[cfg(test)]
pub(super) fn decode_request(op: Op, query: Option<&str>, body: &[u8]) -> Result<(), ApiError> {
    use ironseal_ca_core::constraints::GeneralSubtree;
    use ironseal_ca_core::keys::KeyAlgorithm;
    use ironseal_protocol::admin::{decode_body, AdminRequest};
    match decode_body::<KeyAlgorithm, GeneralSubtree>(op, query, body)? {
        AdminRequest::Revoke(r) => admin_reason(r.reason).map(drop),
        AdminRequest::BulkRevoke(r) => admin_reason(r.reason).map(drop),
        AdminRequest::ImportSignedCa(_)
        | AdminRequest::RegisterExternalCa(_)
        | AdminRequest::ImportCa(_) => ca_import::decode_request(op, body),
        _ => Ok(()),
    }
}

/// Parses a JSON body, rejecting unknown fields (via the type's
/// `deny_unknown_fields`); an empty body reads as `{}`.
pub(super) fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    Ok(ironseal_protocol::admin::parse_body(body)?)
}
