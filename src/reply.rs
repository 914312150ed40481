//! What the client gets: a deny's status, headers and body as the route's
//! `deny:` settings shape them, and headers added to the response on an
//! allow. Both edges (gRPC and HTTP mode) answer from here, so they send the
//! same thing.

use crate::authz::Denial;

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
    /// The reply for `denial`. Carries no internal detail (`Denial::detail`
    /// stays in the log) and never the token.
    pub fn reply(&self, denial: &Denial) -> DenyReply {
        let mut headers = Vec::with_capacity(4 + self.headers.len());
        let body = match self.body {
            DenyBody::Json => {
                headers.push(("content-type".to_owned(), "application/json".to_owned()));
                denial.body()
            }
            DenyBody::Text => {
                headers.push((
                    "content-type".to_owned(),
                    "text/plain; charset=utf-8".to_owned(),
                ));
                format!("{}\n", denial.reason.description())
            }
            DenyBody::Empty => String::new(),
        };
        headers.push(("cache-control".to_owned(), "no-store".to_owned()));
        if let Some(challenge) = denial.www_authenticate(self.realm.as_deref()) {
            headers.push(("www-authenticate".to_owned(), challenge));
        }
        if let Some(name) = &self.reason_header {
            headers.push((name.clone(), denial.reason.label().to_owned()));
        }
        headers.extend(self.headers.iter().cloned());
        DenyReply {
            status: denial.reason.http_status(),
            headers,
            body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::DenyReason;

    fn denial(reason: DenyReason) -> Denial {
        Denial {
            reason,
            route: None,
            caller: None,
            scope_hint: None,
            detail: Some("claim groups".into()),
        }
    }

    #[test]
    fn default_shape_is_json_without_a_reason_header() {
        let reply = DenyShape::default().reply(&denial(DenyReason::ClaimMismatch));
        assert_eq!(reply.status, 403);
        assert!(
            reply
                .headers
                .contains(&("content-type".into(), "application/json".into()))
        );
        assert!(!reply.headers.iter().any(|(_, v)| v == "claim_mismatch"));
        assert!(!reply.body.contains("groups"), "no detail: {}", reply.body);
    }

    #[test]
    fn shaped_reply_has_realm_text_body_extra_and_reason_headers() {
        let shape = DenyShape {
            realm: Some("orders".into()),
            body: DenyBody::Text,
            headers: vec![("x-help".into(), "https://help".into())],
            reason_header: Some("x-tollgate-deny-reason".into()),
        };
        let reply = shape.reply(&denial(DenyReason::MissingToken));
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
        assert_eq!(empty.reply(&denial(DenyReason::NoRoute)).body, "");
    }
}
