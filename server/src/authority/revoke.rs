//! The authority's revocation entry point, shared by ACME revokeCert
//! (RFC 8555 §7.6) and the admin API (and later SCEP and EST): the store write, the key block on keyCompromise, the audit
//! entry, durability, and dropping the cached CRL and OCSP responses.
//!
//! Split in two halves so a bulk revocation pays one disk sync:
//! [`revoke_staged`] writes (visible at once, not yet durable), then the caller makes
//! the writes durable ([`AppState::durable`]) and calls [`publish`] for each
//! staged record. [`revoke`] does all three for one certificate.

use ironseal_ca_core::revocation::RevocationReason;
use ironseal_storage::{
    AuditEvent, CertificateRecord, RevocationRecord, RevocationWrite, StoreError,
};
use time::OffsetDateTime;

use super::error::{AuthorityError, ErrorKind};
use crate::state::AppState;

fn revoke_error(e: StoreError) -> AuthorityError {
    match e {
        StoreError::AlreadyRevoked => {
            AuthorityError::new(ErrorKind::AlreadyRevoked, "certificate is already revoked")
        }
        StoreError::NotFound => {
            AuthorityError::new(ErrorKind::NotFound, "no certificate with that serial")
        }
        other => AuthorityError::internal(other),
    }
}

/// The RFC 5280 §5.3.1 name of a reason code.
pub fn reason_name(reason: RevocationReason) -> &'static str {
    match reason {
        RevocationReason::Unspecified => "unspecified",
        RevocationReason::KeyCompromise => "keyCompromise",
        RevocationReason::CaCompromise => "cACompromise",
        RevocationReason::AffiliationChanged => "affiliationChanged",
        RevocationReason::Superseded => "superseded",
        RevocationReason::CessationOfOperation => "cessationOfOperation",
        RevocationReason::CertificateHold => "certificateHold",
        RevocationReason::RemoveFromCrl => "removeFromCRL",
        RevocationReason::PrivilegeWithdrawn => "privilegeWithdrawn",
        RevocationReason::AaCompromise => "aACompromise",
    }
}

/// A reason from its RFC 5280 name (case-insensitive) or decimal code.
pub fn parse_reason(s: &str) -> Option<RevocationReason> {
    if let Ok(code) = s.parse::<u8>() {
        return RevocationReason::try_from(code).ok();
    }
    (0u8..=10)
        .filter_map(|c| RevocationReason::try_from(c).ok())
        .find(|r| reason_name(*r).eq_ignore_ascii_case(s))
}

/// Writes the revocation of `record` (and blocks its key on
/// keyCompromise), bumps its issuer's CRL generation (every replica
/// rebuilds the CA's CRLs before serving them again, `crate::crl`) and
/// records it in the audit log as done by `actor`: one atomic store write
/// ([`RevocationWrite`]), so a crash or a racing replica never leaves a
/// revocation without its audit entry or its blocked key. Visible at
/// once; durable only after [`AppState::durable`].
pub async fn revoke_staged(
    state: &AppState,
    record: &CertificateRecord,
    reason: RevocationReason,
    actor: &str,
) -> Result<RevocationRecord, AuthorityError> {
    let rev = RevocationRecord {
        revoked_at: OffsetDateTime::now_utc(),
        reason,
    };
    let key_compromise = reason == RevocationReason::KeyCompromise;
    let write = RevocationWrite {
        serial: record.serial.clone(),
        revocation: rev,
        block_key: key_compromise.then(|| record.public_key_sha256.clone()),
        issuer_id: record.issuer_id.clone(),
        audit: AuditEvent {
            at: rev.revoked_at,
            actor: actor.to_string(),
            action: "certificate.revoke".into(),
            summary: format!(
                "serial={} issuer={} reason={}{}",
                record.serial,
                record.issuer_id,
                reason_name(reason),
                if key_compromise { " key blocked" } else { "" }
            ),
            outcome: None,
        },
    };
    state
        .store
        .record_revocation(&write)
        .await
        .map_err(revoke_error)?;
    Ok(rev)
}

/// After the staged writes are durable: drops the cached CRL and OCSP
/// responses of the certificate so relying parties see the revocation.
pub async fn publish(state: &AppState, record: &CertificateRecord, reason: RevocationReason) {
    state.invalidate_crl(&record.issuer_id);
    state.ocsp.invalidate(&record.issuer_id, &record.serial);
    crate::metrics::on_revoked(state, record).await;
    tracing::info!(serial = %record.serial, reason = ?reason, "certificate revoked");
}

/// Revokes one certificate: [`revoke_staged`], make durable, [`publish`].
pub async fn revoke(
    state: &AppState,
    record: &CertificateRecord,
    reason: RevocationReason,
    actor: &str,
) -> Result<RevocationRecord, AuthorityError> {
    let rev = revoke_staged(state, record, reason, actor).await?;
    state
        .durable()
        .await
        .map_err(|e| AuthorityError::internal(e.problem.detail))?;
    publish(state, record, reason).await;
    let protocol = if actor.starts_with("acme:") {
        crate::metrics::Protocol::Acme
    } else {
        crate::metrics::Protocol::Admin
    };
    state
        .metrics
        .certificate_revoked(protocol, reason_name(reason));
    Ok(rev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_by_name_and_code() {
        assert_eq!(
            parse_reason("keyCompromise"),
            Some(RevocationReason::KeyCompromise)
        );
        assert_eq!(
            parse_reason("keycompromise"),
            Some(RevocationReason::KeyCompromise)
        );
        assert_eq!(parse_reason("1"), Some(RevocationReason::KeyCompromise));
        assert_eq!(
            parse_reason("removeFromCRL"),
            Some(RevocationReason::RemoveFromCrl)
        );
        assert_eq!(parse_reason("7"), None);
        assert_eq!(parse_reason("bogus"), None);
        for c in [0u8, 1, 2, 3, 4, 5, 6, 8, 9, 10] {
            let r = RevocationReason::try_from(c).ok();
            assert!(r.is_some());
            if let Some(r) = r {
                assert_eq!(parse_reason(reason_name(r)), Some(r));
            }
        }
    }
}
