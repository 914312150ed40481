//! Values as the config file writes them: durations (`30s`, `5m`, `1h`),
//! counts, secret references, header names and values, claim paths.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::error::{ConfigError, invalid};
use super::raw::{RawClaimPath, RawDuration, RawSecret};
use crate::claims::ClaimPath;
use crate::headers::MAX_HEADER_VALUE_BYTES;
use crate::secret::Secret;

/// Parses `500ms`, `30s`, `5m`, `1h` or `1d`. A bare number is refused so
/// that nobody has to guess the unit.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}` needs a unit: ms, s, m, h or d"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 30s or 5m"))?;
    let seconds = |factor: u64| {
        number
            .checked_mul(factor)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("`{text}` is too long"))
    };
    match unit {
        "ms" => Ok(Duration::from_millis(number)),
        "s" => seconds(1),
        "m" => seconds(60),
        "h" => seconds(3600),
        "d" => seconds(86_400),
        _ => Err(format!(
            "`{text}` has unknown unit `{unit}`; use ms, s, m, h or d"
        )),
    }
}

/// `value` as a duration, or `default` when unset; errors name `field`.
pub(super) fn duration(
    value: &Option<RawDuration>,
    field: &str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    value
        .as_ref()
        .map(|d| parse_duration(&d.text()))
        .transpose()
        .map_err(|m| invalid(field, m))
        .map(|v| v.unwrap_or(default))
}

/// A duration longer than zero, or `default` when unset.
pub(super) fn positive_duration(
    value: &Option<RawDuration>,
    field: &str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match duration(value, field, default)? {
        duration if duration.is_zero() => Err(invalid(field, "must be longer than 0")),
        duration => Ok(duration),
    }
}

/// A count that must be at least 1, or `default` when unset.
pub(super) fn positive(
    value: Option<usize>,
    default: usize,
    field: &str,
) -> Result<usize, ConfigError> {
    match value {
        None => Ok(default),
        Some(0) => Err(invalid(field, "must be at least 1")),
        Some(n) => Ok(n),
    }
}

/// The secret a `{env: VAR}` or `{file: PATH}` reference names; a relative
/// path resolves against `base`.
pub(super) fn load_secret(secret: &RawSecret, base: &Path) -> Result<Secret, String> {
    Secret::load(
        secret.env.as_deref(),
        secret.file.as_ref().map(|f| base.join(f)).as_deref(),
    )
}

/// RFC 9110 `token`: header names and auth schemes.
pub(super) fn is_http_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(crate::routes::is_token_byte)
}

/// Headers that Envoy owns or that would change how the request is routed or framed.
pub(super) const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "keep-alive",
    "proxy-connection",
];

/// A header tollgate may set or remove, lower-cased.
pub(super) fn header_name(name: &str, field: &str) -> Result<String, ConfigError> {
    let lower = name.to_ascii_lowercase();
    if !is_http_token(&lower) || RESERVED_HEADERS.contains(&lower.as_str()) {
        return Err(invalid(
            field,
            format!("`{name}` is not a header tollgate may set or remove"),
        ));
    }
    Ok(lower)
}

/// Headers with fixed values, each name one tollgate may set and each
/// value safe header text.
pub(super) fn header_values(
    map: BTreeMap<String, String>,
    field: &str,
) -> Result<Vec<(String, String)>, ConfigError> {
    map.into_iter()
        .map(|(name, value)| {
            let at = format!("{field}.{name}");
            let name = header_name(&name, &at)?;
            if value.chars().any(char::is_control) || value.len() > MAX_HEADER_VALUE_BYTES {
                return Err(invalid(
                    at,
                    format!(
                        "header values must hold no control characters (CR, LF, NUL, ...) and at most {MAX_HEADER_VALUE_BYTES} bytes"
                    ),
                ));
            }
            Ok((name, value))
        })
        .collect()
}

/// `a.b.c`, or a list of segments when a key itself holds dots.
pub(super) fn claim_path(raw: RawClaimPath) -> Result<ClaimPath, String> {
    match raw {
        RawClaimPath::Dotted(path) => ClaimPath::dotted(&path),
        RawClaimPath::Segments(segments) => ClaimPath::segments(segments),
    }
}

/// A realm has to fit inside a quoted `WWW-Authenticate` parameter.
pub(super) fn check_realm(realm: Option<&str>, field: &str) -> Result<(), ConfigError> {
    if realm.is_some_and(|r| r.contains(['"', '\\']) || r.chars().any(char::is_control)) {
        return Err(invalid(
            field,
            "must not contain quotes, backslashes or control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_with_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
    }

    #[test]
    fn refuses_durations_without_a_known_unit() {
        assert!(parse_duration("30").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("3w").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
