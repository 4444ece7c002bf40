//! ironseal wire formats: bytes in, typed values or typed errors out, no I/O.
//!
//! The [`acme`] module implements the ACME protocol (RFC 8555) objects the
//! server needs: JWK/JWS handling (RFC 7515, RFC 7517, RFC 7638), problem
//! documents (RFC 8555 §6.7, RFC 7807), ACME Renewal Information identifiers
//! (RFC 9773) and request payloads. The [`admin`] module decodes admin API
//! requests (routes, path parameters, queries, JSON bodies) into typed
//! values.
#![forbid(unsafe_code)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        reason = "tests are allowed to panic on unexpected failures"
    )
)]

pub mod acme;
pub mod admin;
pub mod backup;
pub mod est;
pub mod ocsp;
pub mod pkcs7;
pub mod scep;
