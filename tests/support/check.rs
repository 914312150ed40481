//! Calling `Check` on an in-process tollgate the way Envoy does, and reading
//! the answers back: the harness of the gRPC-level tests.

// clippy.toml lets `#[test]` functions panic on a failed expectation; the
// helpers here are part of the tests in the same way.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::PathBuf;

use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{
    HttpRequest, Request as AttributeRequest,
};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{
    AttributeContext, CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse,
};
use serde_json::Value;
use tollgate::CHECK_SERVICE_NAME;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;

use super::tokens::Token;
use super::{InProcess, repo_path, watch_until};

/// The issuers and audience the check tests configure.
pub const ISSUER_A: &str = "https://issuer-a.test";
pub const ISSUER_B: &str = "https://issuer-b.test";
pub const AUDIENCE: &str = "orders-api";

/// `key`'s token from `issuer` for [`AUDIENCE`]: `alice` through client
/// `orders-ui`, with scope `read` (a test sets others with `.scopes`).
pub fn issued_by(issuer: &str, key: Token) -> Token {
    key.issuer(issuer)
        .audience(AUDIENCE)
        .subject("alice")
        .client_id("orders-ui")
        .scopes(["read"])
}

/// gRPC codes tollgate puts in `CheckResponse.status`.
pub const GRPC_OK: i32 = 0;
pub const GRPC_INVALID_ARGUMENT: i32 = 3;
pub const GRPC_PERMISSION_DENIED: i32 = 7;
pub const GRPC_UNAUTHENTICATED: i32 = 16;

/// The realm [`Tollgate::start_in_realm`] serves, named in every challenge.
pub const REALM: &str = "tollgate-test";
/// What a missing token gets: a challenge with no `error` (RFC 6750 §3.1).
pub const MISSING_TOKEN_CHALLENGE: &str = r#"Bearer realm="tollgate-test""#;
pub const INVALID_TOKEN_CHALLENGE: &str = r#"Bearer realm="tollgate-test", error="invalid_token""#;
pub const INVALID_REQUEST_CHALLENGE: &str =
    r#"Bearer realm="tollgate-test", error="invalid_request""#;
pub const INSUFFICIENT_SCOPE_CHALLENGE: &str =
    r#"Bearer realm="tollgate-test", error="insufficient_scope""#;

