//! Introspection that gave no answer: a fault for the check, never an
//! allow. Messages name the endpoint without credentials, never a token.

use std::sync::Arc;

use reqwest::StatusCode;

use super::response::ResponseError;
use crate::outcome::{Fault, FaultKind};

/// Introspection could not give an answer: a fault for the check.
#[derive(Debug, thiserror::Error)]
pub enum IntrospectionError {
    /// The metadata document could not be had or names no endpoint.
    #[error("cannot find the introspection endpoint of {issuer}: {reason}")]
    Discovery {
        /// The issuer whose metadata was read.
        issuer: String,
        /// What went wrong.
        reason: String,
    },
    /// Connect, TLS, timeout or a broken body.
    #[error("calling {uri} failed")]
    Http {
        /// The endpoint, without credentials.
        uri: String,
        /// What reqwest reported.
        #[source]
        source: reqwest::Error,
    },
    /// A status other than 200.
    #[error("{uri} answered HTTP {status}")]
    Status {
        /// The endpoint, without credentials.
        uri: String,
        /// The status received.
        status: StatusCode,
    },
    /// The body exceeded the size cap.
    #[error("{uri} sent more than {limit} bytes")]
    TooLarge {
        /// The endpoint, without credentials.
        uri: String,
        /// The cap in bytes.
        limit: usize,
    },
    /// The body is not an RFC 7662 response.
    #[error("{uri} did not return an introspection response")]
    Response {
        /// The endpoint, without credentials.
        uri: String,
        /// What is wrong with it.
        #[source]
        source: ResponseError,
    },
}

/// Introspection for a provider failed: unreachable, slow, an error
/// status, or a body that is not an RFC 7662 answer.
#[derive(Debug, thiserror::Error)]
#[error("introspection for provider {provider} failed")]
pub struct IntrospectionFailed {
    /// The provider's name.
    pub provider: Arc<str>,
    /// What went wrong; shared by every check that waited on the same call.
    #[source]
    pub source: Arc<IntrospectionError>,
}

impl From<IntrospectionFailed> for Fault {
    fn from(error: IntrospectionFailed) -> Fault {
        Fault::new(FaultKind::Introspection, error)
    }
}
