//! Check-path benchmarks: a full `Authorizer::check` (extraction, route
//! lookup, signature verification, requirements, upstream headers) against
//! the floor of verifying the same token with jsonwebtoken alone; the same
//! check repeated for one token (what the verified-token cache serves);
//! the cached check of sender-constrained tokens (a DPoP proof verified per
//! request, a client certificate hashed per request) beside the cached
//! check of a plain bearer token in the same run; building Envoy's allow
//! response; route lookup.
//!
//! Run: `cargo bench --bench check`, then `python3 benches/summary.py` for
//! time per op and each `check/*` as a ratio to its `floor/*`: the
//! difference is what tollgate adds around the crypto.

use std::path::Path;
use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use tollgate::internals::{
    Authorizer, AuthzRequest, Bound, Caller, Decision, Grant, KeySet, MatchSpec, PathParameters,
    PathSpec, RequestTarget, RouteMatcher, RouteTable, UpstreamHeaders, check_response,
    normalize_host, normalize_request_path,
};
use tollgate::{Config, DevToken, SigningKey};

const ISSUER: &str = "https://bench.idp";
const KEYS: [(&str, Algorithm, &str); 3] = [
    ("rsa-2048.pem", Algorithm::RS256, "rsa-1"),
    ("ec-p256-1.pem", Algorithm::ES256, "ec-1"),
    ("ed25519.pem", Algorithm::EdDSA, "ed-1"),
];

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keys")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Distinct tokens the uncached `check/*` cycles through (its authorizer
/// has the verified-token cache off as well).
const POOL: usize = 512;

/// `count` distinct valid tokens (they differ in `jti`).
fn tokens(pem: &str, algorithm: Algorithm, kid: &str, count: usize) -> Vec<String> {
    let key =
        SigningKey::from_pem(&fixture(pem), algorithm, Some(kid.into())).expect("fixture key");
    (0..count)
        .map(|i| {
            DevToken {
                issuer: ISSUER.into(),
                audience: vec!["api".into()],
                subject: "svc".into(),
                client_id: "client".into(),
                scopes: vec!["read".into(), "write".into()],
                lifetime: Duration::from_secs(3600),
                claims: Map::from_iter([("jti".to_owned(), Value::from(i))]),
            }
            .sign(&key)
            .expect("sign")
        })
        .collect()
}

/// A request as the gRPC edge hands it over: the authorizer normalises its
/// host and path as part of the check.
fn request(token: &str) -> AuthzRequest {
    AuthzRequest {
        authority: "api.example.com".into(),
        method: "GET".into(),
        path: "/get".into(),
        headers: vec![
            ("authorization".into(), format!("Bearer {token}")),
            ("user-agent".into(), "bench".into()),
            ("accept".into(), "*/*".into()),
        ],
        ..AuthzRequest::default()
    }
}

/// The bench authorizer; `token_cache` is the verified-token cache's
/// `max_entries` (0: off).
fn authorizer(token_cache: u64) -> Authorizer {
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys/jwks.json");
    let yaml = format!(
        "server: {{token_cache: {{max_entries: {token_cache}}}}}\n\
         providers: [{{name: idp, issuer: '{ISSUER}', audiences: [api], jwks_file: '{}'}}]\n\
         defaults:\n  upstream_headers: {{x-sub: sub, x-client: client_id, x-scope: scope, x-iss: iss, x-aud: aud}}\n\
         routes:\n  - {{name: post, match: {{methods: [POST], path: {{exact: /post}}}}, require: {{scopes: [write]}}}}\n  \
         - {{name: get, match: {{methods: [GET], path: {{prefix: /}}}}, require: {{scopes: [read]}}}}\n",
        keys.display()
    );
    tollgate::internals::authorizer(Config::from_yaml(&yaml, Path::new(".")).expect("config"))
}

