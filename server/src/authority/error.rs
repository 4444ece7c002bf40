//! The authority's one typed error. Front ends map it to their wire format
//! in one place each: ACME problem documents (`acme/error.rs`), admin HTTP
//! statuses (`admin`), and later SCEP failInfo and EST statuses.

use ironseal_ca_core::csr::CsrError;
use ironseal_ca_core::error::CaError;
use ironseal_storage::StoreError;

/// What kind of failure, independent of any protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request (CSR) is malformed, its signature does not verify, or
    /// its names differ from those asked for.
    BadCsr,
    /// The key type or size is not accepted (by the profile or at all).
    BadKey,
    /// The key was reported compromised, or is the requester's own
    /// account key.
    ForbiddenKey,
    /// A name is outside the tenant's policy or a CA's name constraints.
    RejectedName,
    /// The profile does not exist.
    UnknownProfile,
    /// The requester's tenant may not use the profile.
    ProfileNotAllowed,
    /// The requester (or its tenant) may not issue at all.
    Unauthorized,
    /// An approver rejected the request.
    Rejected,
    /// Too many requests; retry later.
    RateLimited,
    /// The request changed state under us (an order left `processing`).
    Conflict,
    /// The certificate to revoke does not exist.
    NotFound,
    /// The certificate is already revoked.
    AlreadyRevoked,
    /// The signing CA cannot be used (retired, expired, misconfigured):
    /// an operator must act; the detail says what.
    CaUnavailable,
    /// Anything else (storage, signing); the detail is for logs.
    Internal,
}

impl ErrorKind {
    /// A stable lowercase name for logs, metrics and the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadCsr => "bad_csr",
            ErrorKind::BadKey => "bad_key",
            ErrorKind::ForbiddenKey => "forbidden_key",
            ErrorKind::RejectedName => "rejected_name",
            ErrorKind::UnknownProfile => "unknown_profile",
            ErrorKind::ProfileNotAllowed => "profile_not_allowed",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Rejected => "rejected",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Conflict => "conflict",
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyRevoked => "already_revoked",
            ErrorKind::CaUnavailable => "ca_unavailable",
            ErrorKind::Internal => "internal",
        }
    }
}

impl std::str::FromStr for ErrorKind {
    type Err = ();
    /// The inverse of [`ErrorKind::as_str`].
    fn from_str(s: &str) -> Result<Self, ()> {
        use ErrorKind::*;
        [
            BadCsr,
            BadKey,
            ForbiddenKey,
            RejectedName,
            UnknownProfile,
            ProfileNotAllowed,
            Unauthorized,
            Rejected,
            RateLimited,
            Conflict,
            NotFound,
            AlreadyRevoked,
            CaUnavailable,
            Internal,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or(())
    }
}

/// A failed issuance or revocation: a kind and a detail a client can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {detail}", kind.as_str())]
pub struct AuthorityError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Why, in words for the requester (never secrets).
    pub detail: String,
}

impl AuthorityError {
    /// An error of `kind` with `detail`.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> AuthorityError {
        AuthorityError {
            kind,
            detail: detail.into(),
        }
    }

    /// An internal error; the cause is logged, the requester gets a
    /// generic detail.
    pub fn internal(cause: impl std::fmt::Display) -> AuthorityError {
        tracing::error!(error = %cause, "authority: internal error");
        AuthorityError::new(
            ErrorKind::Internal,
            "the server hit an internal error; nothing was issued",
        )
    }
}

impl From<CsrError> for AuthorityError {
    fn from(e: CsrError) -> Self {
        let kind = match &e {
            CsrError::UnsupportedKey(_) | CsrError::WeakKey(_) => ErrorKind::BadKey,
            CsrError::KeyIsAccountKey => ErrorKind::ForbiddenKey,
            _ => ErrorKind::BadCsr,
        };
        AuthorityError::new(kind, e.to_string())
    }
}

impl From<StoreError> for AuthorityError {
    fn from(e: StoreError) -> Self {
        AuthorityError::internal(e)
    }
}

impl From<CaError> for AuthorityError {
    fn from(e: CaError) -> Self {
        match e {
            CaError::NameConstraintViolation { name, reason } => AuthorityError::new(
                ErrorKind::RejectedName,
                format!("{name} is not allowed by the issuing CA's name constraints: {reason}"),
            ),
            other => AuthorityError::internal(other),
        }
    }
}
