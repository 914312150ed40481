//! Why a request is refused, and what each reason looks like on the wire.
//!
//! [`DenyReason::wire`] is the one table: every reason's HTTP status, RFC
//! 6750 challenge, JSON body and metric label, side by side, so a new reason
//! is one new row. The gRPC edge derives its status code from the HTTP
//! status; nothing else matches on reasons.

use crate::claims::NotANumericDate;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// No route matches and unmatched requests are denied.
    NoRoute,
    /// The path cannot be matched safely (encoded slash, bad escape, ...).
    BadPath,
    /// The host cannot be matched safely (a malformed port, empty labels).
    BadHost,
    /// More than one distinct token was sent.
    ConflictingTokens,
    /// The request carries more header lines than `server.max_headers`.
    TooManyHeaders,
    /// No token was sent to a route that needs one.
    MissingToken,
    /// A token was sent and is not acceptable.
    InvalidToken(TokenProblem),
    /// The token lacks a scope the route requires.
    InsufficientScope,
    /// The token lacks a claim value the route requires.
    ClaimMismatch,
    /// The DPoP proof (RFC 9449) sent with a DPoP-bound token is missing,
    /// malformed, or does not fit the request.
    InvalidDpopProof(ProofProblem),
    /// The DPoP proof lacks a current server nonce (RFC 9449 §9); the
    /// reply carries a fresh one in `DPoP-Nonce`.
    UseDpopNonce,
}

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
    /// The route requires a sender-constrained token and this one is not
    /// bound (or not bound the way the route requires).
    NotSenderConstrained,
    /// The token is bound to a client certificate (RFC 8705) and the
    /// request came with none.
    CertificateMissing,
    /// The token is bound to a client certificate other than the request's.
    CertificateMismatch,
    /// The token is DPoP-bound (RFC 9449) and was sent as a bearer token.
    DpopTokenAsBearer,
    /// The token was sent with the DPoP scheme but is not DPoP-bound.
    NotDpopBound,
    /// The DPoP proof is signed by a key other than the one the token is
    /// bound to: someone else's token.
    DpopKeyMismatch,
    /// The token's `cnf` confirmation claim is not an object of strings.
    InvalidConfirmation,
}

/// Why a DPoP proof (RFC 9449 §4.3) is refused. Every variant is a 401
/// `invalid_dpop_proof`; the variant is for logs and metrics only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofProblem {
    /// No `DPoP` header came with a DPoP-bound token.
    Missing,
    /// More than one proof, not a compact JWS of JSON objects, a repeated
    /// member, a `crit` header, or a required member missing or mistyped.
    Malformed,
    /// `typ` is not `dpop+jwt`.
    WrongType,
    /// `alg` is symmetric, `none`, unknown, off the allow-list, or does not
    /// fit the key.
    DisallowedAlgorithm,
    /// `jwk` is missing, not a usable public key, or carries private members.
    BadKey,
    /// The signature does not verify with `jwk`.
    BadSignature,
    /// `htm` is not the request's method.
    WrongMethod,
    /// `htu` is not the request's URL.
    WrongUrl,
    /// `iat` is outside the accepted window.
    Stale,
    /// The proof's `jti` was seen before: a replay.
    Replayed,
    /// `ath` is not the hash of the access token sent with it.
    WrongTokenHash,
}

impl ProofProblem {
    /// A stable, low-cardinality name for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            ProofProblem::Missing => "dpop_proof_missing",
            ProofProblem::Malformed => "dpop_proof_malformed",
            ProofProblem::WrongType => "dpop_proof_type",
            ProofProblem::DisallowedAlgorithm => "dpop_proof_algorithm",
            ProofProblem::BadKey => "dpop_proof_key",
            ProofProblem::BadSignature => "dpop_proof_signature",
            ProofProblem::WrongMethod => "dpop_proof_method",
            ProofProblem::WrongUrl => "dpop_proof_url",
            ProofProblem::Stale => "dpop_proof_stale",
            ProofProblem::Replayed => "dpop_proof_replayed",
            ProofProblem::WrongTokenHash => "dpop_proof_token_hash",
        }
    }
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
            TokenProblem::NotSenderConstrained => "not_sender_constrained",
            TokenProblem::CertificateMissing => "certificate_missing",
            TokenProblem::CertificateMismatch => "certificate_mismatch",
            TokenProblem::DpopTokenAsBearer => "dpop_token_as_bearer",
            TokenProblem::NotDpopBound => "not_dpop_bound",
            TokenProblem::DpopKeyMismatch => "dpop_key_mismatch",
            TokenProblem::InvalidConfirmation => "invalid_confirmation",
        }
    }
}

impl From<NotANumericDate> for TokenProblem {
    fn from(_: NotANumericDate) -> TokenProblem {
        TokenProblem::InvalidClaims
    }
}

