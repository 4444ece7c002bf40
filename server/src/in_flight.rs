//! Work this process has in flight (validations by authorization id,
//! issuances by order id), with a way for readers to wait for it.
//!
//! A `processing` object that no task of this process holds was
//! interrupted (crash or restart). A POST-as-GET that arrives while the
//! work runs may wait for it, bounded, so clients that poll once and then
//! sleep a full second (golang.org/x/crypto/acme, used by cert-manager)
//! see the outcome at once.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;

/// A set of ids being worked on, and a wake-up for waiters.
#[derive(Default)]
pub struct InFlight {
    ids: Mutex<HashSet<String>>,
    done: Notify,
}

impl InFlight {
    /// Marks `id` as in flight; false if it already is.
    pub fn begin(&self, id: &str) -> bool {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string())
    }

    /// Clears the mark and wakes every waiter.
    pub fn end(&self, id: &str) {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        self.done.notify_waiters();
    }

    /// True while `id` is in flight.
    pub fn contains(&self, id: &str) -> bool {
        self.ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(id)
    }

    /// Waits until `id` is no longer in flight, at most `max`. Returns
    /// true if it finished in time.
    pub async fn wait(&self, id: &str, max: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + max;
        loop {
            let notified = self.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.contains(id) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return !self.contains(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn waiters_wake_when_the_work_ends_and_give_up_at_the_bound() {
        let f = Arc::new(InFlight::default());
        assert!(f.begin("a"));
        assert!(!f.begin("a"), "one worker per id");
        // Ends after 50 ms: the wait returns early with true.
        let g = f.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            g.end("a");
        });
        let started = tokio::time::Instant::now();
        assert!(f.wait("a", Duration::from_secs(5)).await);
        assert!(started.elapsed() < Duration::from_secs(2));
        // Never ends: the wait gives up at its bound with false.
        assert!(f.begin("b"));
        let started = tokio::time::Instant::now();
        assert!(!f.wait("b", Duration::from_millis(100)).await);
        assert!(started.elapsed() >= Duration::from_millis(100));
        // Another id ending does not end this wait early.
        assert!(f.begin("c"));
        let g = f.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            g.end("b");
        });
        assert!(!f.wait("c", Duration::from_millis(150)).await);
        assert!(f.wait("absent", Duration::ZERO).await);
    }
}
