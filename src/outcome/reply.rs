//! What the client gets on a deny: the status, headers and body a denial
//! becomes, as the route's `deny:` settings shape them. Both edges (gRPC
//! and HTTP mode) answer from here, so they send the same thing.

use super::reason::{Challenge, DenyReason};

/// How a route's denies look to the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DenyShape {
    /// `realm` in `WWW-Authenticate`.
    pub realm: Option<String>,
    /// The body's format.
    pub body: DenyBody,
    /// Extra headers on every deny.
    pub headers: Vec<(String, String)>,
    /// A header naming the deny reason (`missing_token`, ...); off when `None`.
    pub reason_header: Option<String>,
}

/// The deny body's format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DenyBody {
    /// `{"error": ..., "error_description": ...}`.
    #[default]
    Json,
    /// The description as plain text.
    Text,
    /// No body.
    Empty,
}

/// The authentication scheme a deny's challenge names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AuthScheme {
    /// `Bearer` (RFC 6750 §3).
    #[default]
    Bearer,
    /// `DPoP` (RFC 9449 §7.1): for a route that requires DPoP, a token sent
    /// with the DPoP scheme, or a DPoP-bound token.
    Dpop {
        /// The proof algorithms accepted, space-separated, for `algs`.
        algs: std::sync::Arc<str>,
        /// A fresh server nonce, sent in `DPoP-Nonce` (RFC 9449 §8).
        nonce: Option<String>,
    },
}

/// A deny as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenyReply {
    /// HTTP status.
    pub status: u16,
    /// Response headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: String,
}

impl DenyShape {
    /// [`DenyShape::reply_with`] with the `Bearer` scheme (tests).
    #[cfg(test)]
    pub fn reply(&self, reason: DenyReason, scope_hint: Option<&str>) -> DenyReply {
        self.reply_with(reason, scope_hint, &AuthScheme::Bearer)
    }

    /// The reply for `reason`, challenging with `scheme` (`Bearer` or
    /// `DPoP`) and naming `scope_hint` in the challenge of an
    /// `insufficient_scope`. Carries no internal detail and never the token.
    pub fn reply_with(
        &self,
        reason: DenyReason,
        scope_hint: Option<&str>,
        scheme: &AuthScheme,
    ) -> DenyReply {
        let wire = reason.wire();
        let mut headers = Vec::with_capacity(4 + self.headers.len());
        let body = match self.body {
            DenyBody::Json => {
                headers.push(("content-type".to_owned(), "application/json".to_owned()));
                serde_json::json!({
                    "error": wire.body_error,
                    "error_description": wire.description,
                })
                .to_string()
            }
            DenyBody::Text => {
                headers.push((
                    "content-type".to_owned(),
                    "text/plain; charset=utf-8".to_owned(),
                ));
                format!("{}\n", wire.description)
            }
            DenyBody::Empty => String::new(),
        };
        headers.push(("cache-control".to_owned(), "no-store".to_owned()));
        if let Some(challenge) = self.challenge(wire.challenge, scope_hint, scheme) {
            headers.push(("www-authenticate".to_owned(), challenge));
        }
        if let AuthScheme::Dpop {
            nonce: Some(nonce), ..
        } = scheme
        {
            headers.push(("dpop-nonce".to_owned(), nonce.clone()));
        }
        if let Some(name) = &self.reason_header {
            headers.push((name.clone(), wire.label.to_owned()));
        }
        headers.extend(self.headers.iter().cloned());
        DenyReply {
            status: wire.status,
            headers,
            body,
        }
    }

