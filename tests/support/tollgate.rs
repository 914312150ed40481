//! The real `tollgate` binary as a child process: `serve` on 127.0.0.1:0,
//! its address read back from its own log line, its stderr kept for
//! assertions and panic messages, and the process killed on drop.

use std::ffi::OsStr;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::scratch::ScratchDir;

/// How long tollgate gets to log its listening address.
const LISTEN_LIMIT: Duration = Duration::from_secs(15);
/// How long tollgate gets to load keys and report SERVING.
const HEALTH_LIMIT: Duration = Duration::from_secs(15);
/// How long tollgate gets to log a line a test waits for.
const LOG_LIMIT: Duration = Duration::from_secs(10);
/// Poll interval while waiting; tollgate is usually up within milliseconds.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// The message `server::serve` logs, with `addr=`, once it is bound.
const LISTENING_MESSAGE: &str = "serving envoy.service.auth.v3.Authorization";

/// The path of the `tollgate` binary cargo built for these tests.
pub fn tollgate_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tollgate"))
}

/// `tollgate <args>` from the repository root, with `env` added to a clean
/// environment: the developer's shell must not change what the test runs
/// (`RUST_LOG` could hide the address line, `TOLLGATE_*` could override the
/// config, `OTEL_*` could turn tracing on), and colours are off. Standard streams are left to the caller.
pub fn tollgate_command<I, S>(args: I, env: &[(&str, &str)]) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(tollgate_binary());
    command
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1");
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if name_text.starts_with("TOLLGATE_") || name_text.starts_with("OTEL_") {
            command.env_remove(name);
        }
    }
    // The admin port defaults to 9193 on every interface; tests run many
    // tollgates at once, so each gets an ephemeral one unless `env` says.
    command.env("TOLLGATE_SERVER__ADMIN_LISTEN", "127.0.0.1:0");
    command.envs(env.iter().copied());
    command
}

/// Calls `probe` every [`POLL_INTERVAL`] until it returns `Ok`, for at most
/// `limit`; then gives back its last `Err`.
async fn poll<T, E>(limit: Duration, mut probe: impl AsyncFnMut() -> Result<T, E>) -> Result<T, E> {
    let deadline = Instant::now() + limit;
    loop {
        match probe().await {
            Ok(value) => return Ok(value),
            Err(last) if Instant::now() >= deadline => return Err(last),
            Err(_) => tokio::time::sleep(POLL_INTERVAL).await,
        }
    }
}

/// A `tollgate serve` process; killed when dropped.
#[derive(Debug)]
pub struct TollgateProcess {
    child: Child,
    addr: SocketAddr,
    config: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
    // Declared last so the config outlives the process.
    dir: Option<ScratchDir>,
}

impl TollgateProcess {
    /// Writes `config_yaml` to a scratch directory, serves it, and returns
    /// once the gRPC health service reports SERVING (every provider has keys).
    /// The YAML should set `server.grpc_listen: 127.0.0.1:0`.
    pub async fn start(config_yaml: &str) -> Self {
        let process = Self::start_listening(config_yaml).await;
        process.wait_until_serving().await;
        process
    }

    /// As [`TollgateProcess::start`], but returns as soon as the gRPC port is
    /// bound, without waiting for keys: for providers that cannot load any.
    pub async fn start_listening(config_yaml: &str) -> Self {
        let dir = ScratchDir::new("tollgate");
        let config = dir.join("tollgate.yaml");
        std::fs::write(&config, config_yaml)
            .unwrap_or_else(|e| panic!("writing {}: {e}", config.display()));
        let mut process = Self::serve_file(&config, &[]).await;
        process.dir = Some(dir);
        process
    }

