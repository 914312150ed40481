//! The authorizer's decisions, with static keys and no network.

use std::path::Path;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde_json::{Map, json};

use super::*;
use crate::devtoken::{DevToken, SigningKey};

const ISSUER: &str = "https://idp.test";

fn authorizer(routes: &str) -> Authorizer {
    Authorizer::new(authorizer_config(routes), reqwest::Client::new())
}

fn authorizer_config(routes: &str) -> Config {
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys/jwks.json");
    let yaml = format!(
        "providers:\n  - {{name: idp, issuer: '{ISSUER}', audiences: [api], jwks_file: '{}'}}\n\
         token_sources: [{{header: authorization, scheme: Bearer}}, {{header: x-token}}]\n\
         defaults:\n  upstream_headers: {{x-sub: sub, x-client: client_id}}\n\
         routes:\n{routes}",
        keys.display()
    );
    Config::from_yaml(&yaml, Path::new(".")).unwrap()
}

fn token(scopes: &[&str], claims: serde_json::Value) -> String {
    let pem = include_bytes!("../../tests/fixtures/keys/ec-p256-1.pem");
    let key = SigningKey::from_pem(pem, Algorithm::ES256, Some("ec-1".into())).unwrap();
    let serde_json::Value::Object(claims) = claims else {
        panic!("claims must be an object")
    };
    DevToken {
        issuer: ISSUER.into(),
        audience: vec!["api".into()],
        subject: "svc-1".into(),
        client_id: "client-1".into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        lifetime: Duration::from_secs(300),
        claims,
    }
    .sign(&key)
    .unwrap()
}

fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> AuthzRequest {
    AuthzRequest {
        host: Some("api.test".into()),
        method: method.into(),
        path: crate::routes::normalize_path(path),
        query: path.split_once('?').map(|(_, q)| q.to_owned()),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn decide(authorizer: &Authorizer, request: &AuthzRequest) -> Decision {
    authorizer.check(request).await.unwrap()
}

fn denied(decision: &Decision) -> DenyReason {
    match decision {
        Decision::Deny(denial) => denial.reason,
        Decision::Allow(_) => panic!("expected a deny, got {decision:?}"),
    }
}

fn granted(decision: Decision) -> Grant {
    match decision {
        Decision::Allow(grant) => grant,
        Decision::Deny(denial) => panic!("expected an allow, got {denial:?}"),
    }
}

const HTTPBIN: &str = concat!(
    "  - {name: post, match: {methods: [POST], path: {exact: /post}}, require: {scopes: [write]}}\n",
    "  - {name: get, match: {methods: [GET], path: {prefix: /}}, require: {scopes: [read]}}\n",
);

#[tokio::test]
async fn the_httpbin_scenario() {
    let authz = authorizer(HTTPBIN);
    let read = bearer(&token(&["read"], json!({})));
    let write = bearer(&token(&["write"], json!({})));

    assert_eq!(
        denied(&decide(&authz, &request("GET", "/get", &[])).await),
        DenyReason::MissingToken
    );
    let grant = granted(decide(&authz, &request("GET", "/get", &[("authorization", &read)])).await);
    assert_eq!(grant.route.as_deref(), Some("get"));
    let caller = grant.caller.unwrap();
    assert_eq!(caller.subject.as_deref(), Some("svc-1"));
    assert_eq!(caller.client_id.as_deref(), Some("client-1"));

    let post_read = decide(
        &authz,
        &request("POST", "/post", &[("authorization", &read)]),
    )
    .await;
    assert_eq!(denied(&post_read), DenyReason::InsufficientScope);
    let Decision::Deny(denial) = post_read else {
        unreachable!()
    };
    assert_eq!(denial.scope_hint.as_deref(), Some("write"));
    granted(
        decide(
            &authz,
            &request("POST", "/post", &[("authorization", &write)]),
        )
        .await,
    );
    // Routes are first-match: a GET to /post is the `get` route.
    granted(
        decide(
            &authz,
            &request("GET", "/post", &[("authorization", &read)]),
        )
        .await,
    );
}

#[tokio::test]
async fn upstream_headers_are_set_or_removed() {
    let authz = authorizer("  - {name: r, remove_token_header: true}\n");
    let no_client = bearer(&token(&[], json!({"client_id": null})));
    let grant = granted(
        decide(
            &authz,
            &request("GET", "/", &[("authorization", &no_client)]),
        )
        .await,
    );
    assert_eq!(
        grant.upstream.set,
        [("x-sub".to_owned(), "svc-1".to_owned())]
    );
    // The absent claim's header is removed so a client cannot supply it;
    // the token headers go too.
    assert_eq!(
        grant.upstream.remove,
        ["x-client", "authorization", "x-token"]
    );
}

#[tokio::test]
async fn anonymous_routes_strip_identity_headers() {
    let authz = authorizer("  - {name: open, anonymous: true}\n");
    let grant = granted(decide(&authz, &request("GET", "/", &[("x-sub", "admin")])).await);
    assert!(grant.caller.is_none());
    assert!(grant.upstream.set.is_empty());
    assert_eq!(grant.upstream.remove, ["x-client", "x-sub"]);
}

#[tokio::test]
async fn requests_matching_no_route_are_denied_by_default() {
    let authz = authorizer("  - {name: only, match: {path: {exact: /only}}}\n");
    assert_eq!(
        denied(&decide(&authz, &request("GET", "/other", &[])).await),
        DenyReason::NoRoute
    );
}

#[tokio::test]
async fn bad_paths_and_conflicting_tokens_are_400() {
    let authz = authorizer(HTTPBIN);
    let read = bearer(&token(&["read"], json!({})));
    let bad = request("GET", "/a%2F..%2Fpost", &[("authorization", &read)]);
    assert_eq!(denied(&decide(&authz, &bad).await), DenyReason::BadPath);
    let other = token(&["read"], json!({"jti": "2"}));
    let two = request(
        "GET",
        "/get",
        &[("authorization", &read), ("x-token", &other)],
    );
    assert_eq!(
        denied(&decide(&authz, &two).await),
        DenyReason::ConflictingTokens
    );
}

#[tokio::test]
async fn token_problems_are_401_with_a_reason() {
    let authz = authorizer("  - {name: r}\n");
    let cases = [
        ("garbage", TokenProblem::Malformed),
        ("a.b", TokenProblem::Malformed),
        (&*"x".repeat(20_000), TokenProblem::TooLong),
    ];
    for (value, problem) in cases {
        let r = request("GET", "/", &[("x-token", value)]);
        assert_eq!(
            denied(&decide(&authz, &r).await),
            DenyReason::InvalidToken(problem),
            "{value:.20}"
        );
    }
    let expired = token(&[], json!({"exp": 1_000, "iat": 900}));
    let r = request("GET", "/", &[("x-token", &expired)]);
    assert_eq!(
        denied(&decide(&authz, &r).await),
        DenyReason::InvalidToken(TokenProblem::Expired)
    );
    let future_iat = token(
        &[],
        json!({"iat": 4_000_000_000_u64, "exp": 4_000_000_100_u64}),
    );
    let r = request("GET", "/", &[("x-token", &future_iat)]);
    assert_eq!(
        denied(&decide(&authz, &r).await),
        DenyReason::InvalidToken(TokenProblem::NotYetValid)
    );
    let other_issuer = token(&[], json!({"iss": "https://elsewhere"}));
    let r = request("GET", "/", &[("x-token", &other_issuer)]);
    assert_eq!(
        denied(&decide(&authz, &r).await),
        DenyReason::InvalidToken(TokenProblem::UnknownIssuer)
    );
    let wrong_aud = token(&[], json!({"aud": "other"}));
    let r = request("GET", "/", &[("x-token", &wrong_aud)]);
    assert_eq!(
        denied(&decide(&authz, &r).await),
        DenyReason::InvalidToken(TokenProblem::WrongAudience)
    );
    let no_exp = token(&[], json!({"exp": null}));
    let r = request("GET", "/", &[("x-token", &no_exp)]);
    assert_eq!(
        denied(&decide(&authz, &r).await),
        DenyReason::InvalidToken(TokenProblem::InvalidClaims)
    );
}

#[tokio::test]
async fn claim_requirements_deny_with_403() {
    let authz = authorizer(
        "  - {name: admin, require: {claims: [{claim: realm_access.roles, contains: admin}]}}\n",
    );
    let user = bearer(&token(&[], json!({"realm_access": {"roles": ["user"]}})));
    let admin = bearer(&token(
        &[],
        json!({"realm_access": {"roles": ["user", "admin"]}}),
    ));
    assert_eq!(
        denied(&decide(&authz, &request("GET", "/", &[("authorization", &user)])).await),
        DenyReason::ClaimMismatch
    );
    granted(decide(&authz, &request("GET", "/", &[("authorization", &admin)])).await);
}

#[test]
fn unverified_claims_never_reach_the_caller() {
    // `caller` reads only from verified claims; this guards the field names.
    let mut claims = Map::new();
    claims.insert("azp".into(), json!("kc-client"));
    claims.insert("sub".into(), json!(7));
    let mut settings = authorizer_config("  - {name: r}\n");
    let provider = Provider::start(settings.providers.remove(0), &reqwest::Client::new());
    let caller = caller(&provider, &claims);
    assert_eq!(caller.client_id.as_deref(), Some("kc-client"));
    assert_eq!(caller.subject, None);
}

#[tokio::test]
async fn every_allow_removes_identity_headers_it_does_not_set() {
    // `tenant` maps its own header, replacing the defaults; the default
    // x-sub must still never come from the client on that route.
    let yaml_routes = concat!(
        "  - {name: tenant, match: {path: {prefix: /t}}, upstream_headers: {x-tenant: tenant}}\n",
        "  - {name: open, match: {path: {prefix: /open}}, anonymous: true}\n",
        "  - {name: rest, match: {path: {prefix: /api}}}\n",
    );
    let mut authz = authorizer(yaml_routes);
    let spoof = [("x-sub", "admin"), ("x-tenant", "other")];
    let token = token(&[], json!({"tenant": "acme"}));
    let auth = bearer(&token);

    let grant = granted(
        decide(
            &authz,
            &request("GET", "/t", &[("authorization", &auth), spoof[0]]),
        )
        .await,
    );
    assert_eq!(
        grant.upstream.set,
        [("x-tenant".to_owned(), "acme".to_owned())]
    );
    assert_eq!(grant.upstream.remove, ["x-client", "x-sub"]);

    let grant = granted(decide(&authz, &request("GET", "/open", &spoof)).await);
    assert_eq!(grant.upstream.remove, ["x-client", "x-sub", "x-tenant"]);

    authz.allow_unmatched = true;
    let grant = granted(decide(&authz, &request("GET", "/elsewhere", &spoof)).await);
    assert!(grant.route.is_none());
    assert_eq!(grant.upstream.remove, ["x-client", "x-sub", "x-tenant"]);
}

#[tokio::test]
async fn underscore_spellings_of_identity_headers_are_removed() {
    let authz = authorizer("  - {name: open, anonymous: true}\n");
    let spoof = request("GET", "/", &[("x_sub", "admin"), ("x_other", "kept")]);
    let grant = granted(decide(&authz, &spoof).await);
    assert_eq!(grant.upstream.remove, ["x-client", "x-sub", "x_sub"]);
}

#[tokio::test]
async fn unmatched_allow_without_routes_still_strips_the_default_identity_headers() {
    let mut config = authorizer_config("  - {name: only, match: {path: {exact: /only}}}\n");
    config.routes.clear();
    config.allow_unmatched = true;
    let authz = Authorizer::new(config, reqwest::Client::new());
    let grant = granted(decide(&authz, &request("GET", "/", &[("x-sub", "admin")])).await);
    assert_eq!(grant.upstream.remove, ["x-client", "x-sub"]);
}

#[tokio::test]
async fn a_malformed_host_is_400() {
    let authz = authorizer("  - {name: r}\n");
    let mut bad = request("GET", "/", &[]);
    bad.host = crate::routes::normalize_host("admin.example.com:abc");
    assert_eq!(denied(&decide(&authz, &bad).await), DenyReason::BadHost);
}

#[tokio::test]
async fn spelling_variants_are_removed_both_ways_and_for_token_headers() {
    let authz = authorizer(
        "  - {name: r, upstream_headers: {x_remote_user: sub}, remove_token_header: true}\n",
    );
    let token = token(&[], json!({}));
    let request = request(
        "GET",
        "/",
        &[
            ("x-token", &token),
            ("x_token", "forged"),
            ("x-remote-user", "admin"),
        ],
    );
    let grant = granted(decide(&authz, &request).await);
    assert_eq!(
        grant.upstream.set,
        [("x_remote_user".to_owned(), "svc-1".to_owned())]
    );
    for removed in ["x-token", "x_token", "x-remote-user", "authorization"] {
        assert!(
            grant.upstream.remove.iter().any(|r| r == removed),
            "{removed}: {:?}",
            grant.upstream.remove
        );
    }
}

#[tokio::test]
async fn verified_jwts_are_remembered_and_still_judged_per_route() {
    // The provider issues no scopes here; routes differ in what they ask.
    let yaml = concat!(
        "  - {name: open, match: {path: {prefix: /open}}}\n",
        "  - {name: admin, match: {path: {prefix: /admin}}, require: {scopes: [admin]}}\n",
    );
    let authz = authorizer(yaml);
    let token = token(&["read"], json!({}));
    let auth = bearer(&token);
    granted(
        decide(
            &authz,
            &request("GET", "/open", &[("authorization", &auth)]),
        )
        .await,
    );
    assert_eq!(
        authz.verified.entries(),
        1,
        "the verification is remembered"
    );
    granted(
        decide(
            &authz,
            &request("GET", "/open", &[("authorization", &auth)]),
        )
        .await,
    );
    assert_eq!(
        denied(
            &decide(
                &authz,
                &request("GET", "/admin", &[("authorization", &auth)])
            )
            .await
        ),
        DenyReason::InsufficientScope,
        "a remembered token still meets each route's requirements"
    );
    assert_eq!(authz.verified.entries(), 1);

    // A bad token is never remembered.
    let mut forged = token.clone().into_bytes();
    let at = forged.len() - 10;
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let forged_auth = bearer(&forged);
    denied(
        &decide(
            &authz,
            &request("GET", "/open", &[("authorization", &forged_auth)]),
        )
        .await,
    );
    assert_eq!(authz.verified.entries(), 1);
}

#[tokio::test]
async fn oauth2_proxy_preset_static_and_removed_headers_replace_client_values() {
    let authorizer = authorizer(
        "  - name: app\n    header_preset: oauth2_proxy\n    static_headers: {x-model-deployment: 'https://models/ocid1'}\n    remove_headers: [x-debug]\n",
    );
    let token = token(&[], json!({"email": "a@x", "groups": ["g1", "g2"]}));
    let grant = granted(
        decide(
            &authorizer,
            &request(
                "GET",
                "/",
                &[
                    ("authorization", &bearer(&token)),
                    ("x-auth-request-user", "mallory"),
                    ("x-debug", "1"),
                ],
            ),
        )
        .await,
    );
    let set: Map<String, serde_json::Value> = grant
        .upstream
        .set
        .iter()
        .map(|(n, v)| (n.clone(), v.clone().into()))
        .collect();
    assert_eq!(set["x-auth-request-user"], "svc-1");
    assert_eq!(set["x-auth-request-email"], "a@x");
    assert_eq!(set["x-auth-request-groups"], "g1,g2");
    assert_eq!(set["x-auth-request-access-token"], token.as_str());
    assert_eq!(set["x-model-deployment"], "https://models/ocid1");
    assert!(grant.upstream.remove.contains(&"x-debug".to_owned()));
    assert!(
        grant
            .upstream
            .remove
            .contains(&"x-auth-request-preferred-username".to_owned()),
        "an absent claim's header is removed: {:?}",
        grant.upstream.remove
    );
    assert_eq!(grant.metadata["route"], "app");
}

#[tokio::test]
async fn dry_run_allows_what_it_would_deny_without_passing_identity() {
    let authorizer = authorizer(
        "  - name: shadow\n    dry_run: true\n    require: {scopes: [admin]}\n    metadata_claims: [sub]\n",
    );
    let grant = granted(decide(&authorizer, &request("GET", "/", &[("x-sub", "forged")])).await);
    assert_eq!(grant.route.as_deref(), Some("shadow"));
    assert!(grant.caller.is_none());
    assert!(grant.upstream.set.is_empty());
    assert!(grant.upstream.remove.contains(&"x-sub".to_owned()));
    let token = token(&["admin"], json!({}));
    let grant = granted(
        decide(
            &authorizer,
            &request("GET", "/", &[("authorization", &bearer(&token))]),
        )
        .await,
    );
    assert_eq!(grant.metadata["sub"], "svc-1");
    assert_eq!(grant.metadata["route"], "shadow");
}

#[tokio::test]
async fn deny_shape_is_the_routes_and_response_headers_come_with_an_allow() {
    let authorizer = authorizer(
        "  - name: open\n    match: {path: {prefix: /open}}\n    anonymous: true\n    response_headers_to_add: {x-served-by: tollgate}\n  - name: closed\n    deny: {realm: closed, body: text, reason_header: x-deny-reason}\n",
    );
    let grant = granted(decide(&authorizer, &request("GET", "/open", &[])).await);
    assert_eq!(
        grant.response_headers,
        [("x-served-by".to_owned(), "tollgate".to_owned())]
    );
    let Decision::Deny(denial) = decide(&authorizer, &request("GET", "/x", &[])).await else {
        panic!("expected a deny");
    };
    let reply = authorizer
        .deny_shape(denial.route.as_deref())
        .reply(&denial);
    assert!(
        reply
            .headers
            .contains(&("x-deny-reason".into(), "missing_token".into()))
    );
    assert!(
        reply
            .headers
            .contains(&("www-authenticate".into(), r#"Bearer realm="closed""#.into()))
    );
    assert_eq!(authorizer.deny_shape(None).reason_header, None);
}

#[tokio::test]
async fn static_headers_are_never_taken_from_the_client() {
    let yaml = concat!(
        "  - {name: gate, match: {path: {prefix: /gate}}, static_headers: {x-gateway-verified: 'yes'}}\n",
        "  - {name: dry, match: {path: {prefix: /dry}}, dry_run: true, require: {scopes: [admin]}, static_headers: {x-gateway-verified: 'yes'}}\n",
        "  - {name: open, match: {path: {prefix: /open}}, anonymous: true}\n",
    );
    let authz = authorizer(yaml);
    let auth = bearer(&token(&["read"], json!({})));
    let forged = [
        ("x-gateway-verified", "forged"),
        ("x_gateway_verified", "forged"),
    ];

    // Anonymous: the route sets nothing, so both spellings go.
    let grant = granted(decide(&authz, &request("GET", "/open", &forged)).await);
    for name in ["x-gateway-verified", "x_gateway_verified"] {
        assert!(
            grant.upstream.remove.iter().any(|h| h == name),
            "{name}: {grant:?}"
        );
    }
    // Its own route sets the value and drops the other spelling.
    let mut headers = forged.to_vec();
    headers.push(("authorization", &auth));
    let grant = granted(decide(&authz, &request("GET", "/gate", &headers)).await);
    assert!(
        grant
            .upstream
            .set
            .contains(&("x-gateway-verified".to_owned(), "yes".to_owned()))
    );
    assert!(
        grant
            .upstream
            .remove
            .iter()
            .any(|h| h == "x_gateway_verified")
    );
    // A dry run lets a refused request through, but not as vouched for.
    let grant = granted(decide(&authz, &request("GET", "/dry", &headers)).await);
    assert!(
        grant
            .upstream
            .set
            .iter()
            .all(|(name, _)| name != "x-gateway-verified"),
        "{grant:?}"
    );
    assert!(
        grant
            .upstream
            .remove
            .iter()
            .any(|h| h == "x-gateway-verified")
    );
}
