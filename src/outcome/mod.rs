//! What a check comes to: a [`Decision`] (allow with its [`Grant`], or deny
//! with its [`Denial`]), or a [`Fault`] when it cannot be decided. A leaf:
//! the authorizer builds these, the edges put them on the wire, and the one
//! table in [`reason`] says how each deny reason looks there.
//!
//! # Layout
//! - [`reason`]: why a request is refused ([`DenyReason`], [`TokenProblem`]),
//!   and each reason's wire form: status, challenge, body, label.
//! - [`reply`]: how a route's denies look ([`DenyShape`]) and the reply a
//!   denial becomes.
//! - [`decision`]: [`Decision`], [`Grant`], [`Denial`] and the [`Caller`].
//! - [`fault`]: a check that cannot be decided; Envoy's failure mode decides.

pub(crate) mod decision;
pub(crate) mod fault;
pub(crate) mod reason;
pub(crate) mod reply;

pub use decision::{Bound, Caller, Decision, Denial, Grant};
pub(crate) use fault::{Fault, FaultKind};
pub use reason::{DenyReason, ProofProblem, TokenProblem};
pub(crate) use reply::DenyBody;
pub use reply::{AuthScheme, DenyShape};
