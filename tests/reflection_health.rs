//! The services beside Check: gRPC server reflection (v1 and v1alpha), gRPC
//! health (NOT_SERVING until every provider has keys), and graceful
//! shutdown. The server runs in-process on 127.0.0.1:0; remote keys come
//! from a test IdP on 127.0.0.1:0.

use std::time::Duration;

use prost::Message as _;
use prost_types::FileDescriptorProto;
use tollgate::CHECK_SERVICE_NAME;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;

mod support;

use support::idp::{Idp, IdpMode, JWKS_PATH, jwks_of};
use support::{INPROCESS_LIMIT, InProcess, repo_path, watch_until};

const EC1_JWK: &str = include_str!("fixtures/keys/ec-p256-1.jwk.json");
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";
const EXT_AUTHZ_FILE: &str = "envoy/service/auth/v3/external_auth.proto";

/// tollgate serving `yaml` in-process, its key files under tests/fixtures/keys.
async fn start(yaml: &str) -> InProcess {
    InProcess::start(yaml, &repo_path("tests/fixtures/keys")).await
}

/// One provider with static keys, plus `more_providers` (YAML list items).
fn config(more_providers: &str) -> String {
    format!(
        r#"
server:
  grpc_listen: 127.0.0.1:0
providers:
  - name: static
    issuer: https://static.test
    jwks_file: jwks.json
{more_providers}routes:
  - name: all
    match: {{ path: {{ prefix: / }} }}
"#
    )
}

fn static_config() -> String {
    config("")
}

/// A static provider plus one whose keys come from `jwks_uri`.
fn remote_config(jwks_uri: &str, fetch_timeout: &str) -> String {
    config(&format!(
        r#"  - name: remote
    issuer: https://remote.test
    jwks_uri: {jwks_uri}
    jwks_cache:
      retry_interval: 1s
      fetch_timeout: {fetch_timeout}
"#
    ))
}

// ---------------------------------------------------------------------------
// Reflection, once per protocol version (the message types differ by module).
// ---------------------------------------------------------------------------

macro_rules! reflection_client {
    ($module:ident, $($version:ident)::+, $service:literal) => {
        mod $module {
            use prost_types::FileDescriptorProto;
            use tollgate::CHECK_SERVICE_NAME;
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

            async fn list_services(channel: &Channel) -> Vec<String> {
                match ask(channel, MessageRequest::ListServices(String::new())).await {
                    Ok(MessageResponse::ListServicesResponse(list)) => {
                        list.service.into_iter().map(|s| s.name).collect()
                    }
                    other => panic!("expected a service list, got {other:?}"),
                }
            }

            /// The encoded FileDescriptorProtos of a file answer, or the error code.
            fn descriptors(
                answer: Result<MessageResponse, tonic::Code>,
            ) -> Result<Vec<Vec<u8>>, tonic::Code> {
                match answer? {
                    MessageResponse::FileDescriptorResponse(files) => Ok(files.file_descriptor_proto),
                    other => panic!("expected file descriptors, got {other:?}"),
                }
            }

            /// The files for the name `file` (encoded), or the error code.
            pub(super) async fn file_by_filename(
                channel: &Channel,
                file: &str,
            ) -> Result<Vec<Vec<u8>>, tonic::Code> {
                descriptors(ask(channel, MessageRequest::FileByFilename(file.to_owned())).await)
            }

            /// The files declaring `symbol` (encoded), or the error code.
            pub(super) async fn file_containing_symbol(
                channel: &Channel,
                symbol: &str,
            ) -> Result<Vec<Vec<u8>>, tonic::Code> {
                descriptors(ask(channel, MessageRequest::FileContainingSymbol(symbol.to_owned())).await)
            }

            /// What both versions answer alike: the service list names Check,
            /// health and this reflection service, and the file declaring
            /// Check describes it. Returns those files, decoded.
            pub(super) async fn assert_lists_and_describes_check(
                channel: &Channel,
            ) -> Vec<FileDescriptorProto> {
                super::assert_lists(&list_services(channel).await, $service);
                let files = file_containing_symbol(channel, CHECK_SERVICE_NAME)
                    .await
                    .expect("the Authorization service is known");
                super::assert_describes_check(&files)
            }
        }
    };
}

reflection_client!(
    reflection_v1,
    tonic_reflection::pb::v1,
    "grpc.reflection.v1.ServerReflection"
);
reflection_client!(
    reflection_v1alpha,
    tonic_reflection::pb::v1alpha,
    "grpc.reflection.v1alpha.ServerReflection"
);

fn decode_files(encoded: &[Vec<u8>]) -> Vec<FileDescriptorProto> {
    encoded
        .iter()
        .map(|bytes| FileDescriptorProto::decode(bytes.as_slice()).expect("a FileDescriptorProto"))
        .collect()
}

/// Asserts a reflection service list names Check, health and `reflection`.
fn assert_lists(services: &[String], reflection: &str) {
    for expected in [CHECK_SERVICE_NAME, HEALTH_SERVICE, reflection] {
        assert!(
            services.iter().any(|s| s == expected),
            "{expected} not in {services:?}"
        );
    }
}

