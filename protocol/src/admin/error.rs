//! The refusal of an admin API request that cannot be decoded.

use std::fmt;

/// A malformed admin request: the server answers it with HTTP 400 and
/// `{"error": message, "code": code}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    /// Machine-readable code (`bad_request`).
    pub code: &'static str,
    /// What is wrong, for a human.
    pub message: String,
}

impl RequestError {
    /// A `bad_request` refusal.
    pub fn bad_request(message: impl Into<String>) -> RequestError {
        RequestError {
            code: "bad_request",
            message: message.into(),
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for RequestError {}
