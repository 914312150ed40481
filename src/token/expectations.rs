//! What every token of one provider is held to, however it is judged: the
//! issuer it must name, the audiences it may name, and the clock skew
//! allowed on its time claims. JWT verification builds its jsonwebtoken
//! rules from these; introspection checks an active answer against them.

use std::time::Duration;

use jsonwebtoken::{Algorithm, Validation};

/// A provider's issuer, audiences and leeway.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expectations {
    /// The exact `iss` its tokens carry; required for JWTs. For an
    /// introspection answer, a reported `iss` must match it when set.
    pub issuer: Option<String>,
    /// Accepted `aud` values; empty means `aud` is not checked.
    pub audiences: Vec<String>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
}

impl Expectations {
    /// The validation rules for JWTs signed with `algorithm`, built
    /// explicitly: jsonwebtoken's defaults skip `nbf` and `iss`.
    pub(crate) fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.leeway = self.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // Config refuses JWT settings without an issuer; an empty one
        // would match no token.
        validation.set_issuer(&[self.issuer.as_deref().unwrap_or_default()]);
        let mut required = vec!["exp", "iss"];
        if self.audiences.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&self.audiences);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        validation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_checks_what_jsonwebtoken_would_skip() {
        let expectations = Expectations {
            issuer: Some("https://idp.example".into()),
            audiences: vec!["api".into()],
            leeway: Duration::from_secs(30),
        };
        let validation = expectations.validation(Algorithm::ES256);
        assert!(validation.validate_nbf && validation.validate_exp && validation.validate_aud);
        assert_eq!(validation.leeway, 30);
        assert_eq!(validation.algorithms, [Algorithm::ES256]);
        for claim in ["exp", "iss", "aud"] {
            assert!(validation.required_spec_claims.contains(claim), "{claim}");
        }
        let any_audience = Expectations {
            audiences: Vec::new(),
            ..expectations
        };
        let validation = any_audience.validation(Algorithm::RS256);
        assert!(!validation.validate_aud);
        assert!(!validation.required_spec_claims.contains("aud"));
    }
}
