//! End to end with a real OpenID provider (`oidc-provider`, OpenID
//! Certified) and the real Envoy in front of the real `tollgate` binary.
//! Tokens come from the provider's token endpoint by the client
//! credentials grant, as a user's curl gets them: JWTs for one resource,
//! opaque tokens for another. The routes are the Kyma tutorial's: every
//! request needs scope `read`, `POST /post` needs `write`.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::Response;
use support::oidc::{BASIC_CLIENT, JWT_RESOURCE, OPAQUE_RESOURCE, OidcProvider, POST_CLIENT};
use support::stack::upstream_header;

/// How long a test waits for a change (revocation, rotation, recovery) to
/// reach the answers, polling.
const CHANGE_LIMIT: Duration = Duration::from_secs(20);

fn config(issuer: &str, introspection_ttl: &str) -> String {
    format!(
        r#"server:
  grpc_listen: 127.0.0.1:0
  realm: httpbin
providers:
  - name: oidc
    issuer: {issuer}
    discovery: true
    audiences: [{JWT_RESOURCE}, {OPAQUE_RESOURCE}]
    jwks_cache: {{ unknown_kid_refetch_interval: 1s, retry_interval: 1s }}
    introspection:
      client_id: tollgate
      client_secret: {{ env: TOLLGATE_TEST_INTROSPECTION_SECRET }}
      timeout: 500ms
      cache: {{ ttl: {introspection_ttl} }}
defaults:
  upstream_headers:
    x-auth-client-id: client_id
    x-auth-scopes: scope
routes:
  - name: post-needs-write
    match: {{ methods: [POST], path: {{ exact: /post }} }}
    require: {{ scopes: [write] }}
  - name: everything-needs-read
    match: {{ path: {{ regex: "/.*" }} }}
    require: {{ scopes: [read] }}
"#
    )
}

/// The IdP and, in front of it, tollgate, an echo upstream and Envoy.
struct Stack {
    stack: support::stack::Stack,
    idp: OidcProvider,
}

impl Stack {
    async fn start(introspection_ttl: &str) -> Self {
        let idp = OidcProvider::start().await;
        let stack = support::stack::Stack::start(
            &config(idp.issuer(), introspection_ttl),
            &[("TOLLGATE_TEST_INTROSPECTION_SECRET", "tollgate-secret")],
        )
        .await;
        Stack { stack, idp }
    }

    async fn send(&self, method: &str, path: &str, token: Option<&str>) -> Response {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .iter()
            .map(|b| ("authorization", b.as_str()))
            .collect();
        self.stack.send(method, path, &headers).await
    }

    /// Panics with every log unless `method path` with `token` gets `status`.
    async fn expect(&self, method: &str, path: &str, token: Option<&str>, status: u16) -> Response {
        let response = self.send(method, path, token).await;
        if response.status != status {
            eprintln!("--- idp\n{}", self.idp.logs());
        }
        self.stack
            .assert_status(response, status, &format!("{method} {path}"))
    }

