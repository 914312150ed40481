//! Why a provider's keys could not be fetched or used. Messages name URLs
//! without their credentials, and never include response bodies.

use std::error::Error as StdError;
use std::sync::Arc;

use reqwest::StatusCode;

use crate::token::jwk::JwksParseError;

/// Fetching or using a provider's keys failed.
#[derive(thiserror::Error, Debug)]
pub enum JwksError {
    /// A configured or discovered URL does not parse.
    #[error("{what} is not a valid URL")]
    InvalidUrl {
        /// Which URL: "issuer", "configured jwks_uri" or "discovered jwks_uri".
        what: &'static str,
        /// The parse failure.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// A discovered URL would fetch keys insecurely.
    #[error("refusing {uri}: {reason}")]
    InsecureUrl {
        /// The URL, without credentials.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The request failed: connect, TLS, timeout or a broken body.
    #[error("fetching {uri} failed")]
    Http {
        /// The URL, without credentials.
        uri: String,
        /// What reqwest reported.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with a non-success status.
    #[error("{uri} answered HTTP {status}")]
    Status {
        /// The URL, without credentials.
        uri: String,
        /// The status received.
        status: StatusCode,
    },
    /// The body exceeded the size cap.
    #[error("{uri} sent more than {limit} bytes")]
    TooLarge {
        /// The URL, without credentials.
        uri: String,
        /// The cap in bytes.
        limit: usize,
    },
    /// The body is not a JWKS.
    #[error("{uri} did not return a JWKS")]
    Parse {
        /// The URL, without credentials.
        uri: String,
        /// Why the document was refused.
        #[source]
        source: JwksParseError,
    },
    /// The JWKS parsed but holds no key we can verify with.
    #[error("{uri} returned no usable keys ({skipped} skipped)")]
    NoUsableKeys {
        /// The URL, without credentials.
        uri: String,
        /// How many keys were skipped.
        skipped: usize,
    },
    /// The discovery document is not JSON with string `issuer` and `jwks_uri`.
    #[error("discovery document {uri} is not valid")]
    Discovery {
        /// The URL, without credentials.
        uri: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The discovery document belongs to another issuer (OIDC Discovery §4.3).
    #[error("discovery document {uri} names issuer {found:?}, not the configured {expected:?}")]
    IssuerMismatch {
        /// The URL, without credentials.
        uri: String,
        /// The configured issuer.
        expected: String,
        /// The issuer the document names.
        found: String,
    },
    /// The provider has no keys to verify with: never loaded, or stale past
    /// `max_stale`.
    #[error("no keys for provider {provider:?}")]
    NoKeys {
        /// The provider's configured name.
        provider: String,
        /// The last fetch failure, if one is known.
        #[source]
        cause: Option<Arc<JwksError>>,
    },
}
