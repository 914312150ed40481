//! Paths in config must already be canonical, so what the operator wrote is
//! exactly what requests are compared with.

use super::error::RouteError;
use super::normalize::normalize_path;

/// `path` if it is canonical (what [`normalize_path`] returns for it), else
/// why not, with the canonical form to write instead.
pub(crate) fn canonical(path: &str) -> Result<String, RouteError> {
    let normalized = normalize_path(path).map_err(|reason| RouteError::InvalidPath {
        path: path.to_owned(),
        reason,
    })?;
    if normalized == path {
        Ok(normalized.into_owned())
    } else {
        Err(RouteError::NotCanonical {
            path: path.to_owned(),
            canonical: normalized.into_owned(),
        })
    }
}