fn checks(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let uncached = runtime.block_on(async { authorizer(0) });
    let cached = runtime.block_on(async { authorizer(10_000) });
    let (keys, _) = KeySet::from_json(&fixture("jwks.json")).expect("jwks");
    for (pem, algorithm, kid) in KEYS {
        let tokens = tokens(pem, algorithm, kid, POOL);
        let key: DecodingKey = keys
            .candidates(Some(kid), algorithm)
            .next()
            .expect("key")
            .key
            .clone();
        let mut validation = Validation::new(algorithm);
        validation.set_audience(&["api"]);
        validation.set_issuer(&[ISSUER]);
        c.bench_function(&format!("floor/{algorithm:?}"), |b| {
            b.iter(|| {
                jsonwebtoken::decode::<Map<String, Value>>(&tokens[0], &key, &validation)
                    .expect("valid")
            })
        });
        let requests: Vec<AuthzRequest> = tokens.iter().map(|t| request(t)).collect();
        let mut next = requests.iter().cycle();
        c.bench_function(&format!("check/{algorithm:?}"), |b| {
            b.to_async(&runtime)
                .iter(|| allow(&uncached, next.next().expect("a cycle never ends")))
        });
        c.bench_function(&format!("check_cached/{algorithm:?}"), |b| {
            b.to_async(&runtime).iter(|| allow(&cached, &requests[0]))
        });
    }
}

async fn allow(authorizer: &Authorizer, request: &AuthzRequest) -> Grant {
    match authorizer.check(request).await {
        Ok(Decision::Allow(grant)) => grant,
        other => panic!("expected an allow: {other:?}"),
    }
}

/// Envoy's `CheckResponse` for an allow with five upstream headers, as the
/// gRPC edge builds it (making the grant is setup, not measured).
fn allow_response(c: &mut Criterion) {
    let grant = || Grant {
        route: Some("get".into()),
        caller: Some(Caller {
            provider: "idp".into(),
            subject: Some("svc".into()),
            client_id: Some("client".into()),
        }),
        upstream: UpstreamHeaders {
            set: [
                ("x-sub", "svc"),
                ("x-client", "client"),
                ("x-scope", "read write"),
                ("x-iss", ISSUER),
                ("x-aud", "api"),
            ]
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .into(),
            remove: vec!["authorization".into()],
            remove_query: Vec::new(),
        },
        response_headers: Vec::new(),
        metadata: Map::from_iter([("route".to_owned(), Value::from("get"))]),
        binding: Bound::default(),
    };
    c.bench_function("response/allow_5_headers", |b| {
        b.iter_batched(
            || Decision::Allow(grant()),
            check_response,
            BatchSize::SmallInput,
        )
    });
}

/// What the authorizer does to a request before matching it (it was the
/// edges' work before the authorizer took it over): the host and path
/// normalised, as `check` does for every request.
fn normalize(c: &mut Criterion) {
    c.bench_function("routes/normalize_request", |b| {
        b.iter(|| {
            let host = normalize_host(std::hint::black_box("api.example.com")).expect("host");
            let path =
                normalize_request_path(std::hint::black_box("/get"), PathParameters::default())
                    .expect("path");
            (host, path)
        })
    });
}

fn route_lookup(c: &mut Criterion) {
    for count in [10, 1_000] {
        let routes = (0..count)
            .map(|i| {
                let spec = MatchSpec {
                    hosts: vec![format!("svc{i}.example.com")],
                    methods: vec!["GET".into()],
                    path: PathSpec::Prefix(format!("/api/v{i}")),
                };
                (RouteMatcher::new(&spec).expect("route"), i)
            })
            .collect();
        let table = RouteTable::new(routes);
        let host = format!("svc{}.example.com", count - 1);
        let path = format!("/api/v{}/items", count - 1);
        let target = RequestTarget {
            host: &host,
            method: "GET",
            path: &path,
        };
        c.bench_function(&format!("routes/last_of_{count}"), |b| {
            b.iter(|| table.find(&target).expect("match"))
        });
    }
}

