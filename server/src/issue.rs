//! Issuance orchestration: check a finalize CSR against the order and the
//! key policy, pick a unique serial, sign with the active issuing CA, and
//! record the certificate durably before the order turns `valid`.

use std::sync::Arc;

use ironseal_ca_core::csr::{check_csr, CheckedCsr, CsrError, CsrPolicy};
use ironseal_ca_core::issuance::{issue_leaf_with_options, LeafOptions};
use ironseal_ca_core::names::SubjectName;
use ironseal_ca_core::serial::Serial;
use ironseal_protocol::acme::problem::ProblemType;
use ironseal_protocol::acme::types::{Identifier, IdentifierKind, OrderStatus};
use ironseal_storage::{AccountRecord, CaStatus, CertificateRecord, OrderRecord, StoreError};
use time::OffsetDateTime;

use crate::acme::error::AcmeError;
use crate::acme::jwk_bits;
use crate::config::Profile;
use crate::state::{sha256_hex, AppState, IssuingCa};

/// How far notBefore is backdated to absorb relying parties' clock skew.
const BACKDATE: time::Duration = time::Duration::minutes(5);
/// Serial collisions tolerated before giving up (each is a 2^-127 event).
const SERIAL_ATTEMPTS: usize = 4;

/// Why issuance for an order failed.
#[derive(Debug)]
pub enum IssueError {
    Acme(AcmeError),
}

impl From<AcmeError> for IssueError {
    fn from(e: AcmeError) -> Self {
        IssueError::Acme(e)
    }
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

/// RFC 8555 §7.4: the CSR must be well formed, carry an acceptable key that
/// is not the account key nor a blocked one, and name exactly the order's
/// identifiers.
pub fn check_order_csr(
    state: &AppState,
    acct: &AccountRecord,
    order: &OrderRecord,
    csr_der: &[u8],
) -> Result<CheckedCsr, AcmeError> {
    let policy = CsrPolicy {
        allow_ed25519: true,
        ..CsrPolicy::default()
    };
    let checked = check_csr(csr_der, &policy)?;
    let profile = order_profile(state, order)?;
    if !profile.allows_key(checked.key) {
        return Err(AcmeError::new(
            ProblemType::BadCsr,
            format!(
                "profile {:?} does not accept {} keys; allowed key types: {}",
                profile.name,
                crate::config::KeyType::of(checked.key).as_str(),
                profile.key_types_list()
            ),
        ));
    }
    checked.require_names(&subject_names(&order.identifiers)?)?;
    let account_bits = jwk_bits(&acct.jwk)?;
    checked.require_key_differs(&account_bits)?;
    if state
        .store
        .is_key_blocked(&sha256_hex(&checked.public_key_bits))?
    {
        return Err(AcmeError::new(
            ProblemType::BadCsr,
            "the CSR's key was reported compromised (keyCompromise) and cannot be certified",
        ));
    }
    Ok(checked)
}

/// The issuance profile of an order: the one it names, or the default.
pub fn order_profile<'a>(
    state: &'a AppState,
    order: &OrderRecord,
) -> Result<&'a Profile, AcmeError> {
    match &order.profile {
        None => Ok(state.config.default_profile()),
        Some(name) => state.config.profile(name).ok_or_else(|| {
            AcmeError::new(
                ProblemType::InvalidProfile,
                format!("profile {name:?} is no longer offered by this server"),
            )
        }),
    }
}

/// The CA that signs under `profile`: its configured CA when that is an
/// active intermediate, else (no CA configured) the active issuing CA.
pub fn profile_issuer(state: &AppState, profile: &Profile) -> Result<Arc<IssuingCa>, AcmeError> {
    let Some(id) = &profile.ca else {
        return Ok(state.active_issuer());
    };
    let unusable = |why: &str| {
        AcmeError::new(
            ProblemType::ServerInternal,
            format!(
                "profile {:?} names CA {id:?}, which {why}; an operator must fix the profile",
                profile.name
            ),
        )
    };
    let record = state
        .store
        .get_ca(id)?
        .ok_or_else(|| unusable("does not exist"))?;
    if record.parent_id.is_none() {
        return Err(unusable("is a root, not an intermediate"));
    }
    if record.status != CaStatus::Active {
        return Err(unusable("is not active"));
    }
    state
        .ca_set()
        .by_id
        .get(id)
        .cloned()
        .ok_or_else(|| unusable("is not loaded"))
}

