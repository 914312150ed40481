//! Keys fetched from an identity provider: OpenID discovery, an unknown
//! `kid` refetching the JWKS (rate-limited) to pick up a rotated key, a
//! key rotated out, outages before and after keys were loaded, and the
//! JWKS's `max-age` scheduling the background refresh. tollgate runs
//! in-process on 127.0.0.1:0 against a test IdP on 127.0.0.1:0.

mod support;

use std::time::Duration;

use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;

use support::check::*;
use support::idp::{DISCOVERY_PATH, Idp, IdpMode, JWKS_PATH, jwks_of};
use support::tokens::Token;

const EC1_JWK: &str = include_str!("fixtures/keys/ec-p256-1.jwk.json");
const EC2_JWK: &str = include_str!("fixtures/keys/ec-p256-2.jwk.json");
/// How long a test waits for tollgate to pick up rotated remote keys.
const READY_LIMIT: Duration = Duration::from_secs(10);

/// One provider whose keys come from `source` (YAML lines under the
/// provider), its subject sent upstream, on `/api`.
fn remote_config(issuer: &str, source: &str) -> String {
    format!(
        r#"
providers:
  - name: idp
    issuer: {issuer}
    audiences: [{AUDIENCE}]
{source}
defaults:
  upstream_headers:
    x-auth-subject: sub
routes:
  - name: api
    match: {{ path: {{ prefix: /api }} }}
"#
    )
}

#[tokio::test]
async fn discovery_provider_verifies_with_the_discovered_jwks() {
    let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
    let source = "    discovery: true";
    let tollgate = Tollgate::start_in_realm(&remote_config(idp.base_url(), source)).await;
    tollgate.wait_ready().await;
    assert!(
        idp.hits(DISCOVERY_PATH) >= 1,
        "discovery document was not read"
    );
    assert!(
        idp.hits(JWKS_PATH) >= 1,
        "discovered jwks_uri was not fetched"
    );

    let token = issued_by(idp.base_url(), Token::es256()).sign();
    let response = tollgate.check_bearer("/api/x", &token).await;
    assert_eq!(
        header(&upstream_headers(allowed(&response)), "x-auth-subject"),
        Some("alice")
    );

    // A token naming another issuer is not verified with these keys.
    let other = issued_by(ISSUER_A, Token::es256()).sign();
    assert_invalid_token(&tollgate.check_bearer("/api/x", &other).await, &other);
}

