//! Complete CRLs (RFC 5280 §5): version 2, authorityKeyIdentifier (§5.2.1),
//! cRLNumber (§5.2.3), thisUpdate/nextUpdate (§5.1.2.4-5) and one entry
//! per revoked certificate with a reasonCode extension (§5.3.1), omitted
//! when the reason is unspecified as §5.3.1 recommends.
//!
//! [`build_partitioned_crl`] adds a critical issuingDistributionPoint
//! (§5.2.5) naming the partition's URL, as Boulder's sharded CRLs and
//! EJBCA's partitioned CRLs do: a relying party only accepts such a CRL for
//! certificates whose CRL distribution point names the same URL.

use rcgen::{
    CertificateRevocationListParams, CrlDistributionPoint, CrlIssuingDistributionPoint, CrlScope,
    KeyIdMethod, RevokedCertParams, SerialNumber,
};
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
    build(issuer, number, this_update, next_update, entries, None)
}

/// Who a partitioned CRL covers (issuingDistributionPoint, RFC 5280 §5.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// The distributionPoint fullName: the URL the partition is served at,
    /// identical to the CRL DP of the certificates it covers.
    pub url: String,
    /// onlyContainsUserCerts: true for an issuing CA whose subjects are all
    /// end entities (pathLen 0), false when it also certifies CAs.
    pub only_user_certs: bool,
}

/// Like [`build_crl`], for one partition (shard) of the issuer's
/// revocations, with a critical issuingDistributionPoint naming
/// `partition.url`. `entries` must be exactly the partition's revocations.
pub fn build_partitioned_crl(
    issuer: &Issuer,
    number: u64,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    entries: &[RevokedEntry],
    partition: &Partition,
) -> Result<Vec<u8>, CaError> {
    if partition.url.is_empty() || !partition.url.is_ascii() {
        return Err(CaError::InvalidRequest(
            "a CRL partition needs an ASCII URL".into(),
        ));
    }
    let idp = CrlIssuingDistributionPoint {
        distribution_point: CrlDistributionPoint {
            uris: vec![partition.url.clone()],
        },
        scope: partition.only_user_certs.then_some(CrlScope::UserCertsOnly),
    };
    build(issuer, number, this_update, next_update, entries, Some(idp))
}

fn build(
    issuer: &Issuer,
    number: u64,
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
    entries: &[RevokedEntry],
    issuing_distribution_point: Option<CrlIssuingDistributionPoint>,
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
        issuing_distribution_point,
        revoked_certs,
        key_identifier_method: KeyIdMethod::PreSpecified(issuer.key_identifier().to_vec()),
    };
    let crl = params.signed_by(&issuer.rcgen_issuer())?;
    Ok(crl.der().to_vec())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests panic on unexpected failures")]
mod tests {
    use time::Duration;

    use super::*;
    use crate::hierarchy::{create_root, CaProfile, IssuerUrls};
    use crate::keys::KeyAlgorithm;

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn partitions_carry_a_critical_idp() {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let profile = CaProfile {
            common_name: "crl test".into(),
            algorithm: KeyAlgorithm::EcdsaP256,
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(10),
            path_len: Some(0),
            ..Default::default()
        };
        let (k, d) = create_root(&profile, Serial::from_random([3; 16])).unwrap();
        let issuer = Issuer::new("t".into(), d, k, IssuerUrls::default()).unwrap();
        let entries = vec![RevokedEntry {
            serial: Serial::from_random([5; 16]),
            revoked_at: now - Duration::hours(1),
            reason: RevocationReason::KeyCompromise,
        }];
        let url = "http://127.0.0.1:8080/crl/t/3.crl";
        let next = now + Duration::hours(24);
        let part = |only_user_certs| Partition {
            url: url.into(),
            only_user_certs,
        };
        // id-ce-issuingDistributionPoint (2.5.29.28), critical TRUE.
        let idp_critical = [0x06, 0x03, 0x55, 0x1d, 0x1c, 0x01, 0x01, 0xff];
        // onlyContainsUserCerts [1] TRUE.
        let user_only = [0x81, 0x01, 0xff];

        let der = build_partitioned_crl(&issuer, 7, now, next, &entries, &part(true)).unwrap();
        assert!(contains(&der, &idp_critical));
        assert!(contains(&der, url.as_bytes()));
        assert!(contains(&der, &user_only));

        let der = build_partitioned_crl(&issuer, 8, now, next, &entries, &part(false)).unwrap();
        assert!(contains(&der, &idp_critical) && !contains(&der, &user_only));

        let full = build_crl(&issuer, 9, now, next, &entries).unwrap();
        assert!(!contains(&full, &[0x55, 0x1d, 0x1c]));

        let bad = Partition {
            url: String::new(),
            only_user_certs: true,
        };
        assert!(build_partitioned_crl(&issuer, 10, now, next, &entries, &bad).is_err());
    }
}
