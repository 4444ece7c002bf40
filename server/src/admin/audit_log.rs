//! Reading and verifying the hash-chained audit log, and signed
//! checkpoints of its head.

use ironseal_storage::{AuditEntry, AuditHead, ChainVerifier};
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
        "mac": e.mac,
    })
}

pub(super) fn parse_audit_query(
    query: Option<&str>,
) -> Result<ironseal_protocol::admin::AuditQuery, ApiError> {
    Ok(ironseal_protocol::admin::parse_audit_query(query)?)
}

pub(super) async fn audit(state: &AppState, query: Option<&str>) -> Result<Answer, ApiError> {
    let q = parse_audit_query(query)?;
    let store = state.store.as_ref();
    // The head first: entries appended while we read are ignored, so a
    // concurrent call never looks like a truncated log.
    let head = store.audit_head().await?;
    let head_seq = head.as_ref().map_or(0, |h| h.seq);
    let mut entries = store.audit_entries(q.after, q.limit).await?;
    entries.retain(|e| e.seq <= head_seq);
    let prev: Option<AuditHead> = if q.after == 0 {
        None
    } else {
        store
            .audit_entries(q.after - 1, 1)
            .await?
            .first()
            .filter(|e| e.seq == q.after)
            .map(AuditEntry::head)
    };
    // The page reaches the end of the log: compare with the head too.
    let reaches_end = entries.len() < q.limit || entries.last().is_some_and(|e| e.seq >= head_seq);
    let keys = &state.audit_keys;
    let page = if q.after > 0 && prev.is_none() && q.after <= head_seq {
        Err(format!("entry {} is missing", q.after))
    } else if q.after > head_seq {
        Ok(())
    } else {
        let mut v = ChainVerifier::new(Some(&keys.mac), Some(keys.keyed_from), prev.as_ref());
        v.feed(&entries)
            .and_then(|()| match (reaches_end, head.as_ref()) {
                (true, Some(h)) => v.finish(h),
                _ => Ok(()),
            })
            .map_err(|e| e.to_string())
    };
    let (scope, checked, verdict) = if q.full {
        let (n, r) = verify_full(state, head.as_ref()).await?;
        ("full", n, r)
    } else {
        ("page", entries.len() as u64, page)
    };
    // Entries before `keyedFrom` are an unkeyed hash chain (written before
    // this store had an audit key); from it on every entry carries a MAC.
    let keyed_from = (keys.keyed_from <= head_seq).then_some(keys.keyed_from);
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
            "keyedFrom": keyed_from,
            "checkpointKey": keys.signer.public_key_pem(),
        },
    })))
}

/// `POST /admin/v1/audit/checkpoints`: signs a checkpoint of the head now,
/// logs it and appends it to `[audit] checkpoint_file` if set.
pub(super) async fn create_checkpoint(state: &AppState) -> Result<Answer, ApiError> {
    let cp = state
        .audit_keys
        .checkpoint(
            state.store.as_ref(),
            state.config.audit_checkpoint_file.as_deref(),
            false,
        )
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::conflict("empty_log", "the audit log is empty"))?;
    let mut answer = Answer::ok(serde_json::to_value(&cp).map_err(ApiError::internal)?);
    answer.note = Some(format!(
        "seq={} hash={}",
        cp.checkpoint.seq, cp.checkpoint.hash
    ));
    Ok(answer)
}

/// Verifies the whole log up to `head`, page by page: hashes, links,
/// MACs from the key's first entry on.
pub(super) async fn verify_full(
    state: &AppState,
    head: Option<&AuditHead>,
) -> Result<(u64, Result<(), String>), ApiError> {
    let Some(head) = head else {
        return Ok((0, Ok(())));
    };
    let store = state.store.as_ref();
    let keys = &state.audit_keys;
    let mut v = ChainVerifier::new(Some(&keys.mac), Some(keys.keyed_from), None);
    loop {
        let after = v.last().map_or(0, |p| p.seq);
        let mut page = store.audit_entries(after, AUDIT_MAX_LIMIT).await?;
        page.retain(|e| e.seq <= head.seq);
        let last_page =
            page.len() < AUDIT_MAX_LIMIT || page.last().is_some_and(|e| e.seq >= head.seq);
        let done = v.checked();
        let r = v
            .feed(&page)
            .and_then(|()| if last_page { v.finish(head) } else { Ok(()) });
        if let Err(e) = r {
            return Ok((done, Err(e.to_string())));
        }
        if last_page {
            return Ok((v.checked(), Ok(())));
        }
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
