//! The binder: a bound token is held to its binding on every route, and a
//! route's `require.binding` is enforced on top; plus a DPoP client for
//! these tests and the proof tests.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use super::*;
use crate::digest::sha256;
use crate::outcome::ProofProblem;
use crate::routes::PathParameters;

/// A DPoP client: a P-256 key and its public JWK.
pub(crate) struct Client {
    key: EncodingKey,
    pub(crate) jwk: Value,
}

impl Client {
    pub(crate) fn new() -> Client {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref();
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        Client {
            key: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk,
        }
    }

    pub(crate) fn thumbprint(&self) -> String {
        thumbprint::jwk_thumbprint(self.jwk.as_object().unwrap()).unwrap()
    }

    /// A JWS over `header` and `claims`, signed with this client's key
    /// (whatever `alg` the header names).
    pub(crate) fn sign(&self, header: &Value, claims: &Value) -> String {
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature =
            jsonwebtoken::crypto::sign(signed.as_bytes(), &self.key, Algorithm::ES256).unwrap();
        format!("{signed}.{signature}")
    }

    pub(crate) fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk})
    }

    /// Valid claims for `method` on `url` with `token`, issued `now`.
    pub(crate) fn claims(method: &str, url: &str, token: &str, now: u64) -> Value {
        json!({
            "jti": format!("{:x}", u128::from_be_bytes(rand16())),
            "htm": method,
            "htu": url,
            "iat": now,
            "ath": URL_SAFE_NO_PAD.encode(sha256(token.as_bytes())),
        })
    }

    /// A valid proof for `method` on `url` with `token`, issued now.
    pub(crate) fn proof(&self, method: &str, url: &str, token: &str) -> String {
        self.sign(
            &self.header(),
            &Client::claims(method, url, token, crate::claims::unix_now()),
        )
    }
}

fn rand16() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    bytes
}

pub(crate) const TOKEN: &str = "eyJ.token.here";

pub(crate) fn request() -> ProofRequest<'static> {
    ProofRequest {
        method: "GET",
        scheme: "https",
        authority: "api.example.com",
        path: "/orders/1",
        path_parameters: PathParameters::default(),
    }
}

fn presented<'a>(
    scheme: Scheme,
    headers: &'a [(String, String)],
    peer: Option<&'a str>,
) -> Presented<'a> {
    Presented {
        token: TOKEN,
        scheme,
        request: request(),
        headers,
        peer_certificate: peer,
    }
}

fn claims(cnf: Value) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("sub".into(), json!("svc"));
    if !cnf.is_null() {
        claims.insert("cnf".into(), cnf);
    }
    claims
}

fn dpop_header(client: &Client) -> Vec<(String, String)> {
    let proof = client.proof("GET", "https://api.example.com/orders/1", TOKEN);
    vec![("dpop".into(), proof)]
}

const CERT_PEM: &str = include_str!("../../tests/fixtures/tls/client.crt");

fn cert_thumbprint() -> String {
    certificate::peer_thumbprint(CERT_PEM).unwrap()
}

fn reason(result: Result<Bound, Refusal>) -> DenyReason {
    result.expect_err("refused").reason
}

