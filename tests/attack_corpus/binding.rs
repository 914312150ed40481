//! What the sender-constrained entries are made of: the public JWKs and
//! RFC 7638 thumbprints of fixture keys (for `cnf.jkt` and DPoP proofs),
//! the SHA-256 thumbprints of fixture certificates (for
//! `cnf["x5t#S256"]`), and the recipe of a DPoP proof (RFC 9449 §4.2).
//!
//! Thumbprints are computed here from the RFCs, not by asking tollgate, so
//! the corpus checks tollgate's arithmetic rather than repeating it.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair as _,
};
use serde::Deserialize;

use crate::sign::{b64, private_key_pem};
use crate::support::check::{fixture, pem_der};
use crate::support::repo_path;

/// A DPoP proof: a JWS whose header carries the public key that signed it
/// (RFC 9449 §4.2). Header, claims and signature default to a proof that
/// is valid for the entry's request and token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProofRecipe {
    /// The fixture key that signs the proof.
    pub(crate) key: String,
    /// The fixture key `${proof_jwk}` shows; `key` unless it says otherwise
    /// (a proof whose signature is not by the key it shows).
    pub(crate) jwk: Option<String>,
    /// The JOSE header, as JSON text; default [`PROOF_HEADER`].
    pub(crate) header: Option<String>,
    /// The claims, as JSON text; default [`PROOF_CLAIMS`].
    pub(crate) claims: Option<String>,
    /// A `sign` recipe; default `key:KEY`.
    pub(crate) sign: Option<String>,
}

/// The header of a valid proof (RFC 9449 §4.2).
pub(crate) const PROOF_HEADER: &str =
    r#"{"typ":"dpop+jwt","alg":"${proof_alg}","jwk":${proof_jwk}}"#;
/// The claims of a valid proof for this request and token (RFC 9449 §4.2).
pub(crate) const PROOF_CLAIMS: &str =
    r#"{"jti":"${jti}","htm":"${htm}","htu":"${htu}","iat":${now},"ath":"${ath}"}"#;

/// A fixture key's public JWK with exactly the members RFC 7638 §3.2
/// requires, in lexicographic order and without white space: the text a
/// client puts in a proof's `jwk`, and the text its thumbprint hashes.
pub(crate) fn public_jwk(name: &str) -> Result<String, String> {
    let der = pem_der(&private_key_pem(name)?);
    if let Some((crv, point)) = ec_public_point(&der) {
        let (x, y) = point[1..].split_at((point.len() - 1) / 2);
        return Ok(jwk_json(&[
            ("crv", crv),
            ("kty", "EC"),
            ("x", &b64(x)),
            ("y", &b64(y)),
        ]));
    }
    if let Ok(key) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der) {
        let x = b64(key.public_key().as_ref());
        return Ok(jwk_json(&[("crv", "Ed25519"), ("kty", "OKP"), ("x", &x)]));
    }
    // The one RSA key: its published JWK has the modulus already.
    let published: serde_json::Value =
        serde_json::from_slice(&fixture(&format!("{name}.jwk.json")))
            .map_err(|e| format!("{name}.jwk.json: {e}"))?;
    let member = |m: &str| published[m].as_str().map(str::to_owned);
    match (member("kty").as_deref(), member("e"), member("n")) {
        (Some("RSA"), Some(e), Some(n)) => Ok(jwk_json(&[("e", &e), ("kty", "RSA"), ("n", &n)])),
        _ => Err(format!(
            "{name} is neither EC, Ed25519 nor a published RSA key"
        )),
    }
}

/// An EC fixture key's public JWK with its private scalar `d` (RFC 7518
/// §6.2.2.1) beside it: a client that sends its private key.
pub(crate) fn private_jwk(name: &str) -> Result<String, String> {
    let der = pem_der(&private_key_pem(name)?);
    let (crv, point) = ec_public_point(&der).ok_or(format!("{name} is not an EC key"))?;
    let (x, y) = point[1..].split_at((point.len() - 1) / 2);
    // ECPrivateKey (RFC 5915 §3) inside PKCS#8: version 1, then the
    // scalar as an OCTET STRING as long as a coordinate.
    let prefix = [0x02, 0x01, 0x01, 0x04, x.len() as u8];
    let start = der
        .windows(prefix.len())
        .position(|window| window == prefix)
        .ok_or(format!("no private scalar in {name}"))?
        + prefix.len();
    let d = der
        .get(start..start + x.len())
        .ok_or(format!("{name}: short private scalar"))?;
    Ok(jwk_json(&[
        ("crv", crv),
        ("d", &b64(d)),
        ("kty", "EC"),
        ("x", &b64(x)),
        ("y", &b64(y)),
    ]))
}

