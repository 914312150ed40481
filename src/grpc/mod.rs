//! The gRPC edge: the only code that touches Envoy's protobuf types and
//! `tonic::Status`. A `CheckRequest` becomes an [`AuthzRequest`] here, and a
//! [`Decision`] becomes a `CheckResponse`.

use std::sync::Arc;

use envoy_types::ext_authz::v3::pb::{
    Authorization, CheckRequest, CheckResponse, DeniedHttpResponse, HeaderAppendAction,
    HeaderValue, HeaderValueOption, HttpResponse, HttpStatus, OkHttpResponse,
};
use envoy_types::pb::google::protobuf::{self as pbuf, value::Kind};
use envoy_types::pb::google::rpc;
use tonic::{Code, Request, Response, Status};

use crate::authz::{AuthzRequest, Checkpoint, Unanswered};
use crate::outcome::{Decision, Grant};

/// The encoded descriptors of the Envoy ext_authz API, for server reflection.
pub(crate) const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/ext_authz_descriptor.bin"));

/// `envoy.service.auth.v3.Authorization`, answered through the server's
/// [`Checkpoint`].
///
/// The limits are a semaphore and a timeout rather than tower's
/// `ConcurrencyLimit` and `Timeout` layers: those queue excess calls and end
/// slow ones with a transport error, where an authorizer under load should
/// refuse at once with a status Envoy understands.
pub(crate) struct CheckService {
    checkpoint: Arc<Checkpoint>,
}

impl CheckService {
    /// Serves checks through `checkpoint`.
    pub(crate) fn new(checkpoint: Arc<Checkpoint>) -> CheckService {
        CheckService { checkpoint }
    }
}

#[tonic::async_trait]
impl Authorization for CheckService {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let admitted = self.checkpoint.admit().map_err(unanswered)?;
        let (metadata, _, check) = request.into_parts();
        let request = authz_request(check);
        // Envoy's own ext_authz span (gRPC metadata) is the nearer parent;
        // the checked request's headers carry the one before it.
        let decision = admitted
            .check(&request, || trace_context(&metadata))
            .await
            .map_err(unanswered)?;
        Ok(Response::new(check_response(decision)))
    }
}

/// A check without a decision, as a status Envoy's failure mode acts on.
/// The detail is in the log line; Envoy does not pass it on anyway.
fn unanswered(unanswered: Unanswered) -> Status {
    let description = unanswered.description();
    match unanswered {
        Unanswered::Overloaded => Status::resource_exhausted(description),
        Unanswered::TimedOut | Unanswered::Fault => Status::unavailable(description),
    }
}

/// The gRPC code of a deny, from its HTTP status: Envoy reads the code,
/// the client gets the status.
fn deny_code(status: u16) -> Code {
    match status {
        400 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        _ => Code::PermissionDenied,
    }
}

/// The W3C Trace Context entries of the Check call's gRPC metadata.
fn trace_context(metadata: &tonic::metadata::MetadataMap) -> Vec<(String, String)> {
    crate::telemetry::TRACE_CONTEXT_HEADERS
        .iter()
        .filter_map(|name| {
            let value = metadata.get(*name)?.to_str().ok()?;
            Some(((*name).to_owned(), value.to_owned()))
        })
        .collect()
}

