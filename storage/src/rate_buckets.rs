//! Rate-limit buckets kept in the store, so that several replicas on one
//! database enforce one limit, not one each (issue 11). Each bucket is the
//! GCRA "theoretical arrival time" (TAT) of one (limit, key): an event is
//! admitted when, after it, the TAT is at most `burst` intervals ahead of
//! now.
//!
//! Three operations ([`BucketOp`]):
//! * [`BucketOp::Take`]: admit one event if the bucket allows it (the TAT
//!   moves on by one interval), else change nothing;
//! * [`BucketOp::Force`]: count an event that already happened (a failed
//!   validation) even over the budget, at most one interval past it, so an
//!   over-budget bucket says how long the key stays blocked;
//! * [`BucketOp::Peek`]: read only.
//!
//! Buckets are not records: they are not exported, and
//! [`Store::purge_rate_buckets`](crate::Store::purge_rate_buckets) forgets
//! the ones whose TAT has passed (they equal an empty bucket).

/// One limit's rate: a burst of `burst` events, refilled one per
/// `interval_ns` nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    pub interval_ns: i64,
    pub burst: u32,
}

impl Gcra {
    /// How far ahead of now the TAT may be after an admitted event.
    pub fn tolerance_ns(&self) -> i64 {
        self.interval_ns
            .saturating_mul(i64::from(self.burst.max(1)))
    }
}

/// What to do to a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketOp {
    Take,
    Force,
    Peek,
}

/// A bucket after an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// Whether a `Take` was admitted (`Force` and `Peek`: always true).
    pub admitted: bool,
    /// The TAT after the operation (ns since the Unix epoch); `now` or
    /// earlier means empty.
    pub tat_ns: i64,
}

impl Bucket {
    /// Nanoseconds from `now_ns` until a `Take` would be admitted again.
    pub fn wait_ns(&self, gcra: Gcra, now_ns: i64) -> i64 {
        (self.tat_ns - now_ns - gcra.tolerance_ns() + gcra.interval_ns).max(0)
    }

    /// Nanoseconds from `now_ns` while the bucket is over its budget (a
    /// `Force` went past it); 0 when it is not.
    pub fn over_ns(&self, gcra: Gcra, now_ns: i64) -> i64 {
        (self.tat_ns - now_ns - gcra.tolerance_ns()).max(0)
    }
}

/// The GCRA step on a stored TAT (`None`: no bucket yet); returns the
/// bucket and the TAT to store (`None`: leave it). The in-process backends
/// use it; PostgreSQL runs the same arithmetic in one statement.
pub fn step(stored: Option<i64>, op: BucketOp, gcra: Gcra, now_ns: i64) -> (Bucket, Option<i64>) {
    let base = stored.unwrap_or(now_ns).max(now_ns);
    let next = base.saturating_add(gcra.interval_ns);
    let current = stored.unwrap_or(now_ns);
    match op {
        BucketOp::Peek => (
            Bucket {
                admitted: true,
                tat_ns: current,
            },
            None,
        ),
        BucketOp::Take if next - now_ns <= gcra.tolerance_ns() => (
            Bucket {
                admitted: true,
                tat_ns: next,
            },
            Some(next),
        ),
        BucketOp::Take => (
            Bucket {
                admitted: false,
                tat_ns: current,
            },
            None,
        ),
        BucketOp::Force => {
            let capped = next.min(now_ns.saturating_add(gcra.tolerance_ns() + gcra.interval_ns));
            (
                Bucket {
                    admitted: true,
                    tat_ns: capped,
                },
                Some(capped),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: Gcra = Gcra {
        interval_ns: 10,
        burst: 3,
    };

    #[test]
    fn burst_then_refusal_then_refill() {
        let mut tat = None;
        for _ in 0..3 {
            let (b, new) = step(tat, BucketOp::Take, G, 1000);
            assert!(b.admitted);
            tat = new.or(tat);
        }
        let (b, new) = step(tat, BucketOp::Take, G, 1000);
        assert!(!b.admitted);
        assert_eq!(new, None, "a refusal changes nothing");
        assert_eq!(b.wait_ns(G, 1000), 10);
        let (b, _) = step(tat, BucketOp::Take, G, 1010);
        assert!(b.admitted, "one interval later one event fits");
    }

    #[test]
    fn force_goes_one_interval_past_the_budget_and_no_further() {
        let mut tat = None;
        for _ in 0..10 {
            tat = step(tat, BucketOp::Force, G, 1000).1;
        }
        let (b, _) = step(tat, BucketOp::Peek, G, 1000);
        assert_eq!(b.over_ns(G, 1000), 10);
        assert_eq!(b.over_ns(G, 1010), 0);
        let (b, _) = step(tat, BucketOp::Peek, G, 1005);
        assert_eq!(b.over_ns(G, 1005), 5);
        // Two forced events: within the budget, not over it.
        let two = step(step(None, BucketOp::Force, G, 0).1, BucketOp::Force, G, 0).1;
        assert_eq!(step(two, BucketOp::Peek, G, 0).0.over_ns(G, 0), 0);
    }
}
