//! A test identity provider: an HTTP/1.1 server on 127.0.0.1:0 serving
//! `/.well-known/openid-configuration` (issuer = its own base URL, `jwks_uri`
//! = base + `/jwks`, `introspection_endpoint` = base + `/introspect`), `/jwks`
//! and an RFC 7662 endpoint answering from a table the test fills.
//!
//! Tests can swap the JWKS at run time (key rotation), make every answer a
//! 500 or never answer at all (outage), add a `Cache-Control` header to the
//! JWKS, delay every answer (a slow IdP), and count the requests each path
//! received (outage requests included).
//!
//! For the fault tests, each path can also misbehave on its own
//! ([`Idp::set_fault`] with a [`Fault`]): slow, a 500, garbage, an endless,
//! huge or trickling body, HTML, truncated JSON, keys tollgate must refuse,
//! or an introspection answer whose `active` is not a boolean.

// clippy.toml lets `#[test]` functions panic on a failed expectation; the
// helpers here are part of the tests in the same way.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_stream::StreamExt as _;

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

/// One of the paths the IdP serves, for [`Idp::set_fault`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `/.well-known/openid-configuration`.
    Discovery,
    /// `/jwks`.
    Jwks,
    /// `/introspect`.
    Introspection,
}

impl Endpoint {
    fn of(path: &str) -> Option<Endpoint> {
        match path {
            DISCOVERY_PATH => Some(Endpoint::Discovery),
            JWKS_PATH => Some(Endpoint::Jwks),
            INTROSPECTION_PATH => Some(Endpoint::Introspection),
            _ => None,
        }
    }
}

/// Size of [`Fault::Huge`]'s body.
pub const HUGE_BODY_BYTES: u64 = 64 * 1024 * 1024;
/// How often [`Fault::Trickle`] sends its next byte.
pub const TRICKLE_INTERVAL: Duration = Duration::from_millis(100);
/// The secret of [`Fault::OnlyOctKeys`]'s `oct` key (`kid` `hs-1`), long
/// enough for HS256: a token signed with it must still never verify.
pub const OCT_SECRET: &[u8] = b"a-published-hmac-secret-of-32-bytes!";

/// How one path of the IdP misbehaves. Every fault but [`Fault::Slow`] and
/// [`Fault::ServerError`] answers `200`, so only the body can tell tollgate
/// something is wrong. The key faults replace only a JWKS and the `Active*`
/// ones only an introspection answer; on other paths they leave the answer
/// healthy, so [`Idp::set_key_fault`] lets discovery lead to the bad keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The healthy answer, after this delay (make it longer than
    /// tollgate's timeout).
    Slow(Duration),
    /// `500 Internal Server Error`.
    ServerError,
    /// `200`, `application/json`, 4 KiB of bytes that are neither JSON nor UTF-8.
    Garbage,
    /// `200`, chunked, a JSON-looking body that never ends.
    Endless,
    /// `200` declaring [`HUGE_BODY_BYTES`] (64 MiB) and streaming all of it.
    Huge,
    /// `200` and then one byte every [`TRICKLE_INTERVAL`], forever: every
    /// read is quick, only a deadline on the whole body ends it.
    Trickle,
    /// `200`, `text/html`: an HTML error page, as a proxy or a login wall sends.
    HtmlPage,
    /// `200` with the healthy JSON document labelled `text/html`. tollgate
    /// does not trust content types, so this one is *not* a fault for it:
    /// the body parses, and is used.
    JsonAsHtml,
    /// `200`, `application/json`, the first half of the healthy document.
    Truncated,
    /// A JWKS of one symmetric (`kty: oct`) key, `kid` `hs-1`, [`OCT_SECRET`].
    OnlyOctKeys,
    /// A JWKS of one key with `kty: "XYZ"` (the second EC key's material).
    UnknownKty,
    /// A JWKS of the second EC key, `alg` saying `RS256`.
    EcKeyWithRs256,
    /// A JWKS of the RSA test key, `alg` saying `ES256`.
    RsaKeyWithEs256,
    /// A JWKS of the second EC key marked `use: enc`.
    EncryptionKey,
    /// The healthy introspection answer with `active: "true"`.
    ActiveAsString,
    /// The healthy introspection answer with `active: 1`.
    ActiveAsNumber,
    /// The healthy introspection answer without `active`.
    ActiveMissing,
}

