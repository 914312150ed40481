//! A check that cannot be decided: an IdP that cannot answer, a key that
//! cannot sign. Envoy's failure mode decides then; tollgate never turns a
//! fault into an allow. The part that failed converts its own error into a
//! [`Fault`], so this leaf knows their kinds, not their types.

use std::error::Error;
use std::fmt;

/// What could not be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultKind {
    /// A provider's keys could not be fetched.
    KeysUnavailable,
    /// A provider's introspection endpoint gave no usable answer.
    Introspection,
    /// The upstream identity token could not be signed.
    IdentitySigning,
}

impl FaultKind {
    /// A stable, low-cardinality name for logs and metrics.
    pub(crate) fn label(self) -> &'static str {
        match self {
            FaultKind::KeysUnavailable => "keys_unavailable",
            FaultKind::Introspection => "introspection_unavailable",
            FaultKind::IdentitySigning => "identity_signing",
        }
    }
}

/// The check could not be decided. Displays as the error that caused it,
/// whose sources follow (see [`crate::error_chain::ErrorChain`]).
#[derive(Debug)]
pub struct Fault {
    kind: FaultKind,
    error: Box<dyn Error + Send + Sync>,
}

impl Fault {
    /// A fault of `kind`, caused by `error`.
    pub(crate) fn new(kind: FaultKind, error: impl Error + Send + Sync + 'static) -> Fault {
        Fault {
            kind,
            error: Box::new(error),
        }
    }

    /// A stable, low-cardinality name for logs and metrics.
    pub fn label(&self) -> &'static str {
        self.kind.label()
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl Error for Fault {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.error.source()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error_chain::ErrorChain;

    #[derive(Debug, thiserror::Error)]
    #[error("keys for provider idp are unavailable")]
    struct Unavailable(#[source] std::io::Error);

    #[test]
    fn a_fault_reads_as_its_cause_with_the_cause_s_sources() {
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "fetch timed out");
        let fault = Fault::new(FaultKind::KeysUnavailable, Unavailable(io));
        assert_eq!(fault.label(), "keys_unavailable");
        assert_eq!(
            ErrorChain(&fault).to_string(),
            "keys for provider idp are unavailable: fetch timed out"
        );
    }
}
