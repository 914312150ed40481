//! Logging and tracing: `tracing` to stderr, as human-readable or JSON
//! lines; OpenTelemetry spans for checks and the IdP calls they make,
//! exported over OTLP when `tracing:` is configured; and how errors are
//! written into log lines.
//!
//! Spans meant for traces use [`SPAN_TARGET`]. Log output leaves them out
//! (log lines look the same with tracing on or off), and with tracing off
//! no layer enables them, so they cost what a disabled span costs.

use std::io::IsTerminal as _;

use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::filter::{FilterExt as _, filter_fn};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use reqwest::Url;

/// The `tracing` target of spans exported as OpenTelemetry spans.
pub(crate) const SPAN_TARGET: &str = "tollgate::trace";

/// The W3C Trace Context headers, lower-case.
pub(crate) const TRACE_CONTEXT_HEADERS: [&str; 2] = ["traceparent", "tracestate"];

/// The standard variable naming the OTLP collector when the config does not.
pub(crate) const OTLP_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Log output and span export, as configured.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TelemetrySettings {
    /// Log lines.
    pub(crate) log: LogSettings,
    /// OpenTelemetry span export; `None` when tracing is off.
    pub(crate) tracing: Option<TracingSettings>,
}

/// Log settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogSettings {
    /// Human or JSON lines.
    pub(crate) format: LogFormat,
    /// A `tracing` filter directive.
    pub(crate) level: String,
}

/// How log lines are written.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// Span export over OTLP/gRPC; tracing is off when there is no endpoint.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TracingSettings {
    /// The collector's OTLP/gRPC endpoint, such as `http://collector:4317`.
    pub(crate) otlp_endpoint: Url,
    /// `service.name` of the exported spans.
    pub(crate) service_name: String,
    /// Share of new traces sampled; an incoming `traceparent`'s sampled flag
    /// wins over it.
    pub(crate) sample_ratio: f64,
}

/// The span exporter, when tracing is on; [`Telemetry::shutdown`] flushes it.
#[must_use = "call shutdown() before exiting, or buffered spans are lost"]
pub(crate) struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Exports the spans still buffered and stops the exporter. Blocks: call
    /// it outside async code, while the runtime the exporter was built in
    /// still runs.
    pub(crate) fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "could not export the last spans");
        }
    }
}

/// Installs the global subscriber. `RUST_LOG`, when set, wins over the
/// configured level so an operator can turn up detail without editing config.
/// With `tracing` set, starts the OTLP exporter, which must happen inside a
/// Tokio runtime.
pub(crate) fn init(settings: &TelemetrySettings) -> Result<Telemetry, String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.is_empty() => EnvFilter::try_new(env),
        _ => EnvFilter::try_new(&settings.log.level),
    }
    .map_err(|e| format!("log.level: {e}"))?;
    let tracing = settings.tracing.as_ref();
    let provider = tracing.map(exporter).transpose()?;
    subscriber(settings.log.format, filter, provider.as_ref())
        .try_init()
        .map_err(|e| e.to_string())?;
    match tracing {
        Some(settings) => tracing::info!(
            endpoint = %settings.otlp_endpoint,
            service_name = %settings.service_name,
            sample_ratio = settings.sample_ratio,
            "tracing: exporting spans over OTLP"
        ),
        None => tracing::info!("tracing: off (no tracing.otlp_endpoint)"),
    }
    Ok(Telemetry { provider })
}

/// Log lines per `format` and `filter`, without the trace spans; and those
/// spans into `provider`, when there is one.
fn subscriber(
    format: LogFormat,
    filter: EnvFilter,
    provider: Option<&SdkTracerProvider>,
) -> Box<dyn tracing::Subscriber + Send + Sync> {
    // Colour only for a person at a terminal; log collectors get plain text.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let lines = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let lines = match format {
        LogFormat::Human => lines.boxed(),
        LogFormat::Json => lines.json().flatten_event(true).boxed(),
    };
    let logging = tracing_subscriber::registry()
        .with(lines.with_filter(filter.and(filter_fn(|meta| meta.target() != SPAN_TARGET))));
    // Not an `Option` layer: a `None` one counts as a layer that wants
    // every span, and the trace spans would stop being disabled.
    let Some(provider) = provider else {
        return Box::new(logging);
    };
    let spans = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("tollgate"))
        .with_location(false)
        .with_threads(false)
        .with_filter(filter_fn(|meta| {
            meta.is_span() && meta.target() == SPAN_TARGET
        }));
    Box::new(logging.with(spans))
}

/// The OTLP/gRPC exporter behind a batching processor. Parent-based
/// sampling: a caller's sampled flag decides; new traces are sampled at
/// `sample_ratio`. The batch delay and sizes follow `OTEL_BSP_*`.
fn exporter(settings: &TracingSettings) -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(settings.otlp_endpoint.as_str())
        .build()
        .map_err(|e| format!("tracing.otlp_endpoint: {e}"))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(settings.service_name.clone())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            settings.sample_ratio,
        ))))
        .with_resource(resource)
        .build())
}