#[test]
fn a_dpop_bound_token_passes_only_with_its_own_proof() {
    let binder = Binder::new(&BindingSettings::default());
    let client = Client::new();
    let bound = claims(json!({"jkt": client.thumbprint()}));
    let headers = dpop_header(&client);
    let outcome = binder.check(
        RouteBinding::None,
        &presented(Scheme::Dpop, &headers, None),
        &bound,
    );
    assert_eq!(
        outcome.unwrap(),
        Bound {
            dpop: true,
            mtls: false
        }
    );

    // The thief's own, valid proof does not make the token theirs.
    let thief = Client::new();
    let headers = dpop_header(&thief);
    let refused = binder.check(
        RouteBinding::None,
        &presented(Scheme::Dpop, &headers, None),
        &bound,
    );
    let refused = refused.unwrap_err();
    assert_eq!(
        refused.reason,
        DenyReason::InvalidToken(TokenProblem::DpopKeyMismatch)
    );
    assert!(matches!(refused.scheme, AuthScheme::Dpop { .. }));

    // As a bearer token, even on a route that asks nothing.
    let refused = binder.check(
        RouteBinding::None,
        &presented(Scheme::Bearer, &[], None),
        &bound,
    );
    assert_eq!(
        reason(refused),
        DenyReason::InvalidToken(TokenProblem::DpopTokenAsBearer)
    );
    // The DPoP scheme without a proof.
    let refused = binder.check(
        RouteBinding::None,
        &presented(Scheme::Dpop, &[], None),
        &bound,
    );
    assert_eq!(
        reason(refused),
        DenyReason::InvalidDpopProof(ProofProblem::Missing)
    );
}

#[test]
fn a_replayed_proof_is_refused_the_second_time() {
    let binder = Binder::new(&BindingSettings::default());
    let client = Client::new();
    let bound = claims(json!({"jkt": client.thumbprint()}));
    let headers = dpop_header(&client);
    let request = presented(Scheme::Dpop, &headers, None);
    assert!(binder.check(RouteBinding::Dpop, &request, &bound).is_ok());
    assert_eq!(
        reason(binder.check(RouteBinding::Dpop, &request, &bound)),
        DenyReason::InvalidDpopProof(ProofProblem::Replayed)
    );
}

#[test]
fn an_unbound_token_with_the_dpop_scheme_is_refused() {
    let binder = Binder::new(&BindingSettings::default());
    let client = Client::new();
    let headers = dpop_header(&client);
    let refused = binder.check(
        RouteBinding::None,
        &presented(Scheme::Dpop, &headers, None),
        &claims(Value::Null),
    );
    assert_eq!(
        reason(refused),
        DenyReason::InvalidToken(TokenProblem::NotDpopBound)
    );
}

#[test]
fn a_certificate_bound_token_needs_its_certificate() {
    let binder = Binder::new(&BindingSettings::default());
    let bound = claims(json!({"x5t#S256": cert_thumbprint()}));
    let passed = binder.check(
        RouteBinding::Mtls,
        &presented(Scheme::Bearer, &[], Some(CERT_PEM)),
        &bound,
    );
    assert_eq!(
        passed.unwrap(),
        Bound {
            dpop: false,
            mtls: true
        }
    );
    let other = include_str!("../../tests/fixtures/tls/ca.crt");
    let refused = binder.check(
        RouteBinding::None,
        &presented(Scheme::Bearer, &[], Some(other)),
        &bound,
    );
    assert_eq!(
        reason(refused),
        DenyReason::InvalidToken(TokenProblem::CertificateMismatch)
    );
    let refused = binder.check(
        RouteBinding::None,
        &presented(Scheme::Bearer, &[], None),
        &bound,
    );
    let refused = refused.unwrap_err();
    assert_eq!(
        refused.reason,
        DenyReason::InvalidToken(TokenProblem::CertificateMissing)
    );
    assert_eq!(refused.scheme, AuthScheme::Bearer);
}

#[test]
fn a_forwarded_certificate_counts_only_when_trusted() {
    let bound = claims(json!({"x5t#S256": cert_thumbprint()}));
    let digest = URL_SAFE_NO_PAD.decode(cert_thumbprint()).unwrap();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let headers = vec![("x-forwarded-client-cert".into(), format!("Hash={hex}"))];
    let request = presented(Scheme::Bearer, &headers, None);
    let untrusting = Binder::new(&BindingSettings::default());
    assert_eq!(
        reason(untrusting.check(RouteBinding::None, &request, &bound)),
        DenyReason::InvalidToken(TokenProblem::CertificateMissing)
    );
    let trusting = Binder::new(&BindingSettings {
        certificate_sources: vec![CertificateSource::ForwardedHeader],
        ..BindingSettings::default()
    });
    assert!(trusting.check(RouteBinding::Mtls, &request, &bound).is_ok());
}

