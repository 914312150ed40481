//! Route matching: which configured route a request's host, method and path
//! select. Security matters here: a path trick must never carry a request
//! past the route meant for it.
//!
//! The authorizer canonicalises the request once ([`normalize_host`],
//! [`normalize_path`](normalize::normalize_path)), builds a [`RequestTarget`], and asks the
//! [`RouteTable`] for the first route, in config order, whose
//! [`RouteMatcher`] matches. A path that cannot be normalised matches no
//! route; the caller decides what that means (it should deny).
//!
//! # Hosts
//! - An empty list, or an entry `*`, matches any host.
//! - `api.example.com` matches that host only; case and port are ignored.
//! - `*.example.com` matches `a.example.com` and `a.b.example.com`, never
//!   `example.com`. `*` anywhere else is a config error, as is a port.
//! - IPv6 literals are written `[::1]` or `::1`.
//! - Requests: [`normalize_host`] lower-cases the `:authority`, strips a
//!   numeric port and one trailing dot (`Example.COM:8443` -> `example.com`,
//!   `[::1]:80` -> `::1`, `host.` -> `host`), and refuses an authority that
//!   does not parse so (`host:abc`, `host:80:80`, `a..b`), which a backend
//!   might read as another host.
//!
//! # Methods
//! - An empty list matches any method; entries must be RFC 9110 tokens and
//!   compare upper-case (`get` in config matches `GET`).
//!
//! # Path normalisation
//! [`normalize_path`](normalize::normalize_path) turns Envoy's `:path` into the canonical path every
//! matcher sees:
//! - cut at the first `?` or `#`; the path must then start with `/`;
//! - percent-decode once (`%61dmin` -> `admin`), refusing malformed escapes
//!   (`%zz`, `%4`), encoded `/` and `\` (`%2F`, `%5C`), a literal `\`,
//!   control characters (also `%00`) and non-UTF-8 results;
//! - merge repeated slashes, drop `.` and resolve `..` (RFC 3986 §5.2.4;
//!   `..` at the root stays there), refusing `..;x` / `.;x` segments that
//!   servlet containers treat as dot-segments;
//! - keep a trailing slash (`/api/` stays `/api/`);
//! - write decoded `%`, `?`, `#` back as `%25`, `%3F`, `%23`, so the result
//!   is a fixed point of normalisation.
//!
//! So `/public/../admin`, `/public/%2e%2e/admin`, `//admin` and
//! `/admin?x=/public` all match as `/admin...`, while `/public%2F..%2Fadmin`
//! is refused rather than guessed at. `;` parameters are dropped from each
//! segment before matching, as Tomcat, Jetty and Spring drop them before
//! dispatching: `/admin;jsessionid=1/x` meets the `/admin` policy.
//!
//! # Paths in config
//! Exact paths, prefixes and templates must be written in canonical form
//! (what [`normalize_path`](normalize::normalize_path) returns), otherwise config load fails and the
//! error says what to write instead.
//! - `Exact("/post")` matches `/post` only, not `/post/` (a request for
//!   `/post?x=1` is `/post` once normalised, so it does match).
//! - `Prefix("/api")` matches `/api`, `/api/` and `/api/...` by whole
//!   segments, never `/apix` or `/api-admin`. `/api/` means the same as
//!   `/api`; `/` matches every path.
//! - `Template`, as in Istio and Kyma APIRules: `{*}` or `*` as a whole
//!   segment matches exactly one non-empty segment; `{**}` or `**` matches
//!   zero or more segments and may only be last (`/files/{**}` matches
//!   `/files`, `/files/` and `/files/a/b`); other segments are literal.
//!   For Kyma APIRule v2 compatibility the template `/*` alone matches
//!   every path (whereas `/{*}` matches one-segment paths only).
//! - `Regex` must match the whole canonical path (it is compiled as
//!   `^(?:...)$`, so `/.*` means every path). Invalid regexes fail config
//!   load with the regex crate's message; the compiled size is capped.
//!
//! # Lint
//! [`RouteTable::lint`] reports ordered pairs of routes:
//! - `Shadows`: the later route can never match, because the earlier one's
//!   hosts, methods and path each cover the later one's. Paths: any path
//!   covers all; a prefix covers exact paths, prefixes and templates under
//!   it; templates cover what they match segment by segment; equal specs
//!   cover each other; a regex covers an identical regex and any exact
//!   path it matches.
//! - `Overlaps`: some request matches both, the earlier one wins, and it is
//!   not a full shadow (hosts, methods and paths all intersect).
//!
//! Both are reported only when certain. Exact paths, prefixes and templates
//! are compared exactly. Regexes are not analysed: a regex shadows only an
//! identical regex (or an exact path it matches), is only shadowed by a
//! match-all path, and overlaps only where it matches a sample path of the
//! other route (its exact path, its prefix, its template with `x` for each
//! wildcard). Two different regexes are never reported.

mod authority;
mod canonical;
mod error;
mod host;
mod matcher;
mod method;
mod normalize;
mod path;
mod spec;
mod table;
mod template;

pub use authority::normalize_host;
pub use matcher::{RequestTarget, RouteMatcher};
pub(crate) use method::is_token_byte;
pub(crate) use normalize::PathError;
pub use normalize::{PathParameters, normalize_request_path};
// Only the internals module (benches, fuzz targets) names it from outside.
#[cfg(any(test, fuzzing, feature = "test-util"))]
pub use normalize::normalize_path;
pub use spec::{MatchSpec, PathSpec};
pub use table::{FindingKind, RouteTable};
