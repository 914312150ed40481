//! The bounded `client` label of `tollgate_client_checks_total`: an
//! allow-list decides which callers are named; everyone else is `other`.

use serde_json::{Map, Value};

use crate::claims::ClaimPath;

/// The `client` label of `tollgate_client_checks_total`: the caller's
/// client id (or the configured claim) when it is on the allow-list,
/// [`OTHER_CLIENT`] for any other caller, [`NO_CLIENT`] when no token
/// verified. At most `allow-list + 2` values, whatever callers send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ClientLabels {
    /// The claim the label is read from; `None`: the caller's client id
    /// (`client_id`, else `azp`, else `cid`).
    pub(crate) claim: Option<ClaimPath>,
    /// The values that get a label of their own, sorted.
    pub(crate) allowed: Vec<String>,
}

/// The `client` label of a caller not on the allow-list.
pub(crate) const OTHER_CLIENT: &str = "other";
/// The `client` label of a check where no token verified.
pub(crate) const NO_CLIENT: &str = "none";

impl ClientLabels {
    /// Whether per-client metrics are off (nothing configured).
    pub(crate) fn is_off(&self) -> bool {
        self.claim.is_none() && self.allowed.is_empty()
    }

    /// The label for a caller whose client id is `client_id` and whose
    /// verified claims are `claims` (both `None` when no token verified).
    pub(crate) fn label<'a>(
        &'a self,
        client_id: Option<&str>,
        claims: Option<&Map<String, Value>>,
    ) -> &'a str {
        let value = match (&self.claim, claims) {
            (Some(path), Some(claims)) => path.lookup(claims).and_then(Value::as_str),
            (Some(_), None) => None,
            (None, _) => client_id,
        };
        match value {
            Some(value) => match self.allowed.binary_search_by(|a| a.as_str().cmp(value)) {
                Ok(found) => &self.allowed[found],
                Err(_) => OTHER_CLIENT,
            },
            None if claims.is_some() => OTHER_CLIENT,
            None => NO_CLIENT,
        }
    }
}