impl Fault {
    /// Whether this fault changes what `endpoint` answers.
    fn applies_to(self, endpoint: Endpoint) -> bool {
        match self {
            Fault::OnlyOctKeys
            | Fault::UnknownKty
            | Fault::EcKeyWithRs256
            | Fault::RsaKeyWithEs256
            | Fault::EncryptionKey => endpoint == Endpoint::Jwks,
            Fault::ActiveAsString | Fault::ActiveAsNumber | Fault::ActiveMissing => {
                endpoint == Endpoint::Introspection
            }
            _ => true,
        }
    }
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
    /// Faults by path; a fault overrides `mode` on its path.
    faults: HashMap<Endpoint, Fault>,
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
                faults: HashMap::new(),
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

    /// Answers `endpoint` with `fault` from the next request on (`None`:
    /// healthy again). Other paths are not affected.
    pub fn set_fault(&self, endpoint: Endpoint, fault: Option<Fault>) {
        let mut inner = self.state.lock();
        match fault {
            Some(fault) => inner.faults.insert(endpoint, fault),
            None => inner.faults.remove(&endpoint),
        };
    }

    /// [`Idp::set_fault`] for both paths keys come through: discovery and
    /// the JWKS.
    pub fn set_key_fault(&self, fault: Option<Fault>) {
        self.set_fault(Endpoint::Discovery, fault);
        self.set_fault(Endpoint::Jwks, fault);
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

/// What the IdP sends back; streamed for the endless and huge faults.
type Body = BoxBody<Bytes, Infallible>;

async fn answer(
    request: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Body>, Infallible> {
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
    let (mode, jwks, cache_control, introspected, delay, fault) = {
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
        let fault = Endpoint::of(&path).and_then(|endpoint| {
            let fault = inner.faults.get(&endpoint).copied();
            fault.filter(|fault| fault.applies_to(endpoint))
        });
        (
            inner.mode,
            inner.jwks.clone(),
            inner.cache_control.clone(),
            introspected,
            inner.delay,
            fault,
        )
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let mut builder = Response::builder().header(header::CONTENT_TYPE, "application/json");
    let (status, body) = match mode {
        IdpMode::Hang if fault.is_none() => std::future::pending().await,
        IdpMode::Fail if fault.is_none() => (StatusCode::INTERNAL_SERVER_ERROR, "{}".to_owned()),
        _ if path == DISCOVERY_PATH => {
            let document = serde_json::json!({
                "issuer": state.base_url,
                "jwks_uri": format!("{}{JWKS_PATH}", state.base_url),
                "introspection_endpoint": format!("{}{INTROSPECTION_PATH}", state.base_url),
                "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
            });
            (StatusCode::OK, document.to_string())
        }
        _ if path == JWKS_PATH => {
            if let Some(value) = cache_control {
                builder = builder.header(header::CACHE_CONTROL, value);
            }
            (StatusCode::OK, jwks)
        }
        _ if path == INTROSPECTION_PATH => {
            (StatusCode::OK, introspected.unwrap_or_default().to_string())
        }
        _ => (StatusCode::NOT_FOUND, r#"{"error":"not_found"}"#.to_owned()),
    };
    let response = match fault {
        None => builder.status(status).body(full(body)),
        Some(fault) => faulty(fault, body).await,
    };
    Ok(response.unwrap_or_else(|e| panic!("building the IdP response: {e}")))
}

/// The answer `fault` gives instead of the healthy `body`.
async fn faulty(fault: Fault, body: String) -> Result<Response<Body>, hyper::http::Error> {
    const JSON: &str = "application/json";
    let ok = |content_type: &str| {
        Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, content_type)
    };
    let with_active = |active: Option<serde_json::Value>| {
        let mut answer: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&body).unwrap_or_default();
        match active {
            Some(active) => answer.insert("active".to_owned(), active),
            None => answer.remove("active"),
        };
        serde_json::Value::Object(answer).to_string()
    };
    match fault {
        Fault::Slow(delay) => {
            tokio::time::sleep(delay).await;
            ok(JSON).body(full(body))
        }
        Fault::ServerError => Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .header(header::CONTENT_TYPE, JSON)
            .body(full(r#"{"error":"server_error"}"#.to_owned())),
        Fault::Garbage => {
            // Every byte has its top bit set, the first is a lone UTF-8
            // continuation byte: neither UTF-8 nor JSON, and deterministic.
            let bytes: Vec<u8> = (0..4096u32).map(|i| 0x80 | (i * 37 % 0x7F) as u8).collect();
            ok(JSON).body(Full::new(Bytes::from(bytes)).boxed())
        }
        Fault::Endless => {
            let chunks = tokio_stream::iter(std::iter::repeat(filler_chunk()));
            ok(JSON).body(stream(tokio_stream::iter([json_opening()]).chain(chunks)))
        }
        Fault::Huge => {
            let chunk = filler_chunk();
            let count = HUGE_BODY_BYTES / chunk.len() as u64;
            let chunks = std::iter::repeat_n(chunk, count as usize);
            ok(JSON)
                .header(header::CONTENT_LENGTH, HUGE_BODY_BYTES)
                .body(stream(tokio_stream::iter(chunks)))
        }
        Fault::Trickle => {
            let ticks = tokio_stream::wrappers::IntervalStream::new(tokio::time::interval(
                TRICKLE_INTERVAL,
            ));
            ok(JSON).body(stream(ticks.map(|_| Bytes::from_static(b" "))))
        }
        Fault::HtmlPage => ok("text/html; charset=utf-8").body(full(
            "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>\
             <body><h1>Bad Gateway</h1><p>The upstream is down.</p></body></html>"
                .to_owned(),
        )),
        Fault::JsonAsHtml => ok("text/html; charset=utf-8").body(full(body)),
        Fault::Truncated => {
            let half = body.len() / 2;
            ok(JSON).body(Full::new(Bytes::from(body.into_bytes()).slice(..half)).boxed())
        }
        Fault::OnlyOctKeys => {
            use base64::Engine as _;
            let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(OCT_SECRET);
            let jwk = serde_json::json!({"kty": "oct", "kid": "hs-1", "alg": "HS256", "use": "sig", "k": k});
            ok(JSON).body(full(serde_json::json!({ "keys": [jwk] }).to_string()))
        }
        Fault::UnknownKty => ok(JSON).body(full(jwks_altering(EC2_JWK, "kty", "XYZ"))),
        Fault::EcKeyWithRs256 => ok(JSON).body(full(jwks_altering(EC2_JWK, "alg", "RS256"))),
        Fault::RsaKeyWithEs256 => ok(JSON).body(full(jwks_altering(RSA_JWK, "alg", "ES256"))),
        Fault::EncryptionKey => ok(JSON).body(full(jwks_altering(EC2_JWK, "use", "enc"))),
        Fault::ActiveAsString => ok(JSON).body(full(with_active(Some("true".into())))),
        Fault::ActiveAsNumber => ok(JSON).body(full(with_active(Some(1.into())))),
        Fault::ActiveMissing => ok(JSON).body(full(with_active(None))),
    }
}

/// The second EC test key's JWK (`kid` `ec-2`).
const EC2_JWK: &str = include_str!("../fixtures/keys/ec-p256-2.jwk.json");
/// The RSA test key's JWK (`kid` `rsa-1`).
const RSA_JWK: &str = include_str!("../fixtures/keys/rsa-2048.jwk.json");

/// A JWKS of the one JWK `jwk`, with its `member` set to `value`.
fn jwks_altering(jwk: &str, member: &str, value: &str) -> String {
    let mut jwk: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(jwk).expect("a fixture JWK");
    jwk.insert(member.to_owned(), value.into());
    serde_json::json!({ "keys": [jwk] }).to_string()
}

fn full(body: String) -> Body {
    Full::new(Bytes::from(body)).boxed()
}

/// A streamed body; it ends when the client goes away or the stream does.
fn stream(chunks: impl tokio_stream::Stream<Item = Bytes> + Send + Sync + 'static) -> Body {
    StreamBody::new(chunks.map(|chunk| Ok::<_, Infallible>(Frame::data(chunk)))).boxed()
}

/// The start of a document that would parse if it ever ended, so only a
/// size cap (not a parse error) can stop a reader.
fn json_opening() -> Bytes {
    Bytes::from_static(br#"{"active":true,"keys":["#)
}

/// 64 KiB of `0,` repeated: the middle of the endless and huge bodies
/// ([`HUGE_BODY_BYTES`] is a whole number of them).
fn filler_chunk() -> Bytes {
    Bytes::from("0,".repeat(32 * 1024))
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
