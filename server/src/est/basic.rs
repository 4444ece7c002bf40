//! HTTP Basic authentication for EST (RFC 7030 §3.2.3, RFC 7617): EST
//! users kept per tenant in the store with a slow salted hash of their
//! password, checked in constant time, failed attempts rate limited per
//! label and user name.
//!
//! The hash is PBKDF2-HMAC-SHA512 (RFC 8018 §5.2) from aws-lc-rs (already
//! the server's crypto library), 210,000 iterations (the OWASP Password
//! Storage Cheat Sheet's figure for that PRF), 16-byte random salt, stored
//! as `$pbkdf2-sha512$i=<iterations>$<salt>$<hash>` (unpadded base64).
//! Verification uses `aws_lc_rs::pbkdf2::verify`, which compares in
//! constant time; an unknown or disabled user costs the same hash, so
//! timing does not tell which names exist.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::pbkdf2;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// PBKDF2 iterations for new hashes.
pub const ITERATIONS: u32 = 210_000;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 64;
const PREFIX: &str = "$pbkdf2-sha512$i=";
/// Longest accepted user name and password (bytes).
pub use ironseal_protocol::admin::MAX_CREDENTIAL_LEN;
/// Failed attempts per label and user name: a burst of this many, then
/// one more per [`FAILURE_REFILL`].
pub const FAILURE_BURST: u32 = 5;
/// How often one more failed attempt is allowed after the burst.
pub const FAILURE_REFILL: Duration = Duration::from_secs(12);
/// Tracked names above which the limiter forgets idle entries.
const MAX_TRACKED: usize = 10_000;

/// A new hash of `password`.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; SALT_LEN];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| "no randomness".to_string())?;
    Ok(hash_with(password, &salt, ITERATIONS))
}

fn hash_with(password: &str, salt: &[u8], iterations: u32) -> String {
    let mut out = [0u8; HASH_LEN];
    let n = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA512,
        n,
        salt,
        password.as_bytes(),
        &mut out,
    );
    format!(
        "{PREFIX}{iterations}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    )
}

/// Whether `password` matches `stored` (constant-time comparison). A
/// malformed stored hash never matches.
pub fn verify_password(password: &str, stored: &str) -> bool {
    let Some(rest) = stored.strip_prefix(PREFIX) else {
        return false;
    };
    let mut parts = rest.split('$');
    let (Some(i), Some(salt), Some(hash), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Some(i), Ok(salt), Ok(hash)) = (
        i.parse::<u32>().ok().and_then(NonZeroU32::new),
        STANDARD_NO_PAD.decode(salt),
        STANDARD_NO_PAD.decode(hash),
    ) else {
        return false;
    };
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA512,
        i,
        &salt,
        password.as_bytes(),
        &hash,
    )
    .is_ok()
}

/// Spends the time of one verification without a stored hash (unknown
/// or disabled users), so that refusals take the same time.
pub fn verify_nobody(password: &str) {
    let _ = hash_with(password, &[0u8; SALT_LEN], ITERATIONS);
}

pub use ironseal_protocol::est::basic_auth::{parse_basic, Credentials};

/// Failed Basic attempts per `label/username` (GCRA): once the burst is
/// spent, further attempts are refused without checking the password
/// until the bucket refills. In the process (governor) by default; in the
/// store's rate buckets with [`FailureLimiter::shared`] (PostgreSQL), so
/// a lockout holds on every replica (issue 11).
pub struct FailureLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
    locked: Mutex<HashMap<String, Instant>>,
    /// The store holding the buckets, and the rate, when shared.
    shared: Option<(
        std::sync::Arc<dyn ironseal_storage::Store>,
        ironseal_storage::Gcra,
    )>,
}

impl Default for FailureLimiter {
    fn default() -> Self {
        FailureLimiter::new(FAILURE_BURST, FAILURE_REFILL)
    }
}

impl FailureLimiter {
    /// A limiter allowing `burst` failures, then one per `refill`.
    pub fn new(burst: u32, refill: Duration) -> FailureLimiter {
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(refill.max(Duration::from_millis(1)))
            .unwrap_or_else(|| Quota::per_second(burst))
            .allow_burst(burst);
        FailureLimiter {
            limiter: RateLimiter::keyed(quota),
            locked: Mutex::new(HashMap::new()),
            shared: None,
        }
    }

    /// A limiter whose buckets live in `store` (one per label and name,
    /// key `est-basic:<label>/<name>`), shared by every process on it: a
    /// burst of `burst` failures, then one per `refill`, as
    /// [`FailureLimiter::new`]. A store error admits the attempt (logged):
    /// the password is still checked.
    pub fn shared(
        burst: u32,
        refill: Duration,
        store: std::sync::Arc<dyn ironseal_storage::Store>,
    ) -> FailureLimiter {
        let gcra = ironseal_storage::Gcra {
            interval_ns: i64::try_from(refill.max(Duration::from_millis(1)).as_nanos())
                .unwrap_or(i64::MAX),
            burst: burst.max(1),
        };
        FailureLimiter {
            shared: Some((store, gcra)),
            ..FailureLimiter::new(burst, refill)
        }
    }

    fn key(label: &str, username: &str) -> String {
        format!("{label}/{username}")
    }

