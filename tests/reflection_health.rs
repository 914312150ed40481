//! The services beside Check: gRPC server reflection (v1 and v1alpha), gRPC
//! health (NOT_SERVING until every provider has keys), and graceful
//! shutdown. The server runs in-process on 127.0.0.1:0; remote keys come
//! from a test IdP on 127.0.0.1:0.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use prost::Message as _;
use prost_types::FileDescriptorProto;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tollgate::config::Config;
use tollgate::server::{CHECK_SERVICE_NAME, ServeError};
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

mod support;

use support::idp::{Idp, IdpMode, JWKS_PATH, jwks_of};

const EC1_JWK: &str = include_str!("fixtures/keys/ec-p256-1.jwk.json");
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";
const EXT_AUTHZ_FILE: &str = "envoy/service/auth/v3/external_auth.proto";
/// Bound on every wait for a state change.
const LIMIT: Duration = Duration::from_secs(10);

/// tollgate serving on 127.0.0.1:0 in this runtime.
struct Tollgate {
    addr: SocketAddr,
    channel: Channel,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<Result<(), ServeError>>>,
}

impl Tollgate {
    async fn start(yaml: &str) -> Tollgate {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys");
        let config = Config::from_yaml(yaml, &base)
            .unwrap_or_else(|e| panic!("test config refused: {e}\n{yaml}"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding tollgate on 127.0.0.1:0");
        let addr = listener.local_addr().expect("tollgate address");
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tokio::spawn(tollgate::server::serve(config, listener, async {
            // A dropped sender is a shutdown too.
            let _ = stop.await;
        }));
        let channel = Channel::from_shared(format!("http://{addr}"))
            .expect("tollgate URI")
            .connect()
            .await
            .expect("connecting to tollgate");
        Tollgate {
            addr,
            channel,
            shutdown: Some(shutdown),
            server: Some(server),
        }
    }

    fn health(&self) -> HealthClient<Channel> {
        HealthClient::new(self.channel.clone())
    }

    async fn status(&self, service: &str) -> ServingStatus {
        let reply: HealthCheckResponse = self
            .health()
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap_or_else(|e| panic!("health check of {service:?}: {e:?}"))
            .into_inner();
        ServingStatus::try_from(reply.status).expect("a known serving status")
    }

    /// A health `Watch` stream for `service`.
    async fn watch(&self, service: &str) -> tonic::Streaming<HealthCheckResponse> {
        self.health()
            .watch(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap_or_else(|e| panic!("health watch of {service:?}: {e:?}"))
            .into_inner()
    }

    /// Completes the shutdown future `serve` was given.
    fn trigger_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            shutdown.send(()).expect("serve is still running");
        }
    }

    /// Triggers shutdown and returns what `serve` returned (bounded wait).
    async fn shut_down(mut self) -> Result<(), ServeError> {
        self.trigger_shutdown();
        let server = self.server.take().expect("server task");
        tokio::time::timeout(LIMIT, server)
            .await
            .expect("serve did not return after shutdown")
            .expect("serve panicked")
    }
}

impl Drop for Tollgate {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// Reads `stream` until it reports `wanted`, returning every status seen.
async fn watch_until(
    stream: &mut tonic::Streaming<HealthCheckResponse>,
    wanted: ServingStatus,
) -> Vec<ServingStatus> {
    let mut seen = Vec::new();
    tokio::time::timeout(LIMIT, async {
        loop {
            let reply = stream
                .message()
                .await
                .expect("health watch stream")
                .expect("health watch ended early");
            let status = ServingStatus::try_from(reply.status).expect("a known serving status");
            seen.push(status);
            if status == wanted {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {wanted:?} within {LIMIT:?}; saw {seen:?}"));
    seen
}

fn static_config() -> String {
    r#"
server:
  grpc_listen: 127.0.0.1:0
providers:
  - name: static
    issuer: https://static.test
    jwks_file: jwks.json
routes:
  - name: all
    match: { path: { prefix: / } }
"#
    .to_owned()
}

/// A static provider plus one whose keys come from `jwks_uri`.
fn remote_config(jwks_uri: &str, fetch_timeout: &str) -> String {
    format!(
        r#"
server:
  grpc_listen: 127.0.0.1:0
providers:
  - name: static
    issuer: https://static.test
    jwks_file: jwks.json
  - name: remote
    issuer: https://remote.test
    jwks_uri: {jwks_uri}
    jwks_cache:
      retry_interval: 100ms
      fetch_timeout: {fetch_timeout}
routes:
  - name: all
    match: {{ path: {{ prefix: / }} }}
"#
    )
}

// ---------------------------------------------------------------------------
// Reflection, once per protocol version (the message types differ by module).
// ---------------------------------------------------------------------------

macro_rules! reflection_client {
    ($module:ident, $($version:ident)::+) => {
        mod $module {
            use $($version)::+::server_reflection_client::ServerReflectionClient;
            use $($version)::+::server_reflection_request::MessageRequest;
            use $($version)::+::server_reflection_response::MessageResponse;
            use $($version)::+::ServerReflectionRequest;
            use tonic::transport::Channel;

            /// One request on a fresh reflection stream, and its one answer
            /// (an error answer, in-band or as a stream status, as its code).
            async fn ask(channel: &Channel, request: MessageRequest) -> Result<MessageResponse, tonic::Code> {
                let mut client = ServerReflectionClient::new(channel.clone());
                let outbound = tokio_stream::iter([ServerReflectionRequest {
                    host: String::new(),
                    message_request: Some(request),
                }]);
                let mut inbound = client
                    .server_reflection_info(outbound)
                    .await
                    .expect("reflection call")
                    .into_inner();
                let reply = inbound
                    .message()
                    .await
                    .map_err(|status| status.code())?
                    .expect("a reflection answer");
                match reply.message_response.expect("a message_response") {
                    MessageResponse::ErrorResponse(error) => Err(tonic::Code::from_i32(error.error_code)),
                    answer => Ok(answer),
                }
            }

            pub(super) async fn list_services(channel: &Channel) -> Vec<String> {
                match ask(channel, MessageRequest::ListServices(String::new())).await {
                    Ok(MessageResponse::ListServicesResponse(list)) => {
                        list.service.into_iter().map(|s| s.name).collect()
                    }
                    other => panic!("expected a service list, got {other:?}"),
                }
            }

            /// The encoded FileDescriptorProtos, or the error code.
            pub(super) async fn file_by_filename(
                channel: &Channel,
                file: &str,
            ) -> Result<Vec<Vec<u8>>, tonic::Code> {
                match ask(channel, MessageRequest::FileByFilename(file.to_owned())).await? {
                    MessageResponse::FileDescriptorResponse(files) => Ok(files.file_descriptor_proto),
                    other => panic!("expected file descriptors, got {other:?}"),
                }
            }

            /// The encoded FileDescriptorProtos, or the error code.
            pub(super) async fn file_containing_symbol(
                channel: &Channel,
                symbol: &str,
            ) -> Result<Vec<Vec<u8>>, tonic::Code> {
                match ask(channel, MessageRequest::FileContainingSymbol(symbol.to_owned())).await? {
                    MessageResponse::FileDescriptorResponse(files) => Ok(files.file_descriptor_proto),
                    other => panic!("expected file descriptors, got {other:?}"),
                }
            }
        }
    };
}

reflection_client!(reflection_v1, tonic_reflection::pb::v1);
reflection_client!(reflection_v1alpha, tonic_reflection::pb::v1alpha);

fn decode_files(encoded: &[Vec<u8>]) -> Vec<FileDescriptorProto> {
    encoded
        .iter()
        .map(|bytes| FileDescriptorProto::decode(bytes.as_slice()).expect("a FileDescriptorProto"))
        .collect()
}

/// Asserts `files` hold `file` with `service` offering `methods`.
fn assert_describes(
    files: &[FileDescriptorProto],
    file: &str,
    service: &str,
    methods: &[(&str, &str, &str)],
) {
    let names: Vec<&str> = files.iter().map(|f| f.name()).collect();
    let found = files
        .iter()
        .find(|f| f.name() == file)
        .unwrap_or_else(|| panic!("{file} not among {names:?}"));
    let described = found
        .service
        .iter()
        .find(|s| s.name() == service)
        .unwrap_or_else(|| panic!("{file} has no service {service}"));
    for (method, input, output) in methods {
        let m = described
            .method
            .iter()
            .find(|m| m.name() == *method)
            .unwrap_or_else(|| panic!("{service} has no method {method}"));
        assert_eq!(m.input_type(), *input, "{service}.{method} input");
        assert_eq!(m.output_type(), *output, "{service}.{method} output");
    }
}

const CHECK_METHOD: (&str, &str, &str) = (
    "Check",
    ".envoy.service.auth.v3.CheckRequest",
    ".envoy.service.auth.v3.CheckResponse",
);

#[tokio::test]
async fn reflection_v1_lists_and_describes_the_services() {
    let tollgate = Tollgate::start(&static_config()).await;
    let services = reflection_v1::list_services(&tollgate.channel).await;
    for expected in [
        CHECK_SERVICE_NAME,
        HEALTH_SERVICE,
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(
            services.iter().any(|s| s == expected),
            "{expected} not in {services:?}"
        );
    }

    let files = reflection_v1::file_containing_symbol(&tollgate.channel, CHECK_SERVICE_NAME)
        .await
        .expect("the Authorization service is known");
    let files = decode_files(&files);
    assert_describes(&files, EXT_AUTHZ_FILE, "Authorization", &[CHECK_METHOD]);
    // Clients such as grpcurl fetch imports by name: every one must resolve,
    // or CheckRequest cannot be built from reflection alone.
    let ext_authz = files
        .iter()
        .find(|f| f.name() == EXT_AUTHZ_FILE)
        .expect("ext_authz file");
    assert!(
        ext_authz
            .dependency
            .iter()
            .any(|d| d == "envoy/service/auth/v3/attribute_context.proto"),
        "{:?}",
        ext_authz.dependency
    );
    let mut pending: Vec<String> = ext_authz.dependency.clone();
    let mut resolved = std::collections::HashSet::new();
    while let Some(file) = pending.pop() {
        if !resolved.insert(file.clone()) {
            continue;
        }
        let encoded = reflection_v1::file_by_filename(&tollgate.channel, &file)
            .await
            .unwrap_or_else(|code| panic!("import {file} does not resolve ({code:?})"));
        let decoded = decode_files(&encoded);
        let described = decoded
            .iter()
            .find(|f| f.name() == file)
            .expect("the asked-for file");
        pending.extend(described.dependency.iter().cloned());
    }
    assert!(resolved.len() > 3, "transitive imports: {resolved:?}");

    let files = reflection_v1::file_containing_symbol(&tollgate.channel, HEALTH_SERVICE)
        .await
        .expect("the health service is known");
    let health_file = decode_files(&files)
        .into_iter()
        .find(|f| f.service.iter().any(|s| s.name() == "Health"))
        .expect("a file declaring Health");
    let methods: Vec<&str> = health_file.service[0]
        .method
        .iter()
        .map(|m| m.name())
        .collect();
    assert_eq!(methods, ["Check", "Watch"]);

    let unknown = reflection_v1::file_containing_symbol(&tollgate.channel, "no.such.Service").await;
    assert_eq!(unknown, Err(tonic::Code::NotFound));
}

#[tokio::test]
async fn reflection_v1alpha_lists_and_describes_the_services() {
    let tollgate = Tollgate::start(&static_config()).await;
    let services = reflection_v1alpha::list_services(&tollgate.channel).await;
    for expected in [
        CHECK_SERVICE_NAME,
        HEALTH_SERVICE,
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(
            services.iter().any(|s| s == expected),
            "{expected} not in {services:?}"
        );
    }
    let files = reflection_v1alpha::file_containing_symbol(&tollgate.channel, CHECK_SERVICE_NAME)
        .await
        .expect("the Authorization service is known");
    assert_describes(
        &decode_files(&files),
        EXT_AUTHZ_FILE,
        "Authorization",
        &[CHECK_METHOD],
    );
    // A method symbol resolves to the same file.
    let files = reflection_v1alpha::file_containing_symbol(
        &tollgate.channel,
        "envoy.service.auth.v3.Authorization.Check",
    )
    .await
    .expect("the Check method is known");
    assert_describes(
        &decode_files(&files),
        EXT_AUTHZ_FILE,
        "Authorization",
        &[CHECK_METHOD],
    );
    let files = reflection_v1alpha::file_by_filename(&tollgate.channel, EXT_AUTHZ_FILE)
        .await
        .expect("the ext_authz file is known by name");
    assert_describes(
        &decode_files(&files),
        EXT_AUTHZ_FILE,
        "Authorization",
        &[CHECK_METHOD],
    );
    let unknown = reflection_v1alpha::file_by_filename(&tollgate.channel, "no/such.proto").await;
    assert_eq!(unknown, Err(tonic::Code::NotFound));
}

// ---------------------------------------------------------------------------
// Health
// ---------------------------------------------------------------------------

#[tokio::test]
async fn static_keys_are_serving_right_away() {
    let tollgate = Tollgate::start(&static_config()).await;
    for service in ["", CHECK_SERVICE_NAME] {
        let mut watch = tollgate.watch(service).await;
        let seen = tokio::time::timeout(
            Duration::from_secs(2),
            watch_until(&mut watch, ServingStatus::Serving),
        )
        .await
        .unwrap_or_else(|_| panic!("{service:?} not SERVING within 2 s"));
        assert_eq!(seen.last(), Some(&ServingStatus::Serving));
        assert_eq!(
            tollgate.status(service).await,
            ServingStatus::Serving,
            "{service:?}"
        );
    }
}

#[tokio::test]
async fn unknown_health_service_is_not_found() {
    let tollgate = Tollgate::start(&static_config()).await;
    let error = tollgate
        .health()
        .check(HealthCheckRequest {
            service: "no.such.Service".to_owned(),
        })
        .await
        .expect_err("an unknown service has no status");
    assert_eq!(error.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn remote_keys_not_yet_reachable_are_not_serving_until_they_load() {
    for mode in [IdpMode::Fail, IdpMode::Hang] {
        let idp = Idp::start_in(jwks_of(&[EC1_JWK]), mode).await;
        let tollgate = Tollgate::start(&remote_config(&idp.jwks_uri(), "200ms")).await;
        let mut watch_all = tollgate.watch("").await;
        let mut watch_check = tollgate.watch(CHECK_SERVICE_NAME).await;

        // Let at least one fetch fail (and one retry start) before looking,
        // so NOT_SERVING is about the failure, not about not having tried.
        tokio::time::timeout(LIMIT, async {
            while idp.hits(JWKS_PATH) < 2 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{mode:?}: tollgate did not retry the JWKS fetch"));
        for service in ["", CHECK_SERVICE_NAME] {
            assert_eq!(
                tollgate.status(service).await,
                ServingStatus::NotServing,
                "{mode:?} {service:?}"
            );
        }

        idp.set_mode(IdpMode::Serve);
        for watch in [&mut watch_all, &mut watch_check] {
            let seen = watch_until(watch, ServingStatus::Serving).await;
            assert_eq!(
                seen.first(),
                Some(&ServingStatus::NotServing),
                "{mode:?}: {seen:?}"
            );
        }
        for service in ["", CHECK_SERVICE_NAME] {
            assert_eq!(
                tollgate.status(service).await,
                ServingStatus::Serving,
                "{mode:?} {service:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Shutdown
// ---------------------------------------------------------------------------

#[tokio::test]
async fn shutdown_makes_serve_return_ok() {
    let tollgate = Tollgate::start(&static_config()).await;
    assert_eq!(
        tollgate.status(CHECK_SERVICE_NAME).await,
        ServingStatus::Serving
    );
    let addr = tollgate.addr;
    let result = tollgate.shut_down().await;
    assert!(result.is_ok(), "serve returned {result:?}");
    // The listener is gone: a new connection is refused.
    let connect = Channel::from_shared(format!("http://{addr}"))
        .expect("tollgate URI")
        .connect()
        .await;
    assert!(
        connect.is_err(),
        "still accepting connections after shutdown"
    );
}

#[tokio::test]
async fn shutdown_completes_with_a_health_watch_open() {
    let tollgate = Tollgate::start(&static_config()).await;
    // Kubelet-style clients keep a Watch open for the life of the pod; it
    // must not hold shutdown up.
    let mut tollgate = tollgate;
    let mut watch = tollgate.watch(CHECK_SERVICE_NAME).await;
    watch_until(&mut watch, ServingStatus::Serving).await;
    tollgate.trigger_shutdown();
    // Watchers hear that the server is going away...
    watch_until(&mut watch, ServingStatus::NotServing).await;
    // ...and serve still returns, ending the stream.
    let result = tollgate.shut_down().await;
    assert!(result.is_ok(), "serve returned {result:?}");
    let rest = tokio::time::timeout(LIMIT, watch.message())
        .await
        .expect("the watch stream ends");
    assert!(
        matches!(rest, Ok(None) | Err(_)),
        "the watch stream goes on: {rest:?}"
    );
}
