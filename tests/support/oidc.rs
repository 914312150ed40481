//! A real OpenID provider: the npm package `oidc-provider`, run by
//! `tests/oidc/server.mjs` on 127.0.0.1, with its node modules installed
//! once per lockfile under `<target>/test-tools/`. Tests get tokens from it
//! as a user would with curl, introspect and revoke them, and stop, restart
//! or rotate its signing key. Clients, secrets and resources are listed in
//! `tests/oidc/README.md`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::Child;

use super::client::{Response, get, request};
use super::repo_path;
use super::scratch::ScratchDir;
use super::tools::{install_once, remember, succeeded, target_dir};

/// A resource whose access tokens are RS256 JWTs (audience = this URL).
pub const JWT_RESOURCE: &str = "https://api.jwt.test";
/// A resource whose access tokens are opaque; the default when a token
/// request names no `resource`.
pub const OPAQUE_RESOURCE: &str = "https://api.opaque.test";

/// How long node gets to load oidc-provider and print its address.
const START_LIMIT: Duration = Duration::from_secs(30);
/// A file that exists only in a complete install.
const INSTALLED_MARKER: &str = "node_modules/oidc-provider/package.json";

/// How a client authenticates to the provider's endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `Authorization: Basic` (`client_secret_basic`).
    Basic,
    /// `client_id` and `client_secret` in the form (`client_secret_post`).
    Post,
}

/// A confidential client registered in `server.mjs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OidcClient {
    pub id: &'static str,
    pub secret: &'static str,
    pub auth: ClientAuth,
}

impl OidcClient {
    const fn new(id: &'static str, secret: &'static str, auth: ClientAuth) -> Self {
        Self { id, secret, auth }
    }
}

/// Gets tokens with `client_secret_basic`.
pub const BASIC_CLIENT: OidcClient =
    OidcClient::new("basic-client", "basic-client-secret", ClientAuth::Basic);
/// Gets tokens with `client_secret_post`.
pub const POST_CLIENT: OidcClient =
    OidcClient::new("post-client", "post-client-secret", ClientAuth::Post);
/// tollgate's credentials: may introspect and revoke every client's tokens.
pub const TOLLGATE_CLIENT: OidcClient =
    OidcClient::new("tollgate", "tollgate-secret", ClientAuth::Basic);
/// As [`TOLLGATE_CLIENT`], authenticating with `client_secret_post`.
pub const TOLLGATE_POST_CLIENT: OidcClient =
    OidcClient::new("tollgate-post", "tollgate-post-secret", ClientAuth::Post);

/// Gets DPoP-bound tokens only (`dpop_bound_access_tokens`): its token
/// requests must carry a DPoP proof.
pub const DPOP_CLIENT: OidcClient =
    OidcClient::new("dpop-client", "dpop-client-secret", ClientAuth::Basic);
/// Gets certificate-bound tokens only
/// (`tls_client_certificate_bound_access_tokens`), from the mutual-TLS
/// listener ([`OidcOptions::mtls`]).
pub const MTLS_CLIENT: OidcClient =
    OidcClient::new("mtls-client", "mtls-client-secret", ClientAuth::Basic);

/// How to start the provider.
#[derive(Debug, Clone, Default)]
pub struct OidcOptions {
    /// 0 picks a free port.
    pub port: u16,
    /// Private RS256 JWKs, the first one signing; empty generates one with
    /// kid `key-1`.
    pub keys: Vec<Value>,
    /// Also serve the endpoints over mutual TLS (RFC 8705 aliases).
    pub mtls: Option<OidcMtls>,
}

/// PEM files for the provider's mutual-TLS listener: its certificate and
/// key, and the CA whose client certificates it accepts.
#[derive(Debug, Clone)]
pub struct OidcMtls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

/// The provider's endpoints, from its discovery document.
#[derive(Debug, Clone)]
struct Endpoints {
    token: String,
    introspection: String,
    revocation: String,
    jwks_uri: String,
    /// `mtls_endpoint_aliases.token_endpoint`, when the mutual-TLS listener runs.
    mtls_token: Option<String>,
}

/// A running `oidc-provider`; killed when dropped.
#[derive(Debug)]
pub struct OidcProvider {
    child: Option<Child>,
    port: u16,
    issuer: String,
    endpoints: Endpoints,
    keys: Vec<Value>,
    mtls: Option<OidcMtls>,
    // Stderr and stray stdout of every run, shared with reader tasks; held
    // only to push or copy lines.
    logs: Arc<Mutex<Vec<String>>>,
    dir: ScratchDir,
}

