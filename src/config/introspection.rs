//! A provider's `introspection` section: endpoint, client authentication,
//! extra headers, timeouts and cache, validated into
//! [`IntrospectionSettings`].

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::error::{ConfigError, invalid};
use super::raw::{RawClientAuth, RawDuration, RawHeaderValue, RawIntrospection};
use super::values::{duration, load_secret};
use crate::fetch::check_key_url;
use crate::token::introspection::{CacheSettings, ClientAuth, Endpoint, IntrospectionSettings};

/// Default total time for one call. Below the 1s ext_authz timeout the
/// examples give Envoy, so a slow IdP is reported by tollgate, by name.
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(800);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Headers tollgate writes itself; overriding them would break the request.
const RESERVED_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
];

pub(super) fn introspection(
    mut raw: RawIntrospection,
    issuer: Option<&str>,
    field: &str,
    base: &Path,
    warnings: &mut Vec<String>,
) -> Result<IntrospectionSettings, ConfigError> {
    let endpoint = endpoint(&raw, issuer, field)?;
    let client_auth = client_auth(&mut raw, field, base)?;
    let headers = headers(raw.headers, &client_auth, field, base, warnings)?;
    let duration = |value: &Option<RawDuration>, name: &str, default: Duration| {
        duration(value, &format!("{field}.{name}"), default)
    };
    let timeout = duration(&raw.timeout, "timeout", DEFAULT_TIMEOUT)?;
    let connect_timeout = duration(
        &raw.connect_timeout,
        "connect_timeout",
        DEFAULT_CONNECT_TIMEOUT.min(timeout),
    )?;
    for (name, value) in [("timeout", timeout), ("connect_timeout", connect_timeout)] {
        if value.is_zero() {
            return Err(invalid(format!("{field}.{name}"), "must be more than 0"));
        }
    }
    let defaults = CacheSettings::default();
    let cache = CacheSettings {
        ttl: duration(&raw.cache.ttl, "cache.ttl", defaults.ttl)?,
        inactive_ttl: duration(
            &raw.cache.inactive_ttl,
            "cache.inactive_ttl",
            defaults.inactive_ttl,
        )?,
        max_entries: raw.cache.max_entries.unwrap_or(defaults.max_entries),
    };
    Ok(IntrospectionSettings {
        endpoint,
        client_auth,
        headers,
        introspect_jwts: raw.introspect_jwts,
        timeout,
        connect_timeout,
        cache,
    })
}

/// Where the endpoint is: configured (https, or http on loopback: tokens
/// are sent to it), else found in the issuer's metadata.
fn endpoint(
    raw: &RawIntrospection,
    issuer: Option<&str>,
    field: &str,
) -> Result<Endpoint, ConfigError> {
    match (&raw.endpoint, issuer) {
        (Some(endpoint), _) => {
            let url = Url::parse(endpoint).map_err(|e| {
                invalid(
                    format!("{field}.endpoint"),
                    format!("`{endpoint}` is not a URL: {e}"),
                )
            })?;
            // Tokens travel in this request: the same rule as for keys.
            check_key_url(&url, None).map_err(|_| {
                invalid(
                    format!("{field}.endpoint"),
                    "must use https (plain http only on localhost): tokens are sent to it",
                )
            })?;
            Ok(Endpoint::Configured(url))
        }
        (None, Some(issuer)) => Ok(Endpoint::Discovered {
            issuer: issuer.to_owned(),
        }),
        (None, None) => Err(invalid(
            format!("{field}.endpoint"),
            "set the endpoint, or the provider's `issuer` so it can be found in the issuer's metadata",
        )),
    }
}

/// How tollgate authenticates to the endpoint: `client_secret_basic` when a
/// client is named, unless `auth_method` says otherwise.
fn client_auth(
    raw: &mut RawIntrospection,
    field: &str,
    base: &Path,
) -> Result<ClientAuth, ConfigError> {
    let secret = raw
        .client_secret
        .as_ref()
        .map(|s| load_secret(s, base))
        .transpose()
        .map_err(|m| invalid(format!("{field}.client_secret"), m))?;
    let method = raw
        .auth_method
        .unwrap_or(if raw.client_id.is_some() || secret.is_some() {
            RawClientAuth::ClientSecretBasic
        } else {
            RawClientAuth::None
        });
    Ok(match (method, raw.client_id.take(), secret) {
        (RawClientAuth::None, None, None) => ClientAuth::None,
        (RawClientAuth::None, _, _) => {
            return Err(invalid(
                format!("{field}.auth_method"),
                "is `none`, but `client_id` or `client_secret` is set",
            ));
        }
        (_, None, _) => {
            return Err(invalid(
                format!("{field}.client_id"),
                "is needed for client_secret_basic and client_secret_post",
            ));
        }
        (_, Some(_), None) => {
            return Err(invalid(
                format!("{field}.client_secret"),
                "is needed with `client_id`: {env: VARIABLE} or {file: PATH}",
            ));
        }
        (RawClientAuth::ClientSecretBasic, Some(client_id), Some(secret)) => {
            ClientAuth::ClientSecretBasic { client_id, secret }
        }
        (RawClientAuth::ClientSecretPost, Some(client_id), Some(secret)) => {
            ClientAuth::ClientSecretPost { client_id, secret }
        }
    })
}

