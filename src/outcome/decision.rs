//! The decision for one request. A deny is a normal answer, not an error:
//! it carries its reason and the deny shape of the route that refused it,
//! so an edge answers from the decision alone.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::reason::DenyReason;
use super::reply::{AuthScheme, DenyReply, DenyShape};
use crate::headers::UpstreamHeaders;

/// What to do with the request.
#[derive(Debug)]
pub enum Decision {
    /// Let it through, with these changes.
    Allow(Grant),
    /// Refuse it.
    Deny(Denial),
}

/// An allowed request.
#[derive(Debug)]
pub struct Grant {
    /// The matched route, `None` when an unmatched request was allowed by config.
    pub route: Option<Arc<str>>,
    /// Who called, when a token was verified.
    pub caller: Option<Caller>,
    /// Header changes for the upstream request.
    pub upstream: UpstreamHeaders,
    /// Headers added to the client's response (`response_headers_to_add`).
    pub response_headers: Vec<(String, String)>,
    /// Route name and selected claims, for Envoy's dynamic metadata.
    pub metadata: Map<String, Value>,
    /// The sender constraints the token was held to.
    pub binding: Bound,
}

/// Which sender constraints (RFC 9449 DPoP, RFC 8705 certificate binding)
/// a check held a token to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bound {
    /// The token is DPoP-bound and was checked against its proof.
    pub dpop: bool,
    /// The token is certificate-bound and was checked against the request's
    /// client certificate.
    pub mtls: bool,
}

impl Bound {
    /// A stable name for logs and metrics: `none`, `dpop`, `mtls`, `dpop+mtls`.
    pub fn label(self) -> &'static str {
        match (self.dpop, self.mtls) {
            (false, false) => "none",
            (true, false) => "dpop",
            (false, true) => "mtls",
            (true, true) => "dpop+mtls",
        }
    }

    /// [`Bound::label`], or `None` when nothing was checked: for log
    /// fields and records that leave an unbound token's binding out.
    pub fn checked(self) -> Option<&'static str> {
        (self != Bound::default()).then(|| self.label())
    }
}

/// The verified identity behind a token, for logs and upstream identity.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The provider that verified it.
    pub provider: Arc<str>,
    /// `sub`.
    pub subject: Option<String>,
    /// `client_id`, else `azp` (Keycloak, Auth0), else `cid` (Okta).
    pub client_id: Option<String>,
}

/// A refused request.
#[derive(Debug)]
pub struct Denial {
    /// Why.
    pub reason: DenyReason,
    /// The matched route, if any.
    pub route: Option<Arc<str>>,
    /// How the refusing route's denies look (the defaults' without a route).
    pub shape: Arc<DenyShape>,
    /// Who called, when the token verified but fell short of the route.
    pub caller: Option<Caller>,
    /// Scopes to name in `WWW-Authenticate` for `insufficient_scope`.
    pub scope_hint: Option<String>,
    /// For the log line only, never the client: which claim failed, why the
    /// path was refused.
    pub detail: Option<String>,
    /// Headers added to the deny besides its shape's (the decision id).
    pub extra_headers: Vec<(String, String)>,
    /// Envoy dynamic metadata sent with the deny (the decision id).
    pub metadata: Map<String, Value>,
    /// The challenge's scheme: `Bearer` unless DPoP is in play.
    pub scheme: AuthScheme,
    /// The sender constraints that were being checked.
    pub binding: Bound,
}

impl Denial {
    /// A denial for `reason` and nothing else known.
    pub fn new(reason: DenyReason, route: Option<Arc<str>>, shape: Arc<DenyShape>) -> Denial {
        Denial {
            reason,
            route,
            shape,
            caller: None,
            scope_hint: None,
            detail: None,
            extra_headers: Vec::new(),
            metadata: Map::new(),
            scheme: AuthScheme::Bearer,
            binding: Bound::default(),
        }
    }

    /// What the client gets: shaped by the route, never the detail.
    pub fn reply(&self) -> DenyReply {
        let mut reply =
            self.shape
                .reply_with(self.reason, self.scope_hint.as_deref(), &self.scheme);
        reply.headers.extend(self.extra_headers.iter().cloned());
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denial_answers_in_its_routes_shape_without_the_detail() {
        let shape = DenyShape {
            realm: Some("orders".into()),
            ..DenyShape::default()
        };
        let denial = Denial {
            scope_hint: Some("write".into()),
            detail: Some("claim groups".into()),
            ..Denial::new(DenyReason::InsufficientScope, None, Arc::new(shape))
        };
        let reply = denial.reply();
        assert_eq!(reply.status, 403);
        assert!(reply.headers.contains(&(
            "www-authenticate".into(),
            r#"Bearer realm="orders", error="insufficient_scope", scope="write""#.into()
        )));
        assert!(!reply.body.contains("groups"), "no detail: {}", reply.body);
    }
}
