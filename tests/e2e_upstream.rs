//! What reaches the upstream and the client, end to end through the real
//! Envoy in front of the real `tollgate` binary, once over gRPC and once in
//! HTTP ext_authz mode (`http_service`): mapped and preset headers replace
//! client-sent ones, the token and listed headers are removed, the signed
//! identity token verifies against the JWKS from the admin port, denies
//! carry the route's shape, dry run allows and logs, and dynamic metadata
//! reaches Envoy's access log.

mod support;

use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value, json};
use support::tokens::Token;
use support::{
    EchoUpstream, Envoy, EnvoyOptions, Response, ScratchDir, TollgateProcess, repo_path,
    wait_for_file_containing,
};

const ISSUER: &str = "https://issuer.upstream.tollgate.test";
const AUDIENCE: &str = "orders-api";
const TOLLGATE_ISSUER: &str = "https://tollgate.e2e.test";
const UPSTREAM_AUDIENCE: &str = "orders-service";
const PATH_PREFIX: &str = "/authz";

fn fixture(name: &str) -> String {
    repo_path("tests/fixtures/keys")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn config() -> String {
    format!(
        r#"server:
  grpc_listen: 127.0.0.1:0
  http_enabled: true
  http_listen: 127.0.0.1:0
  http_path_prefix: {PATH_PREFIX}
  realm: api
identity:
  issuer: {TOLLGATE_ISSUER}
  signing_key: {{ file: {identity_key} }}
  algorithm: EdDSA
  kid: tollgate-e2e
providers:
  - name: fixtures
    issuer: {ISSUER}
    audiences: [{AUDIENCE}]
    jwks_file: {jwks}
defaults:
  header_preset: oauth2_proxy
  upstream_headers: {{ x-auth-subject: sub }}
  remove_token_header: true
  metadata_claims: [sub, email]
routes:
  - name: shadow
    match: {{ path: {{ prefix: /shadow }} }}
    dry_run: true
    require: {{ scopes: [admin] }}
  - name: orders
    match: {{ path: {{ prefix: /orders }} }}
    require: {{ scopes: [read] }}
    static_headers: {{ x-model-deployment: "https://models.example/ocid1" }}
    remove_headers: [x-debug]
    response_headers_to_add: {{ x-served-by: tollgate }}
    upstream_identity: {{ audience: {UPSTREAM_AUDIENCE}, claims: [email] }}
    deny:
      body: text
      headers: {{ x-help: "https://help.example/401" }}
      reason_header: x-tollgate-deny-reason
"#,
        identity_key = Value::from(fixture("ed25519.pem")),
        jwks = Value::from(fixture("jwks.json")),
    )
}

/// `ec-1`'s token from [`ISSUER`] for [`AUDIENCE`] with `scopes`, for
/// `alice` with an email and two groups.
fn token(scopes: &[&str]) -> String {
    Token::es256()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .subject("alice")
        .client_id("orders-cli")
        .scopes(scopes)
        .lifetime(Duration::from_secs(600))
        .claims(json!({"email": "alice@example.com", "groups": ["staff", "ops"]}))
        .sign()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Grpc,
    Http,
}

struct Stack {
    envoy: Envoy,
    tollgate: TollgateProcess,
    _echo: EchoUpstream,
    access_log: std::path::PathBuf,
    _scratch: ScratchDir,
}

/// Route and subject from dynamic metadata: gRPC mode returns them as
/// `dynamic_metadata`, HTTP mode as `x-tollgate-metadata-*` headers.
fn access_log_format(mode: Mode) -> &'static str {
    match mode {
        Mode::Grpc => {
            "%RESPONSE_CODE% route=%DYNAMIC_METADATA(envoy.filters.http.ext_authz:route)% sub=%DYNAMIC_METADATA(envoy.filters.http.ext_authz:sub)%\n"
        }
        Mode::Http => {
            "%RESPONSE_CODE% route=%DYNAMIC_METADATA(envoy.filters.http.ext_authz:x-tollgate-metadata-route)% sub=%DYNAMIC_METADATA(envoy.filters.http.ext_authz:x-tollgate-metadata-sub)%\n"
        }
    }
}

