//! ironseal CA core: keys, sealed key storage, serial numbers, CA hierarchy,
//! PKCS#10 policy (RFC 2986), leaf issuance and CRL building (RFC 5280).
//!
//! This crate performs no I/O: time and randomness come in as arguments
//! (key generation inside aws-lc-rs is the one exception).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cert;
pub mod constraints;
pub mod crl;
pub mod csr;
#[doc(hidden)]
pub mod danger;
pub mod error;
pub mod hierarchy;
pub mod hierarchy_ops;
pub mod issuance;
pub mod keys;
pub mod ms_sid;
pub mod name_policy;
pub mod names;
pub mod ocsp;
pub mod profile;
pub mod revocation;
pub mod sealed;
pub mod serial;
pub mod spiffe;
pub mod subject;

mod der_util;

pub use error::CaError;
