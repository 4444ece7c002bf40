//! SCEP transactions (RFC 8894 §3.2.1.1, §3.3.3): one store record per
//! transactionID, so that
//!
//! * the same request sent again gets the same answer and never a second
//!   certificate (the client lost our CertRep, or polls by resending, as
//!   micromdm's scepclient does while PENDING);
//! * a transactionID sent again with a different request is refused;
//! * CertPoll (GetCertInitial) finds a held or issued request.
//!
//! Clients derive the transactionID from their public key, so a
//! RenewalReq with the same key legitimately reuses the ID of the
//! enrolment that issued its signer certificate: that starts a new round.
//! So does a request after the previous round's certificate expired or
//! was revoked, or after its approval was rejected.

use std::sync::Arc;

use aws_lc_rs::digest::{digest, Context, SHA256};
use ironseal_protocol::scep::{MessageType, PkiMessage};
use ironseal_storage::{
    ApprovalStatus, ScepTransactionRecord, ScepTransactionState, Store, StoreError,
};
use time::{Duration, OffsetDateTime};

use crate::state::AppState;

/// Longest transactionID accepted. Real clients send a hex or base64
/// hash (40–64 characters); the ID ends up in the store and the audit log.
pub const MAX_TRANSACTION_ID_LEN: usize = 128;

/// An in-flight claim older than this is taken to be from a request that
/// died with its process, and a retry may take it over.
const STALE_IN_FLIGHT: Duration = Duration::minutes(2);

/// How often a claim is retried when another request changed the record
/// between our read and our write.
const CLAIM_ATTEMPTS: usize = 4;

/// SHA-256 (hex) over the message type, signer certificate and CSR: what
/// makes two requests "the same request".
pub fn request_digest(kind: MessageType, signer_cert_der: &[u8], csr: &[u8]) -> String {
    let mut ctx = Context::new(&SHA256);
    for part in [kind.as_str().as_bytes(), signer_cert_der, csr] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    hex::encode(ctx.finish().as_ref())
}

/// SHA-256 (hex) of the signer's SubjectPublicKeyInfo.
pub fn signer_key(msg: &PkiMessage) -> String {
    use der::Encode;
    let spki = msg
        .signer_cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .unwrap_or_default();
    hex::encode(digest(&SHA256, &spki).as_ref())
}

/// What [`claim`] found.
#[derive(Debug)]
pub enum Claim {
    /// Ours to issue: the record is in flight with this content.
    New(ScepTransactionRecord),
    /// The same request was seen before: answer from this record.
    Existing(ScepTransactionRecord),
    /// The transactionID belongs to another request.
    Replayed,
}

/// Where an existing transaction stands, for the answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Standing {
    /// Issued: the certificate (DER).
    Issued(Vec<u8>),
    /// Still waiting (approval or a concurrent request).
    Pending,
    /// Decided against, or issuance failed after approval: the reason.
    Failed(String),
}

/// Claims transactionID `id` for a request with digest `request`.
/// `renewal_of` is the serial of a RenewalReq's (already checked) signer
/// certificate.
pub async fn claim(
    store: &dyn Store,
    id: &str,
    request: &str,
    key: &str,
    renewal_of: Option<&str>,
    now: OffsetDateTime,
) -> Result<Claim, StoreError> {
    let fresh = ScepTransactionRecord {
        transaction_id: id.to_string(),
        request: request.to_string(),
        signer_key: key.to_string(),
        state: ScepTransactionState::InFlight,
        updated_at: now,
    };
    for _ in 0..CLAIM_ATTEMPTS {
        let stored = store.get_scep_transaction(id).await?;
        let take_over = match &stored {
            None => true,
            Some(r) if r.request == request => {
                r.state == ScepTransactionState::InFlight && now - r.updated_at > STALE_IN_FLIGHT
            }
            Some(r) => {
                if !round_is_over(store, r, renewal_of, now).await? {
                    return Ok(Claim::Replayed);
                }
                true
            }
        };
        if !take_over {
            // `take_over` is false only for a stored record.
            if let Some(r) = stored {
                return Ok(Claim::Existing(r));
            }
        }
        if store.put_scep_transaction(&fresh, stored.as_ref()).await? {
            return Ok(Claim::New(fresh));
        }
    }
    Err(StoreError::Conflict(
        "SCEP transaction changed concurrently".into(),
    ))
}

/// Whether a transaction's round is over, so that its record no longer
/// stands between a client and a second certificate: what the retention
/// purge (`scep::purge`) requires before it removes a record.
pub async fn is_finished(
    store: &dyn Store,
    r: &ScepTransactionRecord,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    round_is_over(store, r, None, now).await
}

/// Whether a transaction may start a new round with another request:
/// its certificate is being renewed by a RenewalReq signed with it, has
/// expired or was revoked; its approval was rejected or failed; or its
/// in-flight claim went stale.
async fn round_is_over(
    store: &dyn Store,
    r: &ScepTransactionRecord,
    renewal_of: Option<&str>,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    Ok(match &r.state {
        ScepTransactionState::InFlight => now - r.updated_at > STALE_IN_FLIGHT,
        ScepTransactionState::Issued { serial } => {
            renewal_of == Some(serial.as_str())
                || match store.get_certificate(serial).await? {
                    Some(c) => c.revocation.is_some() || c.not_after <= now,
                    None => true,
                }
        }
        ScepTransactionState::Held { approval_id, .. } => {
            match store.get_approval(approval_id).await? {
                Some(a) => match a.status {
                    ApprovalStatus::Pending => false,
                    ApprovalStatus::Rejected => true,
                    ApprovalStatus::Approved => a.error.is_some(),
                },
                None => true,
            }
        }
    })
}

