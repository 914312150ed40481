//! One route's compiled, immutable match conditions, and the request
//! target they are matched against.

use super::error::RouteError;
use super::host::HostSet;
use super::method::MethodSet;
use super::path::{PathMatcher, PathShape};
use super::spec::MatchSpec;

/// The parts of a request that routes match on, already canonical.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestTarget<'a> {
    /// Output of [`normalize_host`](super::normalize_host).
    pub host: &'a str,
    /// The method in upper case.
    pub method: &'a str,
    /// Output of [`normalize_path`](super::normalize::normalize_path).
    pub path: &'a str,
}

/// A compiled, immutable [`MatchSpec`]. Matching does not allocate (regex
/// matching may reuse a cached per-thread scratch area).
#[derive(Debug, Clone)]
pub struct RouteMatcher {
    pub(crate) hosts: HostSet,
    pub(crate) methods: MethodSet,
    pub(crate) path: PathMatcher,
}

impl RouteMatcher {
    /// Validates and compiles `spec`. Fails on a malformed host pattern or
    /// method, a non-canonical or invalid path, a bad template, or a regex
    /// that does not compile within the size limit.
    pub fn new(spec: &MatchSpec) -> Result<Self, RouteError> {
        Ok(Self {
            hosts: HostSet::compile(&spec.hosts)?,
            methods: MethodSet::compile(&spec.methods)?,
            path: PathMatcher::compile(&spec.path)?,
        })
    }

    /// Whether host, method and path all match. `target` must be canonical
    /// (see [`RequestTarget`]); a raw path can match the wrong route.
    pub fn matches(&self, target: &RequestTarget<'_>) -> bool {
        self.methods.matches(target.method)
            && self.hosts.matches(target.host)
            && self.path.matches(target.path)
    }

    pub(crate) fn path_shape(&self) -> PathShape<'_> {
        self.path.shape()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::routes::spec::PathSpec;

    /// A matcher from lists, panicking on a spec the test got wrong.
    pub(crate) fn matcher(hosts: &[&str], methods: &[&str], path: PathSpec) -> RouteMatcher {
        let spec = MatchSpec {
            hosts: hosts.iter().map(|host| (*host).to_owned()).collect(),
            methods: methods.iter().map(|method| (*method).to_owned()).collect(),
            path,
        };
        match RouteMatcher::new(&spec) {
            Ok(matcher) => matcher,
            Err(error) => panic!("{spec:?}: {error}"),
        }
    }

    fn target<'a>(host: &'a str, method: &'a str, path: &'a str) -> RequestTarget<'a> {
        RequestTarget { host, method, path }
    }

    #[test]
    fn all_three_conditions_must_hold() {
        let route = matcher(
            &["*.example.com"],
            &["GET"],
            PathSpec::Prefix("/api".into()),
        );
        assert!(route.matches(&target("a.example.com", "GET", "/api/x")));
        assert!(!route.matches(&target("example.com", "GET", "/api/x")));
        assert!(!route.matches(&target("a.example.com", "POST", "/api/x")));
        assert!(!route.matches(&target("a.example.com", "GET", "/apix")));
    }

    #[test]
    fn default_spec_matches_everything() {
        let route = matcher(&[], &[], PathSpec::Any);
        assert!(route.matches(&target("", "PURGE", "/")));
        assert_eq!(MatchSpec::default().path, PathSpec::Any);
    }

    #[test]
    fn first_bad_field_is_reported() {
        let spec = MatchSpec {
            hosts: vec!["a.*.com".into()],
            methods: vec![],
            path: PathSpec::Any,
        };
        assert_eq!(
            RouteMatcher::new(&spec).err().map(|error| error.field()),
            Some("hosts")
        );
        let spec = MatchSpec {
            hosts: vec![],
            methods: vec![],
            path: PathSpec::Regex("(".into()),
        };
        assert_eq!(
            RouteMatcher::new(&spec).err().map(|error| error.field()),
            Some("path")
        );
    }
}
