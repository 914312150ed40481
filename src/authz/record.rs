//! What a decided check leaves behind: one log line (never the token), the
//! check metrics, and the outcome on the check's span.

use super::request::Target;
use crate::error_chain::ErrorChain;
use crate::outcome::{Bound, Decision, Denial, Fault};

/// Counts the outcome and records it, with the host, on the current span.
pub(crate) fn record_outcome(
    target: &Target<'_>,
    outcome: &Result<Decision, Fault>,
    duration: std::time::Duration,
) {
    let (decision, reason, route) = match outcome {
        Ok(Decision::Allow(grant)) => ("allow", "", &grant.route),
        Ok(Decision::Deny(denial)) => ("deny", denial.reason.label(), &denial.route),
        Err(fault) => ("error", fault.label(), &None),
    };
    let route = route.as_deref().unwrap_or(crate::metrics::UNMATCHED_ROUTE);
    crate::metrics::record_check(decision, reason, route, duration);
    crate::telemetry::record_decision(decision, reason, route, target.host.as_deref());
}

/// The check's log line: at `info` for a decision, at `error` with the
/// cause for a fault.
pub(crate) fn log_outcome(target: &Target<'_>, outcome: &Result<Decision, Fault>) {
    let path = target.logged_path();
    let host = target.logged_host();
    let trace_id = crate::telemetry::trace_id();
    let (decision, route, caller, denial, bound) = match outcome {
        Ok(Decision::Allow(grant)) => ("allow", &grant.route, &grant.caller, None, grant.binding),
        Ok(Decision::Deny(denial)) => (
            "deny",
            &denial.route,
            &denial.caller,
            Some(denial),
            denial.binding,
        ),
        Err(fault) => {
            tracing::error!(
                decision = "error",
                reason = fault.label(),
                method = %target.method,
                host,
                path,
                error = %ErrorChain(fault),
                trace_id,
                "check failed; Envoy's failure mode decides"
            );
            return;
        }
    };
    let caller = caller.as_ref();
    tracing::info!(
        decision,
        reason = denial.map(|d| d.reason.label()),
        status = denial.map(|d| d.reason.http_status()),
        detail = denial.and_then(|d| d.detail.as_deref()),
        route = route.as_deref().unwrap_or("<unmatched>"),
        method = %target.method,
        host,
        path,
        provider = caller.map(|c| &*c.provider),
        subject = caller.and_then(|c| c.subject.as_deref()),
        client_id = caller.and_then(|c| c.client_id.as_deref()),
        binding = (bound != Bound::default()).then(|| bound.label()),
        trace_id,
        "check"
    );
}

/// Logs the deny a dry-run route does not enforce.
pub(crate) fn log_dry_run(target: &Target<'_>, denial: &Denial) {
    tracing::warn!(
        dry_run = true,
        decision = "deny",
        reason = denial.reason.label(),
        status = denial.reason.http_status(),
        route = denial.route.as_deref().unwrap_or("<unmatched>"),
        method = %target.method,
        path = target.logged_path(),
        subject = denial.caller.as_ref().and_then(|c| c.subject.as_deref()),
        binding = (denial.binding != Bound::default()).then(|| denial.binding.label()),
        detail = denial.detail.as_deref(),
        "dry run: deny not enforced, request allowed"
    );
}