/// The curve and uncompressed public point (`04 || x || y`) of an EC key.
fn ec_public_point(der: &[u8]) -> Option<(&'static str, Vec<u8>)> {
    for (crv, algorithm) in [
        ("P-256", &ECDSA_P256_SHA256_FIXED_SIGNING),
        ("P-384", &ECDSA_P384_SHA384_FIXED_SIGNING),
    ] {
        if let Ok(key) = EcdsaKeyPair::from_pkcs8(algorithm, der) {
            return Some((crv, key.public_key().as_ref().to_vec()));
        }
    }
    None
}

/// A JSON object of string members, written as given: no white space, no
/// escaping needed for base64url and the names used here.
fn jwk_json(members: &[(&str, &str)]) -> String {
    let body: Vec<String> = members
        .iter()
        .map(|(name, value)| format!(r#""{name}":"{value}""#))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// The RFC 7638 thumbprint of fixture key `name`, as `cnf.jkt` names it
/// (RFC 9449 §6.1): base64url SHA-256 of its canonical public JWK.
pub(crate) fn jkt(name: &str) -> Result<String, String> {
    Ok(b64(digest(&SHA256, public_jwk(name)?.as_bytes()).as_ref()))
}

/// The algorithm a client signs proofs with when its key is `name`.
pub(crate) fn natural_alg(name: &str) -> Result<&'static str, String> {
    let der = pem_der(&private_key_pem(name)?);
    Ok(match ec_public_point(&der) {
        Some(("P-384", _)) => "ES384",
        Some(_) => "ES256",
        None if Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).is_ok() => "EdDSA",
        None => "RS256",
    })
}

/// `base64url(SHA-256(token))`: a proof's `ath` (RFC 9449 §4.2).
pub(crate) fn ath(token: &str) -> String {
    b64(digest(&SHA256, token.as_bytes()).as_ref())
}

/// A fresh proof id: 16 random bytes, base64url (RFC 9449 §4.2 `jti`).
pub(crate) fn fresh_jti() -> String {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random generator");
    b64(&bytes)
}

/// The fixture certificates a request may present: `tls-client` (Envoy's
/// client certificate, `CN=envoy`) and `tls-server` (tollgate's).
pub(crate) const CERTIFICATES: [&str; 2] = ["tls-client", "tls-server"];

/// The PEM files of fixture certificate `name` and its key.
pub(crate) fn certificate_files(
    name: &str,
) -> Result<(std::path::PathBuf, std::path::PathBuf), String> {
    if !CERTIFICATES.contains(&name) {
        return Err(format!("unknown certificate {name:?}: {CERTIFICATES:?}"));
    }
    let file = name.trim_start_matches("tls-");
    Ok((
        repo_path(format!("tests/fixtures/tls/{file}.crt")),
        repo_path(format!("tests/fixtures/tls/{file}.key")),
    ))
}

/// The PEM text of fixture certificate `name`.
pub(crate) fn certificate_pem(name: &str) -> Result<String, String> {
    let (certificate, _) = certificate_files(name)?;
    std::fs::read_to_string(&certificate)
        .map_err(|e| format!("reading {}: {e}", certificate.display()))
}

/// SHA-256 of fixture certificate `name`'s DER.
fn certificate_digest(name: &str) -> Result<Vec<u8>, String> {
    let der = pem_der(certificate_pem(name)?.as_bytes());
    Ok(digest(&SHA256, &der).as_ref().to_vec())
}

/// The RFC 8705 §3.1 thumbprint `cnf["x5t#S256"]` names: base64url.
pub(crate) fn x5t(name: &str) -> Result<String, String> {
    Ok(b64(&certificate_digest(name)?))
}

/// The same digest as lower-case hex, as an XFCC `Hash=` writes it.
pub(crate) fn x5t_hex(name: &str) -> Result<String, String> {
    Ok(certificate_digest(name)?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// `text` percent-encoded but for unreserved characters (RFC 3986 §2.3):
/// how Envoy sends a peer certificate in a CheckRequest.
pub(crate) fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[test]
fn thumbprints_follow_rfc_7638() {
    // RFC 7638 §3.1: the example key's required members and thumbprint.
    let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    let canonical = jwk_json(&[("e", "AQAB"), ("kty", "RSA"), ("n", n)]);
    assert_eq!(
        b64(digest(&SHA256, canonical.as_bytes()).as_ref()),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
    // The EC fixture's computed JWK is the published one.
    let published: serde_json::Value =
        serde_json::from_slice(&fixture("ec-p256-2.jwk.json")).unwrap();
    let computed: serde_json::Value =
        serde_json::from_str(&public_jwk("ec-p256-2").unwrap()).unwrap();
    for member in ["crv", "x", "y"] {
        assert_eq!(computed[member], published[member], "{member}");
    }
    let private: serde_json::Value =
        serde_json::from_str(&private_jwk("ec-p256-2").unwrap()).unwrap();
    assert_eq!(private["d"].as_str().map(str::len), Some(43));
}
