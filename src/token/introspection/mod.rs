//! RFC 7662 token introspection: asking the issuer whether an opaque token
//! is active, with the answers cached by a hash of the token.
//!
//! One [`Introspector`] per provider. The endpoint is configured or found in
//! the issuer's metadata (OIDC Discovery, else RFC 8414). Results are cached
//! for at most the configured TTL and never past the token's `exp`; inactive
//! answers briefly; concurrent checks of one uncached token share one call.
//! An endpoint that cannot answer is a fault, never an allow.
//!
//! # Layout
//! - [`settings`]: endpoint, client authentication, timeouts, cache.
//! - [`introspector`]: the cache, single flight and endpoint discovery.
//! - `request`: the HTTP request and the metadata lookup.
//! - [`response`]: the answer, parsed strictly and held to the provider.
//! - [`error`]: why no answer came.

pub(crate) mod error;
pub(crate) mod introspector;
mod request;
pub(crate) mod response;
pub(crate) mod settings;

pub(crate) use introspector::Introspector;
pub(crate) use settings::{CacheSettings, ClientAuth, Endpoint, IntrospectionSettings};
