//! A route's `require`: scopes (from `scope` or an `scp` array) and claim
//! conditions on Keycloak-shaped tokens (`realm_access`, `resource_access`,
//! `azp`), and the 403 `insufficient_scope` a token that falls short gets.
//! tollgate runs in-process on 127.0.0.1:0 with static keys from
//! `tests/fixtures/keys/`.

mod support;

use serde_json::{Value, json};

use support::check::*;
use support::tokens::Token;

/// `ec-1`'s token from issuer A for [`AUDIENCE`]: `alice` through client
/// `orders-ui`, with `scopes`.
fn token_a<'a>(scopes: impl AsRef<[&'a str]>) -> Token {
    issued_by(ISSUER_A, Token::es256()).scopes(scopes)
}

#[tokio::test]
async fn missing_scope_is_403_insufficient_scope_naming_it() {
    let tollgate = Tollgate::start_in_realm(&format!(
        r#"
providers:
  - name: a
    issuer: {ISSUER_A}
    audiences: [{AUDIENCE}]
    jwks_file: jwks.json
routes:
  - name: write
    match: {{ methods: [POST], path: {{ prefix: /orders }} }}
    providers: [a]
    require: {{ scopes: [write] }}
"#
    ))
    .await;
    let post_order = |token: &str| {
        let auth = bearer(token);
        request(
            "POST",
            "api.example.com",
            "/orders/1",
            &[("authorization", &auth)],
        )
    };
    let token = token_a(["read"]).sign();
    let response = tollgate.check(post_order(&token)).await;
    assert_denied(
        &response,
        403,
        Some(r#"Bearer realm="tollgate-test", error="insufficient_scope", scope="write""#),
        "insufficient_scope",
        Some(&token),
    );

    let token = token_a(["read", "write"]).sign();
    allowed(&tollgate.check(post_order(&token)).await);
    // `scp` as an array counts too (Okta, Azure AD).
    let token = token_a([]).claim("scp", json!(["write"])).sign();
    allowed(&tollgate.check(post_order(&token)).await);
}

/// `/roles` needs Keycloak's realm role `order-writer`, a client role
/// `editor` or `admin` for [`AUDIENCE`], and `azp` `billing-service`; it
/// sends its own identity headers, in place of the defaults.
fn keycloak_config() -> String {
    format!(
        r#"
providers:
  - name: a
    issuer: {ISSUER_A}
    audiences: [{AUDIENCE}]
    jwks_file: jwks.json
defaults:
  upstream_headers:
    x-auth-subject: sub
    x-auth-client-id: client_id
    x-auth-scopes: scope
routes:
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
"#
    )
}

fn keycloak_claims() -> Value {
    json!({
        "realm_access": {"roles": ["order-writer", "viewer"]},
        "resource_access": {AUDIENCE: {"roles": ["editor"]}},
        "azp": "billing-service",
    })
}

#[tokio::test]
async fn keycloak_claim_requirements_pass() {
    let tollgate = Tollgate::start_in_realm(&keycloak_config()).await;
    let token = token_a([]).claims(keycloak_claims()).sign();
    let response = tollgate.check_bearer("/roles/x", &token).await;
    let headers = upstream_headers(allowed(&response));
    assert_eq!(
        header(&headers, "x-auth-roles"),
        Some("order-writer,viewer")
    );
    assert_eq!(header(&headers, "x-auth-subject"), Some("alice"));
    assert!(
        !headers.contains_key("x-auth-client-id"),
        "route headers replace the defaults"
    );
}

#[tokio::test]
async fn keycloak_claim_requirements_fail_with_403() {
    let tollgate = Tollgate::start_in_realm(&keycloak_config()).await;
    let mut cases = Vec::new();
    let mut no_realm_role = keycloak_claims();
    no_realm_role["realm_access"]["roles"] = json!(["viewer"]);
    cases.push(("realm role missing", no_realm_role));
    let mut no_client_role = keycloak_claims();
    no_client_role["resource_access"][AUDIENCE]["roles"] = json!(["viewer"]);
    cases.push(("client role missing", no_client_role));
    let mut other_client = keycloak_claims();
    other_client["resource_access"] = json!({"other-api": {"roles": ["editor"]}});
    cases.push(("role for another client", other_client));
    let mut wrong_azp = keycloak_claims();
    wrong_azp["azp"] = json!("billing-service-2");
    cases.push(("azp differs", wrong_azp));
    let mut azp_array = keycloak_claims();
    azp_array["azp"] = json!(["billing-service"]);
    cases.push(("azp is an array", azp_array));
    for (case, claims) in cases {
        let token = token_a([]).claims(claims).sign();
        let response = tollgate.check_bearer("/roles/x", &token).await;
        let deny = denied(&response);
        assert_eq!(deny.status, 403, "{case}");
        assert_denied(
            &response,
            403,
            Some(INSUFFICIENT_SCOPE_CHALLENGE),
            "insufficient_scope",
            Some(&token),
        );
    }
}
