//! The authorizer's providers: started once per config, found by
//! [`ProviderId`] or, for a JWS, by its issuer through a map built once.
//! Across a reload, a provider whose settings are unchanged is kept whole,
//! so its key cache, its introspection answers and the verifications
//! remembered against it survive; a changed one starts empty (keeping only
//! its fetched keys when it fetches them the same way).

use std::collections::HashMap;
use std::sync::Arc;

use crate::token::jwt::JwtProvider;
use crate::token::provider::{Provider, ProviderId, ProviderSettings};

/// The providers of one authorizer.
pub(crate) struct Providers {
    list: Vec<Arc<Provider>>,
    /// Providers with keys, by the exact `iss` their JWTs carry.
    by_issuer: HashMap<String, ProviderId>,
}

impl Providers {
    /// Starts `settings` in order: the first is [`ProviderId`] 0. Those of
    /// `previous` are taken over where their settings are the same.
    pub(crate) fn start(
        settings: Vec<ProviderSettings>,
        client: &reqwest::Client,
        roots: &[reqwest::Certificate],
        previous: Option<&Providers>,
    ) -> Providers {
        let list: Vec<Arc<Provider>> = settings
            .into_iter()
            .map(|settings| {
                let old = previous.and_then(|p| p.named(&settings.name));
                match old {
                    Some(old) if *old.settings() == settings => Arc::clone(old),
                    _ => Arc::new(Provider::start(
                        settings,
                        client,
                        roots,
                        old.map(Arc::as_ref),
                    )),
                }
            })
            .collect();
        let by_issuer = list
            .iter()
            .enumerate()
            .filter_map(|(index, provider)| {
                let issuer = provider.jwt()?.issuer().to_owned();
                Some((issuer, ProviderId(index)))
            })
            .collect();
        Providers { list, by_issuer }
    }

    /// The provider with this id. A route's ids are always there; one a
    /// remembered verification carries from before a reload may not be.
    pub(crate) fn get(&self, id: ProviderId) -> Option<&Provider> {
        self.list.get(id.0).map(Arc::as_ref)
    }

    /// The provider that verifies JWTs from `issuer`, with its verifier.
    pub(crate) fn for_issuer(&self, issuer: &str) -> Option<(ProviderId, &Arc<JwtProvider>)> {
        let id = *self.by_issuer.get(issuer)?;
        Some((id, self.get(id)?.jwt()?))
    }

    /// Every provider, in config order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Provider> {
        self.list.iter().map(Arc::as_ref)
    }

    fn named(&self, name: &str) -> Option<&Arc<Provider>> {
        self.list.iter().find(|provider| &**provider.name() == name)
    }
}
