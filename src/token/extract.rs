//! Finding the bearer token in a request: an ordered list of places to look
//! (headers with a scheme or prefix, a query parameter, a cookie), and the
//! RFC 6750 §2 rule that a request carries at most one token.

use std::borrow::Cow;

/// One place a token may be carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// A request header (name lower-case).
    Header {
        /// Lower-case header name.
        name: String,
        /// What precedes the token in the value.
        format: HeaderFormat,
    },
    /// A query parameter (RFC 6750 §2.3 `access_token`, or another name).
    Query(String),
    /// A cookie.
    Cookie(String),
}

/// How a token sits inside a header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderFormat {
    /// `<scheme> <token>`, the scheme matched case-insensitively (`Bearer`).
    /// Values with another scheme (`Basic ...`) are not tokens for this source.
    Scheme(String),
    /// A literal prefix, matched exactly, then the token.
    Prefix(String),
    /// The whole value is the token (`X-Octelium-Auth: <token>`).
    Raw,
}

impl TokenSource {
    /// The default: `Authorization: Bearer <token>`.
    pub fn authorization_bearer() -> TokenSource {
        TokenSource::Header {
            name: "authorization".to_owned(),
            format: HeaderFormat::Scheme("Bearer".to_owned()),
        }
    }
}

/// Why no single token could be taken from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtractError {
    /// Two different tokens were sent (RFC 6750 §2: at most one method).
    Conflict,
    /// A source was present but what it held is not a token.
    Malformed,
}

/// The request parts a token may come from.
pub trait TokenCarrier {
    /// Every value of the header `name` (lower-case), one per field line.
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a;
    /// The raw query string, without the `?`.
    fn query(&self) -> Option<&str>;
}

/// Looks in every source and returns the token, if exactly one distinct token was sent.
pub fn extract<'r, C: TokenCarrier>(
    sources: &'r [TokenSource],
    request: &'r C,
) -> Result<Option<Cow<'r, str>>, ExtractError> {
    let mut found: Option<Cow<'r, str>> = None;
    let mut offer = |token: Cow<'r, str>| -> Result<(), ExtractError> {
        if !is_token68(&token) {
            return Err(ExtractError::Malformed);
        }
        match &found {
            Some(existing) if *existing != token => Err(ExtractError::Conflict),
            Some(_) => Ok(()),
            None => {
                found = Some(token);
                Ok(())
            }
        }
    };
    for source in sources {
        match source {
            TokenSource::Header { name, format } => {
                for value in request.header_values(name) {
                    // Envoy joins repeated headers with commas, and no token
                    // contains one, so each comma-separated item is a value.
                    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                        if let Some(token) = strip_format(item, format)? {
                            offer(Cow::Borrowed(token))?;
                        }
                    }
                }
            }
            TokenSource::Query(param) => {
                let pairs = request.query().into_iter().flat_map(|q| q.split('&'));
                for pair in pairs {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    // The name must be spelled exactly: Envoy removes query
                    // parameters by their name as written. Another spelling
                    // that a framework would read as the same name
                    // (`access%5Ftoken`, PHP's `access.token`) could carry a
                    // second token past tollgate, so it is refused.
                    if key == param {
                        offer(percent_decode(value).ok_or(ExtractError::Malformed)?)?;
                    } else if reads_as(key, param) {
                        return Err(ExtractError::Conflict);
                    }
                }
            }
            TokenSource::Cookie(cookie) => {
                for header in request.header_values("cookie") {
                    for pair in header.split(';') {
                        if let Some((key, value)) = pair.trim().split_once('=')
                            && key == cookie
                        {
                            offer(Cow::Borrowed(value.trim_matches('"')))?;
                        }
                    }
                }
            }
        }
    }
    Ok(found)
}