/// The `WWW-Authenticate` challenge a deny carries (RFC 6750 §3, RFC 9449
/// §7.1). Its scheme (`Bearer` or `DPoP`) is the denial's, not the reason's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    /// None: the refusal is not about credentials.
    None,
    /// A challenge with an `error` code when a token was sent or the request
    /// is malformed (RFC 6750 §3.1 asks for none when no token was sent).
    Credentials(Option<&'static str>),
    /// A challenge that only the DPoP scheme can carry (`invalid_dpop_proof`,
    /// `use_dpop_nonce`).
    Dpop(&'static str),
}

/// A deny reason as the client and the operator see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wire {
    /// HTTP status sent to the client.
    pub status: u16,
    /// The challenge in `WWW-Authenticate`.
    pub challenge: Challenge,
    /// The `error` member of the JSON body.
    pub body_error: &'static str,
    /// Text for the client: says what to fix, never why internally.
    pub description: &'static str,
    /// A stable, low-cardinality name for logs and metrics.
    pub label: &'static str,
}

const INVALID_REQUEST: Challenge = Challenge::Credentials(Some("invalid_request"));
const INVALID_TOKEN: Challenge = Challenge::Credentials(Some("invalid_token"));
const INSUFFICIENT_SCOPE: Challenge = Challenge::Credentials(Some("insufficient_scope"));

impl DenyReason {
    /// This reason's wire form: the table.
    pub fn wire(self) -> Wire {
        use DenyReason as R;
        let row = |status, challenge, body_error, description, label| Wire {
            status,
            challenge,
            body_error,
            description,
            label,
        };
        #[rustfmt::skip]
        let wire = match self {
            R::NoRoute => row(403, Challenge::None, "access_denied", "the request is not permitted", "no_route"),
            R::BadPath => row(400, INVALID_REQUEST, "invalid_request", "the request path is not acceptable", "bad_path"),
            R::BadHost => row(400, INVALID_REQUEST, "invalid_request", "the request host is not acceptable", "bad_host"),
            R::ConflictingTokens => row(400, INVALID_REQUEST, "invalid_request", "the request carries more than one access token", "conflicting_tokens"),
            R::TooManyHeaders => row(400, INVALID_REQUEST, "invalid_request", "the request carries too many headers", "too_many_headers"),
            R::MissingToken => row(401, Challenge::Credentials(None), "unauthorized", "an access token is required", "missing_token"),
            R::InvalidToken(TokenProblem::Expired) => row(401, INVALID_TOKEN, "invalid_token", "the access token expired", "expired"),
            R::InvalidToken(problem) => row(401, INVALID_TOKEN, "invalid_token", "the access token is not valid", problem.label()),
            R::InsufficientScope => row(403, INSUFFICIENT_SCOPE, "insufficient_scope", "the access token lacks a required scope", "insufficient_scope"),
            R::ClaimMismatch => row(403, INSUFFICIENT_SCOPE, "insufficient_scope", "the access token does not grant access to this resource", "claim_mismatch"),
            R::InvalidDpopProof(problem) => row(401, Challenge::Dpop("invalid_dpop_proof"), "invalid_dpop_proof", "the DPoP proof is not valid for this request", problem.label()),
            R::UseDpopNonce => row(401, Challenge::Dpop("use_dpop_nonce"), "use_dpop_nonce", "the DPoP proof must carry the nonce in DPoP-Nonce", "dpop_nonce"),
        };
        wire
    }

    /// A stable, low-cardinality name for logs and metrics.
    pub fn label(self) -> &'static str {
        self.wire().label
    }

    /// HTTP status sent to the client.
    pub fn http_status(self) -> u16 {
        self.wire().status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_token_problem_is_a_401_invalid_token_labelled_by_the_problem() {
        for problem in [
            TokenProblem::Malformed,
            TokenProblem::TooLong,
            TokenProblem::UnknownIssuer,
            TokenProblem::IssuerNotAllowed,
            TokenProblem::DisallowedAlgorithm,
            TokenProblem::UnknownKey,
            TokenProblem::BadSignature,
            TokenProblem::Expired,
            TokenProblem::NotYetValid,
            TokenProblem::WrongAudience,
            TokenProblem::InvalidClaims,
            TokenProblem::Inactive,
            TokenProblem::NotAccessToken,
            TokenProblem::NotSenderConstrained,
            TokenProblem::CertificateMissing,
            TokenProblem::CertificateMismatch,
            TokenProblem::DpopTokenAsBearer,
            TokenProblem::NotDpopBound,
            TokenProblem::DpopKeyMismatch,
            TokenProblem::InvalidConfirmation,
        ] {
            let wire = DenyReason::InvalidToken(problem).wire();
            assert_eq!(wire.status, 401);
            assert_eq!(wire.challenge, INVALID_TOKEN);
            assert_eq!(wire.body_error, "invalid_token");
            assert_eq!(wire.label, problem.label());
        }
        assert_eq!(
            DenyReason::InvalidToken(TokenProblem::Expired)
                .wire()
                .description,
            "the access token expired"
        );
    }

    #[test]
    fn a_missing_token_is_challenged_without_an_error_and_no_route_not_at_all() {
        let missing = DenyReason::MissingToken.wire();
        assert_eq!(
            (missing.status, missing.challenge),
            (401, Challenge::Credentials(None))
        );
        let proof = DenyReason::InvalidDpopProof(ProofProblem::Replayed).wire();
        assert_eq!(
            (proof.status, proof.challenge, proof.label),
            (
                401,
                Challenge::Dpop("invalid_dpop_proof"),
                "dpop_proof_replayed"
            )
        );
        let no_route = DenyReason::NoRoute.wire();
        assert_eq!(
            (no_route.status, no_route.challenge),
            (403, Challenge::None)
        );
    }
}
