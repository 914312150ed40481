//! Path normalisation: turns Envoy's `:path` into the canonical path that
//! route matching compares (`authority` does the same for the host).
//!
//! Matching is only as safe as this step. Anything a backend might decode
//! differently from us (encoded `/` or `\`, control characters, dot-segments
//! with `;` parameters) is refused instead of guessed at, and `;` path
//! parameters are handled as `server.path_parameters` says, since servlet
//! containers drop them before dispatching and other servers do not.

use std::borrow::Cow;

/// Why a request path was refused by [`normalize_path`].
///
/// Variants carry no part of the path: the path is attacker input and the
/// error may end up in a deny response or a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/` (e.g. `*` or `example.com/x`).
    #[error("path does not start with `/`")]
    NotAbsolute,
    /// A `%` is not followed by two hex digits (`%zz`, `%4`, a lone `%`).
    #[error("malformed percent-escape: `%` must be followed by two hex digits")]
    InvalidEscape,
    /// `%2F`: an encoded `/` would let one segment pose as two.
    #[error("encoded `/` (`%2F`) in path")]
    EncodedSlash,
    /// `%5C`: an encoded `\`, which some backends treat as `/`.
    #[error("encoded `\\` (`%5C`) in path")]
    EncodedBackslash,
    /// A literal `\`, which some backends treat as `/`.
    #[error("`\\` in path")]
    Backslash,
    /// A control character (C0, DEL or C1), literal or percent-encoded.
    #[error("control character in path")]
    ControlCharacter,
    /// The percent-decoded bytes are not valid UTF-8.
    #[error("percent-decoded path is not valid UTF-8")]
    InvalidUtf8,
    /// A `.` or `..` segment carrying `;` parameters (`/..;/admin`), which
    /// servlet containers resolve as a dot-segment.
    #[error("dot-segment with `;` parameters in path")]
    DotSegmentParameter,
    /// A `;` while [`PathParameters::Reject`] is in force.
    #[error("`;` in path (server.path_parameters is reject)")]
    PathParameter,
}

/// What a `;` in a request path means, which depends on the upstream:
/// servlet containers (Tomcat, Jetty, Spring) drop `;` parameters from each
/// segment before dispatching, most other servers (Node, Go, nginx, SAP
/// Gateway's `;v=0002`) take `;` literally. Matching must see the path the
/// upstream will serve.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PathParameters {
    /// Refuse any `;` (400): safe whatever the upstream does.
    #[default]
    Reject,
    /// `;` is an ordinary character (RFC 3986).
    Keep,
    /// Drop `;` parameters from each segment before decoding, then merge
    /// slashes and resolve dot-segments, as Tomcat does.
    Strip,
}

/// Canonical form of Envoy's `:path` (which includes the query string), the
/// form every path matcher compares against.
///
/// Steps, in order:
/// 1. cut at the first `?` or `#`;
/// 2. require a leading `/`;
/// 3. percent-decode once, refusing malformed escapes, `%2F`, `%5C`, a
///    literal `\`, control characters and non-UTF-8 results;
/// 4. drop `;` parameters from each segment (`/admin;jsessionid=1/x` is
///    `/admin/x`, as Tomcat, Jetty and Spring dispatch it), merge repeated
///    slashes, drop `.` segments and resolve `..` segments (RFC 3986
///    §5.2.4; `..` at the root stays at the root), refusing `.;x` and
///    `..;x` segments;
/// 5. keep a trailing slash if the input ended in `/`, `/.` or `/..`.
///
/// Decoded `%`, `?` and `#` are written back as `%25`, `%3F` and `%23` so
/// that the output keeps its meaning and is a fixed point:
/// `normalize_path(&normalize_path(p)?) == normalize_path(p)`.
///
/// The path is borrowed from `raw` when it is canonical already, as most
/// request paths are.
pub fn normalize_path(raw: &str) -> Result<Cow<'_, str>, PathError> {
    normalize_request_path(raw, PathParameters::Keep)
}

/// [`normalize_path`] for a request, with `;` treated as `parameters` says.
pub fn normalize_request_path(
    raw: &str,
    parameters: PathParameters,
) -> Result<Cow<'_, str>, PathError> {
    let path = raw.split(['?', '#']).next().unwrap_or_default();
    if is_plain_canonical(path) {
        return Ok(Cow::Borrowed(path));
    }
    normalize_slowly(path, parameters).map(Cow::Owned)
}

/// Whether `path` is what normalisation makes of it, in every mode,
/// without looking further: it starts with `/`, holds only letters, digits,
/// `-`, `_`, `~`, `.` and `/` (nothing to decode, escape or strip), no `//`,
/// and no `.` or `..` segment.
fn is_plain_canonical(path: &str) -> bool {
    path.starts_with('/')
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'~' | b'.'))
        && !path.contains("//")
        && path
            .split('/')
            .all(|segment| segment != "." && segment != "..")
}

