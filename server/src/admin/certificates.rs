//! Certificates through the admin API: read, mark for early renewal (RFC
//! 9773 §4.2), revoke one, revoke in bulk (one disk sync for the batch).

use std::sync::Arc;

use hyper::StatusCode;
use ironseal_ca_core::revocation::RevocationReason;
use ironseal_protocol::admin::{normalize_serial, BulkRequest, ReasonInput, RevokeRequest};
use ironseal_storage::CertificateRecord;
use serde_json::{json, Value};

use super::auth::Principal;
use super::routes::BULK_MAX_SERIALS;
use super::{Answer, ApiError};
use crate::acme::render::ts;
use crate::authority::{self, parse_reason, reason_name, AuthorityError, ErrorKind};
use crate::state::AppState;

/// Most audit entries returned by one call.
use super::handlers::parse_body;

pub(super) fn cert_json(c: &CertificateRecord) -> Value {
    json!({
        "serial": c.serial,
        "issuer": c.issuer_id,
        "account": c.account_id,
        "notBefore": ts(c.not_before),
        "notAfter": ts(c.not_after),
        "identifiers": c.identifiers,
        "revoked": c.revocation.as_ref().map(|r| json!({
            "at": ts(r.revoked_at),
            "reason": r.reason,
            "reasonName": reason_name(r.reason),
        })),
        "replacedBy": c.replaced_by,
        "renewEarly": c.renew_early,
        "protocol": c.origin.protocol,
        "requester": c.origin.requester,
        "tenant": c.origin.tenant_id,
        "profile": c.origin.profile,
        "certificatePem": ironseal_ca_core::cert::pem_encode("CERTIFICATE", &c.der),
    })
}

/// The certificate `serial` if it exists and the caller may see it (a
/// tenant-scoped key sees its tenant's certificates only; others are
/// `not_found`, so scoping reveals nothing).
pub(super) async fn load_certificate(
    state: &AppState,
    caller: &Principal,
    serial: &str,
) -> Result<CertificateRecord, ApiError> {
    let missing = || ApiError::not_found("no certificate with that serial");
    let serial = normalize_serial(serial).ok_or_else(missing)?;
    state
        .store
        .get_certificate(&serial)
        .await?
        .filter(|c| caller.may_touch(c.origin.tenant_id.as_deref()))
        .ok_or_else(missing)
}

pub(super) async fn get_certificate(
    state: &AppState,
    caller: &Principal,
    serial: &str,
) -> Result<Answer, ApiError> {
    Ok(Answer::ok(cert_json(
        &load_certificate(state, caller, serial).await?,
    )))
}

pub(super) async fn renew_early(
    state: &AppState,
    caller: &Principal,
    serial: &str,
) -> Result<Answer, ApiError> {
    let mut c = load_certificate(state, caller, serial).await?;
    c.renew_early = true;
    state.store.update_certificate(&c).await?;
    Ok(Answer::ok(cert_json(&c)))
}

pub(super) fn admin_reason(input: Option<ReasonInput>) -> Result<RevocationReason, ApiError> {
    let reason = match input {
        None => RevocationReason::Unspecified,
        Some(ReasonInput::Code(c)) => RevocationReason::try_from(c)
            .map_err(|_| ApiError::bad_request(format!("{c} is not an RFC 5280 reason code")))?,
        Some(ReasonInput::Name(n)) => parse_reason(&n)
            .ok_or_else(|| ApiError::bad_request(format!("{n:?} is not an RFC 5280 reason")))?,
    };
    match reason {
        // Revocation here is final and CRLs are full CRLs: no hold, no
        // delta-CRL removal.
        RevocationReason::CertificateHold | RevocationReason::RemoveFromCrl => {
            Err(ApiError::bad_request(format!(
                "reason {} is not supported (revocation is permanent)",
                reason_name(reason)
            )))
        }
        r => Ok(r),
    }
}

pub(super) async fn revoke_one(
    state: &Arc<AppState>,
    caller: &Principal,
    serial: &str,
    body: &[u8],
) -> Result<Answer, ApiError> {
    let req: RevokeRequest = parse_body(body)?;
    let reason = admin_reason(req.reason)?;
    let record = load_certificate(state, caller, serial).await?;
    if record.revocation.is_some() {
        return Err(AuthorityError::new(
            ErrorKind::AlreadyRevoked,
            "certificate is already revoked",
        )
        .into());
    }
    authority::revoke(state, &record, reason, &caller.actor()).await?;
    let updated = load_certificate(state, caller, &record.serial).await?;
    Ok(Answer {
        status: StatusCode::OK,
        body: cert_json(&updated),
        note: Some(format!("revoked {}", record.serial)),
    })
}