/// A bound token's cached check beside a plain one's, same authorizer:
/// what checking the binding adds when the token's signature is already
/// remembered. `binding/bearer_cached` is the baseline; `binding/dpop_cached`
/// verifies a fresh ES256 proof (made in setup, not measured) each time;
/// `binding/mtls_cached` hashes the client certificate each time.
fn bound_checks(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cached = runtime.block_on(async { authorizer(10_000) });
    let (pem, algorithm, kid) = KEYS[1];
    let signing_key =
        SigningKey::from_pem(&fixture(pem), algorithm, Some(kid.into())).expect("fixture key");
    let token_with = |claims: Map<String, Value>| {
        DevToken {
            issuer: ISSUER.into(),
            audience: vec!["api".into()],
            subject: "svc".into(),
            client_id: "client".into(),
            scopes: vec!["read".into()],
            lifetime: Duration::from_secs(3600),
            claims,
        }
        .sign(&signing_key)
        .expect("sign")
    };
    let plain = request(&token_with(Map::new()));
    c.bench_function("binding/bearer_cached", |b| {
        b.to_async(&runtime).iter(|| allow(&cached, &plain))
    });

    let client = DpopClient::new();
    let cnf = |member: &str, value: String| {
        Map::from_iter([("cnf".to_owned(), serde_json::json!({ member: value }))])
    };
    let dpop_token = token_with(cnf("jkt", client.thumbprint()));
    let mut jti = 0u64;
    let authorizer = &cached;
    c.bench_function("binding/dpop_cached", |b| {
        b.to_async(&runtime).iter_batched(
            || {
                jti += 1;
                let mut request = request(&dpop_token);
                request.scheme = "https".into();
                request.headers[0].1 = format!("DPoP {dpop_token}");
                let url = "https://api.example.com/get";
                request
                    .headers
                    .push(("dpop".into(), client.proof(url, &dpop_token, jti)));
                request
            },
            |request| async move { allow(authorizer, &request).await },
            BatchSize::SmallInput,
        )
    });

    let certificate = String::from_utf8(
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls/client.crt"))
            .expect("client certificate"),
    )
    .expect("PEM text");
    let der = pem_body(&certificate);
    let x5t = URL_SAFE_NO_PAD.encode(digest(&SHA256, &der));
    let mut mtls = request(&token_with(cnf("x5t#S256", x5t)));
    mtls.peer_certificate = Some(url_encode(&certificate));
    c.bench_function("binding/mtls_cached", |b| {
        b.to_async(&runtime).iter(|| allow(&cached, &mtls))
    });
}

/// A DPoP client with the fixture key ec-p256-2.
struct DpopClient {
    key: jsonwebtoken::EncodingKey,
    jwk: Value,
}

impl DpopClient {
    fn new() -> DpopClient {
        let jwk: Value = serde_json::from_slice(&fixture("ec-p256-2.jwk.json")).expect("jwk");
        DpopClient {
            key: jsonwebtoken::EncodingKey::from_ec_pem(&fixture("ec-p256-2.pem")).expect("key"),
            jwk: serde_json::json!({"kty": "EC", "crv": "P-256", "x": jwk["x"], "y": jwk["y"]}),
        }
    }

    /// RFC 7638: the required members in lexicographic order.
    fn thumbprint(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":{},"y":{}}}"#,
            self.jwk["x"], self.jwk["y"]
        );
        URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes()))
    }

    fn proof(&self, url: &str, token: &str, jti: u64) -> String {
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk});
        let claims = serde_json::json!({
            "jti": jti.to_string(),
            "htm": "GET",
            "htu": url,
            "iat": jsonwebtoken::get_current_timestamp(),
            "ath": URL_SAFE_NO_PAD.encode(digest(&SHA256, token.as_bytes())),
        });
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = jsonwebtoken::crypto::sign(signed.as_bytes(), &self.key, Algorithm::ES256)
            .expect("sign");
        format!("{signed}.{signature}")
    }
}

fn pem_body(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("base64 PEM body")
}

/// Percent-encodes as Envoy does for `source.certificate`.
fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

criterion_group!(
    benches,
    checks,
    bound_checks,
    allow_response,
    normalize,
    route_lookup
);
criterion_main!(benches);
