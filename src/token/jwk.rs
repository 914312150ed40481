//! JWKS documents as identity providers publish them, turned into verification keys.
//!
//! Each key is read as loose JSON rather than through `jsonwebtoken::jwk::Jwk`:
//! real IdPs publish members that strict parsers refuse (Oracle IDCS sends
//! `"key_ops": ["sig", "encrypt"]`), and one odd key must not cost the whole
//! set. A key we cannot use is skipped with a reason instead.

use std::str::FromStr;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

use crate::digest::sha256;

/// More keys than this is not a JWKS anyone publishes; refusing bounds the work
/// a hostile or broken document can cause.
const MAX_KEYS: usize = 100;

/// NIST SP 800-131A: RSA keys under 2048 bits are not acceptable for signatures.
const MIN_RSA_BITS: usize = 2048;

/// aws-lc-rs verifies RSA signatures with moduli up to 8192 bits only.
const MAX_RSA_BITS: usize = 8192;

/// What an RSA key without `alg` may verify.
pub(crate) const RSA_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// base64url as RFC 7517 requires, but tolerating the padding some IdPs add.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A public key from a JWKS, ready to verify signatures.
#[derive(Clone, Debug)]
pub struct VerifyingKey {
    /// The JWK `kid`, matched against the token header's `kid`.
    pub kid: Option<String>,
    /// The algorithms this key may verify; never empty.
    pub algorithms: Vec<Algorithm>,
    /// The key material.
    pub key: DecodingKey,
}

/// The usable keys of one JWKS document. Two sets are equal when they come
/// from the same document.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
    /// SHA-256 of the document; zero for the empty set of an HMAC-only
    /// provider.
    fingerprint: [u8; 32],
}

impl PartialEq for KeySet {
    fn eq(&self, other: &KeySet) -> bool {
        self.fingerprint == other.fingerprint
    }
}

impl Eq for KeySet {}

/// A JWK that was left out of a [`KeySet`], and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedKey {
    /// The JWK `kid`, if it had a string one.
    pub kid: Option<String>,
    /// Why the key cannot be used, for logs.
    pub reason: String,
}

/// The document is not a JWKS at all (individual bad keys are [`SkippedKey`]s).
#[derive(thiserror::Error, Debug)]
pub enum JwksParseError {
    /// The bytes are not JSON.
    #[error("JWKS is not valid JSON")]
    Json(#[source] serde_json::Error),
    /// JSON, but not an object with a `keys` array.
    #[error("JWKS has no \"keys\" array")]
    MissingKeys,
    /// More keys than any IdP publishes.
    #[error("JWKS has {count} keys, more than the limit of {MAX_KEYS}")]
    TooManyKeys {
        /// How many keys the document has.
        count: usize,
    },
}

impl KeySet {
    /// Parse a JWKS document as IdPs publish it. Keys that cannot be used for
    /// verification are skipped, each with a reason.
    ///
    /// Fails only when the document itself is not a JWKS: not JSON, no `keys`
    /// array, or more than 100 keys.
    pub fn from_json(bytes: &[u8]) -> Result<(KeySet, Vec<SkippedKey>), JwksParseError> {
        let document: Value = serde_json::from_slice(bytes).map_err(JwksParseError::Json)?;
        let entries = document
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(JwksParseError::MissingKeys)?;
        if entries.len() > MAX_KEYS {
            return Err(JwksParseError::TooManyKeys {
                count: entries.len(),
            });
        }
        let mut keys = Vec::with_capacity(entries.len());
        let mut skipped = Vec::new();
        for entry in entries {
            match parse_key(entry) {
                Ok(key) => keys.push(key),
                Err(key) => skipped.push(key),
            }
        }
        let fingerprint = sha256(bytes);
        Ok((KeySet { keys, fingerprint }, skipped))
    }

    /// Keys that may verify a token with this header `kid` and `alg`.
    ///
    /// With a `kid`, only keys with exactly that `kid` (a `kid` not in the set
    /// gives nothing); without one, every key. Either way only keys that allow
    /// `alg`. Duplicate `kid`s (rotation overlap) each yield their key.
    pub fn candidates<'a>(
        &'a self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> impl Iterator<Item = &'a VerifyingKey> {
        self.keys.iter().filter(move |key| {
            let kid_matches = kid.is_none_or(|kid| key.kid.as_deref() == Some(kid));
            kid_matches && key.algorithms.contains(&alg)
        })
    }

    /// The number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no usable keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether some key has this `kid` (for tests and fuzz targets).
    #[cfg(any(test, fuzzing, feature = "test-util"))]
    pub fn contains_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|key| key.kid.as_deref() == Some(kid))
    }
}

/// One JWK to a key, or the reason it is skipped.
fn parse_key(entry: &Value) -> Result<VerifyingKey, SkippedKey> {
    let Some(jwk) = entry.as_object() else {
        return Err(skip(None, "not a JSON object"));
    };
    let kid = match jwk.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        // A non-string kid can never match a token header, and treating it as
        // absent would offer the key to every kid-less token.
        Some(_) => return Err(skip(None, "kid is not a string")),
    };
    match parse_key_material(jwk) {
        Ok((algorithms, key)) => Ok(VerifyingKey {
            kid,
            algorithms,
            key,
        }),
        Err(reason) => Err(SkippedKey { kid, reason }),
    }
}

