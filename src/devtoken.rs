//! `tollgate dev-token`: mints a token signed with the committed development
//! key, so the quickstart runs with no identity provider. Never for production:
//! the key is public.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value};

/// The quickstart's issuer.
pub const DEV_ISSUER: &str = "https://dev.tollgate.local";
/// The quickstart's audience.
pub const DEV_AUDIENCE: &str = "tollgate-quickstart";
/// Key id of the committed development key.
pub(crate) const DEV_KID: &str = "tollgate-dev-1";
/// The committed development key (P-256), also in `config/dev/dev-key.pem`.
pub(crate) const DEV_KEY_PEM: &str = include_str!("../config/dev/dev-key.pem");

/// What to put in the token.
#[derive(Debug, Clone)]
pub struct DevToken {
    /// `iss`.
    pub issuer: String,
    /// `aud`; omitted when empty.
    pub audience: Vec<String>,
    /// `sub`.
    pub subject: String,
    /// `client_id`.
    pub client_id: String,
    /// Joined with spaces into `scope`.
    pub scopes: Vec<String>,
    /// From now until `exp`.
    pub lifetime: Duration,
    /// Extra claims, set last (they may override the ones above).
    pub claims: Map<String, Value>,
}

/// Signing key and header settings.
pub struct SigningKey {
    /// Signature algorithm.
    pub algorithm: Algorithm,
    /// `kid` header.
    pub kid: Option<String>,
    /// The private key.
    pub key: EncodingKey,
}

impl SigningKey {
    /// The committed development key.
    pub fn dev() -> Result<SigningKey, String> {
        SigningKey::from_pem(
            DEV_KEY_PEM.as_bytes(),
            Algorithm::ES256,
            Some(DEV_KID.to_owned()),
        )
    }

    /// A PEM private key for `algorithm`.
    pub fn from_pem(
        pem: &[u8],
        algorithm: Algorithm,
        kid: Option<String>,
    ) -> Result<SigningKey, String> {
        use Algorithm::*;
        let key = match algorithm {
            ES256 | ES384 => EncodingKey::from_ec_pem(pem),
            RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => EncodingKey::from_rsa_pem(pem),
            EdDSA => EncodingKey::from_ed_pem(pem),
            // Trimmed as `serve` trims secrets read from files.
            HS256 | HS384 | HS512 => Ok(EncodingKey::from_secret(pem.trim_ascii_end())),
        }
        .map_err(|e| format!("cannot use the key for {algorithm:?}: {e}"))?;
        Ok(SigningKey {
            algorithm,
            kid,
            key,
        })
    }
}

impl DevToken {
    /// Signs the token.
    pub fn sign(&self, key: &SigningKey) -> Result<String, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs();
        let mut claims = Map::new();
        claims.insert("iss".into(), self.issuer.clone().into());
        claims.insert("sub".into(), self.subject.clone().into());
        claims.insert("client_id".into(), self.client_id.clone().into());
        match self.audience.as_slice() {
            [] => {}
            [one] => {
                claims.insert("aud".into(), one.clone().into());
            }
            many => {
                claims.insert("aud".into(), many.to_vec().into());
            }
        }
        if !self.scopes.is_empty() {
            claims.insert("scope".into(), self.scopes.join(" ").into());
        }
        claims.insert("iat".into(), now.into());
        claims.insert("exp".into(), (now + self.lifetime.as_secs()).into());
        claims.extend(self.claims.clone());
        let mut header = Header::new(key.algorithm);
        header.kid = key.kid.clone();
        jsonwebtoken::encode(&header, &claims, &key.key).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_token_verifies_against_the_quickstart_jwks() {
        let token = DevToken {
            issuer: DEV_ISSUER.into(),
            audience: vec![DEV_AUDIENCE.into()],
            subject: "me".into(),
            client_id: "cli".into(),
            scopes: vec!["read".into(), "write".into()],
            lifetime: Duration::from_secs(60),
            claims: Map::new(),
        }
        .sign(&SigningKey::dev().unwrap())
        .unwrap();
        let jwks = include_bytes!("../config/dev/jwks.json");
        let (keys, skipped) = crate::token::jwk::KeySet::from_json(jwks).unwrap();
        assert!(skipped.is_empty());
        let key = keys
            .candidates(Some(DEV_KID), Algorithm::ES256)
            .next()
            .unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::ES256);
        validation.set_audience(&[DEV_AUDIENCE]);
        validation.set_issuer(&[DEV_ISSUER]);
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(&token, &key.key, &validation).unwrap();
        assert_eq!(data.claims["scope"], "read write");
        assert_eq!(data.claims["sub"], "me");
    }
}
