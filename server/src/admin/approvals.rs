//! The approval queue through the admin API: list and read held requests,
//! approve or reject them (admin, operator; a tenant-scoped key only its
//! tenant's). The approver must be a different identity from the
//! requester; the authority enforces it and audits each decision.

use hyper::StatusCode;
use ironseal_protocol::admin::DecisionRequest;
use ironseal_storage::ApprovalStatus;
use serde_json::{json, Value};

use super::auth::Principal;
use super::handlers::parse_body;
use super::{Answer, ApiError};
use crate::authority::approvals::{approval_json, decide, Decision};
use crate::state::AppState;

/// `status=pending|approved|rejected` (default: all).
pub(super) fn parse_status(query: Option<&str>) -> Result<Option<ApprovalStatus>, ApiError> {
    Ok(ironseal_protocol::admin::parse_status(query)?)
}

pub(super) async fn list(
    state: &AppState,
    caller: &Principal,
    query: Option<&str>,
) -> Result<Answer, ApiError> {
    let status = parse_status(query)?;
    let items: Vec<Value> = state
        .store
        .list_approvals(status)
        .await?
        .iter()
        .filter(|a| caller.may_touch(a.tenant_id.as_deref()))
        .map(approval_json)
        .collect();
    Ok(Answer::ok(json!({ "approvals": items })))
}

async fn visible(
    state: &AppState,
    caller: &Principal,
    id: &str,
) -> Result<ironseal_storage::ApprovalRecord, ApiError> {
    state
        .store
        .get_approval(id)
        .await?
        .filter(|a| caller.may_touch(a.tenant_id.as_deref()))
        .ok_or_else(|| ApiError::not_found("no approval with that id"))
}

pub(super) async fn get(
    state: &AppState,
    caller: &Principal,
    id: &str,
) -> Result<Answer, ApiError> {
    Ok(Answer::ok(approval_json(
        &visible(state, caller, id).await?,
    )))
}

pub(super) async fn decide_one(
    state: &AppState,
    caller: &Principal,
    id: &str,
    body: &[u8],
    decision: Decision,
) -> Result<Answer, ApiError> {
    let req: DecisionRequest = parse_body(body)?;
    if req
        .comment
        .as_deref()
        .is_some_and(|c| c.chars().count() > 512 || c.chars().any(char::is_control))
    {
        return Err(ApiError::bad_request(
            "comment must be at most 512 characters without control characters",
        ));
    }
    visible(state, caller, id).await?;
    let decided = decide(state, id, &caller.actor(), decision, req.comment).await?;
    crate::scep::intune_flow::after_decision(state, &decided).await;
    Ok(Answer {
        status: StatusCode::OK,
        note: Some(format!("{} {id}", decided.status.as_str())),
        body: approval_json(&decided),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn status_queries() {
        assert_eq!(parse_status(None).unwrap(), None);
        assert_eq!(
            parse_status(Some("status=pending")).unwrap(),
            Some(ApprovalStatus::Pending)
        );
        assert!(parse_status(Some("status=maybe")).is_err());
        assert!(parse_status(Some("x=1")).is_err());
        assert!(parse_body::<DecisionRequest>(br#"{"comment": "ok"}"#).is_ok());
        assert!(parse_body::<DecisionRequest>(br#"{"reason": "ok"}"#).is_err());
    }
}
