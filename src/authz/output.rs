//! What an allow carries besides claim headers: static headers, the access
//! token and signed identity headers, dynamic metadata, and the dry-run log
//! line for a deny that is not enforced.

use serde_json::{Map, Value};

use super::{AuthzRequest, Caller, Denial, Fault};
use crate::config::RoutePolicy;
use crate::identity::{IdentityMinter, Subject};

/// Adds `static_headers` that `set` does not already hold: a claim header of
/// the same name wins, as it says more about this caller.
pub(super) fn add_static(set: &mut Vec<(String, String)>, static_headers: &[(String, String)]) {
    for (name, value) in static_headers {
        if !set.iter().any(|(set, _)| set == name) {
            set.push((name.clone(), value.clone()));
        }
    }
}

/// Headers carrying the caller's token or tollgate's signed identity token.
pub(super) async fn caller_headers(
    minter: Option<&IdentityMinter>,
    route: &RoutePolicy,
    set: &mut Vec<(String, String)>,
    token: &str,
    caller: &Caller,
    claims: &Map<String, Value>,
    scopes: &[&str],
) -> Result<(), Fault> {
    if let Some(header) = &route.output.access_token_header {
        set.push((header.clone(), token.to_owned()));
    }
    let (Some(minter), Some(identity)) = (minter, &route.output.identity) else {
        return Ok(());
    };
    let subject = Subject {
        token,
        route: &route.name,
        caller,
        claims,
        scopes,
    };
    let minted = minter.mint(identity, &subject).await?;
    set.retain(|(name, _)| *name != identity.header);
    set.push((identity.header.clone(), minted.to_string()));
    Ok(())
}

/// The route's `metadata_claims`, keyed by their dotted path. Absent claims
/// are left out.
pub(super) fn metadata(route: &RoutePolicy, claims: &Map<String, Value>) -> Map<String, Value> {
    route
        .output
        .metadata_claims
        .iter()
        .filter_map(|path| Some((path.to_string(), path.lookup(claims)?.clone())))
        .collect()
}

/// Logs the deny a dry-run route does not enforce.
pub(super) fn log_dry_run(request: &AuthzRequest, denial: &Denial) {
    tracing::warn!(
        dry_run = true,
        decision = "deny",
        reason = denial.reason.label(),
        status = denial.reason.http_status(),
        route = denial.route.as_deref().unwrap_or("<unmatched>"),
        method = %request.method,
        path = request.path.as_deref().unwrap_or("<invalid>"),
        subject = denial.caller.as_ref().and_then(|c| c.subject.as_deref()),
        "dry run: deny not enforced, request allowed"
    );
}
