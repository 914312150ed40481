//! RFC 7638 JWK thumbprints: the SHA-256 of a public key's required
//! members, in lexicographic order with no white space, base64url-encoded.
//! A DPoP-bound token names its key this way in `cnf.jkt` (RFC 9449 §6.1).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::digest::sha256;

/// The members RFC 7638 §3.2 hashes for each key type, already in
/// lexicographic order. Other members (`alg`, `kid`, `use`) never count.
fn required_members(kty: &str) -> Option<&'static [&'static str]> {
    match kty {
        "EC" => Some(&["crv", "kty", "x", "y"]),
        "RSA" => Some(&["e", "kty", "n"]),
        "OKP" => Some(&["crv", "kty", "x"]),
        _ => None,
    }
}

/// The base64url SHA-256 thumbprint of a public JWK, or `None` when a
/// required member is missing or not a string, or the key type is one a
/// DPoP proof may not use.
pub(crate) fn jwk_thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let kty = jwk.get("kty")?.as_str()?;
    let mut canonical = String::from("{");
    for (index, name) in required_members(kty)?.iter().enumerate() {
        let value = jwk.get(*name)?.as_str()?;
        if index > 0 {
            canonical.push(',');
        }
        // serde_json writes a string with JSON's own escaping, which is
        // what RFC 7638 §3.3 asks for.
        canonical.push_str(&serde_json::to_string(name).ok()?);
        canonical.push(':');
        canonical.push_str(&serde_json::to_string(value).ok()?);
    }
    canonical.push('}');
    Some(URL_SAFE_NO_PAD.encode(sha256(canonical.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    /// RFC 7638 §3.1's example key and its published thumbprint.
    #[test]
    fn matches_the_rfc_7638_example() {
        let jwk = object(json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        }));
        assert_eq!(
            jwk_thumbprint(&jwk).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
    }

    #[test]
    fn only_required_members_count_and_order_does_not_matter() {
        let a = object(json!({"kty": "EC", "crv": "P-256", "x": "AAA", "y": "BBB"}));
        let b = object(
            json!({"y": "BBB", "x": "AAA", "kid": "k", "crv": "P-256", "kty": "EC", "alg": "ES256"}),
        );
        assert_eq!(jwk_thumbprint(&a), jwk_thumbprint(&b));
        let other = object(json!({"kty": "EC", "crv": "P-256", "x": "AAA", "y": "BBC"}));
        assert_ne!(jwk_thumbprint(&a), jwk_thumbprint(&other));
    }

    #[test]
    fn incomplete_or_unknown_keys_have_no_thumbprint() {
        for jwk in [
            json!({"kty": "EC", "crv": "P-256", "x": "AAA"}),
            json!({"kty": "oct", "k": "c2VjcmV0"}),
            json!({"kty": "OKP", "crv": "Ed25519", "x": 5}),
            json!({"crv": "Ed25519", "x": "AAA"}),
        ] {
            assert_eq!(jwk_thumbprint(&object(jwk.clone())), None, "{jwk}");
        }
    }
}
