//! The `audit:` section (where decision records go, which are sampled,
//! what they carry and how it is masked) and the `metrics:` section (which
//! callers get a `client` label of their own), into the settings of
//! `audit` and `metrics`.

use std::path::{Path, PathBuf};

use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;

use super::error::load_error;
use super::error::{ConfigError, invalid};
use super::raw::{RawClaimPath, RawDuration};
use super::values::{claim_path, header_name, positive_duration};
use crate::audit::{AuditSettings, Mask, Masking, SinkSettings};
use crate::claims::ClaimPath;
use crate::metrics::{ClientLabels, NO_CLIENT, OTHER_CLIENT};

/// Most allow-listed clients: each adds a series per decision and route.
const MAX_CLIENTS: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAudit {
    /// OTLP logs over gRPC to a collector.
    pub(crate) otlp: Option<RawAuditOtlp>,
    /// JSON lines to a file, rotated by size.
    pub(crate) file: Option<RawAuditFile>,
    /// Share of allows recorded, 0.0 to 1.0. Default 1.0.
    pub(crate) allow_sample_ratio: Option<f64>,
    /// Record every deny and error. Default true.
    pub(crate) record_denies: Option<bool>,
    /// Claims copied into each record.
    #[serde(default)]
    pub(crate) claims: Vec<RawClaimPath>,
    /// Masking rules for named claims.
    #[serde(default)]
    pub(crate) mask: Vec<RawMask>,
    pub(crate) queue_capacity: Option<usize>,
    pub(crate) batch_size: Option<usize>,
    /// Longest a record waits for its batch to fill.
    pub(crate) flush_interval: Option<RawDuration>,
    /// Response header that names the decision id.
    pub(crate) decision_id_header: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuditOtlp {
    /// `http://HOST:4317`.
    pub(crate) endpoint: String,
    pub(crate) service_name: Option<String>,
    pub(crate) timeout: Option<RawDuration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuditFile {
    pub(crate) path: PathBuf,
    pub(crate) max_bytes: Option<u64>,
    pub(crate) max_files: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMask {
    pub(crate) claim: RawClaimPath,
    /// `redact` (the default) or `hash`.
    pub(crate) with: Option<RawMasking>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case", expecting = "`redact` or `hash`")]
pub(crate) enum RawMasking {
    Redact,
    Hash,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetrics {
    /// Client ids (or values of `client_claim`) with a label of their own.
    #[serde(default)]
    pub(crate) clients: Vec<String>,
    /// Read the label from this claim instead of the client id.
    pub(crate) client_claim: Option<RawClaimPath>,
}

/// `value`, the section named `section`, as `T`; errors name the field.
fn section<T: for<'de> Deserialize<'de>>(
    value: &figment::value::Value,
    section: &str,
) -> Result<T, ConfigError> {
    value.deserialize().map_err(|mut error| {
        error.path.insert(0, section.to_owned());
        load_error(error)
    })
}

/// The audit settings; relative file paths resolve against `base`.
pub(super) fn settings(
    raw: &figment::value::Value,
    base: &Path,
) -> Result<AuditSettings, ConfigError> {
    let raw: RawAudit = section(raw, "audit")?;
    let sink = match (raw.otlp, raw.file) {
        (Some(otlp), None) => otlp_sink(otlp)?,
        (None, Some(file)) => file_sink(file, base)?,
        _ => {
            return Err(invalid(
                "audit",
                "set exactly one of `otlp` (a collector) and `file` (JSON lines)",
            ));
        }
    };
    let allow_sample_ratio = raw.allow_sample_ratio.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&allow_sample_ratio) {
        return Err(invalid(
            "audit.allow_sample_ratio",
            "must be between 0.0 and 1.0",
        ));
    }
    let claims = raw
        .claims
        .into_iter()
        .enumerate()
        .map(|(i, path)| claim_path(path).map_err(|m| invalid(format!("audit.claims[{i}]"), m)))
        .collect::<Result<Vec<_>, _>>()?;
    let masks = raw
        .mask
        .into_iter()
        .enumerate()
        .map(|(i, mask)| {
            let claim =
                claim_path(mask.claim).map_err(|m| invalid(format!("audit.mask[{i}].claim"), m))?;
            let with = match mask.with.unwrap_or(RawMasking::Redact) {
                RawMasking::Redact => Masking::Redact,
                RawMasking::Hash => Masking::Hash,
            };
            Ok(Mask { claim, with })
        })
        .collect::<Result<Vec<_>, ConfigError>>()?;
    let queue_capacity = bounded(raw.queue_capacity, 4096, "audit.queue_capacity", 1_000_000)?;
    let batch_size = bounded(raw.batch_size, 512, "audit.batch_size", 10_000)?;
    let flush_interval = positive_duration(
        &raw.flush_interval,
        "audit.flush_interval",
        Duration::from_millis(200),
    )?;
    let decision_id_header = raw
        .decision_id_header
        .map(|name| header_name(&name, "audit.decision_id_header"))
        .transpose()?;
    Ok(AuditSettings {
        sink,
        allow_sample_ratio,
        record_denies: raw.record_denies.unwrap_or(true),
        claims,
        masks,
        queue_capacity,
        batch_size,
        flush_interval,
        decision_id_header,
    })
}

fn otlp_sink(raw: RawAuditOtlp) -> Result<SinkSettings, ConfigError> {
    let field = "audit.otlp.endpoint";
    let endpoint = Url::parse(raw.endpoint.trim())
        .map_err(|e| invalid(field, format!("not a URL ({e}); use http://HOST:4317")))?;
    if endpoint.scheme() != "http" || endpoint.host_str().is_none() {
        return Err(invalid(
            field,
            "use http://HOST:4317 (OTLP over gRPC to a collector on the node or in the pod)",
        ));
    }
    let service_name = raw.service_name.unwrap_or_else(|| "tollgate".to_owned());
    if service_name.trim().is_empty() {
        return Err(invalid("audit.otlp.service_name", "must not be empty"));
    }
    let timeout = positive_duration(&raw.timeout, "audit.otlp.timeout", Duration::from_secs(5))?;
    Ok(SinkSettings::Otlp {
        endpoint,
        service_name,
        timeout,
    })
}

fn file_sink(raw: RawAuditFile, base: &Path) -> Result<SinkSettings, ConfigError> {
    let path = base.join(raw.path);
    if path.file_name().is_none() {
        return Err(invalid("audit.file.path", "name a file"));
    }
    let max_bytes = raw.max_bytes.unwrap_or(100 * 1024 * 1024);
    if max_bytes < 4096 {
        return Err(invalid("audit.file.max_bytes", "must be at least 4096"));
    }
    let max_files = raw.max_files.unwrap_or(5);
    if max_files > 1000 {
        return Err(invalid("audit.file.max_files", "must be at most 1000"));
    }
    Ok(SinkSettings::File {
        path,
        max_bytes,
        max_files,
    })
}

/// `value`, or `default`; refused when 0 or above `max`.
fn bounded(
    value: Option<usize>,
    default: usize,
    field: &str,
    max: usize,
) -> Result<usize, ConfigError> {
    let value = value.unwrap_or(default);
    if value == 0 || value > max {
        return Err(invalid(field, format!("must be between 1 and {max}")));
    }
    Ok(value)
}

/// Which callers get a `client` metrics label of their own.
pub(super) fn client_labels(
    raw: Option<&figment::value::Value>,
) -> Result<ClientLabels, ConfigError> {
    let Some(raw) = raw else {
        return Ok(ClientLabels::default());
    };
    let raw: RawMetrics = section(raw, "metrics")?;
    if raw.clients.len() > MAX_CLIENTS {
        return Err(invalid(
            "metrics.clients",
            format!("at most {MAX_CLIENTS}: each adds series per decision and route"),
        ));
    }
    if let Some(bad) = raw.clients.iter().find(|c| {
        c.is_empty() || *c == OTHER_CLIENT || *c == NO_CLIENT || c.chars().any(char::is_control)
    }) {
        return Err(invalid(
            "metrics.clients",
            format!(
                "`{bad}` cannot be a label: `other` and `none` are tollgate's, and a label is non-empty text"
            ),
        ));
    }
    let claim: Option<ClaimPath> = raw
        .client_claim
        .map(|path| claim_path(path).map_err(|m| invalid("metrics.client_claim", m)))
        .transpose()?;
    let mut allowed = raw.clients;
    allowed.sort_unstable();
    allowed.dedup();
    Ok(ClientLabels { claim, allowed })
}
