//! Locks that outlive a panic elsewhere.
//!
//! A poisoned mutex means another thread panicked while holding it. Every map
//! guarded this way is updated by single inserts and removes, so what it holds
//! is always whole: carrying on beats taking the whole process down with it.

use std::sync::{Mutex, MutexGuard, PoisonError};

pub trait LockExt<T> {
    /// The guard, whether or not another thread panicked while holding it.
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T> LockExt<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
