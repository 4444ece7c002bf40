//! Accounts: newAccount (RFC 8555 §7.3), update and deactivation (§7.3.2,
//! §7.3.6), key rollover (§7.3.5).

use std::sync::Arc;

use hyper::StatusCode;
use ironseal_protocol::acme::jwk::Jwk;
use ironseal_protocol::acme::jws;
use ironseal_protocol::acme::problem::ProblemType;
use ironseal_protocol::acme::requests::{
    validate_contact, AccountUpdateRequest, KeyChangeRequest, NewAccountRequest,
};
use ironseal_protocol::acme::types::AccountStatus;
use ironseal_storage::{AccountRecord, AuditEvent, StoreError};
use time::OffsetDateTime;

use super::error::AcmeError;
use super::{render, Authed, Ctx, Reply};
use crate::ids::{new_id, sha256_hex};
use crate::rate_limits::Limit;
use crate::state::AppState;

/// Most contacts an account may list.
const MAX_CONTACTS: usize = 10;

fn check_contacts(contacts: &[String]) -> Result<(), AcmeError> {
    if contacts.len() > MAX_CONTACTS {
        return Err(AcmeError::new(
            ProblemType::InvalidContact,
            format!("at most {MAX_CONTACTS} contacts are accepted"),
        ));
    }
    for c in contacts {
        validate_contact(c).map_err(AcmeError::from_problem)?;
    }
    Ok(())
}

/// Records an account event in the audit log (actor `acme:<account>`).
async fn audit(
    state: &AppState,
    account_id: &str,
    action: &str,
    summary: String,
) -> Result<(), AcmeError> {
    state
        .store
        .append_audit(&AuditEvent {
            at: OffsetDateTime::now_utc(),
            actor: format!("acme:{account_id}"),
            action: action.into(),
            summary,
            outcome: None,
        })
        .await?;
    Ok(())
}

/// POST newAccount, signed with `jwk` (RFC 8555 §7.3).
pub async fn new_account(state: &Arc<AppState>, ctx: &Ctx, a: Authed) -> Result<Reply, AcmeError> {
    let req: NewAccountRequest = a.jws.payload_json()?;
    let thumbprint = a.jwk.thumbprint();
    if let Some(existing) = state.store.account_by_thumbprint(&thumbprint).await? {
        // §7.3.6: a deactivated (or revoked) account's key authorizes nothing.
        if existing.status != AccountStatus::Valid {
            return Err(AcmeError::unauthorized(format!(
                "an account with this key exists but is {}; it can no longer be used",
                existing.status
            )));
        }
        // §7.3.1: an existing key returns 200 with the account's URL.
        return Ok(
            Reply::json(StatusCode::OK, &render::account(ctx, &existing))
                .location(ctx.account_url(&existing.id)),
        );
    }
    if req.only_return_existing == Some(true) {
        return Err(AcmeError::new(
            ProblemType::AccountDoesNotExist,
            "no account exists for this key (onlyReturnExisting)",
        ));
    }
    if state
        .store
        .is_key_blocked(&sha256_hex(&a.jwk.public_key_bits()))
        .await?
    {
        return Err(AcmeError::new(
            ProblemType::BadPublicKey,
            "this key was reported compromised and cannot be used",
        ));
    }
    if req.terms_of_service_agreed != Some(true) {
        return Err(AcmeError::new(
            ProblemType::UserActionRequired,
            format!(
                "the terms of service must be agreed to (termsOfServiceAgreed: true); see {}",
                state.config.terms_of_service
            ),
        ));
    }
    let contact = req.contact.unwrap_or_default();
    check_contacts(&contact)?;
    if let Some(ip) = ctx.client_ip {
        state
            .check_rate(&[(Limit::NewAccountsPerIp, crate::rate_limits::ip_key(ip))])
            .await?;
    }
    let binding = match &req.external_account_binding {
        Some(b) => Some(super::eab::verify(state, b, &a.jwk, &a.jws.header.url).await?),
        None if state.eab_required() => {
            return Err(AcmeError::new(
                ProblemType::ExternalAccountRequired,
                "this server requires an external account binding (RFC 8555 §7.3.4): \
                 ask its operator for an EAB key id and HMAC key",
            ))
        }
        None => None,
    };
    let record = AccountRecord {
        id: new_id(),
        jwk: a.jwk.to_json(),
        thumbprint,
        contact,
        status: AccountStatus::Valid,
        created_at: OffsetDateTime::now_utc(),
        tenant_id: binding.as_ref().map(|b| b.tenant_id.clone()),
        eab_kid: binding.as_ref().map(|b| b.kid.clone()),
    };
    let created = match &binding {
        Some(b) => state.store.create_account_bound(&record, &b.kid).await,
        None => state.store.create_account(&record).await,
    };
    match created {
        Ok(()) => {}
        Err(StoreError::Conflict(why)) if why.contains("EAB") => {
            // Lost a race for the same EAB key.
            return Err(AcmeError::unauthorized(format!(
                "externalAccountBinding: {why}"
            )));
        }
        Err(StoreError::Conflict(_)) => {
            // Lost a race with a concurrent newAccount for the same key.
            if let Some(existing) = state
                .store
                .account_by_thumbprint(&record.thumbprint)
                .await?
            {
                return Ok(
                    Reply::json(StatusCode::OK, &render::account(ctx, &existing))
                        .location(ctx.account_url(&existing.id)),
                );
            }
            return Err(AcmeError::internal("account conflict without an account"));
        }
        Err(e) => return Err(e.into()),
    }
    audit(
        state,
        &record.id,
        "account.create",
        format!(
            "thumbprint={} tenant={} eab_kid={}",
            record.thumbprint,
            record.tenant_id.as_deref().unwrap_or("-"),
            record.eab_kid.as_deref().unwrap_or("-")
        ),
    )
    .await?;
    state.durable().await?;
    state.metrics.inc("accounts_created");
    tracing::info!(account = %record.id, tenant = ?record.tenant_id, "account created");
    Ok(
        Reply::json(StatusCode::CREATED, &render::account(ctx, &record))
            .location(ctx.account_url(&record.id)),
    )
}

