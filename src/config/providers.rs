//! `providers:`: key sources, algorithm allow-lists, audiences, leeway and
//! the JWKS schedule, validated into each provider's [`ProviderSettings`].

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jsonwebtoken::Algorithm;

use super::error::{ConfigError, invalid};
use super::introspection;
use super::raw::{self, RawProvider};
use super::values::{duration, load_secret};
use crate::fetch::check_key_url;
use crate::secret::Secret;
use crate::token::expectations::Expectations;
use crate::token::jwk::{KeySet, RSA_ALGORITHMS};
use crate::token::jwks::{JwksSettings, KeySource};
use crate::token::jwt::JwtSettings;
use crate::token::provider::ProviderSettings;

/// Algorithms accepted when a provider lists none: every asymmetric one a
/// JWKS key can carry.
fn default_algorithms() -> Vec<Algorithm> {
    let mut algorithms = RSA_ALGORITHMS.to_vec();
    algorithms.extend([Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA]);
    algorithms
}

const HMAC_ALGORITHMS: &[Algorithm] = &[Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];

/// Every provider, in order (a route's [`ProviderId`](crate::token::provider::ProviderId)
/// is its place here); names and issuers are unique.
pub(super) fn providers(
    raw: Vec<RawProvider>,
    base: &Path,
    warnings: &mut Vec<String>,
) -> Result<Vec<ProviderSettings>, ConfigError> {
    let mut names = HashSet::new();
    let mut issuers = HashSet::new();
    let mut providers = Vec::with_capacity(raw.len());
    for (i, p) in raw.into_iter().enumerate() {
        let field = format!("providers[{i}]");
        if !names.insert(p.name.clone()) {
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
        providers.push(provider(p, &field, base, warnings)?);
    }
    Ok(providers)
}

fn provider(
    mut raw: RawProvider,
    field: &str,
    base: &Path,
    warnings: &mut Vec<String>,
) -> Result<ProviderSettings, ConfigError> {
    if raw.name.is_empty() {
        return Err(invalid(format!("{field}.name"), "must not be empty"));
    }
    if raw.issuer.as_deref().is_some_and(str::is_empty) {
        return Err(invalid(format!("{field}.issuer"), "must not be empty"));
    }
    let introspection = raw
        .introspection
        .take()
        .map(|section| {
            introspection::introspection(
                section,
                raw.issuer.as_deref(),
                &format!("{field}.introspection"),
                base,
                warnings,
            )
        })
        .transpose()?;
    let jwt = jwt(&mut raw, introspection.is_some(), field, base, warnings)?;
    if jwt.is_some() && raw.issuer.is_none() {
        return Err(invalid(
            format!("{field}.issuer"),
            "is needed to verify JWTs: the exact `iss` the tokens carry",
        ));
    }
    if jwt.is_none()
        && let Some(section) = &introspection
        && section.introspect_jwts
    {
        return Err(invalid(
            format!("{field}.introspection.introspect_jwts"),
            "needs a key source: without one, every token of this provider is introspected already",
        ));
    }
    let leeway = duration(
        &raw.leeway,
        &format!("{field}.leeway"),
        Duration::from_secs(30),
    )?;
    if leeway > Duration::from_secs(300) {
        return Err(invalid(
            format!("{field}.leeway"),
            "at most 5m; a longer leeway lets expired tokens through",
        ));
    }
    let scope_claims = raw
        .scope_claims
        .unwrap_or_else(|| vec!["scope".to_owned(), "scp".to_owned()]);
    if scope_claims.is_empty() {
        return Err(invalid(
            format!("{field}.scope_claims"),
            "list at least one claim",
        ));
    }
    Ok(ProviderSettings {
        name: raw.name.into(),
        expectations: Expectations {
            issuer: raw.issuer,
            audiences: raw.audiences,
            leeway,
        },
        jwt,
        introspection,
        scope_claims: scope_claims.into(),
    })
}

/// How the provider's JWTs are verified; `None` for a provider that only
/// introspects (`introspects`), and an error for one that can do neither.
fn jwt(
    raw: &mut RawProvider,
    introspects: bool,
    field: &str,
    base: &Path,
    warnings: &mut Vec<String>,
) -> Result<Option<JwtSettings>, ConfigError> {
    let hmac_secret = raw
        .hmac_secret
        .as_ref()
        .map(|s| load_secret(s, base))
        .transpose()
        .map_err(|m| invalid(format!("{field}.hmac_secret"), m))?;
    let sources = [
        raw.discovery,
        raw.jwks_uri.is_some(),
        raw.jwks.is_some(),
        raw.jwks_file.is_some(),
    ];
    let keys = match sources.iter().filter(|s| **s).count() {
        0 if hmac_secret.is_some() => KeySource::Static(KeySet::default()),
        0 if introspects => {
            if raw.algorithms.is_some() {
                return Err(invalid(
                    format!("{field}.algorithms"),
                    "applies to JWTs, and this provider verifies none: add a key source or drop it",
                ));
            }
            return Ok(None);
        }
        1 => key_source(raw, field, base, warnings)?,
        0 => {
            return Err(invalid(
                field,
                "needs a key source (`discovery: true`, `jwks_uri`, `jwks`, `jwks_file` or `hmac_secret`) or `introspection`",
            ));
        }
        _ => {
            return Err(invalid(
                field,
                "set only one of `discovery`, `jwks_uri`, `jwks` and `jwks_file`",
            ));
        }
    };
    jwt_settings(raw, keys, hmac_secret, field, warnings).map(Some)
}

fn jwt_settings(
    raw: &mut RawProvider,
    keys: KeySource,
    hmac_secret: Option<Secret>,
    field: &str,
    warnings: &mut Vec<String>,
) -> Result<JwtSettings, ConfigError> {
    let algorithms = match raw.algorithms.take() {
        // A secret alone: every HMAC algorithm the secret is long enough for.
        None if hmac_secret.is_some() && matches!(&keys, KeySource::Static(k) if k.is_empty()) => {
            let bytes = hmac_secret.as_ref().map_or(0, |s| s.expose().len());
            HMAC_ALGORITHMS
                .iter()
                .copied()
                .filter(|&a| hmac_key_bytes(a) <= bytes)
                .collect()
        }
        None => default_algorithms(),
        Some(list) if list.is_empty() => {
            return Err(invalid(
                format!("{field}.algorithms"),
                "list at least one algorithm",
            ));
        }
        Some(list) => list
            .iter()
            .map(|name| algorithm(name, hmac_secret.is_some()))
            .collect::<Result<_, _>>()
            .map_err(|m| invalid(format!("{field}.algorithms"), m))?,
    };
    if let Some(secret) = &hmac_secret {
        let needed = algorithms
            .iter()
            .map(|&a| hmac_key_bytes(a))
            .max()
            .unwrap_or(0)
            .max(32);
        if secret.expose().len() < needed {
            return Err(invalid(
                format!("{field}.hmac_secret"),
                format!(
                    "is {} bytes; HMAC keys must be at least as long as the hash (RFC 7518 §3.2): {needed} bytes here",
                    secret.expose().len()
                ),
            ));
        }
    }
    if raw.audiences.is_empty() {
        warnings.push(format!(
            "{field}.audiences is empty: any token from {} is accepted whatever its audience, ID tokens included",
            raw.issuer.as_deref().unwrap_or("this issuer")
        ));
    }
    Ok(JwtSettings {
        keys,
        hmac_secret,
        algorithms,
        jwks: jwks_settings(&raw.jwks_cache, field)?,
    })
}

/// The RFC 7518 §3.2 minimum key length of an HMAC algorithm; 0 for others.
fn hmac_key_bytes(algorithm: Algorithm) -> usize {
    match algorithm {
        Algorithm::HS256 => 32,
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => 0,
    }
}

fn key_source(
    raw: &RawProvider,
    field: &str,
    base: &Path,
    warnings: &mut Vec<String>,
) -> Result<KeySource, ConfigError> {
    if raw.discovery {
        let Some(issuer) = &raw.issuer else {
            return Err(invalid(
                format!("{field}.issuer"),
                "is needed for `discovery: true`",
            ));
        };
        check_fetch_url(issuer).map_err(|m| invalid(format!("{field}.issuer"), m))?;
        return Ok(KeySource::Discovery {
            issuer: issuer.clone(),
        });
    }
    if let Some(uri) = &raw.jwks_uri {
        check_fetch_url(uri).map_err(|m| invalid(format!("{field}.jwks_uri"), m))?;
        return Ok(KeySource::JwksUri(uri.clone()));
    }
    let (document, key_field) = match (&raw.jwks, &raw.jwks_file) {
        (Some(inline), _) => (
            serde_json::to_vec(inline).map_err(|e| invalid(format!("{field}.jwks"), e))?,
            format!("{field}.jwks"),
        ),
        (None, Some(file)) => {
            let path: PathBuf = base.join(file);
            let bytes = std::fs::read(&path).map_err(|e| {
                invalid(
                    format!("{field}.jwks_file"),
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            (bytes, format!("{field}.jwks_file"))
        }
        (None, None) => unreachable!("key_source is called with exactly one source set"),
    };
    let (keys, skipped) = KeySet::from_json(&document).map_err(|e| invalid(&key_field, e))?;
    for skip in skipped {
        warnings.push(format!(
            "{key_field}: key {} skipped: {}",
            skip.kid.as_deref().unwrap_or("(no kid)"),
            skip.reason
        ));
    }
    if keys.is_empty() {
        return Err(invalid(
            key_field,
            "holds no key usable for verifying signatures",
        ));
    }
    Ok(KeySource::Static(keys))
}

fn check_fetch_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    check_key_url(&parsed, None)
}

fn algorithm(name: &str, has_secret: bool) -> Result<Algorithm, String> {
    if name.eq_ignore_ascii_case("none") {
        return Err("`none` is never accepted".to_owned());
    }
    let algorithm: Algorithm = name
        .parse()
        .map_err(|_| format!("unknown algorithm `{name}`"))?;
    if HMAC_ALGORITHMS.contains(&algorithm) && !has_secret {
        return Err(format!(
            "`{name}` needs `hmac_secret`; HMAC is never verified with public keys"
        ));
    }
    Ok(algorithm)
}

fn jwks_settings(raw: &raw::RawJwksCache, field: &str) -> Result<JwksSettings, ConfigError> {
    let defaults = JwksSettings::default();
    let get = |value: &Option<raw::RawDuration>, name: &str, default: Duration| {
        duration(value, &format!("{field}.jwks_cache.{name}"), default)
    };
    let settings = JwksSettings {
        refresh_interval: get(
            &raw.refresh_interval,
            "refresh_interval",
            defaults.refresh_interval,
        )?,
        min_refresh_interval: get(
            &raw.min_refresh_interval,
            "min_refresh_interval",
            defaults.min_refresh_interval,
        )?,
        max_refresh_interval: get(
            &raw.max_refresh_interval,
            "max_refresh_interval",
            defaults.max_refresh_interval,
        )?,
        unknown_kid_refetch_interval: get(
            &raw.unknown_kid_refetch_interval,
            "unknown_kid_refetch_interval",
            defaults.unknown_kid_refetch_interval,
        )?,
        max_stale: get(&raw.max_stale, "max_stale", defaults.max_stale)?,
        retry_interval: get(
            &raw.retry_interval,
            "retry_interval",
            defaults.retry_interval,
        )?,
        fetch_timeout: get(&raw.fetch_timeout, "fetch_timeout", defaults.fetch_timeout)?,
    };
    if settings.min_refresh_interval > settings.max_refresh_interval {
        return Err(invalid(
            format!("{field}.jwks_cache.min_refresh_interval"),
            "is longer than max_refresh_interval",
        ));
    }
    if settings.fetch_timeout.is_zero() {
        return Err(invalid(
            format!("{field}.jwks_cache.fetch_timeout"),
            "must be more than 0",
        ));
    }
    // Shorter intervals would have tollgate hammer an IdP, above all a
    // failing one, and let forged kids drive a fetch each.
    for (name, value) in [
        ("refresh_interval", settings.refresh_interval),
        ("min_refresh_interval", settings.min_refresh_interval),
        ("retry_interval", settings.retry_interval),
        (
            "unknown_kid_refetch_interval",
            settings.unknown_kid_refetch_interval,
        ),
    ] {
        if value < Duration::from_secs(1) {
            return Err(invalid(
                format!("{field}.jwks_cache.{name}"),
                "must be at least 1s",
            ));
        }
    }
    Ok(settings)
}
