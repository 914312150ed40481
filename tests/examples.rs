//! The worked examples in `config/examples/`: each loads with
//! `tollgate check-config` without warnings, and each runs through Envoy
//! with tokens that should pass and fail. Only the key sources are pointed
//! at test infrastructure (the real OpenID provider, or committed test
//! keys); routes, token sources and headers run exactly as written.

mod support;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use figment::Figment;
use figment::providers::{Format as _, Yaml};
use serde_json::{Value, json};

use support::oidc::{BASIC_CLIENT, JWT_RESOURCE, OPAQUE_RESOURCE, OidcProvider, POST_CLIENT};
use support::stack::{Stack, upstream_header};
use support::tokens::Token;
use support::{repo_path, tollgate_command};

/// Every example, with the environment its secrets come from.
const EXAMPLES: &[(&str, &[(&str, &str)])] = &[
    (
        "kyma-introspection",
        &[("INTROSPECTION_AUTHORIZATION", "Basic dGVzdDp0ZXN0")],
    ),
    ("keycloak", &[]),
    ("octelium", &[]),
    ("oauth2-proxy", &[]),
    ("oracle-idcs", &[]),
];

fn example_dir(name: &str) -> PathBuf {
    repo_path("config/examples").join(name)
}

#[test]
fn every_example_is_listed_loads_cleanly_and_has_a_walk_through() {
    let mut found: Vec<String> = std::fs::read_dir(repo_path("config/examples"))
        .expect("config/examples exists")
        .map(|entry| entry.expect("a directory entry").file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .collect();
    found.sort();
    let mut listed: Vec<String> = EXAMPLES.iter().map(|(n, _)| (*n).to_owned()).collect();
    listed.sort();
    assert_eq!(found, listed, "each example needs an entry in EXAMPLES");

    for (name, env) in EXAMPLES {
        let dir = example_dir(name);
        let readme = std::fs::read_to_string(dir.join("README.md"))
            .unwrap_or_else(|e| panic!("{name}/README.md: {e}"));
        assert!(readme.contains("tollgate.yaml"), "{name}/README.md");
        let config = dir.join("tollgate.yaml");
        let output = tollgate_command(
            [std::ffi::OsStr::new("check-config"), config.as_os_str()],
            env,
        )
        .output()
        .unwrap_or_else(|e| panic!("running check-config: {e}"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{name}: {stderr}");
        assert!(!stderr.contains("warning"), "{name} warns: {stderr}");
    }
}

/// The example's config as data, to point its key sources elsewhere.
fn example(name: &str) -> Value {
    Figment::from(Yaml::file_exact(example_dir(name).join("tollgate.yaml")))
        .extract()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The string at `pointer` (`/providers/0/issuer`) in a config.
fn text(config: &Value, pointer: &str) -> String {
    config
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer}"))
        .to_owned()
}

/// Listens on loopback, and serialises (JSON is YAML).
fn serve_locally(mut config: Value) -> String {
    config["server"]["grpc_listen"] = json!("127.0.0.1:0");
    config.to_string()
}

fn fixture(name: &str) -> PathBuf {
    repo_path("tests/fixtures/keys").join(name)
}

/// Replaces a provider's key source with a committed JWKS file.
fn with_fixture_keys(provider: &mut Value, jwks: &Path) {
    let provider = provider.as_object_mut().expect("a provider is a mapping");
    for source in ["discovery", "jwks_uri", "jwks", "jwks_file"] {
        provider.remove(source);
    }
    provider.insert("jwks_file".into(), json!(jwks.display().to_string()));
}

/// `key`'s token from `issuer` for `audience`, for a service account with
/// an empty `client_id` and no scope: `claims` add what a route needs.
fn mint(key: Token, issuer: &str, audience: &str, claims: Value) -> String {
    key.issuer(issuer)
        .audience(audience)
        .subject("service-account")
        .client_id("")
        .claims(claims)
        .sign()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn kyma_introspection_answers_as_the_tutorial_says() {
    let idp = OidcProvider::start().await;
    let mut config = example("kyma-introspection");
    config["providers"][0]["introspection"]["endpoint"] = json!(idp.introspection_endpoint());
    let authorization = format!("Basic {}", STANDARD.encode("tollgate:tollgate-secret"));
    let stack = Stack::start(
        &serve_locally(config),
        &[("INTROSPECTION_AUTHORIZATION", &authorization)],
    )
    .await;
    let read = idp
        .client_credentials_token(POST_CLIENT, "read", Some(OPAQUE_RESOURCE))
        .await;
    let write = idp
        .client_credentials_token(POST_CLIENT, "write", Some(OPAQUE_RESOURCE))
        .await;
    let (read, write) = (bearer(&read), bearer(&write));

    let ok = stack
        .expect("GET", "/headers", &[("authorization", &read)], 200)
        .await;
    assert_eq!(upstream_header(&ok, "x-auth-client-id"), ["post-client"]);
    assert!(upstream_header(&ok, "authorization").is_empty());
    stack
        .expect("POST", "/post", &[("authorization", &write)], 200)
        .await;
    stack.expect("GET", "/headers", &[], 401).await;
    let refused = stack
        .expect("POST", "/post", &[("authorization", &read)], 403)
        .await;
    assert_eq!(
        refused.header("www-authenticate"),
        Some(r#"Bearer realm="httpbin", error="insufficient_scope", scope="write""#)
    );
    // No rule for other methods: refused.
    stack
        .expect("DELETE", "/anything", &[("authorization", &write)], 403)
        .await;
}

#[tokio::test]
async fn keycloak_realms_scopes_and_roles() {
    let mut config = example("keycloak");
    let issuers: Vec<String> = config["providers"]
        .as_array()
        .expect("providers")
        .iter()
        .map(|p| p["issuer"].as_str().expect("issuer").to_owned())
        .collect();
    for provider in config["providers"].as_array_mut().expect("providers") {
        with_fixture_keys(provider, &fixture("jwks.json"));
    }
    let stack = Stack::start(&serve_locally(config), &[]).await;
    let token = |issuer: &str, audience: &str, claims: Value| {
        bearer(&mint(Token::rs256(), issuer, audience, claims))
    };
    let (prod, test) = (&issuers[0], &issuers[1]);

    let reader = token(
        prod,
        "orders-api",
        json!({"azp": "billing", "scope": "orders/read", "realm_access": {"roles": ["reporting"]}}),
    );
    let ok = stack
        .expect("GET", "/orders/7", &[("authorization", &reader)], 200)
        .await;
    assert_eq!(upstream_header(&ok, "x-auth-client-id"), ["billing"]);
    assert_eq!(upstream_header(&ok, "x-auth-roles"), ["reporting"]);
    stack
        .expect("GET", "/reports/q3", &[("authorization", &reader)], 200)
        .await;
    // Scope and client role are both needed to write.
    stack
        .expect("POST", "/orders", &[("authorization", &reader)], 403)
        .await;
    let writer = token(
        test,
        "orders-api",
        json!({"scope": "orders/read orders/write", "resource_access": {"orders-api": {"roles": ["editor"]}}}),
    );
    stack
        .expect("POST", "/orders", &[("authorization", &writer)], 200)
        .await;
    let no_role = token(test, "orders-api", json!({"scope": "orders/write"}));
    stack
        .expect("POST", "/orders", &[("authorization", &no_role)], 403)
        .await;
    // Reports take production tokens only, with the realm role.
    let test_reporter = token(
        test,
        "orders-api",
        json!({"realm_access": {"roles": ["reporting"]}}),
    );
    stack
        .expect(
            "GET",
            "/reports/q3",
            &[("authorization", &test_reporter)],
            401,
        )
        .await;
    // Another API's token, and another realm's, are refused.
    let other_api = token(prod, "billing-api", json!({"scope": "orders/read"}));
    stack
        .expect("GET", "/orders/7", &[("authorization", &other_api)], 401)
        .await;
    let other_realm = token(
        "https://loginproxy.gov.bc.ca/auth/realms/other",
        "orders-api",
        json!({"scope": "orders/read"}),
    );
    stack
        .expect("GET", "/orders/7", &[("authorization", &other_realm)], 401)
        .await;
}

#[tokio::test]
async fn octelium_tokens_in_either_header() {
    let mut config = example("octelium");
    let issuer = text(&config, "/providers/0/issuer");
    let audience = text(&config, "/providers/0/audiences/0");
    with_fixture_keys(&mut config["providers"][0], &fixture("jwks.json"));
    let stack = Stack::start(&serve_locally(config), &[]).await;
    let token = mint(Token::es256(), &issuer, &audience, json!({}));
    let other = mint(
        Token::es256(),
        &issuer,
        &audience,
        json!({"jti": "another"}),
    );
    let host = ("host", "my-api.example.com");

    for header in [
        ("authorization", bearer(&token)),
        ("x-octelium-auth", token.clone()),
    ] {
        let ok = stack
            .expect("GET", "/", &[host, (header.0, &header.1)], 200)
            .await;
        assert!(
            upstream_header(&ok, header.0).is_empty(),
            "{header:?} stripped"
        );
    }
    stack.expect("GET", "/", &[host], 401).await;
    let both = bearer(&token);
    stack
        .expect(
            "GET",
            "/",
            &[host, ("authorization", &both), ("x-octelium-auth", &other)],
            400,
        )
        .await;
    // Another host has no route.
    stack
        .expect(
            "GET",
            "/",
            &[("host", "elsewhere.example.com"), ("authorization", &both)],
            403,
        )
        .await;
}

#[tokio::test]
async fn oauth2_proxy_headers_from_a_discovered_issuer() {
    let idp = OidcProvider::start().await;
    let mut config = example("oauth2-proxy");
    config["providers"][0]["issuer"] = json!(idp.issuer());
    config["providers"][0]["audiences"] = json!([JWT_RESOURCE]);
    let stack = Stack::start(&serve_locally(config), &[]).await;
    let token = idp
        .client_credentials_token(BASIC_CLIENT, "read", Some(JWT_RESOURCE))
        .await;
    let auth = bearer(&token);
    let host = ("host", "httpbin.example.com");

    let ok = stack
        .expect(
            "GET",
            "/headers",
            &[
                host,
                ("authorization", &auth),
                ("x-auth-request-user", "mallory"),
            ],
            200,
        )
        .await;
    assert_eq!(
        upstream_header(&ok, "x-auth-request-user"),
        ["basic-client"]
    );
    assert_eq!(
        upstream_header(&ok, "x-auth-request-access-token"),
        [token.as_str()]
    );
    assert_eq!(upstream_header(&ok, "authorization"), [auth.as_str()]);

    let refused = stack.expect("GET", "/headers", &[host], 401).await;
    assert_eq!(refused.json()["error"], "unauthorized");
    let other_audience = idp
        .client_credentials_token(BASIC_CLIENT, "read", Some(OPAQUE_RESOURCE))
        .await;
    stack
        .expect(
            "GET",
            "/headers",
            &[host, ("authorization", &bearer(&other_audience))],
            401,
        )
        .await;
}

#[tokio::test]
async fn oracle_idcs_static_keys_and_the_model_deployment_header() {
    let mut config = example("oracle-idcs");
    let issuer = text(&config, "/providers/0/issuer");
    let audience = text(&config, "/providers/0/audiences/0");
    let deployment = text(&config, "/routes/0/static_headers/model_deployment");
    // The same shape as IDCS publishes (key_ops, x5c), with a key we hold.
    with_fixture_keys(&mut config["providers"][0], &fixture("idcs-style.json"));
    let stack = Stack::start(&serve_locally(config), &[]).await;
    // The RSA fixture key under the kid the IDCS-shaped JWKS gives it.
    let key = || Token::rs256().kid("SIGNING_KEY");
    let token = bearer(&mint(
        key(),
        &issuer,
        &audience,
        json!({"client_id": "odsc-client"}),
    ));

    let ok = stack
        .expect(
            "POST",
            "/predict",
            &[
                ("authorization", &token),
                ("model_deployment", "https://evil.example"),
            ],
            200,
        )
        .await;
    assert_eq!(
        upstream_header(&ok, "model_deployment"),
        [deployment.as_str()]
    );
    let wrong_audience = bearer(&mint(key(), &issuer, "another-gateway", json!({})));
    stack
        .expect(
            "POST",
            "/predict",
            &[("authorization", &wrong_audience)],
            401,
        )
        .await;
    let wrong_issuer = bearer(&mint(
        key(),
        "https://identity.oraclecloud.com",
        &audience,
        json!({}),
    ));
    stack
        .expect("POST", "/predict", &[("authorization", &wrong_issuer)], 401)
        .await;
    stack
        .expect("GET", "/predict", &[("authorization", &token)], 403)
        .await;
}
