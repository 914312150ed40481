//! The authorizer checks use now, behind a shared handle that a reload
//! swaps whole. Checks already running finish on the authorizer they
//! started with, since they hold its `Arc`.

use std::sync::{Arc, PoisonError, RwLock};

use super::authorizer::Authorizer;

/// The authorizer checks use now; cheap to read, swapped whole on reload.
pub(crate) struct LiveAuthorizer {
    // Read once per check to clone the Arc, written once per reload; never
    // held across an await, so checks never wait on a reload.
    current: RwLock<Arc<Authorizer>>,
}

impl LiveAuthorizer {
    /// Serves `authorizer` until the first [`LiveAuthorizer::replace`].
    pub(crate) fn new(authorizer: Authorizer) -> LiveAuthorizer {
        LiveAuthorizer {
            current: RwLock::new(Arc::new(authorizer)),
        }
    }

    /// The authorizer to decide one check with.
    pub(crate) fn current(&self) -> Arc<Authorizer> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Serves `next` from now on.
    pub(crate) fn replace(&self, next: Authorizer) {
        let next = Arc::new(next);
        let previous = std::mem::replace(
            &mut *self.current.write().unwrap_or_else(PoisonError::into_inner),
            next,
        );
        // Dropped outside the lock: the last reference may stop refresh tasks.
        drop(previous);
    }
}
