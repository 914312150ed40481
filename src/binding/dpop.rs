//! DPoP proofs (RFC 9449 §4.3): the JWS a client signs for each request
//! with the key its access token is bound to. A proof is checked against
//! the request it came with (method and URL), the token it came with
//! (`ath`), the clock (`iat`) and every proof seen before (`jti`), and its
//! key's RFC 7638 thumbprint is what the token's `cnf.jkt` must name.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use super::nonce::{NonceSettings, Nonces};
use super::thumbprint::jwk_thumbprint;
use crate::digest::sha256;
use crate::outcome::ProofProblem;
use crate::routes::{PathParameters, normalize_host, normalize_request_path};
use crate::token::jwk::parse_key_material;
use crate::token::members::has_unique_members;

/// A proof is a few hundred bytes (a 4096-bit RSA key makes it ~1.5 KiB);
/// anything past this is refused unread.
const MAX_PROOF_BYTES: usize = 8 * 1024;

/// A `jti` longer than this is not an identifier but padding.
const MAX_JTI_BYTES: usize = 256;

/// The asymmetric algorithms a proof may be signed with by default: all
/// tollgate verifies. `none` and HMAC can never be configured.
pub(crate) const DEFAULT_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
];

/// JWK members that only a private key has (RFC 7518 §6.2.2, §6.3.2, §6.4;
/// RFC 8037 §2): a proof that carries one has leaked its key.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// How DPoP proofs are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopSettings {
    /// The proof algorithms accepted; asymmetric only.
    pub algorithms: Vec<Algorithm>,
    /// How old a proof's `iat` may be.
    pub max_age: Duration,
    /// Clock skew allowed on `iat`, either way.
    pub leeway: Duration,
    /// Proof ids remembered to refuse replays, at most.
    pub replay_cache_entries: u64,
    /// Require a server nonce in every proof.
    pub nonce: Option<NonceSettings>,
}

impl Default for DpopSettings {
    fn default() -> DpopSettings {
        DpopSettings {
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
            max_age: Duration::from_secs(60),
            leeway: Duration::from_secs(5),
            replay_cache_entries: 100_000,
            nonce: None,
        }
    }
}

/// The request a proof must fit: its method and its URL as Envoy saw it.
#[derive(Debug, Clone, Copy)]
pub struct ProofRequest<'a> {
    /// The method, upper-case.
    pub method: &'a str,
    /// `http` or `https`, as Envoy's `:scheme` says.
    pub scheme: &'a str,
    /// `:authority` as received (host and perhaps a port).
    pub authority: &'a str,
    /// The normalised path, without query.
    pub path: &'a str,
    /// How `;` in paths is read, so `htu` normalises as the request did.
    pub path_parameters: PathParameters,
}

/// Why a proof did not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofRefusal {
    /// The proof is not valid for this request.
    Invalid(ProofProblem),
    /// The proof is valid but lacks a current server nonce.
    NeedsNonce,
}

impl From<ProofProblem> for ProofRefusal {
    fn from(problem: ProofProblem) -> ProofRefusal {
        ProofRefusal::Invalid(problem)
    }
}

/// Checks proofs and remembers the ids of those that passed.
pub struct DpopVerifier {
    algorithms: Vec<Algorithm>,
    max_age: f64,
    leeway: f64,
    /// Proof ids seen, keyed by SHA-256 of key thumbprint and `jti`. Per
    /// instance: replicas behind one Service do not share it.
    seen: moka::sync::Cache<[u8; 32], ()>,
    nonces: Option<Nonces>,
    /// `algs` for challenges: the accepted algorithms, space-separated.
    challenge_algorithms: std::sync::Arc<str>,
}

#[derive(serde::Deserialize)]
struct ProofHeader {
    typ: Option<Value>,
    alg: Option<Value>,
    jwk: Option<Value>,
    crit: Option<Value>,
}

impl DpopVerifier {
    /// A verifier with an empty replay cache.
    pub fn new(settings: &DpopSettings) -> DpopVerifier {
        // A proof id must be remembered as long as its `iat` is acceptable.
        let remember = settings.max_age + settings.leeway * 2;
        let challenge_algorithms = settings
            .algorithms
            .iter()
            .map(|a| format!("{a:?}"))
            .collect::<Vec<_>>()
            .join(" ");
        DpopVerifier {
            algorithms: settings.algorithms.clone(),
            max_age: settings.max_age.as_secs_f64(),
            leeway: settings.leeway.as_secs_f64(),
            seen: moka::sync::Cache::builder()
                .max_capacity(settings.replay_cache_entries)
                .time_to_live(remember)
                .build(),
            nonces: settings.nonce.as_ref().map(Nonces::new),
            challenge_algorithms: challenge_algorithms.into(),
        }
    }

