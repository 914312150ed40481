//! JWKS parsing as IdPs publish it: each key kind, skipped keys with their
//! reasons, and documents refused whole.

use super::*;
use jsonwebtoken::{EncodingKey, Header, Validation};
use serde_json::json;

// Paths are relative to this file, so they resolve the same wherever the
// module is compiled from.
const JWKS: &str = include_str!("../../../tests/fixtures/keys/jwks.json");
const IDCS: &str = include_str!("../../../tests/fixtures/keys/idcs-style.json");
const RSA_JWK: &str = include_str!("../../../tests/fixtures/keys/rsa-2048.jwk.json");
const RSA_SHORT_JWK: &str = include_str!("../../../tests/fixtures/keys/rsa-1024.jwk.json");
const EC_JWK: &str = include_str!("../../../tests/fixtures/keys/ec-p256-1.jwk.json");
const EC2_JWK: &str = include_str!("../../../tests/fixtures/keys/ec-p256-2.jwk.json");
const EC384_JWK: &str = include_str!("../../../tests/fixtures/keys/ec-p384.jwk.json");
const ED_JWK: &str = include_str!("../../../tests/fixtures/keys/ed25519.jwk.json");
const RSA_PEM: &[u8] = include_bytes!("../../../tests/fixtures/keys/rsa-2048.pem");
const EC_PEM: &[u8] = include_bytes!("../../../tests/fixtures/keys/ec-p256-1.pem");
const EC384_PEM: &[u8] = include_bytes!("../../../tests/fixtures/keys/ec-p384.pem");
const ED_PEM: &[u8] = include_bytes!("../../../tests/fixtures/keys/ed25519.pem");

fn jwk(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn with(mut jwk: Value, member: &str, value: Value) -> Value {
    jwk[member] = value;
    jwk
}

fn without(mut jwk: Value, member: &str) -> Value {
    jwk.as_object_mut().unwrap().remove(member);
    jwk
}

fn parse(keys: Vec<Value>) -> (KeySet, Vec<SkippedKey>) {
    let document = serde_json::to_vec(&json!({ "keys": keys })).unwrap();
    KeySet::from_json(&document).unwrap()
}

fn sign(alg: Algorithm, key: &EncodingKey, kid: &str) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, &json!({ "sub": "alice" }), key).unwrap()
}

fn verifies(token: &str, alg: Algorithm, key: &VerifyingKey) -> bool {
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    jsonwebtoken::decode::<Value>(token, &key.key, &validation).is_ok()
}

#[test]
fn fixture_jwks_loads_every_key_type_and_verifies() {
    let (set, skipped) = KeySet::from_json(JWKS.as_bytes()).unwrap();
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(set.len(), 3);
    for (kid, alg, key) in [
        (
            "rsa-1",
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(RSA_PEM),
        ),
        ("ec-1", Algorithm::ES256, EncodingKey::from_ec_pem(EC_PEM)),
        ("ed-1", Algorithm::EdDSA, EncodingKey::from_ed_pem(ED_PEM)),
    ] {
        let token = sign(alg, &key.unwrap(), kid);
        let candidates: Vec<_> = set.candidates(Some(kid), alg).collect();
        assert_eq!(candidates.len(), 1, "{kid}");
        assert_eq!(candidates[0].algorithms, vec![alg]);
        assert!(verifies(&token, alg, candidates[0]), "{kid}");
    }
}

#[test]
fn p384_key_verifies_es384() {
    let (set, skipped) = parse(vec![jwk(EC384_JWK)]);
    assert!(skipped.is_empty(), "{skipped:?}");
    let key = set
        .candidates(Some("ec-384"), Algorithm::ES384)
        .next()
        .unwrap();
    let token = sign(
        Algorithm::ES384,
        &EncodingKey::from_ec_pem(EC384_PEM).unwrap(),
        "ec-384",
    );
    assert!(verifies(&token, Algorithm::ES384, key));
}

#[test]
fn oracle_idcs_style_jwks_loads() {
    let (set, skipped) = KeySet::from_json(IDCS.as_bytes()).unwrap();
    assert!(skipped.is_empty(), "{skipped:?}");
    let key = set
        .candidates(Some("SIGNING_KEY"), Algorithm::RS256)
        .next()
        .unwrap();
    let token = sign(
        Algorithm::RS256,
        &EncodingKey::from_rsa_pem(RSA_PEM).unwrap(),
        "SIGNING_KEY",
    );
    assert!(verifies(&token, Algorithm::RS256, key));
}

#[test]
fn the_jwks_oracle_idcs_publishes_loads_as_is() {
    let published = include_bytes!("../../../tests/fixtures/jwks/oracle-idcs-published.json");
    let (set, skipped) = KeySet::from_json(published).unwrap();
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(set.len(), 1);
    let key = set
        .candidates(Some("SIGNING_KEY"), Algorithm::RS256)
        .next()
        .unwrap();
    assert_eq!(key.algorithms, [Algorithm::RS256]);
}

#[test]
fn key_without_alg_allows_the_family() {
    let (set, _) = parse(vec![
        without(jwk(RSA_JWK), "alg"),
        without(jwk(EC_JWK), "alg"),
        without(jwk(ED_JWK), "alg"),
    ]);
    assert_eq!(set.len(), 3);
    let rsa = set
        .candidates(Some("rsa-1"), Algorithm::PS384)
        .next()
        .unwrap();
    assert_eq!(rsa.algorithms, RSA_ALGORITHMS.to_vec());
    assert_eq!(set.candidates(None, Algorithm::ES256).count(), 1);
    assert_eq!(set.candidates(None, Algorithm::ES384).count(), 0);
    assert_eq!(set.candidates(None, Algorithm::EdDSA).count(), 1);
}

