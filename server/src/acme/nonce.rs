//! Replay nonces (RFC 8555 §6.5) as stateless authenticated tokens.
//!
//! A nonce is `base64url(key id ‖ IV ‖ AES-256-GCM(expiry ‖ 128 random
//! bits))`, the key id also bound as associated data. Issuing one allocates
//! nothing on the server, so a newNonce flood cannot push out the nonce a
//! real client is about to use (the earlier design kept a FIFO set of
//! 200,000 and forgot the oldest). Redemption opens the token, refuses it
//! when it was made under another key (an earlier process, another
//! server), does not authenticate, or has expired, and then records its
//! random part in a [`NonceLedger`] until its expiry: a second redemption
//! is a replay. Every refusal is `badNonce` with a fresh `Replay-Nonce`
//! (§6.5.1), so conforming clients retry once.
//!
//! On the embedded store the key is random per process (nonces do not
//! survive a restart) and the ledger is in memory. On PostgreSQL, where
//! several replicas share one database, the key is derived from the KEK
//! they share ([`NonceStore::shared`]) and used nonces are recorded in the
//! database ([`StoreLedger`], one unique insert per redemption), so a nonce
//! issued by one replica is good on any other, once (issue 11). The in-memory ledger keeps at most
//! [`LEDGER_CAPACITY`] used nonces; when it is full of unexpired entries
//! it refuses further redemptions (fail closed: a replay is never let
//! through to keep availability) until entries expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce as Iv, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ironseal_storage::AccountRecord;

/// How long an issued nonce can be redeemed.
pub const NONCE_LIFETIME_SECS: u64 = 3600;
/// Most used, unexpired nonces the in-memory ledger remembers (about
/// 40 bytes each).
pub const LEDGER_CAPACITY: usize = 1_000_000;

/// Plaintext: expiry (u64, big endian, Unix seconds) ‖ 16 random bytes.
const PLAIN_LEN: usize = 8 + 16;
const TAG_LEN: usize = 16;
const TOKEN_LEN: usize = 1 + NONCE_LEN + PLAIN_LEN + TAG_LEN;

/// Why a nonce was refused; all are `badNonce` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NonceError {
    #[error("the nonce is not one of ours (malformed, forged or from an earlier run)")]
    Invalid,
    #[error("the nonce has expired")]
    Expired,
    #[error("the nonce was already used")]
    Replayed,
    #[error("too many nonces in use; retry shortly")]
    LedgerFull,
    /// The shared ledger could not be asked (database down or failing
    /// over): not the client's fault, so not `badNonce` (which real
    /// clients retry at once) but 503 `serverInternal` with Retry-After.
    #[error("the nonce could not be checked (storage unavailable); retry shortly")]
    Unavailable,
}

/// What a ledger says about a nonce being redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redeemed {
    /// First use: now recorded until its expiry.
    Fresh,
    /// Already recorded.
    Replayed,
    /// The ledger cannot record more until entries expire.
    Full,
    /// The ledger could not be asked (a store error); the nonce was not
    /// recorded and stays unused.
    Unavailable,
}

/// Where used nonces are recorded until they expire. In memory today
/// ([`MemoryLedger`]); the shared store can implement it so that replicas
/// see each other's redemptions.
#[async_trait::async_trait]
pub trait NonceLedger: Send + Sync {
    /// Records nonce `id` as used until `expires` (Unix seconds), given the
    /// time `now`.
    async fn redeem(&self, id: u128, expires: u64, now: u64) -> Redeemed;

    /// [`NonceLedger::redeem`] for a request signed by account
    /// `account_id`: a ledger in the store reads the account in the same
    /// call ([`ironseal_storage::Store::redeem_nonce_reading_account`]);
    /// others leave it [`AccountLookup::NotRead`].
    async fn redeem_reading_account(
        &self,
        id: u128,
        expires: u64,
        now: u64,
        account_id: &str,
    ) -> (Redeemed, AccountLookup) {
        let _ = account_id;
        (self.redeem(id, expires, now).await, AccountLookup::NotRead)
    }
}

