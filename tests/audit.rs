//! The decision audit stream: the real tollgate binary exports one record
//! per decision over OTLP logs to a receiver of the test's own (the
//! generated gRPC service of `opentelemetry-proto`, as the tracing tests
//! use), or writes JSON lines to a file; the decision id comes back to
//! Envoy's side of the Check; per-client metrics stay under their bounded
//! labels; and with the collector stopped, slow or flapping under load,
//! every check is answered and every record is exported or counted dropped.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use envoy_types::pb::envoy::service::auth::v3::CheckResponse;
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::google::protobuf::value::Kind;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use tokio::sync::oneshot;
use tonic::transport::Channel;

use support::check::{GRPC_OK, GRPC_UNAUTHENTICATED};
use support::idp::{Idp, jwks_of};
use support::tokens::Token;
use support::{ScratchDir, TollgateProcess};

const EC1_JWK: &str = include_str!("fixtures/keys/ec-p256-1.jwk.json");
/// Bound on waiting for records to arrive or be counted.
const WAIT_LIMIT: Duration = Duration::from_secs(30);

/// An OTLP/gRPC logs receiver on 127.0.0.1 that keeps every record it
/// gets; it can be stopped and started again on the same port, and made
/// slow.
#[derive(Clone, Default)]
struct Receiver {
    records: Arc<Mutex<Vec<LogRecord>>>,
    /// How long each export is held before it is answered.
    delay_ms: Arc<AtomicU64>,
}

#[tonic::async_trait]
impl LogsService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let delay = self.delay_ms.load(Ordering::Relaxed);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let records = request
            .into_inner()
            .resource_logs
            .into_iter()
            .flat_map(|resource| resource.scope_logs)
            .flat_map(|scope| scope.log_records);
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(records);
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

