//! A gRPC-only load client for tollgate: N calls in flight to
//! `envoy.service.auth.v3.Authorization/Check` for a fixed time, reporting
//! checks/s and latency percentiles. It also mints the token pools the load
//! script uses, so no other tool is needed.
//!
//! ```text
//! cargo run --release --example grpc_load -- mint --count 1000 --out tokens.txt \
//!     --key tests/fixtures/keys/rsa-2048.pem --algorithm RS256 --kid rsa-1 \
//!     --issuer https://bench.idp --audience api --scope read
//! cargo run --release --example grpc_load -- load --tokens tokens.txt \
//!     --target http://127.0.0.1:9191 --concurrency 32 --duration 20s
//! ```
//!
//! `load --once` checks every token in the file exactly once and stops (how
//! the load script fills the verified-token cache with distinct tokens).
//! The last line of `load` is one JSON object, for scripts.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
use serde_json::{Map, Value};
use tollgate::{DevToken, SigningKey};
use tonic::transport::{Channel, Endpoint};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write COUNT distinct valid tokens (differing in `jti`), one per line.
    Mint {
        #[arg(long)]
        count: usize,
        #[arg(long)]
        out: PathBuf,
        /// PEM private key; the development key when absent.
        #[arg(long, requires_all = ["algorithm", "kid"])]
        key: Option<PathBuf>,
        #[arg(long)]
        algorithm: Option<String>,
        #[arg(long)]
        kid: Option<String>,
        #[arg(long, default_value = tollgate::DEV_ISSUER)]
        issuer: String,
        #[arg(long, default_value = tollgate::DEV_AUDIENCE)]
        audience: String,
        #[arg(long = "scope", default_value = "read")]
        scopes: Vec<String>,
    },
    /// Send checks, each with the next token of the pool.
    Load {
        #[arg(long)]
        tokens: PathBuf,
        #[arg(long, default_value = "http://127.0.0.1:9191")]
        target: String,
        /// Calls in flight at once.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// How long to send, such as 20s; ignored with --once.
        #[arg(long, default_value = "20s")]
        duration: String,
        /// HTTP/2 connections the calls are spread over.
        #[arg(long, default_value_t = 1)]
        connections: usize,
        /// Check each token once, then stop.
        #[arg(long)]
        once: bool,
        /// Host, method and path of the request being authorised.
        #[arg(long, default_value = "api.example.com")]
        host: String,
        #[arg(long, default_value = "GET")]
        method: String,
        #[arg(long, default_value = "/get")]
        path: String,
    },
}

fn main() -> Result<(), String> {
    match Cli::parse().command {
        Command::Mint {
            count,
            out,
            key,
            algorithm,
            kid,
            issuer,
            audience,
            scopes,
        } => {
            let key = match key {
                None => SigningKey::dev()?,
                Some(path) => {
                    let pem = std::fs::read(&path)
                        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                    let algorithm = algorithm
                        .unwrap_or_default()
                        .parse()
                        .map_err(|e| format!("--algorithm: {e}"))?;
                    SigningKey::from_pem(&pem, algorithm, kid)?
                }
            };
            let template = DevToken {
                issuer,
                audience: vec![audience],
                subject: "load".into(),
                client_id: "load".into(),
                scopes,
                lifetime: Duration::from_secs(4 * 3600),
                claims: Map::new(),
            };
            let mut lines = String::new();
            for i in 0..count {
                let mut token = template.clone();
                // A string: Envoy's jwt_authn refuses a numeric `jti`.
                token
                    .claims
                    .insert("jti".into(), Value::from(i.to_string()));
                lines.push_str(&token.sign(&key)?);
                lines.push('\n');
            }
            std::fs::write(&out, lines).map_err(|e| format!("{}: {e}", out.display()))
        }
        Command::Load {
            tokens,
            target,
            concurrency,
            duration,
            connections,
            once,
            host,
            method,
            path,
        } => {
            let tokens = std::fs::read_to_string(&tokens)
                .map_err(|e| format!("{}: {e}", tokens.display()))?;
            let requests: Vec<CheckRequest> = tokens
                .lines()
                .filter(|line| !line.is_empty())
                .map(|token| check_request(&host, &method, &path, token))
                .collect();
            if requests.is_empty() {
                return Err("the token file is empty".into());
            }
            let duration = tollgate::internals::parse_duration(&duration)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let plan = Plan {
                requests: Arc::new(requests),
                concurrency: concurrency.max(1),
                connections: connections.max(1),
                duration,
                once,
            };
            let report = runtime.block_on(run(&target, plan))?;
            report.print();
            Ok(())
        }
    }
}