/// Every step of [`normalize_path`] on `path` (cut at `?` and `#` already).
fn normalize_slowly(path: &str, parameters: PathParameters) -> Result<String, PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let stripped;
    let path = match parameters {
        PathParameters::Keep => path,
        PathParameters::Reject if path.contains(';') => return Err(PathError::PathParameter),
        PathParameters::Reject => path,
        PathParameters::Strip => {
            stripped = strip_parameters(path)?;
            &stripped
        }
    };
    let decoded = String::from_utf8(percent_decode(path)?).map_err(|_| PathError::InvalidUtf8)?;
    if decoded.chars().any(char::is_control) {
        return Err(PathError::ControlCharacter);
    }
    if parameters == PathParameters::Reject && decoded.contains(';') {
        return Err(PathError::PathParameter);
    }
    remove_dot_segments(&decoded, parameters == PathParameters::Strip)
}

/// Drops `;...` from each raw segment, as servlet containers do before
/// decoding (so an encoded `%3B` stays a character).
fn strip_parameters(path: &str) -> Result<String, PathError> {
    let mut out = String::with_capacity(path.len());
    for (index, segment) in path.split('/').enumerate() {
        if index > 0 {
            out.push('/');
        }
        match segment.split_once(';') {
            Some((".." | ".", _)) => return Err(PathError::DotSegmentParameter),
            Some((name, _parameters)) => out.push_str(name),
            None => out.push_str(segment),
        }
    }
    Ok(out)
}

