//! Orders: newOrder (RFC 8555 §7.4), order state (§7.1.6), the orders list
//! (§7.1.2.1), finalize and certificate download (§7.4.2), and the ARI
//! `replaces` check (RFC 9773 §5).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use hyper::StatusCode;
use ironseal_ca_core::names::SubjectName;
use ironseal_protocol::acme::ari::CertId;
use ironseal_protocol::acme::problem::{Problem, ProblemType};
use ironseal_protocol::acme::requests::{validate_identifier, NewOrderRequest};
use ironseal_protocol::acme::types::{
    AuthzStatus, ChallengeStatus, ChallengeType, Identifier, IdentifierKind, OrderStatus,
};
use ironseal_storage::{AccountRecord, AuthzRecord, ChallengeRecord, OrderRecord};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::error::AcmeError;
use super::{render, Authed, Ctx, Reply};
use crate::authority;
use crate::ids::{new_id, new_token};
use crate::rate_limits::Limit;
use crate::state::AppState;

/// Most identifiers one order may carry.
const MAX_IDENTIFIERS: usize = 100;
/// How long a POST-as-GET waits for an issuance in flight.
pub const IN_FLIGHT_WAIT: Duration = Duration::from_secs(2);
/// Orders per page of the orders list.
const ORDERS_PAGE: usize = 50;

/// POST newOrder (RFC 8555 §7.4).
pub async fn new_order(state: &Arc<AppState>, ctx: &Ctx, a: Authed) -> Result<Reply, AcmeError> {
    let acct = a.account()?.clone();
    let req = NewOrderRequest::from_payload(&a.jws.payload).map_err(AcmeError::from_problem)?;
    let mut limits = vec![(Limit::NewOrdersPerAccount, acct.id.clone())];
    if let Some(t) = &acct.tenant_id {
        limits.push((Limit::NewOrdersPerTenant, t.clone()));
    }
    if let Some(ip) = ctx.client_ip {
        limits.push((Limit::NewOrdersPerIp, crate::rate_limits::ip_key(ip)));
    }
    state.check_rate(&limits).await?;
    let identifiers = normalize_identifiers(&req.identifiers)?;
    let now = OffsetDateTime::now_utc();
    let profile = match &req.profile {
        None => state.config.default_profile(),
        Some(p) => state.config.profile(p).ok_or_else(|| {
            let offered: Vec<String> = state
                .config
                .profiles
                .iter()
                .map(|o| format!("{:?}", o.name))
                .collect();
            AcmeError::new(
                ProblemType::InvalidProfile,
                format!(
                    "unknown profile {p:?}; this server offers {}",
                    offered.join(", ")
                ),
            )
        })?,
    };
    let (not_before, not_after) = requested_validity(profile.lifetime, &req, now)?;
    check_names(state, &acct, profile, &identifiers).await?;
    if let Some(replaces) = &req.replaces {
        check_replaces(state, &acct, replaces, &identifiers).await?;
    }

    let expires = now + state.config.order_lifetime;
    let mut reusable = Vec::with_capacity(identifiers.len());
    for ident in &identifiers {
        let found = match state
            .store
            .find_reusable_authz(&acct.id, ident, now)
            .await?
        {
            // One whose validation was interrupted fails now instead of
            // failing the new order later.
            Some(az) => Some(super::authz::recover_interrupted(state, az).await?)
                .filter(|az| matches!(az.status, AuthzStatus::Pending | AuthzStatus::Valid)),
            None => None,
        };
        reusable.push(found);
    }
    let new_authzs = reusable.iter().filter(|a| a.is_none()).count();
    check_pending(state, &acct, new_authzs, now).await?;
    let mut authz_ids = Vec::with_capacity(identifiers.len());
    let mut all_valid = true;
    for (ident, existing) in identifiers.iter().zip(reusable) {
        let authz = match existing {
            Some(existing) => existing,
            None => {
                let authz = new_authz(state, &acct, ident, now);
                state.store.put_authz(&authz).await?;
                authz
            }
        };
        all_valid &= authz.status == AuthzStatus::Valid;
        authz_ids.push(authz.id);
    }
    let order = OrderRecord {
        id: new_id(),
        account_id: acct.id.clone(),
        status: if all_valid {
            OrderStatus::Ready
        } else {
            OrderStatus::Pending
        },
        expires,
        identifiers,
        not_before,
        not_after,
        authz_ids,
        error: None,
        cert_serial: None,
        replaces: req.replaces.clone(),
        // Echoed as requested; an order without one is issued under the
        // default profile (Config::default_profile).
        profile: req.profile.clone(),
        approval_id: None,
        created_at: now,
    };
    state.store.put_order(&order).await?;
    state.durable().await?;
    state.metrics.inc("orders_created");
    Ok(
        Reply::json(StatusCode::CREATED, &render::order(ctx, &order))
            .location(ctx.order_url(&order.id)),
    )
}