fn check_request(host: &str, method: &str, path: &str, token: &str) -> CheckRequest {
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(HttpRequest {
                    host: host.into(),
                    method: method.into(),
                    path: path.into(),
                    scheme: "http".into(),
                    protocol: "HTTP/1.1".into(),
                    headers: [
                        (":authority", host),
                        (":method", method),
                        (":path", path),
                        ("authorization", &format!("Bearer {token}")),
                        ("user-agent", "grpc_load"),
                        ("accept", "*/*"),
                    ]
                    .into_iter()
                    .map(|(name, value)| (name.to_owned(), value.to_owned()))
                    .collect(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

struct Plan {
    requests: Arc<Vec<CheckRequest>>,
    concurrency: usize,
    connections: usize,
    duration: Duration,
    once: bool,
}

#[derive(Default)]
struct Report {
    latencies: Vec<Duration>,
    allowed: usize,
    denied: usize,
    errors: usize,
    elapsed: Duration,
}

async fn run(target: &str, plan: Plan) -> Result<Report, String> {
    let endpoint = Endpoint::from_shared(target.to_owned()).map_err(|e| e.to_string())?;
    let mut channels = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections {
        let channel: Channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("connecting to {target}: {e}"))?;
        channels.push(channel);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + plan.duration;
    let mut tasks = Vec::with_capacity(plan.concurrency);
    for worker in 0..plan.concurrency {
        let mut client = AuthorizationClient::new(channels[worker % channels.len()].clone());
        let requests = plan.requests.clone();
        let next = next.clone();
        let once = plan.once;
        tasks.push(tokio::spawn(async move {
            let mut report = Report::default();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if once && index >= requests.len() || !once && Instant::now() >= deadline {
                    break;
                }
                let request = requests[index % requests.len()].clone();
                let sent = Instant::now();
                let outcome = client.check(request).await;
                report.latencies.push(sent.elapsed());
                match outcome {
                    Ok(response)
                        if response.get_ref().status.as_ref().map(|s| s.code) == Some(0) =>
                    {
                        report.allowed += 1
                    }
                    Ok(_) => report.denied += 1,
                    Err(_) => report.errors += 1,
                }
            }
            report
        }));
    }
    let mut total = Report::default();
    for task in tasks {
        let report = task.await.map_err(|e| e.to_string())?;
        total.latencies.extend(report.latencies);
        total.allowed += report.allowed;
        total.denied += report.denied;
        total.errors += report.errors;
    }
    total.elapsed = start.elapsed();
    total.latencies.sort_unstable();
    Ok(total)
}

impl Report {
    fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((self.latencies.len() as f64) * p).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }

    fn print(&self) {
        let checks = self.latencies.len();
        let rate = checks as f64 / self.elapsed.as_secs_f64();
        let p50 = self.percentile(0.50).as_secs_f64() * 1e3;
        let p99 = self.percentile(0.99).as_secs_f64() * 1e3;
        println!(
            "{checks} checks in {:.2}s: {rate:.0} checks/s, p50 {p50:.3} ms, p99 {p99:.3} ms \
             ({} allowed, {} denied, {} errors)",
            self.elapsed.as_secs_f64(),
            self.allowed,
            self.denied,
            self.errors
        );
        println!(
            "{}",
            serde_json::json!({
                "checks": checks,
                "seconds": self.elapsed.as_secs_f64(),
                "rps": rate,
                "p50_ms": p50,
                "p99_ms": p99,
                "allowed": self.allowed,
                "denied": self.denied,
                "errors": self.errors,
            })
        );
    }
}
