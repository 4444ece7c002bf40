//! The GetNextCACert answer (RFC 8894 §4.7.1, from
//! draft-nourse-scep §5.2.6): a SignedData signed by the RA whose content
//! is a degenerate certificates-only SignedData (RFC 8894 §3.4) with the
//! certificates that take over after a CA rollover. The signature lets a
//! client that trusts the current CA accept its successor before the
//! switch.

use std::time::Duration;

use aws_lc_rs::rand::SecureRandom;
use x509_cert::attr::Attributes;

use super::attributes::build;
use super::signer::sign_message;
use super::{DigestAlg, RaKey, ScepError};

/// Encodes the answer: `certs` (DER; the successor CA first) in a
/// degenerate SignedData, signed by `ra` with SHA-256 at `now` (since the
/// Unix epoch).
pub fn next_ca_cert(
    certs: &[&[u8]],
    ra: &RaKey,
    now: Duration,
    rng: &dyn SecureRandom,
) -> Result<Vec<u8>, ScepError> {
    let degenerate = crate::pkcs7::degenerate(certs, &[]).map_err(build)?;
    sign_message(
        Attributes::new(),
        Some(degenerate),
        ra,
        DigestAlg::Sha256,
        now,
        rng,
    )
}
