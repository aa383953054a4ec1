//! Idempotency keys this worker has seen reach a durable result.
//!
//! The ledger's IDEM records are the source of truth and never expire; this bounded memory of
//! them only saves the TransactWriteItems that would be refused for a duplicate this worker has
//! already settled (a producer retry, or a redelivery after a lost delete). A key is remembered
//! only after the ledger answered, so a hit is exactly what the ledger would say.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

/// Default number of keys remembered (about 1 MiB).
pub const DEFAULT_CAPACITY: usize = 10_000;

/// A set of at most `capacity` keys; the oldest is forgotten first.
#[derive(Debug)]
pub struct RecentKeys {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    keys: HashSet<String>,
    order: VecDeque<String>,
}

impl RecentKeys {
    /// Remembers up to `capacity` keys; 0 disables it.
    pub fn new(capacity: usize) -> Self {
        RecentKeys {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Whether `key` reached a durable result in this worker.
    pub fn contains(&self, key: &str) -> bool {
        self.lock().keys.contains(key)
    }

    /// Records that `key` has a durable result.
    pub fn insert(&self, key: &str) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        if !inner.keys.insert(key.to_owned()) {
            return;
        }
        inner.order.push_back(key.to_owned());
        while inner.order.len() > self.capacity {
            if let Some(oldest) = inner.order.pop_front() {
                inner.keys.remove(&oldest);
            }
        }
    }

    /// Number of keys remembered.
    pub fn len(&self) -> usize {
        self.lock().keys.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The critical sections cannot panic half-way; a poisoned lock still holds a valid set.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_inserted_keys() {
        let recent = RecentKeys::new(3);
        assert!(!recent.contains("a"));
        recent.insert("a");
        recent.insert("a");
        assert!(recent.contains("a"));
        assert_eq!(recent.len(), 1);
    }

    #[test]
    fn forgets_the_oldest_beyond_capacity() {
        let recent = RecentKeys::new(2);
        for key in ["a", "b", "c"] {
            recent.insert(key);
        }
        assert!(!recent.contains("a"));
        assert!(recent.contains("b") && recent.contains("c"));
        assert_eq!(recent.len(), 2);
    }

    #[test]
    fn zero_capacity_remembers_nothing() {
        let recent = RecentKeys::new(0);
        recent.insert("a");
        assert!(!recent.contains("a"));
        assert!(recent.is_empty());
    }
}