    /// The `WWW-Authenticate` value (RFC 6750 §3, RFC 9449 §7.1), or
    /// `None` when the refusal is not about credentials.
    fn challenge(
        &self,
        challenge: Challenge,
        scope_hint: Option<&str>,
        scheme: &AuthScheme,
    ) -> Option<String> {
        let error = match challenge {
            Challenge::None => return None,
            Challenge::Credentials(error) => error,
            Challenge::Dpop(error) => Some(error),
        };
        let mut params = Vec::with_capacity(4);
        if let Some(realm) = &self.realm {
            params.push(format!("realm=\"{realm}\""));
        }
        if let Some(error) = error {
            params.push(format!("error=\"{error}\""));
        }
        if let Some(scope) = scope_hint {
            params.push(format!("scope=\"{scope}\""));
        }
        let name = match scheme {
            // A DPoP-only error never goes out under `Bearer`.
            AuthScheme::Bearer if matches!(challenge, Challenge::Dpop(_)) => "DPoP",
            AuthScheme::Bearer => "Bearer",
            AuthScheme::Dpop { algs, .. } => {
                params.push(format!("algs=\"{algs}\""));
                "DPoP"
            }
        };
        Some(if params.is_empty() {
            name.to_owned()
        } else {
            format!("{name} {}", params.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::TokenProblem;

    fn header<'a>(reply: &'a DenyReply, name: &str) -> Option<&'a str> {
        reply
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn realm(realm: &str) -> DenyShape {
        DenyShape {
            realm: Some(realm.into()),
            ..DenyShape::default()
        }
    }

    #[test]
    fn dpop_challenges_name_the_algorithms_and_carry_the_nonce() {
        let scheme = AuthScheme::Dpop {
            algs: "ES256 EdDSA".into(),
            nonce: None,
        };
        let reply = realm("api").reply_with(DenyReason::MissingToken, None, &scheme);
        assert_eq!(
            header(&reply, "www-authenticate"),
            Some(r#"DPoP realm="api", algs="ES256 EdDSA""#)
        );
        let reason = DenyReason::InvalidDpopProof(crate::outcome::reason::ProofProblem::Stale);
        let reply = DenyShape::default().reply_with(reason, None, &scheme);
        assert_eq!(reply.status, 401);
        assert_eq!(
            header(&reply, "www-authenticate"),
            Some(r#"DPoP error="invalid_dpop_proof", algs="ES256 EdDSA""#)
        );
        assert!(reply.body.contains("invalid_dpop_proof"), "{}", reply.body);
        let with_nonce = AuthScheme::Dpop {
            algs: "ES256".into(),
            nonce: Some("n-1".into()),
        };
        let reply = DenyShape::default().reply_with(DenyReason::UseDpopNonce, None, &with_nonce);
        assert_eq!(
            header(&reply, "www-authenticate"),
            Some(r#"DPoP error="use_dpop_nonce", algs="ES256""#)
        );
        assert_eq!(header(&reply, "dpop-nonce"), Some("n-1"));
        let bound = DenyReason::InvalidToken(TokenProblem::DpopTokenAsBearer);
        let reply = DenyShape::default().reply_with(bound, None, &scheme);
        assert_eq!(
            header(&reply, "www-authenticate"),
            Some(r#"DPoP error="invalid_token", algs="ES256 EdDSA""#)
        );
    }

    #[test]
    fn missing_token_has_no_error_attribute() {
        let reply = DenyShape::default().reply(DenyReason::MissingToken, None);
        assert_eq!(reply.status, 401);
        assert_eq!(header(&reply, "www-authenticate"), Some("Bearer"));
        let reply = realm("api").reply(DenyReason::MissingToken, None);
        assert_eq!(
            header(&reply, "www-authenticate"),
            Some(r#"Bearer realm="api""#)
        );
    }

    #[test]
    fn invalid_token_is_401_invalid_token() {
        let reply =
            DenyShape::default().reply(DenyReason::InvalidToken(TokenProblem::BadSignature), None);
        assert_eq!(reply.status, 401);
        assert_eq!(
            header(&reply, "www-authenticate"),
            Some(r#"Bearer error="invalid_token""#)
        );
        assert!(
            !reply.body.contains("signature"),
            "body must not say why: {}",
            reply.body
        );
    }

    #[test]
    fn insufficient_scope_names_the_scope() {
        let reply = realm("r").reply(DenyReason::InsufficientScope, Some("write"));
        assert_eq!(reply.status, 403);
        assert_eq!(
            header(&reply, "www-authenticate"),
            Some(r#"Bearer realm="r", error="insufficient_scope", scope="write""#)
        );
        let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(body["error"], "insufficient_scope");
    }

    #[test]
    fn conflicting_tokens_is_400_invalid_request() {
        let reply = DenyShape::default().reply(DenyReason::ConflictingTokens, None);
        assert_eq!(reply.status, 400);
        assert_eq!(
            header(&reply, "www-authenticate"),
            Some(r#"Bearer error="invalid_request""#)
        );
    }

    #[test]
    fn no_route_is_403_without_a_challenge() {
        let reply = realm("r").reply(DenyReason::NoRoute, None);
        assert_eq!(reply.status, 403);
        assert_eq!(header(&reply, "www-authenticate"), None);
    }

    #[test]
    fn default_shape_is_json_without_a_reason_header() {
        let reply = DenyShape::default().reply(DenyReason::ClaimMismatch, None);
        assert_eq!(reply.status, 403);
        assert_eq!(header(&reply, "content-type"), Some("application/json"));
        assert!(!reply.headers.iter().any(|(_, v)| v == "claim_mismatch"));
    }

    #[test]
    fn shaped_reply_has_realm_text_body_extra_and_reason_headers() {
        let shape = DenyShape {
            realm: Some("orders".into()),
            body: DenyBody::Text,
            headers: vec![("x-help".into(), "https://help".into())],
            reason_header: Some("x-tollgate-deny-reason".into()),
        };
        let reply = shape.reply(DenyReason::MissingToken, None);
        assert_eq!(reply.status, 401);
        assert_eq!(reply.body, "an access token is required\n");
        for header in [
            ("www-authenticate", r#"Bearer realm="orders""#),
            ("x-help", "https://help"),
            ("x-tollgate-deny-reason", "missing_token"),
            ("content-type", "text/plain; charset=utf-8"),
        ] {
            assert!(
                reply
                    .headers
                    .contains(&(header.0.to_owned(), header.1.to_owned())),
                "{header:?} in {:?}",
                reply.headers
            );
        }
        let empty = DenyShape {
            body: DenyBody::Empty,
            ..DenyShape::default()
        };
        assert_eq!(empty.reply(DenyReason::NoRoute, None).body, "");
    }
}
