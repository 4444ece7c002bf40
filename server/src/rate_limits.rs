//! Rate limits (GCRA, via governor) per account, per tenant and per client
//! IP, for new accounts, new orders and failed validations. Each limit is
//! configured under `[limits]`; a refused request is `rateLimited` with a
//! Retry-After of the time until the bucket admits it again (RFC 8555
//! §6.6). Failed validations are counted as they happen; once an account
//! or client exceeds its budget it cannot start validations until the
//! bucket refills.
//!
//! With sled the buckets live in the process (governor); on PostgreSQL they
//! live in the database ([`RateLimits::shared`], one atomic statement per
//! check), so N replicas enforce one limit, not N (issue 11). Idle keys are
//! forgotten by [`RateLimits::prune`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ironseal_storage::{BucketOp, Gcra, Store};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// One limit: what is counted, per whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// newAccount per client IP.
    NewAccountsPerIp,
    /// newOrder per account.
    NewOrdersPerAccount,
    /// newOrder per tenant (all its accounts together).
    NewOrdersPerTenant,
    /// newOrder per client IP.
    NewOrdersPerIp,
    /// Failed challenge validations per account.
    FailedValidationsPerAccount,
    /// Failed challenge validations per tenant.
    FailedValidationsPerTenant,
    /// Failed challenge validations per client IP (the one that answered
    /// the challenge).
    FailedValidationsPerIp,
}

impl Limit {
    /// Every limit.
    pub const ALL: [Limit; 7] = [
        Limit::NewAccountsPerIp,
        Limit::NewOrdersPerAccount,
        Limit::NewOrdersPerTenant,
        Limit::NewOrdersPerIp,
        Limit::FailedValidationsPerAccount,
        Limit::FailedValidationsPerTenant,
        Limit::FailedValidationsPerIp,
    ];

    /// The label used in problems, logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::NewAccountsPerIp => "new_accounts_per_ip",
            Limit::NewOrdersPerAccount => "new_orders_per_account",
            Limit::NewOrdersPerTenant => "new_orders_per_tenant",
            Limit::NewOrdersPerIp => "new_orders_per_ip",
            Limit::FailedValidationsPerAccount => "failed_validations_per_account",
            Limit::FailedValidationsPerTenant => "failed_validations_per_tenant",
            Limit::FailedValidationsPerIp => "failed_validations_per_ip",
        }
    }
}

/// How many events a limit admits in how long (a burst of `count`,
/// refilled evenly over `period`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Events per period (also the burst).
    pub count: u32,
    /// The period.
    pub period: Duration,
}

impl Rate {
    /// `count` per minute.
    pub const fn per_minute(count: u32) -> Rate {
        Rate {
            count,
            period: Duration::from_secs(60),
        }
    }

    /// `count` per hour.
    pub const fn per_hour(count: u32) -> Rate {
        Rate {
            count,
            period: Duration::from_secs(3600),
        }
    }

    fn quota(self) -> Quota {
        let n = NonZeroU32::new(self.count.max(1)).unwrap_or(NonZeroU32::MIN);
        let every = self.period / n.get();
        Quota::with_period(every.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(n))
            .allow_burst(n)
    }

    /// The same rate as a GCRA bucket in the store.
    fn gcra(self) -> Gcra {
        let n = self.count.max(1);
        let interval = self.period.as_nanos() / u128::from(n);
        Gcra {
            interval_ns: i64::try_from(interval).unwrap_or(i64::MAX).max(1),
            burst: n,
        }
    }

    /// "N per minute" / "N per hour" / "N per Ts".
    pub fn describe(self) -> String {
        match self.period.as_secs() {
            60 => format!("{} per minute", self.count),
            3600 => format!("{} per hour", self.count),
            s => format!("{} per {s} s", self.count),
        }
    }
}

/// A refusal: which limit, the configured rate, and when to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The limit that refused.
    pub limit: Limit,
    /// Its rate.
    pub rate: Rate,
    /// Time until the bucket admits the next event (at least 1 s).
    pub retry_after: Duration,
}

