//! The whole path a user runs: an echo upstream, the real `tollgate` binary
//! on a config file, and the real Envoy in front, calling tollgate over
//! gRPC. Requests go to Envoy; answers come back with every log attached
//! when they are not what a test expected.

use std::path::PathBuf;

use super::client::{Response, request};
use super::echo::EchoUpstream;
use super::envoy::{Envoy, EnvoyOptions};
use super::scratch::ScratchDir;
use super::tollgate::TollgateProcess;

/// Echo, tollgate and Envoy; dropped in reverse order of starting.
pub struct Stack {
    pub envoy: Envoy,
    pub tollgate: TollgateProcess,
    pub echo: EchoUpstream,
    config: PathBuf,
    _dir: ScratchDir,
}

impl Stack {
    /// Writes `config_yaml` (which should listen on `127.0.0.1:0`), serves
    /// it with `env` added, waits until tollgate is SERVING, and starts
    /// Envoy in front of the echo upstream.
    pub async fn start(config_yaml: &str, env: &[(&str, &str)]) -> Self {
        let dir = ScratchDir::new("stack");
        let config = dir.join("tollgate.yaml");
        std::fs::write(&config, config_yaml)
            .unwrap_or_else(|e| panic!("writing {}: {e}", config.display()));
        let tollgate = TollgateProcess::serve_file(&config, env).await;
        tollgate.wait_until_serving().await;
        let echo = EchoUpstream::start().await;
        let envoy = Envoy::start(EnvoyOptions::new(echo.addr, tollgate.addr())).await;
        Stack {
            envoy,
            tollgate,
            echo,
            config,
            _dir: dir,
        }
    }

    /// The config file tollgate serves.
    pub fn config_path(&self) -> &std::path::Path {
        &self.config
    }

    /// `method path` through Envoy with `headers`.
    pub async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
        request(method, &self.envoy.url(path), headers, b"{}".to_vec()).await
    }

    /// As [`Stack::send`], panicking with every log unless the answer is `status`.
    pub async fn expect(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        status: u16,
    ) -> Response {
        let response = self.send(method, path, headers).await;
        self.assert_status(response, status, &format!("{method} {path} {headers:?}"))
    }

    /// Panics with every log unless `response` (to the request `what`) has `status`.
    pub fn assert_status(&self, response: Response, status: u16, what: &str) -> Response {
        assert_eq!(
            response.status,
            status,
            "{what}: got {} {:?} {}\n--- tollgate\n{}\n--- envoy\n{}",
            response.status,
            response.headers,
            response.body,
            self.tollgate.logs(),
            self.envoy.logs()
        );
        response
    }
}

/// The value(s) of header `name` the echo upstream received.
pub fn upstream_header(response: &Response, name: &str) -> Vec<String> {
    match &response.json()["headers"][name] {
        serde_json::Value::Array(values) => values
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect(),
        serde_json::Value::String(value) => vec![value.clone()],
        _ => Vec::new(),
    }
}
