//! The attack corpus: every entry of `tests/attacks/corpus.yaml` (the
//! known ways JWT validators have been broken, each with its reference)
//! sent to the real `tollgate` binary over gRPC `Check`, then once more
//! through the real Envoy in front of it. One tollgate, one Envoy and one
//! IdP serve every entry; the format is described in
//! `tests/attacks/README.md`.
//!
//! Per entry: never an allow (except the leeway boundary controls), exactly
//! the expected status and RFC 6750 error, tollgate still SERVING, no
//! request to an attacker's URL. After all of them: no panic in the log,
//! and no token or signature in it.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use envoy_types::pb::envoy::service::auth::v3::CheckRequest;
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use serde::Deserialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use support::check::{GRPC_OK, fixture, keys_dir, pem_der, request, rsa_public_pem};
use support::idp::{Idp, jwks_of};
use support::stack::Stack;
use support::{Response, repo_path};

const CORPUS: &str = include_str!("attacks/corpus.yaml");
const CONFIG: &str = include_str!("attacks/tollgate.yaml");
/// How many entries the corpus holds: an entry lost to a YAML slip fails
/// the test instead of silently not running. Update it with the corpus.
const ENTRIES: usize = 187;
/// `leeway` of both providers in `tests/attacks/tollgate.yaml`.
const LEEWAY: i64 = 30;
/// The `hmac` provider's configured secret (64 bytes, for HS512).
const HMAC_SECRET: &str = "corpus-hmac-secret-0123456789abcdef0123456789abcdef0123456789abc";
const REALM: &str = "attacks";
/// The claims `claims: valid` stands for: a token the main provider accepts
/// on `/read`.
const VALID_CLAIMS: &str = r#"{"iss":"https://idp.attacks.test","aud":"orders-api","sub":"mallory","client_id":"corpus","scope":"read","iat":${now},"exp":${now+300}}"#;

// ---------------------------------------------------------------------------
// The corpus file
// ---------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    reference: String,
    /// The JOSE header, as JSON text (placeholders expanded).
    header: Option<String>,
    /// `valid`, or the claims as JSON text.
    claims: Option<String>,
    /// How the signature part is made.
    sign: Option<String>,
    /// The whole token instead of header, claims and sign.
    token: Option<String>,
    #[serde(default = "default_path")]
    path: String,
    /// Request header lines; default `authorization: Bearer ${token}`.
    headers: Option<Vec<(String, String)>>,
    /// Lines sent in the CheckRequest's `header_map` (through Envoy: as
    /// ordinary header lines).
    #[serde(default)]
    header_map: Vec<(String, String)>,
    /// This many extra `x-filler-N` header lines.
    #[serde(default)]
    filler_headers: usize,
    expect: Expect,
    /// What a client sees at Envoy, when Envoy answers before asking tollgate.
    envoy: Option<u16>,
    /// Why an `allow` is expected: only leeway boundary controls may.
    control: Option<String>,
}

