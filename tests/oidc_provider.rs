//! The OpenID provider harness (`tests/support/oidc.rs`) against the real
//! `oidc-provider`: what the end-to-end tests rely on it for, checked
//! without tollgate in the way.

mod support;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use support::binding::{
    ClientCert, HttpsClients, dpop_token_response, mtls_token_response, oidc_mtls,
};
use support::dpop::DpopKey;
use support::oidc::{
    BASIC_CLIENT, DPOP_CLIENT, JWT_RESOURCE, MTLS_CLIENT, OPAQUE_RESOURCE, OidcClient, OidcOptions,
    OidcProvider, POST_CLIENT, TOLLGATE_POST_CLIENT,
};

/// The header and payload of a compact JWS, or `None` if `token` is not one.
fn jws_parts(token: &str) -> Option<(Value, Value)> {
    let decode = |part: &str| {
        let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
        serde_json::from_slice::<Value>(&bytes).ok()
    };
    let [header, payload, _signature] = token.split('.').collect::<Vec<_>>()[..] else {
        return None;
    };
    Some((decode(header)?, decode(payload)?))
}

/// The `kid`s of the JWKS the provider publishes.
async fn published_kids(provider: &OidcProvider) -> Vec<String> {
    let jwks = provider.jwks().await;
    let keys = jwks["keys"].as_array().expect("jwks has keys");
    keys.iter()
        .map(|key| key["kid"].as_str().expect("every key has a kid").to_owned())
        .collect()
}

/// The `kid` in the header of a JWT access token.
fn kid_of(token: &str) -> String {
    let (header, _) = jws_parts(token).unwrap_or_else(|| panic!("not a JWS: {token}"));
    header["kid"]
        .as_str()
        .expect("the header has a kid")
        .to_owned()
}

#[tokio::test]
async fn discovery_advertises_the_endpoints_tollgate_needs() {
    let provider = OidcProvider::start().await;

    assert_eq!(
        provider.issuer(),
        format!("http://127.0.0.1:{}", provider.port())
    );
    let document = support::get(
        &format!("{}/.well-known/openid-configuration", provider.issuer()),
        &[],
    )
    .await
    .json();
    for name in [
        "token_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
        "jwks_uri",
    ] {
        let url = document[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name} in {document}"));
        assert!(
            url.starts_with(provider.issuer()),
            "{name} {url} is not on the issuer"
        );
    }
    assert_eq!(
        document["introspection_endpoint"],
        provider.introspection_endpoint()
    );
    assert_eq!(
        document["revocation_endpoint"],
        provider.revocation_endpoint()
    );
    assert_eq!(document["jwks_uri"], provider.jwks_uri());
    assert_eq!(published_kids(&provider).await, ["key-1"]);
}

#[tokio::test]
async fn both_client_auth_methods_get_tokens_and_a_wrong_secret_is_refused() {
    let provider = OidcProvider::start().await;

    for client in [BASIC_CLIENT, POST_CLIENT] {
        let response = provider.token_response(client, "read write", None).await;
        assert_eq!(response.status, 200, "{}: {}", client.id, response.body);
        let body = response.json();
        assert_eq!(body["token_type"], "Bearer", "{}: {body}", client.id);
        assert_eq!(body["scope"], "read write", "{}: {body}", client.id);
        assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));
    }

    for client in [BASIC_CLIENT, POST_CLIENT] {
        let wrong = OidcClient {
            secret: "not-the-secret",
            ..client
        };
        let response = provider.token_response(wrong, "read", None).await;
        assert!(
            response.status == 401 || response.status == 400,
            "{} with a wrong secret got {}: {}",
            client.id,
            response.status,
            response.body
        );
        assert_eq!(response.json()["error"], "invalid_client", "{}", client.id);
    }
}

#[tokio::test]
async fn the_jwt_resource_gets_a_signed_jwt_and_the_opaque_resource_does_not() {
    let provider = OidcProvider::start().await;

    let jwt = provider
        .client_credentials_token(BASIC_CLIENT, "read", Some(JWT_RESOURCE))
        .await;
    let (header, payload) = jws_parts(&jwt).unwrap_or_else(|| panic!("not a JWS: {jwt}"));
    assert_eq!(header["alg"], "RS256");
    assert!(
        published_kids(&provider).await.contains(&kid_of(&jwt)),
        "{header}"
    );
    assert_eq!(payload["iss"], provider.issuer());
    assert_eq!(payload["aud"], JWT_RESOURCE);
    assert_eq!(payload["scope"], "read");
    assert_eq!(payload["client_id"], BASIC_CLIENT.id);
    assert!(payload["exp"].as_u64().is_some(), "no exp in {payload}");

    for resource in [Some(OPAQUE_RESOURCE), None] {
        let opaque = provider
            .client_credentials_token(POST_CLIENT, "read", resource)
            .await;
        assert!(
            jws_parts(&opaque).is_none(),
            "{resource:?} gave a JWS: {opaque}"
        );
    }
}

