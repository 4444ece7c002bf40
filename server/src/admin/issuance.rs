//! Issuing a certificate from a PKCS#10 request through the admin API
//! (admin, operator). The caller is the requester; its tenant (a scoped
//! key's, or the one named by an unscoped caller) applies; a profile that
//! requires approval answers 202 with the held request, which another
//! identity must approve.

use hyper::StatusCode;
use ironseal_ca_core::cert::pem_encode;
use ironseal_ca_core::csr::{check_csr, CsrPolicy};
use ironseal_protocol::admin::IssueRequest;
use serde_json::json;

use super::auth::Principal;
use super::handlers::parse_body;
use super::{Answer, ApiError};
use crate::authority::approvals::approval_json;
use crate::authority::{self, IssuanceRequest, Outcome, ProfileChoice, Requester};
use crate::state::AppState;

/// The DER of a PEM certificate request.
pub(super) fn csr_der(pem: &str) -> Result<Vec<u8>, ApiError> {
    Ok(ironseal_protocol::admin::csr_der(pem)?)
}

pub(super) async fn issue(
    state: &AppState,
    caller: &Principal,
    body: &[u8],
) -> Result<Answer, ApiError> {
    let req: IssueRequest = parse_body(body)?;
    let der = csr_der(&req.csr_pem)?;
    let tenant = match (&caller.tenant, req.tenant) {
        (Some(mine), Some(asked)) if *mine != asked => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this key is scoped to another tenant",
            ))
        }
        (Some(mine), _) => Some(mine.clone()),
        (None, asked) => asked,
    };
    // TLS profiles: the names asked for are the CSR's (SANs and CN).
    // Device and SPIFFE profiles take their names from the CSR themselves.
    // The pipeline checks them against the profile, the tenant and the
    // CA's name constraints.
    let tls = match &req.profile {
        None => Some(state.config.default_profile()),
        Some(p) => state.config.profile(p),
    }
    .is_none_or(|p| matches!(p.kind, ironseal_ca_core::profile::ProfileKind::Tls));
    let names = check_csr(
        &der,
        &CsrPolicy {
            allow_ed25519: true,
            ..CsrPolicy::default()
        },
    )
    .map_err(|e| ApiError::bad_request(format!("csrPem: {e}")))?
    .names;
    let names = if tls { names } else { Vec::new() };
    let mut request = IssuanceRequest::new(
        Requester::Admin {
            actor: caller.actor(),
        },
        der,
        names,
    );
    request.tenant = tenant;
    request.profile = ProfileChoice::Configured(req.profile);
    match authority::issue(state, &request).await? {
        Outcome::Issued(issued) => {
            let chain = state.chains_for(&issued.record.issuer_id);
            Ok(Answer {
                status: StatusCode::CREATED,
                note: Some(format!("issued {}", issued.record.serial)),
                body: json!({
                    "serial": issued.record.serial,
                    "certificatePem": pem_encode("CERTIFICATE", &issued.record.der),
                    "chainPem": chain.first().cloned().unwrap_or_default(),
                    "profile": issued.record.origin.profile,
                    "tenant": issued.record.origin.tenant_id,
                }),
            })
        }
        Outcome::Held(approval) => Ok(Answer {
            status: StatusCode::ACCEPTED,
            note: Some(format!("held for approval {}", approval.id)),
            body: json!({ "approval": approval_json(&approval) }),
        }),
    }
}
