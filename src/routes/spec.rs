//! What a route matches on, as config writes it: host patterns, methods
//! and a path condition. [`RouteMatcher::new`](super::RouteMatcher::new)
//! compiles a spec.

/// What a route matches on, as written in config (deserialised by the
/// config layer). Compile it with
/// [`RouteMatcher::new`](super::RouteMatcher::new).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchSpec {
    /// Host patterns; empty means any host.
    pub hosts: Vec<String>,
    /// HTTP methods; empty means any method.
    pub methods: Vec<String>,
    /// Path condition.
    pub path: PathSpec,
}

/// How a route matches the normalised request path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PathSpec {
    /// Every path.
    #[default]
    Any,
    /// Exactly this canonical path; `/post` does not match `/post/`.
    Exact(String),
    /// This path and everything below it, by whole segments.
    Prefix(String),
    /// Istio / Kyma APIRule template with `{*}` and `{**}` segments.
    Template(String),
    /// A regex that must match the whole normalised path.
    Regex(String),
}
