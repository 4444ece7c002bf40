//! EST users for HTTP Basic authentication (RFC 7030 §3.2.3) through the
//! admin API: created (the password chosen by the caller or generated and
//! shown once), listed and disabled (one-way). Only a hash is stored
//! ([`crate::est::basic`]). A key scoped to a tenant sees and acts on that
//! tenant's users only, and creates users in it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hyper::StatusCode;
use ironseal_storage::{EstUserRecord, StoreError};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::auth::Principal;
use super::{Answer, ApiError};
use crate::acme::render::ts;
use crate::est::basic::hash_password;
use crate::state::AppState;
use ironseal_protocol::admin::{decode_est_user, parse_tenant_query, CreateEstUserRequest};

/// Random bytes of a generated password (128 bits).
const GENERATED_PASSWORD_BYTES: usize = 16;

/// Checks the body of a create call without touching state.
pub(super) fn decode_create(body: &[u8]) -> Result<CreateEstUserRequest, ApiError> {
    Ok(decode_est_user(body)?)
}

fn user_json(u: &EstUserRecord) -> Value {
    json!({
        "username": u.username,
        "tenant": u.tenant_id,
        "createdAt": ts(u.created_at),
        "createdBy": u.created_by,
        "disabledAt": u.disabled_at.map(ts),
    })
}

pub(super) async fn create(
    state: &AppState,
    caller: &Principal,
    body: &[u8],
) -> Result<Answer, ApiError> {
    let r = decode_create(body)?;
    // A tenant-scoped caller creates users in its own tenant.
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
    let (password, generated) = match r.password {
        Some(p) => (p, false),
        None => {
            let mut raw = [0u8; GENERATED_PASSWORD_BYTES];
            aws_lc_rs::rand::fill(&mut raw).map_err(|_| ApiError::internal("no randomness"))?;
            (URL_SAFE_NO_PAD.encode(raw), true)
        }
    };
    let pw = password.clone();
    let hash = tokio::task::spawn_blocking(move || hash_password(&pw))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let record = EstUserRecord {
        username: r.username.clone(),
        tenant_id: tenant,
        password_hash: hash,
        created_at: OffsetDateTime::now_utc(),
        created_by: caller.actor(),
        disabled_at: None,
    };
    match state.store.create_est_user(&record).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::conflict(
                "exists",
                "an EST user with that name exists",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    let mut body = user_json(&record);
    if generated {
        // Shown once; only the hash is kept.
        body["password"] = Value::String(password);
    }
    Ok(Answer {
        status: StatusCode::CREATED,
        body,
        note: Some(format!(
            "created EST user {} for tenant {}",
            record.username,
            record.tenant_id.as_deref().unwrap_or("-")
        )),
    })
}

/// `?tenant=<id>` or nothing.
pub(super) fn parse_query(query: Option<&str>) -> Result<Option<String>, ApiError> {
    Ok(parse_tenant_query(query)?)
}

pub(super) async fn list(
    state: &AppState,
    caller: &Principal,
    query: Option<&str>,
) -> Result<Answer, ApiError> {
    let tenant = parse_query(query)?.or_else(|| caller.tenant.clone());
    if !caller.may_touch(tenant.as_deref()) {
        return Err(ApiError::not_found("no tenant with that id"));
    }
    let users: Vec<Value> = state
        .store
        .list_est_users(tenant.as_deref())
        .await?
        .iter()
        .map(user_json)
        .collect();
    Ok(Answer::ok(json!({ "estUsers": users })))
}

pub(super) async fn disable(
    state: &AppState,
    caller: &Principal,
    name: &str,
) -> Result<Answer, ApiError> {
    let missing = || ApiError::not_found("no EST user with that name");
    let user = state.store.get_est_user(name).await?.ok_or_else(missing)?;
    if !caller.may_touch(user.tenant_id.as_deref()) {
        return Err(missing());
    }
    match state
        .store
        .disable_est_user(name, OffsetDateTime::now_utc())
        .await
    {
        Ok(u) => Ok(Answer {
            status: StatusCode::OK,
            body: user_json(&u),
            note: Some(format!("disabled EST user {name}")),
        }),
        Err(StoreError::Conflict(_)) => Err(ApiError::conflict(
            "already_disabled",
            "the EST user is already disabled",
        )),
        Err(e) => Err(e.into()),
    }
}
