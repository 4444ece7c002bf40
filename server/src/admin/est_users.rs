//! EST users for HTTP Basic authentication (RFC 7030 §3.2.3) through the
//! admin API: created (the password chosen by the caller or generated and
//! shown once), listed and disabled (one-way). Only a hash is stored
//! ([`crate::est::basic`]). A key scoped to a tenant sees and acts on that
//! tenant's users only, and creates users in it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hyper::StatusCode;
use ironseal_storage::{EstUserRecord, StoreError};
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::auth::Principal;
use super::handlers::parse_body;
use super::{Answer, ApiError};
use crate::acme::render::ts;
use crate::est::basic::{hash_password, MAX_CREDENTIAL_LEN};
use crate::state::AppState;

/// Shortest password accepted from the caller.
const MIN_PASSWORD_LEN: usize = 12;
/// Random bytes of a generated password (128 bits).
const GENERATED_PASSWORD_BYTES: usize = 16;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct CreateEstUserRequest {
    pub(super) username: String,
    #[serde(default)]
    pub(super) tenant: Option<String>,
    #[serde(default)]
    pub(super) password: Option<String>,
}

/// A user name: 1 to 64 printable ASCII characters other than `:` (RFC
/// 7617 §2: the user-id cannot contain a colon) and space.
pub(super) fn username(name: &str) -> Result<&str, ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
    if ok {
        Ok(name)
    } else {
        Err(ApiError::bad_request(
            "username must be 1 to 64 printable ASCII characters without ':' or spaces",
        ))
    }
}

/// Checks the body of a create call without touching state.
pub(super) fn decode_create(body: &[u8]) -> Result<CreateEstUserRequest, ApiError> {
    let r: CreateEstUserRequest = parse_body(body)?;
    username(&r.username)?;
    if let Some(p) = &r.password {
        if p.len() < MIN_PASSWORD_LEN || p.len() > MAX_CREDENTIAL_LEN {
            return Err(ApiError::bad_request(format!(
                "password must be {MIN_PASSWORD_LEN} to {MAX_CREDENTIAL_LEN} bytes"
            )));
        }
    }
    Ok(r)
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
            .get_tenant(t)?
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
    match state.store.create_est_user(&record) {
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
    let mut tenant = None;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=') {
            Some(("tenant", v)) if !v.is_empty() => tenant = Some(v.to_string()),
            _ => {
                return Err(ApiError::bad_request(
                    "unknown query parameter; only tenant=<id> is accepted",
                ))
            }
        }
    }
    Ok(tenant)
}

pub(super) fn list(
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
        .list_est_users(tenant.as_deref())?
        .iter()
        .map(user_json)
        .collect();
    Ok(Answer::ok(json!({ "estUsers": users })))
}

pub(super) fn disable(
    state: &AppState,
    caller: &Principal,
    name: &str,
) -> Result<Answer, ApiError> {
    let missing = || ApiError::not_found("no EST user with that name");
    let user = state.store.get_est_user(name)?.ok_or_else(missing)?;
    if !caller.may_touch(user.tenant_id.as_deref()) {
        return Err(missing());
    }
    match state
        .store
        .disable_est_user(name, OffsetDateTime::now_utc())
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["dev1", "router-7.example", "a@b"] {
            assert!(username(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a:b", "a b", &"x".repeat(65), "é"] {
            assert!(username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bodies() {
        assert!(decode_create(br#"{"username": "dev1"}"#).is_ok());
        assert!(decode_create(br#"{"username": "dev1", "password": "short"}"#).is_err());
        assert!(decode_create(br#"{"username": "dev1", "x": 1}"#).is_err());
        assert!(decode_create(br#"{"username": "a:b"}"#).is_err());
        assert_eq!(
            parse_query(Some("tenant=t1")).unwrap().as_deref(),
            Some("t1")
        );
        assert!(parse_query(Some("x=1")).is_err());
        assert_eq!(parse_query(None).unwrap(), None);
    }
}
