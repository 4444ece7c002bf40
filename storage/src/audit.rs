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
//! # Keyed entries
//!
//! A bare hash chain only proves that entries were not edited by someone
//! who did not recompute the later hashes. Whoever can write the database
//! can recompute them all. So each entry also carries a MAC when the store
//! has an audit key ([`AuditMacKey`], random, kept sealed under the KEK by
//! the server and never stored in clear):
//!
//! ```text
//! mac = HMAC-SHA256( audit key, "ironseal-audit-mac/1" ‖ entry_hash (32 raw bytes) )
//! ```
//!
//! The `mac` member is left out of the hashed JSON (like `entry_hash`), so
//! entries written before the key existed keep their hashes. A chain is
//! unkeyed up to the key's first entry (`keyed_from`, recorded when the key
//! was made and bound into its sealing) and keyed from there on: an entry
//! without a MAC after that point is a downgrade and does not verify.
//!
//! [`ChainVerifier`] (and the one-shot [`verify_chain`]) recomputes the
//! hashes of a run of consecutive entries, checks the MACs, and reports the
//! first entry that was modified, removed (a gap in `seq` or a broken link),
//! reordered or stripped of its MAC.

use std::fmt;

use aws_lc_rs::hmac;
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
    /// Lowercase hex HMAC-SHA256 of `entry_hash` under the audit key;
    /// absent on entries written before the store had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

/// Domain separation of the entry MAC.
const MAC_CONTEXT: &[u8] = b"ironseal-audit-mac/1";

/// The audit log's MAC key (HMAC-SHA256, 32 bytes). `Debug` never prints
/// it; the raw bytes are not kept outside aws-lc's key object.
#[derive(Clone)]
pub struct AuditMacKey(hmac::Key);

impl AuditMacKey {
    /// Length of a key in bytes.
    pub const LEN: usize = 32;

    /// Takes exactly [`AuditMacKey::LEN`] bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<AuditMacKey, String> {
        if bytes.len() != Self::LEN {
            return Err(format!(
                "audit MAC key: need {} bytes, got {}",
                Self::LEN,
                bytes.len()
            ));
        }
        Ok(AuditMacKey(hmac::Key::new(hmac::HMAC_SHA256, bytes)))
    }

    fn tag(&self, entry_hash: &[u8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(MAC_CONTEXT);
        ctx.update(entry_hash);
        ctx.sign()
    }

    /// The MAC of an entry hash (lowercase hex in, lowercase hex out).
    pub fn mac(&self, entry_hash_hex: &str) -> Result<String, String> {
        let h = hex::decode(entry_hash_hex).map_err(|e| format!("entry_hash: {e}"))?;
        Ok(hex::encode(self.tag(&h).as_ref()))
    }

    /// Whether `mac_hex` is the MAC of `entry_hash_hex` (constant time).
    pub fn check(&self, entry_hash_hex: &str, mac_hex: &str) -> bool {
        let (Ok(h), Ok(m)) = (hex::decode(entry_hash_hex), hex::decode(mac_hex)) else {
            return false;
        };
        let mut msg = MAC_CONTEXT.to_vec();
        msg.extend_from_slice(&h);
        hmac::verify(&self.0, &msg, &m).is_ok()
    }
}

impl fmt::Debug for AuditMacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditMacKey([redacted])")
    }
}

/// Name of the audit MAC key's [`AuditKeyRecord`].
pub const AUDIT_MAC_KEY: &str = "audit-mac";
/// Name of the checkpoint signing key's [`AuditKeyRecord`].
pub const AUDIT_CHECKPOINT_KEY: &str = "audit-checkpoint";

