//! Fuzz body: a YAML document through `Config::from_yaml`.
//!
//! Invariants: no panic, whatever the document; a refusal names the field
//! that is wrong (an `Invalid` error's field starts at a top-level section,
//! as `providers[0].leeway`, or is an unknown top-level key said to be
//! one), and no refusal is an empty message.
//!
//! Relative paths in the document resolve against the repository's
//! `config/`, as for `config/quickstart.yaml`. Documents naming device or
//! kernel files are skipped: reading
//! `/dev/zero` as a key file never ends, which is the operator's choice of
//! file, not a bug the fuzzer should report.

use std::path::{Path, PathBuf};

use tollgate::{Config, ConfigError};

const SECTIONS: [&str; 9] = [
    "server",
    "log",
    "tracing",
    "token_sources",
    "providers",
    "defaults",
    "routes",
    "unmatched",
    "identity",
];

/// `config/` of the repository, whether this body is built by the fuzz
/// crate (`fuzz/`) or by the main crate's tests.
fn config_folder() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = if manifest.ends_with("fuzz") {
        manifest.parent().unwrap_or(manifest)
    } else {
        manifest
    };
    root.join("config")
}

pub(crate) fn run(data: &[u8]) {
    let Ok(yaml) = std::str::from_utf8(data) else {
        return;
    };
    if ["/dev", "/proc", "/sys"]
        .iter()
        .any(|dir| yaml.contains(dir))
    {
        return;
    }
    match Config::from_yaml(yaml, &config_folder()) {
        Ok(_) => {}
        Err(ConfigError::Invalid { field, message }) => {
            // A known section, or an unknown top-level key, named as such.
            let section = field.split(['.', '[']).next().unwrap_or_default();
            assert!(
                SECTIONS.contains(&section) || message.contains("unknown field"),
                "error names no field: {field:?}: {message}"
            );
            assert!(!message.is_empty(), "{field}: empty message");
        }
        Err(error) => assert!(!error.to_string().is_empty(), "an empty refusal"),
    }
}
