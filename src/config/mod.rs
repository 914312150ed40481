//! Configuration: the YAML file (plus `TOLLGATE_` environment overrides) is
//! read once, validated, and turned into typed settings. Every error names
//! the field that is wrong, so a broken config is refused at start.

mod identity;
mod introspection;
mod output;
mod provider;
mod raw;
mod route;
mod traces;
mod values;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format as _, Yaml};

use crate::identity::IdentitySettings;
use crate::routes::PathParameters;
use crate::tls::{TlsConfig, TlsSettings};
use crate::token::extract::{HeaderFormat, TokenSource};
use crate::token::verified::VerifiedCacheSettings;
pub use output::{DEFAULT_IDENTITY_HEADER, RouteOutput};
pub use provider::{JwtSettings, ProviderSettings};
pub use raw::LogFormat;
use raw::{RawConfig, RawTokenSource};
pub use route::{HeaderMapping, RoutePolicy, RouteSettings};
pub use traces::{OTLP_ENDPOINT_ENV, TracingSettings};
pub use values::Secret;
pub use values::parse_duration;

/// Top-level keys that `TOLLGATE_<KEY>__...` environment variables may set.
/// Other `TOLLGATE_` variables (such as test settings) are not config.
const ENV_SECTIONS: &[&str] = &["server", "log", "tracing", "defaults", "unmatched"];

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Read(#[source] std::io::Error),
    /// The file is not YAML of the expected shape.
    #[error("{0}")]
    Load(#[from] Box<figment::Error>),
    /// A field has a value tollgate cannot use.
    #[error("{field}: {message}")]
    Invalid {
        /// Where, as `routes[2].match.path`.
        field: String,
        /// What is wrong and, where possible, how to fix it.
        message: String,
    },
}

pub(super) fn invalid(field: impl Into<String>, message: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        message: message.to_string(),
    }
}

/// The validated configuration.
pub struct Config {
    /// Listener and response settings.
    pub server: ServerSettings,
    /// Log format and filter.
    pub log: LogSettings,
    /// Where tokens are looked for, in order.
    pub token_sources: Vec<TokenSource>,
    /// Token issuers.
    pub providers: Vec<ProviderSettings>,
    /// Routes in file order; the first match wins.
    pub routes: Vec<RouteSettings>,
    /// Let requests that match no route through (anonymously).
    pub allow_unmatched: bool,
    /// Every header the defaults or any route fill from claims, sorted: an
    /// answer removes those it does not set, whichever route (or none) the
    /// request takes, so a client can never supply identity itself.
    pub identity_headers: Vec<String>,
    /// How denies of requests no route matches look.
    pub default_deny: std::sync::Arc<crate::reply::DenyShape>,
    /// The key upstream identity tokens are signed with, if configured.
    pub identity: Option<IdentitySettings>,
    /// OpenTelemetry span export; `None` when tracing is off.
    pub tracing: Option<TracingSettings>,
    /// Things worth telling the operator that do not stop the start.
    pub warnings: Vec<String>,
}

/// Listener and response settings.
pub struct ServerSettings {
    /// Where the gRPC Check service listens.
    pub grpc_listen: SocketAddr,
    /// `realm` in `WWW-Authenticate`, if any.
    pub realm: Option<String>,
    /// Longest token accepted, in bytes.
    pub max_token_bytes: usize,
    /// What `;` in a request path means.
    pub path_parameters: PathParameters,
    /// The verified-JWT cache.
    pub token_cache: VerifiedCacheSettings,
    /// Where HTTP ext_authz mode listens; `None` when it is off.
    pub http_listen: Option<SocketAddr>,
    /// Stripped from HTTP-mode request paths (Envoy `http_service.path_prefix`).
    pub http_path_prefix: Option<String>,
    /// Where the admin endpoints listen.
    pub admin_listen: SocketAddr,
    /// Most header lines a checked request may carry; more is a 400.
    pub max_headers: usize,
    /// Most checks decided at once; more are refused with RESOURCE_EXHAUSTED.
    pub max_concurrent_checks: usize,
    /// Longest one check may take; then it is answered UNAVAILABLE.
    pub check_timeout: Duration,
    /// How long in-flight calls may finish after shutdown starts.
    pub shutdown_grace: Duration,
    /// TLS on the gRPC listener; plaintext when `None`.
    pub tls: Option<TlsSettings>,
    /// CA certificates trusted for IdP connections besides the system's.
    pub idp_ca_certificates: Vec<reqwest::Certificate>,
    /// Where they were read from, to tell whether a reload changes them.
    pub idp_ca_file: Option<PathBuf>,
}