/// The token inside one header value, `None` if the value is not for this source.
fn strip_format<'v>(
    value: &'v str,
    format: &HeaderFormat,
) -> Result<Option<&'v str>, ExtractError> {
    match format {
        HeaderFormat::Raw => Ok(Some(value)),
        HeaderFormat::Prefix(prefix) => Ok(value.strip_prefix(prefix.as_str())),
        HeaderFormat::Scheme(scheme) => {
            let (given, rest) = value.split_once(' ').unwrap_or((value, ""));
            if !given.eq_ignore_ascii_case(scheme) {
                return Ok(None);
            }
            let token = rest.trim_start_matches(' ');
            if token.is_empty() {
                return Err(ExtractError::Malformed);
            }
            Ok(Some(token))
        }
    }
}

/// RFC 7235 token68, the syntax of RFC 6750's `b64token`: what any JWT or
/// opaque access token looks like. Anything else is refused before parsing.
fn is_token68(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty() && body.bytes().all(|b| TOKEN68[usize::from(b)])
}

/// The token68 characters (besides trailing `=`) as a table: every byte of
/// every token goes through [`is_token68`], and one load per byte is
/// cheaper than the chain of range tests.
const TOKEN68: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < table.len() {
        let b = byte as u8;
        table[byte] =
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        byte += 1;
    }
    table
};

/// Percent-decodes a query component. `+` stays `+`: a space is never valid
/// in a token, so reading it as one could only turn a good token bad.
pub(crate) fn percent_decode(input: &str) -> Option<Cow<'_, str>> {
    if !input.contains('%') {
        return Some(Cow::Borrowed(input));
    }
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let high = hex_value(*bytes.get(i + 1)?)?;
            let low = hex_value(*bytes.get(i + 2)?)?;
            out.push(high << 4 | low);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// Whether a query key, decoded as web frameworks decode keys (percent
