//! A test identity provider: an HTTP/1.1 server on 127.0.0.1:0 serving
//! `/.well-known/openid-configuration` (issuer = its own base URL, `jwks_uri`
//! = base + `/jwks`, `introspection_endpoint` = base + `/introspect`), `/jwks`
//! and an RFC 7662 endpoint answering from a table the test fills.
//!
//! Tests can swap the JWKS at run time (key rotation), make every answer a
//! 500 or never answer at all (outage), add a `Cache-Control` header to the
//! JWKS, delay every answer (a slow IdP), and count the requests each path
//! received (outage requests included).

// clippy.toml lets `#[test]` functions panic on a failed expectation; the
// helpers here are part of the tests in the same way.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// The discovery document's path.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// The JWKS path.
pub const JWKS_PATH: &str = "/jwks";
/// The introspection endpoint's path.
pub const INTROSPECTION_PATH: &str = "/introspect";

/// How the IdP answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdpMode {
    /// Serve discovery and the JWKS.
    Serve,
    /// Answer every request `500 Internal Server Error`.
    Fail,
    /// Accept requests and never answer them.
    Hang,
}

/// The IdP; it stops (with its open connections) when dropped.
#[derive(Debug)]
pub struct Idp {
    pub addr: SocketAddr,
    state: Arc<State>,
    server: JoinHandle<()>,
}

#[derive(Debug)]
struct State {
    base_url: String,
    // Held only to read or replace a value, never across an await.
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    jwks: String,
    mode: IdpMode,
    cache_control: Option<String>,
    /// Wait this long before answering.
    delay: Option<std::time::Duration>,
    hits: HashMap<String, usize>,
    /// Introspection answers by token; unknown tokens are inactive.
    introspection: HashMap<String, serde_json::Value>,
    /// The last introspection request: its `Authorization` and form body.
    last_introspection: Option<(Option<String>, String)>,
}

impl Idp {
    /// Starts serving `jwks` (a JWKS document) in [`IdpMode::Serve`].
    pub async fn start(jwks: impl Into<String>) -> Self {
        Self::start_in(jwks, IdpMode::Serve).await
    }

    /// Starts serving `jwks` over https with the PEM `cert` and `key` (for
    /// `localhost`); its base URL is `https://localhost:<port>`.
    pub async fn start_tls(
        jwks: impl Into<String>,
        cert: &std::path::Path,
        key: &std::path::Path,
    ) -> Self {
        use tokio_rustls::rustls;
        use tokio_rustls::rustls::pki_types::pem::PemObject as _;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_file_iter(cert)
            .expect("IdP certificate")
            .collect::<Result<Vec<_>, _>>()
            .expect("IdP certificate PEM");
        let key = PrivateKeyDer::from_pem_file(key).expect("IdP key");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("IdP TLS config");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        Self::start_with(jwks, IdpMode::Serve, Some(acceptor), "localhost").await
    }

    /// Starts serving `jwks`, answering as `mode` says from the first request.
    pub async fn start_in(jwks: impl Into<String>, mode: IdpMode) -> Self {
        Self::start_with(jwks, mode, None, "127.0.0.1").await
    }

    async fn start_with(
        jwks: impl Into<String>,
        mode: IdpMode,
        tls: Option<tokio_rustls::TlsAcceptor>,
        host: &str,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the test IdP on 127.0.0.1:0");
        let addr = listener.local_addr().expect("test IdP address");
        let state = Arc::new(State {
            base_url: match &tls {
                Some(_) => format!("https://{host}:{}", addr.port()),
                None => format!("http://{host}:{}", addr.port()),
            },
            inner: Mutex::new(Inner {
                jwks: jwks.into(),
                mode,
                cache_control: None,
                delay: None,
                hits: HashMap::new(),
                introspection: HashMap::new(),
                last_introspection: None,
            }),
        });
        let server = tokio::spawn(serve(listener, Arc::clone(&state), tls));
        Self {
            addr,
            state,
            server,
        }
    }

    /// `http://127.0.0.1:<port>`: the issuer its discovery document names.
    pub fn base_url(&self) -> &str {
        &self.state.base_url
    }

    /// `http://127.0.0.1:<port>/jwks`.
    pub fn jwks_uri(&self) -> String {
        format!("{}{JWKS_PATH}", self.state.base_url)
    }

    /// Serves `jwks` from the next request on.
    pub fn set_jwks(&self, jwks: impl Into<String>) {
        self.state.lock().jwks = jwks.into();
    }

