//! Which requests are allowed, and the 400, 401 and 403 reasons of those
//! that are not.

use super::*;

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

#[tokio::test]
async fn a_malformed_host_is_400() {
    let authz = authorizer("  - {name: r}\n");
    let mut bad = request("GET", "/", &[]);
    bad.authority = "admin.example.com:abc".into();
    assert_eq!(denied(&decide(&authz, &bad).await), DenyReason::BadHost);
}