/// An IdP serving `ec-1` and tollgate fetching its `jwks_uri` for issuer A,
/// refetching for an unknown kid at most once a second; ready.
async fn rotating_idp() -> (Idp, Tollgate) {
    let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
    let source = format!(
        "    jwks_uri: {}\n    jwks_cache:\n      unknown_kid_refetch_interval: 1s",
        idp.jwks_uri()
    );
    let tollgate = Tollgate::start_in_realm(&remote_config(ISSUER_A, &source)).await;
    tollgate.wait_ready().await;
    (idp, tollgate)
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_jwks_and_picks_up_a_rotated_key() {
    let (idp, tollgate) = rotating_idp().await;
    let initial_fetches = idp.hits(JWKS_PATH);

    let token = issued_by(ISSUER_A, Token::es256_second()).sign();
    assert_invalid_token(&tollgate.check_bearer("/api/x", &token).await, &token);
    assert_eq!(
        idp.hits(JWKS_PATH),
        initial_fetches + 1,
        "an unknown kid refetches once"
    );

    // The IdP rotates; the refetch just done rate-limits the next one.
    idp.set_jwks(jwks_of(&[EC1_JWK, EC2_JWK]));
    assert_invalid_token(&tollgate.check_bearer("/api/x", &token).await, &token);
    assert_eq!(
        idp.hits(JWKS_PATH),
        initial_fetches + 1,
        "refetches are rate-limited"
    );

    // Once the interval has passed, the same token verifies: no restart.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = tollgate.check_bearer("/api/x", &token).await;
    assert_eq!(
        header(&upstream_headers(allowed(&response)), "x-auth-subject"),
        Some("alice")
    );
    assert_eq!(idp.hits(JWKS_PATH), initial_fetches + 2);
    // The old key keeps working, and known kids cost no fetch.
    let old = issued_by(ISSUER_A, Token::es256()).sign();
    allowed(&tollgate.check_bearer("/api/x", &old).await);
    allowed(&tollgate.check_bearer("/api/x", &token).await);
    assert_eq!(idp.hits(JWKS_PATH), initial_fetches + 2);
}

#[tokio::test]
async fn a_remembered_verification_ends_when_its_key_is_rotated_out() {
    let (idp, tollgate) = rotating_idp().await;
    let old = issued_by(ISSUER_A, Token::es256()).sign();
    allowed(&tollgate.check_bearer("/api/x", &old).await);
    allowed(&tollgate.check_bearer("/api/x", &old).await);

    // The IdP drops the old key; a token with the new kid loads the new set.
    idp.set_jwks(jwks_of(&[EC2_JWK]));
    let new = issued_by(ISSUER_A, Token::es256_second()).sign();
    allowed(&tollgate.check_bearer("/api/x", &new).await);
    // The old token verified before, but not against these keys.
    assert_invalid_token(&tollgate.check_bearer("/api/x", &old).await, &old);
}

#[tokio::test]
async fn keys_never_loaded_is_a_grpc_unavailable_not_a_decision() {
    for mode in [IdpMode::Fail, IdpMode::Hang] {
        let idp = Idp::start_in(jwks_of(&[EC1_JWK]), mode).await;
        let source = format!(
            "    jwks_uri: {}\n    jwks_cache:\n      fetch_timeout: 300ms\n      retry_interval: 1m\n      unknown_kid_refetch_interval: 1s",
            idp.jwks_uri()
        );
        let tollgate = Tollgate::start_in_realm(&remote_config(ISSUER_A, &source)).await;
        let auth = bearer(&issued_by(ISSUER_A, Token::es256()).sign());
        let outcome = tollgate
            .try_check(get("/api/x", &[("authorization", &auth)]))
            .await;
        match outcome {
            Err(status) => {
                assert_eq!(
                    status.code(),
                    tonic::Code::Unavailable,
                    "{mode:?}: {status:?}"
                );
                assert!(
                    !status.message().contains(&auth[7..]),
                    "status repeats the token"
                );
                assert!(
                    !status.message().contains("127.0.0.1"),
                    "status leaks the IdP: {status:?}"
                );
            }
            Ok(response) => panic!("{mode:?}: an outage must not decide, got {response:?}"),
        }
        assert!(
            idp.hits(JWKS_PATH) >= 1,
            "{mode:?}: the IdP was never asked"
        );
        // Requests that need no key are still decided.
        let response = tollgate.check(get("/api/x", &[])).await;
        assert_denied(
            &response,
            401,
            Some(MISSING_TOKEN_CHALLENGE),
            "unauthorized",
            None,
        );
    }
}

#[tokio::test]
async fn cached_keys_keep_serving_known_kids_through_an_outage() {
    let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
    let source = format!(
        "    jwks_uri: {}\n    jwks_cache:\n      fetch_timeout: 300ms\n      unknown_kid_refetch_interval: 1s",
        idp.jwks_uri()
    );
    let tollgate = Tollgate::start_in_realm(&remote_config(ISSUER_A, &source)).await;
    tollgate.wait_ready().await;
    let token = issued_by(ISSUER_A, Token::es256()).sign();
    let unknown = issued_by(ISSUER_A, Token::es256_second()).sign();
    let auth_unknown = bearer(&unknown);

    for mode in [IdpMode::Fail, IdpMode::Hang] {
        idp.set_mode(mode);
        let response = tollgate.check_bearer("/api/x", &token).await;
        allowed(&response);
        // An unknown kid triggers a refetch that fails; the cached keys
        // still decide, so this is a deny rather than a fault.
        let before = idp.hits(JWKS_PATH);
        let response = tollgate
            .try_check(get("/api/x", &[("authorization", &auth_unknown)]))
            .await
            .unwrap_or_else(|status| panic!("{mode:?}: cached keys must decide, got {status:?}"));
        assert_invalid_token(&response, &unknown);
        assert_eq!(
            idp.hits(JWKS_PATH),
            before + 1,
            "{mode:?}: a refetch was attempted"
        );
        // And the known kid is still fine after the failed refetch.
        allowed(&tollgate.check_bearer("/api/x", &token).await);
        // Let the refetch rate limit (1s, the floor) open again.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
}

#[tokio::test]
async fn jwks_max_age_schedules_the_background_refresh() {
    let idp = Idp::start(jwks_of(&[EC1_JWK])).await;
    idp.set_cache_control(Some("public, max-age=1"));
    let source = format!(
        "    jwks_uri: {}\n    jwks_cache:\n      refresh_interval: 1h\n      min_refresh_interval: 1s\n      unknown_kid_refetch_interval: 1h",
        idp.jwks_uri()
    );
    let tollgate = Tollgate::start_in_realm(&remote_config(ISSUER_A, &source)).await;
    tollgate.wait_ready().await;

    // Spend the one unknown-kid refetch allowed per hour, so only the
    // background refresh can bring in the rotated key.
    let token = issued_by(ISSUER_A, Token::es256_second()).sign();
    assert_invalid_token(&tollgate.check_bearer("/api/x", &token).await, &token);
    idp.set_jwks(jwks_of(&[EC1_JWK, EC2_JWK]));
    let fetches = idp.hits(JWKS_PATH);

    // max-age=1 (clamped to min_refresh_interval 1s) rather than the 1h
    // refresh_interval: the key shows up within a few seconds.
    tokio::time::timeout(READY_LIMIT, async {
        loop {
            let response = tollgate.check_bearer("/api/x", &token).await;
            if matches!(response.http_response, Some(HttpResponse::OkResponse(_))) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the rotated key never arrived: max-age was not honoured");
    assert!(
        idp.hits(JWKS_PATH) > fetches,
        "a background refresh fetched the JWKS"
    );
}