/// A key of the audit log, kept in the store sealed under the KEK (the
/// server seals and opens it; the store only keeps the bytes). One record
/// per name, created once and never replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditKeyRecord {
    /// [`AUDIT_MAC_KEY`] or [`AUDIT_CHECKPOINT_KEY`].
    pub name: String,
    /// The key sealed under the KEK; the sealing binds `name` and
    /// `keyed_from`, so neither can be changed without the KEK.
    #[serde(with = "crate::records::b64")]
    pub sealed_key: Vec<u8>,
    /// The public key, for signing keys (SubjectPublicKeyInfo DER).
    #[serde(with = "crate::records::b64", default)]
    pub public_key: Vec<u8>,
    /// The first audit seq written with this key (the head's seq + 1 when
    /// it was made).
    pub keyed_from: u64,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
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
    /// Builds the entry that follows `head` (`None`: the first entry),
    /// with a MAC when `key` is given.
    pub fn next(
        head: Option<&AuditHead>,
        event: &AuditEvent,
        key: Option<&AuditMacKey>,
    ) -> Result<AuditEntry, String> {
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
            mac: None,
        };
        e.entry_hash = e.compute_hash()?;
        e.mac = key.map(|k| k.mac(&e.entry_hash)).transpose()?;
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

    /// Recomputes this entry's hash from its contents and `prev_hash`
    /// (`entry_hash` and `mac` left out).
    pub fn compute_hash(&self) -> Result<String, String> {
        let prev = hex::decode(&self.prev_hash).map_err(|e| format!("prev_hash: {e}"))?;
        if prev.len() != 32 {
            return Err("prev_hash is not 32 bytes".into());
        }
        let mut v = serde_json::to_value(self).map_err(|e| e.to_string())?;
        if let Value::Object(m) = &mut v {
            m.remove("entry_hash");
            m.remove("mac");
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
    /// The entry's MAC is not the MAC of its hash under the audit key.
    #[error("entry {seq}: MAC does not match (rewritten by someone without the audit key)")]
    Mac {
        /// Sequence number of the entry.
        seq: u64,
    },
    /// An entry without a MAC where the chain is keyed (a downgrade).
    #[error("entry {seq}: no MAC, but the chain is keyed from entry {keyed_from} (MAC removed: downgrade)")]
    MissingMac {
        /// Sequence number of the entry.
        seq: u64,
        /// The first keyed entry.
        keyed_from: u64,
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

/// Checks consecutive entries, fed in order one page at a time.
#[derive(Debug)]
pub struct ChainVerifier<'k> {
    key: Option<&'k AuditMacKey>,
    keyed_from: Option<u64>,
    next_seq: u64,
    prev_hash: String,
    checked: u64,
}

impl<'k> ChainVerifier<'k> {
    /// Starts after `prev` (`None`: at seq 1). With `key`, every MAC is
    /// checked; `keyed_from` is the key record's first keyed seq (entries
    /// from there on must carry a MAC). Without either, the first entry
    /// found with a MAC starts the keyed part: a later entry without one is
    /// a downgrade all the same.
    pub fn new(
        key: Option<&'k AuditMacKey>,
        keyed_from: Option<u64>,
        prev: Option<&AuditHead>,
    ) -> ChainVerifier<'k> {
        let (next_seq, prev_hash) = match prev {
            None => (1, GENESIS_HASH.to_string()),
            Some(p) => (p.seq.saturating_add(1), p.hash.clone()),
        };
        ChainVerifier {
            key,
            keyed_from,
            next_seq,
            prev_hash,
            checked: 0,
        }
    }

    /// Checks the next run of entries.
    pub fn feed(&mut self, entries: &[AuditEntry]) -> Result<(), ChainError> {
        for e in entries {
            if e.seq != self.next_seq {
                return Err(ChainError::Sequence {
                    expected: self.next_seq,
                    found: e.seq,
                });
            }
            if e.compute_hash().ok().as_deref() != Some(e.entry_hash.as_str()) {
                return Err(ChainError::Modified { seq: e.seq });
            }
            if e.prev_hash != self.prev_hash {
                return Err(ChainError::BrokenLink { seq: e.seq });
            }
            match (&e.mac, self.keyed_from) {
                (None, Some(from)) if e.seq >= from => {
                    return Err(ChainError::MissingMac {
                        seq: e.seq,
                        keyed_from: from,
                    })
                }
                (Some(mac), from) => {
                    if let Some(key) = self.key {
                        if !key.check(&e.entry_hash, mac) {
                            return Err(ChainError::Mac { seq: e.seq });
                        }
                    }
                    if from.is_none() {
                        self.keyed_from = Some(e.seq);
                    }
                }
                (None, _) => {}
            }
            self.prev_hash.clone_from(&e.entry_hash);
            self.next_seq = e.seq.saturating_add(1);
            self.checked += 1;
        }
        Ok(())
    }

    /// Checks that the entries fed so far end at `head`.
    pub fn finish(&self, head: &AuditHead) -> Result<(), ChainError> {
        let last = self.next_seq.saturating_sub(1);
        if last != head.seq || self.prev_hash != head.hash {
            return Err(ChainError::Head {
                last,
                head_seq: head.seq,
            });
        }
        Ok(())
    }

    /// Entries checked so far.
    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// The first keyed entry known so far (from the key record, or the
    /// first entry seen with a MAC).
    pub fn keyed_from(&self) -> Option<u64> {
        self.keyed_from
    }

    /// The last entry checked, as a head (`None` before any).
    pub fn last(&self) -> Option<AuditHead> {
        (self.checked > 0).then(|| AuditHead {
            seq: self.next_seq.saturating_sub(1),
            hash: self.prev_hash.clone(),
        })
    }
}

/// Checks consecutive entries without the audit key: hashes, links,
/// sequence and no downgrade after the first entry with a MAC (MACs
/// themselves need the key: [`ChainVerifier`]). `prev` is the entry
/// before the first one (`None` when `entries` starts at seq 1); `head`,
/// if given, must be the last entry (pass it when `entries` reaches the
/// end of the log).
pub fn verify_chain(
    entries: &[AuditEntry],
    prev: Option<&AuditHead>,
    head: Option<&AuditHead>,
) -> Result<(), ChainError> {
    let mut v = ChainVerifier::new(None, None, prev);
    v.feed(entries)?;
    match head {
        Some(h) => v.finish(h),
        None => Ok(()),
    }
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
            out.push(AuditEntry::next(head.as_ref(), &ev(i), None).unwrap());
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

    fn keyed(n: u32, unkeyed: u32, key: &AuditMacKey) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for i in 0..n {
            let head = out.last().map(AuditEntry::head);
            let k = (i >= unkeyed).then_some(key);
            out.push(AuditEntry::next(head.as_ref(), &ev(i), k).unwrap());
        }
        out
    }

    fn check(
        c: &[AuditEntry],
        key: Option<&AuditMacKey>,
        from: Option<u64>,
    ) -> Result<Option<u64>, ChainError> {
        let mut v = ChainVerifier::new(key, from, None);
        v.feed(c)?;
        v.finish(&c.last().unwrap().head())?;
        Ok(v.keyed_from())
    }

    /// Hardening (issue 10 item 14): without the audit key, a database
    /// writer who edits an entry and recomputes every later hash no longer
    /// gets a chain that verifies.
    #[test]
    fn rewritten_and_rehashed_entries_fail_the_mac() {
        let key = AuditMacKey::from_bytes(&[5u8; 32]).unwrap();
        let c = keyed(6, 2, &key);
        assert!(c[0].mac.is_none() && c[2].mac.is_some());
        assert_eq!(check(&c, Some(&key), Some(3)), Ok(Some(3)));
        // Old entries keep their hashes: `mac` is not hashed.
        assert_eq!(c[..2], chain(2)[..]);
        // Edit entry 4 and recompute every hash from there (the attacker
        // has no key, so keeps or drops the old MACs).
        let mut m = c.clone();
        m[3].summary = "rewritten".into();
        for i in 3..m.len() {
            m[i].prev_hash = m[i - 1].entry_hash.clone();
            m[i].entry_hash = m[i].compute_hash().unwrap();
        }
        assert_eq!(verify_chain(&m, None, Some(&m[5].head())), Ok(()));
        assert_eq!(
            check(&m, Some(&key), Some(3)),
            Err(ChainError::Mac { seq: 4 })
        );
        // A rewrite in the unkeyed part breaks the first keyed MAC.
        let mut u = c.clone();
        u[0].summary = "rewritten".into();
        for i in 0..u.len() {
            if i > 0 {
                u[i].prev_hash = u[i - 1].entry_hash.clone();
            }
            u[i].entry_hash = u[i].compute_hash().unwrap();
        }
        assert_eq!(
            check(&u, Some(&key), Some(3)),
            Err(ChainError::Mac { seq: 3 })
        );
        // Another key does not verify.
        let other = AuditMacKey::from_bytes(&[6u8; 32]).unwrap();
        assert_eq!(
            check(&c, Some(&other), Some(3)),
            Err(ChainError::Mac { seq: 3 })
        );
    }

    /// A MAC removed after the chain became keyed is a downgrade, with or
    /// without the key record's `keyed_from`.
    #[test]
    fn stripped_macs_are_a_downgrade() {
        let key = AuditMacKey::from_bytes(&[5u8; 32]).unwrap();
        let mut c = keyed(5, 1, &key);
        c[3].mac = None;
        let down = Err(ChainError::MissingMac {
            seq: 4,
            keyed_from: 2,
        });
        assert_eq!(check(&c, Some(&key), Some(2)), down);
        assert_eq!(check(&c, None, None), down);
        assert_eq!(
            verify_chain(&c, None, Some(&c[4].head())),
            Err(ChainError::MissingMac {
                seq: 4,
                keyed_from: 2
            })
        );
        // Every MAC stripped: the key record still says where keying began.
        for e in &mut c {
            e.mac = None;
        }
        assert_eq!(
            check(&c, Some(&key), Some(2)),
            Err(ChainError::MissingMac {
                seq: 2,
                keyed_from: 2
            })
        );
        // A store from before keys: unkeyed, and says so.
        assert_eq!(check(&chain(3), Some(&key), None), Ok(None));
        assert_eq!(format!("{:?}", key), "AuditMacKey([redacted])".to_string());
    }
}
