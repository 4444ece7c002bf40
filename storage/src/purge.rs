//! Purging expired ACME orders and authorizations (issue 10 item 4): they
//! are written for every request, so without a purge anyone who can create
//! an account grows the store without bound. Certificates and revocations
//! are kept forever.
//!
//! What goes ([`Store::purge_expired`](crate::Store::purge_expired)):
//! * orders that never issued (`pending`, `ready`, `invalid`) whose
//!   `expires` is before the cut-off; `processing` orders (an issuance in
//!   flight or interrupted) and `valid` orders (they name their certificate)
//!   stay;
//! * authorizations of any status whose `expires` is before the cut-off (as
//!   Boulder purges them): an expired authorization authorizes nothing.

use time::OffsetDateTime;

use crate::records::{AuthzRecord, OrderRecord};
use crate::types::OrderStatus;

/// How many records one purge call removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub orders: u64,
    pub authzs: u64,
}

impl Purged {
    /// Both counts.
    pub fn total(&self) -> u64 {
        self.orders + self.authzs
    }
}

/// Whether `order` is purged at cut-off `before`.
pub fn order_purgeable(order: &OrderRecord, before: OffsetDateTime) -> bool {
    matches!(
        order.status,
        OrderStatus::Pending | OrderStatus::Ready | OrderStatus::Invalid
    ) && order.expires < before
}

/// Whether `authz` is purged at cut-off `before`.
pub fn authz_purgeable(authz: &AuthzRecord, before: OffsetDateTime) -> bool {
    authz.expires < before
}

/// The order statuses a purge removes, as stored (PostgreSQL's filter).
pub const PURGEABLE_ORDER_STATUSES: [&str; 3] = ["pending", "ready", "invalid"];
