//! The decision audit stream: one structured record per decided check
//! (who called what, and why it was allowed or refused), exported over
//! OTLP logs to a collector or written as JSON lines to a rotated file.
//!
//! A check only builds its record and offers it to a bounded queue
//! ([`Auditor::submit`]); it never waits on the export. When the queue is
//! full (the collector is down or slow) the record is dropped and counted,
//! and so is a batch the collector refuses. Memory is bounded by the queue
//! capacity plus the one batch being exported.
//!
//! Records never hold a token or a secret: the authorizer hands over only
//! what it decided with (route, reason, caller, key id), and the claims
//! copied into a record are the configured ones, masked as configured.
//!
//! # Layout
//! - [`settings`]: what is recorded and where, and what a check hands over.
//! - [`record`]: the record, its decision id, masking, and its JSON form.
//! - `export`: the queue and the task that drains it into a sink.
//! - `otlp`: a batch as an OTLP `ExportLogsServiceRequest`, sent over gRPC.
//! - `file`: JSON lines appended to a file, rotated by size.

mod export;
mod file;
mod otlp;
pub(crate) mod record;
pub(crate) mod settings;

use std::sync::Arc;

use serde_json::Value;

use crate::claims::Claims;
pub(crate) use export::AuditTask;
pub(crate) use record::{AuditRecord, DecisionId};
pub(crate) use settings::{AuditSettings, Evidence, Mask, Masking, SinkSettings};

/// The audit stream of one server: a cheap handle checks submit records
/// to, or nothing when `audit:` is not configured.
#[derive(Clone, Default)]
pub(crate) struct Auditor {
    inner: Option<Arc<export::Shared>>,
}

impl Auditor {
    /// An auditor that records nothing.
    pub(crate) fn off() -> Auditor {
        Auditor::default()
    }

    /// Starts the export task for `settings` (inside a Tokio runtime). The
    /// returned task flushes what is queued when finished.
    pub(crate) fn start(settings: AuditSettings) -> (Auditor, AuditTask) {
        let (shared, task) = export::start(settings);
        (
            Auditor {
                inner: Some(shared),
            },
            task,
        )
    }

    /// A fresh decision id when the decision is to be recorded: always for
    /// a deny or an error (when `record_denies`), for an allow at the
    /// sampling ratio; `None` when it is not recorded or audit is off.
    pub(crate) fn decision_id(&self, allowed: bool) -> Option<DecisionId> {
        let settings = &self.inner.as_ref()?.settings;
        let id = DecisionId::new();
        let recorded = if allowed {
            id.sampled(settings.allow_sample_ratio)
        } else {
            settings.record_denies
        };
        recorded.then_some(id)
    }

    /// The response header naming the decision id, when configured.
    pub(crate) fn decision_id_header(&self) -> Option<&str> {
        self.inner.as_ref()?.settings.decision_id_header.as_deref()
    }

    /// The configured claims of `claims`, masked: what a record carries.
    pub(crate) fn claims(&self, claims: Option<&Claims>) -> serde_json::Map<String, Value> {
        match (&self.inner, claims) {
            (Some(shared), Some(claims)) => record::selected_claims(&shared.settings, claims),
            _ => serde_json::Map::new(),
        }
    }

    /// `value` of the field named like claim `name` (`sub`, `client_id`),
    /// masked when a rule names that claim.
    pub(crate) fn mask_field(&self, name: &str, value: Option<String>) -> Option<String> {
        let shared = self.inner.as_ref()?;
        record::mask_field(&shared.settings.masks, name, value)
    }

    /// Offers `record` for export without waiting: when the queue is full
    /// it is dropped and counted.
    pub(crate) fn submit(&self, record: AuditRecord) {
        if let Some(shared) = &self.inner {
            shared.submit(record);
        }
    }
}

#[cfg(test)]
mod tests;
