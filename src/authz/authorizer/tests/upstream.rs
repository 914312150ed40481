//! What an allow sends upstream: claim, static and preset headers, and the
//! removal of every identity header a client might have supplied.

use super::*;

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

#[test]
fn unverified_claims_never_reach_the_caller() {
    // `caller` reads only from verified claims; this guards the field names.
    let mut claims = Map::new();
    claims.insert("azp".into(), json!("kc-client"));
    claims.insert("sub".into(), json!(7));
    let caller = grant::caller(&"idp".into(), &claims);
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

    authz.unmatched.allow = true;
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
    config.authz.routes.clear();
    config.authz.unmatched.allow = true;
    let authz = Authorizer::new(config.authz, &reqwest::Client::new(), &[]);
    let grant = granted(decide(&authz, &request("GET", "/", &[("x-sub", "admin")])).await);
    assert_eq!(grant.upstream.remove, ["x-client", "x-sub"]);
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