impl Stack {
    async fn start(mode: Mode) -> Stack {
        let echo = EchoUpstream::start().await;
        let tollgate = TollgateProcess::start(&config()).await;
        let scratch = ScratchDir::new("upstream-access-log");
        let access_log = scratch.join("access.log");
        let options = match mode {
            Mode::Grpc => EnvoyOptions::new(echo.addr, tollgate.addr()),
            Mode::Http => EnvoyOptions::http_service(
                echo.addr,
                tollgate.http_addr().await,
                PATH_PREFIX,
                &[
                    "x-auth-subject",
                    "x-auth-request-user",
                    "x-auth-request-email",
                    "x-auth-request-preferred-username",
                    "x-auth-request-groups",
                    "x-auth-request-access-token",
                    "x-model-deployment",
                    "x-tollgate-identity",
                ],
                &["x-served-by"],
            ),
        };
        let envoy = Envoy::start(options.access_log(&access_log, access_log_format(mode))).await;
        Stack {
            envoy,
            tollgate,
            _echo: echo,
            access_log,
            _scratch: scratch,
        }
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        support::get(&self.envoy.url(path), headers).await
    }

    fn expect_status(&self, response: &Response, status: u16, what: &str) {
        assert_eq!(
            response.status,
            status,
            "{what}: got {} {:?} {}\n{}\n{}",
            response.status,
            response.headers,
            response.body,
            self.tollgate.describe(),
            self.envoy.logs()
        );
    }
}