impl Refused {
    /// A detail a client can act on.
    pub fn detail(&self) -> String {
        format!(
            "rate limit {} ({}) exceeded; retry after {} s",
            self.limit.as_str(),
            self.rate.describe(),
            self.retry_after.as_secs().max(1)
        )
    }
}

/// Every limit's buckets.
pub struct RateLimits {
    buckets: HashMap<Limit, (Rate, DefaultKeyedRateLimiter<String>)>,
    /// (limit, key) pairs whose failed-validation budget ran out, until when.
    blocked: Mutex<HashMap<(Limit, String), Instant>>,
    /// Buckets in the store instead (replicas on one database).
    shared: Option<Arc<dyn Store>>,
}

/// Most keys remembered as blocked (each a few dozen bytes).
const MAX_BLOCKED: usize = 100_000;

/// Nanoseconds since the Unix epoch.
fn now_ns() -> i64 {
    let t = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(t).unwrap_or(i64::MAX)
}

impl RateLimits {
    /// Limits with the given rates; a limit missing from `rates` admits
    /// everything.
    pub fn new(rates: &[(Limit, Rate)]) -> RateLimits {
        RateLimits {
            buckets: rates
                .iter()
                .map(|(l, r)| (*l, (*r, RateLimiter::keyed(r.quota()))))
                .collect(),
            blocked: Mutex::new(HashMap::new()),
            shared: None,
        }
    }

    /// Limits whose buckets live in `store`, shared by every process on it
    /// (see `ironseal_storage::rate_buckets`). A store error admits the
    /// event (logged): the limits protect the CA, they must not stop it.
    pub fn shared(rates: &[(Limit, Rate)], store: Arc<dyn Store>) -> RateLimits {
        RateLimits {
            shared: Some(store),
            ..RateLimits::new(rates)
        }
    }

    /// One operation on the shared bucket of (`limit`, `key`); `None` when
    /// the limit is not configured or the store failed.
    async fn shared_op(
        &self,
        store: &dyn Store,
        limit: Limit,
        key: &str,
        op: BucketOp,
    ) -> Option<(Rate, ironseal_storage::Bucket, i64)> {
        let (rate, _) = self.buckets.get(&limit)?;
        let now = now_ns();
        let bucket_key = format!("{}:{key}", limit.as_str());
        match store.rate_bucket(&bucket_key, op, rate.gcra(), now).await {
            Ok(b) => Some((*rate, b, now)),
            Err(e) => {
                tracing::warn!(limit = limit.as_str(), error = %e, "rate-limit bucket unavailable; admitting");
                None
            }
        }
    }

    fn wait(limiter: &DefaultKeyedRateLimiter<String>, key: &str) -> Option<Duration> {
        match limiter.check_key(&key.to_string()) {
            Ok(()) => None,
            Err(not_until) => Some(not_until.wait_time_from(DefaultClock::default().now())),
        }
    }

    /// Counts one event of `limit` for `key`; `Err` when over the limit.
    pub async fn check(&self, limit: Limit, key: &str) -> Result<(), Refused> {
        if let Some(store) = &self.shared {
            return match self.shared_op(&**store, limit, key, BucketOp::Take).await {
                Some((rate, b, now)) if !b.admitted => Err(Refused {
                    limit,
                    rate,
                    retry_after: nanos(b.wait_ns(rate.gcra(), now)).max(Duration::from_secs(1)),
                }),
                _ => Ok(()),
            };
        }
        let Some((rate, limiter)) = self.buckets.get(&limit) else {
            return Ok(());
        };
        match Self::wait(limiter, key) {
            None => Ok(()),
            Some(wait) => Err(Refused {
                limit,
                rate: *rate,
                retry_after: wait.max(Duration::from_secs(1)),
            }),
        }
    }

