//! Tokens: where they are found in a request, how a JWT is verified against
//! its issuer's keys, and how an opaque token is introspected.
//!
//! # Layout
//! - [`extract`]: the configured places a token is read from, and the rule
//!   that a request carries at most one.
//! - [`expectations`]: the issuer, audiences and leeway every token of a
//!   provider is held to.
//! - [`jwt`]: JWS parsing and verification for one provider.
//! - `members`: refusing JOSE JSON that repeats a member name.
//! - [`jwk`]: JWKS documents to verification keys.
//! - [`jwks`]: where keys come from, and the cache that keeps them fresh.
//! - [`introspection`]: RFC 7662, with its answer caches.
//! - [`provider`]: a configured provider at run time.
//! - [`verified`]: verified JWTs, remembered by a hash of the token.

pub(crate) mod expectations;
pub(crate) mod extract;
pub(crate) mod introspection;
pub(crate) mod jwk;
pub(crate) mod jwks;
pub(crate) mod jwt;
pub(crate) mod members;
pub(crate) mod provider;
pub(crate) mod verified;