/// The per-account caps on unfinished orders and pending authorizations
/// (issue 10 item 4): a newOrder that would exceed either is `rateLimited`
/// (RFC 8555 §6.6) before anything is written. Concurrent newOrders of one
/// account may pass together, so a cap can be exceeded by the requests in
/// flight at once, never more.
async fn check_pending(
    state: &AppState,
    acct: &AccountRecord,
    new_authzs: usize,
    now: OffsetDateTime,
) -> Result<(), AcmeError> {
    let max_orders = u64::from(state.config.max_pending_orders_per_account);
    let max_authzs = u64::from(state.config.max_pending_authzs_per_account);
    let limit = usize::try_from(max_orders.max(max_authzs)).unwrap_or(usize::MAX);
    let held = state.store.count_pending(&acct.id, now, limit).await?;
    let refuse = |limit: &'static str, detail: String| {
        state.metrics.rate_limited(limit);
        Err(AcmeError::new(ProblemType::RateLimited, detail))
    };
    if held.orders >= max_orders {
        return refuse(
            "pending_orders_per_account",
            format!(
                "this account already holds {max_orders} unfinished orders \
             ([limits] max_pending_orders_per_account); finalize or abandon \
             some, or wait until they expire"
            ),
        );
    }
    if held.authzs + new_authzs as u64 > max_authzs {
        return refuse(
            "pending_authzs_per_account",
            format!(
                "this account holds {} pending authorizations and this order needs \
             {new_authzs} more, over the {max_authzs} allowed \
             ([limits] max_pending_authzs_per_account); complete or deactivate \
             some, or wait until they expire",
                held.authzs
            ),
        );
    }
    Ok(())
}

/// Validates, lower-cases and de-duplicates the requested identifiers.
fn normalize_identifiers(idents: &[Identifier]) -> Result<Vec<Identifier>, AcmeError> {
    if idents.is_empty() {
        return Err(AcmeError::malformed(
            "an order needs at least one identifier",
        ));
    }
    if idents.len() > MAX_IDENTIFIERS {
        return Err(AcmeError::new(
            ProblemType::RejectedIdentifier,
            format!("an order may carry at most {MAX_IDENTIFIERS} identifiers"),
        ));
    }
    let mut subproblems = Vec::new();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for ident in idents {
        if let Err(p) = validate_identifier(ident) {
            subproblems.push(p.with_identifier(ident.clone()));
            continue;
        }
        let value = match ident.kind {
            IdentifierKind::Dns => ident.value.to_ascii_lowercase(),
            IdentifierKind::Ip => ident.value.clone(),
        };
        let normalized = Identifier {
            kind: ident.kind,
            value,
        };
        if seen.insert((normalized.kind as u8, normalized.value.clone())) {
            out.push(normalized);
        }
    }
    match subproblems.len() {
        0 => Ok(out),
        1 => Err(AcmeError::from_problem(subproblems.remove(0))),
        n => {
            // RFC 8555 §6.7.1: the top-level type is the shared type of the
            // subproblems, or `compound` when they differ.
            let first = subproblems[0].kind;
            let kind = if subproblems.iter().all(|p| p.kind == first) {
                first
            } else {
                ProblemType::Compound
            };
            let top = Problem::new(
                kind,
                format!("{n} identifiers were rejected; see subproblems"),
            )
            .with_subproblems(subproblems.iter().map(Problem::to_subproblem).collect());
            Err(AcmeError::from_problem(top))
        }
    }
}

fn parse_ts(field: &str, v: &str) -> Result<OffsetDateTime, AcmeError> {
    OffsetDateTime::parse(v, &Rfc3339)
        .map_err(|_| AcmeError::malformed(format!("{field} is not an RFC 3339 timestamp: {v:?}")))
}

