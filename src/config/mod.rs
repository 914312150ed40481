//! Configuration: the YAML file (plus `TOLLGATE_` environment overrides) is
//! read once, validated, and turned into the settings of the parts that use
//! them. Every error names the field that is wrong, so a broken config is
//! refused at start.
//!
//! Each settings type lives in the module that uses it (the authorizer's
//! routes in `authz`, a provider's in `token::provider`, the log and trace
//! settings in `telemetry`, ...); this module only reads the file and fills
//! them in. The listeners' settings are the exception: the entry layer that
//! binds them sits above config, so [`ServerSettings`] is defined here.
//!
//! # Layout
//! - `error`: why a config is refused, naming the field.
//! - `raw`: serde structs that mirror the file one to one.
//! - `values`: durations, secrets, header names and values as written.
//! - `server`: the `server:` section: listeners, limits, TLS, caches.
//! - `telemetry`: the `log:` and `tracing:` sections.
//! - `sources`: `token_sources:`.
//! - `providers`: `providers:`, with the key sources and JWKS schedule;
//!   `introspection` for their `introspection:` sections.
//! - `routes`: `routes:`, their matchers, requirements and cross-checks;
//!   `output` for what routes and `defaults:` send besides claim headers.
//! - `identity`: the `identity:` section.
//! - `binding`: the `binding:` section (client certificates, DPoP) and a
//!   route's `require.binding`.
//! - `audit`: the `audit:` and `metrics:` sections.

mod audit;
mod binding;
mod error;
mod identity;
mod introspection;
mod output;
mod providers;
mod raw;
mod routes;
mod server;
mod sources;
mod telemetry;
mod values;

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format as _, Yaml};

use crate::audit::AuditSettings;
use crate::authz::settings::AuthzSettings;
use crate::telemetry::TelemetrySettings;
pub use error::ConfigError;
use error::load_error;
use raw::RawConfig;
pub(crate) use server::ServerSettings;
pub use values::parse_duration;

/// Top-level keys that `TOLLGATE_<KEY>__...` environment variables may set.
/// Other `TOLLGATE_` variables (such as test settings) are not config.
const ENV_SECTIONS: &[&str] = &["server", "log", "tracing", "defaults", "unmatched", "audit"];

/// The validated configuration, as the parts that use it take it.
pub struct Config {
    /// Listeners, limits, TLS and IdP trust: what the server binds with.
    pub(crate) server: ServerSettings,
    /// Log output and span export.
    pub(crate) telemetry: TelemetrySettings,
    /// What the authorizer decides with.
    pub(crate) authz: AuthzSettings,
    /// The decision audit stream, when configured.
    pub(crate) audit: Option<AuditSettings>,
    /// Things worth telling the operator that do not stop the start.
    pub(crate) warnings: Vec<String>,
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

    /// Section by section; a later section may depend on an earlier one
    /// (routes name providers, deny shapes default to the server's realm).
    fn from_raw(raw: RawConfig, base: &Path) -> Result<Config, ConfigError> {
        let mut warnings = Vec::new();
        let (server, checks) = server::settings(raw.server, base)?;
        let telemetry = telemetry::settings(raw.log, raw.tracing)?;
        let audit = raw
            .audit
            .as_ref()
            .map(|raw| audit::settings(raw, base))
            .transpose()?;
        let client_labels = audit::client_labels(raw.metrics.as_ref())?;
        let token_sources = sources::token_sources(raw.token_sources)?;
        let identity = raw
            .identity
            .map(|raw| identity::settings(raw, base, &mut warnings))
            .transpose()?;
        let providers = providers::providers(raw.providers, base, &mut warnings)?;
        let context = routes::Context {
            providers: &providers,
            realm: checks.realm.clone(),
            path_parameters: checks.path_parameters,
            identity_configured: identity.is_some(),
        };
        let routes = routes::routes(raw.routes, raw.defaults, &context, &mut warnings)?;
        let binding = binding::settings(raw.binding, base)?;
        binding::warn_unprovable(&binding, &routes.routes, &mut warnings);
        if server.http.is_some() && sources::has_query(&token_sources) {
            routes::warn_query_token_in_http_mode(&routes.routes, &mut warnings);
        }
        let authz = AuthzSettings {
            providers,
            token_sources,
            routes: routes.routes,
            unmatched: routes::unmatched(raw.unmatched, routes.default_deny),
            default_identity_headers: routes.default_identity_headers,
            identity,
            token_cache: checks.token_cache,
            limits: checks.limits,
            path_parameters: checks.path_parameters,
            client_labels,
            binding,
        };
        Ok(Config {
            server,
            telemetry,
            authz,
            audit,
            warnings,
        })
    }

    /// Things worth telling the operator that do not stop the start.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Whether HTTP ext_authz mode is on, which needs a listener of its own.
    pub fn http_mode(&self) -> bool {
        self.server.http.is_some()
    }
}

#[cfg(test)]
mod tests;
