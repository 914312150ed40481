//! The `identity:` section: the key, issuer and lifetime of the signed
//! identity tokens tollgate mints for upstreams.

use std::path::Path;

use super::error::{ConfigError, invalid};
use super::raw::RawIdentity;
use super::values::{duration, load_secret};
use crate::identity::{IdentityKey, IdentitySettings};

pub(super) fn settings(
    raw: RawIdentity,
    base: &Path,
    warnings: &mut Vec<String>,
) -> Result<IdentitySettings, ConfigError> {
    if raw.issuer.is_empty() {
        return Err(invalid("identity.issuer", "must not be empty"));
    }
    if !matches!(raw.algorithm.as_str(), "ES256" | "EdDSA") {
        return Err(invalid(
            "identity.algorithm",
            format!(
                "`{}`: use ES256 or EdDSA (RSA and HMAC are refused)",
                raw.algorithm
            ),
        ));
    }
    let pem =
        load_secret(&raw.signing_key, base).map_err(|m| invalid("identity.signing_key", m))?;
    if pem.expose().trim_ascii() == crate::devtoken::DEV_KEY_PEM.as_bytes().trim_ascii() {
        warnings.push(
            "identity.signing_key is the public development key from config/dev/: anyone can mint identity tokens your upstreams trust; generate a key of your own".to_owned(),
        );
    }
    let key = IdentityKey::from_pem(pem.expose(), &raw.algorithm, &raw.kid).map_err(|m| {
        let field = if raw.kid.is_empty() {
            "identity.kid"
        } else {
            "identity.signing_key"
        };
        invalid(field, m)
    })?;
    let lifetime = duration(
        &raw.lifetime,
        "identity.lifetime",
        std::time::Duration::from_secs(60),
    )?;
    if lifetime.as_secs() < 5 {
        return Err(invalid(
            "identity.lifetime",
            "must be at least 5s, so a token is not expired on arrival",
        ));
    }
    Ok(IdentitySettings {
        issuer: raw.issuer,
        key,
        lifetime,
        cache_size: raw.cache_size.unwrap_or(10_000),
    })
}