/// The values of `name` the upstream received.
fn received<'a>(echo: &'a Value, name: &str) -> Vec<&'a str> {
    echo["headers"][name]
        .as_array()
        .map(|values| values.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

async fn verify_identity(tollgate: &TollgateProcess, token: &str) -> Map<String, Value> {
    let url = format!(
        "http://{}/.well-known/jwks.json",
        tollgate.admin_addr().await
    );
    let jwks: JwkSet = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("{url} is not a JWKS: {e}"));
    let header = jsonwebtoken::decode_header(token).expect("identity token header");
    let kid = header.kid.expect("identity token has a kid");
    let jwk = jwks.find(&kid).expect("the JWKS holds the identity key");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&[TOLLGATE_ISSUER]);
    validation.set_audience(&[UPSTREAM_AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Map<String, Value>>(
        token,
        &DecodingKey::from_jwk(jwk).expect("usable JWK"),
        &validation,
    )
    .unwrap_or_else(|e| panic!("identity token does not verify: {e}"))
    .claims
}

async fn upstream_gets_what_the_route_says(mode: Mode) {
    let stack = Stack::start(mode).await;
    let token = token(&["read"]);
    let authorization = format!("Bearer {token}");

    // An allow: mapped, preset and static headers, client values replaced,
    // the token and x-debug removed, a verifiable identity token.
    let response = stack
        .get(
            "/orders/7?x=1",
            &[
                ("authorization", &authorization),
                ("x-auth-request-user", "mallory"),
                ("x-tollgate-identity", "forged"),
                ("x-debug", "1"),
            ],
        )
        .await;
    stack.expect_status(&response, 200, "orders with a read token");
    let echo = response.json();
    assert_eq!(received(&echo, "x-auth-request-user"), ["alice"], "{echo}");
    assert_eq!(received(&echo, "x-auth-subject"), ["alice"]);
    assert_eq!(
        received(&echo, "x-auth-request-email"),
        ["alice@example.com"]
    );
    assert_eq!(received(&echo, "x-auth-request-groups"), ["staff,ops"]);
    assert_eq!(
        received(&echo, "x-auth-request-access-token"),
        [token.as_str()]
    );
    assert_eq!(
        received(&echo, "x-model-deployment"),
        ["https://models.example/ocid1"]
    );
    assert!(received(&echo, "authorization").is_empty(), "{echo}");
    assert!(received(&echo, "x-debug").is_empty(), "{echo}");
    assert_eq!(response.header("x-served-by"), Some("tollgate"));
    let identity = received(&echo, "x-tollgate-identity");
    assert_eq!(identity.len(), 1, "one identity token, not the forged one");
    let claims = verify_identity(&stack.tollgate, identity[0]).await;
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["client_id"], "orders-cli");
    assert_eq!(claims["scope"], "read");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["original_iss"], ISSUER);
    assert!(claims.get("groups").is_none(), "only the selected claims");

    // A deny with the route's shape and no internal detail.
    let response = stack.get("/orders/7", &[]).await;
    stack.expect_status(&response, 401, "orders without a token");
    assert_eq!(
        response.header("www-authenticate"),
        Some(r#"Bearer realm="api""#)
    );
    assert_eq!(response.header("x-help"), Some("https://help.example/401"));
    assert_eq!(
        response.header("x-tollgate-deny-reason"),
        Some("missing_token")
    );
    assert_eq!(response.body, "an access token is required\n");

    // A dry-run route allows what it would deny, and says so in the log.
    let response = stack
        .get("/shadow/x", &[("x-auth-request-user", "mallory")])
        .await;
    stack.expect_status(&response, 200, "dry-run route without a token");
    assert!(
        received(&response.json(), "x-auth-request-user").is_empty(),
        "no client identity passes a dry-run allow"
    );
    let line = stack
        .tollgate
        .wait_for_log("dry run: deny not enforced")
        .await;
    assert!(line.contains("missing_token"), "{line}");

    let log = wait_for_file_containing(&stack.access_log, "route=orders").await;
    assert!(log.contains("200 route=orders sub=alice"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_mode_upstream_identity_headers_deny_shape_dry_run_and_metadata() {
    upstream_gets_what_the_route_says(Mode::Grpc).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn http_mode_upstream_identity_headers_deny_shape_dry_run_and_metadata() {
    upstream_gets_what_the_route_says(Mode::Http).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_health_and_readiness() {
    let tollgate = TollgateProcess::start(&config()).await;
    let admin = tollgate.admin_addr().await;
    for (path, status) in [
        ("/healthz", 200),
        ("/readyz", 200),
        ("/.well-known/jwks.json", 200),
        ("/nope", 404),
    ] {
        let response = support::get(&format!("http://{admin}{path}"), &[]).await;
        assert_eq!(response.status, status, "{path}: {}", response.body);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_is_503_until_every_provider_has_keys() {
    // Nothing listens on port 1: the provider never loads keys.
    let config = r#"server:
  grpc_listen: 127.0.0.1:0
providers:
  - name: unreachable
    issuer: https://unreachable.test
    jwks_uri: http://127.0.0.1:1/jwks.json
routes:
  - name: all
"#;
    let tollgate = TollgateProcess::start_listening(config).await;
    let admin = tollgate.admin_addr().await;
    let ready = support::get(&format!("http://{admin}/readyz"), &[]).await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    let alive = support::get(&format!("http://{admin}/healthz"), &[]).await;
    assert_eq!(alive.status, 200, "{}", alive.body);
    let jwks = support::get(&format!("http://{admin}/.well-known/jwks.json"), &[]).await;
    assert_eq!(jwks.json(), json!({"keys": []}));
}

#[tokio::test(flavor = "multi_thread")]
async fn http_listeners_stop_with_serve() {
    let yaml = config();
    let server = support::InProcess::start(&yaml, &repo_path(".")).await;
    let admin = server.admin_addr();
    let http = server
        .http_addr()
        .expect("HTTP mode is enabled in the config");
    let alive = support::get(&format!("http://{admin}/healthz"), &[]).await;
    assert_eq!(alive.status, 200);
    // HTTP mode answers directly too: no token on a route that needs one.
    let denied = support::get(&format!("http://{http}{PATH_PREFIX}/orders/1"), &[]).await;
    assert_eq!(denied.status, 401, "{}", denied.body);
    assert_eq!(
        denied
            .headers
            .get("x-tollgate-deny-reason")
            .and_then(|v| v.to_str().ok()),
        Some("missing_token")
    );
    server.shutdown().await.expect("serve returns cleanly");
    for addr in [admin, http] {
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "{addr} still accepts connections after shutdown"
        );
    }
}