/// Reads what the authorizer needs from a `CheckRequest`, as sent: the
/// authorizer normalises it. Headers come from both `headers` and
/// `header_map` (Envoy fills one or the other, depending on
/// `encode_raw_headers`). Takes the request by value so header names and
/// values move into the [`AuthzRequest`] instead of being copied.
pub fn authz_request(check: CheckRequest) -> AuthzRequest {
    let attributes = check.attributes;
    let peer_certificate = attributes
        .as_ref()
        .and_then(|a| a.source.as_ref())
        .map(|source| source.certificate.clone())
        .filter(|pem| !pem.is_empty());
    let http = attributes.and_then(|a| a.request).and_then(|r| r.http);
    let Some(http) = http else {
        return AuthzRequest::default();
    };
    let raw_headers = http.header_map.map_or_else(Vec::new, |m| m.headers);
    let mut headers = Vec::with_capacity(http.headers.len() + raw_headers.len());
    headers.extend(
        http.headers
            .into_iter()
            .map(|(name, value)| (lowercase(name), value)),
    );
    headers.extend(raw_headers.into_iter().map(|h| {
        let value = if h.raw_value.is_empty() {
            h.value
        } else {
            String::from_utf8(h.raw_value)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
        };
        (lowercase(h.key), value)
    }));
    // The attribute when Envoy filled it (it does), else the first of the
    // pseudo-headers that carries it.
    let attribute = |value: String, names: &[&str]| {
        if !value.is_empty() {
            return value;
        }
        names
            .iter()
            .find_map(|name| headers.iter().find(|(n, _)| n == name))
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let authority = attribute(http.host, &[":authority", "host"]);
    let path = attribute(http.path, &[":path"]);
    let method = attribute(http.method, &[":method"]);
    let scheme = attribute(http.scheme, &[":scheme", "x-forwarded-proto"]);
    AuthzRequest {
        scheme,
        authority,
        method,
        path,
        headers,
        peer_certificate,
    }
}

/// Lower-cases in place: Envoy already sends lower-case names, so this
/// rarely changes a byte and never allocates.
fn lowercase(mut name: String) -> String {
    name.make_ascii_lowercase();
    name
}

/// Turns a decision into Envoy's answer, a deny in its route's shape. A
/// deny is still a successful gRPC call: its status and HTTP response tell
/// Envoy what to send the client.
pub fn check_response(decision: Decision) -> CheckResponse {
    match decision {
        Decision::Allow(grant) => allow_response(grant),
        Decision::Deny(denial) => {
            let reply = denial.reply();
            CheckResponse {
                dynamic_metadata: dynamic_metadata(denial.metadata),
                status: Some(rpc::Status {
                    code: deny_code(reply.status) as i32,
                    message: denial.reason.label().to_owned(),
                    ..Default::default()
                }),
                http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
                    status: Some(HttpStatus {
                        code: i32::from(reply.status),
                    }),
                    headers: overwriting(reply.headers),
                    body: reply.body,
                })),
            }
        }
    }
}

/// Dynamic metadata for Envoy, none when `metadata` is empty.
fn dynamic_metadata(metadata: serde_json::Map<String, serde_json::Value>) -> Option<pbuf::Struct> {
    (!metadata.is_empty()).then(|| pbuf::Struct {
        fields: metadata
            .into_iter()
            .map(|(key, value)| (key, protobuf_value(value)))
            .collect(),
    })
}

fn allow_response(grant: Grant) -> CheckResponse {
    let dynamic_metadata = dynamic_metadata(grant.metadata);
    CheckResponse {
        status: Some(rpc::Status {
            code: 0,
            ..Default::default()
        }),
        http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
            headers: overwriting(grant.upstream.set),
            headers_to_remove: grant.upstream.remove,
            query_parameters_to_remove: grant.upstream.remove_query,
            response_headers_to_add: overwriting(grant.response_headers),
            ..Default::default()
        })),
        dynamic_metadata,
    }
}

/// Headers that replace any of the same name (a client-sent one included).
fn overwriting(headers: Vec<(String, String)>) -> Vec<HeaderValueOption> {
    headers
        .into_iter()
        .map(|(key, value)| header(key, value, HeaderAppendAction::OverwriteIfExistsOrAdd))
        .collect()
}

fn protobuf_value(value: serde_json::Value) -> pbuf::Value {
    use serde_json::Value as Json;
    let kind = match value {
        Json::Null => Kind::NullValue(0),
        Json::Bool(b) => Kind::BoolValue(b),
        Json::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Json::String(s) => Kind::StringValue(s),
        Json::Array(items) => Kind::ListValue(pbuf::ListValue {
            values: items.into_iter().map(protobuf_value).collect(),
        }),
        Json::Object(fields) => Kind::StructValue(pbuf::Struct {
            fields: fields
                .into_iter()
                .map(|(k, v)| (k, protobuf_value(v)))
                .collect(),
        }),
    };
    pbuf::Value { kind: Some(kind) }
}

