//! The registry and its text exposition: counters, gauges, histograms,
//! label escaping, and the series each recorder writes.

use super::*;

fn line_value(text: &str, series: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(str::to_owned)
}

#[test]
fn renders_counters_by_label_set() {
    let registry = Registry::new();
    let ms = Duration::from_millis(1);
    registry.record_check("allow", "", "orders", ms);
    registry.record_check("allow", "", "orders", ms);
    registry.record_check("deny", "missing_token", UNMATCHED_ROUTE, ms);
    let text = registry.render();
    assert_eq!(
        line_value(
            &text,
            r#"tollgate_checks_total{decision="allow",reason="",route="orders"}"#
        ),
        Some("2".to_owned()),
        "{text}"
    );
    assert_eq!(
        line_value(
            &text,
            r#"tollgate_checks_total{decision="deny",reason="missing_token",route="<unmatched>"}"#
        ),
        Some("1".to_owned()),
        "{text}"
    );
    assert!(text.contains("# TYPE tollgate_checks_total counter\n"));
}

#[test]
fn histogram_buckets_are_cumulative() {
    let registry = Registry::new();
    registry.record_check("allow", "", "a", Duration::from_micros(50));
    registry.record_check("allow", "", "a", Duration::from_millis(3));
    registry.record_check("allow", "", "a", Duration::from_secs(60));
    let text = registry.render();
    let bucket = |le: &str| {
        line_value(
            &text,
            &format!("tollgate_check_duration_seconds_bucket{{le=\"{le}\"}}"),
        )
    };
    assert_eq!(bucket("0.0001").as_deref(), Some("1"), "{text}");
    assert_eq!(bucket("0.005").as_deref(), Some("2"), "{text}");
    assert_eq!(bucket("5").as_deref(), Some("2"), "{text}");
    assert_eq!(bucket("+Inf").as_deref(), Some("3"), "{text}");
    assert_eq!(
        line_value(&text, "tollgate_check_duration_seconds_count").as_deref(),
        Some("3")
    );
    let sum: f64 = line_value(&text, "tollgate_check_duration_seconds_sum")
        .and_then(|v| v.parse().ok())
        .expect("a sum");
    assert!((sum - 60.00305).abs() < 1e-9, "{sum}");
}

#[test]
fn jwks_success_sets_keys_and_timestamp() {
    let registry = Registry::new();
    registry.record_jwks_fetch("kc", Some(3));
    registry.record_jwks_fetch("kc", None);
    let text = registry.render();
    let value = |series: &str| line_value(&text, series);
    assert_eq!(
        value(r#"tollgate_jwks_fetches_total{provider="kc",outcome="success"}"#).as_deref(),
        Some("1")
    );
    assert_eq!(
        value(r#"tollgate_jwks_fetches_total{provider="kc",outcome="error"}"#).as_deref(),
        Some("1")
    );
    assert_eq!(
        value(r#"tollgate_jwks_keys{provider="kc"}"#).as_deref(),
        Some("3")
    );
    let at: f64 = value(r#"tollgate_jwks_last_success_timestamp_seconds{provider="kc"}"#)
        .and_then(|v| v.parse().ok())
        .expect("a timestamp");
    assert!(at > 1.7e9, "{at}");
}

#[test]
fn other_families_render_with_help_and_type() {
    let registry = Registry::new();
    registry.record_introspection("okta", "active", Duration::from_millis(20));
    registry.record_cache_lookup("verified_tokens", true);
    registry.record_cache_lookup("verified_tokens", false);
    registry.set_cache_entries("verified_tokens", 7);
    registry.record_config_reload(false);
    let text = registry.render();
    for expected in [
        r#"tollgate_introspection_requests_total{provider="okta",outcome="active"} 1"#,
        r#"tollgate_introspection_duration_seconds_count{provider="okta"} 1"#,
        r#"tollgate_cache_hits_total{cache="verified_tokens"} 1"#,
        r#"tollgate_cache_misses_total{cache="verified_tokens"} 1"#,
        r#"tollgate_cache_entries{cache="verified_tokens"} 7"#,
        r#"tollgate_config_reloads_total{outcome="error"} 1"#,
        "# TYPE tollgate_introspection_duration_seconds histogram",
        "# TYPE tollgate_cache_entries gauge",
    ] {
        assert!(text.contains(expected), "missing {expected}\n{text}");
    }
    let version = format!(
        "tollgate_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.contains(&version), "{text}");
}

#[test]
fn label_values_are_escaped() {
    let registry = Registry::new();
    registry.record_config_reload(true);
    registry.set_cache_entries("a\"b\\c\nd", 1);
    let text = registry.render();
    assert!(
        text.contains(r#"tollgate_cache_entries{cache="a\"b\\c\nd"} 1"#),
        "{text}"
    );
}