/// notBefore/notAfter of RFC 8555 §7.4, bounded by the profile's lifetime.
fn requested_validity(
    max: Duration,
    req: &NewOrderRequest,
    now: OffsetDateTime,
) -> Result<(Option<OffsetDateTime>, Option<OffsetDateTime>), AcmeError> {
    let nb = req
        .not_before
        .as_deref()
        .map(|v| parse_ts("notBefore", v))
        .transpose()?;
    let na = req
        .not_after
        .as_deref()
        .map(|v| parse_ts("notAfter", v))
        .transpose()?;
    let start = nb.unwrap_or(now);
    if let Some(nb) = nb {
        if nb < now - time::Duration::hours(1) || nb > now + time::Duration::days(30) {
            return Err(AcmeError::malformed(
                "notBefore must lie between one hour ago and 30 days from now",
            ));
        }
    }
    if let Some(na) = na {
        if na <= start {
            return Err(AcmeError::malformed("notAfter must be after notBefore"));
        }
        if (na - start).unsigned_abs() > max {
            return Err(AcmeError::malformed(format!(
                "the requested validity exceeds the profile's maximum of {} days",
                max.as_secs() / 86_400
            )));
        }
    }
    Ok((nb, na))
}

/// Converts ACME identifiers into the CA core's subject names.
pub fn subject_names(idents: &[Identifier]) -> Result<Vec<SubjectName>, AcmeError> {
    idents
        .iter()
        .map(|i| match i.kind {
            IdentifierKind::Dns => Ok(SubjectName::Dns(i.value.clone())),
            IdentifierKind::Ip => i
                .value
                .parse()
                .map(SubjectName::Ip)
                .map_err(|_| AcmeError::malformed(format!("bad IP identifier {:?}", i.value))),
        })
        .collect()
}

/// Refuses, before any authorization is created, identifiers the account's
/// tenant may not have (its name policy) or the issuing CA chain may not
/// certify (RFC 5280 §4.2.1.10): one `rejectedIdentifier` subproblem per
/// refused name, naming the rule. The authority checks both again before
/// it signs.
async fn check_names(
    state: &AppState,
    acct: &AccountRecord,
    profile: &crate::config::Profile,
    identifiers: &[Identifier],
) -> Result<(), AcmeError> {
    use ironseal_ca_core::error::CaError;
    let cas = state.ca_set();
    let ctx = authority::Ctx {
        config: &state.config,
        store: &state.store,
        cas: &cas,
    };
    let tenant = match &acct.tenant_id {
        Some(id) => {
            let t = authority::tenant::load(ctx.store.as_ref(), id).await?;
            t.check_profile(&profile.name)?;
            Some(t)
        }
        None => None,
    };
    let issuer = authority::profile_issuer(&ctx, profile, None).await?;
    let mut refused = Vec::new();
    for ident in identifiers {
        let names = subject_names(std::slice::from_ref(ident))?;
        if let Some(t) = &tenant {
            if let Err(e) = t.check_names(&names) {
                refused.push(
                    Problem::new(ProblemType::RejectedIdentifier, e.detail)
                        .with_identifier(ident.clone()),
                );
                continue;
            }
        }
        match issuer.issuer.check_names(&names) {
            Ok(()) => {}
            Err(CaError::NameConstraintViolation { reason, .. }) => refused.push(
                Problem::new(
                    ProblemType::RejectedIdentifier,
                    format!("{}: {reason}", ident.value),
                )
                .with_identifier(ident.clone()),
            ),
            Err(e) => return Err(e.into()),
        }
    }
    match refused.len() {
        0 => Ok(()),
        1 => Err(AcmeError::from_problem(refused.remove(0))),
        n => Err(AcmeError::from_problem(Problem::new(
                ProblemType::RejectedIdentifier,
                format!("{n} identifiers are refused (tenant policy or the issuing CA's name constraints); see subproblems"),
            )
            .with_subproblems(refused.iter().map(Problem::to_subproblem).collect()))),
    }
}

