//! What the authorizer is configured with: the providers, where tokens are
//! read, the routes with their policies, and the limits of a checked
//! request. `config` fills these in from the file; the authorizer derives
//! its tables from them once, when it is built.

use std::sync::Arc;

use crate::binding::{BindingSettings, RouteBinding};
use crate::claims::{ClaimPath, Requirements};
use crate::headers::HeaderMapping;
use crate::identity::{IdentitySettings, RouteIdentity};
use crate::metrics::ClientLabels;
use crate::outcome::{Denial, DenyReason, DenyShape};
use crate::routes::{PathParameters, RouteMatcher};
use crate::token::extract::TokenSource;
use crate::token::provider::{ProviderId, ProviderSettings};
use crate::token::verified::VerifiedCacheSettings;

/// Everything one authorizer decides with.
pub(crate) struct AuthzSettings {
    /// Token issuers; a route names them by [`ProviderId`], their place here.
    pub(crate) providers: Vec<ProviderSettings>,
    /// Where tokens are looked for, in order.
    pub(crate) token_sources: Vec<TokenSource>,
    /// Routes in file order; the first match wins.
    pub(crate) routes: Vec<Route>,
    /// What happens to a request no route matches.
    pub(crate) unmatched: Unmatched,
    /// Headers `defaults:` fills, from claims or with fixed values: like
    /// every route's, they are never taken from the client, whichever route
    /// (or none) a request takes.
    pub(crate) default_identity_headers: Vec<String>,
    /// The key upstream identity tokens are signed with, if configured.
    pub(crate) identity: Option<IdentitySettings>,
    /// The verified-JWT cache.
    pub(crate) token_cache: VerifiedCacheSettings,
    /// Bounds on what a checked request may carry.
    pub(crate) limits: RequestLimits,
    /// What `;` in a request path means.
    pub(crate) path_parameters: PathParameters,
    /// Which callers get a `client` metrics label of their own.
    pub(crate) client_labels: ClientLabels,
    /// Client certificate sources and DPoP proof checks, for bound tokens.
    pub(crate) binding: BindingSettings,
}

/// Bounds on a checked request, refused before any parsing past them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestLimits {
    /// Longest token accepted, in bytes.
    pub(crate) max_token_bytes: usize,
    /// Most header lines a checked request may carry; more is a 400.
    pub(crate) max_headers: usize,
}

/// The requests no route matches.
#[derive(Debug, Clone)]
pub(crate) struct Unmatched {
    /// Let them through (anonymously) rather than deny them.
    pub(crate) allow: bool,
    /// How their denies look, and those of requests refused before a route
    /// is known (a bad path, too many headers).
    pub(crate) deny: Arc<DenyShape>,
}

/// One route: what it matches and what it demands.
pub(crate) struct Route {
    /// What requests it applies to.
    pub(crate) matcher: RouteMatcher,
    /// What it demands of them.
    pub(crate) policy: RoutePolicy,
}

/// What a route demands of a request, and what it sends upstream.
#[derive(Debug)]
pub(crate) struct RoutePolicy {
    /// Name used in logs and metrics.
    pub(crate) name: Arc<str>,
    /// The providers whose tokens it accepts, sorted.
    pub(crate) providers: Vec<ProviderId>,
    /// No token needed.
    pub(crate) anonymous: bool,
    /// Scopes and claims the token must have.
    pub(crate) require: Requirements,
    /// How the token must be bound to its caller.
    pub(crate) binding: RouteBinding,
    /// Headers set on the upstream request from claims.
    pub(crate) upstream_headers: Arc<[HeaderMapping]>,
    /// Remove the headers tokens are read from before the request goes upstream.
    pub(crate) remove_token_header: bool,
    /// Joins array claims rendered into one header.
    pub(crate) claim_separator: Arc<str>,
    /// Static headers, removals, deny shape, dry run, signed identity.
    pub(crate) output: Arc<RouteOutput>,
}

impl RoutePolicy {
    /// Whether tokens of `provider` are accepted here.
    pub(crate) fn accepts(&self, provider: ProviderId) -> bool {
        self.providers.binary_search(&provider).is_ok()
    }

    /// A refusal on this route, in its deny shape.
    pub(crate) fn deny(&self, reason: DenyReason) -> Denial {
        Denial::new(reason, Some(self.name.clone()), self.output.deny.clone())
    }
}

/// What a route sends besides its claim headers.
#[derive(Debug, Clone, Default)]
pub(crate) struct RouteOutput {
    /// Set to fixed values on every allow.
    pub(crate) static_headers: Vec<(String, String)>,
    /// Set to the caller's access token (the oauth2-proxy preset).
    pub(crate) access_token_header: Option<String>,
    /// Removed from the request besides identity and token headers.
    pub(crate) remove_headers: Vec<String>,
    /// Added to the client's response on an allow.
    pub(crate) response_headers: Vec<(String, String)>,
    /// Claims returned as dynamic metadata, keyed by their dotted path.
    pub(crate) metadata_claims: Vec<ClaimPath>,
    /// How denies look.
    pub(crate) deny: Arc<DenyShape>,
    /// Deny decisions are logged, not enforced.
    pub(crate) dry_run: bool,
    /// The signed identity token, when the route asks for one.
    pub(crate) identity: Option<RouteIdentity>,
}
