//! A configured provider at run time: a JWT verifier, an introspector, or
//! both, under one name and issuer.

use std::sync::Arc;
use std::time::Duration;

use super::expectations::Expectations;
use super::introspection::{IntrospectionSettings, Introspector};
use super::jwks::Jwks;
use super::jwt::{JwtProvider, JwtSettings};

/// How often readiness retries finding an introspection endpoint.
const ENDPOINT_RETRY: Duration = Duration::from_secs(5);

/// One token issuer as configured: how its JWTs are verified, how its
/// opaque tokens are introspected, or both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSettings {
    /// Name used by routes and in logs.
    pub name: Arc<str>,
    /// Issuer, audiences and leeway, whichever way a token is judged.
    pub expectations: Expectations,
    /// Local verification of JWTs, when configured.
    pub jwt: Option<JwtSettings>,
    /// RFC 7662 introspection, when configured.
    pub introspection: Option<IntrospectionSettings>,
    /// Claims scopes are read from, in order.
    pub scope_claims: Arc<[String]>,
}

/// A provider's place in the authorizer's list: what routes name providers
/// by, and what a remembered verification says verified it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ProviderId(pub(crate) usize);

/// One issuer, ready to judge its tokens.
pub(crate) struct Provider {
    settings: ProviderSettings,
    jwt: Option<Arc<JwtProvider>>,
    introspection: Option<Introspector>,
}

impl Provider {
    /// Builds the provider, starting its JWKS refresh task if its keys are
    /// remote (so it must run inside a Tokio runtime). `client` fetches keys;
    /// introspection gets a client of its own with the configured connect
    /// timeout, trusting `roots` as `client` does.
    ///
    /// It takes over the key cache (and refresh task) of `previous`, the
    /// provider of the same name in the config being replaced, when that
    /// fetches the same keys the same way: a reload neither refetches nor
    /// waits for keys.
    pub(crate) fn start(
        settings: ProviderSettings,
        client: &reqwest::Client,
        roots: &[reqwest::Certificate],
        previous: Option<&Provider>,
    ) -> Provider {
        let jwt = settings.jwt.as_ref().map(|jwt| {
            let kept = previous
                .and_then(Provider::jwt)
                .map(|jwt| jwt.keys())
                .filter(|keys| keys.fetches_like(&settings.name, &jwt.keys, &jwt.jwks));
            let keys = match kept {
                Some(keys) => keys.clone(),
                None => Jwks::start(
                    settings.name.to_string(),
                    jwt.keys.clone(),
                    jwt.jwks.clone(),
                    client.clone(),
                ),
            };
            Arc::new(JwtProvider::new(
                settings.name.clone(),
                &settings.expectations,
                jwt,
                keys,
            ))
        });
        let introspection = settings.introspection.clone().map(|introspection| {
            let client = introspection_client(&settings.name, &introspection, client, roots);
            Introspector::new(
                settings.name.clone(),
                introspection,
                settings.expectations.clone(),
                client,
            )
        });
        Provider {
            settings,
            jwt,
            introspection,
        }
    }

    /// The configured name.
    pub(crate) fn name(&self) -> &Arc<str> {
        &self.settings.name
    }

    /// The settings it was built from; a reload whose settings for this
    /// provider are equal keeps the provider, caches and all.
    pub(crate) fn settings(&self) -> &ProviderSettings {
        &self.settings
    }

    /// The JWT verifier, when the provider has keys.
    pub(crate) fn jwt(&self) -> Option<&Arc<JwtProvider>> {
        self.jwt.as_ref()
    }

    /// The introspector, when the provider introspects.
    pub(crate) fn introspection(&self) -> Option<&Introspector> {
        self.introspection.as_ref()
    }

    /// Claims scopes are read from, in order.
    pub(crate) fn scope_claims(&self) -> &[String] {
        &self.settings.scope_claims
    }

    /// Completes once the provider can judge tokens: keys loaded at least
    /// once, and the introspection endpoint known. Returns `false` if the
    /// provider shut down first.
    pub(crate) async fn ready(&self) -> bool {
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

/// The introspection client: never redirected, since the request carries
/// the token and the client's credentials, and only the configured (or
/// discovered) endpoint may see them or answer; a 3xx is a fault.
fn introspection_client(
    provider: &str,
    settings: &IntrospectionSettings,
    fallback: &reqwest::Client,
    roots: &[reqwest::Certificate],
) -> reqwest::Client {
    let built = crate::fetch::client_builder_trusting(roots)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(settings.connect_timeout)
        .build();
    match built {
        Ok(built) => built,
        // Only if the TLS backend cannot start, and then `fallback` could
        // not have been built either; refuse every call rather than fall
        // back to a client that follows redirects.
        Err(error) => {
            tracing::error!(provider, %error, "cannot build the introspection client");
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_else(|_| fallback.clone())
        }
    }
}
