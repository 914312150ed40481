//! The `tracing:` section: where OpenTelemetry spans are exported, if anywhere.

use reqwest::Url;

use super::raw::RawTracing;
use super::{ConfigError, invalid};

/// The standard variable naming the OTLP collector when the file does not.
pub const OTLP_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Span export over OTLP/gRPC; tracing is off when there is no endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingSettings {
    /// The collector's OTLP/gRPC endpoint, such as `http://collector:4317`.
    pub otlp_endpoint: Url,
    /// `service.name` of the exported spans.
    pub service_name: String,
    /// Share of new traces sampled; an incoming `traceparent`'s sampled flag
    /// wins over it.
    pub sample_ratio: f64,
}

/// The settings from the file, with `OTEL_EXPORTER_OTLP_ENDPOINT` (`env`) as
/// the endpoint when the file names none; `None` when neither does.
pub(super) fn settings(
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
        assert_eq!(settings(RawTracing::default(), None).unwrap(), None);
        assert_eq!(
            settings(RawTracing::default(), Some(" ".into())).unwrap(),
            None
        );
    }

    #[test]
    fn the_file_wins_over_the_environment() {
        let settings = settings(
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
        let settings = settings(RawTracing::default(), Some("http://env:4317".into()))
            .unwrap()
            .unwrap();
        assert_eq!(settings.otlp_endpoint.host_str(), Some("env"));
        let error = super::settings(RawTracing::default(), Some("collector:4317".into()))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with(OTLP_ENDPOINT_ENV), "{error}");
    }

    #[test]
    fn refuses_bad_values_by_field() {
        let error = |raw: RawTracing| settings(raw, None).unwrap_err().to_string();
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
