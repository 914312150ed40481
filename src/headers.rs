//! What goes upstream on an allow: claims rendered into headers, and the
//! headers to strip so a client can never supply identity itself.

use serde_json::{Map, Value};

use crate::config::HeaderMapping;

/// Longest header value tollgate sends; a longer claim is dropped, not truncated.
pub const MAX_HEADER_VALUE_BYTES: usize = 8 * 1024;

/// Header changes for the upstream request.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UpstreamHeaders {
    /// Set, replacing any value the client sent.
    pub set: Vec<(String, String)>,
    /// Removed from the request.
    pub remove: Vec<String>,
}

impl UpstreamHeaders {
    /// Renders each mapping from the claims. A mapped header whose claim is
    /// absent, unrenderable or oversized is removed instead of set, so a
    /// client-sent header of that name never reaches the upstream.
    pub fn from_claims(
        mappings: &[HeaderMapping],
        claims: &Map<String, Value>,
        separator: &str,
    ) -> UpstreamHeaders {
        let mut headers = UpstreamHeaders::default();
        for mapping in mappings {
            let rendered = mapping
                .claim
                .lookup(claims)
                .and_then(|value| render(value, separator));
            match rendered {
                Some(value) if value.len() <= MAX_HEADER_VALUE_BYTES => {
                    headers.set.push((mapping.header.clone(), value));
                }
                Some(value) => {
                    tracing::warn!(
                        header = %mapping.header,
                        claim = %mapping.claim,
                        bytes = value.len(),
                        "claim too large for an upstream header; header dropped"
                    );
                    headers.remove.push(mapping.header.clone());
                }
                None => headers.remove.push(mapping.header.clone()),
            }
        }
        headers
    }

    /// Only removals: for anonymous requests, which carry no identity.
    pub fn strip(mappings: &[HeaderMapping]) -> UpstreamHeaders {
        UpstreamHeaders {
            set: Vec::new(),
            remove: mappings.iter().map(|m| m.header.clone()).collect(),
        }
    }
}

/// A claim as header text: strings as they are, numbers and booleans in
/// JSON form, arrays joined by `separator`, objects as compact JSON. `None`
/// for null, or for text that would be unsafe in a header (control
/// characters, which includes CR and LF).
pub fn render(value: &Value, separator: &str) -> Option<String> {
    let text = match value {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        Value::Bool(_) | Value::Number(_) | Value::Object(_) => value.to_string(),
        Value::Array(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Some(s.clone()),
                    Value::Null => None,
                    other => Some(other.to_string()),
                })
                .collect::<Option<_>>()?;
            parts.join(separator)
        }
    };
    if text.chars().any(|c| c.is_control()) {
        return None;
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::ClaimPath;
    use serde_json::json;

    fn mapping(header: &str, claim: &str) -> HeaderMapping {
        HeaderMapping {
            header: header.to_owned(),
            claim: ClaimPath::dotted(claim).unwrap(),
        }
    }

    #[test]
    fn renders_claim_types() {
        assert_eq!(render(&json!("alice"), ","), Some("alice".into()));
        assert_eq!(render(&json!(42), ","), Some("42".into()));
        assert_eq!(render(&json!(true), ","), Some("true".into()));
        assert_eq!(render(&json!(["a", "b", 3]), ", "), Some("a, b, 3".into()));
        assert_eq!(render(&json!({"k": "v"}), ","), Some(r#"{"k":"v"}"#.into()));
        assert_eq!(render(&json!(null), ","), None);
        assert_eq!(render(&json!("evil\r\nx-admin: 1"), ","), None);
        assert_eq!(render(&json!(["ok", "bad\n"]), ","), None);
    }

    #[test]
    fn absent_and_oversized_claims_become_removals() {
        let claims = match json!({
            "sub": "svc-1",
            "realm_access": {"roles": ["a", "b"]},
            "huge": "x".repeat(MAX_HEADER_VALUE_BYTES + 1)
        }) {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let mappings = [
            mapping("x-auth-subject", "sub"),
            mapping("x-auth-roles", "realm_access.roles"),
            mapping("x-auth-client-id", "client_id"),
            mapping("x-huge", "huge"),
        ];
        let headers = UpstreamHeaders::from_claims(&mappings, &claims, ",");
        assert_eq!(
            headers.set,
            [
                ("x-auth-subject".to_owned(), "svc-1".to_owned()),
                ("x-auth-roles".to_owned(), "a,b".to_owned()),
            ]
        );
        assert_eq!(headers.remove, ["x-auth-client-id", "x-huge"]);
    }

    #[test]
    fn strip_removes_every_mapped_header() {
        let mappings = [mapping("x-auth-subject", "sub")];
        assert_eq!(UpstreamHeaders::strip(&mappings).remove, ["x-auth-subject"]);
    }
}
