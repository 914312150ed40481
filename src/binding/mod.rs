//! Sender-constrained tokens: a token the IdP bound to the client's key is
//! only good from that client. RFC 8705 binds it to the client's TLS
//! certificate (`cnf["x5t#S256"]`); RFC 9449 to a key the client proves it
//! holds with a fresh DPoP proof per request (`cnf.jkt`).
//!
//! A token that carries a binding is always held to it, on every route: a
//! stolen bound token is refused whether or not the route asks for binding.
//! A route's `require.binding` says what it demands beyond that: that the
//! token be bound at all, and how ([`RouteBinding`]).
//!
//! # Layout
//! - [`certificate`]: the request's client certificate thumbprint, from the
//!   TLS peer or a trusted `x-forwarded-client-cert`.
//! - [`dpop`]: DPoP proofs checked against the request, the token, the
//!   clock and the proofs seen before.
//! - [`nonce`]: stateless server nonces for DPoP.
//! - [`thumbprint`]: RFC 7638 JWK thumbprints.

mod certificate;
pub(crate) mod dpop;
mod nonce;
mod thumbprint;

use serde_json::{Map, Value};

pub(crate) use certificate::CertificateSource;
pub(crate) use dpop::{DEFAULT_ALGORITHMS, DpopSettings, DpopVerifier, ProofRefusal, ProofRequest};
pub(crate) use nonce::NonceSettings;

use crate::claims::unix_now;
use crate::outcome::{AuthScheme, Bound, DenyReason, TokenProblem};

/// What a route demands of how its tokens are bound to their caller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum RouteBinding {
    /// Nothing beyond the binding a token carries.
    #[default]
    None,
    /// A certificate-bound token (RFC 8705), with its certificate.
    Mtls,
    /// A DPoP-bound token (RFC 9449), with its proof.
    Dpop,
    /// Either.
    AnyBound,
}

/// Where client certificates come from and how DPoP proofs are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BindingSettings {
    /// Looked at in order; the first that yields a certificate is used.
    pub(crate) certificate_sources: Vec<CertificateSource>,
    /// DPoP proofs.
    pub(crate) dpop: DpopSettings,
}

impl Default for BindingSettings {
    fn default() -> BindingSettings {
        BindingSettings {
            certificate_sources: vec![CertificateSource::Peer],
            dpop: DpopSettings::default(),
        }
    }
}

/// How the token came: `Authorization: Bearer` (or any other configured
/// source), or `Authorization: DPoP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// As a bearer token.
    Bearer,
    /// With the DPoP scheme, to be proven by a `DPoP` header.
    Dpop,
}

/// A token as presented, with the parts of its request a binding is
/// checked against.
#[derive(Debug)]
pub(crate) struct Presented<'a> {
    /// The access token.
    pub(crate) token: &'a str,
    /// How it came.
    pub(crate) scheme: Scheme,
    /// The request's method and URL, for a DPoP proof.
    pub(crate) request: ProofRequest<'a>,
    /// The request's header lines, names lower-case (`dpop`,
    /// `x-forwarded-client-cert`).
    pub(crate) headers: &'a [(String, String)],
    /// The TLS peer certificate Envoy passed, URL-encoded PEM.
    pub(crate) peer_certificate: Option<&'a str>,
}

/// A token refused for its binding: the reason, and the challenge scheme.
#[derive(Debug)]
pub(crate) struct Refusal {
    /// Why.
    pub(crate) reason: DenyReason,
    /// `Bearer` or `DPoP`, with a fresh nonce when one is needed.
    pub(crate) scheme: AuthScheme,
    /// The bindings that were being checked.
    pub(crate) bound: Bound,
}

/// Holds tokens to their bindings.
pub(crate) struct Binder {
    /// What it was built from: a reload with the same keeps this binder,
    /// and with it the DPoP replay cache.
    settings: BindingSettings,
    dpop: DpopVerifier,
}

impl Binder {
    /// A binder with an empty DPoP replay cache.
    pub(crate) fn new(settings: &BindingSettings) -> Binder {
        Binder {
            settings: settings.clone(),
            dpop: DpopVerifier::new(&settings.dpop),
        }
    }

    /// The settings it was built from.
    pub(crate) fn settings(&self) -> &BindingSettings {
        &self.settings
    }

    /// The challenge scheme for a deny on a route demanding `route` of a
    /// token presented with `scheme`: DPoP when either speaks of DPoP.
    pub(crate) fn challenge(&self, route: RouteBinding, scheme: Scheme) -> AuthScheme {
        if route == RouteBinding::Dpop || scheme == Scheme::Dpop {
            self.dpop_scheme(None)
        } else {
            AuthScheme::Bearer
        }
    }

    fn dpop_scheme(&self, nonce: Option<String>) -> AuthScheme {
        AuthScheme::Dpop {
            algs: self.dpop.challenge_algorithms().clone(),
            nonce,
        }
    }