pub(super) async fn bulk_revoke(
    state: &Arc<AppState>,
    caller: &Principal,
    body: &[u8],
) -> Result<Answer, ApiError> {
    let req: BulkRequest = parse_body(body)?;
    let reason = admin_reason(req.reason)?;
    if req.serials.is_empty() {
        return Err(ApiError::bad_request("serials is empty"));
    }
    if req.serials.len() > BULK_MAX_SERIALS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "too_many_serials",
            format!(
                "{} serials; at most {BULK_MAX_SERIALS} per call",
                req.serials.len()
            ),
        ));
    }
    let actor = caller.actor();
    // Up to 10,000 certificates, each a few store calls, awaited in turn;
    // one durable flush covers them all.
    let (results, staged) = {
        let mut results = Vec::with_capacity(req.serials.len());
        let mut staged = Vec::new();
        for given in &req.serials {
            let outcome = match normalize_serial(given) {
                None => "invalid_serial",
                Some(serial) => match state.store.get_certificate(&serial).await {
                    Ok(None) => "not_found",
                    Ok(Some(r)) if !caller.may_touch(r.origin.tenant_id.as_deref()) => "not_found",
                    Ok(Some(r)) if r.revocation.is_some() => "already_revoked",
                    Ok(Some(r)) => {
                        match authority::revoke_staged(state, &r, reason, &actor).await {
                            Ok(_) => {
                                staged.push(r);
                                "revoked"
                            }
                            Err(e) if e.kind == ErrorKind::AlreadyRevoked => "already_revoked",
                            Err(e) if e.kind == ErrorKind::NotFound => "not_found",
                            Err(e) => {
                                tracing::error!(serial = %serial, error = %e, "bulk revocation failed");
                                "error"
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!(serial = %serial, error = %e, "bulk revocation lookup failed");
                        "error"
                    }
                },
            };
            results.push(json!({ "serial": given, "outcome": outcome }));
        }
        (results, staged)
    };
    if !staged.is_empty() {
        state
            .durable()
            .await
            .map_err(|e| ApiError::internal(e.problem.detail))?;
        for r in &staged {
            authority::publish(state, r, reason).await;
            state
                .metrics
                .certificate_revoked(crate::metrics::Protocol::Admin, reason_name(reason));
        }
    }
    let count = |o: &str| results.iter().filter(|r| r["outcome"] == o).count();
    let note = format!(
        "revoked {} of {} (already_revoked {}, not_found {}, invalid {}, error {})",
        staged.len(),
        results.len(),
        count("already_revoked"),
        count("not_found"),
        count("invalid_serial"),
        count("error"),
    );
    Ok(Answer {
        status: StatusCode::OK,
        body: json!({
            "reason": reason_name(reason),
            "revoked": staged.len(),
            "results": results,
        }),
        note: Some(note),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn reasons() {
        assert_eq!(
            admin_reason(Some(ReasonInput::Name("keyCompromise".into()))).unwrap(),
            RevocationReason::KeyCompromise
        );
        assert_eq!(
            admin_reason(Some(ReasonInput::Code(4))).unwrap(),
            RevocationReason::Superseded
        );
        assert_eq!(admin_reason(None).unwrap(), RevocationReason::Unspecified);
        assert!(admin_reason(Some(ReasonInput::Code(7))).is_err());
        assert!(admin_reason(Some(ReasonInput::Code(6))).is_err());
        assert!(admin_reason(Some(ReasonInput::Name("nope".into()))).is_err());
    }

    #[test]
    fn bodies_reject_unknown_fields() {
        assert!(parse_body::<RevokeRequest>(br#"{"reason": 1}"#).is_ok());
        assert!(parse_body::<RevokeRequest>(b"").is_ok());
        let e = parse_body::<RevokeRequest>(br#"{"reason": 1, "x": 2}"#)
            .err()
            .unwrap();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(
            parse_body::<BulkRequest>(br#"{"serials": ["ab"], "reason": "superseded"}"#).is_ok()
        );
    }

    #[test]
    fn serials() {
        assert_eq!(normalize_serial("0A:bC").as_deref(), Some("0abc"));
        assert_eq!(normalize_serial("abc").as_deref(), Some("0abc"));
        assert_eq!(normalize_serial("000d7d").as_deref(), Some("0d7d"));
        assert_eq!(normalize_serial("8f01").as_deref(), Some("008f01"));
        assert_eq!(normalize_serial("008F01").as_deref(), Some("008f01"));
        assert_eq!(normalize_serial("7f").as_deref(), Some("7f"));
        assert_eq!(normalize_serial("0").as_deref(), Some("00"));
        assert_eq!(normalize_serial("xyz"), None);
        assert_eq!(normalize_serial(""), None);
    }
}
