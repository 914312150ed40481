//! The client certificate of a request, as the SHA-256 thumbprint RFC 8705
//! §3.1 binds tokens to (`cnf["x5t#S256"]`): base64url of the SHA-256 of
//! the certificate's DER encoding.
//!
//! Envoy hands the certificate over in one of two ways. On a TLS listener
//! with `include_peer_certificate: true`, the CheckRequest carries the
//! URL-encoded PEM of the connection's client certificate. Behind a front
//! proxy that terminated TLS, the proxy's `x-forwarded-client-cert` (XFCC)
//! header names it (`Hash=` hex SHA-256, or `Cert=` URL-encoded PEM); any
//! client can send that header, so it is read only when configured as
//! trusted, and then only its first element: the one a front proxy that
//! sanitises the header (`SANITIZE_SET`, Istio's gateways) wrote.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::digest::sha256;
use crate::token::extract::percent_decode;

/// Where a request's client certificate may be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CertificateSource {
    /// The TLS peer certificate Envoy passes in the CheckRequest.
    Peer,
    /// The first element of a trusted `x-forwarded-client-cert` header.
    ForwardedHeader,
}

/// The base64url SHA-256 thumbprint of the leaf certificate in `pem`, URL-
/// encoded as Envoy sends it; `None` when it holds no certificate.
pub(crate) fn peer_thumbprint(url_encoded_pem: &str) -> Option<String> {
    let pem = percent_decode(url_encoded_pem)?;
    let der = first_certificate(&pem)?;
    Some(URL_SAFE_NO_PAD.encode(sha256(&der)))
}

/// The thumbprint of the certificate the first element of an XFCC header
/// names: from its `Cert=` when present, else from its `Hash=`.
pub(crate) fn forwarded_thumbprint(xfcc: &str) -> Option<String> {
    let element = first_element(xfcc);
    let mut hash = None;
    for (key, value) in pairs(element) {
        if key.eq_ignore_ascii_case("cert") {
            return peer_thumbprint(value);
        }
        if key.eq_ignore_ascii_case("hash") {
            hash = Some(value);
        }
    }
    let digest = decode_hex(hash?)?;
    (digest.len() == 32).then(|| URL_SAFE_NO_PAD.encode(digest))
}

/// The DER bytes of the first `CERTIFICATE` block of a PEM text.
fn first_certificate(pem: &str) -> Option<Vec<u8>> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let start = pem.find(BEGIN)? + BEGIN.len();
    let body = &pem[start..];
    let body = &body[..body.find(END)?];
    let base64: String = body.split_ascii_whitespace().collect();
    STANDARD.decode(base64).ok().filter(|der| !der.is_empty())
}

/// The first element of an XFCC value: elements are separated by commas
/// outside quoted values.
fn first_element(xfcc: &str) -> &str {
    let mut quoted = false;
    for (index, byte) in xfcc.bytes().enumerate() {
        match byte {
            b'"' => quoted = !quoted,
            b',' if !quoted => return &xfcc[..index],
            _ => {}
        }
    }
    xfcc
}

/// The `key=value` pairs of one XFCC element, separated by semicolons
/// outside quoted values; quotes around a value are dropped.
fn pairs(element: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut parts = Vec::new();
    let (mut quoted, mut start) = (false, 0);
    for (index, byte) in element.bytes().enumerate() {
        match byte {
            b'"' => quoted = !quoted,
            b';' if !quoted => {
                parts.push(&element[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&element[start..]);
    parts.into_iter().filter_map(|part| {
        let (key, value) = part.trim().split_once('=')?;
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        Some((key.trim(), value))
    })
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digit = |b: u8| char::from(b).to_digit(16);
            Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate (the test CA's in tests/fixtures/tls).
    const PEM: &str = include_str!("../../tests/fixtures/tls/ca.crt");

    fn url_encode(text: &str) -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    char::from(b).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect()
    }

    fn expected() -> String {
        URL_SAFE_NO_PAD.encode(sha256(&first_certificate(PEM).unwrap()))
    }

    #[test]
    fn reads_the_peer_certificate_as_envoy_encodes_it() {
        assert_eq!(peer_thumbprint(&url_encode(PEM)), Some(expected()));
        // Unencoded PEM reads the same: percent-decoding leaves it alone.
        assert_eq!(peer_thumbprint(PEM), Some(expected()));
        assert_eq!(peer_thumbprint(""), None);
        assert_eq!(peer_thumbprint("%ZZ"), None);
        assert_eq!(
            peer_thumbprint("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----"),
            None
        );
    }

    #[test]
    fn reads_the_first_xfcc_element_by_cert_or_hash() {
        let digest = sha256(&first_certificate(PEM).unwrap());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let by_hash = format!("By=spiffe://gw;Hash={hex};Subject=\"CN=a,O=b\";URI=spiffe://c");
        assert_eq!(forwarded_thumbprint(&by_hash), Some(expected()));
        let by_cert = format!("Hash=00;Cert=\"{}\"", url_encode(PEM));
        assert_eq!(forwarded_thumbprint(&by_cert), Some(expected()));
        // A later element (a mesh hop, or one a client appended) is never read.
        let later = format!("By=spiffe://sidecar;URI=spiffe://gw,Hash={hex}");
        assert_eq!(forwarded_thumbprint(&later), None);
        assert_eq!(forwarded_thumbprint("Hash=abc"), None);
        assert_eq!(forwarded_thumbprint("Hash=zz"), None);
    }
}
