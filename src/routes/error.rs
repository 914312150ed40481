//! Config-time errors: why a route's `match` section cannot be compiled.

use super::normalize::PathError;

/// Why [`RouteMatcher::new`](super::RouteMatcher::new) rejected a route's
/// `match` section.
///
/// The message names the offending value and is written to follow a field
/// path, as in `routes[3].match.path: invalid regex ...`; [`RouteError::field`]
/// says which field of [`MatchSpec`](super::MatchSpec) that is.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RouteError {
    /// A `hosts` entry is not a host name, an IP literal, `*` or `*.suffix`.
    #[error("invalid host pattern `{pattern}`: {reason}")]
    InvalidHost {
        /// The entry as written.
        pattern: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `methods` entry is not an RFC 9110 token.
    #[error(
        "invalid method `{method}`: a method is a non-empty token of letters, digits and !#$%&'*+-.^_`|~"
    )]
    InvalidMethod {
        /// The entry as written.
        method: String,
    },
    /// An exact path, prefix or template is not a valid request path.
    #[error("invalid path `{path}`: {reason}")]
    InvalidPath {
        /// The path as written.
        path: String,
        /// What `normalize_path` objected to.
        reason: PathError,
    },
    /// An exact path, prefix or template differs from its canonical form, so
    /// no normalised request could match it as written.
    #[error(
        "path `{path}` is not in canonical form (requests are compared after normalisation); write `{canonical}`"
    )]
    NotCanonical {
        /// The path as written.
        path: String,
        /// What it normalises to.
        canonical: String,
    },
    /// A prefix of `""`.
    #[error("empty prefix; write `/` to match every path")]
    EmptyPrefix,
    /// A template uses a wildcard other than as a whole segment, or `{**}`
    /// before the last segment.
    #[error("invalid template `{template}`: {reason}")]
    InvalidTemplate {
        /// The template as written.
        template: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The regex does not compile, or compiles past the size limit.
    #[error("invalid regex `{pattern}`: {error}")]
    InvalidRegex {
        /// The regex as written.
        pattern: String,
        /// The regex crate's explanation.
        error: regex::Error,
    },
    /// A regex of `""`, which would match no path.
    #[error("empty regex; write `/.*` to match every path")]
    EmptyRegex,
}

impl RouteError {
    /// The [`MatchSpec`](super::MatchSpec) field at fault: `"hosts"`,
    /// `"methods"` or `"path"`.
    pub fn field(&self) -> &'static str {
        match self {
            Self::InvalidHost { .. } => "hosts",
            Self::InvalidMethod { .. } => "methods",
            Self::InvalidPath { .. }
            | Self::NotCanonical { .. }
            | Self::EmptyPrefix
            | Self::InvalidTemplate { .. }
            | Self::InvalidRegex { .. }
            | Self::EmptyRegex => "path",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_after_a_field_path() {
        let error = RouteError::NotCanonical {
            path: "/a/../b".into(),
            canonical: "/b".into(),
        };
        assert_eq!(
            format!("routes[3].match.{}: {error}", error.field()),
            "routes[3].match.path: path `/a/../b` is not in canonical form \
             (requests are compared after normalisation); write `/b`"
        );
        let error = RouteError::InvalidPath {
            path: "/a%2Fb".into(),
            reason: PathError::EncodedSlash,
        };
        assert_eq!(
            error.to_string(),
            "invalid path `/a%2Fb`: encoded `/` (`%2F`) in path"
        );
        assert_eq!(
            RouteError::InvalidMethod {
                method: "G T".into()
            }
            .field(),
            "methods"
        );
        assert_eq!(
            RouteError::InvalidHost {
                pattern: "a.*".into(),
                reason: "x"
            }
            .field(),
            "hosts"
        );
    }
}
