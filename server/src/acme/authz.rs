//! Authorizations and challenges (RFC 8555 §7.5, §7.5.1, §7.5.2, §8).
//! A challenge POST starts validation in a task; the response waits briefly
//! for it so quick validations answer with their outcome at once.

use std::sync::Arc;
use std::time::Duration;

use hyper::StatusCode;
use ironseal_protocol::acme::problem::Problem;
use ironseal_protocol::acme::types::{AuthzStatus, ChallengeStatus, ChallengeType, IdentifierKind};
use ironseal_storage::{AccountRecord, AuthzRecord};
use serde_json::Value;
use time::OffsetDateTime;

use super::error::AcmeError;
use super::order::effective_authz_status;
use super::order::IN_FLIGHT_WAIT;
use super::{render, Authed, Ctx, Reply};
use crate::rate_limits::Limit;
use crate::state::AppState;
use crate::validation::{ChallengeKind, Target, ValidationError};

/// How long a challenge POST waits for its validation before answering
/// `processing`.
const CHALLENGE_WAIT: Duration = Duration::from_secs(2);

async fn load_authz(
    state: &AppState,
    account_id: &str,
    id: &str,
) -> Result<AuthzRecord, AcmeError> {
    let mut az = state
        .store
        .get_authz(id)
        .await?
        .ok_or_else(|| AcmeError::not_found(format!("no authorization {id}")))?;
    if az.account_id != account_id {
        return Err(AcmeError::unauthorized(
            "this authorization belongs to another account",
        ));
    }
    az.status = effective_authz_status(&az, OffsetDateTime::now_utc());
    Ok(az)
}

/// A challenge left `processing` with no validation running in this process
/// and no live lease of another replica was interrupted (a restart, a
/// killed replica): record it as failed so the client sees a final state
/// instead of polling forever. Called wherever an authorization is read
/// for a client: its own URL, and every order that holds it.
pub(crate) async fn recover_interrupted(
    state: &AppState,
    mut az: AuthzRecord,
) -> Result<AuthzRecord, AcmeError> {
    let stuck = az
        .challenges
        .iter()
        .any(|c| c.status == ChallengeStatus::Processing);
    if !stuck
        || state.validating.contains(&az.id)
        || state
            .leases
            .held_elsewhere(&crate::leases::authz_lease(&az.id))
            .await?
    {
        // In flight here or on another replica.
        return Ok(az);
    }
    for c in az
        .challenges
        .iter_mut()
        .filter(|c| c.status == ChallengeStatus::Processing)
    {
        c.status = ChallengeStatus::Invalid;
        let mut p = Problem::new(
            ironseal_protocol::acme::problem::ProblemType::ServerInternal,
            "validation was interrupted by a server restart; create a new order",
        );
        p.identifier = Some(az.identifier.clone());
        c.error = Some(p.to_json());
    }
    let before = az.status;
    if az.status == AuthzStatus::Pending {
        az.status = AuthzStatus::Invalid;
    }
    if !state.store.transition_authz(&az, before).await? {
        // Changed meanwhile (a deactivation): that state stands.
        return Ok(state.store.get_authz(&az.id).await?.unwrap_or(az));
    }
    state.durable().await?;
    Ok(az)
}

/// Waits (bounded, see crate::in_flight) for a validation of `az` in
/// flight in this process or on another replica (crate::leases), then
/// reads it again.
async fn wait_in_flight(
    state: &AppState,
    az: &mut AuthzRecord,
    account_id: &str,
) -> Result<(), AcmeError> {
    if state.validating.contains(&az.id) {
        state.validating.wait(&az.id, IN_FLIGHT_WAIT).await;
    } else if az
        .challenges
        .iter()
        .any(|c| c.status == ChallengeStatus::Processing)
        && state.leases.shared()
    {
        state
            .leases
            .wait_elsewhere(&crate::leases::authz_lease(&az.id), IN_FLIGHT_WAIT)
            .await;
    } else {
        return Ok(());
    }
    *az = load_authz(state, account_id, &az.id).await?;
    Ok(())
}

