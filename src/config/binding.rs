//! The `binding:` section: where client certificates are read for
//! certificate-bound tokens (RFC 8705), and how DPoP proofs (RFC 9449) are
//! checked.

use std::path::Path;
use std::time::Duration;

use jsonwebtoken::Algorithm;

use super::error::{ConfigError, invalid};
use super::raw::{RawBinding, RawCertificateSource, RawNonce, RawRouteBinding};
use super::values::{duration, load_secret};
use crate::authz::settings::Route;
use crate::binding::{
    BindingSettings, CertificateSource, DEFAULT_ALGORITHMS, DpopSettings, NonceSettings,
    RouteBinding,
};

/// A proof older than this is no proof of possession now.
const MAX_PROOF_AGE: Duration = Duration::from_secs(300);

pub(super) fn settings(raw: RawBinding, base: &Path) -> Result<BindingSettings, ConfigError> {
    let certificate_sources = raw
        .client_certificate
        .sources
        .iter()
        .map(|source| match source {
            RawCertificateSource::Peer => CertificateSource::Peer,
            RawCertificateSource::Xfcc => CertificateSource::ForwardedHeader,
        })
        .collect();
    let dpop = raw.dpop;
    let defaults = DpopSettings::default();
    let algorithms = match dpop.algorithms {
        None => defaults.algorithms,
        Some(names) => algorithms(&names)?,
    };
    let max_age = duration(&dpop.max_age, "binding.dpop.max_age", defaults.max_age)?;
    if max_age.is_zero() || max_age > MAX_PROOF_AGE {
        return Err(invalid(
            "binding.dpop.max_age",
            "must be more than 0s and at most 5m: a proof is made for one request",
        ));
    }
    let leeway = duration(&dpop.leeway, "binding.dpop.leeway", defaults.leeway)?;
    if leeway > Duration::from_secs(60) {
        return Err(invalid("binding.dpop.leeway", "must be at most 60s"));
    }
    let replay_cache_entries = dpop
        .replay_cache_entries
        .unwrap_or(defaults.replay_cache_entries);
    if replay_cache_entries == 0 {
        return Err(invalid(
            "binding.dpop.replay_cache_entries",
            "must be at least 1: without it a proof could be replayed",
        ));
    }
    let nonce = dpop.nonce.map(|raw| nonce(raw, base)).transpose()?;
    Ok(BindingSettings {
        certificate_sources,
        dpop: DpopSettings {
            algorithms,
            max_age,
            leeway,
            replay_cache_entries,
            nonce,
        },
    })
}

fn algorithms(names: &[String]) -> Result<Vec<Algorithm>, ConfigError> {
    let field = "binding.dpop.algorithms";
    if names.is_empty() {
        return Err(invalid(field, "must name at least one algorithm"));
    }
    names
        .iter()
        .map(|name| {
            name.parse::<Algorithm>()
                .ok()
                .filter(|algorithm| DEFAULT_ALGORITHMS.contains(algorithm))
                .ok_or_else(|| {
                    invalid(
                        field,
                        format!(
                            "`{name}`: a DPoP proof is signed with an asymmetric key: use ES256, ES384, EdDSA, PS256, PS384, PS512, RS256, RS384 or RS512"
                        ),
                    )
                })
        })
        .collect()
}

fn nonce(raw: RawNonce, base: &Path) -> Result<NonceSettings, ConfigError> {
    let lifetime = duration(
        &raw.lifetime,
        "binding.dpop.nonce.lifetime",
        Duration::from_secs(300),
    )?;
    if lifetime.as_secs() < 10 {
        return Err(invalid(
            "binding.dpop.nonce.lifetime",
            "must be at least 10s, or clients spend their time fetching nonces",
        ));
    }
    let secret = raw
        .secret
        .map(|secret| {
            let secret =
                load_secret(&secret, base).map_err(|m| invalid("binding.dpop.nonce.secret", m))?;
            if secret.expose().len() < 32 {
                return Err(invalid(
                    "binding.dpop.nonce.secret",
                    "must be at least 32 bytes",
                ));
            }
            Ok(secret)
        })
        .transpose()?;
    Ok(NonceSettings { lifetime, secret })
}

/// Warns about routes that demand a certificate binding no request can
/// prove: no source for client certificates is configured.
pub(super) fn warn_unprovable(
    settings: &BindingSettings,
    routes: &[Route],
    warnings: &mut Vec<String>,
) {
    if !settings.certificate_sources.is_empty() {
        return;
    }
    for route in routes {
        if route.policy.binding == RouteBinding::Mtls {
            warnings.push(format!(
                "route `{}` requires binding `mtls`, but binding.client_certificate.sources is empty: every certificate-bound token will be refused; add `peer` (Envoy's include_peer_certificate) or `xfcc`",
                route.policy.name
            ));
        }
    }
}

/// A route's `require.binding`.
pub(super) fn route_binding(raw: RawRouteBinding) -> RouteBinding {
    match raw {
        RawRouteBinding::None => RouteBinding::None,
        RawRouteBinding::Mtls => RouteBinding::Mtls,
        RawRouteBinding::Dpop => RouteBinding::Dpop,
        RawRouteBinding::AnyBound => RouteBinding::AnyBound,
    }
}
