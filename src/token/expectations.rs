//! What every token of one provider is held to, however it is judged: the
//! issuer it must name, the audiences it may name, and the clock skew
//! allowed on its time claims. JWT verification and introspection both
//! hold tokens to these, each as its kind of token needs.

use std::time::Duration;

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
