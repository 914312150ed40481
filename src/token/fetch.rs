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

/// Reads at most `limit` bytes of the body, whatever Content-Length claims;
/// a body declared longer is refused before any of it is read.
/// Time is bounded by the request's `timeout`, which reqwest applies to the
/// whole body too: a body trickling in a byte at a time ends there, not
/// only a body that stalls.
pub(crate) async fn read_capped(
    response: &mut Response,
    limit: usize,
) -> Result<Vec<u8>, ReadError> {
    if response
        .content_length()
        .is_some_and(|declared| declared > limit as u64)
    {
        return Err(ReadError::TooLarge);
    }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpListener;

    use super::*;

    /// An HTTP/1.1 server on 127.0.0.1:0 whose one answer declares
    /// `length` bytes (`None`: chunked) and sends a byte every `interval`,
    /// without end.
    async fn serve_endless(length: Option<usize>, interval: Duration) -> Url {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = [0; 1024];
            let _ = stream.read(&mut request).await;
            let (framing, byte): (String, &[u8]) = match length {
                Some(length) => (format!("content-length: {length}"), b" "),
                None => ("transfer-encoding: chunked".to_owned(), b"1\r\n \r\n"),
            };
            let head = format!("HTTP/1.1 200 OK\r\n{framing}\r\n\r\n");
            stream.write_all(head.as_bytes()).await.unwrap();
            while stream.write_all(byte).await.is_ok() {
                tokio::time::sleep(interval).await;
            }
        });
        url
    }

    async fn get(url: Url, timeout: Duration) -> Response {
        let client = client_builder().build().unwrap();
        client.get(url).timeout(timeout).send().await.unwrap()
    }

    #[tokio::test]
    async fn a_trickling_body_ends_at_the_request_timeout() {
        // Each byte comes well within the timeout; only a deadline on the
        // whole body can end the read.
        let url = serve_endless(Some(1 << 20), Duration::from_millis(20)).await;
        let mut response = get(url, Duration::from_millis(300)).await;
        let read =
            tokio::time::timeout(Duration::from_secs(10), read_capped(&mut response, 1 << 20))
                .await
                .expect("the read outlived the request timeout");
        assert!(
            matches!(&read, Err(ReadError::Http(error)) if error.is_timeout()),
            "{read:?}"
        );
    }

    #[tokio::test]
    async fn a_body_declared_past_the_cap_is_refused_unread() {
        // One byte a minute: reading any of it would meet the timeout first.
        let url = serve_endless(Some(64 << 20), Duration::from_secs(60)).await;
        let mut response = get(url, Duration::from_secs(30)).await;
        let read = tokio::time::timeout(Duration::from_secs(10), read_capped(&mut response, 1024))
            .await
            .expect("the body was read rather than refused on its length");
        assert!(matches!(read, Err(ReadError::TooLarge)), "{read:?}");
    }

    #[tokio::test]
    async fn a_body_past_the_cap_is_refused_whatever_it_declares() {
        // Chunked, so nothing is declared; the cap still holds.
        let url = serve_endless(None, Duration::ZERO).await;
        let mut response = get(url, Duration::from_secs(10)).await;
        let read = read_capped(&mut response, 1024).await;
        assert!(matches!(read, Err(ReadError::TooLarge)), "{read:?}");
    }
}