    /// Answers as `mode` says from the next request on.
    pub fn set_mode(&self, mode: IdpMode) {
        self.state.lock().mode = mode;
    }

    /// Sends this `Cache-Control` value with the JWKS (`None`: no header).
    pub fn set_cache_control(&self, value: Option<&str>) {
        self.state.lock().cache_control = value.map(str::to_owned);
    }

    /// Introspection of `token` answers `answer` (an RFC 7662 JSON object).
    pub fn set_introspection(&self, token: &str, answer: serde_json::Value) {
        self.state
            .lock()
            .introspection
            .insert(token.to_owned(), answer);
    }

    /// The last introspection request's `Authorization` header and body.
    pub fn last_introspection(&self) -> Option<(Option<String>, String)> {
        self.state.lock().last_introspection.clone()
    }

    /// Waits `delay` before each answer from the next request on (a slow IdP).
    pub fn set_delay(&self, delay: Option<std::time::Duration>) {
        self.state.lock().delay = delay;
    }

    /// How many requests `path` has received, whatever the answer was.
    pub fn hits(&self, path: &str) -> usize {
        self.state.lock().hits.get(path).copied().unwrap_or(0)
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        // Dropping the accept task drops its JoinSet, aborting connections.
        self.server.abort();
    }
}

impl State {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panicking test thread must not turn every later call into a panic.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Builds a JWKS document from single-JWK JSON texts (such as the
/// `*.jwk.json` fixtures).
pub fn jwks_of(keys: &[&str]) -> String {
    let keys: Vec<&str> = keys.iter().map(|k| k.trim()).collect();
    format!("{{\"keys\":[{}]}}", keys.join(","))
}

async fn serve(listener: TcpListener, state: Arc<State>, tls: Option<tokio_rustls::TlsAcceptor>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let state = Arc::clone(&state);
        let tls = tls.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| answer(request, Arc::clone(&state)));
            // A peer giving up on a hung request is the point of Hang mode.
            match tls {
                None => {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                }
                Some(tls) => {
                    let Ok(stream) = tls.accept(stream).await else {
                        return;
                    };
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
}

async fn answer(
    request: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let form = match request.into_body().collect().await {
        Ok(body) => String::from_utf8_lossy(&body.to_bytes()).into_owned(),
        Err(_) => String::new(),
    };
    let (mode, jwks, cache_control, introspected, delay) = {
        let mut inner = state.lock();
        *inner.hits.entry(path.clone()).or_insert(0) += 1;
        let introspected = if path == INTROSPECTION_PATH {
            inner.last_introspection = Some((authorization, form.clone()));
            let token = form_value(&form, "token").unwrap_or_default();
            Some(
                inner
                    .introspection
                    .get(&token)
                    .cloned()
                    .unwrap_or_else(|| serde_json::json!({"active": false})),
            )
        } else {
            None
        };
        (
            inner.mode,
            inner.jwks.clone(),
            inner.cache_control.clone(),
            introspected,
            inner.delay,
        )
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let mut builder = Response::builder().header(header::CONTENT_TYPE, "application/json");
    let (status, body) = match mode {
        IdpMode::Hang => std::future::pending().await,
        IdpMode::Fail => (StatusCode::INTERNAL_SERVER_ERROR, "{}".to_owned()),
        IdpMode::Serve if path == DISCOVERY_PATH => {
            let document = serde_json::json!({
                "issuer": state.base_url,
                "jwks_uri": format!("{}{JWKS_PATH}", state.base_url),
                "introspection_endpoint": format!("{}{INTROSPECTION_PATH}", state.base_url),
                "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
            });
            (StatusCode::OK, document.to_string())
        }
        IdpMode::Serve if path == JWKS_PATH => {
            if let Some(value) = cache_control {
                builder = builder.header(header::CACHE_CONTROL, value);
            }
            (StatusCode::OK, jwks)
        }
        IdpMode::Serve if path == INTROSPECTION_PATH => {
            (StatusCode::OK, introspected.unwrap_or_default().to_string())
        }
        IdpMode::Serve => (StatusCode::NOT_FOUND, r#"{"error":"not_found"}"#.to_owned()),
    };
    let response = builder
        .status(status)
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|e| panic!("building the IdP response: {e}"));
    Ok(response)
}

/// The decoded value of `name` in a form-urlencoded body.
pub fn form_value(form: &str, name: &str) -> Option<String> {
    form.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| percent_decode(value))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&text[i + 1..i + 3], 16) {
                Ok(byte) => {
                    out.push(byte);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
