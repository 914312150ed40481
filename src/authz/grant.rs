//! What an allow carries: the upstream header changes (claim headers,
//! static headers, the access token and signed identity headers, and the
//! removal of every identity header the answer does not set), response
//! headers and dynamic metadata. [`HeaderTables`] holds the header sets
//! derived from the config, built once with the authorizer.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::request::Target;
use super::settings::{AuthzSettings, RoutePolicy};
use crate::headers::UpstreamHeaders;
use crate::identity::{IdentityMinter, Subject};
use crate::outcome::{Bound, Caller, Fault, Grant};
use crate::token::extract::TokenSource;

/// The header sets every answer is built with.
pub(crate) struct HeaderTables {
    /// Every header the defaults or any route fill (from claims, with the
    /// access token or the signed identity, or with a fixed value), sorted:
    /// an answer removes those it does not set, whichever route (or none)
    /// the request takes, so a client can never supply identity itself.
    identity_headers: Vec<String>,
    /// Headers tokens are read from, for `remove_token_header`.
    token_headers: Vec<String>,
    /// Query parameters tokens are read from, for `remove_token_header`.
    token_query_parameters: Vec<String>,
}

impl HeaderTables {
    /// The tables of `settings`.
    pub(crate) fn new(settings: &AuthzSettings) -> HeaderTables {
        let mut identity_headers = settings.default_identity_headers.clone();
        for route in &settings.routes {
            let policy = &route.policy;
            let output = &policy.output;
            identity_headers.extend(policy.upstream_headers.iter().map(|m| m.header.clone()));
            identity_headers.extend(output.access_token_header.iter().cloned());
            identity_headers.extend(output.identity.iter().map(|i| i.header.clone()));
            identity_headers.extend(output.static_headers.iter().map(|(name, _)| name.clone()));
        }
        identity_headers.sort_unstable();
        identity_headers.dedup();
        let mut token_headers = Vec::new();
        let mut token_query_parameters = Vec::new();
        for source in &settings.token_sources {
            match source {
                TokenSource::Header { name, .. } => token_headers.push(name.clone()),
                TokenSource::Query(name) => token_query_parameters.push(name.clone()),
                // Other cookies share the header, so a token cookie stays.
                TokenSource::Cookie(_) => {}
            }
        }
        HeaderTables {
            identity_headers,
            token_headers,
            token_query_parameters,
        }
    }

    /// Every identity header, sorted.
    #[cfg(test)]
    pub(crate) fn identity_headers(&self) -> &[String] {
        &self.identity_headers
    }

    /// An allow on `route` (or on no route): the upstream header changes,
    /// the response headers and the dynamic metadata, with the route's name.
    pub(crate) fn grant(
        &self,
        target: &Target<'_>,
        route: Option<&RoutePolicy>,
        caller: Option<Caller>,
        set: Vec<(String, String)>,
        mut metadata: Map<String, Value>,
    ) -> Grant {
        if let Some(route) = route {
            metadata.insert("route".to_owned(), Value::from(&*route.name));
        }
        Grant {
            route: route.map(|route| route.name.clone()),
            caller,
            upstream: self.upstream(target, route, set),
            response_headers: route.map_or_else(Vec::new, |r| r.output.response_headers.clone()),
            metadata,
            binding: Bound::default(),
        }
    }

    /// The header changes for an allow: `set`, plus removal of every other
    /// identity header and, where the route asks, of the token's headers and
    /// query parameters (a cookie stays: other cookies share its header).
    ///
    /// Client headers that spell one of those with `_` for `-` or the other
    /// way round (`x_auth_subject`) go too: CGI-style servers (WSGI, PHP)
    /// read both spellings as the same `HTTP_X_AUTH_SUBJECT`.
    fn upstream(
        &self,
        target: &Target<'_>,
        route: Option<&RoutePolicy>,
        set: Vec<(String, String)>,
    ) -> UpstreamHeaders {
        let remove_token = route.is_some_and(|route| route.remove_token_header);
        let is_set = |name: &str| set.iter().any(|(set, _)| set == name);
        let mut remove: Vec<String> = self
            .identity_headers
            .iter()
            .filter(|header| !is_set(header))
            .cloned()
            .collect();
        let mut remove_query = Vec::new();
        if remove_token {
            remove.extend(self.token_headers.iter().cloned());
            remove_query.extend(self.token_query_parameters.iter().cloned());
        }
        // Other spellings of those names, which CGI-style servers conflate.
        let guarded = self
            .identity_headers
            .iter()
            .chain(self.token_headers.iter().filter(|_| remove_token));
        let variants: Vec<String> = target
            .headers
            .iter()
            .map(|(name, _)| name)
            .filter(|name| !remove.contains(name) && !is_set(name))
            .filter(|name| guarded.clone().any(|header| same_header(header, name)))
            .cloned()
            .collect();
        remove.extend(variants);
        if let Some(route) = route {
            let extra: Vec<String> = route
                .output
                .remove_headers
                .iter()
                .filter(|name| !is_set(name) && !remove.contains(name))
                .cloned()
                .collect();
            remove.extend(extra);
        }
        UpstreamHeaders {
            set,
            remove,
            remove_query,
        }
    }
}

/// Header names equal once `_` and `-` are the same (`x_auth_subject` and
/// `x-auth-subject`), as CGI, WSGI and PHP read them.
fn same_header(a: &str, b: &str) -> bool {
    let fold = |byte: u8| if byte == b'_' { b'-' } else { byte };
    a.len() == b.len() && a.bytes().map(fold).eq(b.bytes().map(fold))
}

/// Adds `static_headers` that `set` does not already hold: a claim header of
/// the same name wins, as it says more about this caller.
pub(crate) fn add_static(set: &mut Vec<(String, String)>, static_headers: &[(String, String)]) {
    for (name, value) in static_headers {
        if !set.iter().any(|(set, _)| set == name) {
            set.push((name.clone(), value.clone()));
        }
    }
}

/// The caller a token stands for, named in logs and identity headers.
pub(crate) fn caller(provider: &Arc<str>, claims: &Map<String, Value>) -> Caller {
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    Caller {
        provider: provider.clone(),
        subject: text("sub"),
        client_id: text("client_id")
            .or_else(|| text("azp"))
            .or_else(|| text("cid")),
    }
}

/// Headers carrying the caller's token or tollgate's signed identity token.
pub(crate) async fn caller_headers(
    minter: Option<&IdentityMinter>,
    route: &RoutePolicy,
    set: &mut Vec<(String, String)>,
    token: &str,
    subject: Subject<'_>,
) -> Result<(), Fault> {
    if let Some(header) = &route.output.access_token_header {
        set.push((header.clone(), token.to_owned()));
    }
    let (Some(minter), Some(identity)) = (minter, &route.output.identity) else {
        return Ok(());
    };
    let minted = minter.mint(identity, &subject).await?;
    set.retain(|(name, _)| *name != identity.header);
    set.push((identity.header.clone(), minted.to_string()));
    Ok(())
}

/// The route's `metadata_claims`, keyed by their dotted path. Absent claims
/// are left out.
pub(crate) fn metadata(route: &RoutePolicy, claims: &Map<String, Value>) -> Map<String, Value> {
    route
        .output
        .metadata_claims
        .iter()
        .filter_map(|path| Some((path.to_string(), path.lookup(claims)?.clone())))
        .collect()
}