/// POST to an authorization: POST-as-GET, or deactivation (§7.5.2).
pub async fn authz(
    state: &Arc<AppState>,
    ctx: &Ctx,
    a: Authed,
    id: &str,
) -> Result<Reply, AcmeError> {
    let acct = a.account()?;
    let mut az = load_authz(state, &acct.id, id).await?;
    if a.jws.is_post_as_get() {
        wait_in_flight(state, &mut az, &acct.id).await?;
    }
    let mut az = recover_interrupted(state, az).await?;
    if !a.jws.is_post_as_get() {
        let v: Value = a.jws.payload_json()?;
        match v.get("status").and_then(Value::as_str) {
            Some("deactivated") => {
                // Compare-and-swap on the status: a validation finishing
                // meanwhile is seen (and may be deactivated in turn), never
                // overwritten unseen.
                let mut tries = 0;
                loop {
                    if !matches!(az.status, AuthzStatus::Pending | AuthzStatus::Valid) {
                        return Err(AcmeError::malformed(format!(
                            "an authorization that is {:?} cannot be deactivated",
                            az.status
                        )));
                    }
                    let before = az.status;
                    let mut next = az.clone();
                    next.status = AuthzStatus::Deactivated;
                    if state.store.transition_authz(&next, before).await? {
                        az = next;
                        break;
                    }
                    tries += 1;
                    if tries >= 3 {
                        return Err(AcmeError::internal(
                            "the authorization kept changing; try again",
                        ));
                    }
                    az = load_authz(state, &acct.id, id).await?;
                }
                state.durable().await?;
            }
            _ => {
                return Err(AcmeError::malformed(
                    "an authorization accepts only POST-as-GET or {\"status\": \"deactivated\"}",
                ))
            }
        }
    }
    Ok(Reply::json(StatusCode::OK, &render::authz(ctx, &az)))
}

/// POST to a challenge: `{}` starts validation (§7.5.1); POST-as-GET reads it.
pub async fn challenge(
    state: &Arc<AppState>,
    ctx: &Ctx,
    a: Authed,
    authz_id: &str,
    id: &str,
) -> Result<Reply, AcmeError> {
    let acct = a.account()?.clone();
    let az = load_authz(state, &acct.id, authz_id).await?;
    let az = recover_interrupted(state, az).await?;
    let idx = az
        .challenges
        .iter()
        .position(|c| c.id == id)
        .ok_or_else(|| AcmeError::not_found(format!("no challenge {id}")))?;
    let up = ctx.authz_url(&az.id);
    if a.jws.is_post_as_get() {
        let mut az = az;
        wait_in_flight(state, &mut az, &acct.id).await?;
        return Ok(Reply::json(
            StatusCode::OK,
            &render::challenge(ctx, &az.id, &az.challenges[idx]),
        )
        .link(up, "up"));
    }
    // The payload of a response is an empty JSON object (§7.5.1).
    let _: Value = a.jws.payload_json()?;
    let failure_keys = failure_keys(&acct, ctx);
    state
        .rate_limits
        .check_failures(&failure_keys)
        .await
        .map_err(|r| {
            state.metrics.rate_limited(r.limit.as_str());
            AcmeError::rate_limited(r)
        })?;
    let ch = &az.challenges[idx];
    if az.status != AuthzStatus::Pending || ch.status != ChallengeStatus::Pending {
        // Already processing or decided: report the state (idempotent).
        return Ok(Reply::json(StatusCode::OK, &render::challenge(ctx, &az.id, ch)).link(up, "up"));
    }
    if !state.validating.begin(&az.id) {
        return Ok(Reply::json(StatusCode::OK, &render::challenge(ctx, &az.id, ch)).link(up, "up"));
    }
    // Claimed in the store too before it turns `processing` (see
    // crate::leases); renewed while the validation runs.
    let lease = match state.leases.hold(&crate::leases::authz_lease(&az.id)).await {
        Ok(Some(guard)) => guard,
        Ok(None) => {
            // Another replica is starting a validation of it.
            state.validating.end(&az.id);
            return Ok(
                Reply::json(StatusCode::OK, &render::challenge(ctx, &az.id, ch)).link(up, "up"),
            );
        }
        Err(e) => {
            state.validating.end(&az.id);
            return Err(e.into());
        }
    };
    let mut processing = az.clone();
    processing.challenges[idx].status = ChallengeStatus::Processing;
    if !state
        .store
        .transition_authz(&processing, AuthzStatus::Pending)
        .await?
    {
        // Deactivated (or decided) since it was read: report that state.
        state.validating.end(&az.id);
        let now = load_authz(state, &acct.id, authz_id).await?;
        return Ok(Reply::json(
            StatusCode::OK,
            &render::challenge(ctx, &now.id, &now.challenges[idx]),
        )
        .link(up, "up"));
    }
    let key_authorization = format!("{}.{}", ch.token, acct.thumbprint);
    let caa_account = caa_applies(state, &acct)
        .await?
        .then(|| ctx.account_url(&acct.id));
    let st = state.clone();
    let task_authz = processing.clone();
    let task = tokio::spawn(async move {
        let result = run_validation(
            &st,
            task_authz,
            idx,
            key_authorization,
            failure_keys,
            caa_account,
        )
        .await;
        drop(lease);
        st.validating.end(&result.id);
        result
    });
    let shown = match tokio::time::timeout(CHALLENGE_WAIT, task).await {
        Ok(Ok(done)) => done,
        Ok(Err(join)) => return Err(AcmeError::internal(join)),
        Err(_) => processing,
    };
    let mut reply = Reply::json(
        StatusCode::OK,
        &render::challenge(ctx, &shown.id, &shown.challenges[idx]),
    )
    .link(up, "up");
    if shown.challenges[idx].status == ChallengeStatus::Processing {
        reply = reply.retry_after(1);
    }
    Ok(reply)
}