/// The span of one check. The authorizer fills in the host it normalised,
/// `route`, `decision` and `reason` with [`record_decision`]. Method and
/// host only: never the path's query, a token or a credential header.
pub(crate) fn check_span(method: &str) -> Span {
    tracing::info_span!(
        target: SPAN_TARGET,
        "check",
        otel.kind = "server",
        otel.status_code = Empty,
        "http.request.method" = method,
        "server.address" = Empty,
        route = Empty,
        decision = Empty,
        reason = Empty,
    )
}

/// Records a check's outcome on the current span (the [`check_span`]), and
/// the checked request's normalised host when it has one. `reason` is the
/// deny or fault label, empty on allow.
pub(crate) fn record_decision(decision: &str, reason: &str, route: &str, host: Option<&str>) {
    let span = Span::current();
    if span.is_disabled() {
        return;
    }
    if let Some(host) = host {
        span.record("server.address", host);
    }
    span.record("decision", decision);
    span.record("route", route);
    if !reason.is_empty() {
        span.record("reason", reason);
    }
    if decision == "error" {
        span.record("otel.status_code", "ERROR");
    }
}

/// A client span for a call to `provider`, with an `outcome` to record.
macro_rules! idp_span {
    ($name:literal, $provider:expr $(, $field:ident = $value:expr)*) => {
        tracing::info_span!(
            target: SPAN_TARGET,
            $name,
            otel.kind = "client",
            otel.status_code = Empty,
            provider = $provider,
            outcome = Empty,
            $($field = $value,)*
        )
    };
}

/// The span of one JWKS fetch for `provider`; `trigger` says why it ran
/// (`refresh`, `unknown kid`). [`record_call`] sets its outcome.
pub(crate) fn jwks_fetch_span(provider: &str, trigger: &str) -> Span {
    idp_span!("jwks.fetch", provider, trigger = trigger)
}

/// The span of one RFC 7662 introspection call for `provider`.
pub(crate) fn introspection_span(provider: &str) -> Span {
    idp_span!("introspection", provider)
}

/// The span of looking up `provider`'s introspection endpoint in its
/// metadata.
pub(crate) fn introspection_discovery_span(provider: &str) -> Span {
    idp_span!("introspection.discovery", provider)
}

/// Records an IdP call's `outcome` on its span: `ok`, `error`, or for
/// introspection `active` or `inactive`.
pub(crate) fn record_call(span: &Span, outcome: &str) {
    span.record("outcome", outcome);
    if outcome == "error" {
        span.record("otel.status_code", "ERROR");
    }
}

/// Continues the caller's trace on `span`: the first of `sources` (header
/// lines, names lower-case) with a valid W3C `traceparent` becomes its
/// parent. Nothing happens when tracing is off.
pub(crate) fn continue_trace(span: &Span, sources: &[&[(String, String)]]) {
    if span.is_disabled() {
        return;
    }
    let propagator = TraceContextPropagator::new();
    for headers in sources {
        let context = propagator.extract(&HeaderLines(headers));
        if context.span().span_context().is_remote() {
            // Fails only when the span is not an OpenTelemetry one.
            let _ = span.set_parent(context);
            return;
        }
    }
}

/// The trace id of the current span, for log lines; `None` when tracing is
/// off or the span is not sampled.
pub(crate) fn trace_id() -> Option<String> {
    let span = Span::current();
    if span.is_disabled() {
        return None;
    }
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// Header lines as the propagator reads them. Names are lower-case already.
struct HeaderLines<'a>(&'a [(String, String)]);

impl Extractor for HeaderLines<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, value)| value.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const OTHER: &str = "00-5bf92f3577b34da6a3ce929d0e0e4737-10f067aa0ba902b8-01";

    fn lines(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    /// The trace id a check span gets from `sources`, under a subscriber
    /// that exports nowhere.
    fn continued(sources: &[&[(String, String)]]) -> String {
        let provider = SdkTracerProvider::builder().build();
        let subscriber = subscriber(LogFormat::Human, EnvFilter::new("info"), Some(&provider));
        tracing::subscriber::with_default(subscriber, || {
            let span = check_span("GET");
            continue_trace(&span, sources);
            let _entered = span.enter();
            trace_id().unwrap_or_default()
        })
    }

    #[test]
    fn the_first_valid_traceparent_is_the_parent() {
        let metadata = lines(&[("traceparent", OTHER)]);
        let headers = lines(&[("traceparent", PARENT), ("authorization", "Bearer x")]);
        assert_eq!(
            continued(&[&metadata, &headers]),
            "5bf92f3577b34da6a3ce929d0e0e4737"
        );
        let broken = lines(&[("traceparent", "00-not-a-trace-01")]);
        assert_eq!(
            continued(&[&broken, &headers]),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }

    #[test]
    fn without_a_traceparent_a_new_trace_starts() {
        let headers = lines(&[("x-other", "1")]);
        let id = continued(&[&headers]);
        assert_eq!(id.len(), 32, "{id}");
        assert_ne!(id, "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn with_tracing_off_spans_are_disabled_and_carry_no_trace_id() {
        // `debug`: log lines on, at the level spans are made at, too.
        let subscriber = subscriber(LogFormat::Json, EnvFilter::new("debug"), None);
        tracing::subscriber::with_default(subscriber, || {
            let span = check_span("GET");
            assert!(span.is_disabled());
            let _entered = span.enter();
            assert_eq!(trace_id(), None);
        });
    }
}
