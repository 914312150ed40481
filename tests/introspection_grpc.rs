//! Opaque tokens over gRPC: tollgate in-process, a test IdP on 127.0.0.1:0
//! whose RFC 7662 endpoint answers from a table, and `Check` called as
//! Envoy calls it. The real OpenID provider and Envoy are in
//! `e2e_oidc.rs`; this file pins down the paths a token takes, the
//! answers and the faults.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use support::check::*;
use support::idp::{INTROSPECTION_PATH, Idp, IdpMode, form_value, jwks_of};
use support::tokens::Token;

const EC1_JWK: &str = include_str!("fixtures/keys/ec-p256-1.jwk.json");
const INVALID_TOKEN: &str = r#"Bearer error="invalid_token""#;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Provider `idp` verifies its JWTs with the IdP's JWKS and introspects
/// everything else at its discovered endpoint; `GET /` needs `read`,
/// `POST /post` needs `write` (the Kyma tutorial's rules).
fn config(idp: &Idp, introspection: &str) -> String {
    format!(
        r#"
server:
  grpc_listen: 127.0.0.1:0
providers:
  - name: idp
    issuer: {issuer}
    audiences: [orders]
    discovery: true
    introspection:
      client_id: tollgate
      client_secret: {{file: secret.txt}}
{introspection}
routes:
  - name: write
    match: {{ methods: [POST], path: {{ exact: /post }} }}
    require: {{ scopes: [write] }}
  - name: read
    match: {{ path: {{ regex: "/.*" }} }}
    require: {{ scopes: [read] }}
"#,
        issuer = idp.base_url(),
    )
}

async fn start(idp: &Idp, introspection: &str) -> Tollgate {
    let dir = support::ScratchDir::new("introspection");
    std::fs::write(dir.join("secret.txt"), "tollgate-secret\n").unwrap();
    let server = support::InProcess::start(&config(idp, introspection), dir.path()).await;
    let client =
        envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient::new(
            server.channel().clone(),
        );
    // The secret was read when the config loaded; the directory may go.
    drop(dir);
    let tollgate = Tollgate { server, client };
    tollgate.wait_ready().await;
    tollgate
}

async fn idp() -> Idp {
    Idp::start(jwks_of(&[EC1_JWK])).await
}

fn active(scope: &str) -> serde_json::Value {
    json!({"active": true, "scope": scope, "aud": ["orders"], "client_id": "svc", "sub": "svc-sub", "exp": now() + 600, "token_type": "Bearer"})
}

fn post(path: &str, token: &str) -> envoy_types::pb::envoy::service::auth::v3::CheckRequest {
    request(
        "POST",
        "api.example.com",
        path,
        &[("authorization", &bearer(token))],
    )
}

/// A JWT from the test IdP's issuer, signed with its key `ec-1`.
fn mint(idp: &Idp, subject: &str) -> String {
    Token::es256()
        .issuer(idp.base_url())
        .audience("orders")
        .subject(subject)
        .client_id("svc")
        .scopes(["read"])
        .sign()
}

