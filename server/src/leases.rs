//! Leases this replica takes in the store (issue 11; see
//! `ironseal_storage::leases`): one replica at a time processes an order
//! (`order:<id>`) or validates an authorization (`authz:<id>`), builds the
//! CRLs of a CA (`crl:<ca id>`) and issues its OCSP responder
//! (`ocsp-responder:<ca id>`).
//!
//! The holder id is this process's [`Leases::holder`] (`[storage]
//! replica_id`, else random at start and logged). On a store only this
//! process opens (sled), leases are not written at all: every acquire is
//! granted at once and nothing is held elsewhere, so a `processing` order
//! no task of this process holds is interrupted, as before.

use std::sync::Arc;
use std::time::Duration;

use ironseal_storage::{Lease, Store, StoreError};

/// The lease of an order being finalized.
pub fn order_lease(order_id: &str) -> String {
    format!("order:{order_id}")
}

/// The lease of an authorization being validated.
pub fn authz_lease(authz_id: &str) -> String {
    format!("authz:{authz_id}")
}

/// The lease of a CA's CRL builder.
pub fn crl_lease(ca_id: &str) -> String {
    format!("crl:{ca_id}")
}

/// The lease of a CA's OCSP responder issuer.
pub fn ocsp_responder_lease(ca_id: &str) -> String {
    format!("ocsp-responder:{ca_id}")
}

/// Nanoseconds since the Unix epoch (lease clocks).
pub fn now_ns() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

/// This replica's leases.
pub struct Leases {
    store: Arc<dyn Store>,
    holder: String,
    ttl: Duration,
    /// The store is shared with other processes (PostgreSQL).
    shared: bool,
}

impl Leases {
    /// `holder`: this replica's id; `shared`: other processes use the store.
    pub fn new(store: Arc<dyn Store>, holder: String, ttl: Duration, shared: bool) -> Leases {
        Leases {
            store,
            holder,
            ttl,
            shared,
        }
    }

    /// A fresh random replica id (16 hex digits).
    pub fn random_holder() -> String {
        let b: [u8; 8] = rand::random();
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// This replica's holder id.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// The lease lifetime.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Whether leases are kept in the store (several processes).
    pub fn shared(&self) -> bool {
        self.shared
    }

    fn ttl_ns(&self) -> i64 {
        i64::try_from(self.ttl.as_nanos()).unwrap_or(i64::MAX)
    }

    /// Takes or renews `name`; `Ok(None)` if another replica holds it.
    pub async fn acquire(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        let now = now_ns();
        if !self.shared {
            return Ok(Some(Lease {
                name: name.to_owned(),
                holder: self.holder.clone(),
                token: 1,
                expires_ns: now.saturating_add(self.ttl_ns()),
            }));
        }
        self.store
            .acquire_lease(name, &self.holder, now, self.ttl_ns())
            .await
    }

    /// Ends our tenure of `name` (nothing if it is not ours).
    pub async fn release(&self, name: &str) -> Result<(), StoreError> {
        if self.shared {
            self.store.release_lease(name, &self.holder).await?;
        }
        Ok(())
    }

    /// Whether another replica holds `name` now.
    pub async fn held_elsewhere(&self, name: &str) -> Result<bool, StoreError> {
        if !self.shared {
            return Ok(false);
        }
        let now = now_ns();
        Ok(self
            .store
            .get_lease(name)
            .await?
            .is_some_and(|l| l.live(now) && l.holder != self.holder))
    }

    /// Waits while another replica holds `name`, polling, at most `max`.
    /// Returns true if it is no longer held elsewhere.
    pub async fn wait_elsewhere(&self, name: &str, max: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + max;
        loop {
            match self.held_elsewhere(name).await {
                Ok(false) => return true,
                Ok(true) => {}
                Err(e) => {
                    tracing::warn!(lease = name, error = %e, "lease read failed");
                    return false;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Takes `name` and keeps renewing it (every third of the TTL) until
    /// the returned guard is dropped, which releases it. `Ok(None)` if
    /// another replica holds it.
    pub async fn hold(self: &Arc<Self>, name: &str) -> Result<Option<LeaseGuard>, StoreError> {
        if self.acquire(name).await?.is_none() {
            return Ok(None);
        }
        let renewer = if self.shared {
            let me = self.clone();
            let name = name.to_owned();
            Some(tokio::spawn(async move {
                let every = (me.ttl / 3).max(Duration::from_millis(100));
                loop {
                    tokio::time::sleep(every).await;
                    match me.acquire(&name).await {
                        Ok(Some(_)) => {}
                        Ok(None) => {
                            tracing::warn!(lease = %name, "lease lost to another replica while working");
                            return;
                        }
                        Err(e) => {
                            tracing::warn!(lease = %name, error = %e, "lease renewal failed")
                        }
                    }
                }
            }))
        } else {
            None
        };
        Ok(Some(LeaseGuard {
            leases: self.clone(),
            name: name.to_owned(),
            renewer,
        }))
    }
}

/// A held lease, renewed in the background; released on drop (by a task
/// spawned on the current runtime, since the store is async).
pub struct LeaseGuard {
    leases: Arc<Leases>,
    name: String,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        if !self.leases.shared {
            return;
        }
        let leases = self.leases.clone();
        let name = std::mem::take(&mut self.name);
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    if let Err(e) = leases.release(&name).await {
                        tracing::warn!(lease = %name, error = %e, "lease release failed; it expires by itself");
                    }
                });
            }
            Err(_) => {
                tracing::warn!(lease = %name, "lease dropped outside a runtime; it expires by itself");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;
    use ironseal_storage::MemoryStore;

    #[tokio::test]
    async fn held_leases_are_renewed_and_released_on_drop() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let ttl = Duration::from_millis(300);
        let a = Arc::new(Leases::new(store.clone(), "a".into(), ttl, true));
        let b = Arc::new(Leases::new(store.clone(), "b".into(), ttl, true));
        let guard = a.hold("order:1").await.unwrap().unwrap();
        assert!(b.hold("order:1").await.unwrap().is_none());
        assert!(b.held_elsewhere("order:1").await.unwrap());
        assert!(!a.held_elsewhere("order:1").await.unwrap());
        // Held past several TTLs: the renewer keeps it.
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(b.held_elsewhere("order:1").await.unwrap());
        assert!(
            !b.wait_elsewhere("order:1", Duration::from_millis(150))
                .await
        );
        drop(guard);
        // The release runs on a spawned task: it lands well within the
        // 200 ms or more the last renewal left on the lease, so this sees
        // the release, not the expiry.
        assert!(
            b.wait_elsewhere("order:1", Duration::from_millis(150))
                .await
        );
        assert!(!b.held_elsewhere("order:1").await.unwrap());
        assert!(b.wait_elsewhere("order:1", Duration::ZERO).await);
        assert!(b.hold("order:1").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn unshared_stores_grant_everything_and_write_nothing() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let a = Arc::new(Leases::new(
            store.clone(),
            "a".into(),
            Duration::from_secs(60),
            false,
        ));
        let _g = a.hold("order:1").await.unwrap().unwrap();
        let _h = a.hold("order:1").await.unwrap().unwrap();
        assert!(!a.held_elsewhere("order:1").await.unwrap());
        assert_eq!(store.get_lease("order:1").await.unwrap(), None);
    }
}