/// Log settings.
pub struct LogSettings {
    /// Human or JSON lines.
    pub format: LogFormat,
    /// A `tracing` filter directive.
    pub level: String,
}

impl Config {
    /// Reads `path`, applies `TOLLGATE_...` environment overrides (`__`
    /// separates nested keys: `TOLLGATE_SERVER__GRPC_LISTEN`), and validates.
    /// Relative file paths inside the config resolve against its folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        std::fs::File::open(path).map_err(ConfigError::Read)?;
        let figment = Figment::new().merge(Yaml::file_exact(path)).merge(
            Env::prefixed("TOLLGATE_").split("__").filter(|key| {
                let top = key.as_str().split('.').next().unwrap_or_default();
                ENV_SECTIONS.iter().any(|s| top.eq_ignore_ascii_case(s))
            }),
        );
        let raw: RawConfig = figment.extract().map_err(load_error)?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::from_raw(raw, base)
    }

    /// Parses a YAML document (for tests and tools); paths resolve against `base`.
    pub fn from_yaml(yaml: &str, base: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = Figment::new()
            .merge(Yaml::string(yaml))
            .extract()
            .map_err(load_error)?;
        Config::from_raw(raw, base)
    }

    fn from_raw(raw: RawConfig, base: &Path) -> Result<Config, ConfigError> {
        let mut warnings = Vec::new();
        let server = ServerSettings {
            grpc_listen: raw.server.grpc_listen.parse().map_err(|e| {
                invalid(
                    "server.grpc_listen",
                    format!("{e}; expected host:port such as 0.0.0.0:9191"),
                )
            })?,
            realm: raw.server.realm,
            max_token_bytes: raw.server.max_token_bytes.unwrap_or(16 * 1024),
            path_parameters: match raw.server.path_parameters {
                raw::RawPathParameters::Reject => PathParameters::Reject,
                raw::RawPathParameters::Keep => PathParameters::Keep,
                raw::RawPathParameters::Strip => PathParameters::Strip,
            },
            token_cache: token_cache(&raw.server.token_cache)?,
            http_listen: if raw.server.http_enabled {
                Some(listen_address(
                    &raw.server.http_listen,
                    "server.http_listen",
                    9192,
                )?)
            } else {
                None
            },
            http_path_prefix: match raw.server.http_path_prefix {
                Some(prefix) if !prefix.starts_with('/') || prefix.ends_with('/') => {
                    return Err(invalid(
                        "server.http_path_prefix",
                        "must start with `/` and not end with one, like Envoy's `path_prefix: /authz`",
                    ));
                }
                other => other,
            },
            admin_listen: listen_address(&raw.server.admin_listen, "server.admin_listen", 9193)?,
            max_headers: positive(raw.server.max_headers, 200, "server.max_headers")?,
            max_concurrent_checks: positive(
                raw.server.max_concurrent_checks,
                10_000,
                "server.max_concurrent_checks",
            )?,
            check_timeout: server_duration(raw.server.check_timeout, 10, "server.check_timeout")?,
            shutdown_grace: server_duration(
                raw.server.shutdown_grace,
                10,
                "server.shutdown_grace",
            )?,
            tls: raw.server.tls.map(|tls| TlsSettings {
                cert_file: base.join(tls.cert_file),
                key_file: base.join(tls.key_file),
                client_ca_file: tls.client_ca_file.map(|path| base.join(path)),
            }),
            idp_ca_certificates: match &raw.server.idp_ca_file {
                None => Vec::new(),
                Some(path) => {
                    ca_bundle(&base.join(path)).map_err(|m| invalid("server.idp_ca_file", m))?
                }
            },
            idp_ca_file: raw.server.idp_ca_file.as_ref().map(|path| base.join(path)),
        };
        if let Some(tls) = &server.tls {
            // Loaded once here so a bad file is refused at start by name.
            TlsConfig::load(tls.clone())
                .map_err(|e| invalid("server.tls", crate::telemetry::ErrorChain(&e)))?;
        }
        let identity = raw
            .identity
            .map(|raw| identity::settings(raw, base, &mut warnings))
            .transpose()?;
        if server
            .realm
            .as_deref()
            .is_some_and(|r| r.contains(['"', '\\']) || r.chars().any(char::is_control))
        {
            return Err(invalid(
                "server.realm",
                "must not contain quotes, backslashes or control characters",
            ));
        }
        let log = LogSettings {
            format: raw.log.format,
            level: raw.log.level.unwrap_or_else(|| "info".to_owned()),
        };
        check_log_level(&log.level).map_err(|m| invalid("log.level", m))?;
        let tracing = traces::settings(raw.tracing, std::env::var(OTLP_ENDPOINT_ENV).ok())?;
        let token_sources = match raw.token_sources {
            None => vec![TokenSource::authorization_bearer()],
            Some(list) if list.is_empty() => {
                return Err(invalid(
                    "token_sources",
                    "list at least one place to read tokens from",
                ));
            }
            Some(list) => list
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    token_source(s).map_err(|m| invalid(format!("token_sources[{i}]"), m))
                })
                .collect::<Result<_, _>>()?,
        };

        let mut providers = Vec::with_capacity(raw.providers.len());
        let mut names = HashMap::new();
        let mut issuers = HashSet::new();
        for (i, p) in raw.providers.into_iter().enumerate() {
            let field = format!("providers[{i}]");
            if names.insert(p.name.clone(), i).is_some() {
                return Err(invalid(
                    format!("{field}.name"),
                    format!("`{}` is used by two providers", p.name),
                ));
            }
            if let Some(issuer) = &p.issuer
                && !issuers.insert(issuer.clone())
            {
                return Err(invalid(
                    format!("{field}.issuer"),
                    format!("`{issuer}` is used by two providers"),
                ));
            }
            let mut settings = provider::provider(p, &field, base, &mut warnings)?;
            settings
                .idp_ca_certificates
                .clone_from(&server.idp_ca_certificates);
            providers.push(settings);
        }

        let defaults = route::RouteDefaults {
            upstream_headers: match raw.defaults.upstream_headers {
                Some(map) => route::header_mappings(map, "defaults.upstream_headers")?,
                None => route::default_header_mappings(),
            },
            remove_token_header: raw.defaults.remove_token_header,
            claim_separator: raw
                .defaults
                .claim_separator
                .unwrap_or_else(|| ",".to_owned())
                .into(),
            path_parameters: server.path_parameters,
            output: output::OutputDefaults::new(
                output::RawOutput {
                    static_headers: raw.defaults.static_headers,
                    header_preset: raw.defaults.header_preset,
                    remove_headers: raw.defaults.remove_headers,
                    response_headers_to_add: raw.defaults.response_headers_to_add,
                    metadata_claims: raw.defaults.metadata_claims,
                    deny: raw.defaults.deny,
                    dry_run: raw.defaults.dry_run,
                },
                server.realm.clone(),
            )?,
            identity_configured: identity.is_some(),
        };
        if defaults.claim_separator.is_empty() {
            return Err(invalid("defaults.claim_separator", "must not be empty"));
        }
        let mut routes = Vec::with_capacity(raw.routes.len());
        let mut route_names = HashSet::new();
        for (i, r) in raw.routes.into_iter().enumerate() {
            let field = format!("routes[{i}]");
            if !route_names.insert(r.name.clone()) {
                return Err(invalid(
                    format!("{field}.name"),
                    format!("`{}` is used by two routes", r.name),
                ));
            }
            let route = route::route(r, &field, &names, &defaults, &mut warnings)?;
            if !route.policy.anonymous && route.policy.providers.is_empty() {
                return Err(invalid(
                    format!("{field}.providers"),
                    "no provider can verify tokens for this route; configure `providers` or make the route `anonymous`",
                ));
            }
            let introspecting: Vec<&str> = route
                .policy
                .providers
                .iter()
                .map(|&i| &providers[i])
                .filter(|p: &&ProviderSettings| p.introspection.is_some())
                .map(|p| &*p.name)
                .collect();
            if introspecting.len() > 1 {
                return Err(invalid(
                    format!("{field}.providers"),
                    format!(
                        "accepts tokens introspected by {}; an opaque token does not say which issuer it is from, and tollgate will not hand it to issuers it may not belong to: name one of them in `providers`",
                        introspecting.join(" and ")
                    ),
                ));
            }
            routes.push(route);
        }
        let mut identity_headers: Vec<String> =
            output::with_preset(defaults.upstream_headers.clone(), defaults.output.preset)
                .iter()
                .chain(routes.iter().flat_map(|r| r.policy.upstream_headers.iter()))
                .map(|mapping| mapping.header.clone())
                .collect();
        // Tokens and fixed values tollgate sets are never taken from the
        // client either: a static header often means "came through here".
        identity_headers.extend(routes.iter().flat_map(|r| {
            let output = &r.policy.output;
            output
                .access_token_header
                .iter()
                .chain(output.identity.as_ref().map(|i| &i.header))
                .chain(output.static_headers.iter().map(|(name, _)| name))
                .cloned()
        }));
        identity_headers.extend(
            defaults
                .output
                .output
                .static_headers
                .iter()
                .map(|(name, _)| name.clone()),
        );
        identity_headers.sort_unstable();
        identity_headers.dedup();
        if routes.is_empty() {
            warnings.push("no routes are configured: every request is denied".to_owned());
        }
        let query_token = token_sources
            .iter()
            .any(|source| matches!(source, TokenSource::Query(_)));
        if server.http_listen.is_some()
            && query_token
            && routes.iter().any(|r| r.policy.remove_token_header)
        {
            warnings.push(
                "server.http_enabled: HTTP ext_authz mode cannot remove the token query parameter (Envoy's http_service has no way to say so); use gRPC mode where `remove_token_header` must cover it".to_owned(),
            );
        }
        Ok(Config {
            server,
            log,
            token_sources,
            providers,
            routes,
            allow_unmatched: raw.unmatched == raw::RawUnmatched::Allow,
            identity_headers,
            default_deny: defaults.output.deny(),
            identity,
            tracing,
            warnings,
        })
    }
}