impl OidcProvider {
    /// Starts on a free port with one new signing key.
    pub async fn start() -> Self {
        Self::start_with(OidcOptions::default()).await
    }

    /// Starts with `options` and returns once discovery answers.
    pub async fn start_with(options: OidcOptions) -> Self {
        let keys = if options.keys.is_empty() {
            vec![generate_signing_key("key-1").await]
        } else {
            options.keys
        };
        let mut provider = Self {
            child: None,
            port: options.port,
            issuer: String::new(),
            endpoints: Endpoints {
                token: String::new(),
                introspection: String::new(),
                revocation: String::new(),
                jwks_uri: String::new(),
                mtls_token: None,
            },
            keys,
            mtls: options.mtls,
            logs: Arc::default(),
            dir: ScratchDir::new("oidc"),
        };
        provider.run().await;
        provider
    }

    /// `http://127.0.0.1:<port>`.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn token_endpoint(&self) -> &str {
        &self.endpoints.token
    }

    pub fn introspection_endpoint(&self) -> &str {
        &self.endpoints.introspection
    }

    pub fn revocation_endpoint(&self) -> &str {
        &self.endpoints.revocation
    }

    pub fn jwks_uri(&self) -> &str {
        &self.endpoints.jwks_uri
    }

    /// The token endpoint on the mutual-TLS listener (from discovery's
    /// `mtls_endpoint_aliases`); `None` unless started with
    /// [`OidcOptions::mtls`].
    pub fn mtls_token_endpoint(&self) -> Option<&str> {
        self.endpoints.mtls_token.as_deref()
    }

    /// The private JWKs it signs with, the first one signing.
    pub fn keys(&self) -> &[Value] {
        &self.keys
    }

    /// Kills the process and waits for it: the port then refuses
    /// connections. Issued tokens are lost (the store is in memory).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Stops (if running) and starts again on the same port and keys.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.run().await;
    }

    /// Restarts on the same port signing with `keys` (the first one signs).
    pub async fn restart_with_keys(&mut self, keys: Vec<Value>) {
        self.keys = keys;
        self.restart().await;
    }

    /// Restarts with a new signing key `kid` in front of the current keys,
    /// which stay in the JWKS so tokens they signed still verify.
    pub async fn rotate_key(&mut self, kid: &str) {
        let mut keys = vec![generate_signing_key(kid).await];
        keys.append(&mut self.keys);
        self.restart_with_keys(keys).await;
    }

    /// The public JWKS served at `jwks_uri`.
    pub async fn jwks(&self) -> Value {
        let response = get(self.jwks_uri(), &[]).await;
        assert_eq!(
            response.status,
            200,
            "GET {}: {}",
            self.jwks_uri(),
            response.body
        );
        response.json()
    }

    /// POSTs a client credentials grant and returns the response as is.
    pub async fn token_response(
        &self,
        client: OidcClient,
        scope: &str,
        resource: Option<&str>,
    ) -> Response {
        let mut form = vec![("grant_type", "client_credentials")];
        if !scope.is_empty() {
            form.push(("scope", scope));
        }
        if let Some(resource) = resource {
            form.push(("resource", resource));
        }
        post_form(self.token_endpoint(), client, &form).await
    }

    /// An access token for `client`, as `curl -d grant_type=client_credentials
    /// -d scope=... [-d resource=...]` gets one; panics if refused. Without a
    /// resource the token is opaque ([`OPAQUE_RESOURCE`]).
    pub async fn client_credentials_token(
        &self,
        client: OidcClient,
        scope: &str,
        resource: Option<&str>,
    ) -> String {
        let response = self.token_response(client, scope, resource).await;
        assert_eq!(
            response.status,
            200,
            "token request by {} refused: {}\n{}",
            client.id,
            response.body,
            self.logs()
        );
        match response.json().get("access_token") {
            Some(Value::String(token)) => token.clone(),
            _ => panic!("no access_token in {}", response.body),
        }
    }

    /// The RFC 7662 introspection response for `token`, asked by tollgate.
    pub async fn introspect(&self, token: &str) -> Value {
        self.introspect_as(TOLLGATE_CLIENT, token).await
    }

    /// The introspection response for `token`, asked by `client`.
    pub async fn introspect_as(&self, client: OidcClient, token: &str) -> Value {
        let url = self.introspection_endpoint();
        self.post_token(url, client, token).await.json()
    }

    /// Revokes `token` (RFC 7009) as tollgate.
    pub async fn revoke(&self, token: &str) {
        let url = self.revocation_endpoint();
        self.post_token(url, TOLLGATE_CLIENT, token).await;
    }

    /// POSTs `token` as an access token to the introspection or revocation
    /// endpoint `url`; panics unless the answer is 200.
    async fn post_token(&self, url: &str, client: OidcClient, token: &str) -> Response {
        let form = [("token", token), ("token_type_hint", "access_token")];
        let response = post_form(url, client, &form).await;
        assert_eq!(
            response.status, 200,
            "{url} refused {}: {}",
            client.id, response.body
        );
        response
    }

    /// What node has written to stderr (and stdout after its address line)
    /// across every run so far.
    pub fn logs(&self) -> String {
        let lines = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
        format!("--- oidc-provider output ---\n{}\n", lines.join("\n"))
    }

    /// Spawns node on `self.port` with `self.keys`, learns the port and
    /// reads discovery.
    async fn run(&mut self) {
        let jwks_path = self.dir.join("jwks.json");
        let jwks = json!({ "keys": self.keys }).to_string();
        fs::write(&jwks_path, jwks)
            .unwrap_or_else(|e| panic!("writing {}: {e}", jwks_path.display()));
        let script = server_script();
        let mut command = tokio::process::Command::new("node");
        command
            .arg(&script)
            .arg("--jwks")
            .arg(&jwks_path)
            .arg("--port")
            .arg(self.port.to_string());
        if let Some(mtls) = &self.mtls {
            command
                .arg("--mtls-cert")
                .arg(&mtls.cert)
                .arg("--mtls-key")
                .arg(&mtls.key)
                .arg("--mtls-ca")
                .arg(&mtls.ca);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting node {}: {e}", script.display()));
        let stderr = child.stderr.take().map(|stderr| self.collect(stderr));
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut stdout = BufReader::new(stdout).lines();

        let announced = tokio::time::timeout(START_LIMIT, async {
            while let Ok(Some(line)) = stdout.next_line().await {
                if let Ok(announcement) = serde_json::from_str::<Value>(&line) {
                    return Some(announcement);
                }
                self.push_log(line);
            }
            None
        })
        .await;
        let announcement = match announced {
            Ok(Some(announcement)) => announcement,
            failed => {
                let _ = child.kill().await;
                if let Some(stderr) = stderr {
                    let _ = tokio::time::timeout(Duration::from_secs(1), stderr).await;
                }
                let why = match failed {
                    Err(_) => format!("did not print its address within {START_LIMIT:?}"),
                    Ok(_) => "exited before printing its address".to_owned(),
                };
                panic!(
                    "oidc-provider ({}) {why}\n{}",
                    script.display(),
                    self.logs()
                );
            }
        };
        self.collect(stdout.into_inner());
        self.child = Some(child);

        let (Some(port), Some(issuer)) = (
            announcement["port"]
                .as_u64()
                .and_then(|port| u16::try_from(port).ok()),
            announcement["issuer"].as_str(),
        ) else {
            panic!("oidc-provider announced {announcement}, expected issuer and port");
        };
        assert!(
            self.port == 0 || self.port == port,
            "oidc-provider asked for port {} listens on {port}",
            self.port
        );
        self.port = port;
        self.issuer = issuer.to_owned();
        self.endpoints = self.discover().await;
    }

    async fn discover(&self) -> Endpoints {
        let url = format!("{}/.well-known/openid-configuration", self.issuer);
        let response = get(&url, &[]).await;
        assert_eq!(
            response.status,
            200,
            "GET {url}: {}\n{}",
            response.body,
            self.logs()
        );
        let document = response.json();
        assert_eq!(
            document["issuer"],
            self.issuer.as_str(),
            "discovery names another issuer"
        );
        let endpoint = |name: &str| match document.get(name) {
            Some(Value::String(url)) => url.clone(),
            _ => panic!("discovery has no {name}: {document}"),
        };
        Endpoints {
            token: endpoint("token_endpoint"),
            introspection: endpoint("introspection_endpoint"),
            revocation: endpoint("revocation_endpoint"),
            jwks_uri: endpoint("jwks_uri"),
            mtls_token: document["mtls_endpoint_aliases"]["token_endpoint"]
                .as_str()
                .map(str::to_owned),
        }
    }

    /// Reads `stream` to EOF (the process exiting) into the logs.
    fn collect(
        &self,
        stream: impl AsyncRead + Unpin + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let logs = Arc::clone(&self.logs);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                logs.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(line);
            }
        })
    }

    fn push_log(&self, line: String) {
        self.logs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

/// A new private RS256 JWK (2048-bit) with `kid`, made by node's crypto.
pub async fn generate_signing_key(kid: &str) -> Value {
    let dir = ScratchDir::new("oidc-key");
    let path = dir.join("keys.json");
    let script = server_script();
    let output = tokio::process::Command::new("node")
        .arg(&script)
        .arg("--generate-keys")
        .arg(&path)
        .args(["--kid", kid])
        .output()
        .await
        .unwrap_or_else(|e| panic!("running node {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "generating a key failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let set: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    set["keys"][0].clone()
}

/// POSTs `form`, authenticating as `client` the way it is registered.
async fn post_form(url: &str, client: OidcClient, form: &[(&str, &str)]) -> Response {
    let mut fields = form.to_vec();
    let basic;
    let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
    match client.auth {
        ClientAuth::Basic => {
            // RFC 6749 2.3.1: both parts are form-encoded before base64.
            let credentials = format!("{}:{}", form_encode(client.id), form_encode(client.secret));
            basic = format!("Basic {}", STANDARD.encode(credentials));
            headers.push(("authorization", &basic));
        }
        ClientAuth::Post => {
            fields.push(("client_id", client.id));
            fields.push(("client_secret", client.secret));
        }
    }
    let body = fields
        .iter()
        .map(|(name, value)| format!("{}={}", form_encode(name), form_encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    request("POST", url, &headers, body.into_bytes()).await
}

/// `application/x-www-form-urlencoded` encoding of one name or value.
pub(super) fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                (byte as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// `server.mjs`, copied beside node modules installed from the committed
/// lockfile; installs them on first use. Panics, saying how to install
/// Node.js, if that cannot be done.
fn server_script() -> PathBuf {
    static SCRIPT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    remember(&SCRIPT, || install().unwrap_or_else(|e| panic!("{e}")))
}

fn install() -> Result<PathBuf, String> {
    let source = repo_path("tests/oidc");
    let how = "The OpenID provider tests need Node.js 20 or later and npm on PATH \
               (https://nodejs.org, or e.g. `apt-get install nodejs npm`); they then \
               install oidc-provider themselves with `npm ci` (registry access needed \
               once). See tests/oidc/README.md.";
    check_node().map_err(|e| format!("{e}\n{how}"))?;
    let lockfile = read(&source.join("package-lock.json"))?;
    let name = format!("oidc-{}", short_sha256(&lockfile));
    install_once(&name, INSTALLED_MARKER, how, |staging| {
        for file in ["package.json", "package-lock.json"] {
            fs::copy(source.join(file), staging.join(file))
                .map_err(|e| format!("copying {file}: {e}"))?;
        }
        let output = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
            .current_dir(staging)
            .output();
        succeeded("npm ci", output)
    });
    copy_script(&source, &target_dir().join("test-tools").join(name))
}

fn check_node() -> Result<(), String> {
    let output = Command::new("node")
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run `node --version`: {e}"))?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let major = version
        .strip_prefix('v')
        .and_then(|v| v.split('.').next())
        .and_then(|major| major.parse::<u32>().ok());
    match major {
        Some(major) if major >= 20 => Ok(()),
        _ => Err(format!(
            "`node --version` said {version:?}; need v20 or later"
        )),
    }
}

/// Copies `server.mjs` into `dir` (where node resolves `oidc-provider`)
/// under a name made from its content, so an edited script never races a
/// running one.
fn copy_script(source: &Path, dir: &Path) -> Result<PathBuf, String> {
    let script = read(&source.join("server.mjs"))?;
    let target = dir.join(format!("server-{}.mjs", short_sha256(&script)));
    if !target.is_file() {
        let staging = dir.join(format!("server.mjs.partial-{}", std::process::id()));
        fs::write(&staging, &script).map_err(|e| format!("writing {}: {e}", staging.display()))?;
        fs::rename(&staging, &target).map_err(|e| format!("moving {}: {e}", staging.display()))?;
    }
    Ok(target)
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

/// The first 16 hex digits of the SHA-256 of `bytes`.
fn short_sha256(bytes: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    digest.as_ref()[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
