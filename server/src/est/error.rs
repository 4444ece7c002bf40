//! EST errors and their one mapping to HTTP (RFC 7030 §4.2.3: "400 Bad
//! Request" and friends with a human-readable text body; 401/403 for
//! authentication; 404 for an unknown label). Nothing is issued when any of
//! these is returned.

use bytes::Bytes;
use hyper::{Response, StatusCode};
use ironseal_protocol::est::{BodyError, ChannelBindingError, KeyDeliveryError};

use crate::authority::{AuthorityError, ErrorKind};
use crate::http::{full, Body};

/// A refused EST request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EstError {
    /// The label (or operation) does not exist.
    NotFound(String),
    /// The method is not allowed for the operation.
    Method(&'static str),
    /// The body could not be read or decoded.
    BadRequest(String),
    /// No acceptable client authentication was presented.
    Unauthenticated(String),
    /// HTTP Basic credentials are required or were wrong (RFC 7030
    /// §3.2.3): 401 with `WWW-Authenticate: Basic`.
    BasicRequired(String),
    /// Too many failed Basic attempts for this user name; retry after
    /// this many seconds.
    TooManyFailures(u64),
    /// Authenticated, but not allowed (revoked, mismatch, channel binding).
    Forbidden(String),
    /// The operation exists in RFC 7030 but is not offered.
    NotImplemented(&'static str),
    /// The authority refused or failed.
    Authority(AuthorityError),
}

impl From<AuthorityError> for EstError {
    fn from(e: AuthorityError) -> Self {
        EstError::Authority(e)
    }
}

impl From<BodyError> for EstError {
    fn from(e: BodyError) -> Self {
        EstError::BadRequest(e.to_string())
    }
}

impl From<ChannelBindingError> for EstError {
    fn from(e: ChannelBindingError) -> Self {
        match e {
            ChannelBindingError::Mismatch | ChannelBindingError::NoExporter => {
                EstError::Forbidden(e.to_string())
            }
            _ => EstError::BadRequest(e.to_string()),
        }
    }
}

impl From<KeyDeliveryError> for EstError {
    fn from(e: KeyDeliveryError) -> Self {
        match e {
            KeyDeliveryError::Build(_) => EstError::Authority(AuthorityError::internal(e)),
            _ => EstError::BadRequest(e.to_string()),
        }
    }
}

impl From<ironseal_storage::StoreError> for EstError {
    fn from(e: ironseal_storage::StoreError) -> Self {
        EstError::Authority(AuthorityError::internal(e))
    }
}

impl EstError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            EstError::NotFound(_) => StatusCode::NOT_FOUND,
            EstError::Method(_) => StatusCode::METHOD_NOT_ALLOWED,
            EstError::BadRequest(_) => StatusCode::BAD_REQUEST,
            EstError::Unauthenticated(_) | EstError::Forbidden(_) => StatusCode::FORBIDDEN,
            EstError::BasicRequired(_) => StatusCode::UNAUTHORIZED,
            EstError::TooManyFailures(_) => StatusCode::TOO_MANY_REQUESTS,
            EstError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            EstError::Authority(e) => match e.kind {
                ErrorKind::BadCsr
                | ErrorKind::BadKey
                | ErrorKind::ForbiddenKey
                | ErrorKind::RejectedName => StatusCode::BAD_REQUEST,
                ErrorKind::Unauthorized
                | ErrorKind::ProfileNotAllowed
                | ErrorKind::Rejected
                | ErrorKind::AlreadyRevoked => StatusCode::FORBIDDEN,
                ErrorKind::NotFound => StatusCode::NOT_FOUND,
                ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
                ErrorKind::Conflict => StatusCode::CONFLICT,
                ErrorKind::UnknownProfile | ErrorKind::CaUnavailable => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    /// The text body: why, in words the device's operator can act on.
    pub fn text(&self) -> String {
        match self {
            EstError::NotFound(s)
            | EstError::BadRequest(s)
            | EstError::Unauthenticated(s)
            | EstError::BasicRequired(s)
            | EstError::Forbidden(s) => s.clone(),
            EstError::TooManyFailures(secs) => {
                format!("too many failed attempts for this user name; retry in {secs} s")
            }
            EstError::Method(allowed) => format!("method not allowed; use {allowed}"),
            EstError::NotImplemented(what) => format!("{what} is not offered by this server"),
            EstError::Authority(e) => format!("{}: {}", e.kind.as_str(), e.detail),
        }
    }

    /// The response.
    pub fn response(&self) -> Response<Body> {
        let mut b = Response::builder()
            .status(self.status())
            .header("content-type", "text/plain; charset=utf-8");
        match self {
            EstError::Method(allowed) => b = b.header("allow", *allowed),
            EstError::BasicRequired(_) => {
                b = b.header("www-authenticate", "Basic realm=\"est\", charset=\"UTF-8\"")
            }
            EstError::TooManyFailures(secs) => b = b.header("retry-after", secs.to_string()),
            EstError::Authority(e) if e.kind == ErrorKind::RateLimited => {
                b = b.header("retry-after", "60")
            }
            _ => {}
        }
        b.body(full(Bytes::from(format!("{}\n", self.text()))))
            .unwrap_or_else(|_| Response::new(full(Bytes::new())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_status_per_kind() {
        let a = |k| EstError::Authority(AuthorityError::new(k, "x")).status();
        assert_eq!(a(ErrorKind::BadCsr), StatusCode::BAD_REQUEST);
        assert_eq!(a(ErrorKind::RejectedName), StatusCode::BAD_REQUEST);
        assert_eq!(a(ErrorKind::Unauthorized), StatusCode::FORBIDDEN);
        assert_eq!(a(ErrorKind::Rejected), StatusCode::FORBIDDEN);
        assert_eq!(a(ErrorKind::RateLimited), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(a(ErrorKind::Internal), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            EstError::NotFound("no label".into()).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            EstError::from(ChannelBindingError::Mismatch).status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            EstError::from(ChannelBindingError::Missing).status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            EstError::from(BodyError::Empty).status(),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn body_says_why() {
        let r = EstError::BadRequest("invalid base64".into()).response();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let r = EstError::Method("POST").response();
        assert_eq!(r.headers()["allow"], "POST");
        let r = EstError::BasicRequired("wrong password".into()).response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.headers()["www-authenticate"]
            .to_str()
            .unwrap_or_default()
            .starts_with("Basic realm="));
        let r = EstError::TooManyFailures(12).response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()["retry-after"], "12");
    }
}
