//! Counting an account's unfinished orders and authorizations (issue 10
//! item 4): newOrder refuses an account that already holds its cap of them,
//! so one account cannot fill the store faster than the purge empties it.
//!
//! What counts ([`Store::count_pending`](crate::Store::count_pending)):
//! * orders that have not been finalized (`pending`, `ready`) and have not
//!   expired;
//! * authorizations that are `pending` and have not expired.
//!
//! The backends keep these in an index (sled: extra keys in the order and
//! authorization index trees; PostgreSQL: partial indexes), so a count
//! costs at most the cap, not the account's history.

use time::OffsetDateTime;

use crate::records::{AuthzRecord, OrderRecord};
use crate::types::{AuthzStatus, OrderStatus};

/// An account's unfinished orders and authorizations, each counted up to
/// the limit the caller gave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PendingCounts {
    pub orders: u64,
    pub authzs: u64,
}

/// Whether `order` awaits finalization (whatever its expiry).
pub fn order_is_pending(order: &OrderRecord) -> bool {
    matches!(order.status, OrderStatus::Pending | OrderStatus::Ready)
}

/// Whether `authz` awaits validation (whatever its expiry).
pub fn authz_is_pending(authz: &AuthzRecord) -> bool {
    authz.status == AuthzStatus::Pending
}

/// Whether `order` counts against its account's cap at `now`.
pub fn order_counts(order: &OrderRecord, now: OffsetDateTime) -> bool {
    order_is_pending(order) && order.expires > now
}

/// Whether `authz` counts against its account's cap at `now`.
pub fn authz_counts(authz: &AuthzRecord, now: OffsetDateTime) -> bool {
    authz_is_pending(authz) && authz.expires > now
}

/// The order statuses that count, as stored (PostgreSQL's filter; the
/// partial index of migration 4 names the same two).
pub const PENDING_ORDER_STATUSES: [&str; 2] = ["pending", "ready"];