fn token_cache(raw: &raw::RawTokenCache) -> Result<VerifiedCacheSettings, ConfigError> {
    let defaults = VerifiedCacheSettings::default();
    Ok(VerifiedCacheSettings {
        max_entries: raw.max_entries.unwrap_or(defaults.max_entries),
        ttl: raw
            .ttl
            .as_ref()
            .map(|d| parse_duration(&d.text()))
            .transpose()
            .map_err(|m| invalid("server.token_cache.ttl", m))?
            .unwrap_or(defaults.ttl),
    })
}

/// `host:port`; the error names `field` and shows the conventional `port`.
fn listen_address(text: &str, field: &str, port: u16) -> Result<SocketAddr, ConfigError> {
    text.parse().map_err(|e| {
        invalid(
            field,
            format!("{e}; expected host:port such as 0.0.0.0:{port}"),
        )
    })
}

/// The certificates of a PEM CA bundle; at least one.
fn ca_bundle(path: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| format!("{}: not a PEM CA bundle: {e}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!("{}: no CERTIFICATE in the file", path.display()));
    }
    Ok(certificates)
}

/// A count that must be at least 1, or `default` when unset.
fn positive(value: Option<usize>, default: usize, field: &str) -> Result<usize, ConfigError> {
    match value {
        None => Ok(default),
        Some(0) => Err(invalid(field, "must be at least 1")),
        Some(n) => Ok(n),
    }
}