    /// Records a failed validation for each (limit, key): once a budget is
    /// spent, that key is blocked until its bucket admits again.
    pub async fn record_failure(&self, keys: &[(Limit, String)]) {
        if let Some(store) = &self.shared {
            for (limit, key) in keys {
                self.shared_op(&**store, *limit, key, BucketOp::Force).await;
            }
            return;
        }
        for (limit, key) in keys {
            if let Err(r) = self.check(*limit, key).await {
                let mut b = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
                if b.len() >= MAX_BLOCKED {
                    let now = Instant::now();
                    b.retain(|_, until| *until > now);
                }
                if b.len() < MAX_BLOCKED {
                    b.insert((*limit, key.clone()), Instant::now() + r.retry_after);
                }
            }
        }
    }

    /// `Err` while any (limit, key) is blocked by failed validations.
    pub async fn check_failures(&self, keys: &[(Limit, String)]) -> Result<(), Refused> {
        if let Some(store) = &self.shared {
            for (limit, key) in keys {
                if let Some((rate, b, now)) =
                    self.shared_op(&**store, *limit, key, BucketOp::Peek).await
                {
                    let over = b.over_ns(rate.gcra(), now);
                    if over > 0 {
                        return Err(Refused {
                            limit: *limit,
                            rate,
                            retry_after: nanos(over).max(Duration::from_secs(1)),
                        });
                    }
                }
            }
            return Ok(());
        }
        let b = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        for (limit, key) in keys {
            let Some(until) = b.get(&(*limit, key.clone())) else {
                continue;
            };
            if *until <= now {
                continue;
            }
            let rate = self
                .buckets
                .get(limit)
                .map(|(r, _)| *r)
                .unwrap_or(Rate::per_hour(0));
            return Err(Refused {
                limit: *limit,
                rate,
                retry_after: (*until - now).max(Duration::from_secs(1)),
            });
        }
        Ok(())
    }

    /// Forgets idle keys so memory stays bounded.
    pub async fn prune(&self) {
        if let Some(store) = &self.shared {
            if let Err(e) = store.purge_rate_buckets(now_ns()).await {
                tracing::warn!(error = %e, "purging rate-limit buckets failed");
            }
            return;
        }
        for (_, l) in self.buckets.values() {
            l.retain_recent();
            l.shrink_to_fit();
        }
        let now = Instant::now();
        self.blocked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, until| *until > now);
    }
}

/// A non-negative nanosecond count as a duration.
fn nanos(ns: i64) -> Duration {
    Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
}

