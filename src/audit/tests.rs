use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};

use super::record::{Rfc3339, mask_field, selected_claims};
use super::*;
use crate::claims::ClaimPath;

fn settings(sink: SinkSettings) -> AuditSettings {
    AuditSettings {
        sink,
        allow_sample_ratio: 1.0,
        record_denies: true,
        claims: vec![
            ClaimPath::key("tenant"),
            ClaimPath::dotted("org.email").unwrap(),
        ],
        masks: vec![
            Mask {
                claim: ClaimPath::dotted("org.email").unwrap(),
                with: Masking::Hash,
            },
            Mask {
                claim: ClaimPath::key("sub"),
                with: Masking::Redact,
            },
        ],
        queue_capacity: 4,
        batch_size: 2,
        flush_interval: Duration::from_millis(200),
        decision_id_header: Some("x-decision-id".into()),
    }
}

fn record(id: DecisionId) -> AuditRecord {
    AuditRecord {
        decision_id: id,
        time: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        decision: "deny",
        reason: Some("insufficient_scope"),
        status: Some(403),
        route: Some("orders".into()),
        method: "POST".into(),
        host: "api.example.com".into(),
        path: "/orders".into(),
        provider: Some("keycloak".into()),
        subject: Some("svc-1".into()),
        client_id: Some("billing".into()),
        key_id: Some("rsa-1".into()),
        binding: None,
        cache_hit: Some(true),
        latency: Duration::from_micros(84),
        claims: serde_json::Map::new(),
        trace_id: None,
    }
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tollgate-audit-{name}-{}-{}",
        std::process::id(),
        DecisionId::new()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn decision_ids_are_uuid_v7_and_distinct() {
    let a = DecisionId::new().to_string();
    let b = DecisionId::new().to_string();
    assert_ne!(a, b);
    assert_eq!(a.len(), 36, "{a}");
    assert_eq!(&a[14..15], "7", "{a}");
    assert!("89ab".contains(&a[19..20]), "{a}");
    // The time prefix: ids made later never sort before.
    assert!(a[..8] <= b[..8]);
}

#[test]
fn sampling_follows_the_ratio() {
    assert!(!DecisionId::new().sampled(0.0));
    assert!(DecisionId::new().sampled(1.0));
    let kept = (0..10_000)
        .filter(|_| DecisionId::new().sampled(0.25))
        .count();
    assert!((2_000..3_000).contains(&kept), "{kept}");
}

#[test]
fn times_are_rfc3339_utc_with_milliseconds() {
    let at = |millis: u64| Rfc3339(UNIX_EPOCH + Duration::from_millis(millis)).to_string();
    assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(at(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    assert_eq!(at(1_709_164_800_000), "2024-02-29T00:00:00.000Z");
    assert_eq!(at(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
}

#[test]
fn named_claims_are_masked_and_others_left_out() {
    let settings = settings(SinkSettings::File {
        path: "unused".into(),
        max_bytes: 4096,
        max_files: 1,
    });
    let claims = json!({"tenant": "t1", "org": {"email": "a@example.com"}, "secret_ish": "x"});
    let Value::Object(claims) = claims else {
        unreachable!()
    };
    let selected = selected_claims(&settings, &std::sync::Arc::new(claims));
    assert_eq!(selected["tenant"], "t1");
    let email = selected["org.email"].as_str().unwrap();
    assert!(email.starts_with("sha256:") && email.len() == 23, "{email}");
    assert!(!email.contains("example"));
    assert!(!selected.contains_key("secret_ish"));
    // The same value masks the same way.
    let again = json!({"org": {"email": "a@example.com"}});
    let Value::Object(again) = again else {
        unreachable!()
    };
    let again = selected_claims(&settings, &std::sync::Arc::new(again));
    assert_eq!(again["org.email"], selected["org.email"]);
    assert_eq!(
        mask_field(&settings.masks, "sub", Some("svc-1".into())).as_deref(),
        Some(record::REDACTED)
    );
    assert_eq!(
        mask_field(&settings.masks, "client_id", Some("billing".into())).as_deref(),
        Some("billing")
    );
}

#[test]
fn a_record_is_one_json_line_with_every_field() {
    let mut line = Vec::new();
    record(DecisionId::new()).json_line(&mut line);
    assert_eq!(line.last(), Some(&b'\n'));
    assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
    let value: Value = serde_json::from_slice(&line).unwrap();
    assert_eq!(value["time"], "2023-11-14T22:13:20.123Z");
    assert_eq!(value["decision"], "deny");
    assert_eq!(value["status"], 403);
    assert_eq!(value["route"], "orders");
    assert_eq!(value["key_id"], "rsa-1");
    assert_eq!(value["binding"], Value::Null);
    assert_eq!(value["cache_hit"], true);
    assert_eq!(value["latency_us"], 84);
    assert!(value.get("claims").is_none());
}

#[test]
fn an_otlp_log_record_carries_the_fields_as_attributes() {
    let log = otlp::log_record(&record(DecisionId::new()));
    assert_eq!(log.event_name, otlp::EVENT_NAME);
    assert_eq!(log.severity_text, "WARN");
    assert_eq!(log.time_unix_nano, 1_700_000_000_123_000_000);
    let keys: Vec<&str> = log.attributes.iter().map(|a| a.key.as_str()).collect();
    for key in [
        "decision_id",
        "route",
        "reason",
        "status",
        "client_id",
        "key_id",
    ] {
        assert!(keys.contains(&key), "{key} in {keys:?}");
    }
    // Null fields (binding) are left out, not sent empty.
    assert!(!keys.contains(&"binding"), "{keys:?}");
}

/// The record a check makes, one per call.
fn fill(auditor: &Auditor, count: usize) {
    for _ in 0..count {
        auditor.submit(record(DecisionId::new()));
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_full_queue_drops_and_counts_without_waiting() {
    let dir = scratch("queue");
    let path = dir.join("audit.jsonl");
    let (auditor, task) = Auditor::start(settings(SinkSettings::File {
        path: path.clone(),
        max_bytes: 1 << 20,
        max_files: 1,
    }));
    let dropped = || dropped_queue_full();
    let before = dropped();
    // The export task cannot run while this test does not yield: the queue
    // of 4 takes 4 and the other 6 are dropped at once.
    fill(&auditor, 10);
    assert_eq!(dropped() - before, 6);
    task.finish(Duration::from_secs(5)).await;
    let written = std::fs::read_to_string(&path).unwrap();
    assert_eq!(written.lines().count(), 4, "{written}");
    std::fs::remove_dir_all(dir).unwrap();
}

fn dropped_queue_full() -> u64 {
    crate::metrics::global()
        .render()
        .lines()
        .find_map(|line| {
            line.strip_prefix("tollgate_audit_records_dropped_total{reason=\"queue_full\"} ")
        })
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test]
async fn the_file_is_rotated_by_size_keeping_max_files() {
    let dir = scratch("rotate");
    let path = dir.join("audit.jsonl");
    let mut sink = file::FileSink::new(path.clone(), 4096, 2);
    let batch: Vec<AuditRecord> = (0..8).map(|_| record(DecisionId::new())).collect();
    for _ in 0..20 {
        sink.append(&batch).await.unwrap();
    }
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]);
    for name in names {
        let text = std::fs::read_to_string(dir.join(&name)).unwrap();
        assert!(text.len() <= 4096, "{name}: {}", text.len());
        for line in text.lines() {
            let _: Value = serde_json::from_str(line).unwrap();
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}