/// A receiver serving on `addr` until its stop is sent.
struct Serving {
    stop: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Serves on `addr` (port 0: any), returning where it listens.
    async fn serve(&self, addr: SocketAddr) -> (SocketAddr, Serving) {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let service = LogsServiceServer::new(self.clone());
        let done = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener),
                    async {
                        let _ = stopped.await;
                    },
                )
                .await;
        });
        (addr, Serving { stop, done })
    }

    fn records(&self) -> Vec<LogRecord> {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn count(&self) -> usize {
        self.records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// At least `count` records, waiting for them (bounded).
    async fn wait_for(&self, count: usize) -> Vec<LogRecord> {
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        loop {
            let records = self.records();
            if records.len() >= count {
                return records;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {count} audit records within {WAIT_LIMIT:?}: {records:#?}",
                records.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Serving {
    /// Stops gracefully: exports in progress are answered first.
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.done.await;
    }
}

/// A string (or the text of an int or bool) attribute of `record`.
fn attribute(record: &LogRecord, key: &str) -> Option<String> {
    let value = record
        .attributes
        .iter()
        .find(|a| a.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?;
    Some(match value {
        Value::StringValue(text) => text.clone(),
        Value::IntValue(n) => n.to_string(),
        Value::BoolValue(b) => b.to_string(),
        other => format!("{other:?}"),
    })
}

/// Provider `idp` (keys from the test IdP) and route `api` (`/api`, scope
/// `read`), with `sections` (each ending in a newline) added.
fn config(idp: &Idp, sections: &str) -> String {
    format!(
        "server:\n  grpc_listen: 127.0.0.1:0\n  admin_listen: 127.0.0.1:0\n{sections}providers:\n  - name: idp\n    issuer: {issuer}\n    jwks_uri: {jwks}\nroutes:\n  - {{ name: api, match: {{ path: {{ prefix: /api }} }}, require: {{ scopes: [read] }} }}\n",
        issuer = idp.base_url(),
        jwks = idp.jwks_uri(),
    )
}

async fn start(yaml: &str) -> (TollgateProcess, ScratchDir) {
    let dir = ScratchDir::new("audit");
    let path = dir.join("tollgate.yaml");
    std::fs::write(&path, yaml).unwrap();
    let tollgate = TollgateProcess::serve_file(&path, &[]).await;
    tollgate.wait_until_serving().await;
    (tollgate, dir)
}

fn token(idp: &Idp, client: &str) -> String {
    Token::es256()
        .issuer(idp.base_url())
        .subject("svc-1")
        .client_id(client)
        .scopes(["read"])
        .claim("tenant", "t1")
        .claim("email", "ops@example.com")
        .lifetime(Duration::from_secs(600))
        .sign()
}

async fn check(client: &mut AuthorizationClient<Channel>, token: Option<&str>) -> CheckResponse {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|b| ("authorization", b.as_str()))
        .collect();
    let request = support::check::get("/api/orders?access_token=nope", &headers);
    client.check(request).await.unwrap().into_inner()
}

/// The `decision_id` of the answer's dynamic metadata.
fn metadata_decision_id(response: &CheckResponse) -> Option<String> {
    let field = response
        .dynamic_metadata
        .as_ref()?
        .fields
        .get("decision_id")?;
    match &field.kind {
        Some(Kind::StringValue(id)) => Some(id.clone()),
        _ => None,
    }
}

/// Header `name` of the answer (allow: response headers; deny: its headers).
fn answer_header(response: &CheckResponse, name: &str) -> Option<String> {
    let headers = match response.http_response.as_ref()? {
        HttpResponse::OkResponse(ok) => &ok.response_headers_to_add,
        HttpResponse::DeniedResponse(denied) => &denied.headers,
        HttpResponse::ErrorResponse(_) => return None,
    };
    headers
        .iter()
        .filter_map(|h| h.header.as_ref())
        .find(|h| h.key == name)
        .map(|h| h.value.clone())
}

/// Every sample of `/metrics` as `name{labels}` -> value.
async fn metrics(tollgate: &TollgateProcess) -> HashMap<String, f64> {
    let url = format!("http://{}/metrics", tollgate.admin_addr().await);
    support::get(&url, &[])
        .await
        .body
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn metric(samples: &HashMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn every_decision_is_exported_with_its_id_and_never_the_token() {
    let receiver = Receiver::default();
    let (collector, _serving) = receiver.serve(SocketAddr::from(([127, 0, 0, 1], 0))).await;
    let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
    let sections = format!(
        "audit:\n  otlp: {{ endpoint: http://{collector} }}\n  claims: [tenant, email]\n  mask: [{{ claim: email, with: hash }}]\n  decision_id_header: x-tollgate-decision-id\n  batch_size: 1\nmetrics:\n  clients: [billing]\n"
    );
    let (tollgate, _dir) = start(&config(&idp, &sections)).await;
    tollgate.wait_for_log("audit: recording decisions").await;
    let mut client = AuthorizationClient::connect(tollgate.grpc_url())
        .await
        .unwrap();

    let billing = token(&idp, "billing");
    let first = check(&mut client, Some(&billing)).await;
    assert_eq!(first.status.as_ref().map(|s| s.code), Some(GRPC_OK));
    let again = check(&mut client, Some(&billing)).await;
    let stranger = check(&mut client, Some(&token(&idp, "stranger"))).await;
    let denied = check(&mut client, None).await;
    assert_eq!(
        denied.status.as_ref().map(|s| s.code),
        Some(GRPC_UNAUTHENTICATED)
    );

    let records = receiver.wait_for(4).await;
    let by_id = |response: &CheckResponse| {
        let id = metadata_decision_id(response).expect("a decision id in dynamic metadata");
        assert_eq!(
            answer_header(response, "x-tollgate-decision-id").as_deref(),
            Some(id.as_str())
        );
        records
            .iter()
            .find(|r| attribute(r, "decision_id").as_deref() == Some(&id))
            .unwrap_or_else(|| panic!("no record with decision id {id}: {records:#?}"))
            .clone()
    };
    let first = by_id(&first);
    assert_eq!(first.event_name, "tollgate.decision");
    assert_eq!(first.severity_text, "INFO");
    assert_eq!(attribute(&first, "decision").as_deref(), Some("allow"));
    assert_eq!(attribute(&first, "route").as_deref(), Some("api"));
    assert_eq!(attribute(&first, "path").as_deref(), Some("/api/orders"));
    assert_eq!(attribute(&first, "provider").as_deref(), Some("idp"));
    assert_eq!(attribute(&first, "subject").as_deref(), Some("svc-1"));
    assert_eq!(attribute(&first, "client_id").as_deref(), Some("billing"));
    assert_eq!(attribute(&first, "key_id").as_deref(), Some("ec-1"));
    assert_eq!(attribute(&first, "cache_hit").as_deref(), Some("false"));
    assert!(attribute(&first, "latency_us").is_some());
    let again = by_id(&again);
    assert_eq!(attribute(&again, "cache_hit").as_deref(), Some("true"));
    assert_eq!(attribute(&again, "key_id").as_deref(), Some("ec-1"));
    let stranger = by_id(&stranger);
    assert_eq!(
        attribute(&stranger, "client_id").as_deref(),
        Some("stranger")
    );
    let denied = by_id(&denied);
    assert_eq!(denied.severity_text, "WARN");
    assert_eq!(attribute(&denied, "decision").as_deref(), Some("deny"));
    assert_eq!(
        attribute(&denied, "reason").as_deref(),
        Some("missing_token")
    );
    assert_eq!(attribute(&denied, "status").as_deref(), Some("401"));

    // Claims: the configured ones only, `email` masked.
    let claims = format!("{:?}", first.attributes);
    assert!(claims.contains("t1"), "{claims}");
    assert!(claims.contains("sha256:"), "{claims}");
    assert!(!claims.contains("ops@example.com"), "{claims}");
    let everything = format!("{records:?}");
    for secret in [billing.as_str(), "access_token", "nope", "Bearer"] {
        assert!(!everything.contains(secret), "a record holds {secret:?}");
    }
    // The log line names the decision id too.
    tollgate
        .wait_for_log(&attribute(&denied, "decision_id").unwrap())
        .await;

    let samples = metrics(&tollgate).await;
    let client = |name: &str, decision: &str| {
        metric(
            &samples,
            &format!(
                "tollgate_client_checks_total{{client=\"{name}\",decision=\"{decision}\",route=\"api\"}}"
            ),
        )
    };
    assert_eq!(client("billing", "allow"), 2.0);
    assert_eq!(client("other", "allow"), 1.0);
    assert_eq!(client("none", "deny"), 1.0);
    assert!(
        samples.keys().all(|k| !k.contains("stranger")),
        "{samples:?}"
    );
    assert_eq!(
        metric(&samples, "tollgate_audit_records_exported_total"),
        4.0
    );
}

#[tokio::test]
async fn json_lines_record_denies_always_and_allows_as_sampled() {
    let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
    let dir = ScratchDir::new("audit-file");
    let file = dir.join("audit.jsonl");
    let sections = format!(
        "audit:\n  file: {{ path: {} }}\n  allow_sample_ratio: 0.0\n",
        file.display()
    );
    let (tollgate, _config) = start(&config(&idp, &sections)).await;
    let mut client = AuthorizationClient::connect(tollgate.grpc_url())
        .await
        .unwrap();
    let allowed = check(&mut client, Some(&token(&idp, "billing"))).await;
    assert_eq!(allowed.status.as_ref().map(|s| s.code), Some(GRPC_OK));
    // Not recorded, so no decision id to match.
    assert_eq!(metadata_decision_id(&allowed), None);
    let denied = check(&mut client, None).await;
    let id = metadata_decision_id(&denied).expect("a recorded deny has a decision id");
    let text = support::wait_for_file_containing(&file, &id).await;
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0]["decision"], "deny");
    assert_eq!(lines[0]["reason"], "missing_token");
    assert_eq!(lines[0]["status"], 401);
    assert_eq!(lines[0]["route"], "api");
    assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
}

/// `count` checks, `tasks` at a time, each answered allow; returns when all are.
async fn load(tollgate: &TollgateProcess, token: &str, count: usize, tasks: usize) {
    let channel = Channel::from_shared(tollgate.grpc_url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut running = Vec::new();
    for _ in 0..tasks {
        let mut client = AuthorizationClient::new(channel.clone());
        let token = token.to_owned();
        running.push(tokio::spawn(async move {
            for _ in 0..count / tasks {
                let answer = check(&mut client, Some(&token)).await;
                assert_eq!(answer.status.map(|s| s.code), Some(GRPC_OK));
            }
        }));
    }
    for task in running {
        task.await.unwrap();
    }
}

/// Exported and dropped (by reason) records, once every one of `submitted`
/// is one or the other (waiting for the queue to drain, bounded).
async fn accounted(tollgate: &TollgateProcess, submitted: f64) -> (f64, HashMap<String, f64>) {
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    loop {
        let samples = metrics(tollgate).await;
        let exported = metric(&samples, "tollgate_audit_records_exported_total");
        let dropped: HashMap<String, f64> = samples
            .iter()
            .filter_map(|(series, value)| {
                let reason = series
                    .strip_prefix("tollgate_audit_records_dropped_total{reason=\"")?
                    .strip_suffix("\"}")?;
                Some((reason.to_owned(), *value))
            })
            .collect();
        let total = exported + dropped.values().sum::<f64>();
        assert!(total <= submitted, "{total} of {submitted}: {samples:?}");
        if total == submitted {
            let queued = metric(&samples, "tollgate_audit_queue_records");
            assert!(queued <= QUEUE as f64, "{queued}");
            return (exported, dropped);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{total} of {submitted} records accounted for within {WAIT_LIMIT:?}: {samples:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The queue of the reliability test.
const QUEUE: usize = 64;

#[tokio::test]
async fn a_stopped_slow_or_flapping_collector_drops_and_counts_but_never_holds_a_check() {
    let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
    let receiver = Receiver::default();
    // Reserve a port for the collector, and leave it closed: stopped.
    let (collector, serving) = receiver.serve(SocketAddr::from(([127, 0, 0, 1], 0))).await;
    serving.stop().await;
    let sections = format!(
        "audit:\n  otlp: {{ endpoint: http://{collector}, timeout: 2s }}\n  queue_capacity: {QUEUE}\n  batch_size: 16\n"
    );
    let (tollgate, _dir) = start(&config(&idp, &sections)).await;
    let token = token(&idp, "billing");
    let rss_before = tollgate.rss_bytes();

    // Stopped: every record is dropped, every check answered.
    load(&tollgate, &token, 800, 8).await;
    let (exported, dropped) = accounted(&tollgate, 800.0).await;
    assert_eq!(exported, 0.0, "{dropped:?}");
    assert_eq!(receiver.count(), 0);

    // Slow: each export held 500 ms; the queue fills and drops the rest.
    receiver.delay_ms.store(500, Ordering::Relaxed);
    let (_, serving) = receiver.serve(collector).await;
    load(&tollgate, &token, 1600, 8).await;
    let (exported, dropped) = accounted(&tollgate, 2400.0).await;
    assert!(
        dropped.get("queue_full").copied().unwrap_or(0.0) > 0.0,
        "{dropped:?}"
    );
    assert_eq!(receiver.count() as f64, exported);

    // Flapping: down and up every 100 ms while the load runs.
    receiver.delay_ms.store(0, Ordering::Relaxed);
    let flapping = Arc::new(AtomicBool::new(true));
    let flapper = {
        let (receiver, flapping) = (receiver.clone(), Arc::clone(&flapping));
        tokio::spawn(async move {
            let mut serving = Some(serving);
            while flapping.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(100)).await;
                match serving.take() {
                    Some(up) => up.stop().await,
                    None => serving = Some(receiver.serve(collector).await.1),
                }
            }
            match serving {
                Some(up) => up,
                None => receiver.serve(collector).await.1,
            }
        })
    };
    load(&tollgate, &token, 2400, 8).await;
    flapping.store(false, Ordering::Relaxed);
    let serving = flapper.await.unwrap();
    let (exported, dropped) = accounted(&tollgate, 4800.0).await;
    // What the collector acknowledged is what arrived, nothing more or less.
    assert_eq!(receiver.count() as f64, exported, "{dropped:?}");

    // Up again: records flow once the exporter tries again (it pauses a
    // second after a failure).
    let mut submitted = 4800.0;
    let exported_after = loop {
        load(&tollgate, &token, 20, 4).await;
        submitted += 20.0;
        let (now, _) = accounted(&tollgate, submitted).await;
        if now > exported {
            break now;
        }
        assert!(
            submitted < 6000.0,
            "no record exported after the collector came back"
        );
    };
    assert_eq!(receiver.count() as f64, exported_after);
    // The queue bounds memory: 4800 records through a queue of 64 leave no
    // growth beyond allocator noise.
    let grown = tollgate.rss_bytes().saturating_sub(rss_before);
    assert!(grown < 32 << 20, "resident memory grew {grown} bytes");
    serving.stop().await;
}

#[tokio::test]
async fn through_envoy_the_client_and_the_access_log_get_the_records_decision_id() {
    let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
    let dir = ScratchDir::new("audit-envoy");
    let file = dir.join("audit.jsonl");
    let sections = format!(
        "audit:\n  file: {{ path: {} }}\n  decision_id_header: x-tollgate-decision-id\n",
        file.display()
    );
    let (tollgate, _config) = start(&config(&idp, &sections)).await;
    let echo = support::EchoUpstream::start().await;
    let access_log = dir.join("access.log");
    let options = support::EnvoyOptions::new(echo.addr, tollgate.addr()).access_log(
        &access_log,
        "%RESPONSE_CODE% %DYNAMIC_METADATA(envoy.filters.http.ext_authz:decision_id)%\n",
    );
    let envoy = support::Envoy::start(options).await;

    let bearer = format!("Bearer {}", token(&idp, "billing"));
    for (headers, status) in [
        (vec![("authorization", bearer.as_str())], 200),
        (vec![], 401),
    ] {
        let response = support::get(&envoy.url("/api/orders"), &headers).await;
        assert_eq!(response.status, status, "{}", envoy.logs());
        let id = response
            .headers
            .get("x-tollgate-decision-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no decision id header on the {status}"))
            .to_owned();
        let logged = support::wait_for_file_containing(&access_log, &id).await;
        assert!(logged.contains(&format!("{status} {id}")), "{logged}");
        let recorded = support::wait_for_file_containing(&file, &id).await;
        let record: serde_json::Value = recorded
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .find(|record| record["decision_id"] == id.as_str())
            .unwrap();
        let decision = if status == 200 { "allow" } else { "deny" };
        assert_eq!(record["decision"], decision, "{recorded}");
    }
}
