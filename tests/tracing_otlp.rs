//! Tracing: the real tollgate binary exports its check spans over OTLP/gRPC
//! to a receiver of the test's own (built from `opentelemetry-proto`), and
//! the test reads parentage and attributes from what arrives.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use envoy_types::pb::envoy::service::auth::v3::CheckRequest;
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use tonic::transport::Channel;

use support::check::{GRPC_OK, GRPC_UNAUTHENTICATED};
use support::idp::{INTROSPECTION_PATH, Idp, jwks_of};
use support::tokens::Token;
use support::{ScratchDir, TollgateProcess};

const CLIENT_SECRET: &str = "tracing-client-secret";
const EC1_JWK: &str = include_str!("fixtures/keys/ec-p256-1.jwk.json");
const EC2_JWK: &str = include_str!("fixtures/keys/ec-p256-2.jwk.json");
/// Bound on waiting for spans; the batch delay is 100 ms.
const SPAN_LIMIT: Duration = Duration::from_secs(15);
/// Exports often, so spans arrive soon after each check.
const FAST_BATCHES: (&str, &str) = ("OTEL_BSP_SCHEDULE_DELAY", "100");

/// An OTLP/gRPC trace receiver on 127.0.0.1 that keeps every span it gets.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|resource| resource.scope_spans)
            .flat_map(|scope| scope.spans);
        self.spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Receiver {
    async fn start() -> (Receiver, SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let receiver = Receiver::default();
        let service = TraceServiceServer::new(receiver.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        (receiver, addr)
    }

    fn spans(&self) -> Vec<Span> {
        self.spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The first span named `name` in trace `trace_id` (hex), waiting for it
    /// (bounded).
    async fn wait_for(&self, name: &str, trace_id: &str) -> Span {
        let deadline = tokio::time::Instant::now() + SPAN_LIMIT;
        loop {
            if let Some(span) = self
                .spans()
                .into_iter()
                .find(|s| s.name == name && hex(&s.trace_id) == trace_id)
            {
                return span;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no `{name}` span in trace {trace_id} within {SPAN_LIMIT:?}; got {:#?}",
                self.spans()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A string attribute of `span`.
fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref()?.value.as_ref())
        .and_then(|value| match value {
            Value::StringValue(text) => Some(text.as_str()),
            _ => None,
        })
}

/// Every attribute value of every span, as text.
fn attribute_values(spans: &[Span]) -> Vec<String> {
    spans
        .iter()
        .flat_map(|span| &span.attributes)
        .filter_map(|a| a.value.as_ref()?.value.as_ref())
        .map(|value| format!("{value:?}"))
        .collect()
}

/// `key`'s token from `issuer` with scope `read`.
fn token(issuer: &str, key: Token) -> String {
    key.issuer(issuer)
        .subject("tracer")
        .client_id("tracer-client")
        .scopes(["read"])
        .lifetime(Duration::from_secs(600))
        .sign()
}

/// Provider `traced` (keys from the IdP's `jwks_uri`, plus `provider`
/// lines) and route `api` (`/api`, scope `read`), with `server` and
/// `tracing` lines (each ending in a newline) added.
fn config(idp: &Idp, server: &str, provider: &str, tracing: &str) -> String {
    format!(
        "server:\n  grpc_listen: 127.0.0.1:0\n{server}{tracing}providers:\n  - name: traced\n    issuer: {issuer}\n    jwks_uri: {jwks}\n{provider}routes:\n  - {{ name: api, match: {{ path: {{ prefix: /api }} }}, require: {{ scopes: [read] }} }}\n",
        issuer = idp.base_url(),
        jwks = idp.jwks_uri(),
    )
}

/// Serves `yaml` (with `secret.txt` beside it) and waits until SERVING.
async fn start_yaml(yaml: &str, env: &[(&str, &str)]) -> (TollgateProcess, ScratchDir) {
    let dir = ScratchDir::new("tracing");
    let path = dir.join("tollgate.yaml");
    std::fs::write(&path, yaml).unwrap();
    std::fs::write(dir.join("secret.txt"), CLIENT_SECRET).unwrap();
    let tollgate = TollgateProcess::serve_file(&path, env).await;
    tollgate.wait_until_serving().await;
    (tollgate, dir)
}

async fn start(idp: &Idp, tracing: &str, env: &[(&str, &str)]) -> (TollgateProcess, ScratchDir) {
    start_yaml(&config(idp, "", "", tracing), env).await
}

/// `tracing:` exporting to `collector`.
fn exporting_to(collector: SocketAddr) -> String {
    format!("tracing:\n  otlp_endpoint: http://{collector}\n")
}

/// One Check of `GET /api/...` with `headers` in the CheckRequest and
/// `metadata` on the gRPC call; returns the gRPC status code of the answer.
async fn check(
    client: &mut AuthorizationClient<Channel>,
    headers: &[(&str, &str)],
    metadata: &[(&'static str, &str)],
) -> Option<i32> {
    let mut request =
        tonic::Request::<CheckRequest>::new(support::check::get("/api/orders?access=1", headers));
    for (name, value) in metadata {
        request.metadata_mut().insert(*name, value.parse().unwrap());
    }
    let response = client.check(request).await.unwrap().into_inner();
    response.status.map(|s| s.code)
}

fn traceparent(trace_id: &str, span_id: &str, flags: &str) -> String {
    format!("00-{trace_id}-{span_id}-{flags}")
}

#[tokio::test]
async fn check_spans_continue_the_callers_trace_and_parent_the_jwks_fetch() {
    let (receiver, collector) = Receiver::start().await;
    let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
    let tracing = format!(
        "tracing:\n  otlp_endpoint: http://{collector}\n  service_name: tollgate-under-test\n"
    );
    let (tollgate, _dir) = start(&idp, &tracing, &[FAST_BATCHES]).await;
    tollgate
        .wait_for_log("tracing: exporting spans over OTLP")
        .await;
    let mut client = AuthorizationClient::connect(tollgate.grpc_url())
        .await
        .unwrap();

    // Not sampled by the caller: no span, although the ratio is 1.0.
    let unsampled = "0af7651916cd43dd8448eb211c80319a";
    let allow_token = token(idp.base_url(), Token::es256());
    let bearer = format!("Bearer {allow_token}");
    let parent = traceparent(unsampled, "b7ad6b7169203331", "00");
    let code = check(
        &mut client,
        &[("authorization", &bearer), ("traceparent", &parent)],
        &[],
    )
    .await;
    assert_eq!(code, Some(GRPC_OK));

    // Allow, the trace context in the CheckRequest's headers.
    let allow_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = traceparent(allow_trace, "00f067aa0ba902b7", "01");
    let code = check(
        &mut client,
        &[
            ("authorization", &bearer),
            ("traceparent", &parent),
            ("tracestate", "vendor=1"),
        ],
        &[],
    )
    .await;
    assert_eq!(code, Some(GRPC_OK));
    let allow = receiver.wait_for("check", allow_trace).await;
    assert_eq!(hex(&allow.parent_span_id), "00f067aa0ba902b7");
    assert_eq!(attribute(&allow, "route"), Some("api"));
    assert_eq!(attribute(&allow, "decision"), Some("allow"));
    assert_eq!(attribute(&allow, "reason"), None);
    assert_eq!(attribute(&allow, "http.request.method"), Some("GET"));
    assert_eq!(attribute(&allow, "server.address"), Some("api.example.com"));
    assert!(
        receiver
            .spans()
            .iter()
            .all(|s| hex(&s.trace_id) != unsampled),
        "a span of an unsampled trace was exported: {:#?}",
        receiver.spans()
    );
    // The decision's log line carries the trace id.
    tollgate.wait_for_log(allow_trace).await;

    // Deny, the trace context in the Check call's gRPC metadata.
    let deny_trace = "5bf92f3577b34da6a3ce929d0e0e4737";
    let parent = traceparent(deny_trace, "10f067aa0ba902b8", "01");
    let code = check(&mut client, &[], &[("traceparent", &parent)]).await;
    assert_eq!(code, Some(GRPC_UNAUTHENTICATED));
    let deny = receiver.wait_for("check", deny_trace).await;
    assert_eq!(hex(&deny.parent_span_id), "10f067aa0ba902b8");
    assert_eq!(attribute(&deny, "route"), Some("api"));
    assert_eq!(attribute(&deny, "decision"), Some("deny"));
    assert_eq!(attribute(&deny, "reason"), Some("missing_token"));

    // An unknown kid: the refetch (in a task of its own) is the check's child.
    idp.set_jwks(jwks_of(&[EC1_JWK, EC2_JWK]));
    let rotated = format!("Bearer {}", token(idp.base_url(), Token::es256_second()));
    let fetch_trace = "6bf92f3577b34da6a3ce929d0e0e4738";
    let parent = traceparent(fetch_trace, "20f067aa0ba902b9", "01");
    let code = check(
        &mut client,
        &[("authorization", &rotated), ("traceparent", &parent)],
        &[],
    )
    .await;
    assert_eq!(code, Some(GRPC_OK));
    let checked = receiver.wait_for("check", fetch_trace).await;
    let fetch = receiver.wait_for("jwks.fetch", fetch_trace).await;
    assert_eq!(fetch.parent_span_id, checked.span_id);
    assert_eq!(attribute(&fetch, "provider"), Some("traced"));
    assert_eq!(attribute(&fetch, "trigger"), Some("unknown kid"));
    assert_eq!(attribute(&fetch, "outcome"), Some("ok"));

    let values = attribute_values(&receiver.spans());
    for secret in [&allow_token, "access=1", "Bearer"] {
        assert!(
            values.iter().all(|value| !value.contains(secret)),
            "an attribute holds {secret:?}: {values:#?}"
        );
    }
    assert!(!tollgate.logs().contains(&allow_token));
}

#[tokio::test]
async fn otel_exporter_otlp_endpoint_turns_tracing_on_when_the_file_does_not() {
    let (receiver, collector) = Receiver::start().await;
    let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
    let endpoint = format!("http://{collector}");
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        FAST_BATCHES,
    ];
    let (tollgate, _dir) = start(&idp, "", &env).await;
    let mut client = AuthorizationClient::connect(tollgate.grpc_url())
        .await
        .unwrap();
    let trace = "7bf92f3577b34da6a3ce929d0e0e4739";
    let parent = traceparent(trace, "30f067aa0ba902ba", "01");
    let code = check(&mut client, &[], &[("traceparent", &parent)]).await;
    assert_eq!(code, Some(GRPC_UNAUTHENTICATED));
    let deny = receiver.wait_for("check", trace).await;
    assert_eq!(attribute(&deny, "decision"), Some("deny"));
}

#[tokio::test]
async fn without_an_endpoint_tracing_is_off() {
    let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
    let (tollgate, _dir) = start(&idp, "", &[]).await;
    tollgate.wait_for_log("tracing: off").await;
    let mut client = AuthorizationClient::connect(tollgate.grpc_url())
        .await
        .unwrap();
    let trace = "8bf92f3577b34da6a3ce929d0e0e473a";
    let parent = traceparent(trace, "40f067aa0ba902bb", "01");
    let code = check(&mut client, &[("traceparent", &parent)], &[]).await;
    assert_eq!(code, Some(GRPC_UNAUTHENTICATED));
    // No span, so the decision's log line has no trace id.
    let line = tollgate.wait_for_log("missing_token").await;
    assert!(!line.contains(trace), "{line}");
    assert!(!line.contains("trace_id"), "{line}");
}

#[tokio::test]
async fn sigterm_flushes_the_spans_still_buffered() {
    let (receiver, collector) = Receiver::start().await;
    let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
    let tracing = exporting_to(collector);
    // A batch delay of an hour: only the flush at shutdown can send the span.
    let (mut tollgate, _dir) =
        start(&idp, &tracing, &[("OTEL_BSP_SCHEDULE_DELAY", "3600000")]).await;
    let mut client = AuthorizationClient::connect(tollgate.grpc_url())
        .await
        .unwrap();
    let trace = "9bf92f3577b34da6a3ce929d0e0e473b";
    let parent = traceparent(trace, "50f067aa0ba902bc", "01");
    let code = check(&mut client, &[], &[("traceparent", &parent)]).await;
    assert_eq!(code, Some(GRPC_UNAUTHENTICATED));
    drop(client);
    tollgate.signal("TERM");
    let status = tollgate.wait_for_exit(Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(0), "{}", tollgate.describe());
    let deny = receiver.wait_for("check", trace).await;
    assert_eq!(attribute(&deny, "reason"), Some("missing_token"));
}

#[tokio::test]
async fn an_introspection_call_is_a_child_of_the_check_span() {
    let (receiver, collector) = Receiver::start().await;
    let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
    let opaque = "opaque-token-for-tracing";
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    idp.set_introspection(
        opaque,
        serde_json::json!({"active": true, "scope": "read", "sub": "svc", "exp": exp}),
    );
    let introspection = format!(
        "    introspection:\n      endpoint: {}{INTROSPECTION_PATH}\n      client_id: tollgate\n      client_secret: {{file: secret.txt}}\n",
        idp.base_url()
    );
    let yaml = config(&idp, "", &introspection, &exporting_to(collector));
    let (tollgate, _dir) = start_yaml(&yaml, &[FAST_BATCHES]).await;
    let mut client = AuthorizationClient::connect(tollgate.grpc_url())
        .await
        .unwrap();
    let trace = "abf92f3577b34da6a3ce929d0e0e473c";
    let parent = traceparent(trace, "60f067aa0ba902bd", "01");
    let bearer = format!("Bearer {opaque}");
    let code = check(
        &mut client,
        &[("authorization", &bearer)],
        &[("traceparent", &parent)],
    )
    .await;
    assert_eq!(code, Some(GRPC_OK), "{}", tollgate.describe());
    let checked = receiver.wait_for("check", trace).await;
    let call = receiver.wait_for("introspection", trace).await;
    assert_eq!(call.parent_span_id, checked.span_id);
    assert_eq!(attribute(&call, "provider"), Some("traced"));
    assert_eq!(attribute(&call, "outcome"), Some("active"));
    assert_eq!(attribute(&checked, "decision"), Some("allow"));
    let values = attribute_values(&receiver.spans());
    for secret in [opaque, CLIENT_SECRET] {
        assert!(
            values.iter().all(|value| !value.contains(secret)),
            "an attribute holds {secret:?}: {values:#?}"
        );
    }
}

#[tokio::test]
async fn http_mode_continues_the_requests_traceparent() {
    let (receiver, collector) = Receiver::start().await;
    let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
    let server = "  http_enabled: true\n  http_listen: 127.0.0.1:0\n";
    let yaml = config(&idp, server, "", &exporting_to(collector));
    let (tollgate, _dir) = start_yaml(&yaml, &[FAST_BATCHES]).await;
    let url = format!("http://{}/api/orders", tollgate.http_addr().await);
    let trace = "bbf92f3577b34da6a3ce929d0e0e473d";
    let parent = traceparent(trace, "70f067aa0ba902be", "01");
    let response = support::get(&url, &[("traceparent", &parent)]).await;
    assert_eq!(response.status, 401);
    let deny = receiver.wait_for("check", trace).await;
    assert_eq!(hex(&deny.parent_span_id), "70f067aa0ba902be");
    assert_eq!(attribute(&deny, "route"), Some("api"));
    assert_eq!(attribute(&deny, "decision"), Some("deny"));
    assert_eq!(attribute(&deny, "reason"), Some("missing_token"));
}

#[tokio::test]
async fn a_reload_that_changes_tracing_says_it_needs_a_restart() {
    let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
    let (tollgate, _dir) = start(&idp, "", &[]).await;
    let collector = SocketAddr::from(([127, 0, 0, 1], 4317));
    let yaml = config(&idp, "", "", &exporting_to(collector));
    std::fs::write(tollgate.config_path(), yaml).unwrap();
    tollgate.signal("HUP");
    tollgate.wait_for_log("config reloaded").await;
    let line = tollgate
        .wait_for_log("tracing applies at the next restart")
        .await;
    assert!(line.contains("WARN"), "{line}");
}
