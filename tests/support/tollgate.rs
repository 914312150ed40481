//! The real `tollgate` binary as a child process: `serve` on 127.0.0.1:0,
//! its address read back from its own log line, its stderr kept for
//! assertions and panic messages, and the process killed on drop.

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
/// Poll interval while waiting; tollgate is usually up within milliseconds.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// The message `server::serve` logs, with `addr=`, once it is bound.
const LISTENING_MESSAGE: &str = "serving envoy.service.auth.v3.Authorization";

/// The path of the `tollgate` binary cargo built for these tests.
pub fn tollgate_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tollgate"))
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
        let mut command = Command::new(tollgate_binary());
        command
            .arg("serve")
            .arg("--config")
            .arg(config)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        // The developer's shell must not change what the test runs: RUST_LOG
        // could hide the address line, TOLLGATE_* could override the config.
        command.env_remove("RUST_LOG").env("NO_COLOR", "1");
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("TOLLGATE_") {
                command.env_remove(name);
            }
        }
        command.envs(env.iter().copied());
        let mut child = command
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

    /// Where the gRPC services listen.
    pub fn addr(&self) -> SocketAddr {
        self.addr
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

    /// Waits (bounded) until some stderr line contains `needle`; panics with
    /// the logs otherwise. Log lines are written after the response is sent,
    /// so a test that just got an answer may need to wait a moment.
    pub async fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self
                .lines
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .find(|line| line.contains(needle))
                .cloned();
            if let Some(line) = found {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "tollgate never logged {needle:?}\n{}",
                self.describe()
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Waits until gRPC health says SERVING for the Check service.
    pub async fn wait_until_serving(&self) {
        let deadline = Instant::now() + HEALTH_LIMIT;
        loop {
            let last = match self.health().await {
                Ok(ServingStatus::Serving) => return,
                Ok(status) => format!("health said {status:?}"),
                Err(e) => e,
            };
            if Instant::now() > deadline {
                panic!(
                    "tollgate was not SERVING within {HEALTH_LIMIT:?}: {last}\n{}",
                    self.describe()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
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
                service: ::tollgate::server::CHECK_SERVICE_NAME.to_owned(),
            })
            .await
            .map_err(|e| format!("health check: {e}"))?;
        Ok(response.into_inner().status())
    }

    async fn wait_for_address(&mut self) -> SocketAddr {
        let deadline = Instant::now() + LISTEN_LIMIT;
        loop {
            let found = self
                .lines
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .find(|line| line.contains(LISTENING_MESSAGE))
                .cloned();
            if let Some(line) = found {
                return listen_address(&line).unwrap_or_else(|| {
                    panic!("no addr= in tollgate's line {line:?}\n{}", self.describe())
                });
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
            if Instant::now() > deadline {
                panic!(
                    "tollgate did not log {LISTENING_MESSAGE:?} within {LISTEN_LIMIT:?}\n{}",
                    self.describe()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
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
