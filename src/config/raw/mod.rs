//! The configuration file as written: serde structs that mirror the YAML
//! one to one. Nothing here is trusted; `config::Config::from_raw` turns it
//! into the typed, validated settings of the parts that use them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

mod binding;
mod scalar;

pub(crate) use binding::{RawBinding, RawCertificateSource, RawNonce};
pub(crate) use scalar::{RawDuration, RawSecret};

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default)]
    pub(crate) server: RawServer,
    #[serde(default)]
    pub(crate) log: RawLog,
    /// Where tokens are looked for, in order. Default: `Authorization: Bearer`.
    pub(crate) token_sources: Option<Vec<RawTokenSource>>,
    #[serde(default)]
    pub(crate) providers: Vec<RawProvider>,
    #[serde(default)]
    pub(crate) defaults: RawRouteDefaults,
    #[serde(default)]
    pub(crate) routes: Vec<RawRoute>,
    /// What happens to a request no route matches.
    #[serde(default)]
    pub(crate) unmatched: RawUnmatched,
    /// The key signed upstream identity tokens are minted with.
    pub(crate) identity: Option<RawIdentity>,
    /// OpenTelemetry span export; off without an endpoint.
    #[serde(default)]
    pub(crate) tracing: RawTracing,
    /// The decision audit stream, off without it; `config::audit` reads it
    /// (its structs live there, beside what they become).
    pub(crate) audit: Option<figment::value::Value>,
    /// Per-client check metrics, off without it; read by `config::audit`.
    pub(crate) metrics: Option<figment::value::Value>,
    /// Client certificate sources and DPoP proof checks for bound tokens.
    #[serde(default)]
    pub(crate) binding: RawBinding,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTracing {
    /// OTLP/gRPC collector, `http://HOST:4317`.
    pub(crate) otlp_endpoint: Option<String>,
    pub(crate) service_name: Option<String>,
    pub(crate) sample_ratio: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIdentity {
    /// `iss` of minted tokens: this tollgate's name.
    pub(crate) issuer: String,
    /// PKCS#8 PEM private key, from `{env: VAR}` or `{file: PATH}`.
    pub(crate) signing_key: RawSecret,
    /// `ES256` or `EdDSA`.
    pub(crate) algorithm: String,
    pub(crate) kid: String,
    pub(crate) lifetime: Option<RawDuration>,
    pub(crate) cache_size: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    #[serde(default = "default_grpc_listen")]
    pub(crate) grpc_listen: String,
    /// `realm` attribute of `WWW-Authenticate`; omitted when unset.
    pub(crate) realm: Option<String>,
    /// Longest token accepted, in bytes.
    pub(crate) max_token_bytes: Option<usize>,
    /// What `;` in a request path means: reject, keep or strip.
    #[serde(default)]
    pub(crate) path_parameters: RawPathParameters,
    /// Serve HTTP ext_authz mode (Envoy `http_service`) on `http_listen`.
    #[serde(default)]
    pub(crate) http_enabled: bool,
    #[serde(default = "default_http_listen")]
    pub(crate) http_listen: String,
    /// Stripped from HTTP-mode request paths (Envoy's `path_prefix`).
    pub(crate) http_path_prefix: Option<String>,
    #[serde(default = "default_admin_listen")]
    pub(crate) admin_listen: String,
    /// Verified JWTs remembered by a hash of the token.
    #[serde(default)]
    pub(crate) token_cache: RawTokenCache,
    /// Most header lines a checked request may carry.
    pub(crate) max_headers: Option<usize>,
    /// Most checks decided at once; more are refused with RESOURCE_EXHAUSTED.
    pub(crate) max_concurrent_checks: Option<usize>,
    /// Longest one check may take before it is answered UNAVAILABLE.
    pub(crate) check_timeout: Option<RawDuration>,
    /// How long in-flight calls may finish after SIGTERM.
    pub(crate) shutdown_grace: Option<RawDuration>,
    /// TLS (and with a client CA, mutual TLS) on the gRPC listener.
    pub(crate) tls: Option<RawTls>,
    /// Extra CA certificates (PEM) trusted for IdP connections.
    pub(crate) idp_ca_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    pub(crate) cert_file: PathBuf,
    pub(crate) key_file: PathBuf,
    pub(crate) client_ca_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTokenCache {
    pub(crate) max_entries: Option<u64>,
    pub(crate) ttl: Option<RawDuration>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", expecting = "`reject`, `keep` or `strip`")]
pub(crate) enum RawPathParameters {
    #[default]
    Reject,
    Keep,
    Strip,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            grpc_listen: default_grpc_listen(),
            realm: None,
            max_token_bytes: None,
            path_parameters: RawPathParameters::default(),
            token_cache: RawTokenCache::default(),
            http_enabled: false,
            http_listen: default_http_listen(),
            http_path_prefix: None,
            admin_listen: default_admin_listen(),
            max_headers: None,
            max_concurrent_checks: None,
            check_timeout: None,
            shutdown_grace: None,
            tls: None,
            idp_ca_file: None,
        }
    }
}

fn default_grpc_listen() -> String {
    "0.0.0.0:9191".to_owned()
}

fn default_http_listen() -> String {
    "0.0.0.0:9192".to_owned()
}

fn default_admin_listen() -> String {
    "0.0.0.0:9193".to_owned()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLog {
    #[serde(default)]
    pub(crate) format: RawLogFormat,
    /// A `tracing` filter such as `info` or `tollgate=debug,info`.
    pub(crate) level: Option<String>,
}

/// How log lines are written.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", expecting = "`human` or `json`")]
pub(crate) enum RawLogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTokenSource {
    pub(crate) header: Option<String>,
    /// Authorization scheme such as `Bearer`, matched case-insensitively.
    pub(crate) scheme: Option<String>,
    /// A literal prefix before the token, matched exactly.
    pub(crate) prefix: Option<String>,
    pub(crate) query: Option<String>,
    pub(crate) cookie: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProvider {
    pub(crate) name: String,
    /// The `iss` its tokens carry. Needed for JWTs and discovery; optional
    /// for a provider that only introspects at a configured endpoint.
    pub(crate) issuer: Option<String>,
    /// Find `jwks_uri` through `{issuer}/.well-known/openid-configuration`.
    #[serde(default)]
    pub(crate) discovery: bool,
    pub(crate) jwks_uri: Option<String>,
    /// A JWKS document written inline.
    pub(crate) jwks: Option<serde_json::Value>,
    /// A JWKS document in a file, relative to the config file.
    pub(crate) jwks_file: Option<PathBuf>,
    /// Secret for HS256/384/512. Without it no HMAC algorithm is accepted.
    pub(crate) hmac_secret: Option<RawSecret>,
    #[serde(default)]
    pub(crate) audiences: Vec<String>,
    pub(crate) algorithms: Option<Vec<String>>,
    pub(crate) leeway: Option<RawDuration>,
    /// Claims scopes are read from, in order. Default `[scope, scp]`.
    pub(crate) scope_claims: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) jwks_cache: RawJwksCache,
    /// Validate tokens at the issuer's RFC 7662 introspection endpoint.
    pub(crate) introspection: Option<RawIntrospection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIntrospection {
    /// Default: `introspection_endpoint` from the issuer's metadata.
    pub(crate) endpoint: Option<String>,
    pub(crate) client_id: Option<String>,
    pub(crate) client_secret: Option<RawSecret>,
    pub(crate) auth_method: Option<RawClientAuth>,
    /// Extra request headers, such as a ready-made `Authorization`.
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, RawHeaderValue>,
    /// Also introspect JWTs after verifying them, to catch revocation.
    #[serde(default)]
    pub(crate) introspect_jwts: bool,
    pub(crate) timeout: Option<RawDuration>,
    pub(crate) connect_timeout: Option<RawDuration>,
    #[serde(default)]
    pub(crate) cache: RawIntrospectionCache,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(
    rename_all = "snake_case",
    expecting = "`client_secret_basic`, `client_secret_post` or `none`"
)]
pub(crate) enum RawClientAuth {
    ClientSecretBasic,
    ClientSecretPost,
    None,
}

/// A header value written inline, or a secret reference.
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "a header value: a string, {env: VARIABLE} or {file: PATH}"
)]
pub(crate) enum RawHeaderValue {
    Text(String),
    Secret(RawSecret),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIntrospectionCache {
    /// Longest an active result is kept; never past the token's `exp`.
    pub(crate) ttl: Option<RawDuration>,
    /// How long an inactive result is kept.
    pub(crate) inactive_ttl: Option<RawDuration>,
    pub(crate) max_entries: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawJwksCache {
    pub(crate) refresh_interval: Option<RawDuration>,
    pub(crate) min_refresh_interval: Option<RawDuration>,
    pub(crate) max_refresh_interval: Option<RawDuration>,
    pub(crate) unknown_kid_refetch_interval: Option<RawDuration>,
    pub(crate) max_stale: Option<RawDuration>,
    pub(crate) retry_interval: Option<RawDuration>,
    pub(crate) fetch_timeout: Option<RawDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRouteDefaults {
    /// Upstream header name -> claim path.
    pub(crate) upstream_headers: Option<BTreeMap<String, RawClaimPath>>,
    pub(crate) remove_token_header: Option<bool>,
    pub(crate) claim_separator: Option<String>,
    /// Headers set to fixed values on every allow.
    pub(crate) static_headers: Option<BTreeMap<String, String>>,
    /// Named header sets, such as `oauth2_proxy`.
    pub(crate) header_preset: Option<RawHeaderPreset>,
    /// More request headers removed before the request goes upstream.
    pub(crate) remove_headers: Option<Vec<String>>,
    /// Headers added to the client's response on an allow.
    pub(crate) response_headers_to_add: Option<BTreeMap<String, String>>,
    /// Claims returned as Envoy dynamic metadata.
    pub(crate) metadata_claims: Option<Vec<RawClaimPath>>,
    /// How denies look.
    pub(crate) deny: Option<RawDeny>,
    /// Log denies but allow the request.
    pub(crate) dry_run: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    pub(crate) name: String,
    #[serde(default, rename = "match")]
    pub(crate) matcher: RawMatch,
    /// Providers whose tokens this route accepts. Default: all of them.
    pub(crate) providers: Option<Vec<String>>,
    /// Let requests through without a token.
    #[serde(default)]
    pub(crate) anonymous: bool,
    #[serde(default)]
    pub(crate) require: RawRequire,
    pub(crate) upstream_headers: Option<BTreeMap<String, RawClaimPath>>,
    pub(crate) remove_token_header: Option<bool>,
    /// Headers set to fixed values on every allow.
    pub(crate) static_headers: Option<BTreeMap<String, String>>,
    /// Named header sets, such as `oauth2_proxy`.
    pub(crate) header_preset: Option<RawHeaderPreset>,
    /// More request headers removed before the request goes upstream.
    pub(crate) remove_headers: Option<Vec<String>>,
    /// Headers added to the client's response on an allow.
    pub(crate) response_headers_to_add: Option<BTreeMap<String, String>>,
    /// Claims returned as Envoy dynamic metadata.
    pub(crate) metadata_claims: Option<Vec<RawClaimPath>>,
    /// How denies look.
    pub(crate) deny: Option<RawDeny>,
    /// Log denies but allow the request.
    pub(crate) dry_run: Option<bool>,
    /// A signed identity token for the upstream.
    pub(crate) upstream_identity: Option<RawUpstreamIdentity>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", expecting = "`oauth2_proxy` or `none`")]
pub(crate) enum RawHeaderPreset {
    /// oauth2-proxy's `X-Auth-Request-*` headers.
    Oauth2Proxy,
    None,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDeny {
    /// `realm` in `WWW-Authenticate`; default `server.realm`.
    pub(crate) realm: Option<String>,
    pub(crate) body: Option<RawDenyBody>,
    pub(crate) headers: Option<BTreeMap<String, String>>,
    /// Header naming the deny reason; unset (the default) sends none.
    pub(crate) reason_header: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", expecting = "`json`, `text` or `empty`")]
pub(crate) enum RawDenyBody {
    Json,
    Text,
    Empty,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstreamIdentity {
    /// Default `x-tollgate-identity`.
    pub(crate) header: Option<String>,
    /// `aud` of the minted token: the upstream.
    pub(crate) audience: String,
    /// Top-level claims copied from the caller's token.
    #[serde(default)]
    pub(crate) claims: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMatch {
    #[serde(default)]
    pub(crate) hosts: Vec<String>,
    #[serde(default)]
    pub(crate) methods: Vec<String>,
    pub(crate) path: Option<RawPath>,
}

#[derive(Debug, Deserialize)]
#[serde(
    rename_all = "snake_case",
    deny_unknown_fields,
    expecting = "one of {exact: PATH}, {prefix: PATH}, {template: PATH} or {regex: REGEX}"
)]
pub(crate) enum RawPath {
    Exact(String),
    Prefix(String),
    Template(String),
    Regex(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRequire {
    /// Every one of these scopes.
    #[serde(default)]
    pub(crate) scopes: Vec<String>,
    /// At least one of these scopes.
    #[serde(default)]
    pub(crate) any_scopes: Vec<String>,
    #[serde(default)]
    pub(crate) claims: Vec<RawClaimRule>,
    /// How the token must be bound to its caller.
    #[serde(default)]
    pub(crate) binding: RawRouteBinding,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawRouteBinding {
    #[default]
    None,
    Mtls,
    Dpop,
    AnyBound,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClaimRule {
    pub(crate) claim: RawClaimPath,
    pub(crate) equals: Option<serde_json::Value>,
    /// The claim (an array, or a space-separated string) holds this value.
    pub(crate) contains: Option<serde_json::Value>,
    /// The claim holds at least one of these values.
    pub(crate) contains_any: Option<Vec<serde_json::Value>>,
}

/// `realm_access.roles`, or a list of segments when a key itself holds dots
/// (`["https://example.com/claims", "roles"]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(
    untagged,
    expecting = "a claim path: `a.b.c`, or a list of keys [a, b, c]"
)]
pub(crate) enum RawClaimPath {
    Dotted(String),
    Segments(Vec<String>),
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", expecting = "`deny` or `allow`")]
pub(crate) enum RawUnmatched {
    #[default]
    Deny,
    Allow,
}
