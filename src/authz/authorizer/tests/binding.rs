//! Bound tokens through the whole check: DPoP proofs and client
//! certificates, the challenges a refusal carries, remembered verifications
//! that are still held to their binding, and JOSE headers as RFC 7515 §4
//! reads them.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;

use super::*;
use crate::binding::tests::Client;
use crate::outcome::{AuthScheme, Bound, Denial, ProofProblem, TokenProblem};

const ROUTES: &str = concat!(
    "  - {name: dpop, match: {path: {prefix: /dpop}}, require: {binding: dpop}}\n",
    "  - {name: mtls, match: {path: {prefix: /mtls}}, require: {binding: mtls}}\n",
    "  - {name: shadow, match: {path: {prefix: /shadow}}, require: {binding: dpop}, dry_run: true}\n",
    "  - {name: plain}\n",
);

const CLIENT_PEM: &str = include_str!("../../../../tests/fixtures/tls/client.crt");

fn https(path: &str, headers: &[(&str, String)]) -> AuthzRequest {
    AuthzRequest {
        scheme: "https".into(),
        authority: "api.test".into(),
        method: "GET".into(),
        path: path.into(),
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.clone()))
            .collect(),
        peer_certificate: None,
    }
}

fn dpop_request(client: &Client, path: &str, token: &str) -> AuthzRequest {
    let proof = client.proof("GET", &format!("https://api.test{path}"), token);
    https(
        path,
        &[("authorization", format!("DPoP {token}")), ("dpop", proof)],
    )
}

fn denial(decision: Decision) -> Denial {
    match decision {
        Decision::Deny(denial) => denial,
        Decision::Allow(grant) => panic!("expected a deny, got {grant:?}"),
    }
}

