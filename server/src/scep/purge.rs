//! The retention purge of SCEP transaction records (RFC 8894 §3.2.1.1):
//! without it every enrolment leaves a record for ever. It runs with the
//! ACME purge (same housekeeping tick, `[acme] purge_interval_minutes`)
//! and removes records last written more than `[scep]
//! transaction_retention_hours` (720) ago whose round is over
//! ([`transaction::is_finished`]): the certificate expired or was revoked,
//! the approval was rejected or failed, or an in-flight claim went stale.
//!
//! A record whose certificate is still valid, or whose request still
//! waits for approval, is never removed, however old: it is what answers
//! a retry with the same certificate and refuses the transactionID to
//! another request, so removing it would let the same transaction get a
//! second certificate. Removal is compare-and-swap on the record as read,
//! so a record that changed meanwhile stays.
//!
//! A run reads at most [`MAX_BATCHES`] pages of [`BATCH`] candidates; the
//! next run continues.
//!
//! The same retention removes one-time challenges (admin API) that
//! expired before `now - retention`, redeemed or not: an expired
//! challenge can never be redeemed again, and its creation and the
//! issuance it led to stay in the audit log.

use std::time::Instant;

use ironseal_storage::{Store, StoreError};
use time::OffsetDateTime;

use super::transaction;
use crate::state::AppState;

/// Candidates read per store call.
pub const BATCH: usize = 1000;
/// Store calls per run at most.
pub const MAX_BATCHES: usize = 100;

/// Removes the finished transaction records written before
/// `now - retention`; returns how many.
pub async fn run(state: &AppState, now: OffsetDateTime) -> Result<u64, StoreError> {
    let Some(keep) = state.config.scep.transaction_retention else {
        return Ok(0);
    };
    let started = Instant::now();
    let before = now - keep;
    let purged = purge_finished(state.store.as_ref(), before, now).await?;
    state.metrics.add("scep_transactions_purged", purged);
    let challenges = purge_expired_challenges(state.store.as_ref(), before).await?;
    state.metrics.add("scep_challenges_purged", challenges);
    if challenges > 0 {
        tracing::info!(
            challenges,
            expired_before = %before,
            "purged expired one-time SCEP challenges"
        );
    }
    if purged > 0 {
        state.durable_store().await?;
        tracing::info!(
            transactions = purged,
            written_before = %before,
            ms = started.elapsed().as_millis() as u64,
            "purged finished SCEP transaction records"
        );
    }
    Ok(purged)
}