/// RFC 9773 §5: `replaces` must name an existing certificate of the same
/// account that shares an identifier and was not replaced already.
async fn check_replaces(
    state: &AppState,
    acct: &AccountRecord,
    replaces: &str,
    identifiers: &[Identifier],
) -> Result<(), AcmeError> {
    let cert_id = CertId::parse(replaces)
        .map_err(|e| AcmeError::malformed(format!("replaces is not a valid ARI certID: {e}")))?;
    let serial = hex::encode(&cert_id.serial);
    let cert = state.store.get_certificate(&serial).await?.ok_or_else(|| {
        AcmeError::malformed("replaces names a certificate this server did not issue")
            .with_status(404)
    })?;
    if !state.issuer_key_id_matches(&cert.issuer_id, &cert_id.key_identifier) {
        return Err(AcmeError::malformed(
            "replaces: the certID's authority key identifier does not match the certificate's issuer",
        ));
    }
    if cert.account_id != acct.id {
        return Err(AcmeError::unauthorized(
            "replaces names a certificate issued to another account",
        ));
    }
    if cert.replaced_by.is_some() {
        return Err(AcmeError::new(
            ProblemType::AlreadyReplaced,
            format!("certificate {serial} was already replaced"),
        )
        .with_status(409));
    }
    let shares = cert.identifiers.iter().any(|ci| {
        identifiers
            .iter()
            .any(|i| i.kind == ci.kind && i.value.eq_ignore_ascii_case(&ci.value))
    });
    if !shares {
        return Err(AcmeError::malformed(
            "replaces: the new order shares no identifier with the replaced certificate",
        ));
    }
    Ok(())
}

/// A fresh pending authorization with the challenges its identifier allows
/// (wildcards: dns-01 only, RFC 8555 §7.1.3; IPs: no dns-01, RFC 8738 §7).
fn new_authz(
    state: &AppState,
    acct: &AccountRecord,
    ident: &Identifier,
    now: OffsetDateTime,
) -> AuthzRecord {
    let wildcard = ident.kind == IdentifierKind::Dns && ident.value.starts_with("*.");
    let kinds: &[ChallengeType] = match (ident.kind, wildcard) {
        (IdentifierKind::Dns, true) => &[ChallengeType::Dns01],
        (IdentifierKind::Dns, false) => &[
            ChallengeType::Http01,
            ChallengeType::Dns01,
            ChallengeType::TlsAlpn01,
        ],
        (IdentifierKind::Ip, _) => &[ChallengeType::Http01, ChallengeType::TlsAlpn01],
    };
    let base = Identifier {
        kind: ident.kind,
        value: ident.value.trim_start_matches("*.").to_string(),
    };
    AuthzRecord {
        id: new_id(),
        account_id: acct.id.clone(),
        identifier: base,
        status: AuthzStatus::Pending,
        expires: now + state.config.authz_lifetime,
        wildcard,
        challenges: kinds
            .iter()
            .map(|k| ChallengeRecord {
                id: new_id(),
                kind: *k,
                token: new_token(),
                status: ChallengeStatus::Pending,
                validated: None,
                error: None,
            })
            .collect(),
    }
}

/// Loads an order owned by `acct`, bringing its status up to date from its
/// authorizations and expiry (RFC 8555 §7.1.6).
pub async fn load_order(
    state: &Arc<AppState>,
    acct: &AccountRecord,
    id: &str,
) -> Result<OrderRecord, AcmeError> {
    let order = state
        .store
        .get_order(id)
        .await?
        .ok_or_else(|| AcmeError::not_found(format!("no order {id}")))?;
    if order.account_id != acct.id {
        return Err(AcmeError::unauthorized(
            "this order belongs to another account",
        ));
    }
    refresh_order(state, order).await
}

