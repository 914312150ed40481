//! End to end through the real Envoy: a client talks to Envoy, whose
//! ext_authz filter asks the real `tollgate` binary over gRPC, and allowed
//! requests reach an echo upstream that reports what it received. The
//! routes are the httpbin tutorial's: every GET needs scope `read`,
//! POST /post needs `write`, /status/... is anonymous.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use support::tokens::Token;
use support::{EchoUpstream, Envoy, EnvoyOptions, Response, TollgateProcess, repo_path};

const ISSUER: &str = "https://issuer.e2e.tollgate.test";
const AUDIENCE: &str = "httpbin";
const REALM: &str = "httpbin";

/// The httpbin tutorial policy, verified with the fixture JWKS.
fn config(jwks_source: &str) -> String {
    format!(
        r#"server:
  grpc_listen: 127.0.0.1:0
  realm: {REALM}
providers:
  - name: fixtures
    issuer: {ISSUER}
    audiences: [{AUDIENCE}]
    {jwks_source}
defaults:
  upstream_headers:
    x-auth-subject: sub
    x-auth-client-id: client_id
    x-auth-scopes: scope
  remove_token_header: true
routes:
  - name: status-anonymous
    match: {{ path: {{ prefix: /status }} }}
    anonymous: true
  - name: post-needs-write
    match: {{ methods: [POST], path: {{ exact: /post }} }}
    require: {{ scopes: [write] }}
  - name: get-needs-read
    match: {{ methods: [GET, HEAD], path: {{ prefix: / }} }}
    require: {{ scopes: [read] }}
"#
    )
}

fn static_keys_config() -> String {
    let jwks = fixture("jwks.json");
    config(&format!(
        "jwks_file: {}",
        Value::from(jwks.to_string_lossy().into_owned())
    ))
}

fn fixture(name: &str) -> PathBuf {
    repo_path("tests/fixtures/keys").join(name)
}

/// `key`'s token as the fixture provider accepts it: from [`ISSUER`] for
/// [`AUDIENCE`], `alice` through client `httpbin-cli`, with `scopes`.
fn token_with(key: Token, scopes: &[&str]) -> Token {
    key.issuer(ISSUER)
        .audience(AUDIENCE)
        .subject("alice")
        .client_id("httpbin-cli")
        .scopes(scopes)
        .lifetime(Duration::from_secs(600))
}

