//! The one place ACME errors become problem documents (RFC 8555 §6.7,
//! RFC 7807). Inner layers return typed errors; handlers convert them here.

use ironseal_ca_core::csr::CsrError;
use ironseal_protocol::acme::jws::JwsError;
use ironseal_protocol::acme::problem::{Problem, ProblemType};
use ironseal_storage::StoreError;

/// An ACME request failure: a problem document plus, for 409 answers, the
/// URL of the conflicting resource (RFC 8555 §7.3.1, §7.3.5).
#[derive(Debug)]
pub struct AcmeError {
    /// Boxed: a problem document is large and errors travel through every
    /// `Result` in the handlers.
    pub problem: Box<Problem>,
    pub location: Option<String>,
    /// Seconds for a Retry-After header (rate limits, RFC 8555 §6.6).
    pub retry_after: Option<u64>,
}

impl AcmeError {
    /// A problem of `kind` with `detail` and the type's default status.
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> AcmeError {
        Self::from_problem(Problem::new(kind, detail.into()))
    }

    /// Wraps a ready problem document.
    pub fn from_problem(problem: Problem) -> AcmeError {
        AcmeError {
            problem: Box::new(problem),
            location: None,
            retry_after: None,
        }
    }

    pub fn malformed(detail: impl Into<String>) -> AcmeError {
        Self::new(ProblemType::Malformed, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> AcmeError {
        Self::new(ProblemType::Unauthorized, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> AcmeError {
        let mut e = Self::new(ProblemType::Malformed, detail);
        e.problem.status = 404;
        e
    }

    pub fn internal(detail: impl std::fmt::Display) -> AcmeError {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            ProblemType::ServerInternal,
            "the server hit an internal error; the request was not applied",
        )
    }

    /// `rateLimited` naming the limit, with Retry-After (RFC 8555 §6.6).
    pub fn rate_limited(r: crate::rate_limits::Refused) -> AcmeError {
        let mut e = Self::new(ProblemType::RateLimited, r.detail());
        e.retry_after = Some(r.retry_after.as_secs().max(1));
        e
    }

    /// Overrides the HTTP status.
    pub fn with_status(mut self, status: u16) -> AcmeError {
        self.problem.status = status;
        self
    }
}

impl From<JwsError> for AcmeError {
    fn from(e: JwsError) -> Self {
        AcmeError::from_problem(e.to_problem())
    }
}

impl From<CsrError> for AcmeError {
    fn from(e: CsrError) -> Self {
        AcmeError::new(ProblemType::BadCsr, e.to_string())
    }
}

impl From<StoreError> for AcmeError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::AlreadyRevoked => AcmeError::new(
                ProblemType::AlreadyRevoked,
                "certificate is already revoked",
            ),
            StoreError::AlreadyReplaced => AcmeError::new(
                ProblemType::AlreadyReplaced,
                "the certificate named in replaces was already replaced",
            )
            .with_status(409),
            StoreError::NotFound => AcmeError::not_found("no such resource"),
            // RFC 8555 §7.3.6: a deactivated account's requests are
            // unauthorized; a racing update or key change lost to the
            // deactivation.
            StoreError::AccountNotValid => AcmeError::unauthorized("the account is deactivated"),
            other => {
                crate::metrics::storage_error(crate::metrics::StorageOp::Request, &other);
                AcmeError::internal(other)
            }
        }
    }
}

/// The authority's errors as ACME problems (RFC 8555 §6.7).
impl From<crate::authority::AuthorityError> for AcmeError {
    fn from(e: crate::authority::AuthorityError) -> Self {
        use crate::authority::ErrorKind;
        let kind = match e.kind {
            ErrorKind::BadCsr | ErrorKind::BadKey | ErrorKind::ForbiddenKey => ProblemType::BadCsr,
            ErrorKind::RejectedName => ProblemType::RejectedIdentifier,
            ErrorKind::UnknownProfile | ErrorKind::ProfileNotAllowed => ProblemType::InvalidProfile,
            ErrorKind::Unauthorized | ErrorKind::Rejected => ProblemType::Unauthorized,
            ErrorKind::RateLimited => ProblemType::RateLimited,
            ErrorKind::Conflict => ProblemType::OrderNotReady,
            ErrorKind::AlreadyRevoked => ProblemType::AlreadyRevoked,
            ErrorKind::NotFound => return AcmeError::not_found(e.detail),
            ErrorKind::CaUnavailable | ErrorKind::Internal => ProblemType::ServerInternal,
        };
        AcmeError::new(kind, e.detail)
    }
}

impl From<ironseal_ca_core::error::CaError> for AcmeError {
    fn from(e: ironseal_ca_core::error::CaError) -> Self {
        use ironseal_ca_core::error::CaError;
        match e {
            CaError::NameConstraintViolation { name, reason } => AcmeError::new(
                ProblemType::RejectedIdentifier,
                format!("{name} is not allowed by the issuing CA's name constraints: {reason}"),
            ),
            other => AcmeError::internal(other),
        }
    }
}
