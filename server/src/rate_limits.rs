//! Rate limits (GCRA, via governor) per account, per tenant and per client
//! IP, for new accounts, new orders and failed validations. Each limit is
//! configured under `[limits]`; a refused request is `rateLimited` with a
//! Retry-After of the time until the bucket admits it again (RFC 8555
//! §6.6). Failed validations are counted as they happen; once an account
//! or client exceeds its budget it cannot start validations until the
//! bucket refills.
//!
//! State is per process (issue 11 moves buckets into the store for
//! several replicas); idle keys are forgotten by [`RateLimits::prune`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
}

/// Most keys remembered as blocked (each a few dozen bytes).
const MAX_BLOCKED: usize = 100_000;

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
        }
    }

    fn wait(limiter: &DefaultKeyedRateLimiter<String>, key: &str) -> Option<Duration> {
        match limiter.check_key(&key.to_string()) {
            Ok(()) => None,
            Err(not_until) => Some(not_until.wait_time_from(DefaultClock::default().now())),
        }
    }

    /// Counts one event of `limit` for `key`; `Err` when over the limit.
    pub fn check(&self, limit: Limit, key: &str) -> Result<(), Refused> {
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
    pub fn record_failure(&self, keys: &[(Limit, String)]) {
        for (limit, key) in keys {
            if let Err(r) = self.check(*limit, key) {
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
    pub fn check_failures(&self, keys: &[(Limit, String)]) -> Result<(), Refused> {
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
    pub fn prune(&self) {
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

    #[test]
    fn burst_then_refusal_with_retry_after() {
        let l = RateLimits::new(&[(Limit::NewOrdersPerAccount, Rate::per_minute(3))]);
        for _ in 0..3 {
            assert!(l.check(Limit::NewOrdersPerAccount, "a").is_ok());
        }
        let r = l.check(Limit::NewOrdersPerAccount, "a").unwrap_err();
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
        assert!(l.check(Limit::NewOrdersPerAccount, "b").is_ok());
        assert!(l.check(Limit::NewAccountsPerIp, "a").is_ok());
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let l = RateLimits::new(&[(Limit::NewAccountsPerIp, Rate::per_hour(2))]);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2::ffff"
            .parse()
            .unwrap_or(IpAddr::from([0u8; 4]));
        assert!(l.check(Limit::NewAccountsPerIp, &ip_key(a)).is_ok());
        assert!(l.check(Limit::NewAccountsPerIp, &ip_key(b)).is_ok());
        assert!(l.check(Limit::NewAccountsPerIp, &ip_key(a)).is_err());
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(l.check(Limit::NewAccountsPerIp, &ip_key(mapped)).is_ok());
        assert!(l.check(Limit::NewAccountsPerIp, &ip_key(v4)).is_ok());
        assert!(
            l.check(Limit::NewAccountsPerIp, &ip_key(v4)).is_err(),
            "mapped and plain IPv4 are one client"
        );
    }

    #[test]
    fn failed_validations_block_after_the_budget() {
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
        l.record_failure(&keys("acct"));
        l.record_failure(&keys("acct"));
        assert!(
            l.check_failures(&keys("acct")).is_ok(),
            "the budget is not spent yet"
        );
        l.record_failure(&keys("acct"));
        let r = l.check_failures(&keys("acct")).unwrap_err();
        assert_eq!(r.limit, Limit::FailedValidationsPerAccount);
        assert!(r.retry_after > Duration::from_secs(60), "{r:?}");
        // Another account from the same IP: the IP's budget (5) is not spent yet...
        assert!(l.check_failures(&keys("other")).is_ok());
        l.record_failure(&keys("other"));
        l.record_failure(&keys("other"));
        l.record_failure(&keys("other"));
        // ...now it is: six failures from one IP.
        let r = l.check_failures(&keys("third")).unwrap_err();
        assert_eq!(r.limit, Limit::FailedValidationsPerIp);
    }
}
