//! The attack corpus: every entry of `tests/attacks/corpus.yaml` (the
//! known ways JWT validators have been broken, each with its reference)
//! sent to the real `tollgate` binary over gRPC `Check`, then once more
//! through the real Envoy in front of it. One tollgate, one IdP and two
//! Envoys serve every entry: a plain one, and one with a TLS listener for
//! the entries that present a client certificate. The format is described
//! in `tests/attacks/README.md`.
//!
//! Per entry: never an allow (except the controls, which show that a
//! legitimate variant passes), exactly the expected status, challenge and
//! error, tollgate still SERVING, no request to an attacker's URL. After
//! all of them: no panic in the log, and no token, proof or signature in
//! it.
//!
//! # Layout
//! - this file: the entries, the attempts made of them, and judging the
//!   answers.
//! - `sign`: the `sign` recipes, for tokens and DPoP proofs.
//! - `binding`: JWKs, thumbprints and certificates for sender-constrained
//!   tokens, and the DPoP proof recipe.
//! - `placeholders`: what each `${...}` stands for.
//! - `attacker`: the attacker's counting server.

mod support;

#[path = "attack_corpus/attacker.rs"]
mod attacker;
#[path = "attack_corpus/binding.rs"]
mod binding;
#[path = "attack_corpus/placeholders.rs"]
mod placeholders;
#[path = "attack_corpus/sign.rs"]
mod sign;

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use envoy_types::pb::envoy::config::core::v3::{HeaderMap, HeaderValue};
use envoy_types::pb::envoy::service::auth::v3::CheckRequest;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::Peer;
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use serde::Deserialize;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use attacker::AttackerServer;
use binding::ProofRecipe;
use placeholders::{Origin, Vars, expand, expand_text};
use sign::{b64, sign_with_key, signature};
use support::check::{GRPC_OK, fixture, keys_dir, pem_der, request};
use support::idp::{Idp, jwks_of};
use support::stack::Stack;
use support::{DownstreamTls, Envoy, EnvoyOptions, Response, repo_path};

const CORPUS: &str = include_str!("attacks/corpus.yaml");
const CONFIG: &str = include_str!("attacks/tollgate.yaml");
/// How many entries the corpus holds: an entry lost to a YAML slip fails
/// the test instead of silently not running. Update it with the corpus.
const ENTRIES: usize = 248;
/// `leeway` of both providers in `tests/attacks/tollgate.yaml`.
const LEEWAY: i64 = 30;
/// The `hmac` provider's configured secret (64 bytes, for HS512).
const HMAC_SECRET: &str = "corpus-hmac-secret-0123456789abcdef0123456789abcdef0123456789abc";
const REALM: &str = "attacks";
/// `algs` of tollgate's DPoP challenges: `binding.dpop.algorithms` in
/// `tests/attacks/tollgate.yaml`, in its order.
const DPOP_ALGS: &str = "ES256 ES384 EdDSA PS256 PS384 PS512 RS256 RS384 RS512";
/// The request's `:scheme` and `:authority` in the CheckRequests the test
/// sends itself (through Envoy they are Envoy's).
const GRPC_ORIGIN: (&str, &str) = ("https", "api.example.com");
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
    /// Why an `allow` is expected: only controls, which show that a
    /// legitimate variant passes, may.
    control: Option<String>,
    /// A DPoP proof, sent as `${proof}`.
    proof: Option<ProofRecipe>,
    /// The fixture certificate presented as the TLS client certificate.
    certificate: Option<String>,
    /// Send the request twice: the first must be allowed, the second is
    /// judged against `expect`.
    #[serde(default)]
    replay: bool,
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
        /// `DPoP` for a DPoP challenge (implied by `invalid_dpop_proof`).
        scheme: Option<String>,
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
// Tokens
// ---------------------------------------------------------------------------

/// The entry's token, as its recipe says.
fn build_token(entry: &Entry, vars: &Vars) -> Result<String, String> {
    if let Some(token) = &entry.token {
        return expand_text(token, vars);
    }
    let header = expand(entry.header.as_deref().ok_or("no header or token")?, vars)?;
    let claims = match entry.claims.as_deref().ok_or("no claims")? {
        "valid" => expand(VALID_CLAIMS, vars)?,
        text => match text.strip_prefix("valid with ") {
            Some(more) => valid_with(more, vars)?,
            None => expand(text, vars)?,
        },
    };
    let sign = entry.sign.as_deref().ok_or("no sign")?;
    let input = format!("{}.{}", b64(&header), b64(&claims));
    let signature = signature(sign, &header, &claims, &input)?;
    Ok(format!("{input}.{signature}"))
}