#[test]
fn unusable_keys_are_skipped_with_reasons() {
    let cases = [
        (with(jwk(EC2_JWK), "use", json!("enc")), "encryption"),
        (
            json!({ "kty": "oct", "kid": "hmac", "k": "c2VjcmV0" }),
            "symmetric",
        ),
        (jwk(RSA_SHORT_JWK), "1024 bits"),
        (
            with(jwk(EC_JWK), "crv", json!("P-521")),
            "unsupported EC curve",
        ),
        (with(jwk(EC_JWK), "crv", json!("P-384")), "48 bytes"),
        (with(jwk(EC_JWK), "alg", json!("ES384")), "does not fit"),
        (with(jwk(RSA_JWK), "alg", json!("ES256")), "does not fit"),
        (with(jwk(RSA_JWK), "alg", json!("HS256")), "does not fit"),
        (
            with(jwk(RSA_JWK), "alg", json!("RSA-OAEP")),
            "not a supported",
        ),
        (with(jwk(ED_JWK), "crv", json!("X25519")), "unsupported OKP"),
        (
            with(jwk(EC_JWK), "y", json!(BASE64URL.encode([7u8; 32]))),
            "not on the curve",
        ),
        (without(jwk(RSA_JWK), "n"), "n is missing"),
        (with(jwk(RSA_JWK), "n", json!("***")), "not base64url"),
        (json!({ "kty": "EC", "kid": 7 }), "kid is not a string"),
        (json!({ "kid": "x" }), "kty is missing"),
        (json!({ "kty": "RSA-ish", "kid": "x" }), "unsupported kty"),
        (json!("a string"), "not a JSON object"),
    ];
    for (key, expected) in cases {
        let (set, skipped) = parse(vec![key.clone(), jwk(ED_JWK)]);
        assert_eq!(set.len(), 1, "{key}");
        assert_eq!(skipped.len(), 1, "{key}");
        assert!(
            skipped[0].reason.contains(expected),
            "{key}: {:?} should mention {expected:?}",
            skipped[0].reason
        );
    }
    let (_, skipped) = parse(vec![jwk(RSA_SHORT_JWK)]);
    assert_eq!(skipped[0].kid.as_deref(), Some("rsa-short"));
}

#[test]
fn tolerates_odd_key_ops_unknown_members_and_padding() {
    let mut rsa = jwk(RSA_JWK);
    rsa["key_ops"] = json!(["sig", "encrypt"]);
    rsa["x5t"] = json!(42);
    rsa["ext"] = json!({ "whatever": true });
    rsa["use"] = json!("signature");
    // 256 bytes encode to 342 characters plus "==" when padded.
    let padded = format!("{}==", rsa["n"].as_str().unwrap());
    rsa["n"] = json!(padded);
    let (set, skipped) = parse(vec![rsa]);
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(set.len(), 1);
}

#[test]
fn candidates_select_by_kid_then_alg() {
    let rotated = with(jwk(EC2_JWK), "kid", json!("ec-1"));
    let (set, _) = parse(vec![
        jwk(RSA_JWK),
        jwk(EC_JWK),
        rotated,
        jwk(ED_JWK),
        without(jwk(EC384_JWK), "kid"),
    ]);
    assert_eq!(set.len(), 5);
    // Duplicate kids (rotation overlap) both stay candidates.
    assert_eq!(set.candidates(Some("ec-1"), Algorithm::ES256).count(), 2);
    assert_eq!(set.candidates(Some("ec-1"), Algorithm::RS256).count(), 0);
    assert_eq!(set.candidates(Some("nope"), Algorithm::ES256).count(), 0);
    // A kid-less key only answers kid-less tokens.
    assert_eq!(set.candidates(Some("ec-384"), Algorithm::ES384).count(), 0);
    assert_eq!(set.candidates(None, Algorithm::ES384).count(), 1);
    assert_eq!(set.candidates(None, Algorithm::ES256).count(), 2);
    assert_eq!(set.candidates(None, Algorithm::RS256).count(), 1);
    assert_eq!(set.candidates(None, Algorithm::HS256).count(), 0);
    assert!(set.contains_kid("ed-1"));
    assert!(!set.contains_kid("ec-384"));
}

#[test]
fn documents_that_are_not_a_jwks_are_errors() {
    assert!(matches!(
        KeySet::from_json(b"<html>"),
        Err(JwksParseError::Json(_))
    ));
    assert!(matches!(
        KeySet::from_json(b"{\"issuer\":\"x\"}"),
        Err(JwksParseError::MissingKeys)
    ));
    assert!(matches!(
        KeySet::from_json(b"{\"keys\":{}}"),
        Err(JwksParseError::MissingKeys)
    ));
    let many = vec![jwk(ED_JWK); MAX_KEYS + 1];
    let document = serde_json::to_vec(&json!({ "keys": many })).unwrap();
    assert!(matches!(
        KeySet::from_json(&document),
        Err(JwksParseError::TooManyKeys { count: 101 })
    ));
    let (set, skipped) = KeySet::from_json(b"{\"keys\":[]}").unwrap();
    assert!(set.is_empty() && skipped.is_empty());
}

#[test]
fn sets_are_equal_when_their_documents_are() {
    let (first, _) = KeySet::from_json(JWKS.as_bytes()).unwrap();
    let (again, _) = KeySet::from_json(JWKS.as_bytes()).unwrap();
    let (other, _) = KeySet::from_json(IDCS.as_bytes()).unwrap();
    assert_eq!(first, again);
    assert_ne!(first, other);
    assert_ne!(first, KeySet::default());
}
