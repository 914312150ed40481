//! Host normalisation: turns Envoy's `:authority` into the canonical host
//! that route matching compares. An authority a backend might read as
//! another host (a malformed port, empty labels, a bracketed part that is
//! not an IPv6 address) is refused instead of guessed at.

use std::borrow::Cow;

/// Canonical host of an HTTP authority, as [`RequestTarget::host`] expects.
///
/// Strips a numeric port (`Example.COM:8443` -> `example.com`), the brackets
/// and port of an IPv6 literal (`[::1]:80` -> `::1`) and one trailing dot
/// (`host.` -> `host`), then lower-cases ASCII. An empty authority gives an
/// empty host, which only host-agnostic routes match.
///
/// `None` for an authority that does not parse this way (`host:abc`,
/// `host:80:80`, `a..b`, `[::1]junk`): a backend may read such a host
/// differently (everything before the first `:`, say), so the request is
/// refused rather than matched as some other host.
///
/// [`RequestTarget::host`]: super::RequestTarget::host
///
/// The host is borrowed from `authority` when it needs no change, as for
/// most requests (`api.example.com`, or with a port).
pub fn normalize_host(authority: &str) -> Option<Cow<'_, str>> {
    if authority.is_empty() {
        return Some(Cow::Borrowed(""));
    }
    if let Some(bracketed) = authority.strip_prefix('[') {
        let (address, rest) = bracketed.split_once(']')?;
        if !(rest.is_empty() || is_port_suffix(rest)) {
            return None;
        }
        return canonical_ipv6(address).map(Cow::Owned);
    }
    // Two or more colons: an unbracketed IPv6 address, which has no port.
    if authority.matches(':').count() >= 2 {
        return canonical_ipv6(authority).map(Cow::Owned);
    }
    let name = match authority.split_once(':') {
        Some((name, port)) if is_digits(port) => name,
        Some(_) => return None,
        None => authority,
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    // RFC 3986 reg-name characters (unreserved and sub-delims), in
    // non-empty labels.
    let valid = name.split('.').all(|label| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_~!$&'()*+,;=".contains(&b))
    });
    if !valid {
        return None;
    }
    Some(if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    })
}

/// An IPv6 address in its RFC 5952 text form, so that `0:0::1` and `::1`
/// are one host, then any RFC 6874 zone id (`fe80::1%25eth0`), lower-cased.
/// `None` if it is not one: hex digits and colons alone are not enough
/// (`[fe80:]:80` would give `fe80:`, which reads as the host `fe80` with an
/// empty port).
fn canonical_ipv6(text: &str) -> Option<String> {
    let (address, zone) = match text.split_once('%') {
        Some((address, zone)) => (address, Some(zone)),
        None => (text, None),
    };
    let address = address.parse::<std::net::Ipv6Addr>().ok()?;
    match zone {
        None => Some(address.to_string()),
        Some(zone)
            if zone
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')) =>
        {
            Some(format!("{address}%{}", zone.to_ascii_lowercase()))
        }
        Some(_) => None,
    }
}

fn is_port_suffix(rest: &str) -> bool {
    rest.strip_prefix(':').is_some_and(is_digits)
}

fn is_digits(text: &str) -> bool {
    text.bytes().all(|byte| byte.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn host(authority: &str) -> Option<String> {
        normalize_host(authority).map(Cow::into_owned)
    }

    #[test]
    fn host_lowercases_and_strips_port_and_dot() {
        assert_eq!(host("Example.COM:8443").as_deref(), Some("example.com"));
        assert_eq!(host("Example.com:443").as_deref(), Some("example.com"));
        assert_eq!(host("host.").as_deref(), Some("host"));
        assert_eq!(host("host.:80").as_deref(), Some("host"));
        assert_eq!(host("api.example.com").as_deref(), Some("api.example.com"));
        assert_eq!(host("host:").as_deref(), Some("host"));
        assert_eq!(host("").as_deref(), Some(""));
    }

    #[test]
    fn host_handles_ipv6_literals() {
        assert_eq!(host("[::1]:80").as_deref(), Some("::1"));
        assert_eq!(host("[::1]").as_deref(), Some("::1"));
        assert_eq!(host("[FE80::1]").as_deref(), Some("fe80::1"));
        assert_eq!(host("::1").as_deref(), Some("::1"));
        assert_eq!(
            host("[fe80::1%25eth0]:8080").as_deref(),
            Some("fe80::1%25eth0")
        );
        // One address, one host: RFC 5952 form, whatever the spelling.
        for spelling in ["[0:0::1]", "[0000:0:0:0:0:0:0:1]:443", "0::0:1"] {
            assert_eq!(host(spelling).as_deref(), Some("::1"), "{spelling}");
        }
        assert_eq!(
            host("[FE80:0::1%25ETH0]").as_deref(),
            Some("fe80::1%25eth0")
        );
    }

    #[test]
    fn host_accepts_every_rfc_3986_name_character() {
        assert_eq!(host("a~b.example").as_deref(), Some("a~b.example"));
        assert_eq!(host("my_host:8080").as_deref(), Some("my_host"));
        assert_eq!(
            host("xn--bcher-kva.example").as_deref(),
            Some("xn--bcher-kva.example")
        );
    }

    #[test]
    fn host_refuses_malformed_authorities() {
        // A backend may take everything before the first `:` as the host.
        for bad in [
            "admin.example.com:abc",
            "admin.example.com:80:80",
            "admin.example.com:+80",
            "admin.example.com:-1",
            "admin.example.com:80.",
            "admin.example.com..",
            "a..b",
            ".a",
            "[::1]junk",
            "[]",
            // Found by the `paths` fuzz target: not IPv6 addresses, and
            // `fe80:` normalised again is the host `fe80`.
            "[fe80:]:80",
            "[:]",
            "[1:2]",
            "1:2:3",
            "[::1::2]",
            "x:y.example.com",
            "ex ample.com",
            "evil.com/admin.example.com",
            "user@admin.example.com",
        ] {
            assert_eq!(host(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn a_normalised_host_is_a_lower_case_fixed_point(host in any::<String>()) {
            if let Some(host) = normalize_host(&host) {
                prop_assert!(!host.bytes().any(|byte| byte.is_ascii_uppercase()));
                prop_assert_eq!(normalize_host(&host), Some(host.clone()));
            }
        }
    }
}
