//! The values many sections share, as written: durations and secret
//! references.

use std::path::PathBuf;

use serde::Deserialize;

/// A secret read from the environment or a file, never written in the config itself.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a secret reference, {env: VARIABLE} or {file: PATH}"
)]
pub(crate) struct RawSecret {
    pub(crate) env: Option<String>,
    pub(crate) file: Option<PathBuf>,
}

/// A duration as written: `30s`. A bare number is kept as text so that
/// validation can say it needs a unit, instead of a type error.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged, expecting = "a duration such as 30s, 5m or 1h")]
pub(crate) enum RawDuration {
    Text(String),
    Number(u64),
}

impl RawDuration {
    pub(crate) fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            RawDuration::Text(text) => std::borrow::Cow::Borrowed(text),
            RawDuration::Number(n) => std::borrow::Cow::Owned(n.to_string()),
        }
    }
}
