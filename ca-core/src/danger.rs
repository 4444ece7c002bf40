//! **Test-only.** Operations that skip the pre-signing policy checks, so
//! tests can produce a certificate that violates its chain's constraints
//! and confirm that independent verifiers (e.g. `openssl verify`) reject
//! it. Never call these from the server: a CA that signs outside its name
//! constraints (RFC 5280 §4.2.1.10) issues certificates that relying
//! parties must reject, and may be misissuance under its CP/CPS.

use time::OffsetDateTime;

use crate::csr::CheckedCsr;
use crate::error::CaError;
use crate::hierarchy::Issuer;
use crate::issuance::{sign_leaf_with_options, IssuedCert, LeafOptions};
use crate::names::SubjectName;
use crate::serial::Serial;

/// **Test-only.** [`crate::issuance::issue_leaf`] without the
/// name-constraint check (validity, SAN syntax and the post-signing
/// self-check still apply).
pub fn issue_leaf_unchecked(
    issuer: &Issuer,
    csr: &CheckedCsr,
    identifiers: &[SubjectName],
    serial: Serial,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<IssuedCert, CaError> {
    sign_leaf_with_options(
        issuer,
        csr,
        identifiers,
        serial,
        not_before,
        not_after,
        None,
        &LeafOptions::default(),
    )
}
