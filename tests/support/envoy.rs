//! One real Envoy per test: a bootstrap written from `EnvoyOptions`, the
//! process started on ephemeral ports, and its listener port read back from
//! the admin API rather than guessed.

use std::fmt::Write as _;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::envoy_bin::envoy_binary;
use super::scratch::ScratchDir;

/// How long Envoy gets to bind its ports and become ready.
const STARTUP_LIMIT: Duration = Duration::from_secs(20);
/// Poll interval while waiting for startup; short, as Envoy is usually up
/// in well under a second.
const POLL_INTERVAL: Duration = Duration::from_millis(25);
/// Lines of Envoy's output quoted in a panic.
const LOG_TAIL_LINES: usize = 60;

/// What Envoy fronts and how its ext_authz filter is set up.
#[derive(Debug, Clone)]
pub struct EnvoyOptions {
    upstream: SocketAddr,
    authz: Option<AuthzOptions>,
    access_log: Option<(PathBuf, String)>,
    /// Route entries replacing the one catch-all route, as YAML.
    routes: Option<String>,
    /// HTTP filter entries between ext_authz and the router, as YAML.
    filters_after_authz: String,
    downstream_tls: Option<DownstreamTls>,
}

#[derive(Debug, Clone)]
struct AuthzOptions {
    addr: SocketAddr,
    encode_raw_headers: bool,
    extra_yaml: String,
    http: Option<HttpService>,
    tls: Option<AuthzTls>,
}

/// Envoy's `http_service` instead of `grpc_service`.
#[derive(Debug, Clone)]
struct HttpService {
    path_prefix: String,
    upstream_headers: Vec<String>,
    client_headers_on_success: Vec<String>,
}

/// PEM files for mutual TLS from Envoy to tollgate.
#[derive(Debug, Clone)]
pub struct AuthzTls {
    /// The CA that signed tollgate's certificate.
    pub ca: PathBuf,
    /// Envoy's client certificate and key.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The name tollgate's certificate must carry (and the SNI sent).
    pub server_name: String,
}

/// PEM files for a TLS listener that asks clients for a certificate.
#[derive(Debug, Clone)]
pub struct DownstreamTls {
    /// The listener's certificate and key.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CA client certificates are checked against; one that does not
    /// chain to it is still accepted (and passed on), as is no certificate.
    pub client_ca: PathBuf,
}

impl EnvoyOptions {
    /// Routes everything to `upstream` through the ext_authz filter, which
    /// calls tollgate over gRPC (HTTP/2) at `authz_addr` with a 2 s timeout
    /// and denies when the call fails.
    pub fn new(upstream: SocketAddr, authz_addr: SocketAddr) -> Self {
        Self {
            upstream,
            authz: Some(AuthzOptions {
                addr: authz_addr,
                encode_raw_headers: false,
                extra_yaml: String::new(),
                http: None,
                tls: None,
            }),
            access_log: None,
            routes: None,
            filters_after_authz: String::new(),
            downstream_tls: None,
        }
    }

    /// Like [`EnvoyOptions::new`], but the filter calls tollgate's HTTP
    /// ext_authz mode at `authz_addr` (HTTP/1.1) through `http_service`,
    /// with `path_prefix`; allowed responses copy the headers named in
    /// `upstream_headers` (exact names) to the upstream request and those in
    /// `client_headers_on_success` to the client's response, and turn
    /// `x-tollgate-metadata-*` into dynamic metadata. Every client header is
    /// sent to tollgate.
    pub fn http_service(
        upstream: SocketAddr,
        authz_addr: SocketAddr,
        path_prefix: &str,
        upstream_headers: &[&str],
        client_headers_on_success: &[&str],
    ) -> Self {
        let mut options = Self::new(upstream, authz_addr);
        options.authz_mut().http = Some(HttpService {
            path_prefix: path_prefix.to_owned(),
            upstream_headers: upstream_headers.iter().map(|h| (*h).to_owned()).collect(),
            client_headers_on_success: client_headers_on_success
                .iter()
                .map(|h| (*h).to_owned())
                .collect(),
        });
        options
    }