fn header(key: impl Into<String>, value: String, action: HeaderAppendAction) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.into(),
            value,
            ..Default::default()
        }),
        append_action: action.into(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Denial, DenyReason, DenyShape};
    use envoy_types::pb::envoy::config::core::v3::HeaderMap;
    use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
    use envoy_types::pb::envoy::service::auth::v3::attribute_context::{
        HttpRequest, Request as AttrRequest,
    };

    fn check_request(http: HttpRequest) -> CheckRequest {
        CheckRequest {
            attributes: Some(AttributeContext {
                request: Some(AttrRequest {
                    http: Some(http),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn reads_headers_from_both_maps_as_sent() {
        let http = HttpRequest {
            host: "API.example.com:8443".into(),
            method: "get".into(),
            path: "/a/../b?access_token=x&y=1".into(),
            headers: [("Authorization".to_owned(), "Bearer one".to_owned())].into(),
            header_map: Some(HeaderMap {
                headers: vec![HeaderValue {
                    key: "x-raw".into(),
                    raw_value: b"raw-value".to_vec(),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        };
        let request = authz_request(check_request(http));
        // Normalising is the authorizer's; the edge hands over what came.
        assert_eq!(request.authority, "API.example.com:8443");
        assert_eq!(request.method, "get");
        assert_eq!(request.path, "/a/../b?access_token=x&y=1");
        assert!(
            request
                .headers
                .contains(&("authorization".into(), "Bearer one".into()))
        );
        assert!(
            request
                .headers
                .contains(&("x-raw".into(), "raw-value".into()))
        );
    }

    #[test]
    fn falls_back_to_pseudo_headers() {
        let http = HttpRequest {
            headers: [
                (":authority".to_owned(), "h.example".to_owned()),
                (":path".to_owned(), "/p".to_owned()),
                (":method".to_owned(), "POST".to_owned()),
            ]
            .into(),
            ..Default::default()
        };
        let request = authz_request(check_request(http));
        assert_eq!(request.authority, "h.example");
        assert_eq!(request.path, "/p");
        assert_eq!(request.method, "POST");
    }

    #[test]
    fn a_request_without_attributes_is_empty() {
        let request = authz_request(CheckRequest::default());
        assert_eq!(request.path, "");
        assert!(request.headers.is_empty());
    }

    #[test]
    fn deny_codes_follow_the_http_status() {
        assert_eq!(deny_code(400), Code::InvalidArgument);
        assert_eq!(deny_code(401), Code::Unauthenticated);
        assert_eq!(deny_code(403), Code::PermissionDenied);
    }

    #[test]
    fn allow_overwrites_and_removes() {
        let grant = Grant {
            route: None,
            caller: None,
            upstream: crate::headers::UpstreamHeaders {
                set: vec![("x-auth-subject".into(), "svc".into())],
                remove: vec!["authorization".into()],
                remove_query: vec!["access_token".into()],
            },
            response_headers: vec![("x-served-by".into(), "tollgate".into())],
            metadata: [("route".to_owned(), serde_json::json!("r1"))]
                .into_iter()
                .collect(),
            binding: crate::outcome::Bound::default(),
        };
        let response = check_response(Decision::Allow(grant));
        let metadata = response.dynamic_metadata.clone().unwrap();
        assert_eq!(
            metadata.fields["route"].kind,
            Some(Kind::StringValue("r1".into()))
        );
        let Some(HttpResponse::OkResponse(ok)) = response.http_response else {
            panic!("expected an ok response");
        };
        assert_eq!(ok.headers_to_remove, ["authorization"]);
        assert_eq!(ok.query_parameters_to_remove, ["access_token"]);
        let h = &ok.headers[0];
        assert_eq!(
            h.append_action,
            HeaderAppendAction::OverwriteIfExistsOrAdd as i32
        );
        assert_eq!(h.header.as_ref().map(|h| h.value.as_str()), Some("svc"));
        assert_eq!(ok.response_headers_to_add.len(), 1);
        assert_eq!(response.status.map(|s| s.code), Some(0));
    }

    #[test]
    fn deny_carries_status_challenge_and_json() {
        let shape = DenyShape {
            realm: Some("api".into()),
            ..DenyShape::default()
        };
        let denial = Denial {
            scope_hint: Some("write".into()),
            ..Denial::new(DenyReason::InsufficientScope, None, Arc::new(shape))
        };
        let response = check_response(Decision::Deny(denial));
        assert_eq!(
            response.status.as_ref().map(|s| s.code),
            Some(Code::PermissionDenied as i32)
        );
        let Some(HttpResponse::DeniedResponse(denied)) = response.http_response else {
            panic!("expected a denied response");
        };
        assert_eq!(denied.status.map(|s| s.code), Some(403));
        let challenge = denied
            .headers
            .iter()
            .filter_map(|h| h.header.as_ref())
            .find(|h| h.key == "www-authenticate")
            .map(|h| h.value.clone());
        assert_eq!(
            challenge.as_deref(),
            Some(r#"Bearer realm="api", error="insufficient_scope", scope="write""#)
        );
        let body: serde_json::Value = serde_json::from_str(&denied.body).unwrap();
        assert_eq!(body["error"], "insufficient_scope");
    }
}
