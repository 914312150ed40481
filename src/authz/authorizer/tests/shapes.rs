//! Dry runs, and how a route's denies look.

use super::*;

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
    let reply = denial.reply();
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
    assert_eq!(authorizer.unmatched.deny.reason_header, None);
}
