//! The outcome of a check. A deny is a normal answer, mapped here, in one
//! place, to its HTTP status, gRPC code and RFC 6750 error; a fault is an
//! error that Envoy's failure mode must handle.

use std::sync::Arc;

use crate::headers::UpstreamHeaders;
use crate::token::TokenProblem;
use crate::token::introspection::IntrospectionError;
use crate::token::jwt::KeysUnavailable;

/// What to do with the request.
#[derive(Debug)]
pub enum Decision {
    /// Let it through, with these changes.
    Allow(Grant),
    /// Refuse it.
    Deny(Denial),
}

/// An allowed request.
#[derive(Debug)]
pub struct Grant {
    /// The matched route, `None` when an unmatched request was allowed by config.
    pub route: Option<Arc<str>>,
    /// Who called, when a token was verified.
    pub caller: Option<Caller>,
    /// Header changes for the upstream request.
    pub upstream: UpstreamHeaders,
    /// Headers added to the client's response (`response_headers_to_add`).
    pub response_headers: Vec<(String, String)>,
    /// Route name and selected claims, for Envoy's dynamic metadata.
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// The verified identity behind a token, for logs.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The provider that verified it.
    pub provider: Arc<str>,
    /// `sub`.
    pub subject: Option<String>,
    /// `client_id`, else `azp` (Keycloak, Auth0), else `cid` (Okta).
    pub client_id: Option<String>,
}

/// A refused request.
#[derive(Debug)]
pub struct Denial {
    /// Why.
    pub reason: DenyReason,
    /// The matched route, if any.
    pub route: Option<Arc<str>>,
    /// Who called, when the token verified but fell short of the route.
    pub caller: Option<Caller>,
    /// Scopes to name in `WWW-Authenticate` for `insufficient_scope`.
    pub scope_hint: Option<String>,
    /// For the log line only, never the client: which claim failed, why the
    /// path was refused.
    pub detail: Option<String>,
}

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
}

/// gRPC status codes used in `CheckResponse.status`.
pub mod grpc_code {
    /// INVALID_ARGUMENT.
    pub const INVALID_ARGUMENT: i32 = 3;
    /// PERMISSION_DENIED.
    pub const PERMISSION_DENIED: i32 = 7;
    /// UNAUTHENTICATED.
    pub const UNAUTHENTICATED: i32 = 16;
}

impl DenyReason {
    /// HTTP status sent to the client.
    pub fn http_status(self) -> u16 {
        match self {
            DenyReason::BadPath
            | DenyReason::BadHost
            | DenyReason::ConflictingTokens
            | DenyReason::TooManyHeaders => 400,
            DenyReason::MissingToken | DenyReason::InvalidToken(_) => 401,
            DenyReason::NoRoute | DenyReason::InsufficientScope | DenyReason::ClaimMismatch => 403,
        }
    }

    /// gRPC code for `CheckResponse.status`.
    pub fn grpc_code(self) -> i32 {
        match self {
            DenyReason::BadPath
            | DenyReason::BadHost
            | DenyReason::ConflictingTokens
            | DenyReason::TooManyHeaders => grpc_code::INVALID_ARGUMENT,
            DenyReason::MissingToken | DenyReason::InvalidToken(_) => grpc_code::UNAUTHENTICATED,
            DenyReason::NoRoute | DenyReason::InsufficientScope | DenyReason::ClaimMismatch => {
                grpc_code::PERMISSION_DENIED
            }
        }
    }

    /// The RFC 6750 §3.1 `error` code. `None` when no token was sent (the
    /// RFC asks for no error then) or when the refusal is not about tokens.
    pub fn bearer_error(self) -> Option<&'static str> {
        match self {
            DenyReason::BadPath
            | DenyReason::BadHost
            | DenyReason::ConflictingTokens
            | DenyReason::TooManyHeaders => Some("invalid_request"),
            DenyReason::InvalidToken(_) => Some("invalid_token"),
            DenyReason::InsufficientScope | DenyReason::ClaimMismatch => Some("insufficient_scope"),
            DenyReason::MissingToken | DenyReason::NoRoute => None,
        }
    }

    /// The `error` member of the JSON body.
    pub fn body_error(self) -> &'static str {
        match self {
            DenyReason::MissingToken => "unauthorized",
            DenyReason::NoRoute => "access_denied",
            DenyReason::BadPath
            | DenyReason::BadHost
            | DenyReason::ConflictingTokens
            | DenyReason::TooManyHeaders => "invalid_request",
            DenyReason::InvalidToken(_) => "invalid_token",
            DenyReason::InsufficientScope | DenyReason::ClaimMismatch => "insufficient_scope",
        }
    }

    /// Text for the client: says what to fix, never why internally.
    pub fn description(self) -> &'static str {
        match self {
            DenyReason::NoRoute => "the request is not permitted",
            DenyReason::BadPath => "the request path is not acceptable",
            DenyReason::BadHost => "the request host is not acceptable",
            DenyReason::ConflictingTokens => "the request carries more than one access token",
            DenyReason::TooManyHeaders => "the request carries too many headers",
            DenyReason::MissingToken => "an access token is required",
            DenyReason::InvalidToken(TokenProblem::Expired) => "the access token expired",
            DenyReason::InvalidToken(_) => "the access token is not valid",
            DenyReason::InsufficientScope => "the access token lacks a required scope",
            DenyReason::ClaimMismatch => "the access token does not grant access to this resource",
        }
    }

    /// A stable, low-cardinality name for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            DenyReason::NoRoute => "no_route",
            DenyReason::BadPath => "bad_path",
            DenyReason::BadHost => "bad_host",
            DenyReason::ConflictingTokens => "conflicting_tokens",
            DenyReason::TooManyHeaders => "too_many_headers",
            DenyReason::MissingToken => "missing_token",
            DenyReason::InvalidToken(problem) => problem.label(),
            DenyReason::InsufficientScope => "insufficient_scope",
            DenyReason::ClaimMismatch => "claim_mismatch",
        }
    }
}

