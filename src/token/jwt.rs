//! JWT verification for one provider (issuer): its keys, its algorithm
//! allow-list, and its issuer, audiences and leeway.
//!
//! jsonwebtoken verifies the signature (`crypto::verify`); the header and
//! the claims are read here. Its `decode` would read the header into a
//! struct that refuses what RFC 7515 §4 says to ignore (an unknown member
//! whose value is not a string, such as `"ver": 2`), and round fractional
//! times.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::expectations::Expectations;
use super::jwk::KeySet;
use super::jwks::{Jwks, JwksError, JwksSettings, KeySource};
use super::members::has_unique_members;
use crate::claims::{time_claim, unix_now};
use crate::outcome::{Fault, FaultKind, TokenProblem};
use crate::secret::Secret;

/// How a provider's JWTs are verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    /// Where its verification keys come from.
    pub keys: KeySource,
    /// Secret for HMAC algorithms, if configured.
    pub hmac_secret: Option<Secret>,
    /// The allow-list; the token header only selects among these.
    pub algorithms: Vec<Algorithm>,
    /// JWKS fetching and caching.
    pub jwks: JwksSettings,
}

/// What can be read from a JWS before verifying it: enough to pick the
/// provider and the key, nothing that is trusted.
#[derive(Debug)]
pub struct Unverified {
    /// The header's algorithm; checked against the allow-list, never obeyed.
    pub algorithm: Algorithm,
    /// The header's key id.
    pub kid: Option<String>,
    /// The payload's `iss`, used only to choose a provider.
    pub issuer: Option<String>,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    kid: Option<String>,
    crit: Option<Value>,
}

#[derive(Deserialize)]
struct RawIssuer {
    iss: Option<Value>,
}

/// Reads the header and issuer of a compact JWS. JWE (five parts) and
/// anything that is not three base64url parts of JSON is malformed, as is
/// a header or payload that repeats a member name (see [`super::members`]).
pub fn peek(token: &str) -> Result<Unverified, TokenProblem> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenProblem::Malformed);
    };
    let header: RawHeader = decode_unique(header)?;
    // RFC 7515 §4.1.11: a `crit` extension we do not understand must be refused;
    // tollgate understands none.
    if header.crit.is_some() {
        return Err(TokenProblem::Malformed);
    }
    let algorithm = header
        .alg
        .parse::<Algorithm>()
        .map_err(|_| TokenProblem::DisallowedAlgorithm)?;
    let payload: RawIssuer = decode_unique(payload)?;
    let issuer = match payload.iss {
        Some(Value::String(iss)) => Some(iss),
        None => None,
        Some(_) => return Err(TokenProblem::InvalidClaims),
    };
    Ok(Unverified {
        algorithm,
        kid: header.kid,
        issuer,
    })
}

/// Three dot-separated parts whose first decodes to a JSON object: a JWS,
/// even if [`peek`] refuses it, so never mistaken for an opaque token.
pub fn is_jws_shaped(token: &str) -> bool {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(header), Some(_), Some(_), None) => {
            decode_json::<serde_json::Map<String, Value>>(header).is_ok()
        }
        _ => false,
    }
}

fn decode_json<T: for<'de> Deserialize<'de>>(part: &str) -> Result<T, TokenProblem> {
    serde_json::from_slice(&decode_base64url(part)?).map_err(|_| TokenProblem::Malformed)
}

/// As [`decode_json`], refusing a repeated member name at any depth, and
/// anything but a JSON object (RFC 7515 §4, RFC 7519 §7.2): a derived
/// `Deserialize` also takes a JSON array (`["RS256"]`), which
/// [`is_jws_shaped`] refuses.
fn decode_unique<T: for<'de> Deserialize<'de>>(part: &str) -> Result<T, TokenProblem> {
    let bytes = decode_base64url(part)?;
    if bytes.trim_ascii_start().first() != Some(&b'{') || !has_unique_members(&bytes) {
        return Err(TokenProblem::Malformed);
    }
    serde_json::from_slice(&bytes).map_err(|_| TokenProblem::Malformed)
}

fn decode_base64url(part: &str) -> Result<Vec<u8>, TokenProblem> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenProblem::Malformed)
}

/// A token that verified.
#[derive(Debug)]
pub struct Verified {
    /// Its payload.
    pub claims: Map<String, Value>,
    /// The key set it verified against; `None` for HMAC.
    pub keys: Option<Arc<KeySet>>,
}