fn token(scopes: &[&str]) -> String {
    token_with(Token::es256(), scopes).sign()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Echo, tollgate and Envoy, started in that order; dropped in reverse.
struct Stack {
    envoy: Envoy,
    tollgate: TollgateProcess,
    echo: EchoUpstream,
}

impl Stack {
    async fn start(encode_raw_headers: bool) -> Self {
        Self::start_with(&static_keys_config(), encode_raw_headers).await
    }

    async fn start_with(config: &str, encode_raw_headers: bool) -> Self {
        let echo = EchoUpstream::start().await;
        let tollgate = TollgateProcess::start(config).await;
        let envoy = Envoy::start(
            EnvoyOptions::new(echo.addr, tollgate.addr()).encode_raw_headers(encode_raw_headers),
        )
        .await;
        Self {
            envoy,
            tollgate,
            echo,
        }
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        support::get(&self.envoy.url(path), headers).await
    }

    async fn post(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        support::request("POST", &self.envoy.url(path), headers, b"{}".to_vec()).await
    }

    /// Panics with every log if `response` does not have `status`.
    fn expect_status(&self, response: &Response, status: u16, what: &str) {
        assert_eq!(
            response.status,
            status,
            "{what}: got {} {:?} {}\n{}\n{}",
            response.status,
            response.headers,
            response.body,
            self.tollgate.logs(),
            self.envoy.logs()
        );
    }
}

/// The values of header `name` that reached the echo upstream.
fn upstream_header(response: &Response, name: &str) -> Vec<String> {
    match &response.json()["headers"][name] {
        Value::Null => Vec::new(),
        Value::Array(values) => values
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect(),
        other => panic!("echo header {name} is {other}"),
    }
}

fn www_authenticate(response: &Response) -> &str {
    response.header("www-authenticate").unwrap_or_else(|| {
        panic!(
            "no www-authenticate in {} {:?}",
            response.status, response.headers
        )
    })
}

/// The deny body tollgate wrote, as Envoy passed it on.
fn deny_error(response: &Response) -> String {
    response.json()["error"]
        .as_str()
        .unwrap_or_else(|| panic!("deny body has no error: {}", response.body))
        .to_owned()
}

async fn assert_allowed_with_identity(stack: &Stack) {
    let token = token(&["read"]);
    let response = stack
        .get("/get?x=1", &[("authorization", &bearer(&token))])
        .await;
    stack.expect_status(&response, 200, "GET /get with a read token");
    assert_eq!(response.json()["path"], "/get?x=1");
    assert_eq!(upstream_header(&response, "x-auth-subject"), ["alice"]);
    assert_eq!(
        upstream_header(&response, "x-auth-client-id"),
        ["httpbin-cli"]
    );
    assert_eq!(upstream_header(&response, "x-auth-scopes"), ["read"]);
    assert_eq!(
        upstream_header(&response, "authorization"),
        Vec::<String>::new(),
        "remove_token_header: the token must not reach the upstream"
    );
}

async fn assert_missing_token_challenged(stack: &Stack) {
    let before = stack.echo.request_count();
    let response = stack.get("/get", &[]).await;
    stack.expect_status(&response, 401, "GET /get without a token");
    // RFC 6750 §3.1: no error attribute when the request had no token.
    assert_eq!(
        www_authenticate(&response),
        format!("Bearer realm=\"{REALM}\"")
    );
    assert_eq!(deny_error(&response), "unauthorized");
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(
        stack.echo.request_count(),
        before,
        "a denied request reached the upstream"
    );
}

async fn assert_scope_enforced(stack: &Stack) {
    let before = stack.echo.request_count();
    let token = token(&["profile", "write"]);
    let response = stack
        .get("/get", &[("authorization", &bearer(&token))])
        .await;
    stack.expect_status(&response, 403, "GET /get without scope read");
    assert_eq!(
        www_authenticate(&response),
        format!("Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"read\"")
    );
    assert_eq!(deny_error(&response), "insufficient_scope");
    assert_eq!(
        stack.echo.request_count(),
        before,
        "a denied request reached the upstream"
    );
}

#[tokio::test]
async fn read_token_reaches_upstream_with_identity_headers_and_no_token() {
    let stack = Stack::start(false).await;
    assert_allowed_with_identity(&stack).await;
    assert_eq!(stack.echo.request_count(), 1);
    stack
        .tollgate
        .wait_for_log("decision=\"allow\" route=\"get-needs-read\"")
        .await;
}

#[tokio::test]
async fn spoofed_identity_headers_never_reach_the_upstream() {
    let stack = Stack::start(false).await;

    let token = token(&["read"]);
    let response = stack
        .get(
            "/get",
            &[
                ("authorization", &bearer(&token)),
                ("x-auth-subject", "admin"),
                ("x-auth-scopes", "read write admin"),
            ],
        )
        .await;
    stack.expect_status(&response, 200, "GET /get with spoofed identity headers");
    assert_eq!(upstream_header(&response, "x-auth-subject"), ["alice"]);
    assert_eq!(upstream_header(&response, "x-auth-scopes"), ["read"]);

    // The token has no client_id, so the client's x-auth-client-id is
    // removed rather than passed through.
    let without_client_id = token_with(Token::es256(), &["read"])
        .claim("client_id", Value::Null)
        .sign();
    let response = stack
        .get(
            "/get",
            &[
                ("authorization", &bearer(&without_client_id)),
                ("x-auth-client-id", "trusted-backend"),
            ],
        )
        .await;
    stack.expect_status(&response, 200, "GET /get with a token lacking client_id");
    assert_eq!(
        upstream_header(&response, "x-auth-client-id"),
        Vec::<String>::new(),
        "a client-sent header for a missing claim reached the upstream"
    );
    assert_eq!(upstream_header(&response, "x-auth-subject"), ["alice"]);

    // Anonymous routes carry no identity at all.
    let response = stack
        .get("/status/200", &[("x-auth-subject", "admin")])
        .await;
    stack.expect_status(&response, 200, "anonymous GET with a spoofed subject");
    assert_eq!(
        upstream_header(&response, "x-auth-subject"),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn missing_token_is_401_with_a_bare_bearer_challenge() {
    let stack = Stack::start(false).await;
    assert_missing_token_challenged(&stack).await;
    // A non-Bearer Authorization header is not a bearer token either.
    let response = stack
        .get("/get", &[("authorization", "Basic YWxpY2U6c2VjcmV0")])
        .await;
    stack.expect_status(&response, 401, "GET /get with Basic credentials");
    assert_eq!(stack.echo.request_count(), 0);
}

#[tokio::test]
async fn bad_tokens_are_401_invalid_token() {
    let stack = Stack::start(false).await;
    let expired_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
        - 600;
    let cases = [
        (
            "expired",
            token_with(Token::es256(), &["read"])
                .claims(json!({ "exp": expired_at, "iat": expired_at - 60 }))
                .sign(),
        ),
        ("not a JWT", "not.a.jwt".to_owned()),
        ("not even token68", "%%%garbage%%%".to_owned()),
        (
            "signed by a key the JWKS does not hold, claiming its kid",
            token_with(
                Token::with_key("ec-p256-2.pem", jsonwebtoken::Algorithm::ES256, "ec-1"),
                &["read"],
            )
            .sign(),
        ),
        (
            "wrong audience",
            token_with(Token::es256(), &["read"])
                .claim("aud", "someone-else")
                .sign(),
        ),
        (
            "wrong issuer",
            token_with(Token::es256(), &["read"])
                .claim("iss", "https://evil.example")
                .sign(),
        ),
    ];
    for (what, token) in &cases {
        let response = stack
            .get("/get", &[("authorization", &bearer(token))])
            .await;
        stack.expect_status(&response, 401, what);
        assert_eq!(
            www_authenticate(&response),
            format!("Bearer realm=\"{REALM}\", error=\"invalid_token\""),
            "{what}"
        );
        assert_eq!(deny_error(&response), "invalid_token", "{what}");
        assert!(
            !response.body.contains("signature") && !response.body.contains("kid"),
            "{what}: the deny body must not say why: {}",
            response.body
        );
    }
    assert_eq!(
        stack.echo.request_count(),
        0,
        "a bad token reached the upstream"
    );
}

#[tokio::test]
async fn get_without_read_scope_is_403_naming_the_scope() {
    let stack = Stack::start(false).await;
    assert_scope_enforced(&stack).await;
}

#[tokio::test]
async fn post_needs_write_scope() {
    let stack = Stack::start(false).await;

    let read_only = token(&["read"]);
    let response = stack
        .post("/post", &[("authorization", &bearer(&read_only))])
        .await;
    stack.expect_status(&response, 403, "POST /post with only read");
    assert_eq!(
        www_authenticate(&response),
        format!("Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"write\"")
    );
    assert_eq!(stack.echo.request_count(), 0);

    let writer = token(&["write"]);
    let response = stack
        .post("/post", &[("authorization", &bearer(&writer))])
        .await;
    stack.expect_status(&response, 200, "POST /post with write");
    assert_eq!(response.json()["method"], "POST");
    assert_eq!(upstream_header(&response, "x-auth-scopes"), ["write"]);
    assert_eq!(stack.echo.request_count(), 1);
}

#[tokio::test]
async fn path_parameters_are_refused_unless_configured() {
    let stack = Stack::start(false).await;
    let read_only = token(&["read"]);
    // Upstreams disagree on `;` (a servlet serves `/post;x` as `/post`, Node
    // as `/post;x`), so by default tollgate refuses to guess.
    for path in ["/post;x", "/status;x", "/status%3Bx"] {
        let response = stack
            .post(path, &[("authorization", &bearer(&read_only))])
            .await;
        stack.expect_status(&response, 400, &format!("POST {path}"));
    }
    assert_eq!(stack.echo.request_count(), 0);
}

#[tokio::test]
async fn stripped_path_parameters_do_not_escape_the_route() {
    let config = static_keys_config().replacen("  realm:", "  path_parameters: strip\n  realm:", 1);
    let stack = Stack::start_with(&config, false).await;
    let read_only = token(&["read"]);
    // As a servlet container dispatches them: to /post, which needs write.
    for path in ["/post;x", "/post;jsessionid=1"] {
        let response = stack
            .post(path, &[("authorization", &bearer(&read_only))])
            .await;
        stack.expect_status(&response, 403, &format!("POST {path} with only read"));
    }
    assert_eq!(stack.echo.request_count(), 0);
}

#[tokio::test]
async fn underscore_spellings_of_identity_headers_never_reach_the_upstream() {
    let stack = Stack::start(false).await;
    let response = stack
        .get(
            "/status/200",
            &[("x_auth_subject", "admin"), ("x_other", "kept")],
        )
        .await;
    stack.expect_status(&response, 200, "anonymous GET with x_auth_subject");
    // Underscored names do pass this Envoy; only the identity one is removed.
    assert_eq!(upstream_header(&response, "x_other"), ["kept"]);
    assert_eq!(
        upstream_header(&response, "x_auth_subject"),
        Vec::<String>::new(),
        "a WSGI or PHP upstream would read it as x-auth-subject"
    );
}

#[tokio::test]
async fn anonymous_route_needs_no_token() {
    let stack = Stack::start(false).await;
    let response = stack.get("/status/200", &[]).await;
    stack.expect_status(&response, 200, "anonymous GET /status/200");
    assert_eq!(response.json()["path"], "/status/200");
    // Whole segments only: /statusx is not under /status, so it needs read.
    let response = stack.get("/statusx", &[]).await;
    stack.expect_status(&response, 401, "GET /statusx without a token");
    assert_eq!(stack.echo.request_count(), 1);
}

#[tokio::test]
async fn two_different_tokens_are_400() {
    let stack = Stack::start(false).await;
    let first = token(&["read"]);
    let second = token(&["read", "write"]);
    assert_ne!(first, second);
    let response = stack
        .get(
            "/get",
            &[
                ("authorization", &bearer(&first)),
                ("authorization", &bearer(&second)),
            ],
        )
        .await;
    stack.expect_status(&response, 400, "two different bearer tokens");
    assert_eq!(
        www_authenticate(&response),
        format!("Bearer realm=\"{REALM}\", error=\"invalid_request\"")
    );
    assert_eq!(deny_error(&response), "invalid_request");

    // The same token twice is one token.
    let response = stack
        .get(
            "/get",
            &[
                ("authorization", &bearer(&first)),
                ("authorization", &bearer(&first)),
            ],
        )
        .await;
    stack.expect_status(&response, 200, "the same bearer token twice");
    assert_eq!(stack.echo.request_count(), 1);
}

#[tokio::test]
async fn a_query_token_is_removed_before_the_upstream() {
    let config = static_keys_config().replacen(
        "providers:",
        "token_sources:\n  - {header: authorization, scheme: Bearer}\n  - {query: access_token}\nproviders:",
        1,
    );
    let stack = Stack::start_with(&config, false).await;
    let token = token(&["read"]);
    let response = stack
        .get(&format!("/get?x=1&access_token={token}&y=2"), &[])
        .await;
    stack.expect_status(&response, 200, "GET with the token in the query");
    assert_eq!(response.json()["path"], "/get?x=1&y=2");
    assert_eq!(upstream_header(&response, "x-auth-subject"), ["alice"]);
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive() {
    let stack = Stack::start(false).await;
    let token = token(&["read"]);
    for scheme in ["bearer", "BEARER"] {
        let response = stack
            .get("/get", &[("authorization", &format!("{scheme} {token}"))])
            .await;
        stack.expect_status(&response, 200, scheme);
        assert_eq!(upstream_header(&response, "x-auth-subject"), ["alice"]);
    }
}

#[tokio::test]
async fn raw_header_map_gives_the_same_answers() {
    let stack = Stack::start(true).await;
    assert!(
        stack
            .envoy
            .bootstrap_yaml()
            .contains("encode_raw_headers: true"),
        "this test must run with header_map"
    );
    assert_allowed_with_identity(&stack).await;
    assert_missing_token_challenged(&stack).await;
    assert_scope_enforced(&stack).await;
    let response = stack.get("/status/204", &[]).await;
    stack.expect_status(&response, 200, "anonymous with header_map");
    assert_eq!(stack.echo.request_count(), 2);
}

#[tokio::test]
async fn tokens_from_the_dev_token_command_are_accepted() {
    let stack = Stack::start(false).await;
    for (file, algorithm, kid) in [
        ("rsa-2048.pem", "RS256", "rsa-1"),
        ("ed25519.pem", "EdDSA", "ed-1"),
    ] {
        let output = support::tollgate_command(["dev-token"], &[])
            .arg("--key")
            .arg(fixture(file))
            .args(["--algorithm", algorithm, "--kid", kid])
            .args(["--issuer", ISSUER, "--audience", AUDIENCE])
            .args(["--subject", "bob", "--client-id", "cli-client"])
            .args(["--scope", "read", "--scope", "write"])
            .output()
            .unwrap_or_else(|e| panic!("running tollgate dev-token: {e}"));
        assert!(
            output.status.success(),
            "dev-token {algorithm} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let token = String::from_utf8_lossy(&output.stdout).trim().to_owned();

        let response = stack
            .get("/get", &[("authorization", &bearer(&token))])
            .await;
        stack.expect_status(
            &response,
            200,
            &format!("GET with a dev-token {algorithm} token"),
        );
        assert_eq!(upstream_header(&response, "x-auth-subject"), ["bob"]);
        assert_eq!(
            upstream_header(&response, "x-auth-client-id"),
            ["cli-client"]
        );
        assert_eq!(upstream_header(&response, "x-auth-scopes"), ["read write"]);

        let response = stack
            .post("/post", &[("authorization", &bearer(&token))])
            .await;
        stack.expect_status(
            &response,
            200,
            &format!("POST with a dev-token {algorithm} token"),
        );
    }
}

#[tokio::test]
async fn unreachable_jwks_fails_closed_and_names_the_provider() {
    // Port 1 (tcpmux) on loopback: nothing listens there, so connections
    // are refused. A port freed by the test instead could be handed to a
    // parallel test's server, which would then receive the key fetches.
    let closed = "127.0.0.1:1";
    let config = config(&format!("jwks_uri: http://{closed}/jwks"));
    let echo = EchoUpstream::start().await;
    let tollgate = TollgateProcess::start_listening(&config).await;
    let envoy = Envoy::start(EnvoyOptions::new(echo.addr, tollgate.addr())).await;

    let token = token(&["read", "write"]);
    for (method, path) in [("GET", "/get"), ("POST", "/post")] {
        let response = support::request(
            method,
            &envoy.url(path),
            &[("authorization", &bearer(&token))],
            Vec::new(),
        )
        .await;
        assert_eq!(
            response.status,
            403,
            "{method} {path} while the JWKS is unreachable must be denied by Envoy's failure mode: {} {}\n{}",
            response.body,
            tollgate.logs(),
            envoy.logs()
        );
    }
    assert_eq!(echo.request_count(), 0, "tollgate failed open");

    let line = tollgate.wait_for_log("check failed").await;
    assert!(line.contains("keys_unavailable"), "{line}");
    assert!(
        line.contains("keys for provider fixtures are unavailable"),
        "the failed check should name the provider: {line}"
    );
    let fetch = tollgate.wait_for_log("JWKS fetch failed").await;
    assert!(fetch.contains("provider=fixtures"), "{fetch}");
    assert!(
        tollgate.logs().contains(closed),
        "the logs should say which URL failed:\n{}",
        tollgate.logs()
    );
    let signature = token.rsplit('.').next().unwrap_or_default();
    assert!(
        !tollgate.logs().contains(&token) && !tollgate.logs().contains(signature),
        "tollgate logged the token:\n{}",
        tollgate.logs()
    );
    assert_eq!(
        tollgate.health().await,
        Ok(tonic_health::pb::health_check_response::ServingStatus::NotServing),
        "a provider without keys must keep tollgate NOT_SERVING"
    );
}

#[test]
fn laptop_envoy_config_passes_validation() {
    let path = repo_path("config/envoy/envoy.yaml");
    if let Err(message) = support::validate_config(&path) {
        panic!("{message}");
    }
}

#[test]
fn validation_rejects_a_broken_envoy_config() {
    // Proves the check above can fail: Envoy refuses unknown fields.
    let dir = support::ScratchDir::new("validate");
    let broken = std::fs::read_to_string(repo_path("config/envoy/envoy.yaml"))
        .unwrap_or_else(|e| panic!("reading config/envoy/envoy.yaml: {e}"))
        .replace(
            "failure_mode_allow: false",
            "failure_mode_allow: false\n              fail_open_please: true",
        );
    let path = dir.join("envoy.yaml");
    std::fs::write(&path, broken).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    let message = support::validate_config(&path)
        .err()
        .unwrap_or_else(|| panic!("Envoy accepted an unknown field in {}", path.display()));
    assert!(message.contains("fail_open_please"), "{message}");
}