#[tokio::test]
async fn opaque_tokens_are_judged_by_the_introspection_answer() {
    let idp = idp().await;
    idp.set_introspection("reader-token", active("read"));
    idp.set_introspection("writer-token", active("read write"));
    let tollgate = start(&idp, "").await;

    let ok = tollgate.check_bearer("/orders?id=1", "reader-token").await;
    let headers = upstream_headers(allowed(&ok));
    assert_eq!(header(&headers, "x-auth-client-id"), Some("svc"));
    assert_eq!(header(&headers, "x-auth-subject"), Some("svc-sub"));
    assert_eq!(header(&headers, "x-auth-scopes"), Some("read"));

    let refused = tollgate.check(post("/post", "reader-token")).await;
    assert_denied(
        &refused,
        403,
        Some(r#"Bearer error="insufficient_scope", scope="write""#),
        "insufficient_scope",
        Some("reader-token"),
    );
    allowed(&tollgate.check(post("/post", "writer-token")).await);

    let unknown = tollgate.check_bearer("/", "never-issued").await;
    assert_denied(
        &unknown,
        401,
        Some(INVALID_TOKEN),
        "invalid_token",
        Some("never-issued"),
    );
}

#[tokio::test]
async fn the_request_carries_the_token_hint_and_client_credentials() {
    let idp = idp().await;
    idp.set_introspection("tok~en+/==", active("read"));
    let tollgate = start(&idp, "").await;
    allowed(&tollgate.check_bearer("/", "tok~en+/==").await);
    let (authorization, form) = idp.last_introspection().expect("an introspection call");
    assert_eq!(form_value(&form, "token").as_deref(), Some("tok~en+/=="));
    assert_eq!(
        form_value(&form, "token_type_hint").as_deref(),
        Some("access_token")
    );
    assert_eq!(form_value(&form, "client_secret"), None);
    let expected = format!("Basic {}", STANDARD.encode("tollgate:tollgate-secret"));
    assert_eq!(authorization.as_deref(), Some(expected.as_str()));
}

#[tokio::test]
async fn repeat_checks_are_served_from_the_cache() {
    let idp = idp().await;
    idp.set_introspection("cached", active("read"));
    let tollgate = start(&idp, "").await;
    for _ in 0..5 {
        allowed(&tollgate.check_bearer("/", "cached").await);
        assert_denied(
            &tollgate.check_bearer("/", "inactive").await,
            401,
            Some(INVALID_TOKEN),
            "invalid_token",
            None,
        );
    }
    assert_eq!(idp.hits(INTROSPECTION_PATH), 2, "one call per token");
}

#[tokio::test]
async fn jwts_of_the_provider_are_verified_locally_without_a_call() {
    let idp = idp().await;
    let tollgate = start(&idp, "").await;
    let token = mint(&idp, "svc");
    allowed(&tollgate.check_bearer("/", &token).await);
    assert_eq!(idp.hits(INTROSPECTION_PATH), 0);
}

#[tokio::test]
async fn introspect_jwts_refuses_a_revoked_jwt() {
    let idp = idp().await;
    let tollgate = start(&idp, "      introspect_jwts: true").await;
    let live = mint(&idp, "live");
    let revoked = mint(&idp, "revoked");
    idp.set_introspection(&live, active("read"));
    let ok = tollgate.check_bearer("/", &live).await;
    assert_eq!(
        header(&upstream_headers(allowed(&ok)), "x-auth-subject"),
        Some("live"),
        "the JWT's own claims count, not the introspection answer's"
    );
    assert_denied(
        &tollgate.check_bearer("/", &revoked).await,
        401,
        Some(INVALID_TOKEN),
        "invalid_token",
        Some(&revoked),
    );
    assert_eq!(idp.hits(INTROSPECTION_PATH), 2);
}

#[tokio::test]
async fn an_expired_or_foreign_answer_is_refused() {
    let idp = idp().await;
    let mut expired = active("read");
    expired["exp"] = json!(now() - 3600);
    idp.set_introspection("past-exp", expired);
    let mut foreign = active("read");
    foreign["iss"] = json!("https://someone-else.example");
    idp.set_introspection("foreign", foreign);
    let mut refresh = active("read");
    refresh["token_type"] = json!("refresh_token");
    idp.set_introspection("refresh", refresh);
    let tollgate = start(&idp, "").await;
    for token in ["past-exp", "foreign", "refresh"] {
        assert_denied(
            &tollgate.check_bearer("/", token).await,
            401,
            Some(INVALID_TOKEN),
            "invalid_token",
            Some(token),
        );
    }
}

#[tokio::test]
async fn an_idp_that_cannot_answer_is_a_fault_never_an_allow() {
    let idp = idp().await;
    idp.set_introspection("good", active("read"));
    let tollgate = start(&idp, "      timeout: 300ms").await;
    idp.set_mode(IdpMode::Fail);
    let status = tollgate
        .try_check(get("/", &[("authorization", &bearer("good"))]))
        .await
        .expect_err("a failing endpoint must be a gRPC error");
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert!(
        !status.message().contains("good"),
        "the status names no token: {status:?}"
    );

    idp.set_mode(IdpMode::Hang);
    let status = tollgate
        .try_check(get("/", &[("authorization", &bearer("good"))]))
        .await
        .expect_err("a hanging endpoint must be a gRPC error");
    assert_eq!(status.code(), tonic::Code::Unavailable);

    idp.set_mode(IdpMode::Serve);
    allowed(&tollgate.check_bearer("/", "good").await);
}

#[tokio::test]
async fn a_jws_refused_for_its_header_is_never_sent_to_the_endpoint() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let idp = idp().await;
    let tollgate = start(&idp, "").await;
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","crit":["x"],"x":1}"#);
    let payload = URL_SAFE_NO_PAD.encode(r#"{"iss":"https://someone-else.example"}"#);
    let token = format!("{header}.{payload}.c2ln");
    assert_denied(
        &tollgate.check_bearer("/", &token).await,
        401,
        Some(INVALID_TOKEN),
        "invalid_token",
        Some(&token),
    );
    assert_eq!(idp.hits(INTROSPECTION_PATH), 0);
}
