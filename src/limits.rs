//! Protection of the Check path, shared by the gRPC and HTTP edges: at most
//! `max_concurrent` checks are decided at once (more are refused at once,
//! not queued: an authorizer under load should answer, not pile up), and
//! each within `timeout`. A refusal is an error Envoy's failure mode decides.

use std::future::Future;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

/// The configured limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CheckLimits {
    /// Checks decided at once; more are refused.
    pub(crate) max_concurrent: usize,
    /// Longest one check may take.
    pub(crate) timeout: Duration,
}

/// Why a check was not decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Too many checks in flight.
    Overloaded,
    /// The check took longer than the timeout.
    TimedOut,
}

/// The limits in force; one per server, shared by its edges.
#[derive(Debug)]
pub(crate) struct CheckGate {
    permits: Semaphore,
    timeout: Duration,
}

impl CheckGate {
    /// A gate with these limits.
    pub(crate) fn new(limits: CheckLimits) -> CheckGate {
        CheckGate {
            permits: Semaphore::new(limits.max_concurrent.min(Semaphore::MAX_PERMITS)),
            timeout: limits.timeout,
        }
    }

    /// A place among the checks in flight, held until dropped; `None` when
    /// all are taken. Taken before any work, so a refusal costs little.
    pub(crate) fn enter(&self) -> Option<SemaphorePermit<'_>> {
        self.permits.try_acquire().ok()
    }

    /// Runs `check` under the timeout.
    pub(crate) async fn within<F: Future>(&self, check: F) -> Result<F::Output, Refused> {
        tokio::time::timeout(self.timeout, check)
            .await
            .map_err(|_| Refused::TimedOut)
    }

    /// Counts and logs a refusal, at debug for overload: a log line per
    /// refusal would add load exactly when there is too much.
    pub(crate) fn record(&self, refused: Refused) {
        use crate::metrics::{UNMATCHED_ROUTE, record_check};
        match refused {
            Refused::Overloaded => {
                record_check("error", "overloaded", UNMATCHED_ROUTE, Duration::ZERO);
                tracing::debug!(
                    "check refused: too many checks in flight (server.max_concurrent_checks)"
                );
            }
            Refused::TimedOut => {
                record_check("error", "timeout", UNMATCHED_ROUTE, self.timeout);
                crate::telemetry::record_decision("error", "timeout", UNMATCHED_ROUTE, None);
                tracing::error!(timeout = ?self.timeout, "check timed out (server.check_timeout)");
            }
        }
    }
}
