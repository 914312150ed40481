//! Host patterns: which `:authority` hosts a route applies to.

use super::error::RouteError;

/// Compiled `hosts` list of one route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostSet {
    /// Empty list or a `*` entry.
    Any,
    /// Never empty.
    Listed(Vec<HostPattern>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostPattern {
    /// A canonical host name or IP literal (no brackets, no port, lower-case).
    Exact(String),
    /// The suffix of `*.example.com`, kept with its dot: `.example.com`.
    Wildcard(String),
}

impl HostSet {
    pub(crate) fn compile(hosts: &[String]) -> Result<Self, RouteError> {
        let mut patterns = Vec::with_capacity(hosts.len());
        for host in hosts {
            match parse_pattern(host)? {
                None => return Ok(Self::Any),
                Some(pattern) if patterns.contains(&pattern) => {}
                Some(pattern) => patterns.push(pattern),
            }
        }
        Ok(if patterns.is_empty() {
            Self::Any
        } else {
            Self::Listed(patterns)
        })
    }

    /// `host` is expected canonical (see `normalize_host`); case is ignored
    /// anyway so that a caller's slip fails safe rather than open.
    pub(crate) fn matches(&self, host: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Listed(patterns) => patterns.iter().any(|pattern| pattern.matches(host)),
        }
    }

    /// Every host `other` matches, `self` matches too.
    pub(crate) fn covers(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Any, _) => true,
            (Self::Listed(_), Self::Any) => false,
            (Self::Listed(mine), Self::Listed(theirs)) => theirs
                .iter()
                .all(|their| mine.iter().any(|my| my.covers(their))),
        }
    }

    /// Some host matches both.
    pub(crate) fn intersects(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Any, _) | (_, Self::Any) => true,
            (Self::Listed(mine), Self::Listed(theirs)) => mine
                .iter()
                .any(|my| theirs.iter().any(|their| my.intersects(their))),
        }
    }
}

impl HostPattern {
    fn matches(&self, host: &str) -> bool {
        match self {
            Self::Exact(name) => name.eq_ignore_ascii_case(host),
            Self::Wildcard(suffix) => {
                let Some(split) = host.len().checked_sub(suffix.len()) else {
                    return false;
                };
                let (Some(label), Some(tail)) = (host.get(..split), host.get(split..)) else {
                    return false;
                };
                // The `*` must stand for at least one real label: `*.example.com`
                // never matches `example.com`, nor junk such as `x:y.example.com`.
                !label.is_empty()
                    && label.bytes().all(is_name_byte)
                    && tail.eq_ignore_ascii_case(suffix)
            }
        }
    }

    fn covers(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Exact(mine), Self::Exact(theirs)) => mine == theirs,
            (Self::Exact(_), Self::Wildcard(_)) => false,
            (Self::Wildcard(_), Self::Exact(name)) => self.matches(name),
            (Self::Wildcard(mine), Self::Wildcard(theirs)) => theirs.ends_with(mine.as_str()),
        }
    }

    fn intersects(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Wildcard(mine), Self::Wildcard(theirs)) => {
                theirs.ends_with(mine.as_str()) || mine.ends_with(theirs.as_str())
            }
            _ => self.covers(other) || other.covers(self),
        }
    }
}

/// `Ok(None)` means "any host".
fn parse_pattern(raw: &str) -> Result<Option<HostPattern>, RouteError> {
    let invalid = |reason: &'static str| RouteError::InvalidHost {
        pattern: raw.to_owned(),
        reason,
    };
    let lower = raw.to_ascii_lowercase();
    if lower == "*" {
        return Ok(None);
    }
    if lower.contains("://") || lower.contains('/') {
        return Err(invalid(
            "a host is a name such as `api.example.com`, not a URL or a path",
        ));
    }
    if let Some(suffix) = lower.strip_prefix("*.") {
        let suffix = suffix.strip_suffix('.').unwrap_or(suffix);
        check_name(suffix).map_err(invalid)?;
        return Ok(Some(HostPattern::Wildcard(format!(".{suffix}"))));
    }
    if lower.contains('*') {
        return Err(invalid(
            "`*` is allowed only alone or as the whole first label (`*.example.com`)",
        ));
    }
    if let Some(bracketed) = lower.strip_prefix('[') {
        let address = bracketed.strip_suffix(']').ok_or_else(|| {
            invalid("an IPv6 literal must be `[address]` without a port; ports are ignored")
        })?;
        return Ok(Some(HostPattern::Exact(
            canonical_ipv6(address).map_err(invalid)?,
        )));
    }
    if lower.matches(':').count() >= 2 {
        return Ok(Some(HostPattern::Exact(
            canonical_ipv6(&lower).map_err(invalid)?,
        )));
    }
    if lower.contains(':') {
        return Err(invalid(
            "a host pattern has no port; ports are ignored when matching",
        ));
    }
    let name = lower.strip_suffix('.').unwrap_or(&lower);
    check_name(name).map_err(invalid)?;
    Ok(Some(HostPattern::Exact(name.to_owned())))
}

fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty host name");
    }
    if name.split('.').any(str::is_empty) {
        return Err("empty label (`..` or a leading dot)");
    }
    if !name.bytes().all(is_name_byte) {
        return Err(
            "a host name has only letters, digits, `-`, `_` and `.` (use punycode for IDNs)",
        );
    }
    Ok(())
}

/// The address in RFC 5952 form, as request hosts are normalised, so
/// `[0:0::1]` in config matches a request for `[::1]`.
fn canonical_ipv6(address: &str) -> Result<String, &'static str> {
    address
        .parse::<std::net::Ipv6Addr>()
        .map(|address| address.to_string())
        .map_err(|_| "not an IPv6 address")
}

fn is_name_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(hosts: &[&str]) -> HostSet {
        let owned: Vec<String> = hosts.iter().map(|host| (*host).to_owned()).collect();
        match HostSet::compile(&owned) {
            Ok(set) => set,
            Err(error) => panic!("{hosts:?} should compile: {error}"),
        }
    }

    #[test]
    fn empty_list_and_star_match_any_host() {
        assert_eq!(set(&[]), HostSet::Any);
        assert_eq!(set(&["a.com", "*"]), HostSet::Any);
        assert!(set(&[]).matches("anything"));
    }

    #[test]
    fn exact_host_ignores_case() {
        let hosts = set(&["API.example.com"]);
        assert!(hosts.matches("api.example.com"));
        assert!(hosts.matches("Api.Example.Com"));
        assert!(!hosts.matches("api.example.com.evil"));
        assert!(!hosts.matches("example.com"));
    }

    #[test]
    fn wildcard_needs_at_least_one_label() {
        let hosts = set(&["*.example.com"]);
        assert!(hosts.matches("a.example.com"));
        assert!(hosts.matches("a.b.example.com"));
        assert!(!hosts.matches("example.com"));
        assert!(!hosts.matches(".example.com"));
        assert!(!hosts.matches("aexample.com"));
        assert!(!hosts.matches("x:y.example.com"));
        assert!(!hosts.matches("a.example.com.evil.net"));
    }

    #[test]
    fn trailing_dot_and_ipv6_patterns_are_canonicalised() {
        assert!(set(&["example.com."]).matches("example.com"));
        assert!(set(&["[::1]"]).matches("::1"));
        assert!(set(&["::1"]).matches("::1"));
        assert!(set(&["[0:0::1]"]).matches("::1"));
        assert!(set(&["[2001:DB8:0::1]"]).matches("2001:db8::1"));
    }

    #[test]
    fn bad_patterns_are_rejected() {
        for bad in [
            "a.*.com",
            "*example.com",
            "*.",
            "",
            "a..b",
            ".a",
            "ex ample.com",
            "a.com:80",
            "[::1]:80",
            "[zz]",
            "[fe80:]",
            "1:2:3",
            "*.*.com",
            "**",
            "https://api.example.com",
            "api.example.com/v1",
        ] {
            let result = HostSet::compile(&[bad.to_owned()]);
            assert!(
                matches!(result, Err(RouteError::InvalidHost { .. })),
                "{bad:?} -> {result:?}"
            );
        }
    }

    #[test]
    fn a_url_is_not_a_host() {
        let error = HostSet::compile(&["https://api.example.com".to_owned()]).err();
        assert!(
            error.is_some_and(|e| e.to_string().contains("not a URL")),
            "the message should say what a host is"
        );
    }

    #[test]
    fn covers_and_intersects() {
        let wild = set(&["*.example.com"]);
        let deep = set(&["*.b.example.com"]);
        let exact = set(&["a.example.com"]);
        let apex = set(&["example.com"]);
        assert!(wild.covers(&deep) && wild.covers(&exact));
        assert!(!wild.covers(&apex) && !wild.intersects(&apex));
        assert!(!deep.covers(&wild) && deep.intersects(&wild));
        assert!(!exact.covers(&wild) && exact.intersects(&wild));
        assert!(HostSet::Any.covers(&wild) && !wild.covers(&HostSet::Any));
        assert!(set(&["a.com", "b.com"]).covers(&set(&["b.com"])));
        assert!(!set(&["a.com"]).intersects(&set(&["b.com"])));
    }

    fn host_set() -> impl Strategy<Value = HostSet> {
        let pattern = prop::sample::select(vec![
            "*",
            "a.com",
            "b.a.com",
            "*.a.com",
            "*.b.a.com",
            "c.com",
            "*.com",
        ]);
        prop::collection::vec(pattern, 0..3).prop_map(|hosts| set(&hosts))
    }

    fn host() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "a.com",
            "b.a.com",
            "x.b.a.com",
            "c.com",
            "com",
            "x.com",
            "a.org",
        ])
    }

    proptest! {
        #[test]
        fn covers_is_sound(first in host_set(), second in host_set(), host in host()) {
            if first.covers(&second) && second.matches(host) {
                prop_assert!(first.matches(host));
            }
        }

        #[test]
        fn disjoint_sets_share_no_host(first in host_set(), second in host_set(), host in host()) {
            if !first.intersects(&second) {
                prop_assert!(!(first.matches(host) && second.matches(host)));
            }
        }
    }
}
