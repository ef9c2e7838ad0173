//! The store's async face: one [`Store`] shared by the daemon's tasks (the poller's intake,
//! the delivery workers, the periodic jobs, `/metrics`). SQLite blocks, and every write waits
//! for an `fsync`, so every use runs on tokio's blocking pool, never on a runtime worker.

use std::sync::{Arc, Mutex};

use super::{Result, Store};

/// A [`Store`] behind a mutex, used through [`SharedStore::with`]. Cloning shares it.
#[derive(Clone)]
pub(crate) struct SharedStore(Arc<Mutex<Store>>);

impl SharedStore {
    /// Shares `store`.
    pub fn new(store: Store) -> SharedStore {
        SharedStore(Arc::new(Mutex::new(store)))
    }

    /// Runs `f` on the store on tokio's blocking pool and returns its result.
    pub async fn with<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T> + Send + 'static,
    {
        let inner = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = inner
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut guard)
        })
        .await
        .expect("store task panicked")
    }
}
