//! Remembered verifications: judged by each route's own requirements, and
//! kept across a reload only where what vouched for them is unchanged.

use super::*;

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
