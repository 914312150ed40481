//! How errors are written into log lines: with their sources, `outer:
//! inner: root`, since a fault's cause is usually two or three levels down
//! (a check failed because the keys are unavailable because the fetch timed
//! out).

use std::error::Error;
use std::fmt;

/// Displays an error with its sources, `outer: inner: root`.
pub(crate) struct ErrorChain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("check failed")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("fetch timed out")]
    struct Inner;

    #[test]
    fn every_source_follows_its_error() {
        assert_eq!(
            ErrorChain(&Outer(Inner)).to_string(),
            "check failed: fetch timed out"
        );
        assert_eq!(ErrorChain(&Inner).to_string(), "fetch timed out");
    }
}