    /// Runs `tollgate serve --config <config>` from the repository root with
    /// `env` added, and returns once it logs its bound address. Health is
    /// not awaited; call [`TollgateProcess::wait_until_serving`] for that.
    pub async fn serve_file(config: &Path, env: &[(&str, &str)]) -> Self {
        let serve = [
            OsStr::new("serve"),
            OsStr::new("--config"),
            config.as_os_str(),
        ];
        let mut child = tollgate_command(serve, env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", tollgate_binary().display()));

        let lines = Arc::new(Mutex::new(Vec::new()));
        if let Some(stderr) = child.stderr.take() {
            let lines = Arc::clone(&lines);
            // Reads to EOF, which comes when the process exits or is killed.
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    lines
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(line);
                }
            });
        }

        let mut process = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            config: config.to_owned(),
            lines,
            dir: None,
        };
        process.addr = process.wait_for_address().await;
        process
    }

    /// Where HTTP ext_authz mode listens (the config must enable it on port 0).
    pub async fn http_addr(&self) -> SocketAddr {
        self.logged_address("serving HTTP ext_authz mode").await
    }

    /// Where the admin endpoints listen.
    pub async fn admin_addr(&self) -> SocketAddr {
        self.logged_address("serving admin endpoints").await
    }

    async fn logged_address(&self, message: &str) -> SocketAddr {
        let line = self.wait_for_log(message).await;
        listen_address(&line)
            .unwrap_or_else(|| panic!("no addr= in tollgate's line {line:?}\n{}", self.describe()))
    }

    /// Where the gRPC services listen.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The process's resident set size in bytes (`VmRSS` in
    /// `/proc/<pid>/status`), for tests that bound memory under load.
    pub fn rss_bytes(&self) -> u64 {
        let path = format!("/proc/{}/status", self.child.id());
        let status =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
            .unwrap_or_else(|| panic!("no VmRSS line in {path}:\n{status}"))
    }

    /// Sends signal `name` (`TERM`, `HUP`) to the process with `kill(1)`.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-s", name, &pid])
            .status()
            .unwrap_or_else(|e| panic!("running kill -s {name} {pid}: {e}"));
        assert!(status.success(), "kill -s {name} {pid}: {status}");
    }

    /// Waits (at most `limit`) for the process to exit on its own.
    pub async fn wait_for_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let child = &mut self.child;
        let exited = poll(limit, async || match child.try_wait() {
            Ok(Some(status)) => Ok(status),
            Ok(None) => Err("still running".to_owned()),
            Err(e) => Err(e.to_string()),
        })
        .await;
        exited.unwrap_or_else(|last| {
            panic!(
                "tollgate did not exit within {limit:?}: {last}\n{}",
                self.describe()
            )
        })
    }

    /// The config file it serves.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// `http://<addr>`, for tonic clients.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every line tollgate has written to stderr so far, colours removed.
    pub fn logs(&self) -> String {
        let lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        let mut text = lines.join("\n");
        text.push('\n');
        text
    }

    /// The first stderr line so far that contains `needle`.
    fn find_line(&self, needle: &str) -> Option<String> {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|line| line.contains(needle))
            .cloned()
    }

    /// Waits (bounded) until some stderr line contains `needle`; panics with
    /// the logs otherwise. Log lines are written after the response is sent,
    /// so a test that just got an answer may need to wait a moment.
    pub async fn wait_for_log(&self, needle: &str) -> String {
        poll(LOG_LIMIT, async || self.find_line(needle).ok_or(()))
            .await
            .unwrap_or_else(|()| panic!("tollgate never logged {needle:?}\n{}", self.describe()))
    }

    /// Waits until gRPC health says SERVING for the Check service.
    pub async fn wait_until_serving(&self) {
        poll(HEALTH_LIMIT, async || match self.health().await {
            Ok(ServingStatus::Serving) => Ok(()),
            Ok(status) => Err(format!("health said {status:?}")),
            Err(e) => Err(e),
        })
        .await
        .unwrap_or_else(|last| {
            panic!(
                "tollgate was not SERVING within {HEALTH_LIMIT:?}: {last}\n{}",
                self.describe()
            )
        });
    }

    /// One gRPC health check of `envoy.service.auth.v3.Authorization`.
    pub async fn health(&self) -> Result<ServingStatus, String> {
        let channel = tonic::transport::Channel::from_shared(self.grpc_url())
            .map_err(|e| format!("bad gRPC URL {}: {e}", self.grpc_url()))?
            .connect()
            .await
            .map_err(|e| format!("connecting to {}: {e}", self.addr))?;
        let mut client = HealthClient::new(channel);
        let response = client
            .check(HealthCheckRequest {
                service: ::tollgate::CHECK_SERVICE_NAME.to_owned(),
            })
            .await
            .map_err(|e| format!("health check: {e}"))?;
        Ok(response.into_inner().status())
    }

    async fn wait_for_address(&mut self) -> SocketAddr {
        let line = poll(LISTEN_LIMIT, async || {
            if let Some(line) = self.find_line(LISTENING_MESSAGE) {
                return Ok(line);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Give the reader thread a moment to drain the pipe so the
                // panic shows why it exited.
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "tollgate exited with {status} before listening\n{}",
                    self.describe()
                );
            }
            Err(())
        })
        .await
        .unwrap_or_else(|()| {
            panic!(
                "tollgate did not log {LISTENING_MESSAGE:?} within {LISTEN_LIMIT:?}\n{}",
                self.describe()
            )
        });
        listen_address(&line)
            .unwrap_or_else(|| panic!("no addr= in tollgate's line {line:?}\n{}", self.describe()))
    }

    /// The config and logs, for panic messages.
    pub fn describe(&self) -> String {
        let config = std::fs::read_to_string(&self.config).unwrap_or_default();
        format!(
            "--- tollgate config ({}) ---\n{config}\n--- tollgate stderr ---\n{}",
            self.config.display(),
            self.logs()
        )
    }
}

impl Drop for TollgateProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("{}", self.describe());
        }
    }
}

/// The `addr` field of the listening line, in human (`addr=1.2.3.4:5`) or
/// JSON (`"addr":"1.2.3.4:5"`) log format.
fn listen_address(line: &str) -> Option<SocketAddr> {
    if let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(line) {
        return fields.get("addr")?.as_str()?.parse().ok();
    }
    let start = line.find("addr=")? + "addr=".len();
    line[start..].split_whitespace().next()?.parse().ok()
}