#[tokio::test]
async fn tollgate_introspects_other_clients_tokens_until_they_are_revoked() {
    let provider = OidcProvider::start().await;
    let token = provider
        .client_credentials_token(BASIC_CLIENT, "read write", Some(OPAQUE_RESOURCE))
        .await;

    for answer in [
        provider.introspect(&token).await,
        provider.introspect_as(TOLLGATE_POST_CLIENT, &token).await,
    ] {
        assert_eq!(answer["active"], true, "{answer}");
        assert_eq!(answer["scope"], "read write", "{answer}");
        assert_eq!(answer["client_id"], BASIC_CLIENT.id, "{answer}");
        assert_eq!(answer["aud"], OPAQUE_RESOURCE, "{answer}");
        assert!(answer["exp"].as_u64().is_some(), "no exp in {answer}");
    }
    // Another ordinary client is not told about the token.
    assert_eq!(
        provider.introspect_as(POST_CLIENT, &token).await["active"],
        false
    );

    provider.revoke(&token).await;
    let answer = provider.introspect(&token).await;
    assert_eq!(answer["active"], false, "{answer}");
}

#[tokio::test]
async fn restarts_on_the_same_port_with_a_rotated_key() {
    let mut provider = OidcProvider::start().await;
    let port = provider.port();
    let before = provider
        .client_credentials_token(BASIC_CLIENT, "read", Some(JWT_RESOURCE))
        .await;
    assert_eq!(kid_of(&before), "key-1");
    let opaque = provider
        .client_credentials_token(POST_CLIENT, "read", None)
        .await;

    provider.stop().await;
    let refused = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
    assert!(
        refused.is_err(),
        "port {port} still accepts connections after stop()"
    );

    provider.rotate_key("key-2").await;
    assert_eq!(provider.port(), port);
    assert_eq!(provider.issuer(), format!("http://127.0.0.1:{port}"));
    let after = provider
        .client_credentials_token(BASIC_CLIENT, "read", Some(JWT_RESOURCE))
        .await;
    assert_eq!(kid_of(&after), "key-2");
    // The old key stays published so tokens it signed still verify.
    assert_eq!(published_kids(&provider).await, ["key-2", "key-1"]);

    provider.restart().await;
    assert_eq!(provider.port(), port);
    let again = provider
        .client_credentials_token(POST_CLIENT, "read", Some(JWT_RESOURCE))
        .await;
    assert_eq!(kid_of(&again), "key-2");
    // Issued tokens live in memory and die with the process.
    assert_eq!(provider.introspect(&opaque).await["active"], false);
}

#[tokio::test]
async fn bound_clients_get_tokens_only_with_their_proof_or_certificate() {
    let provider = OidcProvider::start_with(OidcOptions {
        mtls: Some(oidc_mtls()),
        ..OidcOptions::default()
    })
    .await;
    let clients = HttpsClients::new();

    // DPoP: no proof, no token; with one, a token bound to its key.
    let refused = dpop_token_response(&provider, DPOP_CLIENT, None, JWT_RESOURCE).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.json()["error"], "invalid_grant", "{}", refused.body);
    let key = DpopKey::generate();
    let proof = key.proof("POST", provider.token_endpoint()).sign();
    let answer = dpop_token_response(&provider, DPOP_CLIENT, Some(&proof), JWT_RESOURCE).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let answer = answer.json();
    assert_eq!(answer["token_type"], "DPoP");
    let token = answer["access_token"].as_str().unwrap_or_default();
    let (_, payload) = jws_parts(token).unwrap_or_else(|| panic!("not a JWS: {answer}"));
    assert_eq!(payload["cnf"]["jkt"], key.thumbprint(), "{payload}");
    // The same proof again is a replay.
    let replayed = dpop_token_response(&provider, DPOP_CLIENT, Some(&proof), JWT_RESOURCE).await;
    assert_eq!(replayed.status, 400, "{}", replayed.body);

    // Certificate-bound: only over mutual TLS, bound to the certificate shown.
    let plain = provider.token_response(MTLS_CLIENT, "read", None).await;
    assert_eq!(plain.status, 400, "{}", plain.body);
    for cert in [ClientCert::A, ClientCert::B] {
        let answer = mtls_token_response(&provider, &clients, MTLS_CLIENT, cert, JWT_RESOURCE)
            .await
            .unwrap_or_else(|e| panic!("with certificate {cert:?}: {e}"));
        assert_eq!(answer.status, 200, "{cert:?}: {}", answer.body);
        let token = answer.json()["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let (_, payload) = jws_parts(&token).unwrap_or_else(|| panic!("not a JWS: {token}"));
        assert_eq!(
            payload["cnf"]["x5t#S256"].as_str(),
            cert.thumbprint().as_deref(),
            "{cert:?}: {payload}"
        );
    }
    let no_certificate = mtls_token_response(
        &provider,
        &clients,
        MTLS_CLIENT,
        ClientCert::None,
        JWT_RESOURCE,
    )
    .await;
    assert!(
        no_certificate.is_err(),
        "the mutual-TLS listener answered without a certificate: {no_certificate:?}"
    );

    // Other clients' tokens stay unbound, on either listener.
    let answer = mtls_token_response(
        &provider,
        &clients,
        BASIC_CLIENT,
        ClientCert::A,
        JWT_RESOURCE,
    )
    .await
    .unwrap_or_else(|e| panic!("basic-client over mutual TLS: {e}"));
    assert_eq!(answer.status, 200, "{}", answer.body);
    let token = answer.json()["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (_, payload) = jws_parts(&token).unwrap_or_else(|| panic!("not a JWS: {token}"));
    assert!(payload.get("cnf").is_none(), "{payload}");
}
