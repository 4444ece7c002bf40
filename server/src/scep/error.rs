//! The one place where the authority's errors become SCEP failInfo codes
//! (RFC 8894 §3.2.1.4). Whatever the reason, nothing was issued.

use ironseal_protocol::scep::FailInfo;

use crate::authority::{AuthorityError, ErrorKind};

/// The failInfo a CertRep carries for an authority refusal.
pub fn fail_info(e: &AuthorityError) -> FailInfo {
    match e.kind {
        // The CSR or its key is not acceptable.
        ErrorKind::BadCsr | ErrorKind::RejectedName => FailInfo::BadRequest,
        ErrorKind::BadKey | ErrorKind::ForbiddenKey => FailInfo::BadAlg,
        // Policy, approvals, limits and server-side trouble: the request
        // is not permitted now.
        ErrorKind::UnknownProfile
        | ErrorKind::ProfileNotAllowed
        | ErrorKind::Unauthorized
        | ErrorKind::Rejected
        | ErrorKind::RateLimited
        | ErrorKind::Conflict
        | ErrorKind::CaUnavailable
        | ErrorKind::Internal => FailInfo::BadRequest,
        ErrorKind::NotFound | ErrorKind::AlreadyRevoked => FailInfo::BadCertId,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_problems_are_bad_alg_and_the_rest_bad_request() {
        assert_eq!(
            fail_info(&AuthorityError::new(ErrorKind::BadKey, "rsa-1024")),
            FailInfo::BadAlg
        );
        assert_eq!(
            fail_info(&AuthorityError::new(ErrorKind::BadCsr, "x")),
            FailInfo::BadRequest
        );
    }
}