impl Denial {
    /// The `WWW-Authenticate` value (RFC 6750 §3), or `None` when the
    /// refusal is not about bearer tokens.
    pub fn www_authenticate(&self, realm: Option<&str>) -> Option<String> {
        if self.reason == DenyReason::NoRoute {
            return None;
        }
        let mut params = Vec::with_capacity(3);
        if let Some(realm) = realm {
            params.push(format!("realm=\"{realm}\""));
        }
        if let Some(error) = self.reason.bearer_error() {
            params.push(format!("error=\"{error}\""));
        }
        if let Some(scope) = &self.scope_hint {
            params.push(format!("scope=\"{scope}\""));
        }
        Some(if params.is_empty() {
            "Bearer".to_owned()
        } else {
            format!("Bearer {}", params.join(", "))
        })
    }

    /// The small JSON body sent with the deny.
    pub fn body(&self) -> String {
        serde_json::json!({
            "error": self.reason.body_error(),
            "error_description": self.reason.description(),
        })
        .to_string()
    }
}

/// The check could not be decided: Envoy's failure mode decides, tollgate
/// never turns a fault into an allow.
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    /// A provider's keys could not be fetched.
    #[error(transparent)]
    KeysUnavailable(#[from] KeysUnavailable),
    /// The upstream identity token could not be signed.
    #[error(transparent)]
    IdentitySigning(#[from] crate::identity::MintFailed),
    /// A provider's introspection endpoint gave no usable answer.
    #[error(transparent)]
    Introspection(#[from] IntrospectionFailed),
}

/// Introspection failed: unreachable, slow, an error status, or a body that
/// is not an RFC 7662 answer.
#[derive(Debug, thiserror::Error)]
#[error("introspection for provider {provider} failed")]
pub struct IntrospectionFailed {
    /// The provider's name.
    pub provider: Arc<str>,
    /// What went wrong; shared by every check that waited on the same call.
    #[source]
    pub source: Arc<IntrospectionError>,
}

impl Fault {
    /// A stable, low-cardinality name for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Fault::KeysUnavailable(_) => "keys_unavailable",
            Fault::Introspection(_) => "introspection_unavailable",
            Fault::IdentitySigning(_) => "identity_signing",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denial(reason: DenyReason, scope_hint: Option<&str>) -> Denial {
        Denial {
            reason,
            route: None,
            caller: None,
            scope_hint: scope_hint.map(str::to_owned),
            detail: None,
        }
    }

    #[test]
    fn missing_token_has_no_error_attribute() {
        let d = denial(DenyReason::MissingToken, None);
        assert_eq!(d.reason.http_status(), 401);
        assert_eq!(d.www_authenticate(None).as_deref(), Some("Bearer"));
        assert_eq!(
            d.www_authenticate(Some("api")).as_deref(),
            Some(r#"Bearer realm="api""#)
        );
    }

    #[test]
    fn invalid_token_is_401_invalid_token() {
        let d = denial(DenyReason::InvalidToken(TokenProblem::BadSignature), None);
        assert_eq!(d.reason.http_status(), 401);
        assert_eq!(d.reason.grpc_code(), grpc_code::UNAUTHENTICATED);
        assert_eq!(
            d.www_authenticate(None).as_deref(),
            Some(r#"Bearer error="invalid_token""#)
        );
        assert!(
            !d.body().contains("signature"),
            "body must not say why: {}",
            d.body()
        );
    }

    #[test]
    fn insufficient_scope_names_the_scope() {
        let d = denial(DenyReason::InsufficientScope, Some("write"));
        assert_eq!(d.reason.http_status(), 403);
        assert_eq!(d.reason.grpc_code(), grpc_code::PERMISSION_DENIED);
        assert_eq!(
            d.www_authenticate(Some("r")).as_deref(),
            Some(r#"Bearer realm="r", error="insufficient_scope", scope="write""#)
        );
        let body: serde_json::Value = serde_json::from_str(&d.body()).unwrap();
        assert_eq!(body["error"], "insufficient_scope");
    }

    #[test]
    fn conflicting_tokens_is_400_invalid_request() {
        let d = denial(DenyReason::ConflictingTokens, None);
        assert_eq!(d.reason.http_status(), 400);
        assert_eq!(d.reason.grpc_code(), grpc_code::INVALID_ARGUMENT);
        assert_eq!(
            d.www_authenticate(None).as_deref(),
            Some(r#"Bearer error="invalid_request""#)
        );
    }

    #[test]
    fn no_route_is_403_without_a_challenge() {
        let d = denial(DenyReason::NoRoute, None);
        assert_eq!(d.reason.http_status(), 403);
        assert_eq!(d.www_authenticate(Some("r")), None);
    }
}