/// A non-zero duration, or `default_secs` seconds when unset.
fn server_duration(
    value: Option<raw::RawDuration>,
    default_secs: u64,
    field: &str,
) -> Result<Duration, ConfigError> {
    let Some(value) = value else {
        return Ok(Duration::from_secs(default_secs));
    };
    match parse_duration(&value.text()) {
        Ok(duration) if duration.is_zero() => Err(invalid(field, "must be longer than 0")),
        Ok(duration) => Ok(duration),
        Err(message) => Err(invalid(field, message)),
    }
}

/// `info`, or a filter such as `tollgate=debug,info`. A bare word that is not
/// a level would be read as a target name and silence every log line, so a
/// typo like `infoo` is refused rather than obeyed.
fn check_log_level(level: &str) -> Result<(), String> {
    const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];
    for directive in level.split(',').map(str::trim) {
        if !directive.contains('=') && !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(directive)) {
            return Err(format!(
                "`{directive}` is not a level ({}) nor a `target=level` directive",
                LEVELS.join(", ")
            ));
        }
    }
    tracing_subscriber::EnvFilter::try_new(level)
        .map(drop)
        .map_err(|e| format!("`{level}`: {e}"))
}

/// A shape error names its field the way validation errors do
/// (`providers[0].leeway`), not as figment's `default.providers.0.leeway`.
fn load_error(error: figment::Error) -> ConfigError {
    if error.path.is_empty() {
        return ConfigError::Load(Box::new(error));
    }
    let mut field = String::new();
    for segment in &error.path {
        if segment.parse::<usize>().is_ok() {
            field.push_str(&format!("[{segment}]"));
        } else {
            if !field.is_empty() {
                field.push('.');
            }
            field.push_str(segment);
        }
    }
    let from_env = error
        .metadata
        .as_ref()
        .is_some_and(|m| m.name.contains("environment"));
    if from_env {
        let variable = format!("TOLLGATE_{}", error.path.join("__").to_ascii_uppercase());
        return invalid(
            field,
            format!("{} (set by environment variable {variable})", error.kind),
        );
    }
    invalid(field, &error.kind)
}

