//! Admin API keys: create (the secret is shown once), list, disable.

use hyper::StatusCode;
use ironseal_protocol::admin::CreateKeyRequest;
use ironseal_storage::{ApiKeyRecord, ApiRole, StoreError};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::auth::{generate_key, Principal};
use super::{Answer, ApiError};
use crate::acme::render::ts;
use crate::state::AppState;

use super::handlers::parse_body;

pub(super) fn key_json(k: &ApiKeyRecord) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "role": k.role,
        "createdAt": ts(k.created_at),
        "createdBy": k.created_by,
        "disabledAt": k.disabled_at.map(ts),
        "tenant": k.tenant_id,
    })
}

pub(super) async fn create_key(
    state: &AppState,
    caller: &Principal,
    body: &[u8],
) -> Result<Answer, ApiError> {
    let req: CreateKeyRequest = parse_body(body)?;
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "name must be 1 to 128 characters without control characters",
        ));
    }
    if let Some(t) = &req.tenant {
        if req.role == ApiRole::Admin {
            return Err(ApiError::bad_request(
                "admin keys cannot be scoped to a tenant; use the operator or auditor role",
            ));
        }
        if state.store.get_tenant(t).await?.is_none() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_tenant",
                format!("no tenant {t:?}"),
            ));
        }
    }
    let mut new = generate_key(name, req.role, &caller.actor(), OffsetDateTime::now_utc());
    new.record.tenant_id = req.tenant;
    state.store.create_api_key(&new.record).await?;
    let mut body = key_json(&new.record);
    body["key"] = Value::String(new.key);
    Ok(Answer {
        status: StatusCode::CREATED,
        body,
        note: Some(format!("created key {}", new.record.id)),
    })
}

pub(super) async fn list_keys(state: &AppState) -> Result<Answer, ApiError> {
    let keys: Vec<Value> = state
        .store
        .list_api_keys()
        .await?
        .iter()
        .map(key_json)
        .collect();
    Ok(Answer::ok(json!({ "keys": keys })))
}

pub(super) async fn delete_key(state: &AppState, id: &str) -> Result<Answer, ApiError> {
    let keys = state.store.list_api_keys().await?;
    let Some(target) = keys.iter().find(|k| k.id == id) else {
        return Err(ApiError::not_found("no API key with that id"));
    };
    if target.disabled_at.is_some() {
        return Err(ApiError::conflict(
            "already_disabled",
            "the API key is already disabled",
        ));
    }
    // The last-admin-key rule is checked by the store, atomically with
    // the write: two concurrent deletes cannot leave no admin key.
    match state
        .store
        .disable_api_key(id, OffsetDateTime::now_utc())
        .await
    {
        Ok(k) => Ok(Answer::ok(key_json(&k))),
        Err(StoreError::NotFound) => Err(ApiError::not_found("no API key with that id")),
        Err(StoreError::LastAdminKey) => Err(ApiError::conflict(
            "last_admin_key",
            "this is the last enabled admin key; create another admin key first",
        )),
        Err(StoreError::Conflict(_)) => Err(ApiError::conflict(
            "already_disabled",
            "the API key is already disabled",
        )),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn key_bodies_name_a_known_role() {
        assert!(parse_body::<CreateKeyRequest>(br#"{"name": "a", "role": "root"}"#).is_err());
        assert!(parse_body::<CreateKeyRequest>(br#"{"name": "a", "role": "auditor"}"#).is_ok());
    }
}
