//! Complete CRLs (RFC 5280 §5): version 2, authorityKeyIdentifier (§5.2.1),
//! cRLNumber (§5.2.3), thisUpdate/nextUpdate (§5.1.2.4-5) and one entry
//! per revoked certificate with a reasonCode extension (§5.3.1), omitted
//! when the reason is unspecified as §5.3.1 recommends.

use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevokedCertParams, SerialNumber};
use time::OffsetDateTime;

use crate::error::CaError;
use crate::hierarchy::Issuer;
use crate::revocation::RevocationReason;
use crate::serial::Serial;

/// One revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Serial of the revoked certificate.
    pub serial: Serial,
    /// revocationDate (RFC 5280 §5.1.2.6).
    pub revoked_at: OffsetDateTime,
    /// CRLReason (RFC 5280 §5.3.1).
    pub reason: RevocationReason,
}

/// Builds and signs a complete CRL for `issuer`.
///
/// Errors if `next_update ≤ this_update`, if the issuer lacks cRLSign, or
/// if an entry carries removeFromCRL, which RFC 5280 §5.3.1 reserves for
/// delta CRLs.
pub fn build_crl(
    issuer: &Issuer,
    number: u64,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    entries: &[RevokedEntry],
) -> Result<Vec<u8>, CaError> {
    if next_update <= this_update {
        return Err(CaError::InvalidValidity(
            "nextUpdate must follow thisUpdate".into(),
        ));
    }
    let mut revoked_certs = Vec::with_capacity(entries.len());
    for e in entries {
        let reason_code = match e.reason {
            RevocationReason::Unspecified => None,
            RevocationReason::RemoveFromCrl => {
                return Err(CaError::InvalidRequest(
                    "removeFromCRL is only valid in delta CRLs".into(),
                ))
            }
            r => Some(r.to_rcgen()),
        };
        revoked_certs.push(RevokedCertParams {
            serial_number: e.serial.to_rcgen(),
            revocation_time: e.revoked_at,
            reason_code,
            invalidity_date: None,
        });
    }
    let params = CertificateRevocationListParams {
        this_update,
        next_update,
        crl_number: SerialNumber::from(number),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::PreSpecified(issuer.key_identifier().to_vec()),
    };
    let crl = params.signed_by(&issuer.rcgen_issuer())?;
    Ok(crl.der().to_vec())
}
