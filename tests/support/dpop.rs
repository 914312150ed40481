//! DPoP proofs (RFC 9449) as a client makes them: a new key per client
//! (ES256 unless a test picks another algorithm), its public JWK and RFC 7638
//! thumbprint (what a bound token's `cnf.jkt` holds), and proofs built field
//! by field, so a test can break exactly one thing about a proof that is
//! otherwise valid.
//!
//! ```ignore
//! let key = DpopKey::generate();
//! let proof = key.proof("GET", "https://127.0.0.1:8443/dpop").access_token(&token).sign();
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::encoding::AsBigEndian as _;
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING,
    ECDSA_P521_SHA512_FIXED_SIGNING, EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair,
    KeyPair as _, RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaEncoding, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Map, Value, json};

/// The key pair behind a [`DpopKey`].
enum Pair {
    /// ECDSA on curve `crv`, signatures in the fixed r||s form JWS uses.
    Ec(EcdsaKeyPair, &'static str),
    Ed25519(Ed25519KeyPair),
    /// RSA 2048, signing with `padding`.
    Rsa(RsaKeyPair, &'static dyn RsaEncoding),
}

/// A client's DPoP key and the JWS `alg` it signs with.
pub struct DpopKey {
    pair: Pair,
    alg: &'static str,
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopKey")
            .field("alg", &self.alg)
            .field("jkt", &self.thumbprint())
            .finish_non_exhaustive()
    }
}

impl DpopKey {
    /// A new P-256 key signing ES256.
    pub fn generate() -> Self {
        Self::ec(&ECDSA_P256_SHA256_FIXED_SIGNING, "P-256", "ES256")
    }

    /// A new key for JWS algorithm `alg`: ES256, ES384, ES512, EdDSA
    /// (Ed25519), RS256 or PS256 (RSA 2048).
    pub fn for_algorithm(alg: &str) -> Self {
        match alg {
            "ES256" => Self::generate(),
            "ES384" => Self::ec(&ECDSA_P384_SHA384_FIXED_SIGNING, "P-384", "ES384"),
            "ES512" => Self::ec(&ECDSA_P521_SHA512_FIXED_SIGNING, "P-521", "ES512"),
            "EdDSA" => Self {
                pair: Pair::Ed25519(Ed25519KeyPair::generate().expect("an Ed25519 key")),
                alg: "EdDSA",
            },
            "RS256" => Self::rsa(&RSA_PKCS1_SHA256, "RS256"),
            "PS256" => Self::rsa(&RSA_PSS_SHA256, "PS256"),
            other => panic!("no DPoP test key for alg {other}"),
        }
    }

    fn ec(algorithm: &'static EcdsaSigningAlgorithm, crv: &'static str, alg: &'static str) -> Self {
        let pair = EcdsaKeyPair::generate(algorithm)
            .unwrap_or_else(|e| panic!("generating a {crv} key: {e}"));
        Self {
            pair: Pair::Ec(pair, crv),
            alg,
        }
    }

    fn rsa(padding: &'static dyn RsaEncoding, alg: &'static str) -> Self {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("generating an RSA key");
        Self {
            pair: Pair::Rsa(pair, padding),
            alg,
        }
    }

    /// The JWS `alg` this key signs with.
    pub fn alg(&self) -> &'static str {
        self.alg
    }

    /// The public JWK: exactly the members RFC 7638 hashes.
    pub fn public_jwk(&self) -> Value {
        match &self.pair {
            Pair::Ec(pair, crv) => {
                // An uncompressed point: 0x04, then x and y of equal length.
                let point = &pair.public_key().as_ref()[1..];
                let (x, y) = point.split_at(point.len() / 2);
                json!({ "crv": crv, "kty": "EC", "x": b64(x), "y": b64(y) })
            }
            Pair::Ed25519(pair) => {
                json!({ "crv": "Ed25519", "kty": "OKP", "x": b64(pair.public_key().as_ref()) })
            }
            Pair::Rsa(pair, _) => {
                let public = pair.public_key();
                json!({
                    "e": b64(public.exponent().big_endian_without_leading_zero()),
                    "kty": "RSA",
                    "n": b64(public.modulus().big_endian_without_leading_zero()),
                })
            }
        }
    }

    /// The public JWK plus the private scalar `d` (EC keys only): what a
    /// proof must never carry.
    pub fn private_jwk(&self) -> Value {
        let Pair::Ec(pair, _) = &self.pair else {
            panic!("private_jwk is for EC keys");
        };
        let scalar = pair
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
        // RFC 7638 3.2: the required members only (all `public_jwk` has),
        // in lexical order, no whitespace.
        let jwk = into_map(self.public_jwk());
        let sorted: std::collections::BTreeMap<&String, &Value> = jwk.iter().collect();
        let members: Vec<String> = sorted
            .into_iter()
            .map(|(name, value)| format!("{}:{value}", Value::from(name.as_str())))
            .collect();
        let canonical = format!("{{{}}}", members.join(","));
        b64(digest(&SHA256, canonical.as_bytes()).as_ref())
    }

    /// A valid proof for `method url` (no `ath`: add
    /// [`Proof::access_token`] for a resource request), signed by this key,
    /// `iat` now and a new random `jti`.
    pub fn proof(&self, method: &str, url: &str) -> Proof<'_> {
        let header = json!({ "typ": "dpop+jwt", "alg": self.alg, "jwk": self.public_jwk() });
        let claims = json!({ "jti": random_id(), "htm": method, "htu": url, "iat": unix_now() });
        Proof {
            key: self,
            header: into_map(header),
            claims: into_map(claims),
            signer: Signer::Own,
        }
    }

    /// The base64url signature of `input` by this key.
    fn sign(&self, input: &[u8]) -> String {
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Ec(pair, _) => b64(pair.sign(&rng, input).expect("an ECDSA signature").as_ref()),
            Pair::Ed25519(pair) => b64(pair.sign(input).as_ref()),
            Pair::Rsa(pair, padding) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(*padding, &rng, input, &mut signature)
                    .expect("an RSA signature");
                b64(&signature)
            }
        }
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
