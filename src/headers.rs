//! What goes upstream on an allow: claims rendered into headers, and the
//! headers to strip so a client can never supply identity itself.

use serde_json::{Map, Value};

use crate::claims::ClaimPath;

/// One upstream header filled from a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeaderMapping {
    /// Lower-case header name.
    pub(crate) header: String,
    /// The claim rendered into it.
    pub(crate) claim: ClaimPath,
}

/// Longest header value tollgate sends; a longer claim is dropped, not truncated.
pub(crate) const MAX_HEADER_VALUE_BYTES: usize = 8 * 1024;

/// Header changes for the upstream request.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UpstreamHeaders {
    /// Set, replacing any value the client sent.
    pub set: Vec<(String, String)>,
    /// Removed from the request.
    pub remove: Vec<String>,
    /// Query parameters removed from the request.
    pub remove_query: Vec<String>,
}

/// Renders each mapping from the claims. A mapping whose claim is absent,
/// unrenderable or oversized yields nothing; the caller removes that header
/// so a client-sent one never reaches the upstream.
pub(crate) fn render_claims(
    mappings: &[HeaderMapping],
    claims: &Map<String, Value>,
    separator: &str,
) -> Vec<(String, String)> {
    let mut set = Vec::with_capacity(mappings.len());
    for mapping in mappings {
        let Some(value) = mapping.claim.lookup(claims) else {
            continue;
        };
        match render(value, separator) {
            Some(text) if text.len() <= MAX_HEADER_VALUE_BYTES => {
                set.push((mapping.header.clone(), text));
            }
            Some(text) => tracing::warn!(
                header = %mapping.header,
                claim = %mapping.claim,
                bytes = text.len(),
                "claim too large for an upstream header; header dropped"
            ),
            None => tracing::debug!(
                header = %mapping.header,
                claim = %mapping.claim,
                "claim cannot be rendered safely as a header; header dropped"
            ),
        }
    }
    set
}

/// A claim as header text: strings as they are, numbers and booleans in
/// JSON form, arrays joined by `separator`, objects as compact JSON. `None`
/// for null, for text that would be unsafe in a header (control characters,
/// which includes CR and LF), and for an array with an element holding the
/// separator, which the upstream would split into two values.
pub(crate) fn render(value: &Value, separator: &str) -> Option<String> {
    let text = match value {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        Value::Bool(_) | Value::Number(_) | Value::Object(_) => value.to_string(),
        Value::Array(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|item| match item {
                    Value::String(s) if !s.contains(separator) => Some(s.clone()),
                    Value::String(_) | Value::Null => None,
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
    fn array_elements_holding_the_separator_are_refused() {
        assert_eq!(render(&json!(["user,admin"]), ","), None);
        assert_eq!(
            render(&json!(["user,admin"]), ";"),
            Some("user,admin".into())
        );
    }

    #[test]
    fn absent_and_oversized_claims_are_not_set() {
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
        assert_eq!(
            render_claims(&mappings, &claims, ","),
            [
                ("x-auth-subject".to_owned(), "svc-1".to_owned()),
                ("x-auth-roles".to_owned(), "a,b".to_owned()),
            ]
        );
    }
}