/// Decodes `encoded` and asserts it holds [`EXT_AUTHZ_FILE`] with the
/// `Authorization` service offering `Check`.
fn assert_describes_check(encoded: &[Vec<u8>]) -> Vec<FileDescriptorProto> {
    let (file, service, method) = (EXT_AUTHZ_FILE, "Authorization", "Check");
    let files = decode_files(encoded);
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
    let m = described
        .method
        .iter()
        .find(|m| m.name() == method)
        .unwrap_or_else(|| panic!("{service} has no method {method}"));
    assert_eq!(
        m.input_type(),
        ".envoy.service.auth.v3.CheckRequest",
        "{service}.{method} input"
    );
    assert_eq!(
        m.output_type(),
        ".envoy.service.auth.v3.CheckResponse",
        "{service}.{method} output"
    );
    files
}

#[tokio::test]
async fn reflection_v1_lists_and_describes_the_services() {
    let tollgate = start(&static_config()).await;
    let files = reflection_v1::assert_lists_and_describes_check(tollgate.channel()).await;
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
        let encoded = reflection_v1::file_by_filename(tollgate.channel(), &file)
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

    let files = reflection_v1::file_containing_symbol(tollgate.channel(), HEALTH_SERVICE)
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

    let unknown =
        reflection_v1::file_containing_symbol(tollgate.channel(), "no.such.Service").await;
    assert_eq!(unknown, Err(tonic::Code::NotFound));
}

#[tokio::test]
async fn reflection_v1alpha_lists_and_describes_the_services() {
    let tollgate = start(&static_config()).await;
    reflection_v1alpha::assert_lists_and_describes_check(tollgate.channel()).await;
    // A method symbol resolves to the same file.
    let files = reflection_v1alpha::file_containing_symbol(
        tollgate.channel(),
        "envoy.service.auth.v3.Authorization.Check",
    )
    .await
    .expect("the Check method is known");
    assert_describes_check(&files);
    let files = reflection_v1alpha::file_by_filename(tollgate.channel(), EXT_AUTHZ_FILE)
        .await
        .expect("the ext_authz file is known by name");
    assert_describes_check(&files);
    let unknown = reflection_v1alpha::file_by_filename(tollgate.channel(), "no/such.proto").await;
    assert_eq!(unknown, Err(tonic::Code::NotFound));
}

// ---------------------------------------------------------------------------
// Health
// ---------------------------------------------------------------------------

#[tokio::test]
async fn static_keys_are_serving_right_away() {
    let tollgate = start(&static_config()).await;
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
    let tollgate = start(&static_config()).await;
    let error = tollgate
        .health()
        .check(HealthCheckRequest {
            service: "no.such.Service".to_owned(),
        })
        .await
        .expect_err("an unknown service has no status");
    assert_eq!(error.code(), tonic::Code::NotFound);
}

/// Asserts the server's overall health ("") and the Check service's are both
/// `wanted`; failures start with `context`.
async fn assert_health(tollgate: &InProcess, wanted: ServingStatus, context: &str) {
    for service in ["", CHECK_SERVICE_NAME] {
        assert_eq!(
            tollgate.status(service).await,
            wanted,
            "{context} {service:?}"
        );
    }
}

#[tokio::test]
async fn remote_keys_not_yet_reachable_are_not_serving_until_they_load() {
    for mode in [IdpMode::Fail, IdpMode::Hang] {
        let idp = Idp::start_in(jwks_of(&[EC1_JWK]), mode).await;
        let tollgate = start(&remote_config(&idp.jwks_uri(), "200ms")).await;
        let mut watch_all = tollgate.watch("").await;
        let mut watch_check = tollgate.watch(CHECK_SERVICE_NAME).await;

        // Let at least one fetch fail (and one retry start) before looking,
        // so NOT_SERVING is about the failure, not about not having tried.
        tokio::time::timeout(INPROCESS_LIMIT, async {
            while idp.hits(JWKS_PATH) < 2 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{mode:?}: tollgate did not retry the JWKS fetch"));
        assert_health(&tollgate, ServingStatus::NotServing, &format!("{mode:?}")).await;

        idp.set_mode(IdpMode::Serve);
        for watch in [&mut watch_all, &mut watch_check] {
            let seen = watch_until(watch, ServingStatus::Serving).await;
            assert_eq!(
                seen.first(),
                Some(&ServingStatus::NotServing),
                "{mode:?}: {seen:?}"
            );
        }
        assert_health(&tollgate, ServingStatus::Serving, &format!("{mode:?}")).await;
    }
}

// ---------------------------------------------------------------------------
// Shutdown
// ---------------------------------------------------------------------------

#[tokio::test]
async fn shutdown_makes_serve_return_ok() {
    let tollgate = start(&static_config()).await;
    assert_eq!(
        tollgate.status(CHECK_SERVICE_NAME).await,
        ServingStatus::Serving
    );
    let addr = tollgate.addr();
    let result = tollgate.shutdown().await;
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
    let mut tollgate = start(&static_config()).await;
    // Kubelet-style clients keep a Watch open for the life of the pod; it
    // must not hold shutdown up.
    let mut watch = tollgate.watch(CHECK_SERVICE_NAME).await;
    watch_until(&mut watch, ServingStatus::Serving).await;
    tollgate.trigger_shutdown();
    // Watchers hear that the server is going away...
    watch_until(&mut watch, ServingStatus::NotServing).await;
    // ...and serve still returns, ending the stream.
    let result = tollgate.shutdown().await;
    assert!(result.is_ok(), "serve returned {result:?}");
    let rest = tokio::time::timeout(INPROCESS_LIMIT, watch.message())
        .await
        .expect("the watch stream ends");
    assert!(
        matches!(rest, Ok(None) | Err(_)),
        "the watch stream goes on: {rest:?}"
    );
}