/// The provider's keys could not be had: a fault, not a deny.
#[derive(Debug, thiserror::Error)]
#[error("keys for provider {provider} are unavailable")]
pub struct KeysUnavailable {
    /// The provider's name.
    pub provider: Arc<str>,
    /// Why the last fetch failed.
    #[source]
    pub source: JwksError,
}

impl From<KeysUnavailable> for Fault {
    fn from(error: KeysUnavailable) -> Fault {
        Fault::new(FaultKind::KeysUnavailable, error)
    }
}

/// One issuer, ready to verify its tokens.
pub struct JwtProvider {
    name: Arc<str>,
    issuer: String,
    keys: Jwks,
    hmac: Option<DecodingKey>,
    /// The allow-list; the token header only selects among these.
    algorithms: Vec<Algorithm>,
    /// Accepted `aud` values; empty: `aud` is not checked.
    audiences: Vec<String>,
    leeway: u64,
}

impl JwtProvider {
    /// Builds the verifier for provider `name` around its key handle.
    pub fn new(
        name: Arc<str>,
        expectations: &Expectations,
        jwt: &JwtSettings,
        keys: Jwks,
    ) -> JwtProvider {
        JwtProvider {
            name,
            issuer: expectations.issuer.clone().unwrap_or_default(),
            keys,
            hmac: jwt
                .hmac_secret
                .as_ref()
                .map(|secret| DecodingKey::from_secret(secret.expose())),
            algorithms: jwt.algorithms.clone(),
            audiences: expectations.audiences.clone(),
            leeway: expectations.leeway.as_secs(),
        }
    }

    /// The issuer this provider verifies, exactly as configured.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The key handle, for readiness reporting.
    pub fn keys(&self) -> &Jwks {
        &self.keys
    }

    /// Verifies signature and registered claims. The outer `Result` is a
    /// fault (keys unavailable); the inner one is the verdict on the token.
    pub async fn verify(
        &self,
        token: &str,
        unverified: &Unverified,
    ) -> Result<Result<Verified, TokenProblem>, KeysUnavailable> {
        let algorithm = unverified.algorithm;
        if !self.algorithms.contains(&algorithm) {
            return Ok(Err(TokenProblem::DisallowedAlgorithm));
        }
        let (result, keys) = if is_hmac(algorithm) {
            let result = match &self.hmac {
                Some(key) => decode(token, key, algorithm),
                None => Err(TokenProblem::DisallowedAlgorithm),
            };
            (result, None)
        } else {
            let (result, keys) = self.verify_with_jwks(token, unverified).await?;
            (result, Some(keys))
        };
        Ok(result
            .and_then(|claims| self.check_claims(&claims, unix_now()).map(|()| claims))
            .map(|claims| Verified { claims, keys }))
    }

    /// The registered claims of a token whose signature verified: `exp`
    /// and `iss` are required, and `aud` when audiences are configured;
    /// then the time claims, the issuer and the audience, in the order
    /// jsonwebtoken's `Validation` checks them, so each token is refused
    /// for the same reason as before.
    fn check_claims(&self, claims: &Map<String, Value>, now: u64) -> Result<(), TokenProblem> {
        let audience = match claims.get("aud") {
            _ if self.audiences.is_empty() => None,
            Some(Value::String(aud)) => Some(vec![aud.as_str()]),
            Some(Value::Array(auds)) => Some(
                auds.iter()
                    .map(Value::as_str)
                    .collect::<Option<Vec<_>>>()
                    .ok_or(TokenProblem::InvalidClaims)?,
            ),
            _ => return Err(TokenProblem::InvalidClaims),
        };
        let Some(Value::String(issuer)) = claims.get("iss") else {
            return Err(TokenProblem::InvalidClaims);
        };
        if !claims.contains_key("exp") {
            return Err(TokenProblem::InvalidClaims);
        }
        check_times(claims, now, self.leeway)?;
        if *issuer != self.issuer {
            return Err(TokenProblem::UnknownIssuer);
        }
        if let Some(named) = audience
            && !named
                .iter()
                .any(|aud| self.audiences.iter().any(|a| a == aud))
        {
            return Err(TokenProblem::WrongAudience);
        }
        Ok(())
    }

    /// Whether `keys` (as returned in [`Verified::keys`]) are still the
    /// provider's current keys: a verification remembered from then still
    /// stands. HMAC verifications (`None`) always do.
    pub fn keys_unchanged(&self, keys: Option<&Arc<KeySet>>) -> bool {
        match keys {
            None => true,
            Some(keys) => self
                .keys
                .current()
                .is_some_and(|current| Arc::ptr_eq(&current, keys)),
        }
    }

