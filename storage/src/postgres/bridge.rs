//! The synchronous bridge (interim, issue 11 phase 1).
//!
//! [`crate::Store`] is synchronous, and the server calls it both from
//! blocking tasks and directly inside async handlers. tokio-postgres is
//! async. So the store owns a small tokio runtime of its own; each method
//! spawns its future there and blocks the calling thread on a channel until
//! the result comes back. Unlike `Handle::block_on`, this never panics when
//! the caller is itself a worker thread of another tokio runtime (it only
//! occupies that thread for the round trip, as a sled call does for its
//! disk work). The next phase makes the trait async and removes this.

use std::future::Future;
use std::sync::mpsc;

use tokio::runtime::{Builder, Handle, Runtime};

use crate::StoreError;

/// A dedicated runtime that runs the store's futures.
pub(crate) struct Bridge {
    /// `Some` until drop; taken there to shut down without blocking.
    runtime: Option<Runtime>,
    handle: Handle,
}

impl Bridge {
    /// A runtime with `threads` worker threads named `ironseal-pg`.
    pub(crate) fn new(threads: usize) -> Result<Self, StoreError> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("ironseal-pg")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Backend(format!("postgres runtime: {e}")))?;
        let handle = runtime.handle().clone();
        Ok(Bridge {
            runtime: Some(runtime),
            handle,
        })
    }

    /// Runs `fut` on the store's runtime and waits for its result on the
    /// calling thread. A future that panics is reported as `Backend`.
    pub(crate) fn run<T, F>(&self, fut: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        self.handle.spawn(async move {
            // The receiver only goes away if the caller's thread died.
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| StoreError::Backend("the PostgreSQL task was cancelled".into()))?
    }

    /// Starts `fut` on the store's runtime without waiting for it (a
    /// producer that hands its results over a channel, e.g. an export).
    pub(crate) fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.handle.spawn(fut);
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside another runtime's
        // async context (a store dropped by the server's shutdown path);
        // shut down in the background instead.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