    /// Routes everything to `upstream` with no ext_authz filter at all.
    pub fn without_ext_authz(upstream: SocketAddr) -> Self {
        Self {
            upstream,
            authz: None,
            access_log: None,
            routes: None,
            filters_after_authz: String::new(),
            downstream_tls: None,
        }
    }

    /// Sets the filter's `encode_raw_headers` (header values sent to tollgate
    /// as `raw_value` bytes instead of `value` strings). Off by default, as in
    /// Envoy.
    pub fn encode_raw_headers(mut self, on: bool) -> Self {
        self.authz_mut().encode_raw_headers = on;
        self
    }

    /// Calls tollgate over mutual TLS with these files.
    pub fn authz_tls(mut self, tls: AuthzTls) -> Self {
        self.authz_mut().tls = Some(tls);
        self
    }

    /// Adds raw YAML fields to the ext_authz filter's `typed_config`, written
    /// as if at the top level of that mapping, for example
    /// `"with_request_body:\n  max_request_bytes: 1024\n"`.
    pub fn ext_authz_yaml(mut self, yaml: &str) -> Self {
        let extra = &mut self.authz_mut().extra_yaml;
        extra.push_str(yaml);
        if !extra.ends_with('\n') {
            extra.push('\n');
        }
        self
    }

    /// Writes an access log line per request to `path`, in Envoy's
    /// substitution format (e.g. `"%RESPONSE_CODE% %REQ(:PATH)%\n"`). Envoy
    /// flushes file logs about once a second, so read it with
    /// `wait_for_file_containing`.
    pub fn access_log(mut self, path: impl Into<PathBuf>, format: &str) -> Self {
        self.access_log = Some((path.into(), format.to_owned()));
        self
    }

    /// Replaces the one catch-all route (`prefix: /` to the upstream, whose
    /// cluster is `upstream`) with `yaml`: a list of route entries written
    /// from column 0, such as `"- match: { prefix: / }\n  route: { cluster: upstream }\n"`.
    pub fn routes_yaml(mut self, yaml: &str) -> Self {
        self.routes = Some(indent(yaml, 14));
        self
    }

    /// Adds HTTP filters after ext_authz (so they see its dynamic metadata)
    /// and before the router: a list of filter entries written from column 0.
    pub fn filters_after_authz_yaml(mut self, yaml: &str) -> Self {
        self.filters_after_authz.push_str(&indent(yaml, 10));
        self
    }

    /// Serves the listener over TLS, asking each client for a certificate
    /// without requiring one, and has the ext_authz filter pass the
    /// client's certificate to tollgate (`include_peer_certificate`).
    pub fn downstream_tls(mut self, tls: DownstreamTls) -> Self {
        self.downstream_tls = Some(tls);
        self
    }

    fn authz_mut(&mut self) -> &mut AuthzOptions {
        self.authz
            .as_mut()
            .expect("this EnvoyOptions has no ext_authz filter to configure")
    }
}

/// A running Envoy; killed when dropped.
#[derive(Debug)]
pub struct Envoy {
    child: Child,
    /// `https` on a TLS listener, else `http`.
    scheme: &'static str,
    listener: SocketAddr,
    admin: SocketAddr,
    bootstrap: String,
    // Declared last so it is removed after the process is gone.
    dir: ScratchDir,
}

impl Envoy {
    /// Writes the bootstrap, starts Envoy and returns once it reports ready
    /// with its listener bound. Panics with Envoy's own output on failure.
    pub async fn start(options: EnvoyOptions) -> Self {
        let scheme = match options.downstream_tls {
            Some(_) => "https",
            None => "http",
        };
        Self::start_bootstrap(bootstrap_yaml(&options), scheme).await
    }

