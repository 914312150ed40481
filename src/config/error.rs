//! Why a configuration was refused: always with the field that is wrong,
//! as `routes[2].match.path`, whether the file's shape or a value is at
//! fault.

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Read(#[source] std::io::Error),
    /// The file is not YAML of the expected shape.
    #[error("{0}")]
    Load(#[from] Box<figment::Error>),
    /// A field has a value tollgate cannot use.
    #[error("{field}: {message}")]
    Invalid {
        /// Where, as `routes[2].match.path`.
        field: String,
        /// What is wrong and, where possible, how to fix it.
        message: String,
    },
}

pub(super) fn invalid(field: impl Into<String>, message: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        message: message.to_string(),
    }
}

/// A shape error names its field the way validation errors do
/// (`providers[0].leeway`), not as figment's `default.providers.0.leeway`.
pub(super) fn load_error(error: figment::Error) -> ConfigError {
    if error.path.is_empty() {
        return ConfigError::Load(Box::new(error));
    }
    let mut field = String::new();
    for segment in &error.path {
        if segment.parse::<usize>().is_ok() {
            field.push_str(&format!("[{segment}]"));
        } else {
            if !field.is_empty() {
                field.push('.');
            }
            field.push_str(segment);
        }
    }
    let from_env = error
        .metadata
        .as_ref()
        .is_some_and(|m| m.name.contains("environment"));
    if from_env {
        let variable = format!("TOLLGATE_{}", error.path.join("__").to_ascii_uppercase());
        return invalid(
            field,
            format!("{} (set by environment variable {variable})", error.kind),
        );
    }
    invalid(field, &error.kind)
}
