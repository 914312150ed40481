//! The authorizer: one request in, one decision out. It knows nothing of
//! gRPC or Envoy; the edges translate to and from [`AuthzRequest`] and
//! [`Decision`](crate::outcome::Decision), through the one check sequence
//! in [`checkpoint`].
//!
//! A check, top to bottom ([`Authorizer::check_audited`]): normalise host and path
//! ([`request`]); refuse what cannot be matched safely; find the route;
//! take the token from the configured places; find who vouches for it
//! ([`verify`]: the verified-JWT cache, the issuer's keys, or the route's
//! introspection provider); hold its scopes and claims to the route; build
//! the allow ([`grant`]) or the denial in the route's deny shape; log and
//! count it ([`record`]).
//!
//! # Layout
//! - `authorizer`: the [`Authorizer`] and the check itself.
//! - [`settings`]: what an authorizer is built from, routes and policies.
//! - [`request`]: the request as handed over, and as judged.
//! - [`providers`]: the providers, by id and by issuer, kept across reloads.
//! - [`verify`]: who vouches for a token.
//! - [`grant`]: what an allow carries upstream.
//! - [`record`]: the log line and metrics of a decided check.
//! - [`live`]: the authorizer in use, swapped on reload.
//! - [`checkpoint`]: the Check path both edges share.

mod authorizer;
pub(crate) mod checkpoint;
pub(crate) mod grant;
pub(crate) mod live;
pub(crate) mod providers;
pub(crate) mod record;
pub(crate) mod request;
pub(crate) mod settings;
pub(crate) mod verify;

pub use authorizer::Authorizer;
pub(crate) use checkpoint::{Checkpoint, Unanswered};
pub(crate) use live::LiveAuthorizer;
pub use request::AuthzRequest;
