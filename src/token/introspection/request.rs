//! The HTTP side of introspection: the RFC 7662 request with the client's
//! credentials, and finding the endpoint in the issuer's metadata.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{StatusCode, Url};
use serde::Deserialize;

use super::error::IntrospectionError;
use super::response::Introspection;
use super::settings::{ClientAuth, IntrospectionSettings};
use crate::fetch::{ReadError, check_key_url, display_url, read_capped, same_issuer};
use crate::secret::Secret;

/// Introspection answers and metadata documents are small; this bounds what
/// a broken or hostile endpoint can make tollgate buffer.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// One RFC 7662 request for `token` at `endpoint`, authenticated as
/// `settings` say, bounded by its timeout and body cap.
pub(super) async fn call(
    client: &reqwest::Client,
    endpoint: &Url,
    settings: &IntrospectionSettings,
    provider: &str,
    token: &str,
) -> Result<Introspection, IntrospectionError> {
    let uri = display_url(endpoint);
    let http_error = |source: reqwest::Error| IntrospectionError::Http {
        uri: uri.clone(),
        source: source.without_url(),
    };
    let mut form: Vec<(&str, &[u8])> = vec![
        ("token", token.as_bytes()),
        ("token_type_hint", b"access_token"),
    ];
    let mut request = client
        .post(endpoint.clone())
        .timeout(settings.timeout)
        .header(ACCEPT, "application/json")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
    match &settings.client_auth {
        ClientAuth::ClientSecretBasic { client_id, secret } => {
            request = request.header(AUTHORIZATION, basic_credentials(client_id, secret));
        }
        ClientAuth::ClientSecretPost { client_id, secret } => {
            form.push(("client_id", client_id.as_bytes()));
            form.push(("client_secret", secret.expose()));
        }
        ClientAuth::None => {}
    }
    for (name, value) in &settings.headers {
        request = request.header(name, value.clone());
    }
    let started = tokio::time::Instant::now();
    let mut response = request
        .body(encode_form(&form))
        .send()
        .await
        .map_err(http_error)?;
    let status = response.status();
    if status != StatusCode::OK {
        return Err(IntrospectionError::Status { uri, status });
    }
    let body = read_capped(&mut response, MAX_BODY_BYTES)
        .await
        .map_err(|error| match error {
            ReadError::Http(source) => http_error(source),
            ReadError::TooLarge => IntrospectionError::TooLarge {
                uri: uri.clone(),
                limit: MAX_BODY_BYTES,
            },
        })?;
    let answer = Introspection::parse(&body)
        .map_err(|source| IntrospectionError::Response { uri, source })?;
    tracing::debug!(
        %provider,
        active = matches!(answer, Introspection::Active(_)),
        elapsed = ?started.elapsed(),
        "introspected"
    );
    Ok(answer)
}

/// Reads `introspection_endpoint` from `issuer`'s OIDC Discovery
/// document, falling back to RFC 8414 authorization server metadata; why
/// not, when it fails.
pub(super) async fn discover(
    client: &reqwest::Client,
    issuer: &str,
    timeout: Duration,
    provider: &str,
) -> Result<Url, String> {
    let mut reasons = Vec::new();
    for uri in metadata_urls(issuer) {
        match metadata(client, &uri, issuer, timeout).await {
            Ok(endpoint) => {
                tracing::info!(
                    %provider,
                    endpoint = %display_url(&endpoint),
                    "discovered introspection endpoint"
                );
                return Ok(endpoint);
            }
            Err(reason) => reasons.push(reason),
        }
    }
    Err(reasons.join("; "))
}

async fn metadata(
    client: &reqwest::Client,
    uri: &Url,
    issuer: &str,
    timeout: Duration,
) -> Result<Url, String> {
    #[derive(Deserialize)]
    struct Metadata {
        issuer: String,
        introspection_endpoint: Option<String>,
    }
    let shown = display_url(uri);
    let mut response = client
        .get(uri.clone())
        .timeout(timeout)
        .header(ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| format!("{shown}: {}", e.without_url()))?;
    if !response.status().is_success() {
        return Err(format!("{shown} answered HTTP {}", response.status()));
    }
    let body = read_capped(&mut response, MAX_BODY_BYTES)
        .await
        .map_err(|_| format!("{shown}: the body could not be read within the limit"))?;
    let metadata: Metadata = serde_json::from_slice(&body)
        .map_err(|e| format!("{shown} is not a metadata document: {e}"))?;
    if !same_issuer(&metadata.issuer, issuer) {
        return Err(format!(
            "{shown} names issuer {:?}, not {issuer:?}",
            metadata.issuer
        ));
    }
    let endpoint = metadata
        .introspection_endpoint
        .ok_or_else(|| format!("{shown} names no introspection_endpoint"))?;
    let endpoint = Url::parse(&endpoint)
        .map_err(|e| format!("{shown}: introspection_endpoint is not a URL: {e}"))?;
    check_key_url(&endpoint, Some(uri)).map_err(|reason| format!("{shown}: {reason}"))?;
    Ok(endpoint)
}

/// OIDC Discovery's URL, then RFC 8414's (the well-known segment goes
/// between host and path).
fn metadata_urls(issuer: &str) -> Vec<Url> {
    let mut urls = Vec::with_capacity(2);
    let base = issuer.trim_end_matches('/');
    if let Ok(url) = Url::parse(&format!("{base}/.well-known/openid-configuration")) {
        urls.push(url);
    }
    if let Ok(mut url) = Url::parse(base) {
        let path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
        urls.push(url);
    }
    urls
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1),
/// marked sensitive so it is never logged.
fn basic_credentials(client_id: &str, secret: &Secret) -> HeaderValue {
    let mut pair = form_component(client_id.as_bytes());
    pair.push(':');
    pair.push_str(&form_component(secret.expose()));
    let mut value = HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(pair)))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
    value.set_sensitive(true);
    value
}

/// `application/x-www-form-urlencoded` body; values are bytes, so a
/// secret that is not UTF-8 is sent as it is.
fn encode_form(pairs: &[(&str, &[u8])]) -> String {
    pairs
        .iter()
        .map(|(name, value)| {
            format!(
                "{}={}",
                form_component(name.as_bytes()),
                form_component(value)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// One form-urlencoded component (WHATWG URL, `application/x-www-form-urlencoded`).
fn form_component(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0xF)]));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_components_are_encoded() {
        assert_eq!(form_component(b"abc-._*XYZ019"), "abc-._*XYZ019");
        assert_eq!(form_component(b"a b&c=d+e/f"), "a+b%26c%3Dd%2Be%2Ff");
        assert_eq!(
            encode_form(&[("token", b"x y"), ("token_type_hint", b"access_token")]),
            "token=x+y&token_type_hint=access_token"
        );
    }
}