    /// Polls until `method path` with `token` gets `status`, for changes
    /// that take effect when a cache entry ends.
    async fn eventually(&self, method: &str, path: &str, token: &str, status: u16) {
        let deadline = tokio::time::Instant::now() + CHANGE_LIMIT;
        loop {
            let response = self.send(method, path, Some(token)).await;
            if response.status == status {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                self.expect(method, path, Some(token), status).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn jwt(&self, scope: &str) -> String {
        self.idp
            .client_credentials_token(BASIC_CLIENT, scope, Some(JWT_RESOURCE))
            .await
    }

    async fn opaque(&self, scope: &str) -> String {
        self.idp
            .client_credentials_token(POST_CLIENT, scope, Some(OPAQUE_RESOURCE))
            .await
    }
}

fn kid(jwt: &str) -> String {
    use base64::Engine as _;
    let header = jwt.split('.').next().unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap_or_default();
    let header: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    header["kid"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn jwt_and_opaque_tokens_from_a_real_idp_get_200_401_403() {
    let stack = Stack::start("60s").await;

    let missing = stack.expect("GET", "/get", None, 401).await;
    assert_eq!(
        missing.header("www-authenticate"),
        Some(r#"Bearer realm="httpbin""#)
    );
    let garbage = stack.expect("GET", "/get", Some("not-a-token"), 401).await;
    assert_eq!(
        garbage.header("www-authenticate"),
        Some(r#"Bearer realm="httpbin", error="invalid_token""#)
    );

    // JWT access tokens, verified with keys found through OIDC discovery.
    let jwt_read = stack.jwt("read").await;
    assert_eq!(
        jwt_read.split('.').count(),
        3,
        "the JWT resource issues JWTs"
    );
    let ok = stack.expect("GET", "/get?q=1", Some(&jwt_read), 200).await;
    assert_eq!(upstream_header(&ok, "x-auth-client-id")[0], "basic-client");
    let denied = stack.expect("POST", "/post", Some(&jwt_read), 403).await;
    assert_eq!(
        denied.header("www-authenticate"),
        Some(r#"Bearer realm="httpbin", error="insufficient_scope", scope="write""#)
    );
    stack
        .expect("POST", "/post", Some(&stack.jwt("read write").await), 200)
        .await;

    // Opaque tokens, introspected at the discovered endpoint.
    let opaque_read = stack.opaque("read").await;
    assert_ne!(opaque_read.split('.').count(), 3, "opaque, not a JWT");
    let ok = stack.expect("GET", "/get", Some(&opaque_read), 200).await;
    assert_eq!(upstream_header(&ok, "x-auth-client-id")[0], "post-client");
    assert_eq!(upstream_header(&ok, "x-auth-scopes")[0], "read");
    stack.expect("POST", "/post", Some(&opaque_read), 403).await;
    let opaque_write = stack.opaque("read write").await;
    stack
        .expect("POST", "/post", Some(&opaque_write), 200)
        .await;
    stack
        .expect("GET", "/anything", Some(&opaque_write), 200)
        .await;
}

#[tokio::test]
async fn a_revoked_token_is_refused_once_its_cache_entry_is_gone() {
    let stack = Stack::start("2s").await;
    let token = stack.opaque("read").await;
    stack.expect("GET", "/get", Some(&token), 200).await;
    stack.idp.revoke(&token).await;
    assert_eq!(stack.idp.introspect(&token).await["active"], false);
    stack.eventually("GET", "/get", &token, 401).await;
    let other = stack.opaque("read").await;
    stack.expect("GET", "/get", Some(&other), 200).await;
}

#[tokio::test]
async fn idp_key_rotation_is_picked_up_without_a_restart() {
    let mut stack = Stack::start("60s").await;
    let before = stack.jwt("read").await;
    stack.expect("GET", "/get", Some(&before), 200).await;

    stack.idp.rotate_key("key-2").await;
    let after = stack.jwt("read").await;
    assert_ne!(kid(&after), kid(&before), "the IdP signs with the new key");
    stack.expect("GET", "/get", Some(&after), 200).await;
    stack.expect("GET", "/get", Some(&before), 200).await;
}

#[tokio::test]
async fn an_idp_outage_keeps_cached_keys_refuses_uncached_opaque_tokens_and_recovers() {
    let mut stack = Stack::start("5m").await;
    let jwt = stack.jwt("read").await;
    let seen = stack.opaque("read").await;
    let unseen = stack.opaque("read").await;
    stack.expect("GET", "/get", Some(&jwt), 200).await;
    stack.expect("GET", "/get", Some(&seen), 200).await;

    stack.idp.stop().await;
    stack.expect("GET", "/get", Some(&jwt), 200).await;
    stack.expect("GET", "/get", Some(&seen), 200).await;
    // tollgate answers with a gRPC error; Envoy's failure mode (closed,
    // status_on_error 403) decides.
    stack.expect("GET", "/get", Some(&unseen), 403).await;
    // The log names the failing provider; stderr is read by another
    // thread, so the line may land a moment after the answer.
    stack
        .stack
        .tollgate
        .wait_for_log("introspection for provider oidc failed")
        .await;
    let logs = stack.stack.tollgate.logs();
    assert!(!logs.contains(&unseen), "the log repeats a token:\n{logs}");

    stack.idp.restart().await;
    // The provider keeps tokens in memory: a restart forgets them, so a
    // new token shows recovery.
    let fresh = stack.opaque("read").await;
    stack.eventually("GET", "/get", &fresh, 200).await;
    stack.expect("GET", "/get", Some(&jwt), 200).await;
}