    /// The accepted algorithms, space-separated, for `algs` in a challenge.
    pub(crate) fn challenge_algorithms(&self) -> &std::sync::Arc<str> {
        &self.challenge_algorithms
    }

    /// A fresh nonce, when nonces are required.
    pub(crate) fn fresh_nonce(&self, now: u64) -> Option<String> {
        self.nonces.as_ref().map(|nonces| nonces.issue(now))
    }

    /// Checks the request's `DPoP` header values (`proofs`, one per field
    /// line) as the proof for `token` on `request` at `now` (Unix seconds).
    /// Returns the thumbprint of the proof's key, for `cnf.jkt`.
    pub fn verify(
        &self,
        proofs: &[&str],
        request: &ProofRequest<'_>,
        token: &str,
        now: f64,
    ) -> Result<String, ProofRefusal> {
        // Envoy joins repeated headers with commas, and no JWS has one.
        let mut items = proofs.iter().flat_map(|p| p.split(',')).map(str::trim);
        let proof = match (items.next(), items.next()) {
            (None, _) => return Err(ProofProblem::Missing.into()),
            (Some(proof), None) if !proof.is_empty() => proof,
            _ => return Err(ProofProblem::Malformed.into()),
        };
        if proof.len() > MAX_PROOF_BYTES {
            return Err(ProofProblem::Malformed.into());
        }
        let (signed, signature) = proof.rsplit_once('.').ok_or(ProofProblem::Malformed)?;
        let (header, payload) = signed.split_once('.').ok_or(ProofProblem::Malformed)?;
        let header: ProofHeader = serde_json::from_value(Value::Object(object(header)?))
            .map_err(|_| ProofProblem::Malformed)?;
        let claims = object(payload)?;
        let (algorithm, jwk) = self.header(&header)?;
        check_claims(&claims, request, token, now, self.max_age, self.leeway)?;
        let (algorithms, key) = parse_key_material(jwk).map_err(|_| ProofProblem::BadKey)?;
        if !algorithms.contains(&algorithm) {
            return Err(ProofProblem::DisallowedAlgorithm.into());
        }
        let verified = jsonwebtoken::crypto::verify(signature, signed.as_bytes(), &key, algorithm)
            .map_err(|_| ProofProblem::BadSignature)?;
        if !verified {
            return Err(ProofProblem::BadSignature.into());
        }
        let thumbprint = jwk_thumbprint(jwk).ok_or(ProofProblem::BadKey)?;
        if let Some(nonces) = &self.nonces {
            let nonce = claims.get("nonce").and_then(Value::as_str);
            // Whole seconds: `now` came from the clock as a float.
            if !nonce.is_some_and(|nonce| nonces.accepts(nonce, now as u64)) {
                return Err(ProofRefusal::NeedsNonce);
            }
        }
        // Last, so that only a proof its key really signed takes a place in
        // the cache: nobody can spend someone else's `jti`.
        let jti = claims
            .get("jti")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut id = Vec::with_capacity(thumbprint.len() + 1 + jti.len());
        id.extend_from_slice(thumbprint.as_bytes());
        id.push(b'.');
        id.extend_from_slice(jti.as_bytes());
        if !self.seen.entry(sha256(&id)).or_insert(()).is_fresh() {
            return Err(ProofProblem::Replayed.into());
        }
        Ok(thumbprint)
    }

    /// `typ`, `alg` and `jwk` of a proof's header.
    fn header<'h>(
        &self,
        header: &'h ProofHeader,
    ) -> Result<(Algorithm, &'h Map<String, Value>), ProofProblem> {
        // RFC 7515 §4.1.11: tollgate understands no `crit` extension.
        if header.crit.is_some() {
            return Err(ProofProblem::Malformed);
        }
        let typ = header.typ.as_ref().and_then(Value::as_str);
        // Media types compare case-insensitively (RFC 7515 §4.1.9).
        if !typ.is_some_and(|typ| typ.eq_ignore_ascii_case("dpop+jwt")) {
            return Err(ProofProblem::WrongType);
        }
        let algorithm = header
            .alg
            .as_ref()
            .and_then(Value::as_str)
            .and_then(|alg| alg.parse::<Algorithm>().ok())
            .filter(|alg| self.algorithms.contains(alg))
            .ok_or(ProofProblem::DisallowedAlgorithm)?;
        let jwk = header
            .jwk
            .as_ref()
            .and_then(Value::as_object)
            .ok_or(ProofProblem::BadKey)?;
        if PRIVATE_MEMBERS.iter().any(|name| jwk.contains_key(*name)) {
            return Err(ProofProblem::BadKey);
        }
        Ok((algorithm, jwk))
    }
}

