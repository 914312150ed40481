//! One-call HTTP helpers for tests: send a request, get a fully read
//! `Response` whose fields can be asserted on directly.

use reqwest::header::HeaderMap;

/// A response read to the end.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Response {
    /// The body as JSON; panics with the body if it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {}", self.body))
    }

    /// The first value of a header, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// `GET url` with the given headers (repeat a name to send it twice).
pub async fn get(url: &str, headers: &[(&str, &str)]) -> Response {
    request("GET", url, headers, Vec::new()).await
}

/// Any method, headers and body. A fresh client per call: tokio tests each
/// have their own runtime, and a pooled connection cannot outlive one.
pub async fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Response {
    let client = reqwest::Client::builder()
        // Never route loopback test traffic through a proxy from the
        // environment.
        .no_proxy()
        .build()
        .expect("building the test HTTP client");
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .unwrap_or_else(|e| panic!("bad method {method:?}: {e}"));
    let mut builder = client.request(method.clone(), url).body(body);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = builder
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .text()
        .await
        .unwrap_or_else(|e| panic!("reading the body of {method} {url}: {e}"));
    Response {
        status,
        headers,
        body,
    }
}
