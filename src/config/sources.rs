//! `token_sources:`: the ordered places a token is read from.

use super::error::{ConfigError, invalid};
use super::raw::RawTokenSource;
use super::values::is_http_token;
use crate::token::extract::{HeaderFormat, TokenSource};

/// The sources as configured; `Authorization: Bearer` when the section is
/// left out. An empty list is refused: nothing could ever be read.
pub(super) fn token_sources(
    raw: Option<Vec<RawTokenSource>>,
) -> Result<Vec<TokenSource>, ConfigError> {
    match raw {
        None => Ok(vec![TokenSource::authorization_bearer()]),
        Some(list) if list.is_empty() => Err(invalid(
            "token_sources",
            "list at least one place to read tokens from",
        )),
        Some(list) => list
            .into_iter()
            .enumerate()
            .map(|(i, s)| token_source(s).map_err(|m| invalid(format!("token_sources[{i}]"), m)))
            .collect(),
    }
}

/// Whether a token may come in a query parameter.
pub(super) fn has_query(sources: &[TokenSource]) -> bool {
    sources
        .iter()
        .any(|source| matches!(source, TokenSource::Query(_)))
}

fn token_source(raw: RawTokenSource) -> Result<TokenSource, String> {
    match (raw.header, raw.query, raw.cookie) {
        (Some(name), None, None) => {
            let format = match (raw.scheme, raw.prefix) {
                (Some(_), Some(_)) => return Err("set `scheme` or `prefix`, not both".to_owned()),
                (Some(scheme), None) if is_http_token(&scheme) => HeaderFormat::Scheme(scheme),
                (Some(scheme), None) => {
                    return Err(format!("scheme `{scheme}` is not a valid auth scheme"));
                }
                (None, Some(prefix)) if !prefix.is_empty() => HeaderFormat::Prefix(prefix),
                (None, Some(_)) => {
                    return Err("`prefix` is empty; leave it out for a raw token".to_owned());
                }
                (None, None) => HeaderFormat::Raw,
            };
            if !is_http_token(&name) {
                return Err(format!("`{name}` is not a valid header name"));
            }
            Ok(TokenSource::Header {
                name: name.to_ascii_lowercase(),
                format,
            })
        }
        (None, _, _) if raw.scheme.is_some() || raw.prefix.is_some() => {
            Err("`scheme` and `prefix` apply to `header` sources only".to_owned())
        }
        (None, Some(query), None) if !query.is_empty() => Ok(TokenSource::Query(query)),
        (None, None, Some(cookie)) if is_http_token(&cookie) => Ok(TokenSource::Cookie(cookie)),
        _ => Err("set exactly one of `header`, `query` or `cookie`, with a valid name".to_owned()),
    }
}