/// Records how a claimed transaction ended: issued, held, or (`None`)
/// failed, which removes the claim so that a corrected request may use
/// the transactionID.
pub async fn settle(
    store: &dyn Store,
    claim: &ScepTransactionRecord,
    outcome: Option<ScepTransactionState>,
) -> Result<(), StoreError> {
    match outcome {
        Some(state) => {
            let mut done = claim.clone();
            done.state = state;
            done.updated_at = OffsetDateTime::now_utc();
            store.put_scep_transaction(&done, Some(claim)).await?;
        }
        None => {
            store.delete_scep_transaction(claim).await?;
        }
    }
    Ok(())
}

/// Where an existing transaction stands now. A held request whose
/// approval issued a certificate is recorded as issued.
pub async fn standing(
    state: &Arc<AppState>,
    r: &ScepTransactionRecord,
) -> Result<Standing, StoreError> {
    let store = state.store.as_ref();
    match &r.state {
        ScepTransactionState::InFlight => Ok(Standing::Pending),
        ScepTransactionState::Issued { serial } => issued(store, serial).await,
        ScepTransactionState::Held { approval_id, .. } => {
            let Some(a) = store.get_approval(approval_id).await? else {
                return Ok(Standing::Failed("the approval no longer exists".into()));
            };
            match (a.status, &a.cert_serial, &a.error) {
                (ApprovalStatus::Pending, _, _) | (ApprovalStatus::Approved, None, None) => {
                    Ok(Standing::Pending)
                }
                (ApprovalStatus::Rejected, _, _) => Ok(Standing::Failed(format!(
                    "rejected by {}",
                    a.decided_by.as_deref().unwrap_or("an approver")
                ))),
                (ApprovalStatus::Approved, Some(serial), _) => {
                    let mut done = r.clone();
                    done.state = ScepTransactionState::Issued {
                        serial: serial.clone(),
                    };
                    done.updated_at = OffsetDateTime::now_utc();
                    // Best effort: a concurrent poll may have done it.
                    store.put_scep_transaction(&done, Some(r)).await?;
                    issued(store, serial).await
                }
                (ApprovalStatus::Approved, None, Some(e)) => Ok(Standing::Failed(e.clone())),
            }
        }
    }
}

/// The standing of a transaction that issued `serial`.
async fn issued(store: &dyn Store, serial: &str) -> Result<Standing, StoreError> {
    match store.get_certificate(serial).await? {
        Some(c) => Ok(Standing::Issued(c.der)),
        None => Ok(Standing::Failed(format!(
            "certificate {serial} is not in the store"
        ))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use ironseal_storage::MemoryStore;

    const T0: OffsetDateTime = time::macros::datetime!(2026-12-01 00:00 UTC);

    #[tokio::test]
    async fn the_same_request_is_existing_another_is_replayed() {
        let s = MemoryStore::new();
        let Claim::New(c) = claim(&s, "t", "r1", "k", None, T0).await.unwrap() else {
            panic!("first claim")
        };
        assert!(matches!(
            claim(&s, "t", "r1", "k", None, T0).await.unwrap(),
            Claim::Existing(ref e) if *e == c
        ));
        assert!(matches!(
            claim(&s, "t", "r2", "k", None, T0).await.unwrap(),
            Claim::Replayed
        ));
        // A stale in-flight claim is taken over by either request.
        let later = T0 + Duration::minutes(3);
        assert!(matches!(
            claim(&s, "t", "r2", "k", None, later).await.unwrap(),
            Claim::New(_)
        ));
    }

    #[tokio::test]
    async fn a_failed_issuance_frees_the_transaction_id() {
        let s = MemoryStore::new();
        let Claim::New(c) = claim(&s, "t", "r1", "k", None, T0).await.unwrap() else {
            panic!("first claim")
        };
        settle(&s, &c, None).await.unwrap();
        assert!(matches!(
            claim(&s, "t", "r2", "k", None, T0).await.unwrap(),
            Claim::New(_)
        ));
    }

    #[tokio::test]
    async fn a_renewal_with_the_issued_certificate_reopens_the_round() {
        let s = MemoryStore::new();
        let Claim::New(c) = claim(&s, "t", "r1", "k", None, T0).await.unwrap() else {
            panic!("first claim")
        };
        settle(
            &s,
            &c,
            Some(ScepTransactionState::Issued {
                serial: "0a".into(),
            }),
        )
        .await
        .unwrap();
        // (A different request while the certificate is valid is refused:
        // proved end to end in conformance/tests/scep.rs.)
        assert!(matches!(
            claim(&s, "t", "r2", "k", Some("0a"), T0).await.unwrap(),
            Claim::New(_)
        ));
    }

    #[test]
    fn request_digests_separate_their_parts() {
        let a = request_digest(MessageType::PkcsReq, b"ab", b"c");
        let b = request_digest(MessageType::PkcsReq, b"a", b"bc");
        let c = request_digest(MessageType::RenewalReq, b"ab", b"c");
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, request_digest(MessageType::PkcsReq, b"ab", b"c"));
    }
}
