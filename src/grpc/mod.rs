//! The gRPC edge: the only code that touches Envoy's protobuf types and
//! `tonic::Status`. A `CheckRequest` becomes an [`AuthzRequest`] here, and a
//! [`Decision`] becomes a `CheckResponse`.

use std::sync::Arc;

use envoy_types::ext_authz::v3::pb::{
    Authorization, CheckRequest, CheckResponse, DeniedHttpResponse, HeaderAppendAction,
    HeaderValue, HeaderValueOption, HttpResponse, HttpStatus, OkHttpResponse,
};
use envoy_types::pb::google::rpc;
use tonic::{Request, Response, Status};

use crate::authz::{Authorizer, AuthzRequest, Decision, Denial, Grant};
use crate::routes::{PathParameters, normalize_host, normalize_path, normalize_request_path};

/// The encoded descriptors of the Envoy ext_authz API, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/ext_authz_descriptor.bin"));

/// `envoy.service.auth.v3.Authorization`, answered by an [`Authorizer`].
pub struct CheckService {
    authorizer: Arc<Authorizer>,
}

impl CheckService {
    /// Serves checks with `authorizer`.
    pub fn new(authorizer: Arc<Authorizer>) -> CheckService {
        CheckService { authorizer }
    }
}

#[tonic::async_trait]
impl Authorization for CheckService {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let request = authz_request(request.get_ref(), self.authorizer.path_parameters());
        match self.authorizer.check(&request).await {
            Ok(decision) => Ok(Response::new(check_response(
                decision,
                self.authorizer.realm(),
            ))),
            // The detail is in the log line; Envoy does not pass it on anyway.
            Err(_) => Err(Status::unavailable(
                "authorization is temporarily unavailable",
            )),
        }
    }
}

/// Reads what the authorizer needs from a `CheckRequest`. Headers come from
/// both `headers` and `header_map` (Envoy fills one or the other, depending
/// on `encode_raw_headers`).
pub fn authz_request(check: &CheckRequest, path_parameters: PathParameters) -> AuthzRequest {
    let http = check
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref());
    let Some(http) = http else {
        return AuthzRequest {
            host: Some(String::new()),
            method: String::new(),
            path: normalize_path(""),
            query: None,
            headers: Vec::new(),
        };
    };
    let raw_headers = http.header_map.as_ref().map_or(&[][..], |m| &m.headers[..]);
    let mut headers = Vec::with_capacity(http.headers.len() + raw_headers.len());
    headers.extend(
        http.headers
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.clone())),
    );
    headers.extend(raw_headers.iter().map(|h| {
        let value = if h.raw_value.is_empty() {
            h.value.clone()
        } else {
            String::from_utf8_lossy(&h.raw_value).into_owned()
        };
        (h.key.to_ascii_lowercase(), value)
    }));
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let authority = if http.host.is_empty() {
        header(":authority")
            .or_else(|| header("host"))
            .unwrap_or_default()
    } else {
        &http.host
    };
    let raw_path = if http.path.is_empty() {
        header(":path").unwrap_or_default()
    } else {
        &http.path
    };
    let method = if http.method.is_empty() {
        header(":method").unwrap_or_default()
    } else {
        &http.method
    };
    let query = raw_path
        .split_once('?')
        .map(|(_, q)| q.split_once('#').map_or(q, |(q, _)| q).to_owned());
    AuthzRequest {
        host: normalize_host(authority),
        method: method.to_ascii_uppercase(),
        path: normalize_request_path(raw_path, path_parameters),
        query,
        headers,
    }
}

/// Turns a decision into Envoy's answer. A deny is still a successful gRPC
/// call: its status and HTTP response tell Envoy what to send the client.
pub fn check_response(decision: Decision, realm: Option<&str>) -> CheckResponse {
    match decision {
        Decision::Allow(grant) => allow_response(grant),
        Decision::Deny(denial) => deny_response(&denial, realm),
    }
}

fn allow_response(grant: Grant) -> CheckResponse {
    let headers = grant
        .upstream
        .set
        .into_iter()
        .map(|(key, value)| header(key, value, HeaderAppendAction::OverwriteIfExistsOrAdd))
        .collect();
    CheckResponse {
        status: Some(rpc::Status {
            code: 0,
            ..Default::default()
        }),
        http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
            headers,
            headers_to_remove: grant.upstream.remove,
            query_parameters_to_remove: grant.upstream.remove_query,
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn deny_response(denial: &Denial, realm: Option<&str>) -> CheckResponse {
    let mut headers = vec![
        header(
            "content-type",
            "application/json".to_owned(),
            HeaderAppendAction::OverwriteIfExistsOrAdd,
        ),
        header(
            "cache-control",
            "no-store".to_owned(),
            HeaderAppendAction::OverwriteIfExistsOrAdd,
        ),
    ];
    if let Some(challenge) = denial.www_authenticate(realm) {
        headers.push(header(
            "www-authenticate",
            challenge,
            HeaderAppendAction::OverwriteIfExistsOrAdd,
        ));
    }
    let status = denial.reason.http_status();
    CheckResponse {
        status: Some(rpc::Status {
            code: denial.reason.grpc_code(),
            message: denial.reason.label().to_owned(),
            ..Default::default()
        }),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: i32::from(status),
            }),
            headers,
            body: denial.body(),
        })),
        ..Default::default()
    }
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
    use crate::authz::grpc_code;
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
    fn reads_headers_from_both_maps_and_splits_the_query() {
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
        let request = authz_request(&check_request(http), PathParameters::default());
        assert_eq!(request.host.as_deref(), Some("api.example.com"));
        assert_eq!(request.method, "GET");
        assert_eq!(request.path.as_deref(), Ok("/b"));
        assert_eq!(request.query.as_deref(), Some("access_token=x&y=1"));
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
        let request = authz_request(&check_request(http), PathParameters::default());
        assert_eq!(request.host.as_deref(), Some("h.example"));
        assert_eq!(request.path.as_deref(), Ok("/p"));
        assert_eq!(request.method, "POST");
    }

    #[test]
    fn a_request_without_attributes_has_a_bad_path() {
        let request = authz_request(&CheckRequest::default(), PathParameters::default());
        assert!(request.path.is_err());
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
        };
        let response = check_response(Decision::Allow(grant), None);
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
        assert_eq!(response.status.map(|s| s.code), Some(0));
    }

    #[test]
    fn deny_carries_status_challenge_and_json() {
        let denial = Denial {
            reason: crate::authz::DenyReason::InsufficientScope,
            route: None,
            caller: None,
            scope_hint: Some("write".into()),
            detail: None,
        };
        let response = check_response(Decision::Deny(denial), Some("api"));
        assert_eq!(
            response.status.as_ref().map(|s| s.code),
            Some(grpc_code::PERMISSION_DENIED)
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