/// Moves pending → ready when every authorization is valid, and pending or
/// ready → invalid when one failed or the order expired.
pub async fn refresh_order(
    state: &Arc<AppState>,
    order: OrderRecord,
) -> Result<OrderRecord, AcmeError> {
    let now = OffsetDateTime::now_utc();
    let next = match order.status {
        OrderStatus::Pending | OrderStatus::Ready => {
            let mut all_valid = true;
            let mut failed: Option<(String, AuthzStatus)> = None;
            for id in &order.authz_ids {
                let az = state.store.get_authz(id).await?.ok_or_else(|| {
                    AcmeError::internal(format!("order {} lost authz {id}", order.id))
                })?;
                // A validation a killed replica left `processing` fails
                // here too, so a client polling only the order sees it end.
                let az = super::authz::recover_interrupted(state, az).await?;
                let status = effective_authz_status(&az, now);
                if status != AuthzStatus::Valid {
                    all_valid = false;
                }
                if !matches!(status, AuthzStatus::Valid | AuthzStatus::Pending) && failed.is_none()
                {
                    failed = Some((az.identifier.value.clone(), status));
                }
            }
            if order.expires <= now {
                Some((
                    OrderStatus::Invalid,
                    Some(Problem::new(ProblemType::Malformed, "the order expired")),
                ))
            } else if let Some((name, st)) = failed {
                Some((
                    OrderStatus::Invalid,
                    Some(Problem::new(
                        ProblemType::Unauthorized,
                        format!("the authorization for {name} is {st:?}"),
                    )),
                ))
            } else if all_valid && order.status == OrderStatus::Pending {
                Some((OrderStatus::Ready, None))
            } else {
                None
            }
        }
        // Held for approval: the approval decides (see `held_order`).
        OrderStatus::Processing
            if order.approval_id.is_some() && !state.issuing.contains(&order.id) =>
        {
            return held_order(state, order).await;
        }
        // A `processing` order that no task of this process is issuing and
        // no other replica holds (crate::leases) was interrupted (crash or
        // restart): fail it so the client starts over.
        OrderStatus::Processing
            if !state.issuing.contains(&order.id)
                && !state
                    .leases
                    .held_elsewhere(&crate::leases::order_lease(&order.id))
                    .await? =>
        {
            Some((
                OrderStatus::Invalid,
                Some(Problem::new(
                    ProblemType::ServerInternal,
                    "issuance was interrupted by a server restart; create a new order",
                )),
            ))
        }
        _ => None,
    };
    match next {
        None => Ok(order),
        Some((status, problem)) => {
            let mut updated = order.clone();
            updated.status = status;
            updated.error = problem.map(|p| p.to_json());
            // Derived state: recomputed from the authorizations on every
            // read, so it needs no flush of its own before we answer.
            if state.store.transition_order(&updated, order.status).await? {
                Ok(updated)
            } else {
                // Someone else moved it; read what they wrote.
                state
                    .store
                    .get_order(&order.id)
                    .await?
                    .ok_or_else(|| AcmeError::internal("order vanished"))
            }
        }
    }
}

/// A `processing` order held for approval: still `processing` while the
/// request waits; `invalid` (unauthorized, naming the approver and their
/// comment) once rejected; after approval, `valid` (the issuance wrote
/// it) or `invalid` with the issuance error. An approval whose issuance
/// was interrupted by a restart is finished here.
async fn held_order(state: &Arc<AppState>, order: OrderRecord) -> Result<OrderRecord, AcmeError> {
    use ironseal_storage::ApprovalStatus;
    let Some(id) = order.approval_id.clone() else {
        return Ok(order);
    };
    let Some(mut approval) = state.store.get_approval(&id).await? else {
        return Err(AcmeError::internal(format!(
            "order {} lost approval {id}",
            order.id
        )));
    };
    if approval.status == ApprovalStatus::Approved
        && approval.cert_serial.is_none()
        && approval.error.is_none()
    {
        approval = authority::approvals::finish(state, approval).await?;
    }
    let problem = match approval.status {
        ApprovalStatus::Pending => return Ok(order),
        ApprovalStatus::Rejected => Problem::new(
            ProblemType::Unauthorized,
            format!(
                "the request was rejected by an approver ({}){}",
                approval.decided_by.as_deref().unwrap_or("unknown"),
                approval
                    .comment
                    .as_deref()
                    .map(|c| format!(": {c}"))
                    .unwrap_or_default()
            ),
        ),
        ApprovalStatus::Approved => match &approval.error {
            Some(e) => *AcmeError::from(authority::approvals::stored_error(e)).problem,
            // Issued: the issuance moved the order to valid; read it.
            None => {
                return state
                    .store
                    .get_order(&order.id)
                    .await?
                    .ok_or_else(|| AcmeError::internal("order vanished"))
            }
        },
    };
    let mut failed = order.clone();
    failed.status = OrderStatus::Invalid;
    failed.error = Some(problem.to_json());
    if state
        .store
        .transition_order(&failed, OrderStatus::Processing)
        .await?
    {
        state.durable().await?;
        Ok(failed)
    } else {
        state
            .store
            .get_order(&order.id)
            .await?
            .ok_or_else(|| AcmeError::internal("order vanished"))
    }
}

/// An authorization's status with expiry applied.
pub fn effective_authz_status(az: &AuthzRecord, now: OffsetDateTime) -> AuthzStatus {
    match az.status {
        AuthzStatus::Pending | AuthzStatus::Valid if az.expires <= now => AuthzStatus::Expired,
        s => s,
    }
}