/// POST to an account URL: fetch, update contacts, or deactivate (§7.3.2, §7.3.6).
pub async fn account(
    state: &Arc<AppState>,
    ctx: &Ctx,
    a: Authed,
    id: &str,
) -> Result<Reply, AcmeError> {
    let acct = a.account()?.clone();
    if acct.id != id {
        return Err(AcmeError::unauthorized(
            "the kid does not match the account URL being modified",
        ));
    }
    if a.jws.is_post_as_get() {
        return Ok(Reply::json(StatusCode::OK, &render::account(ctx, &acct)));
    }
    let req: AccountUpdateRequest = a.jws.payload_json()?;
    let mut updated = acct.clone();
    if let Some(contact) = req.contact {
        check_contacts(&contact)?;
        updated.contact = contact;
    }
    match req.status.as_deref() {
        None => {}
        Some("deactivated") => updated.status = AccountStatus::Deactivated,
        Some(other) => {
            return Err(AcmeError::malformed(format!(
                "an account's status can only be set to \"deactivated\", not {other:?}"
            )))
        }
    }
    state.store.update_account(&updated).await?;
    if updated.status == AccountStatus::Deactivated && acct.status != AccountStatus::Deactivated {
        audit(state, &acct.id, "account.deactivate", String::new()).await?;
    }
    state.durable().await?;
    if updated.status == AccountStatus::Deactivated {
        tracing::info!(account = %updated.id, "account deactivated");
    }
    Ok(Reply::json(StatusCode::OK, &render::account(ctx, &updated)))
}

/// POST keyChange (RFC 8555 §7.3.5): the outer JWS is signed by the old key
/// (kid); its payload is a JWS signed by the new key (jwk) whose payload
/// names the account and the old key.
pub async fn key_change(state: &Arc<AppState>, ctx: &Ctx, a: Authed) -> Result<Reply, AcmeError> {
    let acct = a.account()?.clone();
    let inner = jws::parse(&a.jws.payload)
        .map_err(|e| AcmeError::malformed(format!("keyChange payload is not a valid JWS: {e}")))?;
    if inner.header.nonce.is_some() {
        return Err(AcmeError::malformed(
            "the inner keyChange JWS must not carry a nonce",
        ));
    }
    if inner.header.url != a.jws.header.url {
        return Err(AcmeError::malformed(
            "the inner keyChange JWS url differs from the outer one",
        ));
    }
    let new_key = match &inner.header.key {
        jws::KeyRef::Jwk(k) => k.clone(),
        jws::KeyRef::Kid(_) => {
            return Err(AcmeError::malformed(
                "the inner keyChange JWS must be signed with jwk (the new key)",
            ))
        }
    };
    let inner = inner.verify(&new_key)?;
    let req: KeyChangeRequest = inner.payload_json()?;
    if req.account != ctx.account_url(&acct.id)
        && !req.account.ends_with(&format!("/acme/acct/{}", acct.id))
    {
        return Err(AcmeError::unauthorized(
            "the inner keyChange payload names another account",
        ));
    }
    let old = Jwk::from_json(&req.old_key)
        .map_err(|e| AcmeError::malformed(format!("oldKey is not a valid JWK: {e}")))?;
    if old.thumbprint() != acct.thumbprint {
        return Err(AcmeError::unauthorized(
            "oldKey is not the account's current key",
        ));
    }
    let new_thumb = new_key.thumbprint();
    if new_thumb == acct.thumbprint {
        return Err(AcmeError::malformed("the new key equals the old key"));
    }
    if let Some(other) = state.store.account_by_thumbprint(&new_thumb).await? {
        let mut e = AcmeError::malformed("the new key is already in use by another account")
            .with_status(409);
        e.location = Some(ctx.account_url(&other.id));
        return Err(e);
    }
    if state
        .store
        .is_key_blocked(&sha256_hex(&new_key.public_key_bits()))
        .await?
    {
        return Err(AcmeError::new(
            ProblemType::BadPublicKey,
            "the new key was reported compromised and cannot be used",
        ));
    }
    let mut updated = acct.clone();
    updated.jwk = new_key.to_json();
    updated.thumbprint = new_thumb;
    match state
        .store
        .change_account_key(&updated, &acct.thumbprint)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(
                AcmeError::malformed("the new key is already in use by another account")
                    .with_status(409),
            )
        }
        Err(e) => return Err(e.into()),
    }
    audit(
        state,
        &acct.id,
        "account.key_change",
        format!("old={} new={}", acct.thumbprint, updated.thumbprint),
    )
    .await?;
    state.durable().await?;
    tracing::info!(account = %acct.id, "account key rolled over");
    Ok(Reply::json(StatusCode::OK, &render::account(ctx, &updated)))
}