fn challenge(denial: &Denial) -> String {
    let reply = denial.reply();
    reply
        .headers
        .iter()
        .find(|(name, _)| name == "www-authenticate")
        .map(|(_, value)| value.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_dpop_bound_token_is_allowed_with_its_proof_and_only_so() {
    let authorizer = authorizer(ROUTES);
    let client = Client::new();
    let token = token(&[], json!({"cnf": {"jkt": client.thumbprint()}}));
    for path in ["/dpop/orders", "/plain"] {
        let grant = granted(decide(&authorizer, &dpop_request(&client, path, &token)).await);
        assert_eq!(
            grant.binding,
            Bound {
                dpop: true,
                mtls: false
            }
        );
    }
    // Remembered from the first check, and still held to a fresh proof:
    // a replayed one is refused.
    let request = dpop_request(&client, "/plain", &token);
    granted(decide(&authorizer, &request).await);
    let replayed = denial(decide(&authorizer, &request).await);
    assert_eq!(
        replayed.reason,
        DenyReason::InvalidDpopProof(ProofProblem::Replayed)
    );
    assert!(
        challenge(&replayed).starts_with(r#"DPoP error="invalid_dpop_proof", algs="ES256 "#),
        "{}",
        challenge(&replayed)
    );
    assert_eq!(replayed.caller.as_ref().map(|c| &*c.provider), Some("idp"));
    // Sent as a bearer token it is refused, on any route.
    let as_bearer = https("/plain", &[("authorization", bearer(&token))]);
    let refused = denial(decide(&authorizer, &as_bearer).await);
    assert_eq!(
        refused.reason,
        DenyReason::InvalidToken(TokenProblem::DpopTokenAsBearer)
    );
    assert!(challenge(&refused).starts_with(r#"DPoP error="invalid_token", algs=""#));
    // A proof for another path.
    let proof = client.proof("GET", "https://api.test/other", &token);
    let elsewhere = https(
        "/plain",
        &[("authorization", format!("DPoP {token}")), ("dpop", proof)],
    );
    assert_eq!(
        denial(decide(&authorizer, &elsewhere).await).reason,
        DenyReason::InvalidDpopProof(ProofProblem::WrongUrl)
    );
}

#[tokio::test]
async fn a_dpop_route_challenges_with_dpop_and_refuses_bearer_tokens() {
    let authorizer = authorizer(ROUTES);
    let missing = denial(decide(&authorizer, &https("/dpop", &[])).await);
    assert_eq!(missing.reason, DenyReason::MissingToken);
    let AuthScheme::Dpop { algs, nonce: None } = &missing.scheme else {
        panic!("a DPoP route challenges with DPoP: {:?}", missing.scheme);
    };
    assert_eq!(challenge(&missing), format!(r#"DPoP algs="{algs}""#));
    let plain = token(&[], json!({}));
    let unbound = https("/dpop", &[("authorization", bearer(&plain))]);
    let refused = denial(decide(&authorizer, &unbound).await);
    assert_eq!(
        refused.reason,
        DenyReason::InvalidToken(TokenProblem::NotSenderConstrained)
    );
    // The plain route takes it; the dry-run route lets it through, logged.
    let elsewhere = https("/plain", &[("authorization", bearer(&plain))]);
    assert_eq!(
        granted(decide(&authorizer, &elsewhere).await).binding,
        Bound::default()
    );
    let shadow = https("/shadow", &[("authorization", bearer(&plain))]);
    assert!(granted(decide(&authorizer, &shadow).await).caller.is_none());
    // Two tokens: one as DPoP, one as a bearer token elsewhere.
    let client = Client::new();
    let bound = token(&[], json!({"cnf": {"jkt": client.thumbprint()}}));
    let mut two = dpop_request(&client, "/plain", &bound);
    two.headers.push(("x-token".into(), plain));
    assert_eq!(
        denied(&decide(&authorizer, &two).await),
        DenyReason::ConflictingTokens
    );
}

#[tokio::test]
async fn a_certificate_bound_token_needs_the_connections_certificate() {
    let authorizer = authorizer(ROUTES);
    let der = {
        let body: String = CLIENT_PEM
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    };
    let x5t = URL_SAFE_NO_PAD.encode(crate::digest::sha256(&der));
    let token = token(&[], json!({"cnf": {"x5t#S256": x5t}}));
    let mut request = https("/mtls", &[("authorization", bearer(&token))]);
    request.peer_certificate = Some(CLIENT_PEM.replace('\n', "%0A").replace(' ', "%20"));
    let grant = granted(decide(&authorizer, &request).await);
    assert_eq!(
        grant.binding,
        Bound {
            dpop: false,
            mtls: true
        }
    );
    request.peer_certificate = None;
    let refused = denial(decide(&authorizer, &request).await);
    assert_eq!(
        refused.reason,
        DenyReason::InvalidToken(TokenProblem::CertificateMissing)
    );
    assert_eq!(challenge(&refused), r#"Bearer error="invalid_token""#);
    request.peer_certificate =
        Some(include_str!("../../../../tests/fixtures/tls/ca.crt").to_owned());
    assert_eq!(
        denied(&decide(&authorizer, &request).await),
        DenyReason::InvalidToken(TokenProblem::CertificateMismatch)
    );
}

/// RFC 7515 §4: header members tollgate does not know are ignored, whatever
/// their JSON type; only `crit` makes one matter.
#[tokio::test]
async fn unknown_header_members_of_any_type_are_ignored() {
    let authorizer = authorizer(ROUTES);
    let key = EncodingKey::from_ec_pem(include_bytes!(
        "../../../../tests/fixtures/keys/ec-p256-1.pem"
    ))
    .unwrap();
    let claims = json!({
        "iss": ISSUER, "aud": "api", "sub": "svc-1",
        "exp": crate::claims::unix_now() + 300,
    });
    let sign = |header: serde_json::Value| {
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature =
            jsonwebtoken::crypto::sign(signed.as_bytes(), &key, Algorithm::ES256).unwrap();
        format!("{signed}.{signature}")
    };
    for extra in [
        json!(2),
        json!(true),
        json!(null),
        json!([1, "a"]),
        json!({"nested": {"deep": [false]}}),
        json!("string"),
    ] {
        let token = sign(json!({"alg": "ES256", "kid": "ec-1", "typ": "at+jwt", "ver": extra}));
        let request = https("/plain", &[("authorization", bearer(&token))]);
        granted(decide(&authorizer, &request).await);
    }
    let critical = sign(json!({"alg": "ES256", "kid": "ec-1", "crit": ["ver"], "ver": 2}));
    let request = https("/plain", &[("authorization", bearer(&critical))]);
    assert_eq!(
        denied(&decide(&authorizer, &request).await),
        DenyReason::InvalidToken(TokenProblem::Malformed)
    );
}