/// POST-as-GET an order.
pub async fn get_order(
    state: &Arc<AppState>,
    ctx: &Ctx,
    a: Authed,
    id: &str,
) -> Result<Reply, AcmeError> {
    a.require_post_as_get()?;
    let acct = a.account()?;
    let mut order = load_order(state, acct, id).await?;
    if order.status == OrderStatus::Processing && state.issuing.contains(&order.id) {
        state.issuing.wait(&order.id, IN_FLIGHT_WAIT).await;
        order = load_order(state, acct, id).await?;
    } else if order.status == OrderStatus::Processing
        && order.approval_id.is_none()
        && state.leases.shared()
    {
        // Being finalized on another replica: wait for it the same way.
        state
            .leases
            .wait_elsewhere(&crate::leases::order_lease(&order.id), IN_FLIGHT_WAIT)
            .await;
        order = load_order(state, acct, id).await?;
    }
    if order.status == OrderStatus::Valid {
        // The order turned valid in the same write as its certificate;
        // whoever reads the certificate URL must find it after a crash.
        state.durable().await?;
    }
    let mut reply = Reply::json(StatusCode::OK, &render::order(ctx, &order));
    if order.status == OrderStatus::Processing {
        reply = reply.retry_after(1);
    }
    Ok(reply)
}

/// POST-as-GET the orders list of an account, paginated with Link rel="next"
/// (RFC 8555 §7.1.2.1). `?cursor=` continues after the given order id.
pub async fn list_orders(
    state: &Arc<AppState>,
    ctx: &Ctx,
    a: Authed,
    id: &str,
) -> Result<Reply, AcmeError> {
    a.require_post_as_get()?;
    let acct = a.account()?;
    if acct.id != id {
        return Err(AcmeError::unauthorized(
            "the orders list belongs to another account",
        ));
    }
    let cursor = ctx.query_param("cursor");
    let mut ids = state
        .store
        .list_orders(id, cursor.as_deref(), ORDERS_PAGE + 1)
        .await?;
    let more = ids.len() > ORDERS_PAGE;
    ids.truncate(ORDERS_PAGE);
    let urls: Vec<String> = ids.iter().map(|o| ctx.order_url(o)).collect();
    let mut reply = Reply::json(StatusCode::OK, &serde_json::json!({ "orders": urls }));
    if more {
        if let Some(last) = ids.last() {
            reply = reply.link(
                ctx.url(&format!("/acme/acct/{id}/orders?cursor={last}")),
                "next",
            );
        }
    }
    Ok(reply)
}

/// POST-as-GET a certificate chain, `application/pem-certificate-chain`
/// (RFC 8555 §7.4.2). Alternate chains are offered with Link rel="alternate".
pub async fn certificate(
    state: &Arc<AppState>,
    ctx: &Ctx,
    a: Authed,
    serial: &str,
    alt: usize,
) -> Result<Reply, AcmeError> {
    a.require_post_as_get()?;
    let acct = a.account()?;
    let cert = state
        .store
        .get_certificate(serial)
        .await?
        .ok_or_else(|| AcmeError::not_found(format!("no certificate {serial}")))?;
    if cert.account_id != acct.id {
        return Err(AcmeError::unauthorized(
            "this certificate belongs to another account",
        ));
    }
    // Never hand out a certificate whose record could still be lost in a
    // crash (its issuance may be waiting for the group commit): OCSP and
    // revocation must know every certificate a client holds.
    state.durable().await?;
    let chains = state.chains_for(&cert.issuer_id);
    let chain = chains
        .get(alt)
        .ok_or_else(|| AcmeError::not_found("no such alternate chain"))?;
    let mut pem = ironseal_ca_core::cert::pem_encode("CERTIFICATE", &cert.der);
    pem.push_str(chain);
    let mut reply = Reply::empty(StatusCode::OK);
    reply.body = bytes::Bytes::from(pem);
    reply.content_type = "application/pem-certificate-chain";
    for n in 0..chains.len() {
        if n != alt {
            let url = if n == 0 {
                ctx.cert_url(serial)
            } else {
                format!("{}/{n}", ctx.cert_url(serial))
            };
            reply = reply.link(url, "alternate");
        }
    }
    Ok(reply)
}

/// Decodes unpadded base64url, as JWS payload members are encoded.
pub fn base64_url_decode(s: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}
