//! Replay nonces (RFC 8555 §6.5): issued on every ACME response, each
//! accepted once. Held in memory: after a restart old nonces are rejected
//! with `badNonce`, which carries a fresh nonce, and clients retry (§6.5.1).

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// How many unredeemed nonces are remembered; older ones are forgotten first.
const CAPACITY: usize = 200_000;

/// A bounded set of outstanding nonces.
pub struct NonceStore {
    /// Per-process prefix so nonces from an earlier run are never accepted.
    prefix: String,
    inner: Mutex<Inner>,
}

struct Inner {
    live: HashSet<String>,
    order: VecDeque<String>,
}

impl NonceStore {
    /// Creates a store whose nonces carry a random per-process prefix.
    pub fn new() -> NonceStore {
        let prefix: [u8; 6] = rand::random();
        NonceStore {
            prefix: URL_SAFE_NO_PAD.encode(prefix),
            inner: Mutex::new(Inner {
                live: HashSet::new(),
                order: VecDeque::new(),
            }),
        }
    }

    /// Issues a fresh nonce: base64url, 128 random bits after the prefix.
    pub fn issue(&self) -> String {
        let body: [u8; 16] = rand::random();
        let nonce = format!("{}{}", self.prefix, URL_SAFE_NO_PAD.encode(body));
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.order.len() >= CAPACITY {
            if let Some(old) = inner.order.pop_front() {
                inner.live.remove(&old);
            }
        }
        inner.live.insert(nonce.clone());
        inner.order.push_back(nonce.clone());
        nonce
    }

    /// Redeems a nonce: true exactly once for each issued nonce.
    pub fn redeem(&self, nonce: &str) -> bool {
        if !nonce.starts_with(&self.prefix) {
            return false;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        // The VecDeque keeps the stale entry; it is skipped when evicted.
        inner.live.remove(nonce)
    }
}

impl Default for NonceStore {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_is_accepted_once() {
        let s = NonceStore::new();
        let n = s.issue();
        assert!(s.redeem(&n));
        assert!(!s.redeem(&n));
    }

    #[test]
    fn unknown_and_foreign_nonces_are_rejected() {
        let a = NonceStore::new();
        let b = NonceStore::new();
        let n = a.issue();
        assert!(!b.redeem(&n));
        assert!(!a.redeem("bogus"));
    }

    #[test]
    fn nonces_are_distinct() {
        let s = NonceStore::new();
        let set: HashSet<String> = (0..1000).map(|_| s.issue()).collect();
        assert_eq!(set.len(), 1000);
    }
}
