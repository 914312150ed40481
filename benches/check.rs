//! Check-path benchmarks: a full `Authorizer::check` (extraction, route
//! lookup, signature verification, requirements, upstream headers) against
//! the floor of verifying the same token with jsonwebtoken alone; the same
//! check repeated for one token (what the verified-token cache serves);
//! building Envoy's allow response; route lookup.
//!
//! Run: `cargo bench --bench check`, then `python3 benches/summary.py` for
//! time per op and each `check/*` as a ratio to its `floor/*`: the
//! difference is what tollgate adds around the crypto.

use std::path::Path;
use std::time::Duration;

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

criterion_group!(benches, checks, allow_response, normalize, route_lookup);
criterion_main!(benches);