/// The allowed algorithms and key of a JWK; `key_ops`, `x5c`, `x5t` and
/// unknown members are ignored on purpose (see the module docs).
pub(crate) fn parse_key_material(
    jwk: &Map<String, Value>,
) -> Result<(Vec<Algorithm>, DecodingKey), String> {
    if jwk.get("use").and_then(Value::as_str) == Some("enc") {
        return Err("key is for encryption (use \"enc\")".to_owned());
    }
    let declared = match jwk.get("alg") {
        None => None,
        Some(Value::String(alg)) => Some(
            Algorithm::from_str(alg)
                .map_err(|_| format!("alg {alg:?} is not a supported signature algorithm"))?,
        ),
        Some(_) => return Err("alg is not a string".to_owned()),
    };
    let kty = string_member(jwk, "kty")?;
    let (allowed, key): (&[Algorithm], DecodingKey) = match kty {
        "RSA" => (&RSA_ALGORITHMS, rsa_key(jwk)?),
        "EC" => {
            let (algorithm, key) = ec_key(jwk)?;
            (std::slice::from_ref(algorithm), key)
        }
        "OKP" => (&[Algorithm::EdDSA], okp_key(jwk)?),
        // A symmetric secret in a published document is either a leak or an
        // invitation to forge tokens; HMAC keys come from configuration only.
        "oct" => return Err("symmetric (oct) keys are never taken from a JWKS".to_owned()),
        other => return Err(format!("unsupported kty {other:?}")),
    };
    let algorithms = match declared {
        Some(alg) if allowed.contains(&alg) => vec![alg],
        Some(alg) => return Err(format!("alg {alg:?} does not fit a kty {kty:?} key")),
        None => allowed.to_vec(),
    };
    Ok((algorithms, key))
}

fn rsa_key(jwk: &Map<String, Value>) -> Result<DecodingKey, String> {
    let modulus = base64url_member(jwk, "n")?;
    let exponent = base64url_member(jwk, "e")?;
    let modulus = strip_leading_zeros(&modulus);
    let exponent = strip_leading_zeros(&exponent);
    let bits = match modulus.first() {
        Some(first) => modulus.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    };
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "RSA modulus has {bits} bits, at least {MIN_RSA_BITS} are required"
        ));
    }
    if bits > MAX_RSA_BITS {
        return Err(format!(
            "RSA modulus has {bits} bits, at most {MAX_RSA_BITS} are supported"
        ));
    }
    if exponent.is_empty() {
        return Err("RSA exponent is zero".to_owned());
    }
    Ok(DecodingKey::from_rsa_raw_components(modulus, exponent))
}

/// An EC key and the one algorithm its curve is used with (RFC 7518 §3.4).
fn ec_key(jwk: &Map<String, Value>) -> Result<(&'static Algorithm, DecodingKey), String> {
    let (algorithm, verification, coordinate_len): (
        &'static Algorithm,
        &'static aws_lc_rs::signature::EcdsaVerificationAlgorithm,
        usize,
    ) = match string_member(jwk, "crv")? {
        "P-256" => (
            &Algorithm::ES256,
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
            32,
        ),
        "P-384" => (
            &Algorithm::ES384,
            &aws_lc_rs::signature::ECDSA_P384_SHA384_FIXED,
            48,
        ),
        other => return Err(format!("unsupported EC curve {other:?}")),
    };
    let x = base64url_member(jwk, "x")?;
    let y = base64url_member(jwk, "y")?;
    if x.len() != coordinate_len || y.len() != coordinate_len {
        return Err(format!(
            "EC coordinates must be {coordinate_len} bytes for this curve, got x {} and y {}",
            x.len(),
            y.len()
        ));
    }
    // Uncompressed SEC1 point; parsing it now refuses points off the curve at
    // load time instead of failing every verification later.
    let mut point = Vec::with_capacity(1 + 2 * coordinate_len);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    aws_lc_rs::signature::ParsedPublicKey::new(verification, &point)
        .map_err(|_| "EC point is not on the curve".to_owned())?;
    let key = DecodingKey::from_ec_components(&BASE64URL.encode(&x), &BASE64URL.encode(&y))
        .map_err(|error| format!("EC key rejected: {error}"))?;
    Ok((algorithm, key))
}

fn okp_key(jwk: &Map<String, Value>) -> Result<DecodingKey, String> {
    match string_member(jwk, "crv")? {
        "Ed25519" => {}
        other => return Err(format!("unsupported OKP curve {other:?}")),
    }
    let x = base64url_member(jwk, "x")?;
    aws_lc_rs::signature::ParsedPublicKey::new(&aws_lc_rs::signature::ED25519, &x)
        .map_err(|_| "Ed25519 public key is malformed".to_owned())?;
    DecodingKey::from_ed_components(&BASE64URL.encode(&x))
        .map_err(|error| format!("Ed25519 key rejected: {error}"))
}

fn string_member<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    match jwk.get(name) {
        Some(Value::String(value)) => Ok(value),
        Some(_) => Err(format!("{name} is not a string")),
        None => Err(format!("{name} is missing")),
    }
}

fn base64url_member(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    BASE64URL
        .decode(string_member(jwk, name)?)
        .map_err(|_| format!("{name} is not base64url"))
}

/// JWK integers are unsigned big-endian; some publishers add a sign byte.
fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&byte| byte != 0)
        .unwrap_or(bytes.len());
    &bytes[start..]
}

fn skip(kid: Option<String>, reason: &str) -> SkippedKey {
    SkippedKey {
        kid,
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests;
