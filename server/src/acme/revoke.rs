//! revokeCert (RFC 8555 §7.6): signed either by the account that owns the
//! certificate (kid) or by the certificate's own key (jwk).

use std::sync::Arc;

use hyper::StatusCode;
use ironseal_ca_core::cert::cert_public_key_bits;
use ironseal_ca_core::revocation::RevocationReason;
use ironseal_protocol::acme::problem::ProblemType;
use ironseal_protocol::acme::requests::RevokeRequest;

use super::error::AcmeError;
use super::order::base64_url_decode;
use super::{Authed, Reply};
use crate::state::AppState;

/// Reason codes a subscriber may give (RFC 5280 §5.3.1; the CA-only codes
/// cACompromise, certificateHold, removeFromCRL, privilegeWithdrawn and
/// aACompromise are refused, as Boulder does).
fn subscriber_reason(code: Option<u8>) -> Result<RevocationReason, AcmeError> {
    let code = code.unwrap_or(0);
    let reason = RevocationReason::try_from(code).map_err(|_| {
        AcmeError::new(
            ProblemType::BadRevocationReason,
            format!("{code} is not an RFC 5280 reason code"),
        )
    })?;
    match code {
        0 | 1 | 3 | 4 | 5 => Ok(reason),
        _ => Err(AcmeError::new(
            ProblemType::BadRevocationReason,
            format!("reason code {code} may not be requested by a subscriber; use 0, 1, 3, 4 or 5"),
        )),
    }
}

/// POST revokeCert.
pub async fn revoke_cert(state: &Arc<AppState>, a: Authed) -> Result<Reply, AcmeError> {
    let req: RevokeRequest = a.jws.payload_json()?;
    let reason = subscriber_reason(req.reason)?;
    let der = base64_url_decode(&req.certificate)
        .ok_or_else(|| AcmeError::malformed("certificate is not base64url DER"))?;
    let serial = ironseal_ca_core::cert::cert_serial(&der)
        .map_err(|_| AcmeError::malformed("certificate is not a DER X.509 certificate"))?;
    let record = state
        .store
        .get_certificate(&serial.to_hex())
        .await?
        .filter(|r| r.der == der)
        .ok_or_else(|| AcmeError::not_found("this server did not issue that certificate"))?;
    match &a.account {
        Some(acct) => {
            if record.account_id != acct.id {
                return Err(AcmeError::unauthorized(
                    "the account that signed this request does not own the certificate",
                ));
            }
        }
        None => {
            let cert_bits = cert_public_key_bits(&der)
                .map_err(|_| AcmeError::malformed("cannot read the certificate's public key"))?;
            if cert_bits != a.jwk.public_key_bits() {
                return Err(AcmeError::unauthorized(
                    "the JWS key is not the certificate's key",
                ));
            }
        }
    }
    if record.revocation.is_some() {
        return Err(AcmeError::new(
            ProblemType::AlreadyRevoked,
            "certificate is already revoked",
        ));
    }
    let actor = match &a.account {
        Some(acct) => format!("acme:{}", acct.id),
        None => "acme:certificate-key".to_string(),
    };
    crate::authority::revoke(state, &record, reason, &actor).await?;
    Ok(Reply::empty(StatusCode::OK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriber_reasons() {
        assert!(subscriber_reason(None).is_ok());
        for ok in [0u8, 1, 3, 4, 5] {
            assert!(subscriber_reason(Some(ok)).is_ok(), "{ok}");
        }
        for bad in [2u8, 6, 7, 8, 9, 10, 11, 200] {
            assert!(subscriber_reason(Some(bad)).is_err(), "{bad}");
        }
    }
}
