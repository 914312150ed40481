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
    /// The reply for `reason`, naming `scope_hint` in the challenge of an
    /// `insufficient_scope`. Carries no internal detail and never the token.
    pub fn reply(&self, reason: DenyReason, scope_hint: Option<&str>) -> DenyReply {
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
        if let Some(challenge) = self.challenge(wire.challenge, scope_hint) {
            headers.push(("www-authenticate".to_owned(), challenge));
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

    /// The `WWW-Authenticate` value (RFC 6750 §3), or `None` when the
    /// refusal is not about credentials.
    fn challenge(&self, challenge: Challenge, scope_hint: Option<&str>) -> Option<String> {
        let Challenge::Bearer(error) = challenge else {
            return None;
        };
        let mut params = Vec::with_capacity(3);
        if let Some(realm) = &self.realm {
            params.push(format!("realm=\"{realm}\""));
        }
        if let Some(error) = error {
            params.push(format!("error=\"{error}\""));
        }
        if let Some(scope) = scope_hint {
            params.push(format!("scope=\"{scope}\""));
        }
        Some(if params.is_empty() {
            "Bearer".to_owned()
        } else {
            format!("Bearer {}", params.join(", "))
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