    /// As [`Envoy::start`], with a bootstrap written by the caller: admin
    /// and every listener on 127.0.0.1 port 0; [`Envoy::url`] is the first
    /// listener, served over `scheme` (`http` or `https`);
    /// [`Envoy::listener_named`] finds the others.
    pub async fn start_bootstrap(bootstrap: String, scheme: &'static str) -> Self {
        let binary = tokio::task::spawn_blocking(envoy_binary)
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        let dir = ScratchDir::new("envoy");
        let config_path = dir.join("envoy.yaml");
        let admin_path = dir.join("admin-address");
        std::fs::write(&config_path, &bootstrap).expect("writing the Envoy bootstrap");
        let stdout = File::create(dir.join("stdout.log")).expect("creating Envoy's stdout log");
        let stderr = File::create(dir.join("stderr.log")).expect("creating Envoy's stderr log");

        let child = Command::new(&binary)
            .arg("-c")
            .arg(&config_path)
            .arg("--admin-address-path")
            .arg(&admin_path)
            .args([
                "--log-level",
                "warn",
                "--concurrency",
                "1",
                // No shared memory or domain socket, so parallel instances
                // cannot collide; the dynamic base id is belt and braces.
                "--disable-hot-restart",
                "--use-dynamic-base-id",
            ])
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));

        let mut envoy = Self {
            child,
            scheme,
            listener: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            bootstrap,
            dir,
        };
        envoy.wait_until_ready(&admin_path).await;
        envoy
    }

    /// `http://<listener>` (`https` on a TLS listener) + `path`; `path`
    /// starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.listener)
    }

    /// `https` on a TLS listener, else `http`.
    pub fn scheme(&self) -> &'static str {
        self.scheme
    }

    /// `http://<admin>` + `path`, for stats and config dumps.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    pub fn listener_addr(&self) -> SocketAddr {
        self.listener
    }

    /// The bootstrap this Envoy was started with.
    pub fn bootstrap_yaml(&self) -> &str {
        &self.bootstrap
    }

    /// Where the bootstrap, logs and admin address file live.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The tails of Envoy's stdout and stderr so far.
    pub fn logs(&self) -> String {
        format!(
            "--- envoy stdout ({}) ---\n{}--- envoy stderr ({}) ---\n{}",
            self.dir.join("stdout.log").display(),
            tail(&self.dir.join("stdout.log")),
            self.dir.join("stderr.log").display(),
            tail(&self.dir.join("stderr.log")),
        )
    }

    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        panic!(
            "Envoy did not start: {why}\n--- bootstrap ({}) ---\n{}\n{}",
            self.dir.join("envoy.yaml").display(),
            self.bootstrap,
            self.logs()
        );
    }

    async fn wait_until_ready(&mut self, admin_path: &Path) {
        let deadline = Instant::now() + STARTUP_LIMIT;
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("building the admin client");
        let mut admin = None;
        let mut listener = None;
        let mut ready = false;
        let mut last_problem = String::from("no admin address yet");
        while !(ready && listener.is_some()) {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.fail(&format!("it exited with {status}"));
            }
            if Instant::now() > deadline {
                self.fail(&format!(
                    "not ready within {STARTUP_LIMIT:?}: {last_problem}"
                ));
            }
            if admin.is_none() {
                // Envoy writes the file once admin is bound; a partial read
                // fails to parse and is retried.
                admin = std::fs::read_to_string(admin_path)
                    .ok()
                    .and_then(|text| text.trim().parse::<SocketAddr>().ok());
                if let Some(addr) = admin {
                    self.admin = addr;
                }
            }
            if admin.is_some() {
                if !ready {
                    match client.get(self.admin_url("/ready")).send().await {
                        Ok(response) if response.status().is_success() => ready = true,
                        Ok(response) => last_problem = format!("/ready said {}", response.status()),
                        Err(e) => last_problem = format!("/ready: {e}"),
                    }
                }
                if listener.is_none() {
                    match self.listener_from_admin(&client).await {
                        Ok(addr) => listener = Some(addr),
                        Err(e) => last_problem = e,
                    }
                }
            }
            if !(ready && listener.is_some()) {
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        }
        if let Some(addr) = listener {
            self.listener = addr;
        }
    }

    /// The bound address of the listener called `name`, from the admin API.
    pub async fn listener_named(&self, name: &str) -> SocketAddr {
        let url = self.admin_url("/listeners?format=json");
        let body: serde_json::Value = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("building the admin client")
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let statuses = body["listener_statuses"].as_array().cloned();
        let socket = statuses
            .unwrap_or_default()
            .into_iter()
            .find(|status| status["name"] == name)
            .map(|status| status["local_address"]["socket_address"].clone())
            .unwrap_or_else(|| panic!("{url}: no listener {name:?} in {body}"));
        let (Some(address), Some(port)) =
            (socket["address"].as_str(), socket["port_value"].as_u64())
        else {
            panic!("{url}: listener {name:?} has no address in {body}");
        };
        format!("{address}:{port}")
            .parse()
            .unwrap_or_else(|e| panic!("{url}: bad address {address}:{port}: {e}"))
    }

    /// The bound address of the one listener, from `/listeners?format=json`.
    async fn listener_from_admin(&self, client: &reqwest::Client) -> Result<SocketAddr, String> {
        let url = self.admin_url("/listeners?format=json");
        let body: serde_json::Value = client
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?
            .json()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let socket = &body["listener_statuses"][0]["local_address"]["socket_address"];
        let address = socket["address"].as_str();
        let port = socket["port_value"].as_u64();
        match (address, port) {
            (Some(address), Some(port)) if port != 0 => format!("{address}:{port}")
                .parse()
                .or_else(|_| format!("[{address}]:{port}").parse())
                .map_err(|e| format!("{url}: bad address {address}:{port}: {e}")),
            _ => Err(format!("{url}: no bound listener yet in {body}")),
        }
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `path` until it contains `needle` (10 s at most) and returns the
/// whole file; for access logs, which Envoy flushes about once a second.
pub async fn wait_for_file_containing(path: impl AsRef<Path>, needle: &str) -> String {
    let path = path.as_ref();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never contained {needle:?}; it holds {text:?}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(LOG_TAIL_LINES);
    let mut out = String::new();
    for line in &lines[start..] {
        let _ = writeln!(out, "{line}");
    }
    out
}

/// Every line of `yaml` indented by `spaces`, each ending in a newline.
fn indent(yaml: &str, spaces: usize) -> String {
    yaml.lines()
        .map(|line| format!("{:spaces$}{line}\n", ""))
        .collect()
}

/// A YAML double-quoted scalar; JSON's string escapes are valid YAML.
fn quoted(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// A static cluster with one endpoint.
fn cluster(name: &str, addr: SocketAddr, extra: &str) -> String {
    format!(
        r#"  - name: {name}
    type: STATIC
    connect_timeout: 1s
{extra}    load_assignment:
      cluster_name: {name}
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {{ address: {ip}, port_value: {port} }}
"#,
        ip = quoted(&addr.ip().to_string()),
        port = addr.port(),
    )
}

fn bootstrap_yaml(options: &EnvoyOptions) -> String {
    let access_log = match &options.access_log {
        None => String::new(),
        Some((path, format)) => format!(
            r#"          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: {path}
              log_format:
                text_format_source:
                  inline_string: {format}
"#,
            path = quoted(&path.to_string_lossy()),
            format = quoted(format),
        ),
    };
    let authz_filter = match &options.authz {
        None => String::new(),
        Some(authz) => {
            let extra: String = authz
                .extra_yaml
                .lines()
                .map(|line| format!("              {line}\n"))
                .collect();
            let service = match &authz.http {
                None => r#"              grpc_service:
                envoy_grpc:
                  cluster_name: tollgate
                timeout: 2s
"#
                .to_owned(),
                Some(http) => {
                    let exact = |names: &[String]| -> String {
                        names
                            .iter()
                            .map(|name| format!("                    - exact: {}\n", quoted(name)))
                            .collect()
                    };
                    format!(
                        r#"              allowed_headers:
                patterns:
                - safe_regex: {{ regex: ".*" }}
              http_service:
                server_uri:
                  uri: {uri}
                  cluster: tollgate
                  timeout: 2s
                path_prefix: {prefix}
                authorization_response:
                  allowed_upstream_headers:
                    patterns:
{upstream}                  allowed_client_headers_on_success:
                    patterns:
{client}                  dynamic_metadata_from_headers:
                    patterns:
                    - prefix: x-tollgate-metadata-
"#,
                        uri = quoted(&format!("http://{}", authz.addr)),
                        prefix = quoted(&http.path_prefix),
                        upstream = exact(&http.upstream_headers),
                        client = exact(&http.client_headers_on_success),
                    )
                }
            };
            format!(
                r#"          - name: envoy.filters.http.ext_authz
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
              transport_api_version: V3
              failure_mode_allow: false
              include_peer_certificate: {peer}
              encode_raw_headers: {raw}
{service}{extra}"#,
                peer = options.downstream_tls.is_some(),
                raw = authz.encode_raw_headers,
            )
        }
    };
    let authz_cluster = match &options.authz {
        None => String::new(),
        Some(authz) if authz.http.is_some() => cluster("tollgate", authz.addr, ""),
        Some(authz) => {
            let mut extra = r#"    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options: {}
"#
            .to_owned();
            if let Some(tls) = &authz.tls {
                extra.push_str(&format!(
                    r#"    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        sni: {name}
        common_tls_context:
          alpn_protocols: [h2]
          tls_certificates:
          - certificate_chain: {{ filename: {cert} }}
            private_key: {{ filename: {key} }}
          validation_context:
            trusted_ca: {{ filename: {ca} }}
            match_typed_subject_alt_names:
            - san_type: DNS
              matcher: {{ exact: {name} }}
"#,
                    name = quoted(&tls.server_name),
                    cert = quoted(&tls.cert.to_string_lossy()),
                    key = quoted(&tls.key.to_string_lossy()),
                    ca = quoted(&tls.ca.to_string_lossy()),
                ));
            }
            cluster("tollgate", authz.addr, &extra)
        }
    };
    let upstream_cluster = cluster("upstream", options.upstream, "");
    let routes = options.routes.clone().unwrap_or_else(|| {
        "              - match: { prefix: \"/\" }\n                route: { cluster: upstream }\n"
            .to_owned()
    });
    let more_filters = &options.filters_after_authz;
    // Goes between `- ` and `filters:` of the filter chain.
    let listener_tls = match &options.downstream_tls {
        None => String::new(),
        Some(tls) => format!(
            r#"transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          require_client_certificate: false
          common_tls_context:
            tls_certificates:
            - certificate_chain: {{ filename: {cert} }}
              private_key: {{ filename: {key} }}
            validation_context:
              trusted_ca: {{ filename: {ca} }}
              trust_chain_verification: ACCEPT_UNTRUSTED
      "#,
            cert = quoted(&tls.cert.to_string_lossy()),
            key = quoted(&tls.key.to_string_lossy()),
            ca = quoted(&tls.client_ca.to_string_lossy()),
        ),
    };
    format!(
        r#"# Written by tests/support/envoy.rs for one test.
admin:
  address:
    socket_address: {{ address: 127.0.0.1, port_value: 0 }}
static_resources:
  listeners:
  - name: ingress
    address:
      socket_address: {{ address: 127.0.0.1, port_value: 0 }}
    filter_chains:
    - {listener_tls}filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
{access_log}          route_config:
            name: local
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
{routes}          http_filters:
{authz_filter}{more_filters}          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
{upstream_cluster}{authz_cluster}"#
    )
}
