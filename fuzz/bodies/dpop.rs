//! Fuzz body: a DPoP proof (RFC 9449) through `DpopVerifier::verify` for a
//! fixed request (`GET https://api.fuzz.test/orders/1`), a fixed access
//! token and a fixed clock, so the committed seeds stay valid.
//!
//! Invariants: no panic; and a proof is only ever accepted when it is
//! genuinely good: one JWS whose header is a JSON object with `typ`
//! `dpop+jwt`, an asymmetric `alg`, a `jwk` without private members and no
//! `crit`; whose signature verifies under that `jwk` by a direct aws-lc-rs
//! check (not jsonwebtoken's); and whose `htm`, `htu`, `iat` and `ath` fit
//! the request, the clock and the token. The returned thumbprint is the
//! key's.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use tollgate::internals::{DpopSettings, DpopVerifier, PathParameters, ProofRequest};

/// The access token every proof is checked with.
pub(crate) const TOKEN: &str = "fuzz-access-token";
/// The clock: 2023-11-14T22:13:20Z.
pub(crate) const NOW: f64 = 1_700_000_000.0;

fn request() -> ProofRequest<'static> {
    ProofRequest {
        method: "GET",
        scheme: "https",
        authority: "api.fuzz.test",
        path: "/orders/1",
        path_parameters: PathParameters::default(),
    }
}

pub(crate) fn run(data: &[u8]) {
    accepts(data);
}

/// Whether the proof was accepted, each acceptance checked.
pub(crate) fn accepts(data: &[u8]) -> bool {
    let Ok(proof) = std::str::from_utf8(data) else {
        return false;
    };
    // A fresh verifier: a seed replayed twice is still judged on its own.
    let verifier = DpopVerifier::new(&DpopSettings::default());
    match verifier.verify(&[proof], &request(), TOKEN, NOW) {
        Ok(thumbprint) => {
            assert_genuine(proof, &thumbprint);
            true
        }
        Err(_) => false,
    }
}

fn decode(part: &str) -> Map<String, Value> {
    let bytes = URL_SAFE_NO_PAD.decode(part).expect("base64url part");
    match serde_json::from_slice(&bytes).expect("a JSON part") {
        Value::Object(members) => members,
        _ => panic!("an accepted part that is not an object"),
    }
}

/// The reference check behind every acceptance.
fn assert_genuine(proof: &str, thumbprint: &str) {
    let (signing_input, signature) = proof.rsplit_once('.').expect("three parts");
    let (header, payload) = signing_input.split_once('.').expect("three parts");
    assert!(!payload.contains('.'), "more than three parts accepted");
    let (header, claims) = (decode(header), decode(payload));
    assert!(!header.contains_key("crit"), "a crit header was accepted");
    let typ = header["typ"].as_str().expect("a string typ");
    assert!(typ.eq_ignore_ascii_case("dpop+jwt"), "typ {typ} accepted");
    let jwk = header["jwk"].as_object().expect("a jwk object");
    for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
        assert!(!jwk.contains_key(private), "a private jwk was accepted");
    }
    let member = |name: &str| {
        URL_SAFE_NO_PAD
            .decode(jwk[name].as_str().expect("a string key member"))
            .expect("a base64url key member")
    };
    let message = signing_input.as_bytes();
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .expect("base64url signature");
    let alg = header["alg"].as_str().expect("a string alg");
    let rsa = |parameters| {
        RsaPublicKeyComponents {
            n: member("n"),
            e: member("e"),
        }
        .verify(parameters, message, &signature)
        .is_ok()
    };
    let ec = |parameters| {
        let point = [&[0x04][..], &member("x"), &member("y")].concat();
        UnparsedPublicKey::new(parameters, point)
            .verify(message, &signature)
            .is_ok()
    };
    let (genuine, canonical) = match alg {
        "ES256" => (
            ec(&signature::ECDSA_P256_SHA256_FIXED),
            ec_thumbprint_input(jwk),
        ),
        "ES384" => (
            ec(&signature::ECDSA_P384_SHA384_FIXED),
            ec_thumbprint_input(jwk),
        ),
        "EdDSA" => (
            UnparsedPublicKey::new(&signature::ED25519, member("x"))
                .verify(message, &signature)
                .is_ok(),
            format!(
                r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                jwk["x"].as_str().unwrap_or_default()
            ),
        ),
        "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => {
            let parameters: &signature::RsaParameters = match alg {
                "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
                "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
                "PS384" => &signature::RSA_PSS_2048_8192_SHA384,
                _ => &signature::RSA_PSS_2048_8192_SHA512,
            };
            (
                rsa(parameters),
                format!(
                    r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                    jwk["e"].as_str().unwrap_or_default(),
                    jwk["n"].as_str().unwrap_or_default()
                ),
            )
        }
        other => panic!("a proof signed with {other} was accepted"),
    };
    assert!(
        genuine,
        "a proof whose signature is not genuine was accepted"
    );
    assert_eq!(
        thumbprint,
        URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes())),
        "the thumbprint is not the key's"
    );
    assert_eq!(claims["htm"], "GET");
    let htu = claims["htu"].as_str().expect("a string htu");
    assert!(
        htu.to_ascii_lowercase()
            .starts_with("https://api.fuzz.test"),
        "htu {htu} accepted"
    );
    let iat = claims["iat"].as_f64().expect("a numeric iat");
    assert!(
        (NOW - 65.0..=NOW + 5.0).contains(&iat),
        "iat {iat} accepted"
    );
    assert_eq!(
        claims["ath"],
        URL_SAFE_NO_PAD.encode(digest(&SHA256, TOKEN.as_bytes()))
    );
}

fn ec_thumbprint_input(jwk: &Map<String, Value>) -> String {
    let text = |name: &str| jwk[name].as_str().unwrap_or_default().to_owned();
    format!(
        r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
        text("crv"),
        text("x"),
        text("y")
    )
}