/// Signs the certificate for an order in `processing` and moves it to
/// `valid`; on failure the order becomes `invalid` with the problem.
pub async fn issue_for_order(
    state: &Arc<AppState>,
    order: OrderRecord,
    csr: CheckedCsr,
) -> Result<OrderRecord, IssueError> {
    match sign_and_store(state, &order, &csr) {
        Ok(serial_hex) => {
            let mut done = order.clone();
            done.status = OrderStatus::Valid;
            done.cert_serial = Some(serial_hex.clone());
            if !state
                .store
                .transition_order(&done, OrderStatus::Processing)?
            {
                return Err(AcmeError::internal("order left processing during issuance").into());
            }
            if let Some(replaces) = &order.replaces {
                mark_replaced(state, replaces, &order.id);
            }
            state.durable().await?;
            crate::metrics::on_issued(state, crate::metrics::Protocol::Acme, &order, &serial_hex);
            tracing::info!(order = %order.id, serial = %serial_hex, "certificate issued");
            Ok(done)
        }
        Err(e) => {
            crate::metrics::on_issue_failed(state, crate::metrics::Protocol::Acme, &order);
            let mut failed = order.clone();
            failed.status = OrderStatus::Invalid;
            failed.error = Some(e.problem.to_json());
            let _ = state
                .store
                .transition_order(&failed, OrderStatus::Processing);
            let _ = state.durable().await;
            Err(e.into())
        }
    }
}

/// Records that the certificate named by an ARI certID was replaced.
fn mark_replaced(state: &AppState, replaces: &str, order_id: &str) {
    let Ok(id) = ironseal_protocol::acme::ari::CertId::parse(replaces) else {
        return;
    };
    match state
        .store
        .mark_replaced(&hex::encode(&id.serial), order_id)
    {
        Ok(()) | Err(StoreError::AlreadyReplaced) => {}
        Err(e) => tracing::warn!(error = %e, "could not mark certificate replaced"),
    }
}

fn sign_and_store(
    state: &AppState,
    order: &OrderRecord,
    csr: &CheckedCsr,
) -> Result<String, AcmeError> {
    let profile = order_profile(state, order)?;
    let issuer = profile_issuer(state, profile)?;
    let now = OffsetDateTime::now_utc();
    let not_before = order.not_before.unwrap_or(now - BACKDATE);
    let not_after = order.not_after.unwrap_or(not_before + profile.lifetime);
    let options = LeafOptions::with_ekus(profile.ekus.clone());
    if not_after > issuer.issuer.not_after() {
        return Err(AcmeError::new(
            ProblemType::ServerInternal,
            "the issuing CA expires before the requested notAfter; an operator must rotate it",
        ));
    }
    let names = subject_names(&order.identifiers)?;
    for _ in 0..SERIAL_ATTEMPTS {
        let serial = Serial::from_random(rand::random());
        // With partitioned CRLs the certificate names the shard that will list it.
        let crl_url = crate::crl::crl_url_for(state, issuer.issuer.id(), &serial);
        let issued = issue_leaf_with_options(
            &issuer.issuer,
            csr,
            &names,
            serial.clone(),
            not_before,
            not_after,
            Some(&crl_url),
            &options,
        )?;
        let record = CertificateRecord {
            serial: serial.to_hex(),
            issuer_id: issuer.issuer.id().to_string(),
            account_id: order.account_id.clone(),
            order_id: order.id.clone(),
            der: issued.der,
            not_before: issued.not_before,
            not_after: issued.not_after,
            public_key_sha256: sha256_hex(&csr.public_key_bits),
            identifiers: order.identifiers.clone(),
            revocation: None,
            replaced_by: None,
            renew_early: false,
        };
        match state.store.insert_certificate(&record) {
            Ok(()) => return Ok(record.serial),
            Err(StoreError::DuplicateSerial) => {
                tracing::warn!(serial = %record.serial, "serial collision; drawing another");
                continue;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(AcmeError::internal("could not find a unique serial"))
}

impl From<CsrError> for IssueError {
    fn from(e: CsrError) -> Self {
        IssueError::Acme(e.into())
    }
}

impl From<StoreError> for IssueError {
    fn from(e: StoreError) -> Self {
        IssueError::Acme(e.into())
    }
}
