//! HTTP ext_authz mode, for Envoy's `http_service` (Istio
//! `envoyExtAuthzHttp`): Envoy sends the original request's method, path
//! (after its `path_prefix`) and headers as an HTTP request; tollgate
//! answers 200 to allow, with the upstream headers as response headers,
//! removals in `x-envoy-auth-headers-to-remove` and dynamic metadata in
//! `x-tollgate-metadata-*`, or the deny's status, headers and body. The
//! request body is never read.
//!
//! The decision and the deny are the same as in gRPC mode: the same
//! [`Checkpoint`] decides, and the denial's route shapes the reply.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response};

use super::{Body, response};
use crate::authz::{AuthzRequest, Checkpoint, Unanswered};
use crate::outcome::Decision;

/// The header Envoy's `http_service` reads removals from, comma-separated.
pub(crate) const HEADERS_TO_REMOVE: &str = "x-envoy-auth-headers-to-remove";

/// Prefix of the allow headers that carry dynamic metadata (`route` and
/// `metadata_claims`), for Envoy's
/// `authorization_response.dynamic_metadata_from_headers`.
pub(crate) const METADATA_HEADER_PREFIX: &str = "x-tollgate-metadata-";

/// Answers one check. `path_prefix` is stripped from the path first.
pub(crate) async fn handle(
    checkpoint: Arc<Checkpoint>,
    path_prefix: Option<Arc<str>>,
    request: Request<Incoming>,
) -> Response<Body> {
    let admitted = match checkpoint.admit() {
        Ok(admitted) => admitted,
        Err(unanswered) => return unavailable(unanswered),
    };
    let Some(request) = authz_request(&request, path_prefix.as_deref()) else {
        tracing::warn!(
            prefix = path_prefix.as_deref(),
            "HTTP-mode check without the configured server.http_path_prefix; check Envoy's http_service.path_prefix"
        );
        return response(400, [], String::new());
    };
    match admitted.check(&request, Vec::new).await {
        Ok(Decision::Allow(grant)) => {
            let mut headers = grant.upstream.set;
            if !grant.upstream.remove.is_empty() {
                headers.push((
                    HEADERS_TO_REMOVE.to_owned(),
                    grant.upstream.remove.join(", "),
                ));
            }
            headers.extend(grant.response_headers);
            headers.extend(metadata_headers(grant.metadata));
            response(200, headers, String::new())
        }
        Ok(Decision::Deny(denial)) => {
            let reply = denial.reply();
            response(reply.status, reply.headers, reply.body)
        }
        Err(unanswered) => unavailable(unanswered),
    }
}

/// A check without a decision: a 503 with a short plain-text reason, which
/// Envoy's failure mode acts on. The detail is in the log line.
fn unavailable(unanswered: Unanswered) -> Response<Body> {
    response(
        503,
        [(
            "content-type".to_owned(),
            "text/plain; charset=utf-8".to_owned(),
        )],
        format!("{}\n", unanswered.description()),
    )
}

/// Each metadata entry as `x-tollgate-metadata-<key>`: strings as they
/// are, other values as compact JSON. An entry whose key is not a header
/// name or whose value is not safe header text is left out.
fn metadata_headers(
    metadata: serde_json::Map<String, serde_json::Value>,
) -> impl Iterator<Item = (String, String)> {
    metadata.into_iter().filter_map(|(key, value)| {
        let name = format!("{METADATA_HEADER_PREFIX}{}", key.to_ascii_lowercase());
        let text = match value {
            serde_json::Value::String(text) => text,
            other => other.to_string(),
        };
        let safe = hyper::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
            && !text.chars().any(char::is_control)
            && text.len() <= crate::headers::MAX_HEADER_VALUE_BYTES;
        safe.then_some((name, text))
    })
}

/// The original request as sent, or `None` when the path lacks
/// `path_prefix`.
fn authz_request(request: &Request<Incoming>, path_prefix: Option<&str>) -> Option<AuthzRequest> {
    let raw_path = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str());
    let raw_path = strip_prefix(raw_path, path_prefix)?;
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let authority = request
        .headers()
        .get(hyper::header::HOST)
        .map(|host| String::from_utf8_lossy(host.as_bytes()).into_owned())
        .or_else(|| request.uri().authority().map(|a| a.as_str().to_owned()))
        .unwrap_or_default();
    // Envoy's HTTP service sends no scheme; it sets x-forwarded-proto from
    // the downstream connection (and overwrites a client's at the edge).
    let scheme = headers
        .iter()
        .find(|(name, _)| name == "x-forwarded-proto")
        .map(|(_, value)| value.clone())
        .unwrap_or_default();
    Some(AuthzRequest {
        scheme,
        authority,
        method: request.method().as_str().to_owned(),
        path: raw_path.to_owned(),
        headers,
        // Envoy's HTTP service cannot pass the peer certificate; a trusted
        // x-forwarded-client-cert can.
        peer_certificate: None,
    })
}

/// `path` without `prefix`, which must end at a segment boundary
/// (`/authz/x` has prefix `/authz`, `/authzx` has not).
fn strip_prefix<'a>(path: &'a str, prefix: Option<&str>) -> Option<&'a str> {
    let Some(prefix) = prefix else {
        return Some(path);
    };
    let rest = path.strip_prefix(prefix)?;
    match rest.as_bytes().first() {
        None => Some("/"),
        Some(b'/') => Some(rest),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_becomes_prefixed_headers_when_safe() {
        let metadata = serde_json::json!({
            "route": "orders",
            "tenant.id": 7,
            "groups": ["a", "b"],
            "https://example.com/claims": "not a header name",
            "bad": "line\nbreak",
        });
        let serde_json::Value::Object(metadata) = metadata else {
            unreachable!()
        };
        let mut headers: Vec<_> = metadata_headers(metadata).collect();
        headers.sort();
        assert_eq!(
            headers,
            [
                (
                    "x-tollgate-metadata-groups".to_owned(),
                    r#"["a","b"]"#.to_owned()
                ),
                ("x-tollgate-metadata-route".to_owned(), "orders".to_owned()),
                ("x-tollgate-metadata-tenant.id".to_owned(), "7".to_owned()),
            ]
        );
    }

    #[test]
    fn strips_the_prefix_at_a_segment_boundary() {
        assert_eq!(strip_prefix("/a/b?x=1", None), Some("/a/b?x=1"));
        assert_eq!(
            strip_prefix("/authz/a/b?x=1", Some("/authz")),
            Some("/a/b?x=1")
        );
        assert_eq!(strip_prefix("/authz", Some("/authz")), Some("/"));
        assert_eq!(strip_prefix("/authzx/a", Some("/authz")), None);
        assert_eq!(strip_prefix("/other", Some("/authz")), None);
    }
}
