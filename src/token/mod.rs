//! Tokens: where they are found in a request, how a JWT is verified against
//! its issuer's keys, and how an opaque token is introspected.

pub mod extract;
pub mod fetch;
pub mod introspection;
pub mod jwk;
pub mod jwks;
pub mod jwt;
pub mod provider;

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