fn default_path() -> String {
    "/read".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Expect {
    Allow(AllowWord),
    Deny {
        status: u16,
        error: String,
        scope: Option<String>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum AllowWord {
    Allow,
}

impl Entry {
    fn label(&self) -> String {
        format!("{} ({})", self.name, self.reference)
    }

    /// Claims relative to the leeway are minted and checked within one
    /// wall-clock second, so a second ticking over cannot move the boundary.
    fn at_boundary(&self) -> bool {
        self.claims.as_deref().is_some_and(|c| c.contains("leeway"))
    }
}

fn corpus() -> Vec<Entry> {
    serde_yaml::from_str(CORPUS)
        .unwrap_or_else(|e| panic!("tests/attacks/corpus.yaml does not parse: {e}"))
}

// ---------------------------------------------------------------------------
// Placeholders
// ---------------------------------------------------------------------------

/// What `${...}` placeholders stand for.
struct Vars {
    now: i64,
    attacker_url: String,
    attacker_jwk: String,
    attacker_x5c: String,
    /// The entry's own token, in request headers.
    token: Option<String>,
    /// A token the main provider accepts, in request headers.
    valid: Option<String>,
}

/// `text` with every placeholder replaced; bytes, since `${byte:HH}` need
/// not make UTF-8.
fn expand(text: &str, vars: &Vars) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.extend_from_slice(&rest.as_bytes()[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed placeholder in {text:?}"))?;
        out.extend(placeholder(&after[..end], vars)?);
        rest = &after[end + 1..];
    }
    out.extend_from_slice(rest.as_bytes());
    Ok(out)
}

fn expand_text(text: &str, vars: &Vars) -> Result<String, String> {
    String::from_utf8(expand(text, vars)?)
        .map_err(|_| format!("{text:?} is not UTF-8 once expanded"))
}

fn placeholder(name: &str, vars: &Vars) -> Result<Vec<u8>, String> {
    let missing = || format!("${{{name}}} has no value here");
    if let Some(offset) = name.strip_prefix("now") {
        return Ok((vars.now + seconds(offset)?).to_string().into_bytes());
    }
    if let Some(spec) = name.strip_prefix("repeat:") {
        let (count, unit) = spec
            .split_once(':')
            .ok_or_else(|| format!("${{{name}}}: repeat:COUNT:TEXT"))?;
        let count: usize = count
            .parse()
            .map_err(|_| format!("${{{name}}}: bad count"))?;
        return Ok(unit.repeat(count).into_bytes());
    }
    if let Some(depth) = name.strip_prefix("nest:") {
        let depth: usize = depth
            .parse()
            .map_err(|_| format!("${{{name}}}: bad depth"))?;
        return Ok(["[".repeat(depth), "]".repeat(depth)].concat().into_bytes());
    }
    if let Some(hex) = name.strip_prefix("byte:") {
        let byte = u8::from_str_radix(hex, 16).map_err(|_| format!("${{{name}}}: bad hex"))?;
        return Ok(vec![byte]);
    }
    let value = match name {
        "attacker_url" => vars.attacker_url.clone(),
        "attacker_jwk" => vars.attacker_jwk.clone(),
        "attacker_x5c" => vars.attacker_x5c.clone(),
        "token" => vars.token.clone().ok_or_else(missing)?,
        "valid" => vars.valid.clone().ok_or_else(missing)?,
        _ => return Err(format!("unknown placeholder ${{{name}}}")),
    };
    Ok(value.into_bytes())
}

/// `+300`, `-leeway-1`, `` (zero): a sum of signed terms, each a number of
/// seconds or `leeway`.
fn seconds(offset: &str) -> Result<i64, String> {
    let mut total = 0;
    let mut rest = offset;
    while !rest.is_empty() {
        let sign = match rest.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return Err(format!("bad time offset {offset:?}")),
        };
        rest = &rest[1..];
        let end = rest.find(['+', '-']).unwrap_or(rest.len());
        let term = match &rest[..end] {
            "leeway" => LEEWAY,
            digits => digits
                .parse::<i64>()
                .map_err(|_| format!("bad time offset {offset:?}"))?,
        };
        total += sign * term;
        rest = &rest[end..];
    }
    Ok(total)
}

// ---------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The entry's token, as its recipe says.
fn build_token(entry: &Entry, vars: &Vars) -> Result<String, String> {
    if let Some(token) = &entry.token {
        return expand_text(token, vars);
    }
    let header = expand(entry.header.as_deref().ok_or("no header or token")?, vars)?;
    let claims = match entry.claims.as_deref().ok_or("no claims")? {
        "valid" => expand(VALID_CLAIMS, vars)?,
        text => expand(text, vars)?,
    };
    let sign = entry.sign.as_deref().ok_or("no sign")?;
    let input = format!("{}.{}", b64(&header), b64(&claims));
    let signature = signature(sign, &header, &claims, &input)?;
    Ok(format!("{input}.{signature}"))
}

/// The header's `alg` if it reads as one (duplicates: the last), else "".
fn header_alg(header: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(header)
        .ok()
        .and_then(|h| h.get("alg")?.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The signature part (base64url text) for recipe `sign`.
fn signature(sign: &str, header: &[u8], claims: &[u8], input: &str) -> Result<String, String> {
    let alg = header_alg(header);
    let (recipe, argument) = sign.split_once(':').unwrap_or((sign, ""));
    Ok(match recipe {
        "provider" => b64(&sign_with_key(provider_key(&alg)?, &alg, input.as_bytes())?),
        "key" => b64(&sign_with_key(argument, &alg, input.as_bytes())?),
        "empty" => String::new(),
        "truncated" => {
            let full = b64(&sign_with_key(provider_key(&alg)?, &alg, input.as_bytes())?);
            full[..full.len() / 2].to_owned()
        }
        "hmac" => b64(&hmac(&alg, &hmac_secret(argument)?, input.as_bytes())),
        "ecdsa" => {
            let (r, s) = argument
                .split_once(':')
                .ok_or("ecdsa:R:S, each 0, 1, n, n+1 or ff")?;
            let width = if alg == "ES384" { 48 } else { 32 };
            b64(&[scalar(r, width)?, scalar(s, width)?].concat())
        }
        "raw" => argument.to_owned(),
        "rfc7797" => {
            let (header_part, _) = input.split_once('.').ok_or("no header part")?;
            let unencoded = [header_part.as_bytes(), b".", claims].concat();
            b64(&sign_with_key(provider_key(&alg)?, &alg, &unencoded)?)
        }
        _ => return Err(format!("unknown sign recipe {sign:?}")),
    })
}

/// The main provider's real private key for `alg`.
fn provider_key(alg: &str) -> Result<&'static str, String> {
    Ok(match alg {
        "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => "rsa-2048",
        "ES256" => "ec-p256-1",
        "ES384" => "ec-p384",
        "EdDSA" => "ed25519",
        other => return Err(format!("the provider has no key for alg {other:?}")),
    })
}

/// Signs with fixture key `name` in that key's own algorithm: an EC key on
/// its own curve whatever the header says (so a header can lie about the
/// curve); RSA with the header's RS/PS hash, RS256 otherwise.
fn sign_with_key(name: &str, alg: &str, message: &[u8]) -> Result<Vec<u8>, String> {
    use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
    let pem = match name {
        "tls-server" => std::fs::read(repo_path("tests/fixtures/tls/server.key"))
            .map_err(|e| format!("reading the TLS server key: {e}"))?,
        "rsa-2048" | "ec-p256-1" | "ec-p256-2" | "ec-p384" | "ed25519" => {
            fixture(&format!("{name}.pem"))
        }
        other => return Err(format!("unknown key {other:?}")),
    };
    let der = pem_der(&pem);
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let failed = |_| format!("signing with {name} failed");
    if let Ok(key) = RsaKeyPair::from_pkcs8(&der) {
        let padding: &'static dyn signature::RsaEncoding = match alg {
            "RS384" => &signature::RSA_PKCS1_SHA384,
            "RS512" => &signature::RSA_PKCS1_SHA512,
            "PS256" => &signature::RSA_PSS_SHA256,
            "PS384" => &signature::RSA_PSS_SHA384,
            "PS512" => &signature::RSA_PSS_SHA512,
            _ => &signature::RSA_PKCS1_SHA256,
        };
        let mut out = vec![0; key.public_modulus_len()];
        key.sign(padding, &rng, message, &mut out).map_err(failed)?;
        return Ok(out);
    }
    for curve in [
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
    ] {
        if let Ok(key) = EcdsaKeyPair::from_pkcs8(curve, &der) {
            return Ok(key.sign(&rng, message).map_err(failed)?.as_ref().to_vec());
        }
    }
    let key = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
        .map_err(|_| format!("{name} is not an RSA, EC or Ed25519 PKCS#8 key"))?;
    Ok(key.sign(message).as_ref().to_vec())
}

fn hmac_secret(which: &str) -> Result<Vec<u8>, String> {
    Ok(match which {
        "pem" => rsa_public_pem().into_bytes(),
        "jwk" => String::from_utf8_lossy(&fixture("rsa-2048.jwk.json"))
            .trim()
            .as_bytes()
            .to_vec(),
        "secret" => HMAC_SECRET.as_bytes().to_vec(),
        "empty" => Vec::new(),
        other => match other.strip_prefix("text=") {
            Some(text) => text.as_bytes().to_vec(),
            None => return Err(format!("hmac:{other}: pem, jwk, secret, empty or text=...")),
        },
    })
}

fn hmac(alg: &str, secret: &[u8], message: &[u8]) -> Vec<u8> {
    use aws_lc_rs::hmac;
    let algorithm = match alg {
        "HS384" => hmac::HMAC_SHA384,
        "HS512" => hmac::HMAC_SHA512,
        _ => hmac::HMAC_SHA256,
    };
    hmac::sign(&hmac::Key::new(algorithm, secret), message)
        .as_ref()
        .to_vec()
}

/// One ECDSA signature half, big-endian in `width` bytes.
fn scalar(word: &str, width: usize) -> Result<Vec<u8>, String> {
    // The group orders of P-256 and P-384 (SEC 2 §2.4.2, §2.5.1).
    const N256: &str = "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551";
    const N384: &str = "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973";
    let order = || {
        let hex = if width == 48 { N384 } else { N256 };
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0))
            .collect::<Vec<u8>>()
    };
    let mut value = match word {
        "0" => vec![0; width],
        "1" => vec![0; width],
        "n" | "n+1" => order(),
        "ff" => vec![0xff; width],
        other => return Err(format!("ECDSA scalar {other:?}: 0, 1, n, n+1 or ff")),
    };
    if matches!(word, "1" | "n+1") {
        // Neither order ends in 0xff, so adding one never carries.
        if let Some(last) = value.last_mut() {
            *last += 1;
        }
    }
    Ok(value)
}

