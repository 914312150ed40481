//! Secrets (client secrets, HMAC keys, header credentials): read from the
//! environment or a file, never written in the config itself, and never
//! shown by `Debug`.

use std::fmt;
use std::path::Path;

/// Secret bytes. `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
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

    /// A secret from bytes already in hand (tests).
    #[cfg(test)]
    pub(crate) fn from_bytes(bytes: &[u8]) -> Secret {
        Secret(bytes.to_vec())
    }

    /// The secret itself; callers must not log it.
    pub(crate) fn expose(&self) -> &[u8] {
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