fn percent_decode(path: &str) -> Result<Vec<u8>, PathError> {
    let mut decoded = Vec::with_capacity(path.len());
    let mut bytes = path.bytes();
    while let Some(byte) = bytes.next() {
        match byte {
            b'\\' => return Err(PathError::Backslash),
            b'%' => {
                let high = bytes
                    .next()
                    .and_then(hex_value)
                    .ok_or(PathError::InvalidEscape)?;
                let low = bytes
                    .next()
                    .and_then(hex_value)
                    .ok_or(PathError::InvalidEscape)?;
                match (high << 4) | low {
                    b'/' => return Err(PathError::EncodedSlash),
                    b'\\' => return Err(PathError::EncodedBackslash),
                    other => decoded.push(other),
                }
            }
            other => decoded.push(other),
        }
    }
    Ok(decoded)
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// `decoded` starts with `/` and contains no encoded separators any more.
///
/// Dot-segments resolve as RFC 3986 §5.2.4 says, where `..` removes an empty
/// segment too (`/a//../b` is `/a/b`, as Envoy, Node and Go see it); with
/// `merge_first`, repeated slashes merge before that, as Tomcat does
/// (`/a//../b` is `/b`). Either way the result has no empty segments.
fn remove_dot_segments(decoded: &str, merge_first: bool) -> Result<String, PathError> {
    let relative = decoded.strip_prefix('/').unwrap_or(decoded);
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for segment in relative.split('/') {
        // Servlet containers resolve `..;x` as `..`; nobody sends it for
        // a legitimate reason.
        if let Some((".." | ".", _)) = segment.split_once(';') {
            return Err(PathError::DotSegmentParameter);
        }
        // `/a/.` and `/a/..` name a directory, as `/a/` does (RFC 3986 §5.2.4).
        trailing_slash = matches!(segment, "" | "." | "..");
        match segment {
            "" if merge_first => {}
            "." => {}
            ".." => {
                segments.pop();
            }
            _ => segments.push(segment),
        }
    }
    let mut canonical = String::with_capacity(decoded.len() + 1);
    for segment in segments.iter().filter(|segment| !segment.is_empty()) {
        canonical.push('/');
        push_escaped(&mut canonical, segment);
    }
    if canonical.is_empty() || trailing_slash {
        canonical.push('/');
    }
    Ok(canonical)
}

/// Re-encodes the characters that would change the meaning of a path if
/// it were normalised again.
fn push_escaped(out: &mut String, segment: &str) {
    for character in segment.chars() {
        match character {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3F"),
            '#' => out.push_str("%23"),
            other => out.push(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn with(raw: &str, parameters: PathParameters) -> Result<String, PathError> {
        normalize_request_path(raw, parameters).map(Cow::into_owned)
    }

    #[test]
    fn path_parameters_are_refused_by_default() {
        use PathParameters::Reject;
        assert_eq!(PathParameters::default(), Reject);
        assert_eq!(
            with("/admin;x/secret", Reject),
            Err(PathError::PathParameter)
        );
        assert_eq!(
            with("/admin%3Bx/secret", Reject),
            Err(PathError::PathParameter)
        );
        assert_eq!(
            with("/admin/secret?a=1;b=2", Reject),
            Ok("/admin/secret".into())
        );
    }

    #[test]
    fn path_parameters_are_dropped_as_servlet_containers_drop_them() {
        use PathParameters::Strip;
        assert_eq!(with("/admin;x/secret", Strip), Ok("/admin/secret".into()));
        assert_eq!(
            with("/admin;jsessionid=1/secret", Strip),
            Ok("/admin/secret".into())
        );
        assert_eq!(with("/post;x", Strip), Ok("/post".into()));
        // Tomcat strips before decoding: an encoded `;` is a character.
        assert_eq!(
            with("/admin%3Bx/secret", Strip),
            Ok("/admin;x/secret".into())
        );
        // ...and merges slashes before resolving dot-segments.
        assert_eq!(with("/secret/;x/../status", Strip), Ok("/status".into()));
        assert_eq!(
            with("/a/..;/admin", Strip),
            Err(PathError::DotSegmentParameter)
        );
    }

    #[test]
    fn path_parameters_can_be_kept_literally() {
        use PathParameters::Keep;
        assert_eq!(
            with("/sap/opu/odata/sap/ZORDERS_SRV;v=0002/Orders", Keep),
            Ok("/sap/opu/odata/sap/ZORDERS_SRV;v=0002/Orders".into())
        );
        // `;x` is a segment like any other, so `..` removes it.
        assert_eq!(
            with("/secret/;x/../status", Keep),
            Ok("/secret/status".into())
        );
        assert_eq!(
            with("/a/..;/admin", Keep),
            Err(PathError::DotSegmentParameter)
        );
    }

    #[test]
    fn dot_dot_removes_an_empty_segment_as_rfc_3986_says() {
        // Envoy, Node and Go all serve `/secret/status` here.
        assert_eq!(
            normalize_path("/secret//../status"),
            Ok("/secret/status".into())
        );
        assert_eq!(normalize_path("/a//b"), Ok("/a/b".into()));
        assert_eq!(normalize_path("//admin"), Ok("/admin".into()));
    }

    #[test]
    fn path_attacks_resolve_to_the_real_target() {
        assert_eq!(normalize_path("/public/../admin"), Ok("/admin".into()));
        assert_eq!(normalize_path("/public/%2e%2e/admin"), Ok("/admin".into()));
        assert_eq!(normalize_path("/public/%2E%2E/admin"), Ok("/admin".into()));
        assert_eq!(normalize_path("/public/.%2e/admin"), Ok("/admin".into()));
        assert_eq!(normalize_path("//admin"), Ok("/admin".into()));
        assert_eq!(normalize_path("/admin/./x"), Ok("/admin/x".into()));
        assert_eq!(normalize_path("/%61dmin"), Ok("/admin".into()));
        assert_eq!(normalize_path("/admin?x=/public"), Ok("/admin".into()));
        assert_eq!(normalize_path("/admin#/public"), Ok("/admin".into()));
    }

    #[test]
    fn path_refuses_encoded_separators() {
        assert_eq!(
            normalize_path("/public%2F..%2Fadmin"),
            Err(PathError::EncodedSlash)
        );
        assert_eq!(normalize_path("/admin%2fx"), Err(PathError::EncodedSlash));
        assert_eq!(
            normalize_path("/admin%5Cx"),
            Err(PathError::EncodedBackslash)
        );
        assert_eq!(
            normalize_path("/admin%5cx"),
            Err(PathError::EncodedBackslash)
        );
        assert_eq!(
            normalize_path("/public\\..\\admin"),
            Err(PathError::Backslash)
        );
    }

    #[test]
    fn path_refuses_bad_escapes_and_bytes() {
        assert_eq!(normalize_path("/a%zz"), Err(PathError::InvalidEscape));
        assert_eq!(normalize_path("/a%4"), Err(PathError::InvalidEscape));
        assert_eq!(normalize_path("/a%"), Err(PathError::InvalidEscape));
        assert_eq!(normalize_path("/a%00"), Err(PathError::ControlCharacter));
        assert_eq!(normalize_path("/a%0a"), Err(PathError::ControlCharacter));
        assert_eq!(normalize_path("/a%7F"), Err(PathError::ControlCharacter));
        assert_eq!(normalize_path("/a%C2%85"), Err(PathError::ControlCharacter));
        assert_eq!(normalize_path("/a\tb"), Err(PathError::ControlCharacter));
        assert_eq!(normalize_path("/a%ff"), Err(PathError::InvalidUtf8));
        assert_eq!(normalize_path("/caf%C3%A9"), Ok("/café".into()));
    }

    #[test]
    fn path_must_be_absolute() {
        assert_eq!(normalize_path(""), Err(PathError::NotAbsolute));
        assert_eq!(normalize_path("*"), Err(PathError::NotAbsolute));
        assert_eq!(normalize_path("admin"), Err(PathError::NotAbsolute));
        assert_eq!(normalize_path("?/admin"), Err(PathError::NotAbsolute));
    }

    #[test]
    fn path_resolves_dot_segments_per_rfc_3986() {
        assert_eq!(normalize_path("/"), Ok("/".into()));
        assert_eq!(normalize_path("/.."), Ok("/".into()));
        assert_eq!(normalize_path("/../../etc"), Ok("/etc".into()));
        assert_eq!(normalize_path("/a/b/../c"), Ok("/a/c".into()));
        assert_eq!(normalize_path("/a/."), Ok("/a/".into()));
        assert_eq!(normalize_path("/a/b/.."), Ok("/a/".into()));
        assert_eq!(normalize_path("/a/..."), Ok("/a/...".into()));
        assert_eq!(normalize_path("/a//b///"), Ok("/a/b/".into()));
    }

    #[test]
    fn path_keeps_trailing_slash() {
        assert_eq!(normalize_path("/api/"), Ok("/api/".into()));
        assert_eq!(normalize_path("/api"), Ok("/api".into()));
        assert_eq!(normalize_path("/api/?q"), Ok("/api/".into()));
    }

    #[test]
    fn path_refuses_dot_segments_with_parameters() {
        assert_eq!(
            normalize_path("/public/..;/admin"),
            Err(PathError::DotSegmentParameter)
        );
        assert_eq!(
            normalize_path("/public/%2e%2e;x=1/admin"),
            Err(PathError::DotSegmentParameter)
        );
        assert_eq!(
            normalize_path("/public/.;/admin"),
            Err(PathError::DotSegmentParameter)
        );
        assert_eq!(normalize_path("/a;b/c"), Ok("/a;b/c".into()));
    }

    #[test]
    fn path_reencodes_characters_that_would_change_meaning() {
        assert_eq!(normalize_path("/100%25"), Ok("/100%25".into()));
        assert_eq!(normalize_path("/a%3Fb"), Ok("/a%3Fb".into()));
        assert_eq!(normalize_path("/a%23b"), Ok("/a%23b".into()));
        assert_eq!(normalize_path("/%252e%252e/x"), Ok("/%252e%252e/x".into()));
    }

    /// Path pieces chosen to hit every branch: separators, dots in both
    /// spellings, escapes good and bad, query and fragment markers.
    fn path_piece() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "/", "/", "/", "a", "b", "admin", ".", "..", "%2e", "%2E", "%2e%2e", "%2f", "%5c",
            "%41", "%25", "%3f", "%23", "%", "%z", "?", "#", "\\", "%00", "é", ";", "..;", " ",
            "a-b", "x_y~", ".a", "a.",
        ])
    }

    fn raw_path() -> impl Strategy<Value = String> {
        prop::collection::vec(path_piece(), 0..16).prop_map(|pieces| pieces.concat())
    }

    fn segments(path: &str) -> impl Iterator<Item = &str> {
        path.split('/').skip(1)
    }

    proptest! {
        #[test]
        fn the_shortcut_for_plain_paths_changes_no_answer(raw in raw_path()) {
            let path = raw.split(['?', '#']).next().unwrap_or_default();
            for mode in [PathParameters::Reject, PathParameters::Keep, PathParameters::Strip] {
                prop_assert_eq!(
                    normalize_request_path(&raw, mode).map(Cow::into_owned),
                    normalize_slowly(path, mode),
                    "{:?} in {:?}", raw, mode
                );
                if is_plain_canonical(path) {
                    prop_assert_eq!(normalize_slowly(path, mode), Ok(path.to_owned()));
                }
            }
        }

        #[test]
        fn normalisation_is_idempotent(raw in raw_path()) {
            if let Ok(once) = normalize_path(&raw) {
                prop_assert_eq!(normalize_path(&once), Ok(once.clone()));
            }
        }

        #[test]
        fn output_has_no_empty_or_dot_segments(raw in raw_path()) {
            if let Ok(path) = normalize_path(&raw) {
                prop_assert!(path.starts_with('/'));
                prop_assert!(!path.contains("//"));
                prop_assert!(!path.contains("/./"));
                prop_assert!(!path.contains("/../"));
                prop_assert!(!path.ends_with("/.") && !path.ends_with("/.."));
                prop_assert!(!path.contains('?') && !path.contains('#') && !path.contains('\\'));
            }
        }

        #[test]
        fn output_never_escapes_the_root(raw in raw_path()) {
            if let Ok(path) = normalize_path(&raw) {
                prop_assert!(segments(&path).all(|segment| segment != ".." && segment != "."));
            }
        }

        #[test]
        fn arbitrary_input_never_panics(raw in any::<String>()) {
            if let Ok(path) = normalize_path(&raw) {
                prop_assert_eq!(normalize_path(&path), Ok(path.clone()));
            }
        }
    }
}