/// The key of a client IP: IPv4 (IPv4-mapped IPv6 included) by address,
/// IPv6 by its /64.
pub fn ip_key(ip: IpAddr) -> String {
    match ironseal_ca_core::name_policy::canonical_ip(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[tokio::test]
    async fn burst_then_refusal_with_retry_after() {
        let l = RateLimits::new(&[(Limit::NewOrdersPerAccount, Rate::per_minute(3))]);
        for _ in 0..3 {
            assert!(l.check(Limit::NewOrdersPerAccount, "a").await.is_ok());
        }
        let r = l.check(Limit::NewOrdersPerAccount, "a").await.unwrap_err();
        assert_eq!(r.limit, Limit::NewOrdersPerAccount);
        assert!(
            r.retry_after >= Duration::from_secs(1) && r.retry_after <= Duration::from_secs(20)
        );
        assert!(
            r.detail().contains("new_orders_per_account (3 per minute)"),
            "{}",
            r.detail()
        );
        // Other keys and unconfigured limits are unaffected.
        assert!(l.check(Limit::NewOrdersPerAccount, "b").await.is_ok());
        assert!(l.check(Limit::NewAccountsPerIp, "a").await.is_ok());
    }

    /// Two replicas on one store enforce one limit: the burst is shared,
    /// and failures recorded on one block the key on the other.
    #[tokio::test]
    async fn replicas_on_one_store_share_the_buckets() {
        let store: Arc<dyn Store> = Arc::new(ironseal_storage::MemoryStore::default());
        let rates = [
            (Limit::NewOrdersPerAccount, Rate::per_minute(3)),
            (Limit::FailedValidationsPerAccount, Rate::per_hour(2)),
        ];
        let a = RateLimits::shared(&rates, store.clone());
        let b = RateLimits::shared(&rates, store);
        assert!(a.check(Limit::NewOrdersPerAccount, "acct").await.is_ok());
        assert!(b.check(Limit::NewOrdersPerAccount, "acct").await.is_ok());
        assert!(a.check(Limit::NewOrdersPerAccount, "acct").await.is_ok());
        let r = b
            .check(Limit::NewOrdersPerAccount, "acct")
            .await
            .unwrap_err();
        assert!(
            (1..=20).contains(&r.retry_after.as_secs()),
            "{:?}",
            r.retry_after
        );
        assert!(
            b.check(Limit::NewAccountsPerIp, "acct").await.is_ok(),
            "unconfigured"
        );
        let keys = vec![(Limit::FailedValidationsPerAccount, "acct".to_string())];
        a.record_failure(&keys).await;
        b.record_failure(&keys).await;
        assert!(
            a.check_failures(&keys).await.is_ok(),
            "the budget is not over yet"
        );
        b.record_failure(&keys).await;
        let r = a.check_failures(&keys).await.unwrap_err();
        assert_eq!(r.limit, Limit::FailedValidationsPerAccount);
        assert!(r.retry_after > Duration::from_secs(60), "{r:?}");
    }

    #[tokio::test]
    async fn ipv6_clients_share_their_64() {
        let l = RateLimits::new(&[(Limit::NewAccountsPerIp, Rate::per_hour(2))]);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2::ffff"
            .parse()
            .unwrap_or(IpAddr::from([0u8; 4]));
        assert!(l.check(Limit::NewAccountsPerIp, &ip_key(a)).await.is_ok());
        assert!(l.check(Limit::NewAccountsPerIp, &ip_key(b)).await.is_ok());
        assert!(l.check(Limit::NewAccountsPerIp, &ip_key(a)).await.is_err());
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(l
            .check(Limit::NewAccountsPerIp, &ip_key(mapped))
            .await
            .is_ok());
        assert!(l.check(Limit::NewAccountsPerIp, &ip_key(v4)).await.is_ok());
        assert!(
            l.check(Limit::NewAccountsPerIp, &ip_key(v4)).await.is_err(),
            "mapped and plain IPv4 are one client"
        );
    }

    #[tokio::test]
    async fn failed_validations_block_after_the_budget() {
        let l = RateLimits::new(&[
            (Limit::FailedValidationsPerAccount, Rate::per_hour(2)),
            (Limit::FailedValidationsPerIp, Rate::per_hour(5)),
        ]);
        let keys = |acct: &str| {
            vec![
                (Limit::FailedValidationsPerAccount, acct.to_string()),
                (Limit::FailedValidationsPerIp, "192.0.2.1".to_string()),
            ]
        };
        l.record_failure(&keys("acct")).await;
        l.record_failure(&keys("acct")).await;
        assert!(
            l.check_failures(&keys("acct")).await.is_ok(),
            "the budget is not spent yet"
        );
        l.record_failure(&keys("acct")).await;
        let r = l.check_failures(&keys("acct")).await.unwrap_err();
        assert_eq!(r.limit, Limit::FailedValidationsPerAccount);
        assert!(r.retry_after > Duration::from_secs(60), "{r:?}");
        // Another account from the same IP: the IP's budget (5) is not spent yet...
        assert!(l.check_failures(&keys("other")).await.is_ok());
        l.record_failure(&keys("other")).await;
        l.record_failure(&keys("other")).await;
        l.record_failure(&keys("other")).await;
        // ...now it is: six failures from one IP.
        let r = l.check_failures(&keys("third")).await.unwrap_err();
        assert_eq!(r.limit, Limit::FailedValidationsPerIp);
    }
}
