//! A batch of audit records as one OTLP `ExportLogsServiceRequest`, sent
//! over gRPC to the collector: one log record per decision, event name
//! `tollgate.decision`, severity INFO for an allow, WARN for a deny and
//! ERROR for a check that could not be decided, and the record's fields as
//! attributes (the same names as in the JSON lines).
//!
//! Sent with the generated client of `opentelemetry-proto` rather than the
//! SDK's log pipeline: the SDK batches in a queue of its own, drops without
//! telling, and would put its queue between the check and the one this
//! module bounds and counts.

use std::time::{Duration, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;
use reqwest::Url;
use serde_json::Value;
use tonic::transport::{Channel, Endpoint};

use super::record::AuditRecord;

/// The event name of every exported record.
pub(crate) const EVENT_NAME: &str = "tollgate.decision";

/// The collector, reached over one lazily connected channel that
/// reconnects by itself after the collector comes back.
pub(super) struct OtlpSink {
    client: Result<LogsServiceClient<Channel>, String>,
    resource: Resource,
}

impl OtlpSink {
    pub(super) fn new(endpoint: &Url, service_name: &str, timeout: Duration) -> OtlpSink {
        let client = Endpoint::from_shared(endpoint.to_string())
            .map(|endpoint| {
                let channel = endpoint
                    .connect_timeout(timeout)
                    .timeout(timeout)
                    .connect_lazy();
                LogsServiceClient::new(channel)
            })
            .map_err(|e| format!("{endpoint}: {e}"));
        let resource = Resource {
            attributes: vec![string_attribute("service.name", service_name)],
            ..Default::default()
        };
        OtlpSink { client, resource }
    }

    /// Exports `batch`; `Ok(n)` is how many records the collector refused
    /// (OTLP partial success).
    pub(super) async fn export(&mut self, batch: &[AuditRecord]) -> Result<u64, String> {
        let client = self.client.as_mut().map_err(|e| e.clone())?;
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(self.resource.clone()),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "tollgate.audit".to_owned(),
                        version: env!("CARGO_PKG_VERSION").to_owned(),
                        ..Default::default()
                    }),
                    log_records: batch.iter().map(log_record).collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let response = client
            .export(request)
            .await
            .map_err(|status| format!("{}: {}", status.code(), status.message()))?;
        let refused = response
            .into_inner()
            .partial_success
            .map_or(0, |partial| partial.rejected_log_records);
        Ok(u64::try_from(refused).unwrap_or(0))
    }
}

/// One record as an OTLP log record.
pub(crate) fn log_record(record: &AuditRecord) -> LogRecord {
    let time = record
        .time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let time = u64::try_from(time).unwrap_or(u64::MAX);
    let (severity, text) = match record.decision {
        "allow" => (SeverityNumber::Info, "INFO"),
        "deny" => (SeverityNumber::Warn, "WARN"),
        _ => (SeverityNumber::Error, "ERROR"),
    };
    let attributes = attributes(record);
    LogRecord {
        time_unix_nano: time,
        observed_time_unix_nano: time,
        severity_number: severity as i32,
        severity_text: text.to_owned(),
        event_name: EVENT_NAME.to_owned(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(record.decision.to_owned())),
        }),
        attributes,
        trace_id: record.trace_id.as_deref().map(unhex).unwrap_or_default(),
        ..Default::default()
    }
}

/// The record's fields as attributes, named as in its JSON form; `null`
/// ones left out. Built field by field: a batch is converted even when the
/// collector is down, so this stays cheap.
fn attributes(record: &AuditRecord) -> Vec<KeyValue> {
    use any_value::Value as Any;
    let text = |key: &str, value: Option<&str>| {
        value.map(|value| attribute(key, Any::StringValue(value.to_owned())))
    };
    let mut attributes: Vec<KeyValue> = [
        Some(attribute(
            "decision_id",
            Any::StringValue(record.decision_id.to_string()),
        )),
        text("decision", Some(record.decision)),
        text("reason", record.reason),
        record
            .status
            .map(|status| attribute("status", Any::IntValue(i64::from(status)))),
        text("route", record.route.as_deref()),
        text("method", Some(&record.method)),
        text("host", Some(&record.host)),
        text("path", Some(&record.path)),
        text("provider", record.provider.as_deref()),
        text("subject", record.subject.as_deref()),
        text("client_id", record.client_id.as_deref()),
        text("key_id", record.key_id.as_deref()),
        text("binding", record.binding),
        record
            .cache_hit
            .map(|hit| attribute("cache_hit", Any::BoolValue(hit))),
        Some(attribute(
            "latency_us",
            Any::IntValue(i64::try_from(record.latency.as_micros()).unwrap_or(i64::MAX)),
        )),
        text("trace_id", record.trace_id.as_deref()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !record.claims.is_empty() {
        let claims = Value::Object(record.claims.clone());
        attributes.push(KeyValue {
            key: "claims".to_owned(),
            value: Some(any_value(claims)),
        });
    }
    attributes
}

fn attribute(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
    }
}

fn string_attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
    }
}

/// A JSON value as an OTLP attribute value.
fn any_value(value: Value) -> AnyValue {
    use any_value::Value as Any;
    let value = match value {
        Value::Null => None,
        Value::Bool(b) => Some(Any::BoolValue(b)),
        Value::Number(n) => Some(match n.as_i64() {
            Some(i) => Any::IntValue(i),
            None => Any::DoubleValue(n.as_f64().unwrap_or_default()),
        }),
        Value::String(s) => Some(Any::StringValue(s)),
        Value::Array(items) => Some(Any::ArrayValue(ArrayValue {
            values: items.into_iter().map(any_value).collect(),
        })),
        Value::Object(fields) => Some(Any::KvlistValue(KeyValueList {
            values: fields
                .into_iter()
                .map(|(key, value)| KeyValue {
                    key,
                    value: Some(any_value(value)),
                })
                .collect(),
        })),
    };
    AnyValue { value }
}

/// Hex text as bytes; empty when it is not hex.
fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|p| u8::from_str_radix(p, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .unwrap_or_default()
}
