//! Server nonces for DPoP proofs (RFC 9449 §8): a client that must include
//! one learns it from a `use_dpop_nonce` refusal's `DPoP-Nonce` header.
//!
//! Nonces are stateless: the time window they were issued in and an HMAC of
//! it, so any instance holding the same secret accepts them and nothing is
//! stored per client. A nonce is accepted in its own window and the next
//! one, so it lives between one and two `lifetime`s. Without a configured
//! secret each instance draws its own, and a nonce one replica issued is
//! refused by another (the client then simply gets a fresh one).

use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::secret::Secret;

/// Bytes of the HMAC kept in a nonce: 128 bits cannot be guessed.
const TAG_BYTES: usize = 16;

/// How nonces are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonceSettings {
    /// How long one window lasts.
    pub lifetime: Duration,
    /// The key nonces are signed with; shared by replicas behind one
    /// Service. `None`: a random one per instance.
    pub secret: Option<Secret>,
}

/// Issues and checks nonces.
pub(crate) struct Nonces {
    key: hmac::Key,
    window_seconds: u64,
}

impl Nonces {
    /// Nonces keyed by the configured secret, or by a random one.
    pub(crate) fn new(settings: &NonceSettings) -> Nonces {
        let key = match &settings.secret {
            Some(secret) => hmac::Key::new(hmac::HMAC_SHA256, secret.expose()),
            None => {
                let mut random = [0u8; 32];
                // The system RNG failing leaves a zero key only in theory;
                // aws-lc-rs aborts rather than return without entropy.
                let _ = aws_lc_rs::rand::fill(&mut random);
                hmac::Key::new(hmac::HMAC_SHA256, &random)
            }
        };
        Nonces {
            key,
            window_seconds: settings.lifetime.as_secs().max(1),
        }
    }

    /// A nonce for the window `now` (Unix seconds) falls in.
    pub(crate) fn issue(&self, now: u64) -> String {
        let window = (now / self.window_seconds).to_be_bytes();
        let tag = hmac::sign(&self.key, &window);
        let mut bytes = window.to_vec();
        bytes.extend_from_slice(&tag.as_ref()[..TAG_BYTES]);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Whether `nonce` was issued in the current window or the one before.
    pub(crate) fn accepts(&self, nonce: &str, now: u64) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(nonce) else {
            return false;
        };
        let Some((window, tag)) = bytes.split_first_chunk::<8>() else {
            return false;
        };
        let issued = u64::from_be_bytes(*window);
        let current = now / self.window_seconds;
        if tag.len() != TAG_BYTES || !(issued == current || issued.checked_add(1) == Some(current))
        {
            return false;
        }
        let expected = hmac::sign(&self.key, window);
        // Constant time: the tag is the secret part.
        aws_lc_rs::constant_time::verify_slices_are_equal(&expected.as_ref()[..TAG_BYTES], tag)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nonces(secret: Option<&str>) -> Nonces {
        Nonces::new(&NonceSettings {
            lifetime: Duration::from_secs(300),
            secret: secret.map(|s| Secret::from_bytes(s.as_bytes())),
        })
    }

    #[test]
    fn a_nonce_lives_through_its_window_and_the_next() {
        let nonces = nonces(None);
        let nonce = nonces.issue(1_000);
        assert!(nonces.accepts(&nonce, 1_000));
        assert!(nonces.accepts(&nonce, 1_199));
        assert!(nonces.accepts(&nonce, 1_499), "the next window");
        assert!(!nonces.accepts(&nonce, 1_500), "two windows on");
        assert!(!nonces.accepts(&nonce, 800), "from the future");
    }

    #[test]
    fn forged_or_foreign_nonces_are_refused() {
        let ours = nonces(Some("shared-secret-of-32-bytes-or-more!"));
        let replica = nonces(Some("shared-secret-of-32-bytes-or-more!"));
        let stranger = nonces(Some("another-secret-of-32-bytes-or-more"));
        let nonce = ours.issue(1_000);
        assert!(replica.accepts(&nonce, 1_000), "same secret, any replica");
        assert!(!stranger.accepts(&nonce, 1_000));
        let mut tampered = URL_SAFE_NO_PAD.decode(&nonce).unwrap();
        tampered[7] ^= 1;
        assert!(!ours.accepts(&URL_SAFE_NO_PAD.encode(tampered), 1_000));
        for junk in ["", "!!", "AAAA", &nonce[..nonce.len() - 2]] {
            assert!(!ours.accepts(junk, 1_000), "{junk}");
        }
    }
}
