//! Building an [`AuthzRequest`] from what an edge read off the wire, the
//! same way for gRPC `CheckRequest`s and HTTP-mode requests.

use super::AuthzRequest;
use crate::routes::{PathParameters, normalize_host, normalize_request_path};

impl AuthzRequest {
    /// The request for `authority`, `method` and `raw_path` (with its
    /// query), and `headers` (names lower-case).
    pub fn from_parts(
        authority: &str,
        method: &str,
        raw_path: &str,
        headers: Vec<(String, String)>,
        path_parameters: PathParameters,
    ) -> AuthzRequest {
        let query = raw_path
            .split_once('?')
            .map(|(_, q)| q.split_once('#').map_or(q, |(q, _)| q).to_owned());
        AuthzRequest {
            host: normalize_host(authority),
            method: method.to_ascii_uppercase(),
            path: normalize_request_path(raw_path, path_parameters),
            query,
            headers,
        }
    }
}
