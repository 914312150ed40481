//! The request as an edge hands it over ([`AuthzRequest`]: what came off
//! the wire, unchanged), and as the authorizer judges it ([`Target`]: host
//! and path normalised once, the query split off), so that both edges get
//! the same normalisation by construction.

use std::borrow::Cow;

use crate::routes::{
    PathError, PathParameters, RequestTarget, normalize_host, normalize_request_path,
};
use crate::token::extract::TokenCarrier;

/// A request as an edge read it: Envoy's `:authority`, method and `:path`
/// (with its query) as sent, the header lines, and what Envoy knows of the
/// connection (scheme, client certificate).
#[derive(Debug, Clone, Default)]
pub struct AuthzRequest {
    /// `http` or `https`: Envoy's `:scheme`, empty when unknown.
    pub scheme: String,
    /// `:authority` (or `Host`) as received.
    pub authority: String,
    /// Method as received.
    pub method: String,
    /// `:path` as received: the path with its query, perhaps a fragment.
    pub path: String,
    /// Header lines, names lower-case, one entry per value.
    pub headers: Vec<(String, String)>,
    /// The TLS client certificate of the downstream connection, URL-encoded
    /// PEM, as Envoy sends it with `include_peer_certificate: true`.
    pub peer_certificate: Option<String>,
}

/// A request as routes and token sources see it: canonical host and path,
/// refused parts marked rather than guessed at.
#[derive(Debug)]
pub(crate) struct Target<'r> {
    /// Host, lower-case, without port; `None` when the authority is malformed.
    pub(crate) host: Option<Cow<'r, str>>,
    /// Method, upper-case (borrowed when it came so, as Envoy sends it).
    pub(crate) method: Cow<'r, str>,
    /// The normalised path without query, or why it could not be normalised.
    pub(crate) path: Result<Cow<'r, str>, PathError>,
    /// The raw query string, without `?` or a fragment.
    pub(crate) query: Option<&'r str>,
    /// Header lines, names lower-case.
    pub(crate) headers: &'r [(String, String)],
    /// The request as received, for what normalisation drops (the port,
    /// the scheme, the client certificate).
    pub(crate) raw: &'r AuthzRequest,
}

impl AuthzRequest {
    /// The request normalised, with `;` in the path read as `parameters` say.
    pub(crate) fn target(&self, parameters: PathParameters) -> Target<'_> {
        let query = self
            .path
            .split_once('?')
            .map(|(_, q)| q.split_once('#').map_or(q, |(q, _)| q));
        Target {
            host: normalize_host(&self.authority),
            method: upper_case(&self.method),
            path: normalize_request_path(&self.path, parameters),
            query,
            headers: &self.headers,
            raw: self,
        }
    }
}

/// `text` in upper case, copied only when it is not already.
fn upper_case(text: &str) -> Cow<'_, str> {
    if text.bytes().any(|byte| byte.is_ascii_lowercase()) {
        Cow::Owned(text.to_ascii_uppercase())
    } else {
        Cow::Borrowed(text)
    }
}

impl Target<'_> {
    /// What routes match on, when host and path are both acceptable.
    pub(crate) fn route_target(&self) -> Option<RequestTarget<'_>> {
        Some(RequestTarget {
            host: self.host.as_deref()?,
            method: &self.method,
            path: self.path.as_deref().ok()?,
        })
    }

    /// The path for logs: the canonical one, or a marker.
    pub(crate) fn logged_path(&self) -> &str {
        self.path.as_deref().unwrap_or("<invalid>")
    }

    /// The host for logs: the canonical one, or a marker.
    pub(crate) fn logged_host(&self) -> &str {
        self.host.as_deref().unwrap_or("<invalid>")
    }
}

impl TokenCarrier for Target<'_> {
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn query(&self) -> Option<&str> {
        self.query
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(authority: &str, method: &str, path: &str) -> AuthzRequest {
        AuthzRequest {
            authority: authority.into(),
            method: method.into(),
            path: path.into(),
            ..AuthzRequest::default()
        }
    }

    #[test]
    fn host_and_path_are_normalised_and_the_query_split_off() {
        let request = request(
            "API.example.com:8443",
            "get",
            "/a/../b?access_token=x&y=1#top",
        );
        let target = request.target(PathParameters::default());
        assert_eq!(target.host.as_deref(), Some("api.example.com"));
        assert_eq!(target.method, "GET");
        assert_eq!(target.path.as_deref(), Ok("/b"));
        assert_eq!(target.query, Some("access_token=x&y=1"));
        let route = target.route_target().unwrap();
        assert_eq!(
            (route.host, route.method, route.path),
            ("api.example.com", "GET", "/b")
        );
    }

    #[test]
    fn path_parameters_are_read_as_configured() {
        let request = request("h", "GET", "/admin;jsessionid=1/x");
        assert!(request.target(PathParameters::Reject).path.is_err());
        assert_eq!(
            request.target(PathParameters::Strip).path.as_deref(),
            Ok("/admin/x")
        );
        assert_eq!(
            request.target(PathParameters::Keep).path.as_deref(),
            Ok("/admin;jsessionid=1/x")
        );
    }

    #[test]
    fn a_refused_host_or_path_matches_no_route() {
        let bad_host = request("host:abc", "GET", "/");
        let target = bad_host.target(PathParameters::default());
        assert_eq!(
            (target.host.as_deref(), target.logged_host()),
            (None, "<invalid>")
        );
        assert!(target.route_target().is_none());
        let empty = AuthzRequest::default();
        let target = empty.target(PathParameters::default());
        assert!(
            target.path.is_err(),
            "a request without attributes has a bad path"
        );
        assert!(target.route_target().is_none());
    }
}
