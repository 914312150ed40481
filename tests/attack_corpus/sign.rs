//! How the corpus signs: the `sign` recipes of `tests/attacks/README.md`
//! (genuine signatures with fixture keys, HMAC keyed with whatever an
//! attacker might pick, forged ECDSA scalars), for tokens and DPoP proofs
//! alike.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::HMAC_SECRET;
use crate::binding::public_jwk;
use crate::support::check::{fixture, pem_der, rsa_public_pem};
use crate::support::repo_path;

pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The header's `alg` if it reads as one (duplicates: the last), else "".
fn header_alg(header: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(header)
        .ok()
        .and_then(|h| h.get("alg")?.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// The signature part (base64url text) for recipe `sign`.
pub(crate) fn signature(
    sign: &str,
    header: &[u8],
    claims: &[u8],
    input: &str,
) -> Result<String, String> {
    let alg = header_alg(header);
    let (recipe, argument) = sign.split_once(':').unwrap_or((sign, ""));
    Ok(match recipe {
        "provider" => b64(&sign_with_key(provider_key(&alg)?, &alg, input.as_bytes())?),
        "key" => b64(&sign_with_key(argument, &alg, input.as_bytes())?),
        "empty" => String::new(),
        "truncated" => {
            let full = b64(&sign_with_key(provider_key(&alg)?, &alg, input.as_bytes())?);
            full[..full.len() / 2].to_owned()
        }
        "hmac" => b64(&hmac(&alg, &hmac_secret(argument)?, input.as_bytes())),
        "ecdsa" => {
            let (r, s) = argument
                .split_once(':')
                .ok_or("ecdsa:R:S, each 0, 1, n, n+1 or ff")?;
            let width = if alg == "ES384" { 48 } else { 32 };
            b64(&[scalar(r, width)?, scalar(s, width)?].concat())
        }
        "raw" => argument.to_owned(),
        "rfc7797" => {
            let (header_part, _) = input.split_once('.').ok_or("no header part")?;
            let unencoded = [header_part.as_bytes(), b".", claims].concat();
            b64(&sign_with_key(provider_key(&alg)?, &alg, &unencoded)?)
        }
        _ => return Err(format!("unknown sign recipe {sign:?}")),
    })
}

/// The main provider's real private key for `alg`.
fn provider_key(alg: &str) -> Result<&'static str, String> {
    Ok(match alg {
        "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => "rsa-2048",
        "ES256" => "ec-p256-1",
        "ES384" => "ec-p384",
        "EdDSA" => "ed25519",
        other => return Err(format!("the provider has no key for alg {other:?}")),
    })
}

/// Signs with fixture key `name` in that key's own algorithm: an EC key on
/// its own curve whatever the header says (so a header can lie about the
/// curve); RSA with the header's RS/PS hash, RS256 otherwise.
pub(crate) fn sign_with_key(name: &str, alg: &str, message: &[u8]) -> Result<Vec<u8>, String> {
    use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
    let der = pem_der(&private_key_pem(name)?);
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let failed = |_| format!("signing with {name} failed");
    if let Ok(key) = RsaKeyPair::from_pkcs8(&der) {
        let padding: &'static dyn signature::RsaEncoding = match alg {
            "RS384" => &signature::RSA_PKCS1_SHA384,
            "RS512" => &signature::RSA_PKCS1_SHA512,
            "PS256" => &signature::RSA_PSS_SHA256,
            "PS384" => &signature::RSA_PSS_SHA384,
            "PS512" => &signature::RSA_PSS_SHA512,
            _ => &signature::RSA_PKCS1_SHA256,
        };
        let mut out = vec![0; key.public_modulus_len()];
        key.sign(padding, &rng, message, &mut out).map_err(failed)?;
        return Ok(out);
    }
    for curve in [
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
    ] {
        if let Ok(key) = EcdsaKeyPair::from_pkcs8(curve, &der) {
            return Ok(key.sign(&rng, message).map_err(failed)?.as_ref().to_vec());
        }
    }
    let key = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
        .map_err(|_| format!("{name} is not an RSA, EC or Ed25519 PKCS#8 key"))?;
    Ok(key.sign(message).as_ref().to_vec())
}

/// The PKCS#8 PEM of fixture key `name`: one of `tests/fixtures/keys`, or
/// `tls-server` and `tls-client` from `tests/fixtures/tls`.
pub(crate) fn private_key_pem(name: &str) -> Result<Vec<u8>, String> {
    Ok(match name {
        "tls-server" | "tls-client" => {
            let file = name.trim_start_matches("tls-");
            std::fs::read(repo_path(format!("tests/fixtures/tls/{file}.key")))
                .map_err(|e| format!("reading the {name} key: {e}"))?
        }
        "rsa-2048" | "ec-p256-1" | "ec-p256-2" | "ec-p384" | "ed25519" => {
            fixture(&format!("{name}.pem"))
        }
        other => return Err(format!("unknown key {other:?}")),
    })
}

fn hmac_secret(which: &str) -> Result<Vec<u8>, String> {
    Ok(match which {
        "pem" => rsa_public_pem().into_bytes(),
        "jwk" => String::from_utf8_lossy(&fixture("rsa-2048.jwk.json"))
            .trim()
            .as_bytes()
            .to_vec(),
        "secret" => HMAC_SECRET.as_bytes().to_vec(),
        "empty" => Vec::new(),
        other => match other.split_once('=') {
            Some(("text", text)) => text.as_bytes().to_vec(),
            Some(("jwk", key)) => public_jwk(key)?.into_bytes(),
            _ => {
                return Err(format!(
                    "hmac:{other}: pem, jwk, jwk=KEY, secret, empty or text=..."
                ));
            }
        },
    })
}

fn hmac(alg: &str, secret: &[u8], message: &[u8]) -> Vec<u8> {
    use aws_lc_rs::hmac;
    let algorithm = match alg {
        "HS384" => hmac::HMAC_SHA384,
        "HS512" => hmac::HMAC_SHA512,
        _ => hmac::HMAC_SHA256,
    };
    hmac::sign(&hmac::Key::new(algorithm, secret), message)
        .as_ref()
        .to_vec()
}

/// One ECDSA signature half, big-endian in `width` bytes.
fn scalar(word: &str, width: usize) -> Result<Vec<u8>, String> {
    // The group orders of P-256 and P-384 (SEC 2 §2.4.2, §2.5.1).
    const N256: &str = "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551";
    const N384: &str = "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973";
    let order = || {
        let hex = if width == 48 { N384 } else { N256 };
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap_or(0))
            .collect::<Vec<u8>>()
    };
    let mut value = match word {
        "0" => vec![0; width],
        "1" => vec![0; width],
        "n" | "n+1" => order(),
        "ff" => vec![0xff; width],
        other => return Err(format!("ECDSA scalar {other:?}: 0, 1, n, n+1 or ff")),
    };
    if matches!(word, "1" | "n+1") {
        // Neither order ends in 0xff, so adding one never carries.
        if let Some(last) = value.last_mut() {
            *last += 1;
        }
    }
    Ok(value)
}
