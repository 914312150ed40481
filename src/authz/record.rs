//! What a decided check leaves behind: one log line (never the token), the
//! check metrics (per client too, when configured), the outcome on the
//! check's span, and its audit record with the decision id returned to
//! Envoy.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::request::Target;
use crate::audit::{AuditRecord, Auditor, DecisionId, Evidence};
use crate::error_chain::ErrorChain;
use crate::metrics::ClientLabels;
use crate::outcome::{Bound, Caller, Decision, Denial, Fault};

/// The dynamic metadata key of the decision id.
pub(crate) const DECISION_ID_KEY: &str = "decision_id";

/// Gives a decision the audit stream records its decision id: in Envoy's
/// dynamic metadata (`decision_id`), and in the configured response header,
/// on an allow and on a deny alike. `None` when it is not recorded.
pub(crate) fn stamp(audit: &Auditor, outcome: &mut Result<Decision, Fault>) -> Option<DecisionId> {
    let allowed = matches!(outcome, Ok(Decision::Allow(_)));
    let id = audit.decision_id(allowed)?;
    let text = id.to_string();
    let header = audit.decision_id_header();
    let (metadata, headers) = match outcome {
        Ok(Decision::Allow(grant)) => (&mut grant.metadata, &mut grant.response_headers),
        Ok(Decision::Deny(denial)) => (&mut denial.metadata, &mut denial.extra_headers),
        Err(_) => return Some(id),
    };
    metadata.insert(DECISION_ID_KEY.to_owned(), Value::from(text.clone()));
    if let Some(header) = header {
        headers.push((header.to_owned(), text));
    }
    Some(id)
}

/// Offers the check's audit record: never the token, only what the check
/// decided with, and the configured claims masked.
pub(crate) fn audit(
    audit: &Auditor,
    id: DecisionId,
    target: &Target<'_>,
    outcome: &Result<Decision, Fault>,
    evidence: &Evidence,
    latency: Duration,
) {
    let (decision, reason, status, route, caller, bound) = match outcome {
        Ok(Decision::Allow(grant)) => (
            "allow",
            None,
            None,
            &grant.route,
            grant.caller.as_ref(),
            grant.binding,
        ),
        Ok(Decision::Deny(denial)) => (
            "deny",
            Some(denial.reason.label()),
            Some(denial.reason.http_status()),
            &denial.route,
            denial.caller.as_ref(),
            denial.binding,
        ),
        Err(fault) => (
            "error",
            Some(fault.label()),
            None,
            &None,
            None,
            Bound::default(),
        ),
    };
    audit.submit(AuditRecord {
        decision_id: id,
        time: SystemTime::now(),
        decision,
        reason,
        status,
        route: route.clone(),
        method: target.method.to_string(),
        host: target.logged_host().to_owned(),
        path: target.logged_path().to_owned(),
        provider: caller.map(|c| c.provider.clone()),
        subject: audit.mask_field("sub", caller.and_then(|c| c.subject.clone())),
        client_id: audit.mask_field("client_id", caller.and_then(|c| c.client_id.clone())),
        key_id: evidence.key_id.clone(),
        binding: bound.checked(),
        cache_hit: evidence.cache_hit,
        latency,
        claims: audit.claims(evidence.claims.as_ref()),
        trace_id: crate::telemetry::trace_id(),
    });
}

/// Counts the check under its caller's bounded `client` label, when
/// per-client metrics are configured.
pub(crate) fn count_client(
    labels: &ClientLabels,
    outcome: &Result<Decision, Fault>,
    evidence: &Evidence,
) {
    if labels.is_off() {
        return;
    }
    let (decision, route, caller): (_, _, Option<&Caller>) = match outcome {
        Ok(Decision::Allow(grant)) => ("allow", &grant.route, grant.caller.as_ref()),
        Ok(Decision::Deny(denial)) => ("deny", &denial.route, denial.caller.as_ref()),
        Err(_) => ("error", &None, None),
    };
    let client_id = caller.and_then(|c| c.client_id.as_deref());
    let client = labels.label(client_id, evidence.claims.as_deref());
    let route = route.as_deref().unwrap_or(crate::metrics::UNMATCHED_ROUTE);
    crate::metrics::record_client_check(client, decision, route);
}

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
/// `decision_id` is the audit record's, when there is one.
pub(crate) fn log_outcome(
    target: &Target<'_>,
    outcome: &Result<Decision, Fault>,
    decision_id: Option<DecisionId>,
) {
    let decision_id = decision_id.map(tracing::field::display);
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
                decision_id,
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
        binding = bound.checked(),
        trace_id,
        decision_id,
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
        binding = denial.binding.checked(),
        detail = denial.detail.as_deref(),
        "dry run: deny not enforced, request allowed"
    );
}
