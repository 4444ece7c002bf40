//! Group commit: one thread makes the store durable for every request that
//! is waiting on it. Requests that arrive while a flush runs are served
//! together by the next one, so under load one `fdatasync` covers many
//! acknowledgements and no request parks a blocking-pool thread of its own.

use std::sync::mpsc;
use std::sync::Arc;

use ironseal_storage::{Store, StoreError};
use tokio::sync::oneshot;

type Waiter = oneshot::Sender<Result<(), String>>;

/// Handle to the flusher thread.
pub struct Flusher {
    tx: mpsc::Sender<Waiter>,
    /// The store's commits are durable on their own (PostgreSQL): nothing
    /// to wait for, so no hand-off to the thread and back.
    immediate: bool,
}

/// Counts kept by the flusher, for metrics.
#[derive(Default)]
pub struct FlushStats {
    pub flushes: std::sync::atomic::AtomicU64,
    pub waiters: std::sync::atomic::AtomicU64,
}

impl Flusher {
    /// Starts the flusher thread for `store`.
    pub fn start(store: Arc<dyn Store>, stats: Arc<FlushStats>) -> std::io::Result<Flusher> {
        let immediate = store.commits_are_durable();
        let (tx, rx) = mpsc::channel::<Waiter>();
        std::thread::Builder::new()
            .name("ironseal-flush".into())
            .spawn(move || {
                use std::sync::atomic::Ordering::Relaxed;
                // Ends when every sender is gone (the server shut down).
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    batch.extend(rx.try_iter());
                    let result = store.flush().map_err(|e| e.to_string());
                    stats.flushes.fetch_add(1, Relaxed);
                    stats.waiters.fetch_add(batch.len() as u64, Relaxed);
                    for w in batch {
                        let _ = w.send(result.clone());
                    }
                }
            })?;
        Ok(Flusher { tx, immediate })
    }

    /// Resolves once everything written before the call is durable.
    pub async fn durable(&self) -> Result<(), String> {
        if self.immediate {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(tx)
            .map_err(|_| "the flusher thread has stopped".to_string())?;
        rx.await
            .map_err(|_| "the flusher thread has stopped".to_string())?
    }
}

/// Makes everything written to `store` so far durable, from async code
/// that has no [`Flusher`] at hand (start-up before the server state
/// exists, the command line): [`Store::flush`] is a synchronous disk sync,
/// so it runs on a blocking thread, never on an async worker.
pub async fn flush(store: &Arc<dyn Store>) -> Result<(), StoreError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || store.flush())
        .await
        .map_err(|e| StoreError::Backend(format!("the flush task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironseal_storage::MemoryStore;

    #[tokio::test]
    async fn stores_with_durable_commits_are_not_handed_to_the_thread() {
        // No thread behind this channel: a hand-off would fail.
        let (tx, rx) = mpsc::channel::<Waiter>();
        drop(rx);
        let immediate = Flusher {
            tx: tx.clone(),
            immediate: true,
        };
        assert_eq!(immediate.durable().await, Ok(()));
        let waiting = Flusher {
            tx,
            immediate: false,
        };
        assert!(waiting.durable().await.is_err());
        let memory = Flusher::start(Arc::new(MemoryStore::new()), Arc::default()).expect("thread");
        assert!(!memory.immediate, "memory writes wait for flush");
    }

    #[tokio::test]
    async fn concurrent_waiters_share_flushes() {
        let stats = Arc::new(FlushStats::default());
        let f =
            Arc::new(Flusher::start(Arc::new(MemoryStore::new()), stats.clone()).expect("thread"));
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let f = f.clone();
            tasks.push(tokio::spawn(async move { f.durable().await }));
        }
        for t in tasks {
            assert_eq!(t.await.expect("join"), Ok(()));
        }
        use std::sync::atomic::Ordering::Relaxed;
        assert_eq!(stats.waiters.load(Relaxed), 64);
        assert!(stats.flushes.load(Relaxed) >= 1);
        assert!(stats.flushes.load(Relaxed) <= 64);
    }
}
