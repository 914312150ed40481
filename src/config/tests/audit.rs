use super::*;
use crate::audit::{Masking, SinkSettings};

fn with(section: &str) -> String {
    format!("{section}\n{}", minimal("", ONE_ROUTE))
}

#[test]
fn the_audit_section_fills_its_settings_with_defaults() {
    let yaml = with(
        "audit:\n  file: { path: logs/audit.jsonl }\n  claims: [tenant, org.id]\n  mask: [{ claim: email, with: hash }, { claim: sub }]",
    );
    let config = Config::from_yaml(&yaml, Path::new("/etc/tollgate")).unwrap();
    let audit = config.audit.unwrap();
    assert_eq!(
        audit.sink,
        SinkSettings::File {
            path: "/etc/tollgate/logs/audit.jsonl".into(),
            max_bytes: 100 * 1024 * 1024,
            max_files: 5,
        }
    );
    assert_eq!(audit.allow_sample_ratio, 1.0);
    assert!(audit.record_denies);
    assert_eq!(audit.claims.len(), 2);
    assert_eq!(audit.masks[0].with, Masking::Hash);
    assert_eq!(audit.masks[1].with, Masking::Redact);
    assert_eq!((audit.queue_capacity, audit.batch_size), (4096, 512));
    assert_eq!(audit.decision_id_header, None);
    let off = Config::from_yaml(&minimal("", ONE_ROUTE), Path::new(".")).unwrap();
    assert!(off.audit.is_none());
}

#[test]
fn an_audit_section_is_refused_naming_the_field() {
    for (section, field) in [
        ("audit: { allow_sample_ratio: 0.5 }", "audit"),
        (
            "audit:\n  otlp: { endpoint: http://c:4317 }\n  file: { path: a.jsonl }",
            "audit",
        ),
        (
            "audit:\n  otlp: { endpoint: https://c:4317 }",
            "audit.otlp.endpoint",
        ),
        (
            "audit:\n  otlp: { endpoint: http://c:4317, timeout: 5 }",
            "audit.otlp.timeout",
        ),
        (
            "audit:\n  file: { path: a.jsonl }\n  allow_sample_ratio: 2",
            "audit.allow_sample_ratio",
        ),
        (
            "audit:\n  file: { path: a.jsonl, max_bytes: 10 }",
            "audit.file.max_bytes",
        ),
        (
            "audit:\n  file: { path: a.jsonl }\n  queue_capacity: 0",
            "audit.queue_capacity",
        ),
        (
            "audit:\n  file: { path: a.jsonl }\n  mask: [{ claim: email, with: blur }]",
            "audit.mask[0].with",
        ),
        ("audit:\n  file: { path: a.jsonl }\n  colour: red", "audit"),
        (
            "audit:\n  file: { path: a.jsonl }\n  decision_id_header: 'bad header'",
            "audit.decision_id_header",
        ),
        ("metrics: { clients: [other] }", "metrics.clients"),
        ("metrics: { clients: [''] }", "metrics.clients"),
        ("metrics: { client_claim: '' }", "metrics.client_claim"),
    ] {
        let error = refuse(&with(section));
        assert!(error.contains(field), "{section}: {error}");
    }
}

#[test]
fn client_labels_are_bounded_to_the_list_other_and_none() {
    let yaml = with("metrics: { clients: [billing, alpha, billing] }");
    let config = Config::from_yaml(&yaml, Path::new(".")).unwrap();
    let labels = &config.authz.client_labels;
    assert_eq!(labels.allowed, ["alpha", "billing"]);
    let claims = serde_json::Map::new();
    assert_eq!(labels.label(Some("billing"), Some(&claims)), "billing");
    assert_eq!(labels.label(Some("anything-else"), Some(&claims)), "other");
    assert_eq!(labels.label(None, Some(&claims)), "other");
    assert_eq!(labels.label(None, None), "none");

    let yaml = with("metrics: { clients: [t1], client_claim: tenant.id }");
    let config = Config::from_yaml(&yaml, Path::new(".")).unwrap();
    let labels = &config.authz.client_labels;
    let serde_json::Value::Object(claims) = serde_json::json!({"tenant": {"id": "t1"}}) else {
        unreachable!()
    };
    assert_eq!(labels.label(Some("billing"), Some(&claims)), "t1");
    let serde_json::Value::Object(other) = serde_json::json!({"tenant": {"id": "t2"}}) else {
        unreachable!()
    };
    assert_eq!(labels.label(Some("t1"), Some(&other)), "other");
    assert!(
        Config::from_yaml(&minimal("", ONE_ROUTE), Path::new("."))
            .unwrap()
            .authz
            .client_labels
            .is_off()
    );
}
