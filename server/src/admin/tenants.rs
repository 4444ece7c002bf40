//! Tenants and their ACME external account binding keys (RFC 8555
//! §7.3.4) through the admin API. Admins create and disable tenants;
//! admins and operators create, list and disable EAB keys. A key scoped to
//! a tenant sees and acts on that tenant only.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hyper::StatusCode;
use ironseal_ca_core::name_policy::NamePolicy;
use ironseal_ca_core::sealed::seal;
use ironseal_protocol::admin::CreateTenantRequest;
use ironseal_storage::{EabKeyRecord, StoreError, TenantRecord};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::auth::Principal;
use super::handlers::parse_body;
use super::{Answer, ApiError};
use crate::acme::render::ts;
use crate::state::AppState;

/// Length of a generated EAB HMAC key (256 bits, as for HS256).
const EAB_KEY_BYTES: usize = 32;

/// The additional authenticated data an EAB key is sealed under.
pub fn eab_aad(kid: &str) -> Vec<u8> {
    format!("eab:{kid}").into_bytes()
}

/// A tenant id: 1 to 64 of `[a-z0-9-]`, starting with a letter or digit,
/// so it is safe in URLs, logs and file names.
pub(super) fn tenant_id(id: &str) -> Result<&str, ApiError> {
    Ok(ironseal_protocol::admin::tenant_id(id)?)
}

pub(super) fn tenant_json(t: &TenantRecord) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "names": t.names,
        "profiles": t.profiles,
        "createdAt": ts(t.created_at),
        "createdBy": t.created_by,
        "disabledAt": t.disabled_at.map(ts),
        "caa": !t.caa_disabled,
    })
}

fn eab_json(k: &EabKeyRecord) -> Value {
    json!({
        "kid": k.kid,
        "tenant": k.tenant_id,
        "createdAt": ts(k.created_at),
        "createdBy": k.created_by,
        "boundAccount": k.bound_account,
        "disabledAt": k.disabled_at.map(ts),
    })
}

/// `not_found` unless the caller may see tenant `id` and it exists.
async fn visible_tenant(
    state: &AppState,
    caller: &Principal,
    id: &str,
) -> Result<TenantRecord, ApiError> {
    let missing = || ApiError::not_found("no tenant with that id");
    if !caller.may_touch(Some(id)) {
        return Err(missing());
    }
    state.store.get_tenant(id).await?.ok_or_else(missing)
}

pub(super) async fn create_tenant(
    state: &AppState,
    caller: &Principal,
    body: &[u8],
) -> Result<Answer, ApiError> {
    let req: CreateTenantRequest = parse_body(body)?;
    let id = tenant_id(&req.id)?.to_string();
    let n = &req.names;
    NamePolicy::parse(&n.dns, &n.ip, &n.uri, &n.email)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_names", e))?;
    let profiles = req
        .profiles
        .unwrap_or_else(|| vec![state.config.default_profile().name.clone()]);
    if profiles.is_empty() {
        return Err(ApiError::bad_request(
            "profiles must name at least one profile",
        ));
    }
    if let Some(unknown) = profiles.iter().find(|p| state.config.profile(p).is_none()) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_profile",
            format!("profile {unknown:?} is not configured"),
        ));
    }
    let tenant = TenantRecord {
        name: req.name.unwrap_or_else(|| id.clone()),
        id,
        names: req.names,
        profiles,
        created_at: OffsetDateTime::now_utc(),
        created_by: caller.actor(),
        disabled_at: None,
        caa_disabled: !req.caa.unwrap_or(true),
    };
    match state.store.create_tenant(&tenant).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::conflict(
                "tenant_exists",
                "a tenant with that id exists",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    Ok(Answer {
        status: StatusCode::CREATED,
        body: tenant_json(&tenant),
        note: Some(format!("created tenant {}", tenant.id)),
    })
}

pub(super) async fn list_tenants(state: &AppState, caller: &Principal) -> Result<Answer, ApiError> {
    let tenants: Vec<Value> = state
        .store
        .list_tenants()
        .await?
        .iter()
        .filter(|t| caller.may_touch(Some(&t.id)))
        .map(tenant_json)
        .collect();
    Ok(Answer::ok(json!({ "tenants": tenants })))
}

pub(super) async fn get_tenant(
    state: &AppState,
    caller: &Principal,
    id: &str,
) -> Result<Answer, ApiError> {
    let t = visible_tenant(state, caller, id).await?;
    let keys: Vec<Value> = state
        .store
        .list_eab_keys(Some(&t.id))
        .await?
        .iter()
        .map(eab_json)
        .collect();
    let mut body = tenant_json(&t);
    body["eabKeys"] = Value::Array(keys);
    Ok(Answer::ok(body))
}