pub fn keys_dir() -> PathBuf {
    repo_path("tests/fixtures/keys")
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = keys_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The RSA test key's public half as PEM text: what a key-confusion attacker
/// would use as an HMAC secret.
pub fn rsa_public_pem() -> String {
    use aws_lc_rs::encoding::AsDer as _;
    use aws_lc_rs::signature::KeyPair as _;
    use base64::Engine as _;
    let pkcs8 = pem_der(&fixture("rsa-2048.pem"));
    let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(&pkcs8).expect("RSA PKCS#8 key");
    let der = pair.public_key().as_der().expect("public key DER");
    let encoded = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let mut out = String::from("-----BEGIN PUBLIC KEY-----\n");
    for chunk in encoded.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END PUBLIC KEY-----\n");
    out
}

/// The DER bytes of a one-object PEM file (a PKCS#8 key, a certificate).
pub fn pem_der(pem: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let pem = std::str::from_utf8(pem).expect("PEM is text");
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("PEM body is base64")
}

/// tollgate serving in-process, with an `Authorization` client; shut down
/// on drop.
pub struct Tollgate {
    pub server: InProcess,
    pub client: AuthorizationClient<Channel>,
}

impl Tollgate {
    /// Serves the config `yaml`; relative key files are read from
    /// `tests/fixtures/keys/`.
    pub async fn start(yaml: &str) -> Tollgate {
        let server = InProcess::start(yaml, &keys_dir()).await;
        let client = AuthorizationClient::new(server.channel().clone());
        Tollgate { server, client }
    }

    /// [`Tollgate::start`] with `yaml` (providers, token sources, routes:
    /// anything but `server`) under a `server` section that listens on
    /// 127.0.0.1:0 in realm [`REALM`].
    pub async fn start_in_realm(yaml: &str) -> Tollgate {
        let server = format!("server:\n  grpc_listen: 127.0.0.1:0\n  realm: {REALM}\n");
        Tollgate::start(&(server + yaml.trim_start_matches('\n'))).await
    }

    /// The raw gRPC answer, for tests that expect a gRPC error.
    pub async fn try_check(&self, request: CheckRequest) -> Result<CheckResponse, tonic::Status> {
        self.client
            .clone()
            .check(request)
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn check(&self, request: CheckRequest) -> CheckResponse {
        self.try_check(request)
            .await
            .unwrap_or_else(|status| panic!("Check failed with a gRPC error: {status:?}"))
    }

    /// `GET path` with `Authorization: Bearer <token>`.
    pub async fn check_bearer(&self, path: &str, token: &str) -> CheckResponse {
        self.check(get(path, &[("authorization", &bearer(token))]))
            .await
    }

    /// Waits (bounded) until health says SERVING: every provider has keys.
    pub async fn wait_ready(&self) {
        let mut stream = self.server.watch(CHECK_SERVICE_NAME).await;
        watch_until(&mut stream, ServingStatus::Serving).await;
    }
}

/// A `CheckRequest` as Envoy sends it with `headers` (names lower-case; a
/// repeated name is joined with a comma, as Envoy does).
pub fn request(method: &str, host: &str, path: &str, headers: &[(&str, &str)]) -> CheckRequest {
    let mut map: HashMap<String, String> = HashMap::new();
    for (name, value) in headers {
        map.entry(name.to_ascii_lowercase())
            .and_modify(|v| {
                v.push(',');
                v.push_str(value);
            })
            .or_insert_with(|| (*value).to_owned());
    }
    with_http(HttpRequest {
        host: host.to_owned(),
        method: method.to_owned(),
        path: path.to_owned(),
        headers: map,
        ..Default::default()
    })
}

pub fn get(path: &str, headers: &[(&str, &str)]) -> CheckRequest {
    request("GET", "api.example.com", path, headers)
}

pub fn with_http(http: HttpRequest) -> CheckRequest {
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(AttributeRequest {
                http: Some(http),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The allow response; panics (with the response) on anything else.
pub fn allowed(response: &CheckResponse) -> &OkHttpResponse {
    assert_eq!(
        response.status.as_ref().map(|s| s.code),
        Some(GRPC_OK),
        "expected an allow: {response:?}"
    );
    match &response.http_response {
        Some(HttpResponse::OkResponse(ok)) => ok,
        other => panic!("expected an OkHttpResponse, got {other:?}"),
    }
}

/// Headers set upstream, each checked to overwrite a client-sent one.
pub fn upstream_headers(ok: &OkHttpResponse) -> HashMap<String, String> {
    ok.headers
        .iter()
        .map(|option| {
            assert_eq!(
                option.append_action,
                HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
                "upstream header must replace a client-sent one: {option:?}"
            );
            let header = option.header.as_ref().expect("header in HeaderValueOption");
            (header.key.clone(), header.value.clone())
        })
        .collect()
}

/// The value of header `name` in `headers`.
pub fn header<'a>(headers: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    headers.get(name).map(String::as_str)
}

/// A deny, read back.
#[derive(Debug)]
pub struct Denied {
    pub status: i32,
    pub headers: HashMap<String, String>,
    pub body: Value,
    pub raw_body: String,
}

pub fn denied(response: &CheckResponse) -> Denied {
    let Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
        status,
        headers,
        body,
    })) = &response.http_response
    else {
        panic!("expected a DeniedHttpResponse, got {response:?}");
    };
    let headers: HashMap<String, String> = headers
        .iter()
        .filter_map(|option| option.header.as_ref())
        .map(|header| (header.key.clone(), header.value.clone()))
        .collect();
    let parsed: Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("deny body is not JSON ({e}): {body}"));
    Denied {
        status: status.as_ref().map_or(0, |s| s.code),
        headers,
        body: parsed,
        raw_body: body.clone(),
    }
}

/// [`assert_denied`] for a token that is present but not acceptable in
/// realm [`REALM`]: 401 `invalid_token`, and `token` not repeated.
pub fn assert_invalid_token(response: &CheckResponse, token: &str) -> Denied {
    assert_denied(
        response,
        401,
        Some(INVALID_TOKEN_CHALLENGE),
        "invalid_token",
        Some(token),
    )
}

/// Asserts a deny: HTTP `status`, the matching gRPC code, exactly this
/// `WWW-Authenticate` (or none), JSON body `error`, and that nothing in the
/// response repeats `token`.
pub fn assert_denied(
    response: &CheckResponse,
    status: i32,
    challenge: Option<&str>,
    error: &str,
    token: Option<&str>,
) -> Denied {
    let deny = denied(response);
    assert_eq!(deny.status, status, "HTTP status of {response:?}");
    let grpc = match status {
        400 => GRPC_INVALID_ARGUMENT,
        401 => GRPC_UNAUTHENTICATED,
        _ => GRPC_PERMISSION_DENIED,
    };
    assert_eq!(
        response.status.as_ref().map(|s| s.code),
        Some(grpc),
        "gRPC code of {response:?}"
    );
    assert_eq!(
        header(&deny.headers, "www-authenticate"),
        challenge,
        "WWW-Authenticate of {response:?}"
    );
    assert_eq!(
        header(&deny.headers, "content-type"),
        Some("application/json")
    );
    assert_eq!(deny.body["error"], error, "body: {}", deny.raw_body);
    let description = deny.body["error_description"].as_str().unwrap_or_default();
    assert!(
        !description.is_empty(),
        "body lacks error_description: {}",
        deny.raw_body
    );
    if let Some(token) = token {
        let text = format!("{response:?}");
        assert!(
            !text.contains(token),
            "the response repeats the token: {text}"
        );
        // A token's signature alone is also secret enough to keep out.
        if let Some(signature) = token.rsplit('.').next().filter(|s| s.len() > 8) {
            assert!(
                !deny.raw_body.contains(signature),
                "body repeats the signature"
            );
        }
    }
    deny
}