fn token_source(raw: RawTokenSource) -> Result<TokenSource, String> {
    match (raw.header, raw.query, raw.cookie) {
        (Some(name), None, None) => {
            let format = match (raw.scheme, raw.prefix) {
                (Some(_), Some(_)) => return Err("set `scheme` or `prefix`, not both".to_owned()),
                (Some(scheme), None) if is_http_token(&scheme) => HeaderFormat::Scheme(scheme),
                (Some(scheme), None) => {
                    return Err(format!("scheme `{scheme}` is not a valid auth scheme"));
                }
                (None, Some(prefix)) if !prefix.is_empty() => HeaderFormat::Prefix(prefix),
                (None, Some(_)) => {
                    return Err("`prefix` is empty; leave it out for a raw token".to_owned());
                }
                (None, None) => HeaderFormat::Raw,
            };
            if !is_http_token(&name) {
                return Err(format!("`{name}` is not a valid header name"));
            }
            Ok(TokenSource::Header {
                name: name.to_ascii_lowercase(),
                format,
            })
        }
        (None, query, cookie) if raw.scheme.is_some() || raw.prefix.is_some() => {
            let _ = (query, cookie);
            Err("`scheme` and `prefix` apply to `header` sources only".to_owned())
        }
        (None, Some(query), None) if !query.is_empty() => Ok(TokenSource::Query(query)),
        (None, None, Some(cookie)) if is_http_token(&cookie) => Ok(TokenSource::Cookie(cookie)),
        _ => Err("set exactly one of `header`, `query` or `cookie`, with a valid name".to_owned()),
    }
}

/// RFC 9110 `token`: header names and auth schemes.
pub(super) fn is_http_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(crate::routes::is_token_byte)
}

#[cfg(test)]
mod tests;