#[test]
fn routes_demand_the_binding_they_name() {
    let binder = Binder::new(&BindingSettings::default());
    let unbound = claims(Value::Null);
    let bearer = presented(Scheme::Bearer, &[], Some(CERT_PEM));
    assert_eq!(
        binder.check(RouteBinding::None, &bearer, &unbound).unwrap(),
        Bound::default()
    );
    for route in [
        RouteBinding::Mtls,
        RouteBinding::Dpop,
        RouteBinding::AnyBound,
    ] {
        let refused = binder.check(route, &bearer, &unbound).unwrap_err();
        assert_eq!(
            refused.reason,
            DenyReason::InvalidToken(TokenProblem::NotSenderConstrained),
            "{route:?}"
        );
        // A DPoP route challenges with DPoP, naming its algorithms.
        assert_eq!(
            matches!(refused.scheme, AuthScheme::Dpop { .. }),
            route == RouteBinding::Dpop
        );
    }
    let cert_bound = claims(json!({"x5t#S256": cert_thumbprint()}));
    assert!(
        binder
            .check(RouteBinding::AnyBound, &bearer, &cert_bound)
            .is_ok()
    );
    assert_eq!(
        reason(binder.check(RouteBinding::Dpop, &bearer, &cert_bound)),
        DenyReason::InvalidToken(TokenProblem::NotSenderConstrained)
    );
}

#[test]
fn an_unreadable_confirmation_is_never_dropped() {
    let binder = Binder::new(&BindingSettings::default());
    let request = presented(Scheme::Bearer, &[], Some(CERT_PEM));
    for cnf in [json!("jkt"), json!({"jkt": 5}), json!({"x5t#S256": ["a"]})] {
        assert_eq!(
            reason(binder.check(RouteBinding::None, &request, &claims(cnf.clone()))),
            DenyReason::InvalidToken(TokenProblem::InvalidConfirmation),
            "{cnf}"
        );
    }
    // Other confirmation methods (RFC 7800 `jwk`, `kid`) bind nothing tollgate checks.
    assert!(
        binder
            .check(RouteBinding::None, &request, &claims(json!({"kid": "k"})))
            .is_ok()
    );
}

#[test]
fn a_required_nonce_is_handed_out_and_then_accepted() {
    let binder = Binder::new(&BindingSettings {
        dpop: DpopSettings {
            nonce: Some(NonceSettings {
                lifetime: std::time::Duration::from_secs(300),
                secret: None,
            }),
            ..DpopSettings::default()
        },
        ..BindingSettings::default()
    });
    let client = Client::new();
    let bound = claims(json!({"jkt": client.thumbprint()}));
    let headers = dpop_header(&client);
    let refused = binder
        .check(
            RouteBinding::Dpop,
            &presented(Scheme::Dpop, &headers, None),
            &bound,
        )
        .unwrap_err();
    assert_eq!(refused.reason, DenyReason::UseDpopNonce);
    let AuthScheme::Dpop {
        nonce: Some(nonce), ..
    } = refused.scheme
    else {
        panic!("no nonce handed out: {:?}", refused.scheme);
    };
    let mut claims_with_nonce = Client::claims(
        "GET",
        "https://api.example.com/orders/1",
        TOKEN,
        crate::claims::unix_now(),
    );
    claims_with_nonce["nonce"] = json!(nonce);
    let proof = client.sign(&client.header(), &claims_with_nonce);
    let headers = vec![("dpop".to_owned(), proof)];
    assert!(
        binder
            .check(
                RouteBinding::Dpop,
                &presented(Scheme::Dpop, &headers, None),
                &bound
            )
            .is_ok()
    );
}
