//! The `server:` section: where tollgate listens and with which limits and
//! TLS (the entry layer's [`ServerSettings`]), and the settings of the
//! check itself (realm, token and header limits, path parameters, the
//! verified-token cache), which the authorizer takes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::error::{ConfigError, invalid};
use super::raw::{RawPathParameters, RawServer, RawTokenCache};
use super::values::{check_realm, duration, positive, positive_duration};
use crate::authz::settings::RequestLimits;
use crate::error_chain::ErrorChain;
use crate::limits::CheckLimits;
use crate::routes::PathParameters;
use crate::tls::{ServerTls, TlsSettings};
use crate::token::verified::VerifiedCacheSettings;

/// What the server binds and serves with. Only a restart applies a change
/// to these; a reload warns when they differ.
#[derive(Clone)]
pub(crate) struct ServerSettings {
    /// Where the gRPC Check service listens.
    pub(crate) grpc_listen: SocketAddr,
    /// HTTP ext_authz mode, when enabled.
    pub(crate) http: Option<HttpModeSettings>,
    /// Where the admin endpoints listen.
    pub(crate) admin_listen: SocketAddr,
    /// Checks decided at once, and how long each may take.
    pub(crate) limits: CheckLimits,
    /// How long in-flight calls may finish after shutdown starts.
    pub(crate) shutdown_grace: Duration,
    /// TLS on the gRPC and HTTP-mode listeners, the files loaded; plaintext
    /// when `None`.
    pub(crate) tls: Option<Arc<ServerTls>>,
    /// CA certificates trusted for IdP connections besides the system's.
    pub(crate) idp_roots: Vec<reqwest::Certificate>,
    /// Where they were read from, to tell whether a reload changes them.
    pub(crate) idp_ca_file: Option<PathBuf>,
}

/// HTTP ext_authz mode (Envoy's `http_service`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpModeSettings {
    /// Where it listens.
    pub(crate) listen: SocketAddr,
    /// Stripped from request paths (Envoy `http_service.path_prefix`).
    pub(crate) path_prefix: Option<Arc<str>>,
}

/// Equal when a restart would bind and serve the same, comparing the TLS
/// files and the IdP CA by where they are read from: the certificate watch
/// picks up new TLS contents by itself; new contents of the same CA file,
/// like a new path, wait for a restart.
impl PartialEq for ServerSettings {
    fn eq(&self, other: &ServerSettings) -> bool {
        self.grpc_listen == other.grpc_listen
            && self.http == other.http
            && self.admin_listen == other.admin_listen
            && self.limits == other.limits
            && self.shutdown_grace == other.shutdown_grace
            && self.tls.as_ref().map(|tls| tls.settings())
                == other.tls.as_ref().map(|tls| tls.settings())
            && self.idp_ca_file == other.idp_ca_file
    }
}

/// The check's own settings from `server:`.
pub(super) struct CheckSettings {
    /// `realm` in `WWW-Authenticate`, unless a route's `deny:` sets another.
    pub(super) realm: Option<String>,
    pub(super) limits: RequestLimits,
    pub(super) path_parameters: PathParameters,
    pub(super) token_cache: VerifiedCacheSettings,
}

/// The section, validated; files (TLS, the IdP CA) are read here, once.
pub(super) fn settings(
    raw: RawServer,
    base: &Path,
) -> Result<(ServerSettings, CheckSettings), ConfigError> {
    check_realm(raw.realm.as_deref(), "server.realm")?;
    let checks = CheckSettings {
        realm: raw.realm,
        limits: RequestLimits {
            max_token_bytes: raw.max_token_bytes.unwrap_or(16 * 1024),
            max_headers: positive(raw.max_headers, 200, "server.max_headers")?,
        },
        path_parameters: match raw.path_parameters {
            RawPathParameters::Reject => PathParameters::Reject,
            RawPathParameters::Keep => PathParameters::Keep,
            RawPathParameters::Strip => PathParameters::Strip,
        },
        token_cache: token_cache(&raw.token_cache)?,
    };
    // Checked even when HTTP mode is off, so turning it on later finds no
    // surprise.
    let path_prefix = http_path_prefix(raw.http_path_prefix)?;
    let http = match raw.http_enabled {
        false => None,
        true => Some(HttpModeSettings {
            listen: listen_address(&raw.http_listen, "server.http_listen", 9192)?,
            path_prefix,
        }),
    };
    let tls = raw
        .tls
        .map(|tls| {
            let settings = TlsSettings {
                cert_file: base.join(tls.cert_file),
                key_file: base.join(tls.key_file),
                client_ca_file: tls.client_ca_file.map(|path| base.join(path)),
            };
            ServerTls::load(settings)
                .map(Arc::new)
                .map_err(|e| invalid("server.tls", ErrorChain(&e)))
        })
        .transpose()?;
    let idp_ca_file = raw.idp_ca_file.map(|path| base.join(path));
    let idp_roots = match &idp_ca_file {
        None => Vec::new(),
        Some(path) => ca_bundle(path).map_err(|m| invalid("server.idp_ca_file", m))?,
    };
    let server = ServerSettings {
        grpc_listen: listen_address(&raw.grpc_listen, "server.grpc_listen", 9191)?,
        http,
        admin_listen: listen_address(&raw.admin_listen, "server.admin_listen", 9193)?,
        limits: CheckLimits {
            max_concurrent: positive(
                raw.max_concurrent_checks,
                10_000,
                "server.max_concurrent_checks",
            )?,
            timeout: positive_duration(
                &raw.check_timeout,
                "server.check_timeout",
                Duration::from_secs(10),
            )?,
        },
        shutdown_grace: positive_duration(
            &raw.shutdown_grace,
            "server.shutdown_grace",
            Duration::from_secs(10),
        )?,
        tls,
        idp_roots,
        idp_ca_file,
    };
    Ok((server, checks))
}

fn token_cache(raw: &RawTokenCache) -> Result<VerifiedCacheSettings, ConfigError> {
    let defaults = VerifiedCacheSettings::default();
    Ok(VerifiedCacheSettings {
        max_entries: raw.max_entries.unwrap_or(defaults.max_entries),
        ttl: duration(&raw.ttl, "server.token_cache.ttl", defaults.ttl)?,
    })
}

fn http_path_prefix(prefix: Option<String>) -> Result<Option<Arc<str>>, ConfigError> {
    match prefix {
        Some(prefix) if !prefix.starts_with('/') || prefix.ends_with('/') => Err(invalid(
            "server.http_path_prefix",
            "must start with `/` and not end with one, like Envoy's `path_prefix: /authz`",
        )),
        other => Ok(other.map(Arc::from)),
    }
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
