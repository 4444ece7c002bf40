//! The query of `GET /admin/v1/audit`.

use super::RequestError;

/// Most audit entries returned by one call.
pub const AUDIT_MAX_LIMIT: usize = 1000;
/// Default page size of the audit log.
pub const AUDIT_DEFAULT_LIMIT: usize = 100;

/// `after=<seq>&limit=<n>&verify=page|full`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditQuery {
    /// Entries after this sequence number (0: from the start).
    pub after: u64,
    /// Page size, 1 to [`AUDIT_MAX_LIMIT`].
    pub limit: usize,
    /// Verify the whole chain, not only the page.
    pub full: bool,
}

/// Parses the audit query string.
pub fn parse_audit_query(query: Option<&str>) -> Result<AuditQuery, RequestError> {
    let mut q = AuditQuery {
        after: 0,
        limit: AUDIT_DEFAULT_LIMIT,
        full: false,
    };
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "after" => {
                q.after = v
                    .parse()
                    .map_err(|_| RequestError::bad_request("after must be a sequence number"))?;
            }
            "limit" => {
                let n: usize = v
                    .parse()
                    .map_err(|_| RequestError::bad_request("limit must be a number"))?;
                if n == 0 || n > AUDIT_MAX_LIMIT {
                    return Err(RequestError::bad_request(format!(
                        "limit must be 1 to {AUDIT_MAX_LIMIT}"
                    )));
                }
                q.limit = n;
            }
            "verify" => {
                q.full = match v {
                    "full" => true,
                    "page" | "" => false,
                    _ => return Err(RequestError::bad_request("verify must be page or full")),
                };
            }
            other => {
                return Err(RequestError::bad_request(format!(
                    "unknown query parameter {other:?}"
                )))
            }
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_queries() {
        let q = parse_audit_query(Some("after=5&limit=10&verify=full")).unwrap();
        assert_eq!((q.after, q.limit, q.full), (5, 10, true));
        assert!(parse_audit_query(Some("limit=0")).is_err());
        assert!(parse_audit_query(Some("limit=100000")).is_err());
        assert!(parse_audit_query(Some("bogus=1")).is_err());
        assert!(parse_audit_query(Some("limit=-1")).is_err());
        let q = parse_audit_query(None).unwrap();
        assert_eq!((q.after, q.limit, q.full), (0, AUDIT_DEFAULT_LIMIT, false));
    }
}