    async fn verify_with_jwks(
        &self,
        token: &str,
        unverified: &Unverified,
    ) -> Result<(Result<Map<String, Value>, TokenProblem>, Arc<KeySet>), KeysUnavailable> {
        let kid = unverified.kid.as_deref();
        let alg = unverified.algorithm;
        let keys = match self.keys.current() {
            Some(keys) if keys.candidates(kid, alg).next().is_some() => keys,
            // Unknown kid, or no keys yet: the IdP may have rotated. The
            // refetch is rate-limited and shared by all waiting checks.
            _ => self
                .keys
                .refetch_for_unknown_kid()
                .await
                .map_err(|source| KeysUnavailable {
                    provider: self.name.clone(),
                    source,
                })?,
        };
        let mut outcome = Err(TokenProblem::UnknownKey);
        for key in keys.candidates(kid, alg) {
            outcome = decode(token, &key.key, alg);
            if outcome != Err(TokenProblem::BadSignature) {
                break;
            }
        }
        Ok((outcome, keys))
    }
}

/// The time claims at `now` (Unix seconds) with `leeway`: `exp` no earlier
/// than `now - leeway`, `nbf` and `iat` no later than `now + leeway`.
/// jsonwebtoken checks `exp` and `nbf` too, but rounds a fractional
/// NumericDate to the nearest second first, which stretches a token's life
/// by up to half a second; here they count as written. jsonwebtoken does
/// not look at `iat`: a token issued in the future is as suspect as one not
/// yet valid.
fn check_times(claims: &Map<String, Value>, now: u64, leeway: u64) -> Result<(), TokenProblem> {
    let (earliest, latest) = (now as f64 - leeway as f64, (now + leeway) as f64);
    if time_claim(claims, "exp")?.is_some_and(|exp| exp < earliest) {
        return Err(TokenProblem::Expired);
    }
    for name in ["nbf", "iat"] {
        if time_claim(claims, name)?.is_some_and(|at| at > latest) {
            return Err(TokenProblem::NotYetValid);
        }
    }
    Ok(())
}

/// The payload of `token` if its signature verifies with `key` under
/// `algorithm` (which [`peek`] read from a header it accepted).
fn decode(
    token: &str,
    key: &DecodingKey,
    algorithm: Algorithm,
) -> Result<Map<String, Value>, TokenProblem> {
    let (signed, signature) = token.rsplit_once('.').ok_or(TokenProblem::Malformed)?;
    let (_, payload) = signed.split_once('.').ok_or(TokenProblem::Malformed)?;
    match jsonwebtoken::crypto::verify(signature, signed.as_bytes(), key, algorithm) {
        // `peek` already refused a repeated member in these same bytes.
        Ok(true) => decode_json(payload),
        Ok(false) => Err(TokenProblem::BadSignature),
        Err(error) => Err(problem(error.kind())),
    }
}

/// Every jsonwebtoken error, translated by kind, never by message.
fn problem(kind: &ErrorKind) -> TokenProblem {
    match kind {
        ErrorKind::InvalidSignature => TokenProblem::BadSignature,
        ErrorKind::ExpiredSignature => TokenProblem::Expired,
        ErrorKind::ImmatureSignature => TokenProblem::NotYetValid,
        ErrorKind::InvalidAudience => TokenProblem::WrongAudience,
        ErrorKind::InvalidIssuer => TokenProblem::UnknownIssuer,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::MissingAlgorithm
        | ErrorKind::InvalidAlgorithmName => TokenProblem::DisallowedAlgorithm,
        ErrorKind::MissingRequiredClaim(_)
        | ErrorKind::InvalidClaimFormat(_)
        | ErrorKind::InvalidSubject => TokenProblem::InvalidClaims,
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => TokenProblem::Malformed,
        // Key and signing errors cannot come from a well-formed token with a
        // key that loaded; refuse rather than guess.
        ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::RsaFailedSigning
        | ErrorKind::Signing(_)
        | ErrorKind::InvalidKeyFormat
        | ErrorKind::Provider(_) => TokenProblem::BadSignature,
        // `ErrorKind` is non-exhaustive: a kind added later refuses too.
        _ => TokenProblem::BadSignature,
    }
}

fn is_hmac(algorithm: Algorithm) -> bool {
    matches!(
        algorithm,
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
    )
}

#[cfg(test)]
mod tests;