/// `claims: valid with {...}`: the valid claims with these members added
/// (a binding's `cnf`, for instance).
fn valid_with(more: &str, vars: &Vars) -> Result<Vec<u8>, String> {
    let object = |bytes: Vec<u8>| {
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes)
            .map_err(|e| format!("`valid with` needs a JSON object: {e}"))
    };
    let mut claims = object(expand(VALID_CLAIMS, vars)?)?;
    claims.extend(object(expand(more, vars)?)?);
    serde_json::to_vec(&claims).map_err(|e| e.to_string())
}

/// The entry's DPoP proof (RFC 9449 §4.2), for the token in `vars`.
fn build_proof(recipe: &ProofRecipe, vars: &mut Vars) -> Result<String, String> {
    let jwk = recipe.jwk.as_ref().unwrap_or(&recipe.key);
    vars.proof_keys = Some((recipe.key.clone(), jwk.clone()));
    let header = expand(
        recipe.header.as_deref().unwrap_or(binding::PROOF_HEADER),
        vars,
    );
    let claims = expand(
        recipe.claims.as_deref().unwrap_or(binding::PROOF_CLAIMS),
        vars,
    );
    vars.proof_keys = None;
    let (header, claims) = (header?, claims?);
    let sign = match &recipe.sign {
        Some(sign) => sign.clone(),
        None => format!("key:{}", recipe.key),
    };
    let input = format!("{}.{}", b64(&header), b64(&claims));
    let signature = signature(&sign, &header, &claims, &input)?;
    Ok(format!("{input}.{signature}"))
}

// ---------------------------------------------------------------------------
// Requests and answers
// ---------------------------------------------------------------------------

/// One entry made concrete: its token and the header lines that carry it.
struct Attempt {
    token: String,
    /// The DPoP proof sent with it, if any.
    proof: Option<String>,
    headers: Vec<(String, String)>,
    header_map: Vec<(String, String)>,
}

impl Attempt {
    /// What must never be repeated in an answer or a log line.
    fn secrets(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.token.as_str())
            .chain(self.proof.as_deref())
            .filter(|secret| !secret.is_empty())
    }

    /// The first secret `text` repeats, named.
    fn leaked_in(&self, text: &str) -> Option<&'static str> {
        self.secrets().find_map(|secret| leaked(text, secret))
    }
}

