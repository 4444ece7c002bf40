//! One-time SCEP challenges through the admin API (issue 8): created
//! (generated here, shown once; only the SHA-256 is stored), listed and
//! withdrawn.
//! A challenge is bound to a tenant, whose names policy then applies to
//! the CSR it enrols, and optionally to one SCEP path. A key scoped to a
//! tenant creates and sees that tenant's challenges only.

use hyper::StatusCode;
use ironseal_protocol::admin::{
    decode_scep_challenge, parse_tenant_query, SCEP_CHALLENGE_DEFAULT_MINUTES,
};
use ironseal_storage::{ScepChallengeRecord, StoreError};
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

use super::auth::Principal;
use super::{Answer, ApiError};
use crate::acme::render::ts;
use crate::scep::dynamic;
use crate::state::AppState;

fn challenge_json(c: &ScepChallengeRecord) -> Value {
    json!({
        "id": c.id,
        "tenant": c.tenant_id,
        "path": c.path,
        "createdAt": ts(c.created_at),
        "createdBy": c.created_by,
        "expiresAt": ts(c.expires_at),
        "redeemedAt": c.redeemed_at.map(ts),
    })
}

pub(super) async fn create(
    state: &AppState,
    caller: &Principal,
    body: &[u8],
) -> Result<Answer, ApiError> {
    let r = decode_scep_challenge(body)?;
    let tenant = r.tenant.clone().or_else(|| caller.tenant.clone());
    if !caller.may_touch(tenant.as_deref()) {
        return Err(ApiError::not_found("no tenant with that id"));
    }
    if let Some(t) = &tenant {
        let record = state
            .store
            .get_tenant(t)
            .await?
            .ok_or_else(|| ApiError::not_found("no tenant with that id"))?;
        if !record.is_active() {
            return Err(ApiError::conflict(
                "tenant_disabled",
                "the tenant is disabled; its credentials cannot be extended",
            ));
        }
    }
    if let Some(p) = &r.path {
        let Some(entry) = state.config.scep.for_path(Some(p)) else {
            return Err(ApiError::not_found(
                "no [[scep.profiles]] entry has that path",
            ));
        };
        if !entry.challenge_kind.accepts_dynamic() {
            return Err(ApiError::conflict(
                "not_dynamic",
                "that SCEP path does not accept one-time challenges (challenge_kind)",
            ));
        }
        if let (Some(a), Some(b)) = (entry.tenant.as_deref(), tenant.as_deref()) {
            if a != b {
                return Err(ApiError::conflict(
                    "other_tenant",
                    "that SCEP path belongs to another tenant",
                ));
            }
        }
    }
    let challenge = dynamic::generate().ok_or_else(|| ApiError::internal("no randomness"))?;
    let id = dynamic::generate()
        .map(|h| format!("sc_{}", &h[..16]))
        .ok_or_else(|| ApiError::internal("no randomness"))?;
    let now = OffsetDateTime::now_utc();
    let minutes = r
        .expires_in_minutes
        .unwrap_or(SCEP_CHALLENGE_DEFAULT_MINUTES);
    let record = ScepChallengeRecord {
        challenge_hash: dynamic::hash(&challenge),
        id,
        tenant_id: tenant,
        path: r.path,
        created_at: now,
        created_by: caller.actor(),
        expires_at: now + Duration::minutes(i64::from(minutes)),
        redeemed_at: None,
    };
    match state.store.create_scep_challenge(&record).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::internal(
                "generated challenge collided; try again",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    let mut body = challenge_json(&record);
    // Shown once; only the hash is kept.
    body["challenge"] = Value::String(challenge);
    Ok(Answer {
        status: StatusCode::CREATED,
        body,
        note: Some(format!(
            "created one-time SCEP challenge {} for tenant {} path {} until {}",
            record.id,
            record.tenant_id.as_deref().unwrap_or("-"),
            record.path.as_deref().unwrap_or("*"),
            ts(record.expires_at)
        )),
    })
}

pub(super) async fn list(
    state: &AppState,
    caller: &Principal,
    query: Option<&str>,
) -> Result<Answer, ApiError> {
    let tenant = parse_tenant_query(query)?.or_else(|| caller.tenant.clone());
    if !caller.may_touch(tenant.as_deref()) {
        return Err(ApiError::not_found("no tenant with that id"));
    }
    let mut all = state.store.list_scep_challenges(tenant.as_deref()).await?;
    all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let list: Vec<Value> = all.iter().map(challenge_json).collect();
    Ok(Answer::ok(json!({ "scepChallenges": list })))
}

/// Withdraws challenge `id` (removes it: it can no longer be redeemed).
/// A key scoped to a tenant finds only that tenant's challenges.
pub(super) async fn delete(
    state: &AppState,
    caller: &Principal,
    id: &str,
) -> Result<Answer, ApiError> {
    let found = state
        .store
        .list_scep_challenges(caller.tenant.as_deref())
        .await?
        .into_iter()
        .find(|c| c.id == id && caller.may_touch(c.tenant_id.as_deref()))
        .ok_or_else(|| ApiError::not_found("no SCEP challenge with that id"))?;
    if !state
        .store
        .remove_scep_challenge(&found.challenge_hash)
        .await?
    {
        return Err(ApiError::not_found("no SCEP challenge with that id"));
    }
    let mut body = challenge_json(&found);
    body["withdrawn"] = Value::Bool(true);
    Ok(Answer {
        status: StatusCode::OK,
        body,
        note: Some(format!(
            "withdrew one-time SCEP challenge {} of tenant {}{}",
            found.id,
            found.tenant_id.as_deref().unwrap_or("-"),
            if found.redeemed_at.is_some() {
                " (already redeemed)"
            } else {
                ""
            }
        )),
    })
}
