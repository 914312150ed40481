//! The `log:` and `tracing:` sections: how log lines are written, and where
//! OpenTelemetry spans are exported, if anywhere.

use reqwest::Url;

use super::error::{ConfigError, invalid};
use super::raw::{RawLog, RawLogFormat, RawTracing};
use crate::telemetry::{
    LogFormat, LogSettings, OTLP_ENDPOINT_ENV, TelemetrySettings, TracingSettings,
};

/// Both sections, with `OTEL_EXPORTER_OTLP_ENDPOINT` as the collector when
/// the file names none.
pub(super) fn settings(log: RawLog, tracing: RawTracing) -> Result<TelemetrySettings, ConfigError> {
    let log = LogSettings {
        format: match log.format {
            RawLogFormat::Human => LogFormat::Human,
            RawLogFormat::Json => LogFormat::Json,
        },
        level: log.level.unwrap_or_else(|| "info".to_owned()),
    };
    check_log_level(&log.level).map_err(|m| invalid("log.level", m))?;
    let tracing = tracing_settings(tracing, std::env::var(OTLP_ENDPOINT_ENV).ok())?;
    Ok(TelemetrySettings { log, tracing })
}

/// `info`, or a filter such as `tollgate=debug,info`. A bare word that is not
/// a level would be read as a target name and silence every log line, so a
/// typo like `infoo` is refused rather than obeyed.
fn check_log_level(level: &str) -> Result<(), String> {
    const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];
    for directive in level.split(',').map(str::trim) {
        if !directive.contains('=') && !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(directive)) {
            return Err(format!(
                "`{directive}` is not a level ({}) nor a `target=level` directive",
                LEVELS.join(", ")
            ));
        }
    }
    tracing_subscriber::EnvFilter::try_new(level)
        .map(drop)
        .map_err(|e| format!("`{level}`: {e}"))
}

/// The span export from the file, with `env` as the endpoint when the file
/// names none; `None` when neither does.
fn tracing_settings(
    raw: RawTracing,
    env: Option<String>,
) -> Result<Option<TracingSettings>, ConfigError> {
    let (field, endpoint) = match (raw.otlp_endpoint, env.filter(|e| !e.trim().is_empty())) {
        (Some(endpoint), _) => ("tracing.otlp_endpoint", endpoint),
        (None, Some(endpoint)) => (OTLP_ENDPOINT_ENV, endpoint),
        (None, None) => return Ok(None),
    };
    let otlp_endpoint = Url::parse(endpoint.trim())
        .map_err(|e| invalid(field, format!("not a URL ({e}); use http://HOST:4317")))?;
    match otlp_endpoint.scheme() {
        "http" if otlp_endpoint.host_str().is_some() => {}
        "https" => {
            return Err(invalid(
                field,
                "https is not supported; export to a collector on the node or in the pod over http://HOST:4317",
            ));
        }
        _ => return Err(invalid(field, "use http://HOST:4317 (OTLP over gRPC)")),
    }
    let service_name = raw.service_name.unwrap_or_else(|| "tollgate".to_owned());
    if service_name.trim().is_empty() {
        return Err(invalid("tracing.service_name", "must not be empty"));
    }
    let sample_ratio = raw.sample_ratio.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&sample_ratio) {
        return Err(invalid(
            "tracing.sample_ratio",
            "must be between 0.0 and 1.0",
        ));
    }
    Ok(Some(TracingSettings {
        otlp_endpoint,
        service_name,
        sample_ratio,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(endpoint: Option<&str>) -> RawTracing {
        RawTracing {
            otlp_endpoint: endpoint.map(str::to_owned),
            ..RawTracing::default()
        }
    }

    #[test]
    fn off_without_an_endpoint() {
        assert_eq!(tracing_settings(RawTracing::default(), None).unwrap(), None);
        assert_eq!(
            tracing_settings(RawTracing::default(), Some(" ".into())).unwrap(),
            None
        );
    }

    #[test]
    fn the_file_wins_over_the_environment() {
        let settings = tracing_settings(
            raw(Some("http://collector:4317")),
            Some("http://other:4317".into()),
        )
        .unwrap()
        .unwrap();
        assert_eq!(settings.otlp_endpoint.as_str(), "http://collector:4317/");
        assert_eq!(settings.service_name, "tollgate");
        assert!((settings.sample_ratio - 1.0).abs() < f64::EPSILON);
    }

    #[test]
    fn the_environment_names_the_endpoint_when_the_file_does_not() {
        let settings = tracing_settings(RawTracing::default(), Some("http://env:4317".into()))
            .unwrap()
            .unwrap();
        assert_eq!(settings.otlp_endpoint.host_str(), Some("env"));
        let error = tracing_settings(RawTracing::default(), Some("collector:4317".into()))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with(OTLP_ENDPOINT_ENV), "{error}");
    }

    #[test]
    fn refuses_bad_values_by_field() {
        let error = |raw: RawTracing| tracing_settings(raw, None).unwrap_err().to_string();
        assert!(error(raw(Some("https://c:4317"))).starts_with("tracing.otlp_endpoint: https"));
        assert!(error(raw(Some("nonsense"))).starts_with("tracing.otlp_endpoint:"));
        let ratio = RawTracing {
            sample_ratio: Some(1.5),
            ..raw(Some("http://c:4317"))
        };
        assert!(error(ratio).starts_with("tracing.sample_ratio:"));
        let name = RawTracing {
            service_name: Some(" ".into()),
            ..raw(Some("http://c:4317"))
        };
        assert!(error(name).starts_with("tracing.service_name:"));
    }
}
