//! Tokens: where they are found in a request, how a JWT is verified against
//! its issuer's keys, and how an opaque token is introspected.

pub mod extract;
pub mod fetch;
pub mod introspection;
pub mod jwk;
pub mod jwks;
pub mod jwt;
mod members;
pub mod provider;
pub mod verified;

/// Why a token is not acceptable. Every variant is a 401 `invalid_token`;
/// the variant is for logs and metrics only, never for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// Not a compact JWS, bad base64, bad JSON, or an unsupported header.
    Malformed,
    /// Longer than the configured limit.
    TooLong,
    /// No configured provider has the token's issuer.
    UnknownIssuer,
    /// The issuer's provider is not accepted on this route.
    IssuerNotAllowed,
    /// `alg` is not on the provider's allow-list (`none`, HMAC without a secret, ...).
    DisallowedAlgorithm,
    /// No key with the token's `kid`, even after refetching the JWKS.
    UnknownKey,
    /// The signature does not verify.
    BadSignature,
    /// `exp` is in the past (beyond leeway).
    Expired,
    /// `nbf` or `iat` is in the future (beyond leeway).
    NotYetValid,
    /// `aud` names none of the provider's audiences.
    WrongAudience,
    /// A registered claim is missing or has the wrong type.
    InvalidClaims,
    /// The issuer's introspection endpoint says the token is not active
    /// (expired, revoked, or never issued).
    Inactive,
    /// The issuer says this is not an access token (a refresh or ID token).
    NotAccessToken,
}

impl TokenProblem {
    /// A stable, low-cardinality name for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            TokenProblem::Malformed => "malformed",
            TokenProblem::TooLong => "too_long",
            TokenProblem::UnknownIssuer => "unknown_issuer",
            TokenProblem::IssuerNotAllowed => "issuer_not_allowed",
            TokenProblem::DisallowedAlgorithm => "disallowed_algorithm",
            TokenProblem::UnknownKey => "unknown_key",
            TokenProblem::BadSignature => "bad_signature",
            TokenProblem::Expired => "expired",
            TokenProblem::NotYetValid => "not_yet_valid",
            TokenProblem::WrongAudience => "wrong_audience",
            TokenProblem::InvalidClaims => "invalid_claims",
            TokenProblem::Inactive => "inactive",
            TokenProblem::NotAccessToken => "not_access_token",
        }
    }
}

/// Seconds since the Unix epoch, the clock JWT claims are written in.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A NumericDate claim: absent, or a finite number; anything else is invalid.
pub(crate) fn time_claim(
    claims: &serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<Option<f64>, TokenProblem> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => match value.as_f64() {
            Some(at) if at.is_finite() => Ok(Some(at)),
            _ => Err(TokenProblem::InvalidClaims),
        },
    }
}

/// What is left of `ttl` before `exp` (a NumericDate) passes at `now`:
/// zero once it has, or when `exp` is not a finite number.
pub(crate) fn until_exp(
    ttl: std::time::Duration,
    exp: &serde_json::Value,
    now: u64,
) -> std::time::Duration {
    match exp.as_f64() {
        Some(exp) if exp.is_finite() => {
            let left = (exp - now as f64).clamp(0.0, ttl.as_secs_f64());
            std::time::Duration::from_secs_f64(left)
        }
        _ => std::time::Duration::ZERO,
    }
}

/// A cache key for a token: its SHA-256, so no cache ever holds a token.
pub fn token_key(token: &str) -> [u8; 32] {
    sha256(token.as_bytes())
}

/// The SHA-256 of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::token_key;

    #[test]
    fn cache_keys_are_hashes_not_tokens() {
        let key = token_key("abc");
        assert_ne!(&key[..3], b"abc");
        assert_eq!(key, token_key("abc"));
        assert_ne!(key, token_key("abd"));
    }
}
