//! The authority: the one path every front end calls to issue and to
//! revoke (the shape of Boulder's registration authority, inside one
//! process). ACME finalize, the admin API, the HTTPS listener certificate,
//! and the SCEP and EST handlers build an [`IssuanceRequest`] and call
//! [`issue`] (request handlers) or [`issue_own`] (the server's own
//! certificates);
//! revocation goes through [`revoke`]. Nothing else signs a leaf with a CA
//! key, and every signature leaves an entry in the hash-chained audit log,
//! written in the same store transaction as the certificate.
//!
//! Failures are one typed [`AuthorityError`]; each front end maps it to its
//! wire format in one place.

pub mod approvals;
pub mod ca_ops;
mod error;
mod issue;
pub mod keygen;
pub mod registry;
mod request;
pub mod revoke;
pub mod signing;
pub mod tenant;

use std::sync::Arc;

use ironseal_ca_core::names::SubjectName;
use ironseal_storage::{Identifier, Store};
use time::OffsetDateTime;

pub use error::{AuthorityError, ErrorKind};
pub use issue::{check_request_csr, profile_issuer, resolve_profile, Issued, Outcome, BACKDATE};
pub use request::{IssuanceRequest, ProfileChoice, Requester, ServerPurpose, Validity};
pub use revoke::{parse_reason, publish, reason_name, revoke, revoke_staged};

use crate::config::Config;
pub use registry::{CaSet, IssuingCa};

use crate::state::AppState;

/// What the pipeline reads: configuration (profiles, URLs), the store and
/// the CA material in force. Borrowed, so the server can issue its own
/// listener certificate before the rest of its state exists.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// The configuration.
    pub config: &'a Config,
    /// The store (an `Arc`, so that a flush can run on a blocking thread).
    pub store: &'a Arc<dyn Store>,
    /// The CAs in force.
    pub cas: &'a CaSet,
}

/// Issues from an async handler: runs the pipeline, then waits until the
/// certificate, its order and its audit entry are durable (group commit)
/// before returning, so nothing a client receives can be lost.
pub async fn issue(state: &AppState, req: &IssuanceRequest) -> Result<Outcome, AuthorityError> {
    let cas = state.ca_set();
    let ctx = Ctx {
        config: &state.config,
        store: &state.store,
        cas: &cas,
    };
    let outcome = match issue::prepare_and_sign(&ctx, req, OffsetDateTime::now_utc()).await {
        Ok(o) => o,
        Err(e) => {
            let profile = match &req.profile {
                ProfileChoice::Configured(Some(p)) => p.clone(),
                ProfileChoice::Configured(None) => state.config.default_profile().name.clone(),
                ProfileChoice::Builtin(p) => p.name.clone(),
            };
            crate::metrics::on_issue_failed(
                state,
                req.requester.protocol(),
                &profile,
                req.tenant.as_deref(),
            );
            return Err(e);
        }
    };
    state
        .durable()
        .await
        .map_err(|e| AuthorityError::internal(e.problem.detail))?;
    if let Outcome::Issued(issued) = &outcome {
        crate::metrics::on_issued(state, &issued.record, req.replaces.as_deref()).await;
        tracing::info!(
            serial = %issued.record.serial,
            requester = %issued.record.origin.requester,
            profile = %issued.record.origin.profile,
            "certificate issued"
        );
    }
    Ok(outcome)
}

/// Issues the server's own certificates (at start, before the server
/// state exists, and from housekeeping): the same pipeline, made durable
/// with a direct flush (on a blocking thread, see
/// [`crate::durability::flush`]). Such requests are never held for
/// approval.
pub async fn issue_own(
    ctx: &Ctx<'_>,
    req: &IssuanceRequest,
    now: OffsetDateTime,
) -> Result<Issued, AuthorityError> {
    let outcome = issue::prepare_and_sign(ctx, req, now).await?;
    crate::durability::flush(ctx.store).await?;
    match outcome {
        Outcome::Issued(issued) => Ok(*issued),
        Outcome::Held(a) => Err(AuthorityError::internal(format!(
            "a server certificate request was held for approval {}",
            a.id
        ))),
    }
}

/// The stored identifiers (ACME form) of the DNS and IP names; URI and
/// email names have no ACME identifier type and are left out.
pub fn identifiers_of(names: &[SubjectName]) -> Vec<Identifier> {
    names
        .iter()
        .filter_map(|n| match n {
            SubjectName::Dns(d) => Some(Identifier::dns(d)),
            SubjectName::Ip(ip) => Some(Identifier::ip(ip.to_string())),
            SubjectName::Uri(_) | SubjectName::Email(_) => None,
        })
        .collect()
}

/// The names for an audit summary, bounded (a request may carry many).
pub fn names_summary(names: &[SubjectName]) -> String {
    const SHOWN: usize = 8;
    let mut out: Vec<String> = names.iter().take(SHOWN).map(ToString::to_string).collect();
    if names.len() > SHOWN {
        out.push(format!("+{} more", names.len() - SHOWN));
    }
    out.join(",")
}
