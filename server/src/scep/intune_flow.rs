//! The SCEP side of Intune validation: what a PKCSReq on a path with
//! `challenge_kind = "intune"` asks of [`super::intune`], and how Intune's
//! answer becomes a SCEP answer. A rejected challenge issues nothing, is
//! answered FAILURE with the verdict's failInfo, and Intune hears
//! `failureNotification`.

use std::sync::Arc;

use aws_lc_rs::digest::{digest, SHA1_FOR_LEGACY_USE_ONLY};
use ironseal_protocol::scep::FailInfo;
use ironseal_storage::{ApprovalRecord, ApprovalStatus, CertificateRecord, ScepTransactionState};

use super::intune::wire::{Issued, Verdict};
use super::intune::IntuneClient;
use crate::state::AppState;

/// Asks Intune to validate the request. `Ok`: validated, notify the
/// outcome later; `Err`: the failInfo to answer with.
pub async fn validate(
    state: &Arc<AppState>,
    tx_id: &str,
    csr: &[u8],
) -> Result<Arc<IntuneClient>, FailInfo> {
    let Some(client) = state.scep_intune.clone() else {
        tracing::error!("SCEP path wants Intune validation but [scep.intune] is not configured");
        return Err(FailInfo::BadRequest);
    };
    match client.validate(&state.metrics, tx_id, csr).await {
        Ok(Verdict::Valid) => {
            tracing::info!(transaction = %tx_id, "Intune validated the SCEP request");
            Ok(client)
        }
        Ok(v @ Verdict::Rejected { .. }) => {
            let info = v.fail_info().unwrap_or(FailInfo::BadRequest);
            let Verdict::Rejected { code, description } = v else {
                return Err(info);
            };
            tracing::info!(transaction = %tx_id, %code, %description, "Intune rejected the SCEP request");
            let why = format!("Intune rejected the challenge: {code}");
            if let Err(e) = client
                .notify_failure(&state.metrics, tx_id, csr, &why)
                .await
            {
                tracing::warn!(error = %e, transaction = %tx_id, "Intune failure notification failed");
            }
            Err(info)
        }
        Err(e) => {
            tracing::warn!(error = %e, transaction = %tx_id, "Intune validation unavailable; nothing issued");
            Err(FailInfo::BadRequest)
        }
    }
}

/// What a success notification reports about an issued certificate.
pub fn issued_facts(record: &CertificateRecord) -> Issued {
    use der::Decode;
    let issuer = x509_cert::Certificate::from_der(&record.der)
        .map(|c| c.tbs_certificate().issuer().to_string())
        .unwrap_or_default();
    let expires = record
        .not_after
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    Issued {
        thumbprint: hex::encode_upper(digest(&SHA1_FOR_LEGACY_USE_ONLY, &record.der).as_ref()),
        serial: record.serial.clone(),
        expires,
        issuer,
    }
}

/// Reports an approver's decision on a SCEP request that Intune validated
/// and the approval queue held: `successNotification` once the approved
/// request is issued, `failureNotification` when it was rejected or its
/// issuance failed. Intune hears of the outcome when it is decided, not
/// when the device next polls (which may be never). Anything else (not a
/// SCEP approval, not Intune-validated, Intune not configured) is a no-op;
/// a notification Intune does not take is logged and counted, the
/// decision stands.
pub async fn after_decision(state: &AppState, approval: &ApprovalRecord) {
    if approval.protocol != "scep" || approval.status == ApprovalStatus::Pending {
        return;
    }
    let Some(tx_id) = approval.requester.strip_prefix("scep:") else {
        return;
    };
    let validated = match state.store.get_scep_transaction(tx_id).await {
        Ok(Some(r)) => matches!(
            &r.state,
            ScepTransactionState::Held { approval_id, intune: true } if *approval_id == approval.id
        ),
        Ok(None) => false,
        Err(e) => {
            tracing::error!(error = %e, transaction = %tx_id, "SCEP transaction lookup failed; Intune not notified");
            return;
        }
    };
    let Some(client) = state.scep_intune.clone().filter(|_| validated) else {
        return;
    };
    let issued = match &approval.cert_serial {
        Some(serial) => match state.store.get_certificate(serial).await {
            Ok(Some(record)) => Some(record),
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, %serial, "certificate lookup failed; Intune not notified");
                return;
            }
        },
        None => None,
    };
    let sent = match issued {
        Some(record) => {
            let facts = issued_facts(&record);
            client
                .notify_success(&state.metrics, tx_id, &approval.csr_der, &facts)
                .await
        }
        None => {
            let why = match (&approval.status, &approval.error) {
                (ApprovalStatus::Rejected, _) => format!(
                    "rejected by {}",
                    approval.decided_by.as_deref().unwrap_or("an approver")
                ),
                (_, Some(e)) => format!("certificate not issued: {e}"),
                _ => "certificate not issued".to_string(),
            };
            client
                .notify_failure(&state.metrics, tx_id, &approval.csr_der, &why)
                .await
        }
    };
    if let Err(e) = sent {
        tracing::warn!(error = %e, transaction = %tx_id, "Intune notification after the approval decision failed");
    }
}
