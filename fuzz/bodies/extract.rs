//! Fuzz body: a request's headers, query and cookies through
//! `extract` with the token sources a config can set.
//!
//! Input: the first byte picks one of the source lists below; the rest is
//! lines, `name: value` for a header (names lower-cased, as Envoy sends
//! them) and `?query` for the query string.
//!
//! Invariants: no panic; a token found is token68 and was sent; the answer
//! does not depend on the order of the sources (RFC 6750 §2: one token, or
//! a refusal); a token under `Authorization: Bearer` is never ignored, and
//! a different one anywhere else is never accepted beside it.

use std::borrow::Cow;

use tollgate::internals::{HeaderFormat, TokenCarrier, TokenSource, extract};

struct Request<'a> {
    headers: Vec<(String, &'a str)>,
    query: Option<&'a str>,
}

impl TokenCarrier for Request<'_> {
    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(header, _)| header == name)
            .map(|(_, value)| *value)
    }

    fn query(&self) -> Option<&str> {
        self.query
    }
}

fn header(name: &str, format: HeaderFormat) -> TokenSource {
    TokenSource::Header {
        name: name.to_owned(),
        format,
    }
}

/// The source lists of `config/tollgate.yaml`, the README and the examples.
fn sources(selector: u8) -> Vec<TokenSource> {
    let bearer = TokenSource::authorization_bearer;
    match selector % 4 {
        0 => vec![bearer()],
        1 => vec![
            bearer(),
            header("x-octelium-auth", HeaderFormat::Raw),
            header("x-api-key", HeaderFormat::Prefix("Token ".to_owned())),
            TokenSource::Query("access_token".to_owned()),
            TokenSource::Cookie("session".to_owned()),
        ],
        2 => vec![
            TokenSource::Cookie("_oauth2_proxy".to_owned()),
            header("x-forwarded-access-token", HeaderFormat::Raw),
            bearer(),
        ],
        _ => vec![
            header("authorization", HeaderFormat::Scheme("DPoP".to_owned())),
            TokenSource::Query("token".to_owned()),
            bearer(),
        ],
    }
}

pub(crate) fn run(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let mut request = Request {
        headers: Vec::new(),
        query: None,
    };
    for line in text.split('\n') {
        if let Some(query) = line.strip_prefix('?') {
            request.query = Some(query);
        } else if let Some((name, value)) = line.split_once(':') {
            request
                .headers
                .push((name.trim().to_ascii_lowercase(), value.trim_start()));
        }
    }
    let sources = sources(selector);
    let found = extract(&sources, &request);
    let reversed: Vec<TokenSource> = sources.iter().rev().cloned().collect();
    let found_reversed = extract(&reversed, &request);
    assert_eq!(
        found.as_ref().ok(),
        found_reversed.as_ref().ok(),
        "the order of the sources changed the answer"
    );

    let bearer_tokens = bearer_tokens(&request);
    match found {
        Ok(Some(token)) => {
            assert_token68(&token);
            let sent = request.headers.iter().any(|(_, v)| v.contains(&*token))
                || sources.iter().any(|s| matches!(s, TokenSource::Query(_)));
            assert!(sent, "a token that was not sent: {token:?}");
            if sources.contains(&TokenSource::authorization_bearer()) {
                for bearer in &bearer_tokens {
                    assert_eq!(bearer, &token, "a second token was ignored");
                }
            }
        }
        Ok(None) if sources.contains(&TokenSource::authorization_bearer()) => {
            assert!(bearer_tokens.is_empty(), "a bearer token was ignored");
        }
        Ok(None) | Err(_) => {}
    }
}

/// Every `Bearer` credential in `Authorization`, read the plain way.
fn bearer_tokens<'a>(request: &'a Request<'_>) -> Vec<Cow<'a, str>> {
    request
        .header_values("authorization")
        .flat_map(|value| value.split(','))
        .filter_map(|item| {
            let item = item.trim();
            let scheme = item.get(..7)?;
            scheme
                .eq_ignore_ascii_case("bearer ")
                .then(|| Cow::Borrowed(item[7..].trim_start_matches(' ')))
        })
        .collect()
}

fn assert_token68(token: &str) {
    let body = token.trim_end_matches('=');
    assert!(!body.is_empty(), "an empty token");
    assert!(
        body.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)),
        "not token68: {token:?}"
    );
}
