//! Fuzz body: a compact JWS through `peek`, `is_jws_shaped` and
//! `JwtProvider::verify`, against three providers (RS256, ES256, EdDSA)
//! whose static keys are the test key set `tests/fixtures/keys/jwks.json`.
//!
//! Invariants: no panic; `peek` accepts nothing `is_jws_shaped` refuses;
//! verification with static keys never waits; and a token is only ever
//! `Ok` when it is genuinely good: its header is a JSON object without
//! `crit`, its algorithm is the provider's, its signature verifies under
//! the fixture key by a direct aws-lc-rs check (not jsonwebtoken's), and
//! `iss` and `exp` hold.

use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};
use tollgate::Config;
use tollgate::internals::{Jwks, JwtProvider, KeySource, is_jws_shaped, peek};

const JWKS: &str = include_str!("../../tests/fixtures/keys/jwks.json");

struct Fixture {
    providers: Vec<JwtProvider>,
    keys: Map<String, Value>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let yaml = format!(
            "providers:\n\
             - {{name: rs, issuer: 'https://rs.fuzz.test', algorithms: [RS256], jwks: {JWKS}}}\n\
             - {{name: es, issuer: 'https://es.fuzz.test', algorithms: [ES256], audiences: [api], jwks: {JWKS}}}\n\
             - {{name: ed, issuer: 'https://ed.fuzz.test', algorithms: [EdDSA], jwks: {JWKS}}}\n"
        );
        let config = Config::from_yaml(&yaml, Path::new("/")).expect("the fixture config loads");
        let providers = tollgate::internals::providers(config)
            .iter()
            .map(|settings| {
                let jwt = settings.jwt.as_ref().expect("JWT providers");
                let KeySource::Static(keys) = &jwt.keys else {
                    panic!("inline keys are static");
                };
                JwtProvider::new(
                    settings.name.clone(),
                    &settings.expectations,
                    jwt,
                    Jwks::new_static(keys.clone()),
                )
            })
            .collect();
        let document: Value = serde_json::from_str(JWKS).expect("fixture JWKS is JSON");
        let keys = document["keys"]
            .as_array()
            .expect("a keys array")
            .iter()
            .map(|key| (key["alg"].as_str().unwrap_or("EdDSA").to_owned(), key.clone()))
            .collect();
        Fixture { providers, keys }
    })
}

pub(crate) fn run(data: &[u8]) {
    verifications(data);
}

/// How many of the providers accepted the token, each acceptance checked.
pub(crate) fn verifications(data: &[u8]) -> usize {
    let Ok(token) = std::str::from_utf8(data) else {
        return 0;
    };
    let fixture = fixture();
    let shaped = is_jws_shaped(token);
    let Ok(unverified) = peek(token) else {
        return 0;
    };
    assert!(shaped, "peek accepted a token is_jws_shaped refuses");
    let mut accepted = 0;
    for provider in &fixture.providers {
        let verdict = {
            let mut verify = pin!(provider.verify(token, &unverified));
            match verify
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
            {
                Poll::Ready(outcome) => outcome.expect("static keys are always available"),
                Poll::Pending => panic!("verification with static keys waited"),
            }
        };
        if let Ok(verified) = verdict {
            assert_genuine(
                token,
                provider,
                unverified.algorithm,
                &verified.claims,
                fixture,
            );
            accepted += 1;
        }
    }
    accepted
}

/// The reference check behind every `Ok`.
fn assert_genuine(
    token: &str,
    provider: &JwtProvider,
    algorithm: Algorithm,
    claims: &Map<String, Value>,
    fixture: &Fixture,
) {
    let (signing_input, signature) = token.rsplit_once('.').expect("three parts");
    let (header, _) = signing_input.split_once('.').expect("three parts");
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url header"))
            .expect("JSON header");
    let header = header.as_object().expect("the header is a JSON object");
    assert!(!header.contains_key("crit"), "a crit header verified");
    let alg = format!("{algorithm:?}");
    assert_eq!(
        header.get("alg").and_then(Value::as_str),
        Some(alg.as_str())
    );
    let key = &fixture.keys[&alg];
    if let Some(kid) = header.get("kid") {
        assert_eq!(kid, &key["kid"], "verified with a key of another kid");
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .expect("base64url signature");
    let member = |name: &str| {
        URL_SAFE_NO_PAD
            .decode(key[name].as_str().expect("fixture member"))
            .expect("fixture base64url")
    };
    let message = signing_input.as_bytes();
    let genuine = match algorithm {
        Algorithm::RS256 => RsaPublicKeyComponents {
            n: member("n"),
            e: member("e"),
        }
        .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, &signature)
        .is_ok(),
        Algorithm::ES256 => {
            let point = [&[0x04][..], &member("x"), &member("y")].concat();
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(message, &signature)
                .is_ok()
        }
        Algorithm::EdDSA => UnparsedPublicKey::new(&signature::ED25519, member("x"))
            .verify(message, &signature)
            .is_ok(),
        other => panic!("{other:?} verified, which no provider allows"),
    };
    assert!(genuine, "a token verified whose signature is not genuine");
    assert_eq!(
        claims.get("iss").and_then(Value::as_str),
        Some(provider.issuer())
    );
    let exp = claims
        .get("exp")
        .and_then(Value::as_f64)
        .expect("numeric exp");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64();
    // The providers' leeway is the default 30 s.
    assert!(exp + 30.0 >= now, "an expired token verified");
}