/// The signing account as read together with its request's nonce.
#[derive(Debug)]
pub enum AccountLookup {
    /// Not read: the caller asks the store.
    NotRead,
    /// Read in the redemption's store call (`None`: no such account).
    Read(Option<Box<AccountRecord>>),
}

/// A bounded in-process [`NonceLedger`].
pub struct MemoryLedger {
    capacity: usize,
    used: Mutex<HashMap<u128, u64>>,
}

impl MemoryLedger {
    /// A ledger remembering at most `capacity` unexpired nonces.
    pub fn new(capacity: usize) -> MemoryLedger {
        MemoryLedger {
            capacity,
            used: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait::async_trait]
impl NonceLedger for MemoryLedger {
    async fn redeem(&self, id: u128, expires: u64, now: u64) -> Redeemed {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        if used.contains_key(&id) {
            return Redeemed::Replayed;
        }
        if used.len() >= self.capacity {
            used.retain(|_, exp| *exp > now);
            if used.len() >= self.capacity {
                return Redeemed::Full;
            }
        }
        used.insert(id, expires);
        Redeemed::Fresh
    }
}

/// A [`NonceLedger`] in the shared store: every replica on one database
/// sees every redemption (issue 11). A store error refuses the request
/// (fail closed: 503 with Retry-After, not `badNonce`, since the nonce
/// itself may be good) and is logged.
pub struct StoreLedger {
    store: std::sync::Arc<dyn ironseal_storage::Store>,
}

impl StoreLedger {
    /// A ledger in `store`.
    pub fn new(store: std::sync::Arc<dyn ironseal_storage::Store>) -> StoreLedger {
        StoreLedger { store }
    }
}

#[async_trait::async_trait]
impl NonceLedger for StoreLedger {
    async fn redeem(&self, id: u128, expires: u64, _now: u64) -> Redeemed {
        match self.store.redeem_nonce(id, expires).await {
            Ok(true) => Redeemed::Fresh,
            Ok(false) => Redeemed::Replayed,
            Err(e) => {
                tracing::warn!(error = %e, "nonce ledger: the store refused a redemption");
                Redeemed::Unavailable
            }
        }
    }

    async fn redeem_reading_account(
        &self,
        id: u128,
        expires: u64,
        _now: u64,
        account_id: &str,
    ) -> (Redeemed, AccountLookup) {
        match self
            .store
            .redeem_nonce_reading_account(id, expires, account_id)
            .await
        {
            Ok((true, account)) => (Redeemed::Fresh, AccountLookup::Read(account.map(Box::new))),
            Ok((false, _)) => (Redeemed::Replayed, AccountLookup::NotRead),
            Err(e) => {
                tracing::warn!(error = %e, "nonce ledger: the store refused a redemption");
                (Redeemed::Unavailable, AccountLookup::NotRead)
            }
        }
    }
}

/// The HKDF purpose of the shared nonce key ([`NonceStore::shared`]).
const SHARED_KEY_PURPOSE: &str = "ironseal acme nonce key v1";

/// Issues and redeems nonces (see the module docs).
pub struct NonceStore {
    key_id: u8,
    key: LessSafeKey,
    ledger: Box<dyn NonceLedger>,
    lifetime: u64,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl NonceStore {
    /// A store with a fresh random key and an in-memory ledger.
    pub fn new() -> NonceStore {
        Self::with_ledger(Box::new(MemoryLedger::new(LEDGER_CAPACITY)))
    }

    /// A store with a fresh random key recording redemptions in `ledger`.
    pub fn with_ledger(ledger: Box<dyn NonceLedger>) -> NonceStore {
        let mut raw: [u8; 32] = rand::random();
        let key = UnboundKey::new(&AES_256_GCM, &raw)
            .map(LessSafeKey::new)
            .unwrap_or_else(|_| unreachable!("a 32-byte key is valid for AES-256-GCM"));
        zeroize::Zeroize::zeroize(&mut raw);
        NonceStore {
            key_id: rand::random(),
            key,
            ledger,
            lifetime: NONCE_LIFETIME_SECS,
        }
    }

    /// A store whose key every process holding `kek` derives alike (HKDF,
    /// [`ironseal_ca_core::sealed::Kek::derive`]), so replicas accept each
    /// other's nonces; `ledger` must then be shared too ([`StoreLedger`]),
    /// or a nonce could be redeemed once per replica. Nonces also stay
    /// valid across a restart, which the shared ledger makes safe.
    pub fn shared(kek: &ironseal_ca_core::sealed::Kek, ledger: Box<dyn NonceLedger>) -> NonceStore {
        let raw = kek.derive(SHARED_KEY_PURPOSE);
        let key = UnboundKey::new(&AES_256_GCM, &raw[..])
            .map(LessSafeKey::new)
            .unwrap_or_else(|_| unreachable!("a 32-byte key is valid for AES-256-GCM"));
        NonceStore {
            // Any fixed id: it tells this key from random per-process ones
            // only probabilistically, which the AEAD check then settles.
            key_id: raw[0],
            key,
            ledger,
            lifetime: NONCE_LIFETIME_SECS,
        }
    }

    /// Issues a fresh nonce.
    pub fn issue(&self) -> String {
        self.issue_at(unix_now())
    }

    /// Issues a nonce at Unix time `now`.
    pub fn issue_at(&self, now: u64) -> String {
        let iv: [u8; NONCE_LEN] = rand::random();
        let random: [u8; 16] = rand::random();
        let mut buf = Vec::with_capacity(TOKEN_LEN);
        buf.push(self.key_id);
        buf.extend_from_slice(&iv);
        let mut sealed = Vec::with_capacity(PLAIN_LEN + TAG_LEN);
        sealed.extend_from_slice(&now.saturating_add(self.lifetime).to_be_bytes());
        sealed.extend_from_slice(&random);
        // Sealing with a valid key and a fresh IV cannot fail; the
        // nonce would then simply be refused on redemption.
        let _ = self.key.seal_in_place_append_tag(
            Iv::assume_unique_for_key(iv),
            Aad::from([self.key_id]),
            &mut sealed,
        );
        buf.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(buf)
    }

    /// Redeems a nonce: `Ok` exactly once for each nonce we issued and
    /// that has not expired.
    pub async fn redeem(&self, nonce: &str) -> Result<(), NonceError> {
        self.redeem_at(nonce, unix_now()).await
    }

    /// Redeems a nonce at Unix time `now`.
    pub async fn redeem_at(&self, nonce: &str, now: u64) -> Result<(), NonceError> {
        let (id, expires) = self.open_at(nonce, now)?;
        redeemed(self.ledger.redeem(id, expires, now).await)
    }

    /// [`NonceStore::redeem`] for a request signed by account `account_id`
    /// (a kid): where the ledger is the store, the account is read in the
    /// same store call.
    pub async fn redeem_reading_account(
        &self,
        nonce: &str,
        account_id: &str,
    ) -> Result<AccountLookup, NonceError> {
        let now = unix_now();
        let (id, expires) = self.open_at(nonce, now)?;
        let (r, account) = self
            .ledger
            .redeem_reading_account(id, expires, now, account_id)
            .await;
        redeemed(r).map(|()| account)
    }

    /// Opens a nonce we issued that has not expired at `now`: its random
    /// part (the ledger key) and its expiry.
    fn open_at(&self, nonce: &str, now: u64) -> Result<(u128, u64), NonceError> {
        if nonce.len() > 2 * TOKEN_LEN {
            return Err(NonceError::Invalid);
        }
        let raw = URL_SAFE_NO_PAD
            .decode(nonce)
            .map_err(|_| NonceError::Invalid)?;
        if raw.len() != TOKEN_LEN || raw[0] != self.key_id {
            return Err(NonceError::Invalid);
        }
        let mut iv = [0u8; NONCE_LEN];
        iv.copy_from_slice(&raw[1..1 + NONCE_LEN]);
        let mut sealed = raw[1 + NONCE_LEN..].to_vec();
        let plain = self
            .key
            .open_in_place(
                Iv::assume_unique_for_key(iv),
                Aad::from([self.key_id]),
                &mut sealed,
            )
            .map_err(|_| NonceError::Invalid)?;
        let (exp, random) = plain.split_at(8);
        let mut e = [0u8; 8];
        e.copy_from_slice(exp);
        let expires = u64::from_be_bytes(e);
        if now >= expires {
            return Err(NonceError::Expired);
        }
        let mut r = [0u8; 16];
        r.copy_from_slice(random);
        Ok((u128::from_be_bytes(r), expires))
    }
}

/// A ledger's answer as the redemption's result.
fn redeemed(r: Redeemed) -> Result<(), NonceError> {
    match r {
        Redeemed::Fresh => Ok(()),
        Redeemed::Replayed => Err(NonceError::Replayed),
        Redeemed::Full => Err(NonceError::LedgerFull),
        Redeemed::Unavailable => Err(NonceError::Unavailable),
    }
}

impl Default for NonceStore {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests panic on unexpected failures")]

    use std::collections::HashSet;

    use super::*;

    /// Issue 11: replicas holding one KEK and one store accept each
    /// other's nonces, each once; a replica with another KEK refuses them.
    #[tokio::test]
    async fn replicas_sharing_the_kek_and_store_accept_each_others_nonces_once() {
        use ironseal_ca_core::sealed::Kek;
        use ironseal_storage::{MemoryStore, Store};
        let kek = Kek::from_bytes(&[3u8; 32]).unwrap();
        let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(MemoryStore::new());
        let replica = || NonceStore::shared(&kek, Box::new(StoreLedger::new(store.clone())));
        let (a, b) = (replica(), replica());
        let n = a.issue();
        assert_eq!(b.redeem(&n).await, Ok(()));
        assert_eq!(a.redeem(&n).await, Err(NonceError::Replayed));
        assert_eq!(b.redeem(&n).await, Err(NonceError::Replayed));
        let other = NonceStore::shared(
            &Kek::from_bytes(&[4u8; 32]).unwrap(),
            Box::new(StoreLedger::new(store.clone())),
        );
        assert_eq!(other.redeem(&a.issue()).await, Err(NonceError::Invalid));
        // Per-process keys (the embedded store) never accept a replica's.
        assert_eq!(
            NonceStore::new().redeem(&a.issue()).await,
            Err(NonceError::Invalid)
        );
    }

    /// A ledger that cannot be asked refuses the nonce as Unavailable
    /// (503, retry), never as a replay, and leaves it redeemable.
    #[tokio::test]
    async fn an_unavailable_ledger_is_not_a_replay() {
        struct Down(std::sync::atomic::AtomicBool);
        #[async_trait::async_trait]
        impl NonceLedger for Down {
            async fn redeem(&self, _: u128, _: u64, _: u64) -> Redeemed {
                if self.0.load(std::sync::atomic::Ordering::SeqCst) {
                    Redeemed::Unavailable
                } else {
                    Redeemed::Fresh
                }
            }
        }
        let down = std::sync::Arc::new(Down(true.into()));
        struct Shared(std::sync::Arc<Down>);
        #[async_trait::async_trait]
        impl NonceLedger for Shared {
            async fn redeem(&self, id: u128, e: u64, n: u64) -> Redeemed {
                self.0.redeem(id, e, n).await
            }
        }
        let s = NonceStore::with_ledger(Box::new(Shared(down.clone())));
        let n = s.issue();
        assert_eq!(s.redeem(&n).await, Err(NonceError::Unavailable));
        down.0.store(false, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(s.redeem(&n).await, Ok(()), "the nonce stays good");
    }

    #[tokio::test]
    async fn nonce_is_accepted_once() {
        let s = NonceStore::new();
        let n = s.issue();
        assert_eq!(s.redeem(&n).await, Ok(()));
        assert_eq!(s.redeem(&n).await, Err(NonceError::Replayed));
    }

    #[tokio::test]
    async fn unknown_and_foreign_nonces_are_rejected() {
        let a = NonceStore::new();
        let b = NonceStore::new();
        let n = a.issue();
        assert!(b.redeem(&n).await.is_err());
        assert_eq!(a.redeem("bogus").await, Err(NonceError::Invalid));
        assert_eq!(a.redeem("").await, Err(NonceError::Invalid));
        assert_eq!(
            a.redeem(&"A".repeat(10_000)).await,
            Err(NonceError::Invalid)
        );
        // Still good with a after b refused it.
        assert_eq!(a.redeem(&n).await, Ok(()));
    }

    #[tokio::test]
    async fn nonces_are_distinct() {
        let s = NonceStore::new();
        let set: HashSet<String> = (0..1000).map(|_| s.issue()).collect();
        assert_eq!(set.len(), 1000);
    }

    /// Hardening (issue 10 item 15): a newNonce flood larger than the old
    /// FIFO capacity (200,000) does not evict a valid older nonce.
    #[tokio::test]
    async fn a_new_nonce_flood_does_not_evict_older_nonces() {
        let s = NonceStore::new();
        let old = s.issue();
        for _ in 0..300_000 {
            let _ = s.issue();
        }
        assert_eq!(s.redeem(&old).await, Ok(()));
        assert_eq!(s.redeem(&old).await, Err(NonceError::Replayed));
    }

    #[tokio::test]
    async fn expired_and_forged_nonces_are_refused() {
        let s = NonceStore::new();
        let now = 1_800_000_000;
        let n = s.issue_at(now);
        assert_eq!(
            s.redeem_at(&n, now + NONCE_LIFETIME_SECS).await,
            Err(NonceError::Expired)
        );
        assert_eq!(s.redeem_at(&n, now + NONCE_LIFETIME_SECS - 1).await, Ok(()));
        // Any flipped bit (key id, IV, ciphertext, tag) fails.
        let raw = URL_SAFE_NO_PAD.decode(s.issue_at(now)).unwrap();
        for i in [0, 1, 1 + NONCE_LEN, TOKEN_LEN - 1] {
            let mut f = raw.clone();
            f[i] ^= 1;
            assert_eq!(
                s.redeem_at(&URL_SAFE_NO_PAD.encode(&f), now).await,
                Err(NonceError::Invalid),
                "byte {i}"
            );
        }
        // A token of the right shape made up by a client.
        let made_up = URL_SAFE_NO_PAD.encode([0u8; TOKEN_LEN]);
        assert_eq!(s.redeem_at(&made_up, now).await, Err(NonceError::Invalid));
    }

    #[tokio::test]
    async fn a_full_ledger_refuses_rather_than_forgets() {
        let s = NonceStore::with_ledger(Box::new(MemoryLedger::new(2)));
        let now = 1_800_000_000;
        let (a, b, c) = (s.issue_at(now), s.issue_at(now), s.issue_at(now + 10));
        assert_eq!(s.redeem_at(&a, now).await, Ok(()));
        assert_eq!(s.redeem_at(&b, now).await, Ok(()));
        assert_eq!(s.redeem_at(&c, now).await, Err(NonceError::LedgerFull));
        // Replays are still caught when full.
        assert_eq!(s.redeem_at(&a, now).await, Err(NonceError::Replayed));
        // Once a and b have expired their slots are reused.
        let later = now + NONCE_LIFETIME_SECS;
        assert_eq!(s.redeem_at(&c, later).await, Ok(()));
    }
}
