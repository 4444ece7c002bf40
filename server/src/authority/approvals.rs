//! Two-person integrity: a profile may require that each request be
//! approved before anything is signed. The pipeline holds such a request
//! in the store's approval queue (what was asked and by whom); an admin or
//! a tenant operator approves or rejects it; the approver must be a
//! different identity from the requester; every step is audited. On
//! approval the held request runs through the same pipeline, so ACME
//! orders, SCEP CertPoll and EST retries all pick up the same outcome.

use std::str::FromStr;

use ironseal_ca_core::names::SubjectName;
use ironseal_storage::{
    ApprovalRecord, ApprovalStatus, AuditEvent, OrderStatus, Store, StoreError,
};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::error::{AuthorityError, ErrorKind};
use super::issue::Outcome;
use super::request::{IssuanceRequest, ProfileChoice, Requester, Validity};
use super::Ctx;
use crate::ids::new_id;
use crate::state::AppState;

/// Queues `req` for approval under `profile` and records who asked. When
/// the request completes an ACME order, the order (still `processing`)
/// remembers the approval id.
pub async fn hold(
    ctx: &Ctx<'_>,
    req: &IssuanceRequest,
    profile: &str,
    now: OffsetDateTime,
) -> Result<ApprovalRecord, AuthorityError> {
    let ts = |t: Option<OffsetDateTime>| t.and_then(|t| t.format(&Rfc3339).ok());
    let record = ApprovalRecord {
        id: new_id(),
        status: ApprovalStatus::Pending,
        protocol: req.requester.protocol().to_string(),
        requester: req.requester.actor(),
        tenant_id: req.tenant.clone(),
        profile: profile.to_string(),
        names: req.names.iter().map(ToString::to_string).collect(),
        csr_der: req.csr_der.clone(),
        context: json!({
            "order": req.order.as_ref().map(|o| o.id.clone()),
            "notBefore": ts(req.validity.not_before),
            "notAfter": ts(req.validity.not_after),
            "forbiddenKey": req.forbidden_key.as_ref().map(hex::encode),
            "replaces": req.replaces,
            "sid": req.sid,
        }),
        requested_at: now,
        decided_by: None,
        decided_at: None,
        comment: None,
        cert_serial: None,
        error: None,
    };
    ctx.store.create_approval(&record).await?;
    if let Some(order) = &req.order {
        let mut held = order.clone();
        held.approval_id = Some(record.id.clone());
        if !ctx
            .store
            .transition_order(&held, OrderStatus::Processing)
            .await?
        {
            return Err(AuthorityError::new(
                ErrorKind::Conflict,
                "the order left processing",
            ));
        }
    }
    ctx.store
        .append_audit(&AuditEvent {
            at: now,
            actor: record.requester.clone(),
            action: "approval.request".into(),
            summary: format!(
                "approval={} protocol={} profile={} tenant={} names={}",
                record.id,
                record.protocol,
                record.profile,
                record.tenant_id.as_deref().unwrap_or("-"),
                super::names_summary(&req.names)
            ),
            outcome: None,
        })
        .await?;
    tracing::info!(approval = %record.id, requester = %record.requester, profile, "issuance held for approval");
    Ok(record)
}

/// `Unauthorized` unless approval `id` exists and was approved.
pub async fn require_approved(store: &dyn Store, id: &str) -> Result<(), AuthorityError> {
    match store.get_approval(id).await? {
        Some(a) if a.status == ApprovalStatus::Approved => Ok(()),
        Some(a) => Err(AuthorityError::new(
            ErrorKind::Unauthorized,
            format!("approval {id} is {}", a.status.as_str()),
        )),
        None => Err(AuthorityError::new(
            ErrorKind::Unauthorized,
            format!("approval {id} does not exist"),
        )),
    }
}

/// A name as written by [`SubjectName`]'s `Display` (`dns:…`, `ip:…`, `uri:…`, `email:…`).
fn parse_name(s: &str) -> Result<SubjectName, AuthorityError> {
    let bad = || AuthorityError::internal(format!("held request has an unreadable name {s:?}"));
    match s.split_once(':') {
        Some(("dns", d)) => Ok(SubjectName::Dns(d.to_string())),
        Some(("ip", ip)) => ip.parse().map(SubjectName::Ip).map_err(|_| bad()),
        Some(("uri", u)) => Ok(SubjectName::Uri(u.to_string())),
        Some(("email", m)) => Ok(SubjectName::Email(m.to_string())),
        _ => Err(bad()),
    }
}

/// The requester of an audit actor string (see [`Requester::actor`]).
fn requester_of(actor: &str) -> Result<Requester, AuthorityError> {
    let bad =
        || AuthorityError::internal(format!("held request has an unknown requester {actor:?}"));
    let (kind, id) = actor.split_once(':').ok_or_else(bad)?;
    let id = id.to_string();
    Ok(match kind {
        "acme" => Requester::Acme { account_id: id },
        "scep" => Requester::Scep { client: id },
        "est" => Requester::Est { client: id },
        "key" | "cert" => Requester::Admin {
            actor: actor.to_string(),
        },
        _ => return Err(bad()),
    })
}