/// The extra request headers; credentials among them are marked sensitive.
fn headers(
    raw: BTreeMap<String, RawHeaderValue>,
    client_auth: &ClientAuth,
    field: &str,
    base: &Path,
    warnings: &mut Vec<String>,
) -> Result<HeaderMap, ConfigError> {
    let mut headers = HeaderMap::new();
    for (name, value) in raw {
        let header_field = format!("{field}.headers.{name}");
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid(&header_field, "is not a valid header name"))?;
        if RESERVED_HEADERS.contains(&header.as_str()) {
            return Err(invalid(&header_field, "is set by tollgate itself"));
        }
        if header == reqwest::header::AUTHORIZATION
            && matches!(client_auth, ClientAuth::ClientSecretBasic { .. })
        {
            return Err(invalid(
                &header_field,
                "conflicts with client_secret_basic; drop `client_id` and `client_secret`, or this header",
            ));
        }
        let value = match value {
            RawHeaderValue::Text(text) => {
                if header == reqwest::header::AUTHORIZATION {
                    warnings.push(format!(
                        "{header_field} holds a credential written in the config; read it with {{env: VARIABLE}} or {{file: PATH}}"
                    ));
                }
                let mut value = HeaderValue::from_str(&text)
                    .map_err(|_| invalid(&header_field, "is not a valid header value"))?;
                value.set_sensitive(header == reqwest::header::AUTHORIZATION);
                value
            }
            RawHeaderValue::Secret(secret) => {
                let secret = load_secret(&secret, base).map_err(|m| invalid(&header_field, m))?;
                let mut value = HeaderValue::from_bytes(secret.expose()).map_err(|_| {
                    invalid(&header_field, "the secret is not a valid header value")
                })?;
                value.set_sensitive(true);
                value
            }
        };
        headers.append(header, value);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    // figment::Jail closures return figment::Error by value, as its API requires.
    #![allow(clippy::result_large_err)]

    use std::path::Path;

    use figment::Jail;

    use crate::config::Config;
    use crate::token::introspection::{ClientAuth, Endpoint};

    fn config(provider: &str, routes: &str) -> Result<Config, String> {
        let yaml = format!("providers:\n{provider}\nroutes:\n{routes}");
        Config::from_yaml(&yaml, Path::new(".")).map_err(|e| e.to_string())
    }

    const ROUTE: &str = "  - {name: r, match: {path: {prefix: /}}}";

    fn refused(provider: &str) -> String {
        match config(provider, ROUTE) {
            Ok(_) => panic!("should be refused:\n{provider}"),
            Err(error) => error,
        }
    }

    #[test]
    fn an_introspection_only_provider_needs_no_issuer_with_an_endpoint() {
        let config = config(
            "  - name: kyma\n    introspection: {endpoint: https://idp.example/introspect}",
            ROUTE,
        )
        .unwrap();
        let provider = &config.authz.providers[0];
        assert!(provider.jwt.is_none());
        assert_eq!(provider.expectations.issuer, None);
        let section = provider.introspection.as_ref().unwrap();
        assert!(
            matches!(section.endpoint, Endpoint::Configured(ref u) if u.path() == "/introspect")
        );
        assert!(matches!(section.client_auth, ClientAuth::None));
        assert_eq!(section.timeout, super::DEFAULT_TIMEOUT);
        assert!(
            config.warnings.iter().all(|w| !w.contains("audiences")),
            "{:?}",
            config.warnings
        );
    }

    #[test]
    fn without_an_endpoint_the_issuer_is_asked() {
        let config = config(
            "  - {name: a, issuer: https://idp.example, introspection: {}}",
            ROUTE,
        )
        .unwrap();
        let section = config.authz.providers[0].introspection.as_ref().unwrap();
        assert!(
            matches!(section.endpoint, Endpoint::Discovered { ref issuer } if issuer == "https://idp.example")
        );
        assert!(
            refused("  - {name: a, introspection: {}}")
                .starts_with("providers[0].introspection.endpoint:")
        );
    }

    #[test]
    fn client_credentials_come_from_env_or_file_and_default_to_basic() {
        Jail::expect_with(|jail| {
            jail.set_env("INTROSPECTION_SECRET", "s3cret");
            jail.create_file("secret.txt", "from-file\n")?;
            let yaml = concat!(
                "providers:\n",
                "  - name: a\n    issuer: https://a.example\n",
                "    introspection: {client_id: api, client_secret: {env: INTROSPECTION_SECRET}}\n",
                "  - name: b\n    issuer: https://b.example\n",
                "    introspection: {client_id: api, auth_method: client_secret_post, client_secret: {file: secret.txt}}\n",
                "routes:\n  - {name: r, providers: [a]}\n",
            );
            let config = Config::from_yaml(yaml, jail.directory()).unwrap();
            let auth = |i: usize| {
                config.authz.providers[i]
                    .introspection
                    .as_ref()
                    .unwrap()
                    .client_auth
                    .clone()
            };
            assert!(
                matches!(auth(0), ClientAuth::ClientSecretBasic { client_id, secret } if client_id == "api" && secret.expose() == b"s3cret")
            );
            assert!(
                matches!(auth(1), ClientAuth::ClientSecretPost { secret, .. } if secret.expose() == b"from-file")
            );
            Ok(())
        });
    }

    #[test]
    fn bad_sections_name_their_field() {
        let cases = [
            (
                "introspection: {endpoint: http://idp.example/i}",
                "providers[0].introspection.endpoint:",
            ),
            (
                "introspection: {endpoint: not a url}",
                "providers[0].introspection.endpoint:",
            ),
            (
                "introspection: {endpoint: https://i.example, client_id: x}",
                "providers[0].introspection.client_secret:",
            ),
            (
                "introspection: {endpoint: https://i.example, client_secret: {env: HOME}}",
                "providers[0].introspection.client_id:",
            ),
            (
                "introspection: {endpoint: https://i.example, auth_method: none, client_id: x}",
                "providers[0].introspection.auth_method:",
            ),
            (
                "introspection: {endpoint: https://i.example, auth_method: private_key_jwt}",
                "providers[0].introspection.auth_method",
            ),
            (
                "introspection: {endpoint: https://i.example, timeout: 0s}",
                "providers[0].introspection.timeout:",
            ),
            (
                "introspection: {endpoint: https://i.example, cache: {ttl: 5}}",
                "providers[0].introspection.cache.ttl:",
            ),
            (
                "introspection: {endpoint: https://i.example, headers: {content-type: x}}",
                "providers[0].introspection.headers.content-type:",
            ),
            (
                "introspection: {endpoint: https://i.example, headers: {\"bad name\": x}}",
                "providers[0].introspection.headers.bad name:",
            ),
            (
                "introspection: {endpoint: https://i.example, introspect_jwts: true}",
                "providers[0].introspection.introspect_jwts:",
            ),
            (
                "introspection: {endpoint: https://i.example}, algorithms: [RS256]",
                "providers[0].algorithms:",
            ),
            (
                "introspection: {endpoint: https://i.example}, jwks_uri: https://i.example/jwks",
                "providers[0].issuer:",
            ),
        ];
        for (setting, field) in cases {
            let error = refused(&format!("  - {{name: a, {setting}}}"));
            assert!(error.starts_with(field), "{setting}\n  gave: {error}");
        }
    }

    #[test]
    fn a_literal_authorization_header_is_warned_about() {
        let config = config(
            "  - name: kyma\n    introspection: {endpoint: https://i.example, headers: {Authorization: Basic abc}}",
            ROUTE,
        )
        .unwrap();
        assert!(
            config
                .warnings
                .iter()
                .any(|w| w.contains("headers.Authorization") && !w.contains("abc")),
            "{:?}",
            config.warnings
        );
        let section = config.authz.providers[0].introspection.as_ref().unwrap();
        assert!(section.headers["authorization"].is_sensitive());
    }

    #[test]
    fn a_route_accepts_at_most_one_introspection_provider() {
        let providers = concat!(
            "  - {name: one, introspection: {endpoint: https://one.example/i}}\n",
            "  - {name: two, introspection: {endpoint: https://two.example/i}}",
        );
        let error = config(providers, ROUTE).err().unwrap();
        assert!(
            error.starts_with("routes[0].providers:") && error.contains("one and two"),
            "{error}"
        );
        config(providers, "  - {name: r, providers: [two]}").unwrap();
    }
}