    /// Holds `presented` (whose verified claims are `claims`) to the
    /// bindings its `cnf` claim names, then to what `route` demands.
    /// Returns the bindings checked.
    pub(crate) fn check(
        &self,
        route: RouteBinding,
        presented: &Presented<'_>,
        claims: &Map<String, Value>,
    ) -> Result<Bound, Refusal> {
        let outcome = self.hold(route, presented, claims);
        let (bound, result) = match &outcome {
            Ok(bound) => (*bound, "pass"),
            Err(refusal) => (refusal.bound, refusal.reason.label()),
        };
        if bound != Bound::default() || route != RouteBinding::None {
            crate::metrics::record_binding_check(bound.label(), result);
        }
        outcome
    }

    fn hold(
        &self,
        route: RouteBinding,
        presented: &Presented<'_>,
        claims: &Map<String, Value>,
    ) -> Result<Bound, Refusal> {
        let mut bound = Bound::default();
        let dpop_bound = claims.get("cnf").and_then(|cnf| cnf.get("jkt")).is_some();
        let scheme = if dpop_bound {
            self.dpop_scheme(None)
        } else {
            self.challenge(route, presented.scheme)
        };
        let refuse = |problem: TokenProblem, bound: Bound| Refusal {
            reason: DenyReason::InvalidToken(problem),
            scheme: scheme.clone(),
            bound,
        };
        let confirmation = Confirmation::of(claims)
            .ok_or_else(|| refuse(TokenProblem::InvalidConfirmation, bound))?;
        match (confirmation.jkt, presented.scheme) {
            (Some(jkt), Scheme::Dpop) => {
                bound.dpop = true;
                let thumbprint = self.prove(presented).map_err(|refusal| match refusal {
                    ProofRefusal::Invalid(problem) => Refusal {
                        reason: DenyReason::InvalidDpopProof(problem),
                        scheme: scheme.clone(),
                        bound,
                    },
                    ProofRefusal::NeedsNonce => Refusal {
                        reason: DenyReason::UseDpopNonce,
                        scheme: self.dpop_scheme(self.dpop.fresh_nonce(unix_now())),
                        bound,
                    },
                })?;
                if thumbprint != jkt {
                    return Err(refuse(TokenProblem::DpopKeyMismatch, bound));
                }
            }
            (Some(_), Scheme::Bearer) => {
                bound.dpop = true;
                return Err(refuse(TokenProblem::DpopTokenAsBearer, bound));
            }
            (None, Scheme::Dpop) => return Err(refuse(TokenProblem::NotDpopBound, bound)),
            (None, Scheme::Bearer) => {}
        }
        if let Some(x5t) = confirmation.x5t {
            bound.mtls = true;
            let thumbprint = self
                .certificate_thumbprint(presented)
                .ok_or_else(|| refuse(TokenProblem::CertificateMissing, bound))?;
            if thumbprint != x5t {
                return Err(refuse(TokenProblem::CertificateMismatch, bound));
            }
        }
        let satisfied = match route {
            RouteBinding::None => true,
            RouteBinding::Mtls => bound.mtls,
            RouteBinding::Dpop => bound.dpop,
            RouteBinding::AnyBound => bound.dpop || bound.mtls,
        };
        if !satisfied {
            return Err(refuse(TokenProblem::NotSenderConstrained, bound));
        }
        Ok(bound)
    }

    fn prove(&self, presented: &Presented<'_>) -> Result<String, ProofRefusal> {
        let proofs: Vec<&str> = header_values(presented.headers, "dpop").collect();
        self.dpop.verify(
            &proofs,
            &presented.request,
            presented.token,
            unix_now() as f64,
        )
    }

    /// The client certificate's thumbprint, from the first configured
    /// source that has one.
    fn certificate_thumbprint(&self, presented: &Presented<'_>) -> Option<String> {
        self.settings
            .certificate_sources
            .iter()
            .find_map(|source| match source {
                CertificateSource::Peer => presented
                    .peer_certificate
                    .filter(|pem| !pem.is_empty())
                    .and_then(certificate::peer_thumbprint),
                CertificateSource::ForwardedHeader => {
                    header_values(presented.headers, "x-forwarded-client-cert")
                        .next()
                        .and_then(certificate::forwarded_thumbprint)
                }
            })
    }
}

fn header_values<'a>(
    headers: &'a [(String, String)],
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .iter()
        .filter(move |(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The bindings a token's `cnf` claim (RFC 7800) names.
struct Confirmation<'c> {
    jkt: Option<&'c str>,
    x5t: Option<&'c str>,
}

impl<'c> Confirmation<'c> {
    /// `None` when `cnf` is there but not an object, or a binding member
    /// is not a string: a binding that cannot be read must not be dropped.
    fn of(claims: &'c Map<String, Value>) -> Option<Confirmation<'c>> {
        let Some(cnf) = claims.get("cnf") else {
            return Some(Confirmation {
                jkt: None,
                x5t: None,
            });
        };
        let cnf = cnf.as_object()?;
        let member = |name: &str| match cnf.get(name) {
            None => Ok(None),
            Some(Value::String(value)) => Ok(Some(value.as_str())),
            Some(_) => Err(()),
        };
        Some(Confirmation {
            jkt: member("jkt").ok()?,
            x5t: member("x5t#S256").ok()?,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests;
