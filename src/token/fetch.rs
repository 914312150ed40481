//! HTTP plumbing shared by everything that talks to identity providers:
//! the client, bounded body reads, and URLs made safe to log.

use std::time::Duration;

use reqwest::{Response, Url};

/// A client builder with tollgate's user agent and the redirect rules for
/// IdP URLs; callers set their own timeouts.
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .user_agent(concat!("tollgate/", env!("CARGO_PKG_VERSION")))
        .redirect(super::jwks::redirect_policy())
        // A redirect must not tell the next host where it came from.
        .referer(false)
}

/// [`client_builder`], also trusting `roots` (a private CA) besides the
/// system's roots.
pub fn client_builder_trusting(roots: &[reqwest::Certificate]) -> reqwest::ClientBuilder {
    roots.iter().fold(client_builder(), |builder, root| {
        builder.add_root_certificate(root.clone())
    })
}

/// Reading a response body failed.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The connection broke or timed out mid-body.
    Http(reqwest::Error),
    /// The body exceeded the cap.
    TooLarge,
}

/// Reads at most `limit` bytes of the body, whatever Content-Length claims.
pub(crate) async fn read_capped(
    response: &mut Response,
    limit: usize,
) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Http)? {
        if chunk.len() > limit - bytes.len() {
            return Err(ReadError::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// The URL for logs and errors: credentials in a URL are secrets, and so
/// may be its query (`?api_key=...`), which is shown as `?redacted`.
pub(crate) fn display_url(uri: &Url) -> String {
    let mut shown = uri.clone();
    // Both fail only for URLs that cannot carry credentials at all.
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    if shown.query().is_some() {
        shown.set_query(Some("redacted"));
    }
    shown.to_string()
}

/// OIDC Discovery §4.3 requires the exact issuer; a lone trailing slash is
/// tolerated because IdPs and configurations disagree about it.
pub(crate) fn same_issuer(found: &str, configured: &str) -> bool {
    found == configured
        || found.strip_suffix('/') == Some(configured)
        || configured.strip_suffix('/') == Some(found)
}
