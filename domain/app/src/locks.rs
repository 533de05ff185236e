//! Per-key async locks (striped), so concurrent creates of one meetingID in
//! this process are handled one after another.

use std::hash::{BuildHasher, RandomState};
use tokio::sync::{Mutex, MutexGuard};

/// A fixed set of async mutexes chosen by key hash.
#[derive(Debug)]
pub struct StripedLocks {
    stripes: Vec<Mutex<()>>,
    hasher: RandomState,
}

impl StripedLocks {
    /// `count` stripes (more stripes, fewer unrelated keys waiting on each other).
    pub fn new(count: usize) -> Self {
        Self {
            stripes: (0..count.max(1)).map(|_| Mutex::new(())).collect(),
            hasher: RandomState::new(),
        }
    }

    /// Waits for the lock of `key`.
    pub async fn lock(&self, key: &str) -> MutexGuard<'_, ()> {
        let index = (self.hasher.hash_one(key) % self.stripes.len() as u64) as usize;
        self.stripes[index].lock().await
    }
}

impl Default for StripedLocks {
    fn default() -> Self {
        Self::new(1024)
    }
}
