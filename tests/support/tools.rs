//! Tools the tests install for themselves into `<target>/test-tools/`, once
//! per target dir and under a file lock, from PyPI (`pip install --target`)
//! or npm (`npm pack`), so a fresh checkout needs only `python3`, pip and
//! npm. A tool that cannot be had fails the test, saying how to install it.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Runs `find` once per process and keeps the outcome, a panic included,
/// so that the other tests in a binary report a failed install at once
/// instead of each trying again.
pub fn remember<T: Clone>(
    cell: &'static OnceLock<Result<T, String>>,
    find: impl FnOnce() -> T + std::panic::UnwindSafe,
) -> T {
    let outcome = cell.get_or_init(|| {
        std::panic::catch_unwind(find).map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "installing a test tool panicked".to_owned())
        })
    });
    match outcome {
        Ok(value) => value.clone(),
        Err(message) => panic!("{message}"),
    }
}

/// Cargo's target dir, where the tools live beside the build.
pub fn target_dir() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    match std::env::var_os("CARGO_TARGET_DIR") {
        // A relative CARGO_TARGET_DIR is relative to where cargo ran, which
        // for these tests is the package root.
        Some(dir) => manifest_dir.join(dir),
        None => manifest_dir.join("target"),
    }
}

/// `<target>/test-tools/<name>/<file>`, made by `install` on first use.
///
/// `install` fills a staging directory that is renamed into place only
/// when `file` exists in it, so an interrupted install never leaves a
/// half-filled directory that looks done. Test threads and concurrently
/// running test binaries all land here on a fresh checkout; a file lock
/// makes exactly one of them install. On failure the panic says what went
/// wrong, then `how_to_install` (by hand).
pub fn install_once(
    name: &str,
    file: &str,
    how_to_install: &str,
    install: impl FnOnce(&Path) -> Result<(), String>,
) -> PathBuf {
    let tools = target_dir().join("test-tools");
    let install_dir = tools.join(name);
    let installed = install_dir.join(file);
    if installed.exists() {
        return installed;
    }

    fs::create_dir_all(&tools).unwrap_or_else(|e| panic!("creating {}: {e}", tools.display()));
    let lock_path = tools.join(format!("{name}.lock"));
    let lock = File::create(&lock_path)
        .unwrap_or_else(|e| panic!("creating {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("locking {}: {e}", lock_path.display()));
    if installed.exists() {
        return installed;
    }

    let staging = tools.join(format!("{name}.partial-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging).unwrap_or_else(|e| panic!("creating {}: {e}", staging.display()));
    eprintln!(
        "installing {name} for the tests into {}",
        install_dir.display()
    );
    let failure = match install(&staging) {
        Err(failure) => Some(failure),
        Ok(()) if !staging.join(file).exists() => Some(format!(
            "the install succeeded but {} is missing",
            staging.join(file).display()
        )),
        Ok(()) => None,
    };
    if let Some(failure) = failure {
        let _ = fs::remove_dir_all(&staging);
        panic!("the tests need {name} and installing it failed: {failure}\n{how_to_install}");
    }
    // A directory without the file (say, emptied by hand) would block the
    // rename.
    let _ = fs::remove_dir_all(&install_dir);
    fs::rename(&staging, &install_dir).unwrap_or_else(|e| {
        panic!(
            "moving {} to {}: {e}",
            staging.display(),
            install_dir.display()
        )
    });
    installed
}

/// How to install `requirement` into `target` by hand.
pub fn pip_command(target: &Path, requirement: &str) -> String {
    format!(
        "Install it by hand with:\n    \
         python3 -m pip install --quiet --disable-pip-version-check --target {} {requirement}",
        target.display()
    )
}

/// Runs `pip install --target staging requirement`.
pub fn pip_install(staging: &Path, requirement: &str) -> Result<(), String> {
    let output = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(staging)
        .arg(requirement)
        .output();
    succeeded("python3 -m pip", output)
}

/// Turns a finished command into `Ok` or an error with its output.
pub fn succeeded(what: &str, output: std::io::Result<Output>) -> Result<(), String> {
    match output {
        Err(e) => Err(format!("could not run {what}: {e}")),
        Ok(out) if !out.status.success() => Err(format!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
        Ok(_) => Ok(()),
    }
}

/// `<target>/test-tools/<package>-<version>/<file>`, pip-installing
/// `package==version` there on first use.
pub fn pip_tool(package: &str, version: &str, file: &str) -> PathBuf {
    let name = format!("{package}-{version}");
    let requirement = format!("{package}=={version}");
    let how = pip_command(&target_dir().join("test-tools").join(&name), &requirement);
    install_once(&name, file, &how, |staging| {
        pip_install(staging, &requirement)
    })
}
