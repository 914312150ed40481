//! DPoP proofs (RFC 9449) as a client makes them: a new P-256 key per
//! client, its public JWK and RFC 7638 thumbprint (what a bound token's
//! `cnf.jkt` holds), and proofs built field by field, so a test can break
//! exactly one thing about a proof that is otherwise valid.
//!
//! ```ignore
//! let key = DpopKey::generate();
//! let proof = key.proof("GET", "https://127.0.0.1:8443/dpop").access_token(&token).sign();
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::encoding::AsBigEndian as _;
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Map, Value, json};

/// A client's DPoP key: ECDSA P-256, signing ES256.
pub struct DpopKey {
    pair: EcdsaKeyPair,
    encoding: EncodingKey,
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopKey")
            .field("jkt", &self.thumbprint())
            .finish_non_exhaustive()
    }
}

impl DpopKey {
    /// A new random key.
    pub fn generate() -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .expect("generating a P-256 key");
        let pkcs8 = pair.to_pkcs8v1().expect("encoding the key as PKCS#8");
        let encoding = EncodingKey::from_ec_der(pkcs8.as_ref());
        Self { pair, encoding }
    }

    /// The public JWK, members in RFC 7638 order: `{crv, kty, x, y}`.
    pub fn public_jwk(&self) -> Value {
        // An uncompressed point: 0x04, then x and y, 32 bytes each.
        let point = self.pair.public_key().as_ref();
        assert_eq!(point.len(), 65, "an uncompressed P-256 point");
        json!({
            "crv": "P-256",
            "kty": "EC",
            "x": b64(&point[1..33]),
            "y": b64(&point[33..]),
        })
    }

    /// The public JWK plus the private scalar `d`: what a proof must never
    /// carry.
    pub fn private_jwk(&self) -> Value {
        let scalar = self
            .pair
            .private_key()
            .as_be_bytes()
            .expect("the private scalar");
        let mut jwk = self.public_jwk();
        jwk["d"] = b64(scalar.as_ref()).into();
        jwk
    }

    /// The RFC 7638 JWK thumbprint (SHA-256, base64url): `cnf.jkt` of the
    /// tokens bound to this key.
    pub fn thumbprint(&self) -> String {
        let jwk = self.public_jwk();
        // RFC 7638 3.2: the required members only, in lexical order, no
        // whitespace.
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":{},"y":{}}}"#,
            jwk["x"], jwk["y"]
        );
        b64(digest(&SHA256, canonical.as_bytes()).as_ref())
    }

    /// A valid proof for `method url` (no `ath`: add
    /// [`Proof::access_token`] for a resource request), signed by this key,
    /// `iat` now and a new random `jti`.
    pub fn proof(&self, method: &str, url: &str) -> Proof<'_> {
        let header = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": self.public_jwk() });
        let claims = json!({ "jti": random_id(), "htm": method, "htu": url, "iat": unix_now() });
        Proof {
            key: self,
            header: into_map(header),
            claims: into_map(claims),
            signer: Signer::Own,
        }
    }

    fn sign(&self, input: &[u8]) -> String {
        jsonwebtoken::crypto::sign(input, &self.encoding, Algorithm::ES256)
            .expect("signing a DPoP proof")
    }
}

/// How a [`Proof`] is signed.
enum Signer<'k> {
    /// By the key its `jwk` names.
    Own,
    /// By another ES256 key, while `jwk` still names the first one.
    Other(&'k DpopKey),
    /// HMAC-SHA256 with this secret, `alg` set to `HS256`.
    Hs256(Vec<u8>),
    /// Not at all: `alg` `none` and an empty signature.
    Unsigned,
}

/// A proof being built; [`Proof::sign`] gives the compact JWS.
pub struct Proof<'k> {
    key: &'k DpopKey,
    header: Map<String, Value>,
    claims: Map<String, Value>,
    signer: Signer<'k>,
}

impl<'k> Proof<'k> {
    /// `ath`: the base64url SHA-256 of `token`, binding the proof to the
    /// access token it accompanies.
    pub fn access_token(self, token: &str) -> Self {
        self.claim("ath", ath(token))
    }

    /// `iat`, in seconds since the epoch.
    pub fn iat(self, iat: i64) -> Self {
        self.claim("iat", iat)
    }

    /// Sets claim `name` (replacing one of the defaults).
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.to_owned(), value.into());
        self
    }

    /// Leaves claim `name` out.
    pub fn without_claim(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// Sets header member `name`.
    pub fn header(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.header.insert(name.to_owned(), value.into());
        self
    }

    /// Leaves header member `name` out.
    pub fn without_header(mut self, name: &str) -> Self {
        self.header.remove(name);
        self
    }

    /// Signs with `other` while the header's `jwk` stays this key's.
    pub fn signed_by(mut self, other: &'k DpopKey) -> Self {
        self.signer = Signer::Other(other);
        self
    }

    /// `alg: HS256`, an HMAC over the proof with `secret`.
    pub fn hs256(mut self, secret: &[u8]) -> Self {
        self.signer = Signer::Hs256(secret.to_vec());
        self.header("alg", "HS256")
    }

    /// `alg: none` and no signature.
    pub fn unsigned(mut self) -> Self {
        self.signer = Signer::Unsigned;
        self.header("alg", "none")
    }

    /// The compact JWS: `b64(header).b64(claims).b64(signature)`.
    pub fn sign(&self) -> String {
        let input = format!(
            "{}.{}",
            b64(Value::Object(self.header.clone()).to_string().as_bytes()),
            b64(Value::Object(self.claims.clone()).to_string().as_bytes()),
        );
        let signature = match &self.signer {
            Signer::Own => self.key.sign(input.as_bytes()),
            Signer::Other(other) => other.sign(input.as_bytes()),
            Signer::Hs256(secret) => jsonwebtoken::crypto::sign(
                input.as_bytes(),
                &EncodingKey::from_secret(secret),
                Algorithm::HS256,
            )
            .expect("an HS256 signature"),
            Signer::Unsigned => String::new(),
        };
        format!("{input}.{signature}")
    }
}

/// `ath` for `token`: base64url(SHA-256(token)).
pub fn ath(token: &str) -> String {
    b64(digest(&SHA256, token.as_bytes()).as_ref())
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// 16 random bytes, base64url: a `jti` no other proof has.
fn random_id() -> String {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("random bytes for a jti");
    b64(&bytes)
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn into_map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not a JSON object: {other}"),
    }
}
