//! The Check path both edges share, in one place: a place among the checks
//! in flight (refused at once, not queued, when all are taken), the live
//! authorizer, the check's span continuing the caller's trace, the timeout,
//! and the record of a check that got no answer. The edges only translate
//! the wire to an [`AuthzRequest`] and the outcome back.

use std::sync::Arc;

use tokio::sync::SemaphorePermit;
use tracing::Instrument as _;

use super::authorizer::Authorizer;
use super::live::LiveAuthorizer;
use super::request::AuthzRequest;
use crate::audit::Auditor;
use crate::limits::{CheckGate, CheckLimits, Refused};
use crate::outcome::Decision;

/// Why a check got no decision: each is an error for Envoy's failure mode.
#[derive(Debug)]
pub(crate) enum Unanswered {
    /// Every place among the checks in flight is taken.
    Overloaded,
    /// The check took longer than `server.check_timeout`.
    TimedOut,
    /// The check could not be decided (an IdP outage); the log line says why.
    Fault,
}

impl Unanswered {
    /// What the edges tell Envoy; the detail is in the log line.
    pub(crate) fn description(&self) -> &'static str {
        match self {
            Unanswered::Overloaded => "too many authorization checks in flight",
            Unanswered::TimedOut => "authorization timed out",
            Unanswered::Fault => "authorization is temporarily unavailable",
        }
    }
}

/// The checks of one server, behind its limits.
pub(crate) struct Checkpoint {
    live: Arc<LiveAuthorizer>,
    gate: CheckGate,
    /// Where decided checks are recorded; kept across reloads.
    audit: Auditor,
}

/// A check that got a place: it holds it, and the authorizer current when
/// it got it, until it is answered.
pub(crate) struct Admitted<'a> {
    _permit: SemaphorePermit<'a>,
    gate: &'a CheckGate,
    audit: &'a Auditor,
    authorizer: Arc<Authorizer>,
}

impl Checkpoint {
    /// Checks with whatever authorizer `live` holds, within `limits`,
    /// recording decisions to `audit`.
    pub(crate) fn new(
        live: Arc<LiveAuthorizer>,
        limits: CheckLimits,
        audit: Auditor,
    ) -> Checkpoint {
        Checkpoint {
            live,
            gate: CheckGate::new(limits),
            audit,
        }
    }

    /// The live authorizer.
    pub(crate) fn live(&self) -> &Arc<LiveAuthorizer> {
        &self.live
    }

    /// A place for one check, taken before any work so that a refusal
    /// costs little. Overload is counted, and logged at debug only: a line
    /// per refusal would add load exactly when there is too much.
    pub(crate) fn admit(&self) -> Result<Admitted<'_>, Unanswered> {
        let Some(permit) = self.gate.enter() else {
            self.gate.record(Refused::Overloaded);
            return Err(Unanswered::Overloaded);
        };
        Ok(Admitted {
            _permit: permit,
            gate: &self.gate,
            audit: &self.audit,
            authorizer: self.live.current(),
        })
    }
}

impl Admitted<'_> {
    /// Decides `request` within the timeout, in a `check` span whose parent
    /// is the first valid `traceparent` of `trace_context` (the caller's
    /// own, such as Envoy's gRPC metadata), else of the request's headers.
    /// `trace_context` is read only when tracing is on.
    pub(crate) async fn check(
        self,
        request: &AuthzRequest,
        trace_context: impl FnOnce() -> Vec<(String, String)>,
    ) -> Result<Decision, Unanswered> {
        let span = crate::telemetry::check_span(&request.method);
        if !span.is_disabled() {
            let nearer = trace_context();
            crate::telemetry::continue_trace(&span, &[&nearer, &request.headers]);
        }
        let gate = self.gate;
        let authorizer = &self.authorizer;
        let audit = self.audit;
        async move {
            match gate.within(authorizer.check_audited(request, audit)).await {
                Ok(Ok(decision)) => Ok(decision),
                // The cause is in the check's log line.
                Ok(Err(_)) => Err(Unanswered::Fault),
                Err(refused) => {
                    gate.record(refused);
                    Err(Unanswered::TimedOut)
                }
            }
        }
        .instrument(span)
        .await
    }
}