// ---------------------------------------------------------------------------
// Requests and answers
// ---------------------------------------------------------------------------

/// One entry made concrete: its token and the header lines that carry it.
struct Attempt {
    token: String,
    headers: Vec<(String, String)>,
    header_map: Vec<(String, String)>,
}

fn attempt(entry: &Entry, vars: &mut Vars) -> Result<Attempt, String> {
    vars.token = None;
    vars.valid = None;
    let token = build_token(entry, vars)?;
    vars.token = Some(token.clone());
    vars.valid = Some(valid_token(vars)?);
    let lines = |pairs: &[(String, String)], vars: &Vars| {
        pairs
            .iter()
            .map(|(name, value)| Ok((name.to_ascii_lowercase(), expand_text(value, vars)?)))
            .collect::<Result<Vec<_>, String>>()
    };
    let default = [("authorization".to_owned(), "Bearer ${token}".to_owned())];
    let mut headers = lines(entry.headers.as_deref().unwrap_or(&default), vars)?;
    headers.extend((0..entry.filler_headers).map(|i| (format!("x-filler-{i}"), i.to_string())));
    let header_map = lines(&entry.header_map, vars)?;
    Ok(Attempt {
        token,
        headers,
        header_map,
    })
}

fn valid_token(vars: &Vars) -> Result<String, String> {
    let header = br#"{"alg":"ES256","kid":"ec-1"}"#;
    let claims = expand(VALID_CLAIMS, vars)?;
    let input = format!("{}.{}", b64(header), b64(&claims));
    let signature = b64(&sign_with_key("ec-p256-1", "ES256", input.as_bytes())?);
    Ok(format!("{input}.{signature}"))
}