/// Rebuilds the issuance request a held record stands for.
async fn request_of(
    store: &dyn Store,
    a: &ApprovalRecord,
) -> Result<IssuanceRequest, AuthorityError> {
    let names = a
        .names
        .iter()
        .map(|n| parse_name(n))
        .collect::<Result<Vec<_>, _>>()?;
    let mut req = IssuanceRequest::new(requester_of(&a.requester)?, a.csr_der.clone(), names);
    req.tenant = a.tenant_id.clone();
    req.profile = ProfileChoice::Configured(Some(a.profile.clone()));
    let time = |k: &str| {
        a.context[k]
            .as_str()
            .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
    };
    req.validity = Validity {
        not_before: time("notBefore"),
        not_after: time("notAfter"),
    };
    req.forbidden_key = a.context["forbiddenKey"]
        .as_str()
        .and_then(|h| hex::decode(h).ok());
    req.replaces = a.context["replaces"].as_str().map(str::to_string);
    req.sid = a.context["sid"].as_str().map(str::to_string);
    if let Some(order_id) = a.context["order"].as_str() {
        let order = store.get_order(order_id).await?.ok_or_else(|| {
            AuthorityError::new(
                ErrorKind::Conflict,
                format!("order {order_id} no longer exists"),
            )
        })?;
        if order.status != OrderStatus::Processing {
            return Err(AuthorityError::new(
                ErrorKind::Conflict,
                format!("order {order_id} is no longer processing"),
            ));
        }
        req.order = Some(order);
    }
    req.approval = Some(a.id.clone());
    Ok(req)
}

/// An approval decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Sign it.
    Approve,
    /// Refuse it; nothing is signed.
    Reject,
}

/// Decides held request `id` as `approver` (an audit actor). The approver
/// must differ from the requester (two-person integrity). An approved
/// request is issued at once through the pipeline; the returned record
/// carries the serial, or the error if issuance then failed.
pub async fn decide(
    state: &AppState,
    id: &str,
    approver: &str,
    decision: Decision,
    comment: Option<String>,
) -> Result<ApprovalRecord, AuthorityError> {
    let store = state.store.as_ref();
    let current = store
        .get_approval(id)
        .await?
        .ok_or_else(|| AuthorityError::new(ErrorKind::NotFound, "no approval with that id"))?;
    if current.status != ApprovalStatus::Pending {
        return Err(AuthorityError::new(
            ErrorKind::Conflict,
            format!("the request was already {}", current.status.as_str()),
        ));
    }
    if current.requester == approver {
        return Err(AuthorityError::new(
            ErrorKind::Unauthorized,
            "the approver must be a different identity from the requester",
        ));
    }
    let now = OffsetDateTime::now_utc();
    let mut decided = current.clone();
    decided.status = match decision {
        Decision::Approve => ApprovalStatus::Approved,
        Decision::Reject => ApprovalStatus::Rejected,
    };
    decided.decided_by = Some(approver.to_string());
    decided.decided_at = Some(now);
    decided.comment = comment;
    if !store
        .update_approval(&decided, ApprovalStatus::Pending)
        .await?
    {
        return Err(AuthorityError::new(
            ErrorKind::Conflict,
            "the request was decided concurrently",
        ));
    }
    store
        .append_audit(&AuditEvent {
            at: now,
            actor: approver.to_string(),
            action: format!("approval.{}", decided.status.as_str()),
            summary: format!(
                "approval={} requester={} profile={} comment={:?}",
                decided.id,
                decided.requester,
                decided.profile,
                decided.comment.as_deref().unwrap_or("")
            ),
            outcome: None,
        })
        .await?;
    match decision {
        Decision::Reject => {
            state
                .durable()
                .await
                .map_err(|e| AuthorityError::internal(e.problem.detail))?;
            Ok(decided)
        }
        Decision::Approve => finish(state, decided).await,
    }
}

/// Issues an approved request that has no outcome yet (right after the
/// decision, or after a restart interrupted that) and records the serial
/// or the error on the approval.
pub async fn finish(
    state: &AppState,
    approval: ApprovalRecord,
) -> Result<ApprovalRecord, AuthorityError> {
    let outcome = match request_of(state.store.as_ref(), &approval).await {
        Ok(req) => super::issue(state, &req).await,
        Err(e) => Err(e),
    };
    let mut done = approval;
    match outcome {
        Ok(Outcome::Issued(issued)) => done.cert_serial = Some(issued.record.serial),
        Ok(Outcome::Held(_)) => {
            return Err(AuthorityError::internal(
                "an approved request was held again",
            ))
        }
        Err(e) => done.error = Some(e.to_string()),
    }
    match state
        .store
        .update_approval(&done, ApprovalStatus::Approved)
        .await
    {
        Ok(_) => {}
        Err(StoreError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    state
        .durable()
        .await
        .map_err(|e| AuthorityError::internal(e.problem.detail))?;
    Ok(done)
}

/// The kind and detail of an error stored on an approval (the
/// `Display` form of [`AuthorityError`]).
pub fn stored_error(text: &str) -> AuthorityError {
    let (kind, detail) = text.split_once(": ").unwrap_or(("internal", text));
    AuthorityError::new(
        ErrorKind::from_str(kind).unwrap_or(ErrorKind::Internal),
        detail,
    )
}

/// The JSON the admin API shows for a held request (never the CSR bytes).
pub fn approval_json(a: &ApprovalRecord) -> Value {
    let ts = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    json!({
        "id": a.id,
        "status": a.status.as_str(),
        "protocol": a.protocol,
        "requester": a.requester,
        "tenant": a.tenant_id,
        "profile": a.profile,
        "names": a.names,
        "requestedAt": ts(a.requested_at),
        "decidedBy": a.decided_by,
        "decidedAt": a.decided_at.map(ts),
        "comment": a.comment,
        "certificate": a.cert_serial,
        "error": a.error,
        "order": a.context["order"],
    })
}
