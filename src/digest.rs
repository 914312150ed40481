//! SHA-256, for cache keys and document fingerprints. A cache keyed by
//! [`TokenKey`] never holds a token: only its hash.

/// The SHA-256 of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// A token's SHA-256: the key every per-token cache (verified JWTs,
/// introspection answers, minted identity tokens) is looked up by. Computed
/// once per check and shared by them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TokenKey([u8; 32]);

impl TokenKey {
    /// The key of `token`.
    pub(crate) fn of(token: &str) -> TokenKey {
        TokenKey(sha256(token.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_keys_are_hashes_not_tokens() {
        let key = TokenKey::of("abc");
        assert_ne!(&key.0[..3], b"abc");
        assert_eq!(key, TokenKey::of("abc"));
        assert_ne!(key, TokenKey::of("abd"));
        // The SHA-256 of "abc" (FIPS 180-2, appendix B.1).
        assert_eq!(key.0[..4], [0xba, 0x78, 0x16, 0xbf]);
    }
}
