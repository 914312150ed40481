//! The `binding:` section as written.

use serde::Deserialize;

use super::scalar::{RawDuration, RawSecret};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBinding {
    #[serde(default)]
    pub(crate) client_certificate: RawClientCertificate,
    #[serde(default)]
    pub(crate) dpop: RawDpop,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClientCertificate {
    /// Where the client certificate is read, in order: `peer`, `xfcc`.
    #[serde(default = "default_certificate_sources")]
    pub(crate) sources: Vec<RawCertificateSource>,
}

impl Default for RawClientCertificate {
    fn default() -> Self {
        RawClientCertificate {
            sources: default_certificate_sources(),
        }
    }
}

fn default_certificate_sources() -> Vec<RawCertificateSource> {
    vec![RawCertificateSource::Peer]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RawCertificateSource {
    /// The TLS peer certificate Envoy sends (`include_peer_certificate`).
    Peer,
    /// A trusted `x-forwarded-client-cert` header.
    Xfcc,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDpop {
    pub(crate) algorithms: Option<Vec<String>>,
    pub(crate) max_age: Option<RawDuration>,
    pub(crate) leeway: Option<RawDuration>,
    pub(crate) replay_cache_entries: Option<u64>,
    pub(crate) nonce: Option<RawNonce>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNonce {
    pub(crate) lifetime: Option<RawDuration>,
    pub(crate) secret: Option<RawSecret>,
}
