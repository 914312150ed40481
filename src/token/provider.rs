//! A configured provider at run time: a JWT verifier, an introspector, or
//! both, under one name and issuer.

use std::sync::Arc;
use std::time::Duration;

use super::fetch;
use super::introspection::Introspector;
use super::jwks::Jwks;
use super::jwt::JwtProvider;
use crate::config::ProviderSettings;

/// How often readiness retries finding an introspection endpoint.
const ENDPOINT_RETRY: Duration = Duration::from_secs(5);

/// One issuer, ready to judge its tokens.
pub struct Provider {
    name: Arc<str>,
    issuer: Option<String>,
    jwt: Option<JwtProvider>,
    introspection: Option<Introspector>,
    scope_claims: Arc<[String]>,
}

impl Provider {
    /// Builds the provider, starting its JWKS refresh task if its keys are
    /// remote (so it must run inside a Tokio runtime). `client` fetches keys;
    /// introspection gets a client of its own with the configured connect
    /// timeout.
    pub fn start(settings: ProviderSettings, client: &reqwest::Client) -> Provider {
        Provider::start_reusing(settings, client, &[])
    }

    /// As [`Provider::start`], but takes over the key cache (and refresh
    /// task) of a provider in `previous` that fetches the same keys the same
    /// way, so a config reload neither refetches nor waits for keys.
    pub fn start_reusing(
        settings: ProviderSettings,
        client: &reqwest::Client,
        previous: &[Provider],
    ) -> Provider {
        let jwt = settings.jwt.as_ref().map(|jwt| {
            let kept = previous
                .iter()
                .filter_map(Provider::jwt)
                .map(JwtProvider::keys)
                .find(|keys| keys.fetches_like(&settings.name, &jwt.keys, &jwt.jwks));
            let keys = match kept {
                Some(keys) => keys.clone(),
                None => Jwks::start(
                    settings.name.to_string(),
                    jwt.keys.clone(),
                    jwt.jwks.clone(),
                    client.clone(),
                ),
            };
            JwtProvider::new(&settings, jwt, keys)
        });
        let introspection = settings.introspection.clone().map(|introspection| {
            // Never redirected: the request carries the token and the
            // client's credentials, and only the configured (or discovered)
            // endpoint may see them or answer. A 3xx is a fault.
            let built = fetch::client_builder_trusting(&settings.idp_ca_certificates)
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(introspection.connect_timeout)
                .build();
            let client = match built {
                Ok(built) => built,
                // Only if the TLS backend cannot start, and then `client`
                // could not have been built either; refuse every call
                // rather than fall back to a client that follows redirects.
                Err(error) => {
                    tracing::error!(provider = %settings.name, %error, "cannot build the introspection client");
                    reqwest::Client::builder()
                        .redirect(reqwest::redirect::Policy::none())
                        .build()
                        .unwrap_or_else(|_| client.clone())
                }
            };
            Introspector::new(
                settings.name.clone(),
                introspection,
                settings.expectations(),
                client,
            )
        });
        Provider {
            name: settings.name,
            issuer: settings.issuer,
            jwt,
            introspection,
            scope_claims: settings.scope_claims,
        }
    }

    /// The configured name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// The configured issuer, if any.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The JWT verifier, when the provider has keys.
    pub fn jwt(&self) -> Option<&JwtProvider> {
        self.jwt.as_ref()
    }

    /// The introspector, when the provider introspects.
    pub fn introspection(&self) -> Option<&Introspector> {
        self.introspection.as_ref()
    }

    /// Claims scopes are read from, in order.
    pub fn scope_claims(&self) -> &[String] {
        &self.scope_claims
    }

    /// Completes once the provider can judge tokens: keys loaded at least
    /// once, and the introspection endpoint known. Returns `false` if the
    /// provider shut down first.
    pub async fn ready(&self) -> bool {
        if let Some(jwt) = &self.jwt {
            let mut loaded = jwt.keys().loaded();
            if loaded.wait_for(|loaded| *loaded).await.is_err() {
                return false;
            }
        }
        if let Some(introspection) = &self.introspection {
            introspection.ready(ENDPOINT_RETRY).await;
        }
        true
    }
}