/// A base64url part of the proof as a JSON object, refusing repeated
/// member names as token headers and payloads are.
fn object(part: &str) -> Result<Map<String, Value>, ProofProblem> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| ProofProblem::Malformed)?;
    if bytes.trim_ascii_start().first() != Some(&b'{') || !has_unique_members(&bytes) {
        return Err(ProofProblem::Malformed);
    }
    serde_json::from_slice(&bytes).map_err(|_| ProofProblem::Malformed)
}

/// The payload's claims against the request, the token and the clock.
fn check_claims(
    claims: &Map<String, Value>,
    request: &ProofRequest<'_>,
    token: &str,
    now: f64,
    max_age: f64,
    leeway: f64,
) -> Result<(), ProofProblem> {
    let string = |name: &str| match claims.get(name) {
        Some(Value::String(value)) => Ok(value.as_str()),
        _ => Err(ProofProblem::Malformed),
    };
    let jti = string("jti")?;
    if jti.is_empty() || jti.len() > MAX_JTI_BYTES {
        return Err(ProofProblem::Malformed);
    }
    if string("htm")? != request.method {
        return Err(ProofProblem::WrongMethod);
    }
    if !same_url(string("htu")?, request) {
        return Err(ProofProblem::WrongUrl);
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_f64)
        .ok_or(ProofProblem::Malformed)?;
    if iat < now - max_age - leeway || iat > now + leeway {
        return Err(ProofProblem::Stale);
    }
    // RFC 9449 §4.3 check 12: with an access token, `ath` is required.
    let ath = match claims.get("ath") {
        Some(Value::String(ath)) => ath,
        Some(_) => return Err(ProofProblem::Malformed),
        None => return Err(ProofProblem::WrongTokenHash),
    };
    if *ath != URL_SAFE_NO_PAD.encode(sha256(token.as_bytes())) {
        return Err(ProofProblem::WrongTokenHash);
    }
    Ok(())
}

/// Whether `htu` is the request's URL, ignoring query and fragment, after
/// the normalisation RFC 9449 §4.3 asks for (RFC 3986 §6.2.2 and §6.2.3):
/// scheme and host compared case-insensitively, a default port the same as
/// none, and the path normalised as the request's was.
fn same_url(htu: &str, request: &ProofRequest<'_>) -> bool {
    let htu = htu.split(['?', '#']).next().unwrap_or_default();
    let Some((scheme, rest)) = htu.split_once("://") else {
        return false;
    };
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, "/"),
    };
    if !scheme.eq_ignore_ascii_case(request.scheme) || authority.contains('@') {
        return false;
    }
    let same_host = match (normalize_host(authority), normalize_host(request.authority)) {
        (Some(ours), Some(theirs)) => !ours.is_empty() && ours == theirs,
        _ => false,
    };
    let default_port = if request.scheme.eq_ignore_ascii_case("https") {
        443
    } else {
        80
    };
    let port_or_default = |authority: &str| port(authority).unwrap_or(Some(default_port));
    let proof_port = port_or_default(authority);
    same_host
        && proof_port.is_some()
        && proof_port == port_or_default(request.authority)
        && normalize_request_path(path, request.path_parameters)
            .is_ok_and(|path| path == request.path)
}

/// The port of an authority: `None` when it names none, `Some(None)` when
/// it is not a number.
fn port(authority: &str) -> Option<Option<u16>> {
    let after_host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once(']').map_or("", |(_, rest)| rest),
        None if authority.matches(':').count() == 1 => {
            authority.split_once(':').map_or("", |(_, port)| port)
        }
        None => return None,
    };
    let digits = after_host.strip_prefix(':').unwrap_or(after_host);
    if digits.is_empty() {
        return None;
    }
    Some(digits.parse().ok())
}

#[cfg(test)]
mod tests;
