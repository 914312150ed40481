//! `envoy.service.auth.v3.Authorization/Check` end to end over gRPC: the real
//! server on 127.0.0.1:0, in-process, with tokens signed by the committed
//! test keys. (Remote keys are in `check_remote_keys.rs`, scope and claim
//! requirements in `check_requirements.rs`, routing in `check_routes.rs`,
//! what an allow sets and removes upstream in `check_upstream_headers.rs`,
//! where tokens are read from in `check_token_sources.rs`.)
//!
//! Every deny is checked for its exact HTTP status, gRPC code,
//! `WWW-Authenticate` and JSON body; every allow for the headers it sets
//! and removes upstream.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use envoy_types::pb::envoy::service::auth::v3::CheckResponse;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value, json};
use tollgate::devtoken::{DevToken, SigningKey};

use support::check::*;

const ISSUER_A: &str = "https://issuer-a.test";
const ISSUER_B: &str = "https://issuer-b.test";
const AUDIENCE: &str = "orders-api";
const REALM: &str = "tollgate-test";
/// What a missing token gets: a challenge with no `error` (RFC 6750 §3.1).
const CHALLENGE: &str = r#"Bearer realm="tollgate-test""#;
const INVALID_TOKEN: &str = r#"Bearer realm="tollgate-test", error="invalid_token""#;

const EC2_JWK: &str = include_str!("fixtures/keys/ec-p256-2.jwk.json");

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

/// [`assert_denied`] for a token that is present but not acceptable: 401
/// `invalid_token`, and `token` not repeated.
fn assert_invalid_token(response: &CheckResponse, token: &str) -> Denied {
    assert_denied(
        response,
        401,
        Some(INVALID_TOKEN),
        "invalid_token",
        Some(token),
    )
}

// ---------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------

fn rsa_key() -> SigningKey {
    signing_key("rsa-2048.pem", Algorithm::RS256, "rsa-1")
}

fn ec1_key() -> SigningKey {
    signing_key("ec-p256-1.pem", Algorithm::ES256, "ec-1")
}

fn ed_key() -> SigningKey {
    signing_key("ed25519.pem", Algorithm::EdDSA, "ed-1")
}

