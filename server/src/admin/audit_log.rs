//! Reading and verifying the hash-chained audit log.

use ironseal_storage::{verify_chain, AuditEntry, AuditHead};
use serde_json::{json, Value};

use super::{Answer, ApiError};
use crate::acme::render::ts;
use crate::state::AppState;

use ironseal_protocol::admin::AUDIT_MAX_LIMIT;

pub(super) fn entry_json(e: &AuditEntry) -> Value {
    json!({
        "seq": e.seq,
        "at": ts(e.at),
        "actor": e.actor,
        "action": e.action,
        "summary": e.summary,
        "outcome": e.outcome,
        "prevHash": e.prev_hash,
        "entryHash": e.entry_hash,
    })
}

pub(super) fn parse_audit_query(
    query: Option<&str>,
) -> Result<ironseal_protocol::admin::AuditQuery, ApiError> {
    Ok(ironseal_protocol::admin::parse_audit_query(query)?)
}

pub(super) fn audit(state: &AppState, query: Option<&str>) -> Result<Answer, ApiError> {
    let q = parse_audit_query(query)?;
    let store = state.store.as_ref();
    // The head first: entries appended while we read are ignored, so a
    // concurrent call never looks like a truncated log.
    let head = store.audit_head()?;
    let head_seq = head.as_ref().map_or(0, |h| h.seq);
    let mut entries = store.audit_entries(q.after, q.limit)?;
    entries.retain(|e| e.seq <= head_seq);
    let prev: Option<AuditHead> = if q.after == 0 {
        None
    } else {
        store
            .audit_entries(q.after - 1, 1)?
            .first()
            .filter(|e| e.seq == q.after)
            .map(AuditEntry::head)
    };
    // The page reaches the end of the log: compare with the head too.
    let reaches_end = entries.len() < q.limit || entries.last().is_some_and(|e| e.seq >= head_seq);
    let page = if q.after > 0 && prev.is_none() && q.after <= head_seq {
        Err(format!("entry {} is missing", q.after))
    } else if q.after > head_seq {
        Ok(())
    } else {
        verify_chain(
            &entries,
            prev.as_ref(),
            if reaches_end { head.as_ref() } else { None },
        )
        .map_err(|e| e.to_string())
    };
    let (scope, checked, verdict) = if q.full {
        let (n, r) = verify_full(store, head.as_ref())?;
        ("full", n, r)
    } else {
        ("page", entries.len() as u64, page)
    };
    let next = entries.last().filter(|e| e.seq < head_seq).map(|e| e.seq);
    Ok(Answer::ok(json!({
        "entries": entries.iter().map(entry_json).collect::<Vec<_>>(),
        "next": next,
        "head": head.as_ref().map(|h| json!({"seq": h.seq, "hash": h.hash})),
        "verify": {
            "scope": scope,
            "ok": verdict.is_ok(),
            "checked": checked,
            "error": verdict.err(),
        },
    })))
}

/// Verifies the whole log up to `head`, page by page.
pub(super) fn verify_full(
    store: &dyn ironseal_storage::Store,
    head: Option<&AuditHead>,
) -> Result<(u64, Result<(), String>), ApiError> {
    let Some(head) = head else {
        return Ok((0, Ok(())));
    };
    let mut prev: Option<AuditHead> = None;
    let mut checked = 0u64;
    loop {
        let after = prev.as_ref().map_or(0, |p| p.seq);
        let mut page = store.audit_entries(after, AUDIT_MAX_LIMIT)?;
        page.retain(|e| e.seq <= head.seq);
        let last_page =
            page.len() < AUDIT_MAX_LIMIT || page.last().is_some_and(|e| e.seq >= head.seq);
        if let Err(e) = verify_chain(
            &page,
            prev.as_ref(),
            if last_page { Some(head) } else { None },
        ) {
            return Ok((checked, Err(e.to_string())));
        }
        checked += page.len() as u64;
        if last_page {
            return Ok((checked, Ok(())));
        }
        prev = page.last().map(AuditEntry::head);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use ironseal_protocol::admin::AUDIT_DEFAULT_LIMIT;

    #[test]
    fn audit_queries() {
        let q = parse_audit_query(Some("after=5&limit=10&verify=full")).unwrap();
        assert_eq!((q.after, q.limit, q.full), (5, 10, true));
        assert!(parse_audit_query(Some("limit=0")).is_err());
        assert!(parse_audit_query(Some("limit=100000")).is_err());
        assert!(parse_audit_query(Some("bogus=1")).is_err());
        let q = parse_audit_query(None).unwrap();
        assert_eq!((q.after, q.limit, q.full), (0, AUDIT_DEFAULT_LIMIT, false));
    }
}
