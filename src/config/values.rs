//! Small value types the config file is made of: durations written as
//! `30s`, and secrets read from the environment or a file.

use std::fmt;
use std::path::Path;
use std::time::Duration;

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

/// Secret bytes. `Debug` never shows them.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Reads the secret named by `env` or stored in `file` (exactly one).
    pub(crate) fn load(env: Option<&str>, file: Option<&Path>) -> Result<Secret, String> {
        let bytes = match (env, file) {
            (Some(var), None) => std::env::var(var)
                .map_err(|_| format!("environment variable {var} is not set"))?
                .into_bytes(),
            (None, Some(path)) => {
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
            }
            _ => return Err("set exactly one of `env` or `file`".to_owned()),
        };
        // Files written by editors and `kubectl create secret` often end in a newline.
        let trimmed = bytes.trim_ascii_end();
        if trimmed.is_empty() {
            return Err("the secret is empty".to_owned());
        }
        Ok(Secret(trimmed.to_vec()))
    }

    /// The secret itself; callers must not log it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
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

    #[test]
    fn secret_debug_is_redacted() {
        let dir = std::env::temp_dir().join(format!("tollgate-secret-{}", std::process::id()));
        std::fs::write(&dir, "hunter2\n").unwrap();
        let secret = Secret::load(None, Some(&dir)).unwrap();
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(secret.expose(), b"hunter2");
        assert!(!format!("{secret:?}").contains("hunter2"));
    }

    #[test]
    fn secret_needs_exactly_one_source() {
        assert!(Secret::load(None, None).is_err());
        assert!(Secret::load(Some("A"), Some(Path::new("b"))).is_err());
        assert!(
            Secret::load(Some("TOLLGATE_TEST_SURELY_UNSET_VAR"), None)
                .unwrap_err()
                .contains("not set")
        );
    }
}