fn signing_key(file: &str, algorithm: Algorithm, kid: &str) -> SigningKey {
    SigningKey::from_pem(&fixture(file), algorithm, Some(kid.to_owned()))
        .unwrap_or_else(|e| panic!("loading {file}: {e}"))
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A token from `issuer` for [`AUDIENCE`] with `scopes`; `extra` claims
/// override the defaults (`null` removes nothing, it sets null).
fn mint(key: &SigningKey, issuer: &str, scopes: &[&str], extra: Value) -> String {
    let claims: Map<String, Value> = match extra {
        Value::Object(map) => map,
        Value::Null => Map::new(),
        other => panic!("extra claims must be an object, got {other}"),
    };
    DevToken {
        issuer: issuer.to_owned(),
        audience: vec![AUDIENCE.to_owned()],
        subject: "alice".to_owned(),
        client_id: "orders-ui".to_owned(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        lifetime: Duration::from_secs(300),
        claims,
    }
    .sign(key)
    .unwrap_or_else(|e| panic!("signing a test token: {e}"))
}

/// A valid provider-A token with scope `read`.
fn token_a() -> String {
    mint(&ec1_key(), ISSUER_A, &["read"], Value::Null)
}

fn b64(json: &Value) -> String {
    URL_SAFE_NO_PAD.encode(json.to_string())
}

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

/// Two static providers and one route per behaviour under test.
fn static_config() -> String {
    format!(
        r#"
server:
  grpc_listen: 127.0.0.1:0
  realm: {REALM}
token_sources:
  - header: authorization
    scheme: Bearer
  - header: x-octelium-auth
  - header: x-api-key
    prefix: "Token "
  - query: access_token
  - cookie: session
providers:
  - name: a
    issuer: {ISSUER_A}
    audiences: [{AUDIENCE}]
    jwks_file: jwks.json
  - name: b
    issuer: {ISSUER_B}
    audiences: [{AUDIENCE}]
    jwks: {{"keys": [{ec2}]}}
defaults:
  upstream_headers:
    x-auth-subject: sub
    x-auth-client-id: client_id
    x-auth-scopes: scope
routes:
  - name: public
    match: {{ path: {{ prefix: /public }} }}
    anonymous: true
  - name: admin
    match: {{ path: {{ prefix: /admin }} }}
    providers: [a]
    require: {{ scopes: [admin] }}
  - name: strip
    match: {{ path: {{ prefix: /strip }} }}
    providers: [a]
    remove_token_header: true
  - name: write
    match: {{ methods: [POST], path: {{ prefix: /orders }} }}
    providers: [a]
    require: {{ scopes: [write] }}
  - name: roles
    match: {{ path: {{ prefix: /roles }} }}
    providers: [a]
    require:
      claims:
        - claim: realm_access.roles
          contains: order-writer
        - claim: resource_access.{AUDIENCE}.roles
          contains_any: [editor, admin]
        - claim: azp
          equals: billing-service
    upstream_headers:
      x-auth-subject: sub
      x-auth-roles: realm_access.roles
  - name: b-only
    match: {{ path: {{ prefix: /b-only }} }}
    providers: [b]
  - name: tenants
    match: {{ hosts: ["*.tenants.example"], path: {{ prefix: /tenant }} }}
    providers: [a]
    upstream_headers:
      x-tenant-subject: sub
  - name: api
    match: {{ path: {{ prefix: /api }} }}
    providers: [a]
"#,
        ec2 = EC2_JWK.trim()
    )
}

// ---------------------------------------------------------------------------
// Valid tokens
// ---------------------------------------------------------------------------

#[tokio::test]
async fn valid_rs256_es256_and_eddsa_tokens_are_allowed_with_identity_headers() {
    let tollgate = Tollgate::start(&static_config()).await;
    for key in [rsa_key(), ec1_key(), ed_key()] {
        let token = mint(&key, ISSUER_A, &["read", "write"], Value::Null);
        let auth = bearer(&token);
        // A client-sent identity header must be overwritten, not appended to.
        let response = tollgate
            .check(get(
                "/api/items",
                &[("authorization", &auth), ("x-auth-subject", "mallory")],
            ))
            .await;
        let ok = allowed(&response);
        let headers = upstream_headers(ok);
        assert_eq!(
            header(&headers, "x-auth-subject"),
            Some("alice"),
            "{:?}",
            key.algorithm
        );
        assert_eq!(header(&headers, "x-auth-client-id"), Some("orders-ui"));
        assert_eq!(header(&headers, "x-auth-scopes"), Some("read write"));
        // The token stays on this route; identity headers that only other
        // routes set are removed so the client cannot supply them.
        assert_eq!(
            ok.headers_to_remove,
            ["x-auth-roles", "x-tenant-subject"],
            "{ok:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Missing and malformed tokens
// ---------------------------------------------------------------------------

#[tokio::test]
async fn missing_token_is_401_with_a_bare_challenge() {
    let tollgate = Tollgate::start(&static_config()).await;
    let response = tollgate.check(get("/api/items", &[])).await;
    let deny = assert_denied(&response, 401, Some(CHALLENGE), "unauthorized", None);
    assert_eq!(header(&deny.headers, "cache-control"), Some("no-store"));

    // Another auth scheme is not a bearer token: still "missing".
    let response = tollgate
        .check(get(
            "/api/items",
            &[("authorization", "Basic dXNlcjpwYXNz")],
        ))
        .await;
    assert_denied(&response, 401, Some(CHALLENGE), "unauthorized", None);
}

#[tokio::test]
async fn malformed_tokens_are_401_invalid_token() {
    let tollgate = Tollgate::start(&static_config()).await;
    let header = b64(&json!({"alg": "ES256", "kid": "ec-1"}));
    let payload = b64(&json!({"iss": ISSUER_A, "aud": AUDIENCE, "exp": now() + 300}));
    let jwe_header = b64(&json!({"alg": "RSA-OAEP", "enc": "A256GCM"}));
    let cases = [
        "garbage".to_owned(),
        format!("{header}.{payload}"),
        format!("{jwe_header}.ZW5jcnlwdGVka2V5.aXY.Y2lwaGVydGV4dA.dGFn"),
        format!("{header}.{payload}.c2ln.extra"),
        format!("{header}.bm90IGpzb24.c2ln"),
    ];
    for token in &cases {
        assert_invalid_token(&tollgate.check_bearer("/api/items", token).await, token);
    }
    // Not token68 at all, or an empty bearer.
    for value in ["Bearer a b", "Bearer", "Bearer {\"alg\":1}"] {
        let response = tollgate
            .check(get("/api/items", &[("authorization", value)]))
            .await;
        assert_denied(&response, 401, Some(INVALID_TOKEN), "invalid_token", None);
    }
}

// ---------------------------------------------------------------------------
// Signatures and registered claims
// ---------------------------------------------------------------------------

#[tokio::test]
async fn bad_signatures_are_401() {
    let tollgate = Tollgate::start(&static_config()).await;
    // ec-2's private key under ec-1's kid.
    let wrong_key = signing_key("ec-p256-2.pem", Algorithm::ES256, "ec-1");
    let forged = mint(&wrong_key, ISSUER_A, &["read"], Value::Null);

    // A valid token with its payload swapped for another subject.
    let good = token_a();
    let mut parts = good.split('.');
    let (header, _, signature) = (
        parts.next().expect("header"),
        parts.next().expect("payload"),
        parts.next().expect("signature"),
    );
    let payload = b64(&json!({
        "iss": ISSUER_A, "aud": AUDIENCE, "sub": "root", "scope": "read admin", "exp": now() + 300
    }));
    let tampered_payload = format!("{header}.{payload}.{signature}");

    // A valid token with a character in the middle of its signature changed.
    let mut bytes = good.clone().into_bytes();
    let middle = good.len() - signature.len() / 2;
    bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(bytes).expect("ASCII token");

    for token in [&forged, &tampered_payload, &flipped] {
        assert_invalid_token(&tollgate.check_bearer("/api/items", token).await, token);
    }
    // The untouched token is fine, so the denials above are about the changes.
    allowed(&tollgate.check_bearer("/api/items", &good).await);
}

#[tokio::test]
async fn expired_token_is_401_and_says_expired_without_internals() {
    let tollgate = Tollgate::start(&static_config()).await;
    let exp = now() - 120;
    let token = mint(
        &ec1_key(),
        ISSUER_A,
        &["read"],
        json!({"exp": exp, "iat": now() - 600}),
    );
    let deny = assert_invalid_token(&tollgate.check_bearer("/api/items", &token).await, &token);
    assert_eq!(deny.body["error_description"], "the access token expired");
    let members: Vec<&String> = deny.body.as_object().expect("JSON object").keys().collect();
    assert_eq!(
        members,
        ["error", "error_description"],
        "no extra detail in the body"
    );
    let exp = exp.to_string();
    for internal in [
        exp.as_str(),
        "\"exp\"",
        "leeway",
        "ec-1",
        "jsonwebtoken",
        "ExpiredSignature",
        ISSUER_A,
    ] {
        assert!(
            !deny.raw_body.contains(internal),
            "body leaks {internal:?}: {}",
            deny.raw_body
        );
    }

    // Inside the 30 s leeway it is still accepted.
    let token = mint(&ec1_key(), ISSUER_A, &["read"], json!({"exp": now() - 5}));
    allowed(&tollgate.check_bearer("/api/items", &token).await);
}

#[tokio::test]
async fn not_yet_valid_and_future_iat_are_401_beyond_leeway() {
    let tollgate = Tollgate::start(&static_config()).await;
    for claims in [json!({"nbf": now() + 300}), json!({"iat": now() + 300})] {
        let token = mint(&ec1_key(), ISSUER_A, &["read"], claims.clone());
        let deny = assert_invalid_token(&tollgate.check_bearer("/api/items", &token).await, &token);
        assert_eq!(
            deny.body["error_description"], "the access token is not valid",
            "{claims}"
        );
    }
    // Within the leeway both are clock skew, not an attack.
    for claims in [json!({"nbf": now() + 5}), json!({"iat": now() + 5})] {
        let token = mint(&ec1_key(), ISSUER_A, &["read"], claims);
        allowed(&tollgate.check_bearer("/api/items", &token).await);
    }
}

#[tokio::test]
async fn wrong_issuer_audience_and_claim_types_are_401() {
    let tollgate = Tollgate::start(&static_config()).await;
    let cases = [
        (
            "unknown issuer",
            mint(&ec1_key(), "https://evil.test", &["read"], Value::Null),
        ),
        (
            "wrong audience",
            mint(&ec1_key(), ISSUER_A, &["read"], json!({"aud": "other-api"})),
        ),
        (
            "no audience",
            mint(&ec1_key(), ISSUER_A, &["read"], json!({"aud": null})),
        ),
        (
            "string exp",
            mint(
                &ec1_key(),
                ISSUER_A,
                &["read"],
                json!({"exp": "9999999999"}),
            ),
        ),
        (
            "no exp",
            mint(&ec1_key(), ISSUER_A, &["read"], json!({"exp": null})),
        ),
        (
            "array iss",
            mint(&ec1_key(), ISSUER_A, &["read"], json!({"iss": [ISSUER_A]})),
        ),
    ];
    for (case, token) in &cases {
        let response = tollgate.check_bearer("/api/items", token).await;
        let deny = denied(&response);
        assert_eq!(deny.status, 401, "{case}: {response:?}");
        assert_invalid_token(&response, token);
    }
}

#[tokio::test]
async fn unknown_kid_with_static_keys_is_401() {
    let tollgate = Tollgate::start(&static_config()).await;
    let key = signing_key("ec-p256-1.pem", Algorithm::ES256, "no-such-kid");
    let token = mint(&key, ISSUER_A, &["read"], Value::Null);
    assert_invalid_token(&tollgate.check_bearer("/api/items", &token).await, &token);
}

#[tokio::test]
async fn alg_none_in_any_casing_is_401() {
    let tollgate = Tollgate::start(&static_config()).await;
    let payload = b64(&json!({
        "iss": ISSUER_A, "aud": AUDIENCE, "sub": "alice", "scope": "read admin", "exp": now() + 300
    }));
    for alg in ["none", "None", "NONE", "nOnE"] {
        for kid in [None, Some("ec-1")] {
            let mut header = json!({"alg": alg, "typ": "JWT"});
            if let Some(kid) = kid {
                header["kid"] = json!(kid);
            }
            let header = b64(&header);
            for signature in ["", "c2lnbmF0dXJl"] {
                let token = format!("{header}.{payload}.{signature}");
                assert_invalid_token(&tollgate.check_bearer("/api/items", &token).await, &token);
                assert_invalid_token(&tollgate.check_bearer("/admin", &token).await, &token);
            }
        }
    }
}

#[tokio::test]
async fn hs256_signed_with_the_rsa_public_key_is_401() {
    let tollgate = Tollgate::start(&static_config()).await;
    let pem = rsa_public_pem();
    assert!(
        pem.starts_with("-----BEGIN PUBLIC KEY-----\nMIIBIjAN"),
        "an RSA 2048 SPKI: {pem}"
    );
    for (secret, kid) in [
        (pem.clone(), Some("rsa-1")),
        (pem.clone(), None),
        (pem.trim_end().to_owned(), Some("rsa-1")),
    ] {
        let key = SigningKey::from_pem(secret.as_bytes(), Algorithm::HS256, kid.map(str::to_owned))
            .expect("HMAC key");
        let token = mint(&key, ISSUER_A, &["read", "admin"], Value::Null);
        assert_invalid_token(&tollgate.check_bearer("/admin", &token).await, &token);
    }
}

// ---------------------------------------------------------------------------
// What a deny says
// ---------------------------------------------------------------------------

#[tokio::test]
async fn deny_bodies_never_echo_the_token() {
    let tollgate = Tollgate::start(&static_config()).await;
    let valid = token_a();
    let expired = mint(
        &ec1_key(),
        ISSUER_A,
        &["read"],
        json!({"exp": now() - 3600}),
    );
    let long = "A".repeat(20 * 1024);
    for (path, token) in [
        ("/admin", valid.as_str()),
        ("/api/x", expired.as_str()),
        ("/b-only/x", valid.as_str()),
        ("/api/x", long.as_str()),
        ("/nowhere", valid.as_str()),
    ] {
        let response = tollgate.check_bearer(path, token).await;
        let deny = denied(&response);
        assert!(matches!(deny.status, 401 | 403), "{path}: {response:?}");
        let members: Vec<&String> = deny.body.as_object().expect("JSON object").keys().collect();
        assert_eq!(members, ["error", "error_description"], "{path}");
        assert!(
            !format!("{response:?}").contains(token),
            "{path}: token echoed"
        );
    }
}
