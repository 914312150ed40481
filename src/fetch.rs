//! The policy for every call to an identity provider (discovery, JWKS,
//! introspection): the client, which URLs may be called and redirected to,
//! bounded body reads, and URLs made safe to log.

use std::time::Duration;

use reqwest::{Response, Url};

/// A client builder with tollgate's user agent and the redirect rules for
/// IdP URLs; callers set their own timeouts.
pub(crate) fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .user_agent(concat!("tollgate/", env!("CARGO_PKG_VERSION")))
        .redirect(redirect_policy())
        // A redirect must not tell the next host where it came from.
        .referer(false)
}

/// [`client_builder`], also trusting `roots` (a private CA) besides the
/// system's roots.
pub(crate) fn client_builder_trusting(roots: &[reqwest::Certificate]) -> reqwest::ClientBuilder {
    roots.iter().fold(client_builder(), |builder, root| {
        builder.add_root_certificate(root.clone())
    })
}

/// Keys fetched over plain HTTP can be swapped by anyone on the path, so a
/// key URL must be https, or http on a loopback host. `from`, when given, is
/// where the URL came from (the issuer, or the previous redirect hop): https
/// may never lead to http.
pub(crate) fn check_key_url(url: &Url, from: Option<&Url>) -> Result<(), String> {
    let loopback = url.host_str().is_some_and(|host| {
        host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    match url.scheme() {
        "https" => Ok(()),
        "http" if from.is_some_and(|from| from.scheme() == "https") => Err(format!(
            "`{}` would downgrade from https to plain http",
            display_url(url)
        )),
        "http" if loopback => Ok(()),
        "http" => Err(format!(
            "`{}` uses plain http; keys must be fetched over https (http is allowed only for localhost)",
            display_url(url)
        )),
        other => Err(format!(
            "`{}` has scheme `{other}`; use https",
            display_url(url)
        )),
    }
}

/// Redirects for key fetches: at most three hops, each of which must pass
/// [`check_key_url`]. IdPs publish final URLs; a redirect is followed only
/// where it cannot lower the transport's security.
pub(crate) fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() > 3 {
            return attempt.error("more than 3 redirects");
        }
        match check_key_url(attempt.url(), attempt.previous().last()) {
            Ok(()) => attempt.follow(),
            Err(reason) => attempt.error(reason),
        }
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

    #[test]
    fn key_urls_must_be_https_or_loopback_http() {
        let url = |u: &str| Url::parse(u).unwrap();
        for ok in [
            "https://idp.example.com/jwks",
            "http://localhost:8080/jwks",
            "http://127.0.0.1/jwks",
            "http://127.0.0.2/jwks",
            "http://[::1]:9000/jwks",
        ] {
            assert_eq!(check_key_url(&url(ok), None), Ok(()), "{ok}");
        }
        for bad in [
            "http://idp.example.com/jwks",
            "http://10.0.0.1/jwks",
            "ftp://idp.example.com/jwks",
            "file:///etc/jwks.json",
        ] {
            assert!(check_key_url(&url(bad), None).is_err(), "{bad}");
        }
        // https never leads to http, not even to loopback.
        let from = url("https://idp.example.com/");
        assert!(check_key_url(&url("http://localhost/jwks"), Some(&from)).is_err());
        assert!(check_key_url(&url("https://cdn.example.com/jwks"), Some(&from)).is_ok());
    }

    #[test]
    fn issuer_comparison_tolerates_only_a_trailing_slash() {
        assert!(same_issuer("https://idp.example", "https://idp.example"));
        assert!(same_issuer("https://idp.example/", "https://idp.example"));
        assert!(same_issuer("https://idp.example", "https://idp.example/"));
        assert!(!same_issuer("https://idp.example//", "https://idp.example"));
        assert!(!same_issuer("https://IDP.example", "https://idp.example"));
        assert!(!same_issuer(
            "https://idp.example/tenant",
            "https://idp.example"
        ));
    }

    #[test]
    fn urls_are_shown_without_credentials_or_query() {
        let url = Url::parse("https://user:secret@idp.example/keys?api_key=s3cret").unwrap();
        assert_eq!(display_url(&url), "https://idp.example/keys?redacted");
        let plain = Url::parse("https://idp.example/keys").unwrap();
        assert_eq!(display_url(&plain), "https://idp.example/keys");
    }
}