pub(super) async fn disable_tenant(
    state: &AppState,
    caller: &Principal,
    id: &str,
) -> Result<Answer, ApiError> {
    visible_tenant(state, caller, id).await?;
    match state
        .store
        .disable_tenant(id, OffsetDateTime::now_utc())
        .await
    {
        Ok(t) => Ok(Answer {
            status: StatusCode::OK,
            body: tenant_json(&t),
            note: Some(format!("disabled tenant {id}")),
        }),
        Err(StoreError::Conflict(_)) => Err(ApiError::conflict(
            "already_disabled",
            "the tenant is already disabled",
        )),
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn create_eab_key(
    state: &AppState,
    caller: &Principal,
    tenant: &str,
) -> Result<Answer, ApiError> {
    let t = visible_tenant(state, caller, tenant).await?;
    if !t.is_active() {
        return Err(ApiError::conflict(
            "tenant_disabled",
            "the tenant is disabled; its credentials cannot be extended",
        ));
    }
    let kid = format!("eab-{}", hex::encode(rand::random::<[u8; 9]>()));
    let mut hmac_key = [0u8; EAB_KEY_BYTES];
    aws_lc_rs::rand::fill(&mut hmac_key).map_err(|_| ApiError::internal("no randomness"))?;
    let sealed =
        seal(&state.kek, &hmac_key, &eab_aad(&kid), rand::random()).map_err(ApiError::internal)?;
    let record = EabKeyRecord {
        kid: kid.clone(),
        tenant_id: t.id.clone(),
        sealed_hmac_key: sealed,
        created_at: OffsetDateTime::now_utc(),
        created_by: caller.actor(),
        bound_account: None,
        disabled_at: None,
    };
    state.store.create_eab_key(&record).await?;
    state.eab_created();
    let mut body = eab_json(&record);
    // Shown once; only the sealed form is kept.
    body["hmacKey"] = Value::String(URL_SAFE_NO_PAD.encode(hmac_key));
    Ok(Answer {
        status: StatusCode::CREATED,
        body,
        note: Some(format!("created EAB key {kid} for tenant {}", t.id)),
    })
}

pub(super) async fn list_eab_keys(
    state: &AppState,
    caller: &Principal,
    tenant: &str,
) -> Result<Answer, ApiError> {
    let t = visible_tenant(state, caller, tenant).await?;
    let keys: Vec<Value> = state
        .store
        .list_eab_keys(Some(&t.id))
        .await?
        .iter()
        .map(eab_json)
        .collect();
    Ok(Answer::ok(json!({ "eabKeys": keys })))
}

pub(super) async fn disable_eab_key(
    state: &AppState,
    caller: &Principal,
    kid: &str,
) -> Result<Answer, ApiError> {
    let missing = || ApiError::not_found("no EAB key with that kid");
    let key = state.store.get_eab_key(kid).await?.ok_or_else(missing)?;
    if !caller.may_touch(Some(&key.tenant_id)) {
        return Err(missing());
    }
    match state
        .store
        .disable_eab_key(kid, OffsetDateTime::now_utc())
        .await
    {
        Ok(k) => Ok(Answer {
            status: StatusCode::OK,
            body: eab_json(&k),
            note: Some(format!("disabled EAB key {kid}")),
        }),
        Err(StoreError::Conflict(_)) => Err(ApiError::conflict(
            "already_disabled",
            "the EAB key is already disabled",
        )),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn tenant_ids() {
        for ok in ["a", "team-a", "t0", "0team"] {
            assert!(tenant_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "Team", "a/b", "a b", &"x".repeat(65)] {
            assert!(tenant_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tenant_bodies() {
        let r: CreateTenantRequest = parse_body(
            br#"{"id": "a", "names": {"dns": ["*.a.example"], "ip": ["10.0.0.0/8"]},
                "profiles": ["default"]}"#,
        )
        .unwrap();
        assert_eq!(r.names.dns, ["*.a.example"]);
        assert_eq!(r.caa, None);
        let r: CreateTenantRequest = parse_body(br#"{"id": "a", "caa": false}"#).unwrap();
        assert_eq!(r.caa, Some(false));
        assert!(parse_body::<CreateTenantRequest>(br#"{"id": "a", "caa": "no"}"#).is_err());
        assert!(parse_body::<CreateTenantRequest>(br#"{"id": "a", "x": 1}"#).is_err());
        assert!(parse_body::<CreateTenantRequest>(br#"{"id": "a", "names": {"dn": []}}"#).is_err());
    }
}
