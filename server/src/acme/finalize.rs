//! POST finalize (RFC 8555 §7.4): the ACME front end's call into the
//! authority. It builds the issuance request from the order and the
//! account, checks the CSR while the order is still `ready` (a bad CSR
//! leaves it `ready`), moves it to `processing` (compare-and-swap, so a
//! second finalize gets orderNotReady), and lets the authority sign and
//! store the certificate together with the order's move to `valid`.

use std::sync::Arc;
use std::time::Duration;

use hyper::StatusCode;
use ironseal_protocol::acme::ari::CertId;
use ironseal_protocol::acme::problem::ProblemType;
use ironseal_protocol::acme::requests::FinalizeRequest;
use ironseal_protocol::acme::types::OrderStatus;
use ironseal_storage::{AccountRecord, OrderRecord};

use super::error::AcmeError;
use super::order::{base64_url_decode, load_order, subject_names};
use super::{jwk_bits, render, Authed, Ctx, Reply};
use crate::authority::{self, IssuanceRequest, Outcome, ProfileChoice, Requester, Validity};
use crate::state::AppState;

/// How long finalize waits for issuance before answering `processing`.
const FINALIZE_WAIT: Duration = Duration::from_secs(3);

/// The authority request for an order: the account as requester, its
/// tenant, the order's profile, names and validity, the `replaces` link.
fn issuance_request(
    acct: &AccountRecord,
    order: &OrderRecord,
    csr_der: Vec<u8>,
) -> Result<IssuanceRequest, AcmeError> {
    let mut req = IssuanceRequest::new(
        Requester::Acme {
            account_id: acct.id.clone(),
        },
        csr_der,
        subject_names(&order.identifiers)?,
    );
    req.tenant = acct.tenant_id.clone();
    req.profile = ProfileChoice::Configured(order.profile.clone());
    req.validity = Validity {
        not_before: order.not_before,
        not_after: order.not_after,
    };
    req.forbidden_key = Some(jwk_bits(&acct.jwk)?);
    req.replaces = order
        .replaces
        .as_deref()
        .and_then(|r| CertId::parse(r).ok())
        .map(|id| hex::encode(id.serial));
    Ok(req)
}

/// POST finalize. Quick issuance answers `valid`; slow issuance answers
/// `processing` with Retry-After.
pub async fn finalize(
    state: &Arc<AppState>,
    ctx: &Ctx,
    a: Authed,
    id: &str,
) -> Result<Reply, AcmeError> {
    let acct = a.account()?.clone();
    let body: FinalizeRequest = a.jws.payload_json()?;
    let order = load_order(state, &acct, id).await?;
    if order.status != OrderStatus::Ready {
        return Err(AcmeError::new(
            ProblemType::OrderNotReady,
            format!("the order is {:?}, not ready", order.status).to_lowercase(),
        ));
    }
    let csr_der = base64_url_decode(&body.csr)
        .ok_or_else(|| AcmeError::new(ProblemType::BadCsr, "csr is not base64url"))?;
    let mut req = issuance_request(&acct, &order, csr_der)?;
    {
        // RFC 8555 §7.4: a CSR the server will not accept leaves the order ready.
        let cas = state.ca_set();
        let actx = authority::Ctx {
            config: &state.config,
            store: &state.store,
            cas: &cas,
        };
        let profile = authority::resolve_profile(&actx, &req.profile)?;
        authority::check_request_csr(&actx, &req, &profile).await?;
    }

    let mut processing = order.clone();
    processing.status = OrderStatus::Processing;
    // Claim the order in memory before it turns `processing` in the store,
    // so a concurrent read never mistakes it for an interrupted issuance.
    let Some(claim) = IssuingClaim::take(state, &order.id) else {
        return Err(already_finalizing());
    };
    // ... and in the store, so another replica that reads it `processing`
    // sees it in flight here (crate::leases), renewed while it runs.
    let Some(lease) = state
        .leases
        .hold(&crate::leases::order_lease(&order.id))
        .await?
    else {
        return Err(already_finalizing());
    };
    if !state
        .store
        .transition_order(&processing, OrderStatus::Ready)
        .await?
    {
        return Err(already_finalizing());
    }
    req.order = Some(processing);
    let st = state.clone();
    let task = tokio::spawn(async move {
        let r = complete_order(&st, &req).await;
        drop(lease);
        drop(claim);
        r
    });
    match tokio::time::timeout(FINALIZE_WAIT, task).await {
        Ok(Ok(Ok(done))) => Ok(Reply::json(StatusCode::OK, &render::order(ctx, &done))
            .location(ctx.order_url(&done.id))),
        Ok(Ok(Err(e))) => Err(e),
        Ok(Err(join)) => Err(AcmeError::internal(join)),
        Err(_elapsed) => {
            let current = state.store.get_order(id).await?.unwrap_or(order);
            Ok(Reply::json(StatusCode::OK, &render::order(ctx, &current))
                .location(ctx.order_url(id))
                .retry_after(1))
        }
    }
}

/// The answer to a finalize that finds its order already being finalized
/// (here or on another replica).
fn already_finalizing() -> AcmeError {
    AcmeError::new(
        ProblemType::OrderNotReady,
        "the order is already being finalized",
    )
}

/// This process's in-memory claim on an order being finalized
/// (`AppState::issuing`), released when dropped: on every early return and
/// when the issuance task ends.
struct IssuingClaim {
    state: Arc<AppState>,
    order_id: String,
}

impl IssuingClaim {
    /// The claim on `order_id`; `None` if this process holds it already.
    fn take(state: &Arc<AppState>, order_id: &str) -> Option<IssuingClaim> {
        state.issuing.begin(order_id).then(|| IssuingClaim {
            state: state.clone(),
            order_id: order_id.to_string(),
        })
    }
}

impl Drop for IssuingClaim {
    fn drop(&mut self) {
        self.state.issuing.end(&self.order_id);
    }
}

/// Issues through the authority for an order in `processing`: on success
/// the order is `valid` (written with the certificate); on failure it
/// becomes `invalid` with the problem.
async fn complete_order(state: &AppState, req: &IssuanceRequest) -> Result<OrderRecord, AcmeError> {
    let Some(order) = req.order.clone() else {
        return Err(AcmeError::internal("finalize without an order"));
    };
    match authority::issue(state, req).await {
        Ok(Outcome::Issued(issued)) => {
            let mut done = order;
            done.status = OrderStatus::Valid;
            done.cert_serial = Some(issued.record.serial);
            Ok(done)
        }
        // Held for approval: the order stays `processing` (with the
        // approval's id) until an approver decides; clients poll it.
        Ok(Outcome::Held(approval)) => {
            let mut held = order;
            held.approval_id = Some(approval.id);
            Ok(held)
        }
        Err(e) => {
            let e = AcmeError::from(e);
            let mut failed = order;
            failed.status = OrderStatus::Invalid;
            failed.error = Some(e.problem.to_json());
            let _ = state
                .store
                .transition_order(&failed, OrderStatus::Processing)
                .await;
            let _ = state.durable().await;
            Err(e)
        }
    }
}