/// escapes, `+` as space, and PHP's `.`, space and `[` as `_`), names `param`.
fn reads_as(key: &str, param: &str) -> bool {
    let fold = |c: char| match c {
        '.' | ' ' | '[' | '+' => '_',
        other => other,
    };
    let Some(decoded) = percent_decode(key) else {
        return false;
    };
    decoded.chars().map(fold).eq(param.chars().map(fold))
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    struct Req {
        headers: Vec<(&'static str, String)>,
        query: Option<String>,
    }

    impl TokenCarrier for Req {
        fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
            self.headers
                .iter()
                .filter(move |(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        }
        fn query(&self) -> Option<&str> {
            self.query.as_deref()
        }
    }

    fn req(headers: &[(&'static str, &str)], query: Option<&str>) -> Req {
        Req {
            headers: headers.iter().map(|(n, v)| (*n, v.to_string())).collect(),
            query: query.map(str::to_owned),
        }
    }

    fn all_sources() -> Vec<TokenSource> {
        vec![
            TokenSource::authorization_bearer(),
            TokenSource::Header {
                name: "x-octelium-auth".into(),
                format: HeaderFormat::Raw,
            },
            TokenSource::Header {
                name: "x-api-token".into(),
                format: HeaderFormat::Prefix("Token ".into()),
            },
            TokenSource::Query("access_token".into()),
            TokenSource::Cookie("session".into()),
        ]
    }

    fn get(
        headers: &[(&'static str, &str)],
        query: Option<&str>,
    ) -> Result<Option<String>, ExtractError> {
        extract(&all_sources(), &req(headers, query)).map(|t| t.map(Cow::into_owned))
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for value in [
            "Bearer abc.def.ghi",
            "bearer abc.def.ghi",
            "BEARER   abc.def.ghi",
        ] {
            assert_eq!(
                get(&[("authorization", value)], None),
                Ok(Some("abc.def.ghi".into()))
            );
        }
    }

    #[test]
    fn other_schemes_are_not_tokens() {
        assert_eq!(
            get(&[("authorization", "Basic dXNlcjpwYXNz")], None),
            Ok(None)
        );
        assert_eq!(get(&[("authorization", "Bearerabc")], None), Ok(None));
    }

    #[test]
    fn empty_bearer_is_malformed() {
        assert_eq!(
            get(&[("authorization", "Bearer")], None),
            Err(ExtractError::Malformed)
        );
        assert_eq!(
            get(&[("authorization", "Bearer   ")], None),
            Err(ExtractError::Malformed)
        );
    }

    #[test]
    fn token68_table_matches_the_grammar() {
        for b in 0..=u8::MAX {
            let expected = b.is_ascii_alphanumeric() || b"-._~+/".contains(&b);
            assert_eq!(TOKEN68[usize::from(b)], expected, "byte {b:#04x}");
        }
    }

    #[test]
    fn non_token68_is_malformed() {
        assert_eq!(
            get(&[("authorization", "Bearer a b")], None),
            Err(ExtractError::Malformed)
        );
        assert_eq!(
            get(&[("x-octelium-auth", "tok\u{e9}n")], None),
            Err(ExtractError::Malformed)
        );
        assert_eq!(
            get(&[("authorization", "Bearer ==")], None),
            Err(ExtractError::Malformed)
        );
    }

    #[test]
    fn reads_custom_header_prefix_query_and_cookie() {
        assert_eq!(
            get(&[("x-octelium-auth", "raw-tok")], None),
            Ok(Some("raw-tok".into()))
        );
        assert_eq!(
            get(&[("x-api-token", "Token pfx-tok")], None),
            Ok(Some("pfx-tok".into()))
        );
        assert_eq!(get(&[("x-api-token", "token pfx-tok")], None), Ok(None));
        assert_eq!(
            get(&[], Some("a=1&access_token=q%2Btok&b")),
            Ok(Some("q+tok".into()))
        );
        assert_eq!(
            get(&[("cookie", "a=1; session=ck-tok; b=2")], None),
            Ok(Some("ck-tok".into()))
        );
    }

    #[test]
    fn query_and_cookie_only_when_configured() {
        let only_header = vec![TokenSource::authorization_bearer()];
        let r = req(&[("cookie", "session=ck")], Some("access_token=q"));
        assert_eq!(extract(&only_header, &r), Ok(None));
    }

    #[test]
    fn two_different_tokens_conflict() {
        assert_eq!(
            get(
                &[("authorization", "Bearer one"), ("x-octelium-auth", "two")],
                None
            ),
            Err(ExtractError::Conflict)
        );
        assert_eq!(
            get(
                &[
                    ("authorization", "Bearer one"),
                    ("authorization", "Bearer two")
                ],
                None
            ),
            Err(ExtractError::Conflict)
        );
        // Envoy's `headers` map joins repeated headers with a comma.
        assert_eq!(
            get(&[("authorization", "Bearer one,Bearer two")], None),
            Err(ExtractError::Conflict)
        );
        assert_eq!(
            get(&[("authorization", "Bearer one")], Some("access_token=two")),
            Err(ExtractError::Conflict)
        );
    }

    #[test]
    fn the_same_token_twice_is_one_token() {
        assert_eq!(
            get(
                &[("authorization", "Bearer one"), ("x-octelium-auth", "one")],
                None
            ),
            Ok(Some("one".into()))
        );
    }

    #[test]
    fn bad_percent_encoding_is_malformed() {
        assert_eq!(
            get(&[], Some("access_token=%zz")),
            Err(ExtractError::Malformed)
        );
        assert_eq!(
            get(&[], Some("access_token=%4")),
            Err(ExtractError::Malformed)
        );
        // Only the exact spelling of the name counts; lookalikes that a
        // framework would read as the same name are refused.
        for key in [
            "access%5Ftoken",
            "access.token",
            "access+token",
            "access%20token",
            "access[token",
        ] {
            assert_eq!(
                get(&[], Some(&format!("{key}=tok"))),
                Err(ExtractError::Conflict),
                "{key}"
            );
        }
        assert_eq!(get(&[], Some("access_tokens=tok")), Ok(None));
    }

    proptest! {
        #[test]
        fn any_token68_round_trips_through_bearer(token in "[A-Za-z0-9._~+/-]{1,64}={0,2}") {
            let value = format!("Bearer {token}");
            prop_assert_eq!(get(&[("authorization", &value)], None), Ok(Some(token)));
        }

        #[test]
        fn arbitrary_header_values_never_panic(value in ".{0,80}") {
            let _ = get(&[("authorization", &value), ("cookie", &value)], Some(&value));
        }
    }
}
