//! The append-only, hash-chained audit log.
//!
//! Each entry carries the hash of its predecessor and its own hash:
//!
//! ```text
//! entry_hash = SHA-256( prev_hash (32 raw bytes) ‖ canonical JSON of the entry
//!                       without its entry_hash member )
//! ```
//!
//! The first entry has `seq` 1 and a `prev_hash` of 32 zero bytes. Canonical
//! JSON here means: object members sorted by key (bytewise), no whitespace,
//! strings and integers as `serde_json` writes them (the entry holds no
//! floating-point numbers). The store also keeps the *head* (last `seq` and
//! its hash) next to the entries, written in the same transaction as the
//! append, so a truncated tail is detected too.
//!
//! [`verify_chain`] recomputes the hashes of a run of consecutive entries
//! and reports the first entry that was modified, removed (a gap in `seq`
//! or a broken link) or reordered.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

/// `prev_hash` of the first entry: 32 zero bytes, in hex.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event to append; the store assigns `seq`, `prev_hash`, `entry_hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who: `key:<api key id>`, `acme:<account id>`, `system`, `anonymous`.
    pub actor: String,
    /// What: `POST /admin/v1/keys`, `certificate.revoke`, `ca.created`, ...
    pub action: String,
    /// A short, secret-free summary of the request body or event.
    pub summary: String,
    /// HTTP status of the call, when the event is an HTTP request.
    #[serde(default)]
    pub outcome: Option<u16>,
}

/// One stored audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Sequence number, 1, 2, 3, ... without gaps.
    pub seq: u64,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// Short summary.
    pub summary: String,
    /// HTTP status, if an HTTP call.
    #[serde(default)]
    pub outcome: Option<u16>,
    /// Lowercase hex hash of the previous entry ([`GENESIS_HASH`] for seq 1).
    pub prev_hash: String,
    /// Lowercase hex hash of this entry (see the module docs).
    pub entry_hash: String,
}

/// The last entry's sequence number and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    /// Sequence number of the last entry.
    pub seq: u64,
    /// Its `entry_hash`.
    pub hash: String,
}

impl AuditEntry {
    /// Builds the entry that follows `head` (`None`: the first entry).
    pub fn next(head: Option<&AuditHead>, event: &AuditEvent) -> Result<AuditEntry, String> {
        let (seq, prev_hash) = match head {
            None => (1, GENESIS_HASH.to_string()),
            Some(h) => (
                h.seq.checked_add(1).ok_or("audit sequence overflow")?,
                h.hash.clone(),
            ),
        };
        let mut e = AuditEntry {
            seq,
            at: event.at,
            actor: event.actor.clone(),
            action: event.action.clone(),
            summary: event.summary.clone(),
            outcome: event.outcome,
            prev_hash,
            entry_hash: String::new(),
        };
        e.entry_hash = e.compute_hash()?;
        Ok(e)
    }

    /// Checks that this entry is the link that follows `head` (`None`: an
    /// empty log): the next seq, `prev_hash` equal to the head's hash, and
    /// an `entry_hash` that is the hash of its own contents. Used when
    /// entries are written verbatim (`ironseal store import`).
    pub fn check_follows(&self, head: Option<&AuditHead>) -> Result<(), String> {
        let (seq, prev) = match head {
            None => (1, GENESIS_HASH),
            Some(h) => (h.seq.saturating_add(1), h.hash.as_str()),
        };
        if self.seq != seq || self.prev_hash != prev {
            return Err(format!(
                "audit entry {} does not follow the chain (expected seq {seq} after hash {prev})",
                self.seq
            ));
        }
        if self.compute_hash()? != self.entry_hash {
            return Err(format!(
                "audit entry {} does not hash to its entry_hash",
                self.seq
            ));
        }
        Ok(())
    }

    /// The head after this entry.
    pub fn head(&self) -> AuditHead {
        AuditHead {
            seq: self.seq,
            hash: self.entry_hash.clone(),
        }
    }

    /// Recomputes this entry's hash from its contents and `prev_hash`.
    pub fn compute_hash(&self) -> Result<String, String> {
        let prev = hex::decode(&self.prev_hash).map_err(|e| format!("prev_hash: {e}"))?;
        if prev.len() != 32 {
            return Err("prev_hash is not 32 bytes".into());
        }
        let mut v = serde_json::to_value(self).map_err(|e| e.to_string())?;
        if let Value::Object(m) = &mut v {
            m.remove("entry_hash");
        }
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        ctx.update(&prev);
        ctx.update(canonical_json(&v).as_bytes());
        Ok(hex::encode(ctx.finish().as_ref()))
    }
}

