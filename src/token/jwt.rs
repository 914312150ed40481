//! JWT verification for one provider (issuer): its keys, its algorithm
//! allow-list and its prebuilt validation rules.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
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
    /// One prebuilt `Validation` per allowed algorithm: jsonwebtoken insists
    /// every algorithm in a `Validation` shares the key's family.
    validations: Vec<(Algorithm, Validation)>,
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
        let validations = jwt
            .algorithms
            .iter()
            .map(|&algorithm| (algorithm, expectations.validation(algorithm)))
            .collect();
        JwtProvider {
            name,
            issuer: expectations.issuer.clone().unwrap_or_default(),
            keys,
            hmac: jwt
                .hmac_secret
                .as_ref()
                .map(|secret| DecodingKey::from_secret(secret.expose())),
            validations,
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
        let Some((_, validation)) = self.validations.iter().find(|(a, _)| *a == algorithm) else {
            return Ok(Err(TokenProblem::DisallowedAlgorithm));
        };
        let (result, keys) = if is_hmac(algorithm) {
            let result = match &self.hmac {
                Some(key) => decode(token, key, validation),
                None => Err(TokenProblem::DisallowedAlgorithm),
            };
            (result, None)
        } else {
            let (result, keys) = self.verify_with_jwks(token, unverified, validation).await?;
            (result, Some(keys))
        };
        Ok(result
            .and_then(|claims| check_times(&claims, unix_now(), self.leeway).map(|()| claims))
            .map(|claims| Verified { claims, keys }))
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
        validation: &Validation,
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
            outcome = decode(token, &key.key, validation);
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

fn decode(
    token: &str,
    key: &DecodingKey,
    validation: &Validation,
) -> Result<Map<String, Value>, TokenProblem> {
    jsonwebtoken::decode::<Map<String, Value>>(token, key, validation)
        .map(|data| data.claims)
        .map_err(|error| problem(error.kind()))
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
mod tests {
    use super::*;

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn peeks_header_and_issuer() {
        let token = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"ES256","kid":"k1"}"#),
            b64(r#"{"iss":"https://idp","sub":"x"}"#)
        );
        let peeked = peek(&token).unwrap();
        assert_eq!(peeked.algorithm, Algorithm::ES256);
        assert_eq!(peeked.kid.as_deref(), Some("k1"));
        assert_eq!(peeked.issuer.as_deref(), Some("https://idp"));
    }

    #[test]
    fn refuses_what_is_not_a_jws() {
        let h = b64(r#"{"alg":"RS256"}"#);
        let p = b64(r#"{"iss":"x"}"#);
        for token in [
            "abc".to_owned(),
            format!("{h}.{p}"),
            format!("{h}.{p}.s.x.y"),
            format!("{h}.!!!.sig"),
            format!("{}.{p}.sig", b64("not json")),
        ] {
            assert_eq!(peek(&token).err(), Some(TokenProblem::Malformed), "{token}");
        }
    }

    /// Found by the `jws` fuzz target: `peek` took headers that
    /// `is_jws_shaped` refuses: invalid UTF-8 in a member `peek` skips
    /// (the repeated-member check now reads every member) and a JSON array.
    #[test]
    fn header_and_payload_must_be_utf8_json_objects() {
        let payload = b64(r#"{"iss":"x"}"#);
        let bad_utf8 = URL_SAFE_NO_PAD.encode(b"{\"alg\":\"RS256\",\"x\":\"\xff\"}");
        let array = b64(r#"["RS256","k1"]"#);
        for header in [bad_utf8, array] {
            let token = format!("{header}.{payload}.sig");
            assert!(!is_jws_shaped(&token));
            assert_eq!(peek(&token).err(), Some(TokenProblem::Malformed));
        }
        let header = b64(r#"{"alg":"RS256"}"#);
        let bad_payload = URL_SAFE_NO_PAD.encode(b"{\"iss\":\"x\",\"y\":\"\xff\"}");
        for payload in [bad_payload, b64(r#"["x"]"#)] {
            let token = format!("{header}.{payload}.sig");
            assert_eq!(peek(&token).err(), Some(TokenProblem::Malformed));
        }
    }

    #[test]
    fn alg_none_in_any_casing_is_disallowed() {
        for alg in ["none", "None", "NONE", "nOnE"] {
            let token = format!("{}.{}.", b64(&format!(r#"{{"alg":"{alg}"}}"#)), b64("{}"));
            assert_eq!(peek(&token).err(), Some(TokenProblem::DisallowedAlgorithm));
        }
    }

    #[test]
    fn crit_header_is_refused() {
        let token = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"ES256","crit":["exp"]}"#),
            b64("{}")
        );
        assert_eq!(peek(&token).err(), Some(TokenProblem::Malformed));
    }

    #[test]
    fn repeated_member_names_are_malformed() {
        for (header, payload) in [
            (
                r#"{"alg":"none","alg":"ES256"}"#,
                r#"{"iss":"https://idp"}"#,
            ),
            (
                r#"{"alg":"ES256","kid":"a","kid":"b"}"#,
                r#"{"iss":"https://idp"}"#,
            ),
            (
                r#"{"alg":"ES256"}"#,
                r#"{"iss":"https://idp","scope":"a","scope":"b"}"#,
            ),
            (
                r#"{"alg":"ES256"}"#,
                r#"{"iss":"https://idp","x":{"r":1,"r":2}}"#,
            ),
        ] {
            let token = format!("{}.{}.sig", b64(header), b64(payload));
            assert_eq!(
                peek(&token).err(),
                Some(TokenProblem::Malformed),
                "{header} {payload}"
            );
            // Still a JWS, never mistaken for an opaque token.
            assert!(is_jws_shaped(&token));
        }
    }

    fn times(claims: serde_json::Value) -> Map<String, Value> {
        match claims {
            Value::Object(map) => map,
            _ => panic!("claims must be an object"),
        }
    }

    #[test]
    fn time_claims_count_as_written_at_the_leeway_boundary() {
        use serde_json::json;
        let (now, leeway) = (1_000_000, 30);
        let check = |claims| check_times(&times(claims), now, leeway);
        assert_eq!(check(json!({"exp": now - leeway})), Ok(()));
        assert_eq!(
            check(json!({"exp": now - leeway - 1})),
            Err(TokenProblem::Expired)
        );
        // jsonwebtoken would round this up to `now - leeway` and accept it.
        assert_eq!(
            check(json!({"exp": (now - leeway) as f64 - 0.5})),
            Err(TokenProblem::Expired)
        );
        assert_eq!(check(json!({"exp": (now + 300) as f64 + 0.5})), Ok(()));
        for name in ["nbf", "iat"] {
            assert_eq!(check(json!({"exp": now + 300, name: now + leeway})), Ok(()));
            assert_eq!(
                check(json!({"exp": now + 300, name: now + leeway + 1})),
                Err(TokenProblem::NotYetValid)
            );
            // jsonwebtoken would round this down to `now + leeway` and accept it.
            assert_eq!(
                check(json!({"exp": now + 300, name: (now + leeway) as f64 + 0.4})),
                Err(TokenProblem::NotYetValid)
            );
            assert_eq!(
                check(json!({"exp": now + 300, name: "soon"})),
                Err(TokenProblem::InvalidClaims)
            );
        }
    }

    #[test]
    fn non_string_issuer_is_invalid() {
        let token = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"ES256"}"#),
            b64(r#"{"iss":["a"]}"#)
        );
        assert_eq!(peek(&token).err(), Some(TokenProblem::InvalidClaims));
    }
}