/// Whether CAA is checked for `acct`'s validations: `[validation] caa`
/// and, for a tenant's account, the tenant's own switch.
async fn caa_applies(state: &AppState, acct: &AccountRecord) -> Result<bool, AcmeError> {
    if !state.config.validation_caa {
        return Ok(false);
    }
    Ok(match &acct.tenant_id {
        Some(t) => !state
            .store
            .get_tenant(t)
            .await?
            .is_some_and(|tenant| tenant.caa_disabled),
        None => true,
    })
}

/// The failed-validation budgets a challenge response counts against: the
/// account's, its tenant's and the client IP's.
fn failure_keys(acct: &AccountRecord, ctx: &Ctx) -> Vec<(Limit, String)> {
    let mut keys = vec![(Limit::FailedValidationsPerAccount, acct.id.clone())];
    if let Some(t) = &acct.tenant_id {
        keys.push((Limit::FailedValidationsPerTenant, t.clone()));
    }
    if let Some(ip) = ctx.client_ip {
        keys.push((
            Limit::FailedValidationsPerIp,
            crate::rate_limits::ip_key(ip),
        ));
    }
    keys
}

/// Validates one challenge and records the outcome on the authorization:
/// valid (the authorization turns valid) or invalid with the problem (the
/// authorization turns invalid, RFC 8555 §7.1.6). With `caa_account` (the
/// account URL) a validated DNS name must also pass CAA (RFC 8659, see
/// [`crate::validation::caa`]); IP identifiers have no CAA.
async fn run_validation(
    state: &Arc<AppState>,
    mut az: AuthzRecord,
    idx: usize,
    key_authorization: String,
    failure_keys: Vec<(Limit, String)>,
    caa_account: Option<String>,
) -> AuthzRecord {
    let ch = az.challenges[idx].clone();
    let kind = match ch.kind {
        ChallengeType::Http01 => ChallengeKind::Http01,
        ChallengeType::Dns01 => ChallengeKind::Dns01,
        ChallengeType::TlsAlpn01 => ChallengeKind::TlsAlpn01,
    };
    let target = match az.identifier.kind {
        IdentifierKind::Dns => Ok(Target::Dns(az.identifier.value.clone())),
        IdentifierKind::Ip => az
            .identifier
            .value
            .parse()
            .map(Target::Ip)
            .map_err(|_| ValidationError::Malformed("bad IP identifier".into())),
    };
    let started = std::time::Instant::now();
    let outcome = match target {
        Ok(t) => {
            let validated = state
                .validator
                .validate(kind, &t, &ch.token, &key_authorization)
                .await;
            match (validated, &t, &caa_account) {
                (Ok(()), Target::Dns(name), Some(account_uri)) => {
                    let name = name.trim_end_matches('.').to_ascii_lowercase();
                    let req = crate::validation::caa::CaaRequest {
                        name: &name,
                        wildcard: az.wildcard,
                        identities: state.config.effective_caa_identities(),
                        account_uri,
                        method: kind,
                    };
                    state.validator.check_caa(&req).await
                }
                (r, _, _) => r,
            }
        }
        Err(e) => Err(e),
    };
    let now = OffsetDateTime::now_utc();
    match &outcome {
        Ok(()) => {
            az.challenges[idx].status = ChallengeStatus::Valid;
            az.challenges[idx].validated = Some(now);
            az.status = AuthzStatus::Valid;
            state.metrics.validation(ch.kind, true);
        }
        Err(e) => {
            let kind_name = e.acme_type();
            let mut problem = Problem::new(
                ironseal_protocol::acme::problem::ProblemType::from_name(kind_name)
                    .unwrap_or(ironseal_protocol::acme::problem::ProblemType::Unauthorized),
                e.to_string(),
            );
            problem.identifier = Some(az.identifier.clone());
            az.challenges[idx].status = ChallengeStatus::Invalid;
            az.challenges[idx].error = Some(problem.to_json());
            az.status = AuthzStatus::Invalid;
            state.metrics.validation(ch.kind, false);
            state.rate_limits.record_failure(&failure_keys).await;
        }
    }
    tracing::info!(
        authz = %az.id,
        identifier = %az.identifier.value,
        challenge = ?ch.kind,
        ok = outcome.is_ok(),
        error = outcome.as_ref().err().map(|e| e.to_string()).unwrap_or_default(),
        ms = started.elapsed().as_millis() as u64,
        "challenge validated"
    );
    // Only over the `pending` authorization this validation started from:
    // one the client deactivated meanwhile stays deactivated (RFC 8555
    // §7.1.6), and the client sees that.
    let az = match store_outcome(state, &az).await {
        Ok(true) => az,
        Ok(false) => {
            tracing::info!(authz = %az.id, "authorization changed during validation (deactivated?); outcome discarded");
            match state.store.get_authz(&az.id).await {
                Ok(Some(stored)) => stored,
                _ => az,
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "could not store validation outcome");
            az
        }
    };
    if let Err(e) = state.durable().await {
        tracing::error!(error = ?e.problem.detail, "could not flush validation outcome");
    }
    az
}

/// How long a validation's outcome write is retried while the store
/// fails (a PostgreSQL restart or failover takes seconds).
const OUTCOME_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// Moves the authorization from `pending` to its outcome (compare-and-swap,
/// so a retry after a write that did commit answers false and the stored
/// state is read). A store error is retried with backoff for up to
/// [`OUTCOME_RETRY_FOR`]: the validation already ran (and cannot be
/// repeated for free), and without the write the client would find the
/// challenge `processing` until the lease lapses and then `invalid`.
async fn store_outcome(
    state: &AppState,
    az: &AuthzRecord,
) -> Result<bool, ironseal_storage::StoreError> {
    let deadline = std::time::Instant::now() + OUTCOME_RETRY_FOR;
    let mut delay = std::time::Duration::from_millis(200);
    loop {
        match state.store.transition_authz(az, AuthzStatus::Pending).await {
            Err(e) if std::time::Instant::now() + delay < deadline => {
                tracing::warn!(error = %e, authz = %az.id, retry_ms = delay.as_millis() as u64, "validation outcome not stored; retrying");
                state.metrics.inc("validation_outcome_retries");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(4));
            }
            other => return other,
        }
    }
}
