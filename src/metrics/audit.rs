//! The families of per-client checks and of the audit stream, kept apart
//! from the registry's own so each reads in one place.

use std::sync::atomic::Ordering;

use super::family::{Counter, Family, Gauge, increment, render_counters, render_gauges};

/// `tollgate_client_checks_total` and the `tollgate_audit_*` families.
pub(super) struct CallerFamilies {
    client_checks: Family<Counter>,
    audit_exported: Family<Counter>,
    audit_dropped: Family<Counter>,
    audit_queue: Family<Gauge>,
}

impl CallerFamilies {
    pub(super) const fn new() -> CallerFamilies {
        CallerFamilies {
            client_checks: Family::new(
                "tollgate_client_checks_total",
                "Authorization checks by caller (an allow-listed client, `other` or `none`), decision and configured route.",
                &["client", "decision", "route"],
            ),
            audit_exported: Family::new(
                "tollgate_audit_records_exported_total",
                "Audit records the collector accepted or the file took.",
                &[],
            ),
            audit_dropped: Family::new(
                "tollgate_audit_records_dropped_total",
                "Audit records dropped, by reason (queue_full, export_failed, rejected, shutdown).",
                &["reason"],
            ),
            audit_queue: Family::new(
                "tollgate_audit_queue_records",
                "Audit records waiting for export, as the exporter last saw them.",
                &[],
            ),
        }
    }

    pub(super) fn render(&self, out: &mut String) {
        render_counters(out, &self.client_checks);
        render_counters(out, &self.audit_exported);
        render_counters(out, &self.audit_dropped);
        render_gauges(out, &self.audit_queue);
    }
}

impl CallerFamilies {
    pub(super) fn record_client_check(&self, client: &str, decision: &str, route: &str) {
        increment(&self.client_checks, &[client, decision, route]);
    }

    pub(super) fn record_audit_exported(&self, count: u64) {
        let counter = self.audit_exported.get(&[]);
        counter.0.fetch_add(count, Ordering::Relaxed);
    }

    pub(super) fn record_audit_dropped(&self, reason: &str, count: u64) {
        let counter = self.audit_dropped.get(&[reason]);
        counter.0.fetch_add(count, Ordering::Relaxed);
    }

    pub(super) fn set_audit_queue(&self, records: usize) {
        self.audit_queue.get(&[]).set(records as f64);
    }
}
