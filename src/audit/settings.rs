//! What the audit stream is configured with, and the [`Evidence`] a check
//! hands over for its record.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;

use crate::claims::{ClaimPath, Claims};

/// What the audit stream records and where it goes, as configured.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AuditSettings {
    /// Where records are exported.
    pub(crate) sink: SinkSettings,
    /// Share of allows recorded (0.0 to 1.0).
    pub(crate) allow_sample_ratio: f64,
    /// Record every deny and error, whatever the allow sampling.
    pub(crate) record_denies: bool,
    /// Claims copied into each record, by path.
    pub(crate) claims: Vec<ClaimPath>,
    /// How named claims (and `sub`, `client_id` for the subject and client
    /// id fields) are masked in records.
    pub(crate) masks: Vec<Mask>,
    /// Records waiting for export at most; more are dropped and counted.
    pub(crate) queue_capacity: usize,
    /// Records sent (or written) together at most.
    pub(crate) batch_size: usize,
    /// Longest a record waits for its batch to fill before it is exported.
    pub(crate) flush_interval: Duration,
    /// Response header naming the decision id, besides dynamic metadata.
    pub(crate) decision_id_header: Option<String>,
}

/// Where audit records go.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SinkSettings {
    /// OTLP logs over gRPC to a collector.
    Otlp {
        /// `http://HOST:4317`.
        endpoint: Url,
        /// `service.name` of the exported records.
        service_name: String,
        /// Longest one export may take before its batch counts as dropped.
        timeout: Duration,
    },
    /// JSON lines appended to a file, rotated by size.
    File {
        /// The file written; rotated ones get `.1`, `.2`, ... appended.
        path: PathBuf,
        /// Size past which the file is rotated.
        max_bytes: u64,
        /// Rotated files kept besides the current one.
        max_files: usize,
    },
}

/// A masking rule: the claim at `claim` is replaced in every record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mask {
    /// The claim masked; `sub` and `client_id` also mask the subject and
    /// client id fields.
    pub(crate) claim: ClaimPath,
    /// What it becomes.
    pub(crate) with: Masking,
}

/// What a masked value becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Masking {
    /// The text `****`.
    Redact,
    /// `sha256:` and the first 16 hex digits of the SHA-256 of its JSON
    /// text: the same value masks the same way, so records still group by
    /// it. Pseudonymous, not anonymous: a guessable value can be guessed.
    Hash,
}

/// What the authorizer learnt while deciding, for the record: handed over
/// by the check, never read from the token again.
#[derive(Debug, Default)]
pub(crate) struct Evidence {
    /// The `kid` of the key that verified a JWT.
    pub(crate) key_id: Option<Arc<str>>,
    /// Whether the verified-JWT cache answered (`None`: no JWT looked up).
    pub(crate) cache_hit: Option<bool>,
    /// The verified token's claims, for the configured record claims and
    /// the per-client metrics label.
    pub(crate) claims: Option<Claims>,
}