/// The entry made concrete for a request to `origin`.
fn attempt(entry: &Entry, vars: &mut Vars, origin: &Origin) -> Result<Attempt, String> {
    vars.token = None;
    vars.valid = None;
    vars.proof = None;
    vars.origin = origin.clone();
    vars.path.clone_from(&entry.path);
    vars.jti = binding::fresh_jti();
    let token = build_token(entry, vars)?;
    vars.token = Some(token.clone());
    vars.valid = Some(valid_token(vars)?);
    let proof = entry
        .proof
        .as_ref()
        .map(|recipe| build_proof(recipe, vars))
        .transpose()?;
    vars.proof.clone_from(&proof);
    let lines = |pairs: &[(String, String)], vars: &Vars| {
        pairs
            .iter()
            .map(|(name, value)| Ok((name.to_ascii_lowercase(), expand_text(value, vars)?)))
            .collect::<Result<Vec<_>, String>>()
    };
    let default = match proof {
        None => vec![("authorization".to_owned(), "Bearer ${token}".to_owned())],
        Some(_) => vec![
            ("authorization".to_owned(), "DPoP ${token}".to_owned()),
            ("dpop".to_owned(), "${proof}".to_owned()),
        ],
    };
    let mut headers = lines(entry.headers.as_deref().unwrap_or(&default), vars)?;
    headers.extend((0..entry.filler_headers).map(|i| (format!("x-filler-{i}"), i.to_string())));
    let header_map = lines(&entry.header_map, vars)?;
    Ok(Attempt {
        token,
        proof,
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

/// The CheckRequest Envoy would send for `attempt`: to [`GRPC_ORIGIN`],
/// with the entry's certificate as the TLS peer's.
fn check_request(entry: &Entry, attempt: &Attempt) -> Result<CheckRequest, String> {
    let pairs: Vec<(&str, &str)> = attempt
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let (scheme, authority) = GRPC_ORIGIN;
    let mut check = request("GET", authority, &entry.path, &pairs);
    let attributes = check.attributes.as_mut().ok_or("no attributes")?;
    if let Some(name) = &entry.certificate {
        attributes.source = Some(Peer {
            certificate: binding::url_encode(&binding::certificate_pem(name)?),
            ..Peer::default()
        });
    }
    let http = attributes
        .request
        .as_mut()
        .and_then(|r| r.http.as_mut())
        .ok_or("no HTTP attributes")?;
    scheme.clone_into(&mut http.scheme);
    if !attempt.header_map.is_empty() {
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
    Ok(check)
}

/// What a deny must look like: HTTP status, `WWW-Authenticate` and the
/// body's `error`.
struct Refusal<'e> {
    status: u16,
    challenge: String,
    error: &'e str,
}

impl Expect {
    /// The refusal expected, or `None` for an allow.
    fn refusal(&self) -> Option<Refusal<'_>> {
        let Expect::Deny {
            status,
            error,
            scope,
            scheme,
        } = self
        else {
            return None;
        };
        let mut params = vec![format!(r#"realm="{REALM}""#), format!(r#"error="{error}""#)];
        if let Some(scope) = scope {
            params.push(format!(r#"scope="{scope}""#));
        }
        let dpop = error == "invalid_dpop_proof" || scheme.as_deref() == Some("DPoP");
        if dpop {
            params.push(format!(r#"algs="{DPOP_ALGS}""#));
        }
        let name = if dpop { "DPoP" } else { "Bearer" };
        Some(Refusal {
            status: *status,
            challenge: format!("{name} {}", params.join(", ")),
            error,
        })
    }
}

fn grpc_code(status: u16) -> i32 {
    match status {
        400 => 3,
        401 => 16,
        _ => 7,
    }
}

/// Whether tollgate's gRPC answer is `expect`.
fn judge_grpc(
    expect: &Expect,
    answer: &envoy_types::pb::envoy::service::auth::v3::CheckResponse,
    attempt: &Attempt,
) -> Result<(), String> {
    let code = answer.status.as_ref().map(|s| s.code);
    let refusal = expect.refusal();
    match (refusal, &answer.http_response) {
        (None, Some(HttpResponse::OkResponse(_))) if code == Some(GRPC_OK) => Ok(()),
        (Some(refusal), Some(HttpResponse::OkResponse(_))) => {
            Err(format!("ALLOWED, expected {}: {answer:?}", refusal.status))
        }
        (Some(refusal), Some(HttpResponse::DeniedResponse(denied))) => {
            let got = denied.status.as_ref().map_or(0, |s| s.code);
            let challenge_got = denied
                .headers
                .iter()
                .filter_map(|h| h.header.as_ref())
                .find(|h| h.key == "www-authenticate")
                .map(|h| h.value.clone());
            let body: serde_json::Value =
                serde_json::from_str(&denied.body).unwrap_or(serde_json::Value::Null);
            let Refusal {
                status,
                challenge,
                error,
            } = refusal;
            if u16::try_from(got).ok() != Some(status)
                || code != Some(grpc_code(status))
                || challenge_got.as_deref() != Some(challenge.as_str())
                || body["error"] != error
            {
                return Err(format!(
                    "expected {status} {challenge:?} (body error {error:?}), got {answer:?}"
                ));
            }
            if let Some(leak) = attempt.leaked_in(&format!("{answer:?}")) {
                return Err(format!("the deny repeats the {leak}"));
            }
            Ok(())
        }
        _ => Err(format!("expected {expect:?}, got {answer:?}")),
    }
}

/// `GET entry.path` at `envoy` with every header line of `attempt` (its
/// `header_map` lines too: Envoy has only one kind).
async fn send(
    http: &reqwest::Client,
    envoy: &Envoy,
    entry: &Entry,
    attempt: &Attempt,
) -> Result<Response, reqwest::Error> {
    let mut request = http.get(envoy.url(&entry.path));
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

/// Whether what Envoy's client got is `expect` (or Envoy's own answer,
/// when the entry says Envoy answers itself).
fn judge_envoy(
    entry: &Entry,
    expect: &Expect,
    response: &Response,
    attempt: &Attempt,
) -> Result<(), String> {
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
    let Some(Refusal {
        status,
        challenge,
        error,
    }) = expect.refusal()
    else {
        return match response.status {
            200 => Ok(()),
            _ => Err(format!("expected an allow, got {}", shown())),
        };
    };
    let body: serde_json::Value =
        serde_json::from_str(&response.body).unwrap_or(serde_json::Value::Null);
    if response.status != status
        || response.header("www-authenticate") != Some(challenge.as_str())
        || body["error"] != error
    {
        return Err(format!("expected {status} {challenge:?}, got {}", shown()));
    }
    match attempt.leaked_in(&response.body) {
        Some(leak) => Err(format!("the response body repeats the {leak}")),
        None => Ok(()),
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
        origin: grpc_origin(),
        path: default_path(),
        jti: String::new(),
        proof_keys: None,
        proof: None,
    }
}

fn grpc_origin() -> Origin {
    Origin {
        scheme: GRPC_ORIGIN.0,
        authority: GRPC_ORIGIN.1.to_owned(),
    }
}

/// Where a request to `envoy` goes, as Envoy tells tollgate: its
/// listener's scheme, and the `host:port` the client named.
fn envoy_origin(envoy: &Envoy) -> Origin {
    Origin {
        scheme: envoy.scheme(),
        authority: envoy.listener_addr().to_string(),
    }
}

fn config(idp: &Idp) -> String {
    assert!(
        CONFIG.contains(&format!("leeway: {LEEWAY}s")),
        "tests/attacks/tollgate.yaml must keep leeway {LEEWAY}s"
    );
    assert!(
        CONFIG.contains(&format!("algorithms: [{}]", DPOP_ALGS.replace(' ', ", "))),
        "tests/attacks/tollgate.yaml must list the DPoP algorithms {DPOP_ALGS}"
    );
    CONFIG
        .replace("${jwks_uri}", &idp.jwks_uri())
        .replace("${keys}", &keys_dir().display().to_string())
}

/// The second Envoy, for entries with a `certificate`: a TLS listener that
/// asks every client for a certificate and takes any (a certificate-bound
/// token may be bound to a self-signed certificate, RFC 8705 §2.2; the
/// binding is the check), passing it to tollgate as Envoy's
/// `include_peer_certificate` does.
async fn tls_envoy(stack: &Stack) -> Envoy {
    let tls = |file: &str| repo_path(format!("tests/fixtures/tls/{file}"));
    let options =
        EnvoyOptions::new(stack.echo.addr, stack.tollgate.addr()).downstream_tls(DownstreamTls {
            cert: tls("server.crt"),
            key: tls("server.key"),
            client_ca: tls("ca.crt"),
        });
    Envoy::start(options).await
}

/// An HTTPS client for the TLS Envoy per fixture certificate, presenting
/// that certificate.
fn tls_clients() -> HashMap<&'static str, reqwest::Client> {
    let ca = std::fs::read(repo_path("tests/fixtures/tls/ca.crt")).expect("reading the test CA");
    let ca = reqwest::Certificate::from_pem(&ca).expect("the test CA");
    binding::CERTIFICATES
        .into_iter()
        .map(|name| {
            let (certificate, key) = binding::certificate_files(name).expect("a fixture");
            let pem = [
                std::fs::read(&key).expect("reading the key"),
                std::fs::read(&certificate).expect("reading the certificate"),
            ]
            .concat();
            let client = reqwest::Client::builder()
                .no_proxy()
                .tls_certs_only([ca.clone()])
                .identity(reqwest::Identity::from_pem(&pem).expect("a PEM identity"))
                .build()
                .expect("building an HTTPS client");
            (name, client)
        })
        .collect()
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
    let envoy = Origin {
        scheme: "http",
        authority: "127.0.0.1:9".to_owned(),
    };
    for entry in &entries {
        let label = entry.label();
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
        match &entry.expect {
            Expect::Allow(_) => assert!(
                entry.control.is_some() && !entry.replay,
                "{label}: only controls (with `control:`) may expect an allow; a replay expects its second send refused"
            ),
            Expect::Deny {
                status,
                error,
                scheme,
                ..
            } => {
                let fits = matches!(
                    (*status, error.as_str()),
                    (400, "invalid_request")
                        | (401, "invalid_token" | "invalid_dpop_proof")
                        | (403, "insufficient_scope")
                );
                assert!(fits, "{label}: status {status} with error {error:?}");
                assert!(
                    scheme.as_deref().is_none_or(|s| s == "DPoP"),
                    "{label}: scheme is DPoP or left out (Bearer)"
                );
            }
        }
        if let Some(name) = &entry.certificate {
            binding::certificate_files(name).unwrap_or_else(|e| panic!("{label}: {e}"));
        }
        for origin in [&grpc_origin(), &envoy] {
            let attempt =
                attempt(entry, &mut vars, origin).unwrap_or_else(|e| panic!("{label}: {e}"));
            check_request(entry, &attempt).unwrap_or_else(|e| panic!("{label}: {e}"));
        }
    }
}

/// Sends `attempt` to tollgate over gRPC, twice for a replay, and judges
/// the answers.
async fn grpc_leg(
    client: &AuthorizationClient<tonic::transport::Channel>,
    entry: &Entry,
    attempt: &Attempt,
) -> Result<(), String> {
    let request = check_request(entry, attempt)?;
    let mut sends = vec![(&entry.expect, request.clone())];
    if entry.replay {
        sends.insert(0, (&Expect::Allow(AllowWord::Allow), request));
    }
    let replayed = sends.len() > 1;
    for (index, (expect, request)) in sends.into_iter().enumerate() {
        let verdict = match client.clone().check(request).await {
            Ok(answer) => judge_grpc(expect, answer.get_ref(), attempt),
            Err(status) => Err(format!("gRPC error instead of a decision: {status:?}")),
        };
        verdict.map_err(|e| match replayed {
            true => format!("send {} of 2: {e}", index + 1),
            false => e,
        })?;
    }
    Ok(())
}

/// Sends `attempt` to `envoy`, twice for a replay, and judges the answers.
async fn envoy_leg(
    http: &reqwest::Client,
    envoy: &Envoy,
    entry: &Entry,
    attempt: &Attempt,
) -> Result<(), String> {
    let mut expectations = vec![&entry.expect];
    if entry.replay {
        expectations.insert(0, &Expect::Allow(AllowWord::Allow));
    }
    let replayed = expectations.len() > 1;
    for (index, expect) in expectations.into_iter().enumerate() {
        let verdict = match send(http, envoy, entry, attempt).await {
            Ok(response) => judge_envoy(entry, expect, &response, attempt),
            Err(error) => Err(format!("no answer from Envoy: {error}")),
        };
        verdict.map_err(|e| match replayed {
            true => format!("send {} of 2: {e}", index + 1),
            false => e,
        })?;
    }
    Ok(())
}

#[tokio::test]
async fn every_attack_is_refused_over_grpc_and_through_envoy() {
    let entries = corpus();
    assert_eq!(entries.len(), ENTRIES, "corpus entry count");
    let attacker = AttackerServer::start(jwks_of(&[&fixture_text("ec-p256-2.jwk.json")])).await;
    let idp = Idp::start(idp_jwks()).await;
    let stack = Stack::start(&config(&idp), &[("ATTACKS_HMAC_SECRET", HMAC_SECRET)]).await;
    let tls_envoy = tls_envoy(&stack).await;

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
    let tls_clients = tls_clients();
    let mut vars = vars(attacker.url());
    let mut failures = Vec::new();
    let mut sent = Vec::new();
    let mut judged = 0;

    for entry in &entries {
        let grpc = run(entry, &mut vars, async |vars| {
            let attempt = attempt(entry, vars, &grpc_origin())?;
            let verdict = grpc_leg(&client, entry, &attempt).await;
            sent.push((entry, attempt));
            verdict
        })
        .await;
        // An entry with a certificate presents it to the TLS Envoy.
        let (via, envoy, http) = match entry.certificate.as_deref() {
            None => ("Envoy", &stack.envoy, &http),
            Some(name) => ("Envoy (TLS)", &tls_envoy, &tls_clients[name]),
        };
        let origin = envoy_origin(envoy);
        let envoy = run(entry, &mut vars, async |vars| {
            let attempt = attempt(entry, vars, &origin)?;
            let verdict = envoy_leg(http, envoy, entry, &attempt).await;
            sent.push((entry, attempt));
            verdict
        })
        .await;
        for (via, outcome) in [("gRPC", grpc), (via, envoy)] {
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
    for (entry, attempt) in &sent {
        if let Some(leak) = attempt.leaked_in(&logs) {
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
        "{} checks failed over {ENTRIES} corpus entries (one per leg):\n{}\n--- tollgate log ---\n{}",
        failures.len(),
        failures.join("\n"),
        logs
    );
}