/// Canonical JSON: sorted object keys, no whitespace.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                if let Some(x) = m.get(*k) {
                    write_canonical(x, out);
                }
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Why a chain does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// The entry's content does not match its `entry_hash` (modified).
    #[error("entry {seq}: content does not match its hash (modified)")]
    Modified {
        /// Sequence number of the entry.
        seq: u64,
    },
    /// `seq` is not the one expected here (removed or reordered entries).
    #[error("entry {found}: expected sequence number {expected} (entry removed or reordered)")]
    Sequence {
        /// The sequence number that should come next.
        expected: u64,
        /// The one found.
        found: u64,
    },
    /// `prev_hash` is not the previous entry's hash.
    #[error("entry {seq}: prev_hash does not link to the previous entry (removed, replaced or reordered)")]
    BrokenLink {
        /// Sequence number of the entry.
        seq: u64,
    },
    /// The last entry is not the stored head (tail removed or replaced).
    #[error(
        "the log ends at entry {last} but its head says {head_seq} (tail removed or replaced)"
    )]
    Head {
        /// Last seq found (0: none).
        last: u64,
        /// The head's seq.
        head_seq: u64,
    },
}

/// Checks consecutive entries. `prev` is the entry before the first one
/// (`None` when `entries` starts at seq 1); `head`, if given, must be the
/// last entry (pass it when `entries` reaches the end of the log).
pub fn verify_chain(
    entries: &[AuditEntry],
    prev: Option<&AuditHead>,
    head: Option<&AuditHead>,
) -> Result<(), ChainError> {
    let (mut expected_seq, mut expected_prev) = match prev {
        None => (1, GENESIS_HASH.to_string()),
        Some(p) => (p.seq.saturating_add(1), p.hash.clone()),
    };
    for e in entries {
        if e.seq != expected_seq {
            return Err(ChainError::Sequence {
                expected: expected_seq,
                found: e.seq,
            });
        }
        if e.compute_hash().ok().as_deref() != Some(e.entry_hash.as_str()) {
            return Err(ChainError::Modified { seq: e.seq });
        }
        if e.prev_hash != expected_prev {
            return Err(ChainError::BrokenLink { seq: e.seq });
        }
        expected_prev.clone_from(&e.entry_hash);
        expected_seq = e.seq.saturating_add(1);
    }
    if let Some(h) = head {
        let last = expected_seq.saturating_sub(1);
        if last != h.seq || expected_prev != h.hash {
            return Err(ChainError::Head {
                last,
                head_seq: h.seq,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    fn ev(n: u32) -> AuditEvent {
        AuditEvent {
            at: OffsetDateTime::UNIX_EPOCH,
            actor: format!("key:k{n}"),
            action: "POST /admin/v1/x".into(),
            summary: format!("n={n}"),
            outcome: Some(200),
        }
    }

    fn chain(n: u32) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for i in 0..n {
            let head = out.last().map(AuditEntry::head);
            out.push(AuditEntry::next(head.as_ref(), &ev(i)).unwrap());
        }
        out
    }

    #[test]
    fn canonical_sorts_keys() {
        let v = serde_json::json!({"b": 1, "a": {"d": [1, "x"], "c": null}});
        assert_eq!(canonical_json(&v), r#"{"a":{"c":null,"d":[1,"x"]},"b":1}"#);
    }

    #[test]
    fn good_chain_verifies() {
        let c = chain(5);
        let head = c.last().unwrap().head();
        assert_eq!(verify_chain(&c, None, Some(&head)), Ok(()));
        // A window verifies given its predecessor.
        assert_eq!(
            verify_chain(&c[2..], Some(&c[1].head()), Some(&head)),
            Ok(())
        );
        assert_eq!(c[0].prev_hash, GENESIS_HASH);
    }

    #[test]
    fn tampering_is_detected() {
        let c = chain(5);
        let head = c.last().unwrap().head();
        let mut m = c.clone();
        m[2].summary = "changed".into();
        assert_eq!(
            verify_chain(&m, None, Some(&head)),
            Err(ChainError::Modified { seq: 3 })
        );
        // Modified and re-hashed: the next link breaks.
        m[2].entry_hash = m[2].compute_hash().unwrap();
        assert_eq!(
            verify_chain(&m, None, Some(&head)),
            Err(ChainError::BrokenLink { seq: 4 })
        );
        let mut r = c.clone();
        r.remove(1);
        assert!(matches!(
            verify_chain(&r, None, Some(&head)),
            Err(ChainError::Sequence {
                expected: 2,
                found: 3
            })
        ));
        let mut o = c.clone();
        o.swap(1, 2);
        assert!(verify_chain(&o, None, Some(&head)).is_err());
        let t = &c[..4];
        assert!(matches!(
            verify_chain(t, None, Some(&head)),
            Err(ChainError::Head {
                last: 4,
                head_seq: 5
            })
        ));
    }
}
