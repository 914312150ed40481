//! The RFC 7662 §2.2 response: parsed strictly (no `active`, no answer), and
//! an active answer checked against the provider on every use.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::claims::time_claim;
use crate::fetch::same_issuer;
use crate::outcome::TokenProblem;
use crate::token::expectations::Expectations;

/// What the endpoint said about a token.
#[derive(Clone, Debug)]
pub(crate) enum Introspection {
    /// `active: true`, with every other member kept as claims.
    Active(Arc<Map<String, Value>>),
    /// `active: false`: expired, revoked, unknown, or not for this client.
    Inactive,
}

/// Why a response body is not an introspection answer.
#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    /// Not JSON.
    #[error("the body is not JSON")]
    NotJson(#[source] serde_json::Error),
    /// JSON, but not an object.
    #[error("the body is not a JSON object")]
    NotAnObject,
    /// No boolean `active` member.
    #[error("`active` is missing or not a boolean")]
    NoActive,
}

impl Introspection {
    /// Parses a response body.
    pub(crate) fn parse(body: &[u8]) -> Result<Introspection, ResponseError> {
        let value: Value = serde_json::from_slice(body).map_err(ResponseError::NotJson)?;
        let Value::Object(mut members) = value else {
            return Err(ResponseError::NotAnObject);
        };
        match members.remove("active") {
            Some(Value::Bool(true)) => Ok(Introspection::Active(Arc::new(members))),
            Some(Value::Bool(false)) => Ok(Introspection::Inactive),
            _ => Err(ResponseError::NoActive),
        }
    }
}

/// Token types that are not access tokens, as IdPs report them: RFC 7662
/// `token_type`, RFC 8693 URNs, Ory Hydra's `token_use`, Keycloak's `typ`.
const NOT_ACCESS_TOKENS: &[(&str, &str)] = &[
    ("token_type", "refresh_token"),
    (
        "token_type",
        "urn:ietf:params:oauth:token-type:refresh_token",
    ),
    ("token_type", "urn:ietf:params:oauth:token-type:id_token"),
    ("token_use", "refresh_token"),
    ("token_use", "id_token"),
    ("typ", "refresh"),
    ("typ", "offline"),
    ("typ", "id"),
];

/// Checks an active answer at time `now` (Unix seconds). The endpoint
/// already judged the token; these checks keep a cached answer honest and
/// hold the endpoint to the provider's configuration.
pub(super) fn validate(
    claims: &Map<String, Value>,
    expected: &Expectations,
    now: u64,
) -> Result<(), TokenProblem> {
    let leeway = expected.leeway.as_secs() as f64;
    let now = now as f64;
    if let Some(exp) = time_claim(claims, "exp")?
        && exp + leeway <= now
    {
        return Err(TokenProblem::Expired);
    }
    for name in ["nbf", "iat"] {
        if let Some(at) = time_claim(claims, name)?
            && at > now + leeway
        {
            return Err(TokenProblem::NotYetValid);
        }
    }
    if let Some(configured) = expected.issuer.as_deref() {
        match claims.get("iss") {
            None => {}
            Some(Value::String(iss)) if same_issuer(iss, configured) => {}
            Some(Value::String(_)) => return Err(TokenProblem::UnknownIssuer),
            Some(_) => return Err(TokenProblem::InvalidClaims),
        }
    }
    if !expected.audiences.is_empty() {
        let named = match claims.get("aud") {
            Some(Value::String(aud)) => expected.audiences.iter().any(|a| a == aud),
            Some(Value::Array(auds)) => auds
                .iter()
                .filter_map(Value::as_str)
                .any(|aud| expected.audiences.iter().any(|a| a == aud)),
            None => false,
            Some(_) => return Err(TokenProblem::InvalidClaims),
        };
        if !named {
            return Err(TokenProblem::WrongAudience);
        }
    }
    for (claim, refused) in NOT_ACCESS_TOKENS {
        if claims
            .get(*claim)
            .and_then(Value::as_str)
            .is_some_and(|value| value.eq_ignore_ascii_case(refused))
        {
            return Err(TokenProblem::NotAccessToken);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn responses_parse_strictly() {
        assert!(matches!(
            Introspection::parse(br#"{"active":false}"#),
            Ok(Introspection::Inactive)
        ));
        let Ok(Introspection::Active(claims)) =
            Introspection::parse(br#"{"active":true,"scope":"read","ext":{"tenant":"a"}}"#)
        else {
            panic!("active answer not parsed");
        };
        assert_eq!(claims.get("active"), None, "`active` is not a claim");
        assert_eq!(claims["ext"]["tenant"], "a", "other members are kept");
        for body in [
            &b"not json"[..],
            b"[]",
            b"{}",
            br#"{"active":1}"#,
            br#"{"active":null}"#,
        ] {
            assert!(Introspection::parse(body).is_err(), "{body:?}");
        }
    }

    fn expect(issuer: Option<&str>, audiences: &[&str]) -> Expectations {
        Expectations {
            issuer: issuer.map(str::to_owned),
            audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
            leeway: Duration::from_secs(30),
        }
    }

    fn claims(json: serde_json::Value) -> Map<String, Value> {
        json.as_object().unwrap().clone()
    }

    #[test]
    fn active_answers_are_held_to_the_provider() {
        use serde_json::json;
        let now = 1_000_000;
        let check = |c: Value, e: &Expectations| validate(&claims(c), e, now);
        let open = expect(None, &[]);
        assert_eq!(check(json!({"scope": "read"}), &open), Ok(()));
        assert_eq!(
            check(json!({"exp": now - 31}), &open),
            Err(TokenProblem::Expired)
        );
        assert_eq!(check(json!({"exp": now - 10}), &open), Ok(()), "leeway");
        assert_eq!(
            check(json!({"nbf": now + 60}), &open),
            Err(TokenProblem::NotYetValid)
        );
        assert_eq!(
            check(json!({"iat": now + 60}), &open),
            Err(TokenProblem::NotYetValid)
        );
        assert_eq!(
            check(json!({"exp": "tomorrow"}), &open),
            Err(TokenProblem::InvalidClaims)
        );

        let issuer = expect(Some("https://idp.example"), &[]);
        assert_eq!(check(json!({}), &issuer), Ok(()), "iss is optional");
        assert_eq!(
            check(json!({"iss": "https://idp.example/"}), &issuer),
            Ok(())
        );
        assert_eq!(
            check(json!({"iss": "https://other.example"}), &issuer),
            Err(TokenProblem::UnknownIssuer)
        );

        let audience = expect(None, &["api"]);
        assert_eq!(check(json!({"aud": "api"}), &audience), Ok(()));
        assert_eq!(check(json!({"aud": ["x", "api"]}), &audience), Ok(()));
        assert_eq!(
            check(json!({"aud": "other"}), &audience),
            Err(TokenProblem::WrongAudience)
        );
        assert_eq!(
            check(json!({}), &audience),
            Err(TokenProblem::WrongAudience)
        );

        for not_access in [
            json!({"token_type": "refresh_token"}),
            json!({"token_use": "refresh_token"}),
            json!({"typ": "ID"}),
            json!({"typ": "Refresh"}),
        ] {
            assert_eq!(
                check(not_access.clone(), &open),
                Err(TokenProblem::NotAccessToken),
                "{not_access}"
            );
        }
        assert_eq!(check(json!({"token_type": "Bearer"}), &open), Ok(()));
    }
}