fn check_request(entry: &Entry, attempt: &Attempt) -> CheckRequest {
    let pairs: Vec<(&str, &str)> = attempt
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let mut check = request("GET", "api.example.com", &entry.path, &pairs);
    if !attempt.header_map.is_empty() {
        let http = check
            .attributes
            .as_mut()
            .and_then(|a| a.request.as_mut())
            .and_then(|r| r.http.as_mut());
        if let Some(http) = http {
            http.header_map = Some(HeaderMap {
                headers: attempt
                    .header_map
                    .iter()
                    .map(|(key, value)| HeaderValue {
                        key: key.clone(),
                        value: value.clone(),
                        raw_value: Vec::new(),
                    })
                    .collect(),
            });
        }
    }
    check
}

/// The `WWW-Authenticate` tollgate must send for a deny.
fn challenge(error: &str, scope: Option<&str>) -> String {
    match scope {
        Some(scope) => format!(r#"Bearer realm="{REALM}", error="{error}", scope="{scope}""#),
        None => format!(r#"Bearer realm="{REALM}", error="{error}""#),
    }
}

fn grpc_code(status: u16) -> i32 {
    match status {
        400 => 3,
        401 => 16,
        _ => 7,
    }
}

/// Whether tollgate's gRPC answer is what the entry expects.
fn judge_grpc(
    entry: &Entry,
    answer: &envoy_types::pb::envoy::service::auth::v3::CheckResponse,
    token: &str,
) -> Result<(), String> {
    let code = answer.status.as_ref().map(|s| s.code);
    match (&entry.expect, &answer.http_response) {
        (Expect::Allow(_), Some(HttpResponse::OkResponse(_))) if code == Some(GRPC_OK) => Ok(()),
        (Expect::Deny { status, .. }, Some(HttpResponse::OkResponse(_))) => {
            Err(format!("ALLOWED, expected {status}: {answer:?}"))
        }
        (
            Expect::Deny {
                status,
                error,
                scope,
            },
            Some(HttpResponse::DeniedResponse(denied)),
        ) => {
            let got = denied.status.as_ref().map_or(0, |s| s.code);
            let challenge_got = denied
                .headers
                .iter()
                .filter_map(|h| h.header.as_ref())
                .find(|h| h.key == "www-authenticate")
                .map(|h| h.value.clone());
            let body: serde_json::Value =
                serde_json::from_str(&denied.body).unwrap_or(serde_json::Value::Null);
            let wanted = challenge(error, scope.as_deref());
            if u16::try_from(got).ok() != Some(*status)
                || code != Some(grpc_code(*status))
                || challenge_got.as_deref() != Some(wanted.as_str())
                || body["error"] != error.as_str()
            {
                return Err(format!(
                    "expected {status} {wanted:?} (body error {error:?}), got {answer:?}"
                ));
            }
            if let Some(leak) = leaked(&format!("{answer:?}"), token) {
                return Err(format!("the deny repeats the {leak}"));
            }
            Ok(())
        }
        _ => Err(format!("expected {:?}, got {answer:?}", entry.expect)),
    }
}

/// `GET entry.path` through Envoy with every header line of `attempt`
/// (its `header_map` lines too: Envoy has only one kind).
async fn send(
    http: &reqwest::Client,
    stack: &Stack,
    entry: &Entry,
    attempt: &Attempt,
) -> Result<Response, reqwest::Error> {
    let mut request = http.get(stack.envoy.url(&entry.path));
    for (name, value) in attempt.headers.iter().chain(&attempt.header_map) {
        request = request.header(name, value);
    }
    let response = request.send().await?;
    Ok(Response {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await?,
    })
}

/// Whether what Envoy's client got is what the entry expects.
fn judge_envoy(entry: &Entry, response: &Response, token: &str) -> Result<(), String> {
    let shown = || {
        format!(
            "{} {:?} {}",
            response.status, response.headers, response.body
        )
    };
    if let Some(status) = entry.envoy {
        if response.status != status {
            return Err(format!("expected Envoy's own {status}, got {}", shown()));
        }
        return Ok(());
    }
    match &entry.expect {
        Expect::Allow(_) if response.status == 200 => Ok(()),
        Expect::Allow(_) => Err(format!("expected an allow, got {}", shown())),
        Expect::Deny {
            status,
            error,
            scope,
        } => {
            let body: serde_json::Value =
                serde_json::from_str(&response.body).unwrap_or(serde_json::Value::Null);
            let wanted = challenge(error, scope.as_deref());
            if response.status != *status
                || response.header("www-authenticate") != Some(wanted.as_str())
                || body["error"] != error.as_str()
            {
                return Err(format!("expected {status} {wanted:?}, got {}", shown()));
            }
            match leaked(&response.body, token) {
                Some(leak) => Err(format!("the response body repeats the {leak}")),
                None => Ok(()),
            }
        }
    }
}

/// Which part of `token` `text` repeats: the token, or its signature when
/// that is long enough to be unmistakable.
fn leaked(text: &str, token: &str) -> Option<&'static str> {
    if text.contains(token) {
        return Some("token");
    }
    let signature = token.rsplit('.').next().unwrap_or_default();
    let distinct = signature.bytes().any(|b| b != signature.as_bytes()[0]);
    (signature.len() >= 16 && distinct && text.contains(signature)).then_some("signature")
}

/// Runs `once` with `vars.now` set to the current second. An entry at the
/// leeway boundary runs again (a few times at most) until one run starts
/// and ends within the same wall-clock second, so tollgate's clock read the
/// same second the token was minted for.
async fn run<R>(
    entry: &Entry,
    vars: &mut Vars,
    mut once: impl AsyncFnMut(&mut Vars) -> R,
) -> Result<R, String> {
    for _ in 0..10 {
        let second = unix_now();
        vars.now = second;
        let outcome = once(vars).await;
        if !entry.at_boundary() || unix_now() == second {
            return Ok(outcome);
        }
    }
    Err("no run fit within one wall-clock second".to_owned())
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// The attacker's server
// ---------------------------------------------------------------------------

/// An HTTP server on 127.0.0.1:0 that serves the attacker's JWKS to
/// anyone and counts every connection: the URL `jku` and `x5u` name.
struct AttackerServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl AttackerServer {
    async fn start(jwks: String) -> AttackerServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the attacker's server");
        let addr = listener.local_addr().expect("attacker's address");
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{jwks}",
                    jwks.len()
                );
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = stream.read(&mut request).await;
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        AttackerServer {
            addr,
            connections,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for AttackerServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------
// Setup
// ---------------------------------------------------------------------------

fn fixture_text(name: &str) -> String {
    String::from_utf8_lossy(&fixture(name)).trim().to_owned()
}

/// What the main provider's IdP publishes: its four usable keys, a 1024-bit
/// RSA key and a P-384 key labelled P-256, which the load must skip.
fn idp_jwks() -> String {
    let mut mismatch: serde_json::Value =
        serde_json::from_str(&fixture_text("ec-p384.jwk.json")).expect("EC P-384 JWK");
    mismatch["kid"] = "ec-crv-mismatch".into();
    mismatch["crv"] = "P-256".into();
    mismatch["alg"] = "ES256".into();
    jwks_of(&[
        &fixture_text("rsa-2048.jwk.json"),
        &fixture_text("ec-p256-1.jwk.json"),
        &fixture_text("ec-p384.jwk.json"),
        &fixture_text("ed25519.jwk.json"),
        &fixture_text("rsa-1024.jwk.json"),
        &mismatch.to_string(),
    ])
}

fn vars(attacker_url: String) -> Vars {
    let certificate = std::fs::read(repo_path("tests/fixtures/tls/server.crt"))
        .expect("reading the TLS server certificate");
    Vars {
        now: unix_now(),
        attacker_url,
        attacker_jwk: fixture_text("ec-p256-2.jwk.json"),
        attacker_x5c: STANDARD.encode(pem_der(&certificate)),
        token: None,
        valid: None,
    }
}

fn config(idp: &Idp) -> String {
    assert!(
        CONFIG.contains(&format!("leeway: {LEEWAY}s")),
        "tests/attacks/tollgate.yaml must keep leeway {LEEWAY}s"
    );
    CONFIG
        .replace("${jwks_uri}", &idp.jwks_uri())
        .replace("${keys}", &keys_dir().display().to_string())
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn the_corpus_parses_and_every_entry_builds() {
    let entries = corpus();
    assert_eq!(
        entries.len(),
        ENTRIES,
        "tests/attacks/corpus.yaml has {} entries, ENTRIES says {ENTRIES}",
        entries.len()
    );
    let mut names = std::collections::HashSet::new();
    let mut vars = vars("http://127.0.0.1:9".to_owned());
    for entry in &entries {
        assert!(
            names.insert(entry.name.as_str()),
            "duplicate name {}",
            entry.name
        );
        assert!(
            !entry.reference.trim().is_empty(),
            "{} has no reference",
            entry.name
        );
        if let Expect::Allow(_) = entry.expect {
            assert!(
                entry.control.is_some() && entry.at_boundary(),
                "{}: only leeway boundary controls (with `control:`) may expect an allow",
                entry.label()
            );
        }
        if let Expect::Deny { status, error, .. } = &entry.expect {
            let fits = matches!(
                (*status, error.as_str()),
                (400, "invalid_request") | (401, "invalid_token") | (403, "insufficient_scope")
            );
            assert!(
                fits,
                "{}: status {status} with error {error:?}",
                entry.label()
            );
        }
        attempt(entry, &mut vars).unwrap_or_else(|e| panic!("{}: {e}", entry.label()));
    }
}

#[tokio::test]
async fn every_attack_is_refused_over_grpc_and_through_envoy() {
    let entries = corpus();
    assert_eq!(entries.len(), ENTRIES, "corpus entry count");
    let attacker = AttackerServer::start(jwks_of(&[&fixture_text("ec-p256-2.jwk.json")])).await;
    let idp = Idp::start(idp_jwks()).await;
    let stack = Stack::start(&config(&idp), &[("ATTACKS_HMAC_SECRET", HMAC_SECRET)]).await;

    // The keys the JWKS load must refuse, each skipped with its reason.
    for (kid, reason) in [
        ("rsa-short", "1024 bits, at least 2048 are required"),
        ("ec-crv-mismatch", "must be 32 bytes"),
    ] {
        let line = stack.tollgate.wait_for_log(kid).await;
        assert!(
            line.contains("JWKS key skipped") && line.contains(reason),
            "the {kid} skip should name {reason:?}: {line}"
        );
    }

    let channel = tonic::transport::Channel::from_shared(stack.tollgate.grpc_url())
        .expect("tollgate's URL")
        .connect()
        .await
        .expect("connecting to tollgate");
    let client = AuthorizationClient::new(channel.clone());
    let health = HealthClient::new(channel);
    let serving = async || {
        let request = HealthCheckRequest {
            service: tollgate::CHECK_SERVICE_NAME.to_owned(),
        };
        let answer = health.clone().check(request).await;
        answer.is_ok_and(|answer| answer.get_ref().status() == ServingStatus::Serving)
    };
    // One client for every request to Envoy: building one per request costs
    // more than the request.
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("building the HTTP client");
    let mut vars = vars(attacker.url());
    let mut failures = Vec::new();
    let mut tokens = Vec::new();
    let mut judged = 0;

    for entry in &entries {
        let grpc = run(entry, &mut vars, async |vars| {
            let attempt = attempt(entry, vars)?;
            let verdict = match client.clone().check(check_request(entry, &attempt)).await {
                Ok(answer) => judge_grpc(entry, answer.get_ref(), &attempt.token),
                Err(status) => Err(format!("gRPC error instead of a decision: {status:?}")),
            };
            tokens.push((entry, attempt.token));
            verdict
        })
        .await;
        let envoy = run(entry, &mut vars, async |vars| {
            let attempt = attempt(entry, vars)?;
            let verdict = match send(&http, &stack, entry, &attempt).await {
                Ok(response) => judge_envoy(entry, &response, &attempt.token),
                Err(error) => Err(format!("no answer from Envoy: {error}")),
            };
            tokens.push((entry, attempt.token));
            verdict
        })
        .await;
        for (via, outcome) in [("gRPC", grpc), ("Envoy", envoy)] {
            judged += 1;
            if let Err(problem) = outcome.and_then(|verdict| verdict) {
                failures.push(format!("{via}: {}: {problem}", entry.label()));
            }
        }
        if !serving().await {
            failures.push(format!("{}: tollgate is no longer SERVING", entry.label()));
        }
        if attacker.connections() != 0 {
            failures.push(format!(
                "{}: tollgate connected to the attacker's URL",
                entry.label()
            ));
        }
    }
    assert_eq!(
        judged,
        2 * ENTRIES,
        "every entry judged over gRPC and through Envoy"
    );

    // Log lines follow their answers; one last check marks the end.
    let done = request("GET", "api.example.com", "/read/corpus-done", &[]);
    let _ = client.clone().check(done).await;
    stack.tollgate.wait_for_log("/read/corpus-done").await;
    let logs = stack.tollgate.logs();
    if logs.contains("panicked") {
        failures.push("tollgate's log shows a panic".to_owned());
    }
    for (entry, token) in &tokens {
        if let Some(leak) = leaked(&logs, token) {
            failures.push(format!(
                "log: {}: the log repeats the {leak}",
                entry.label()
            ));
        }
    }
    assert_eq!(
        attacker.connections(),
        0,
        "tollgate connected to the attacker's URL"
    );
    assert!(serving().await, "tollgate is SERVING after the corpus");
    assert!(
        failures.is_empty(),
        "{} of {ENTRIES} corpus entries failed:\n{}\n--- tollgate log ---\n{}",
        failures.len(),
        failures.join("\n"),
        logs
    );
}