    /// One operation on the shared bucket of `label/username`; `None` when
    /// not shared or the store failed.
    async fn shared_op(
        &self,
        label: &str,
        username: &str,
        op: ironseal_storage::BucketOp,
    ) -> Option<(ironseal_storage::Bucket, ironseal_storage::Gcra, i64)> {
        let (store, gcra) = self.shared.as_ref()?;
        let now = i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos())
            .unwrap_or(i64::MAX);
        let key = format!("est-basic:{}", Self::key(label, username));
        match store.rate_bucket(&key, op, *gcra, now).await {
            Ok(b) => Some((b, *gcra, now)),
            Err(e) => {
                tracing::warn!(error = %e, "EST Basic failure bucket unavailable; admitting");
                None
            }
        }
    }

    /// `Some(wait)` while `username` on `label` is locked out.
    pub async fn locked(&self, label: &str, username: &str) -> Option<Duration> {
        if self.shared.is_some() {
            let (b, gcra, now) = self
                .shared_op(label, username, ironseal_storage::BucketOp::Peek)
                .await?;
            let over = b.over_ns(gcra, now);
            return (over > 0).then(|| Duration::from_nanos(over.unsigned_abs()));
        }
        let now = Instant::now();
        let mut g = self.locked.lock().unwrap_or_else(|e| e.into_inner());
        let key = Self::key(label, username);
        match g.get(&key) {
            Some(until) if *until > now => Some(*until - now),
            Some(_) => {
                g.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Counts one failed attempt; locks the name out once the burst is
    /// spent.
    pub async fn failed(&self, label: &str, username: &str) {
        if self.shared.is_some() {
            // Counted even over the budget, at most one interval past it:
            // that is how long the name stays locked out.
            let _ = self
                .shared_op(label, username, ironseal_storage::BucketOp::Force)
                .await;
            return;
        }
        let key = Self::key(label, username);
        if let Err(not_until) = self.limiter.check_key(&key) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let mut g = self.locked.lock().unwrap_or_else(|e| e.into_inner());
            if g.len() > MAX_TRACKED {
                let now = Instant::now();
                g.retain(|_, until| *until > now);
            }
            g.insert(key, Instant::now() + wait.max(Duration::from_secs(1)));
        }
        if self.limiter.len() > MAX_TRACKED {
            self.limiter.retain_recent();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let h = hash_with("s3cret", b"0123456789abcdef", 1000);
        assert!(h.starts_with("$pbkdf2-sha512$i=1000$"));
        assert!(verify_password("s3cret", &h));
        assert!(!verify_password("s3cret ", &h));
        assert!(!verify_password("", &h));
        let a = hash_password("pw").unwrap();
        let b = hash_password("pw").unwrap();
        assert_ne!(a, b, "salted");
        assert!(verify_password("pw", &a) && verify_password("pw", &b));
        assert!(!a.contains("pw$"));
    }

    #[test]
    fn malformed_hashes_never_match() {
        for bad in [
            "",
            "pw",
            "$pbkdf2-sha512$i=0$c2FsdA$aGFzaA",
            "$pbkdf2-sha512$i=x$c2FsdA$aGFzaA",
            "$pbkdf2-sha512$i=1$c2FsdA",
            "$pbkdf2-sha512$i=1$c2FsdA$aGFzaA$x",
            "$pbkdf2-sha256$i=1$c2FsdA$aGFzaA",
        ] {
            assert!(!verify_password("pw", bad), "{bad}");
        }
    }

    #[tokio::test]
    async fn failures_lock_out_after_the_burst() {
        let l = FailureLimiter::new(2, Duration::from_secs(3600));
        assert!(l.locked("iot", "dev1").await.is_none());
        l.failed("iot", "dev1").await;
        l.failed("iot", "dev1").await;
        assert!(l.locked("iot", "dev1").await.is_none(), "burst of two");
        l.failed("iot", "dev1").await;
        assert!(l.locked("iot", "dev1").await.is_some());
        assert!(l.locked("iot", "dev2").await.is_none(), "per name");
        assert!(l.locked("other", "dev1").await.is_none(), "per label");
    }

    #[tokio::test]
    async fn shared_failures_lock_out_on_every_limiter_of_the_store() {
        let store: std::sync::Arc<dyn ironseal_storage::Store> =
            std::sync::Arc::new(ironseal_storage::MemoryStore::new());
        let a = FailureLimiter::shared(2, Duration::from_secs(3600), store.clone());
        let b = FailureLimiter::shared(2, Duration::from_secs(3600), store);
        a.failed("iot", "dev1").await;
        b.failed("iot", "dev1").await;
        assert!(a.locked("iot", "dev1").await.is_none(), "burst of two");
        assert!(b.locked("iot", "dev1").await.is_none());
        a.failed("iot", "dev1").await;
        let wait = b
            .locked("iot", "dev1")
            .await
            .expect("locked on the other replica");
        assert!(wait > Duration::from_secs(3000) && wait <= Duration::from_secs(3600));
        assert!(b.locked("iot", "dev2").await.is_none(), "per name");
        assert!(a.locked("other", "dev1").await.is_none(), "per label");
    }
}