/// Removes the records written before `before` whose round is over at
/// `now`; returns how many.
pub async fn purge_finished(
    store: &dyn Store,
    before: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<u64, StoreError> {
    let mut after: Option<String> = None;
    let mut purged = 0u64;
    for _ in 0..MAX_BATCHES {
        let page = store
            .scep_transactions_before(before, after.as_deref(), BATCH)
            .await?;
        for r in &page {
            if transaction::is_finished(store, r, now).await?
                && store.delete_scep_transaction(r).await?
            {
                purged += 1;
            }
        }
        match page.last() {
            Some(last) if page.len() == BATCH => after = Some(last.transaction_id.clone()),
            _ => break,
        }
    }
    Ok(purged)
}

/// Removes the one-time challenges that expired before `before`;
/// returns how many.
pub async fn purge_expired_challenges(
    store: &dyn Store,
    before: OffsetDateTime,
) -> Result<u64, StoreError> {
    let mut purged = 0u64;
    for c in store.list_scep_challenges(None).await? {
        if c.expires_at < before && store.remove_scep_challenge(&c.challenge_hash).await? {
            purged += 1;
        }
    }
    Ok(purged)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use ironseal_storage::{
        ApprovalRecord, ApprovalStatus, CertificateRecord, MemoryStore, RevocationReason,
        RevocationRecord, ScepTransactionRecord, ScepTransactionState,
    };
    use time::Duration;

    const T0: OffsetDateTime = time::macros::datetime!(2026-12-01 00:00 UTC);

    async fn tx(store: &MemoryStore, id: &str, state: ScepTransactionState, at: OffsetDateTime) {
        let r = ScepTransactionRecord {
            transaction_id: id.into(),
            request: format!("req-{id}"),
            signer_key: "k".into(),
            state,
            updated_at: at,
        };
        assert!(store.put_scep_transaction(&r, None).await.unwrap());
    }

    async fn cert(store: &MemoryStore, serial: &str, not_after: OffsetDateTime, revoked: bool) {
        store
            .insert_certificate(&CertificateRecord {
                serial: serial.into(),
                issuer_id: "int".into(),
                account_id: "scep:x".into(),
                order_id: String::new(),
                der: Vec::new(),
                not_before: T0,
                not_after,
                public_key_sha256: "00".into(),
                identifiers: Vec::new(),
                revocation: revoked.then_some(RevocationRecord {
                    revoked_at: T0,
                    reason: RevocationReason::Unspecified,
                }),
                replaced_by: None,
                renew_early: false,
                origin: Default::default(),
            })
            .await
            .unwrap();
    }

    async fn approval(store: &MemoryStore, id: &str, status: ApprovalStatus) {
        store
            .create_approval(&ApprovalRecord {
                id: id.into(),
                status: ApprovalStatus::Pending,
                protocol: "scep".into(),
                requester: "scep:x".into(),
                tenant_id: None,
                profile: "held".into(),
                names: Vec::new(),
                csr_der: vec![0x30, 0x00],
                context: serde_json::json!({}),
                requested_at: T0,
                decided_by: None,
                decided_at: None,
                comment: None,
                cert_serial: None,
                error: None,
            })
            .await
            .unwrap();
        if status != ApprovalStatus::Pending {
            let mut a = store.get_approval(id).await.unwrap().unwrap();
            a.status = status;
            assert!(store
                .update_approval(&a, ApprovalStatus::Pending)
                .await
                .unwrap());
        }
    }

    fn issued(serial: &str) -> ScepTransactionState {
        ScepTransactionState::Issued {
            serial: serial.into(),
        }
    }

    fn held(id: &str) -> ScepTransactionState {
        ScepTransactionState::Held {
            approval_id: id.into(),
            intune: false,
        }
    }

    /// Only old records whose round is over go; an open round stays
    /// however old, because its record is what prevents a second
    /// certificate for the transaction.
    #[tokio::test]
    async fn only_old_finished_rounds_are_purged() {
        let s = MemoryStore::new();
        let now = T0 + Duration::days(400);
        let old = T0;
        cert(&s, "0a", now + Duration::days(30), false).await; // still valid
        cert(&s, "0b", T0 + Duration::days(30), false).await; // expired
        cert(&s, "0c", now + Duration::days(30), true).await; // revoked
        approval(&s, "ap-pending", ApprovalStatus::Pending).await;
        approval(&s, "ap-rejected", ApprovalStatus::Rejected).await;
        tx(&s, "valid", issued("0a"), old).await;
        tx(&s, "expired", issued("0b"), old).await;
        tx(&s, "revoked", issued("0c"), old).await;
        tx(&s, "waiting", held("ap-pending"), old).await;
        tx(&s, "rejected", held("ap-rejected"), old).await;
        tx(&s, "stale", ScepTransactionState::InFlight, old).await;
        tx(&s, "recent", issued("0b"), now - Duration::hours(1)).await;

        let before = now - Duration::hours(720);
        assert_eq!(purge_finished(&s, before, now).await.unwrap(), 4);
        let kept = async |id: &str| s.get_scep_transaction(id).await.unwrap().is_some();
        assert!(
            kept("valid").await,
            "a valid certificate's transaction stays"
        );
        assert!(
            kept("waiting").await,
            "a request waiting for approval stays"
        );
        assert!(kept("recent").await, "younger than the retention");
        for gone in ["expired", "revoked", "rejected", "stale"] {
            assert!(!kept(gone).await, "{gone} should be purged");
        }
        // Idempotent.
        assert_eq!(purge_finished(&s, before, now).await.unwrap(), 0);
    }

    /// More candidates than one page: the cursor moves past records that
    /// stay, so later pages are reached.
    #[tokio::test]
    async fn pages_continue_past_records_that_stay() {
        let s = MemoryStore::new();
        let now = T0 + Duration::days(400);
        cert(&s, "0a", now + Duration::days(30), false).await;
        for i in 0..BATCH {
            tx(&s, &format!("a{i:05}"), issued("0a"), T0).await;
        }
        tx(&s, "z-stale", ScepTransactionState::InFlight, T0).await;
        assert_eq!(purge_finished(&s, now, now).await.unwrap(), 1);
        assert!(s.get_scep_transaction("z-stale").await.unwrap().is_none());
    }

    /// Challenges that expired before the cutoff go, redeemed or not;
    /// later ones stay.
    #[tokio::test]
    async fn expired_challenges_are_purged() {
        use ironseal_storage::ScepChallengeRecord;
        let s = MemoryStore::new();
        let add = async |hash: &str, expires: OffsetDateTime, redeemed: bool| {
            s.create_scep_challenge(&ScepChallengeRecord {
                challenge_hash: hash.into(),
                id: format!("sc_{hash}"),
                tenant_id: None,
                path: None,
                created_at: T0,
                created_by: "admin".into(),
                expires_at: expires,
                redeemed_at: redeemed.then_some(T0),
            })
            .await
            .unwrap();
        };
        add("old-unused", T0 + Duration::hours(1), false).await;
        add("old-redeemed", T0 + Duration::hours(1), true).await;
        add("young", T0 + Duration::days(40), false).await;
        let before = T0 + Duration::days(30);
        assert_eq!(purge_expired_challenges(&s, before).await.unwrap(), 2);
        let left: Vec<String> = s
            .list_scep_challenges(None)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.challenge_hash)
            .collect();
        assert_eq!(left, ["young"]);
        assert_eq!(purge_expired_challenges(&s, before).await.unwrap(), 0);
    }
}
