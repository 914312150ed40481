//! Test tokens signed with the committed fixture keys
//! (`tests/fixtures/keys/`, see its README), through tollgate's own
//! `devtoken` signer, so every test mints its JWTs the same way.
//!
//! ```ignore
//! let token = Token::es256()
//!     .issuer(ISSUER)
//!     .audience("orders-api")
//!     .scopes(["read"])
//!     .claim("azp", "billing-service")
//!     .sign();
//! ```
//!
//! What a test does not set is left at [`Token`]'s defaults: the fields a
//! test asserts on are best set at its call site or in its file's helper.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::Algorithm;
use serde_json::Value;
use tollgate::{DevToken, SigningKey};

use super::check::fixture;

/// `iss` unless a test sets one: an issuer no test configures.
pub const DEFAULT_ISSUER: &str = "https://unconfigured-issuer.test";
/// `sub` unless a test sets one.
pub const DEFAULT_SUBJECT: &str = "alice";
/// `client_id` unless a test sets one.
pub const DEFAULT_CLIENT_ID: &str = "test-client";
/// From `iat` to `exp` unless a test sets it.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(300);

/// A JWT to be signed by one fixture key. Starts from the defaults
/// [`DEFAULT_ISSUER`], no `aud`, [`DEFAULT_SUBJECT`],
/// [`DEFAULT_CLIENT_ID`], no `scope`, `iat` now and `exp`
/// [`DEFAULT_LIFETIME`] later, and no other claims.
pub struct Token {
    key: SigningKey,
    token: DevToken,
}

impl Token {
    /// RS256 with `rsa-2048.pem`, kid `rsa-1`.
    pub fn rs256() -> Token {
        Token::with_key("rsa-2048.pem", Algorithm::RS256, "rsa-1")
    }

    /// ES256 with `ec-p256-1.pem`, kid `ec-1`.
    pub fn es256() -> Token {
        Token::with_key("ec-p256-1.pem", Algorithm::ES256, "ec-1")
    }

    /// ES256 with `ec-p256-2.pem`, kid `ec-2`: the second P-256 key, which
    /// the fixtures publish as the rotation successor of `ec-1`.
    pub fn es256_second() -> Token {
        Token::with_key("ec-p256-2.pem", Algorithm::ES256, "ec-2")
    }

    /// EdDSA with `ed25519.pem`, kid `ed-1`.
    pub fn ed25519() -> Token {
        Token::with_key("ed25519.pem", Algorithm::EdDSA, "ed-1")
    }

    /// Any fixture key `file` (a PKCS#8 PEM in `tests/fixtures/keys/`),
    /// signing with `algorithm` under header `kid`.
    pub fn with_key(file: &str, algorithm: Algorithm, kid: &str) -> Token {
        let key = SigningKey::from_pem(&fixture(file), algorithm, Some(kid.to_owned()))
            .unwrap_or_else(|e| panic!("loading {file}: {e}"));
        Token::signed_by(key)
    }

    /// HS256 with `secret` (trailing whitespace trimmed, as tollgate trims
    /// secrets read from files) and no `kid`: for attacks and symmetric
    /// keys, which have no fixture file.
    pub fn hs256(secret: &[u8]) -> Token {
        let key = SigningKey::from_pem(secret, Algorithm::HS256, None)
            .unwrap_or_else(|e| panic!("an HS256 key: {e}"));
        Token::signed_by(key)
    }

    fn signed_by(key: SigningKey) -> Token {
        Token {
            key,
            token: DevToken {
                issuer: DEFAULT_ISSUER.to_owned(),
                audience: Vec::new(),
                subject: DEFAULT_SUBJECT.to_owned(),
                client_id: DEFAULT_CLIENT_ID.to_owned(),
                scopes: Vec::new(),
                lifetime: DEFAULT_LIFETIME,
                claims: serde_json::Map::new(),
            },
        }
    }

    /// The header `kid`, in place of the key's own: a key published under
    /// another name, or a kid nobody publishes.
    pub fn kid(mut self, kid: &str) -> Token {
        self.key.kid = Some(kid.to_owned());
        self
    }

    /// `iss`.
    pub fn issuer(mut self, issuer: &str) -> Token {
        self.token.issuer = issuer.to_owned();
        self
    }

    /// `aud`, as one string.
    pub fn audience(mut self, audience: &str) -> Token {
        self.token.audience = vec![audience.to_owned()];
        self
    }

    /// `sub`.
    pub fn subject(mut self, subject: &str) -> Token {
        self.token.subject = subject.to_owned();
        self
    }

    /// `client_id`; an empty one is still a (empty) claim.
    pub fn client_id(mut self, client_id: &str) -> Token {
        self.token.client_id = client_id.to_owned();
        self
    }

    /// `scope`, joined with spaces; omitted when `scopes` is empty.
    pub fn scopes<'a>(mut self, scopes: impl AsRef<[&'a str]>) -> Token {
        self.token.scopes = scopes.as_ref().iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// From `iat` (now) to `exp`.
    pub fn lifetime(mut self, lifetime: Duration) -> Token {
        self.token.lifetime = lifetime;
        self
    }

    /// One more claim, set after the ones above, so it may override them;
    /// `Value::Null` sets the claim to `null`, it does not remove it.
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Token {
        self.token.claims.insert(name.to_owned(), value.into());
        self
    }

    /// Each member of the JSON object `claims` as by [`Token::claim`].
    pub fn claims(mut self, claims: Value) -> Token {
        let Value::Object(claims) = claims else {
            panic!("claims must be a JSON object, got {claims}");
        };
        self.token.claims.extend(claims);
        self
    }

    /// The signed compact JWS. Each call signs anew, with `iat` now.
    pub fn sign(&self) -> String {
        self.token
            .sign(&self.key)
            .unwrap_or_else(|e| panic!("signing a test token: {e}"))
    }
}

/// Seconds since the Unix epoch: the clock [`Token::sign`] sets `iat` by,
/// for `exp`, `nbf` and `iat` claims relative to now.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
