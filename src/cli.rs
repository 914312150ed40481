//! The command line: `serve`, `check-config` and `dev-token`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use crate::config::Config;
use crate::devtoken::{DEV_AUDIENCE, DEV_ISSUER, DevToken, SigningKey};
use crate::routes::{FindingKind, RouteTable};

/// BSD `EX_USAGE`: the configuration or command line is wrong.
const EX_USAGE: u8 = 64;
/// BSD `EX_SOFTWARE`: tollgate failed while running.
const EX_SOFTWARE: u8 = 70;

/// External authorization for Envoy and Istio: OAuth2 bearer tokens checked per route.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve envoy.service.auth.v3.Authorization/Check.
    Serve {
        /// The YAML config file.
        #[arg(
            short,
            long,
            env = "TOLLGATE_CONFIG",
            default_value = "config/quickstart.yaml"
        )]
        config: PathBuf,
    },
    /// Validate a config file and warn about routes that shadow or overlap others.
    CheckConfig {
        /// The YAML config file.
        config: PathBuf,
    },
    /// Mint a token with the quickstart's development key (never for production).
    DevToken(Box<DevTokenArgs>),
}

#[derive(Debug, clap::Args)]
struct DevTokenArgs {
    /// A scope to grant; repeat for more.
    #[arg(long = "scope", short = 's')]
    scopes: Vec<String>,
    /// `aud`; repeat for more.
    #[arg(long = "audience", default_value = DEV_AUDIENCE)]
    audiences: Vec<String>,
    /// Lifetime such as 30s, 15m or 1h.
    #[arg(long, default_value = "1h")]
    lifetime: String,
    /// `sub`.
    #[arg(long, default_value = "dev-client")]
    subject: String,
    /// `client_id`.
    #[arg(long, default_value = "dev-client")]
    client_id: String,
    /// `iss`.
    #[arg(long, default_value = DEV_ISSUER)]
    issuer: String,
    /// An extra claim as NAME=VALUE; VALUE is parsed as JSON when it can be, else taken as a string.
    #[arg(long = "claim")]
    claims: Vec<String>,
    /// Sign with this PEM private key instead of the development key (for
    /// HS256/384/512: a file holding the secret; trailing whitespace is
    /// ignored, as `serve` ignores it).
    #[arg(long, requires = "algorithm")]
    key: Option<PathBuf>,
    /// Algorithm for --key, such as RS256, ES256 or EdDSA.
    #[arg(long)]
    algorithm: Option<String>,
    /// `kid` header for --key.
    #[arg(long)]
    kid: Option<String>,
}

impl Cli {
    /// Runs the chosen command to completion.
    pub fn run(self) -> ExitCode {
        match self.command {
            Command::Serve { config } => serve(config),
            Command::CheckConfig { config } => check_config(config),
            Command::DevToken(args) => {
                let DevTokenArgs {
                    scopes,
                    audiences,
                    lifetime,
                    subject,
                    client_id,
                    issuer,
                    claims,
                    key,
                    algorithm,
                    kid,
                } = *args;
                let token = (|| {
                    let lifetime = crate::config::parse_duration(&lifetime)?;
                    let claims = parse_claims(&claims)?;
                    let key = match key {
                        None => SigningKey::dev()?,
                        Some(path) => {
                            let pem = std::fs::read(&path)
                                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                            let algorithm =
                                parse_algorithm(algorithm.as_deref().unwrap_or_default())?;
                            SigningKey::from_pem(&pem, algorithm, kid)?
                        }
                    };
                    DevToken {
                        issuer,
                        audience: audiences,
                        subject,
                        client_id,
                        scopes,
                        lifetime,
                        claims,
                    }
                    .sign(&key)
                })();
                match token {
                    Ok(token) => {
                        println!("{token}");
                        ExitCode::SUCCESS
                    }
                    Err(message) => {
                        eprintln!("tollgate dev-token: {message}");
                        ExitCode::from(EX_USAGE)
                    }
                }
            }
        }
    }
}

/// Algorithm names as JWS writes them, matched case-insensitively.
fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    const NAMES: &[&str] = &[
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA", "HS256",
        "HS384", "HS512",
    ];
    NAMES
        .iter()
        .find(|known| known.eq_ignore_ascii_case(name))
        .and_then(|known| known.parse().ok())
        .ok_or_else(|| {
            format!(
                "unknown --algorithm `{name}`; use one of {}",
                NAMES.join(", ")
            )
        })
}

fn parse_claims(pairs: &[String]) -> Result<Map<String, Value>, String> {
    pairs
        .iter()
        .map(|pair| {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("--claim {pair}: expected NAME=VALUE"))?;
            let value =
                serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
            Ok((name.to_owned(), value))
        })
        .collect()
}

fn serve(path: PathBuf) -> ExitCode {
    let config = match Config::load(&path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("tollgate: refusing to start: {}: {error}", path.display());
            return ExitCode::from(EX_USAGE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tollgate: cannot start the async runtime: {error}");
            return ExitCode::from(EX_SOFTWARE);
        }
    };
    // The span exporter's gRPC channel lives on this runtime.
    let telemetry = {
        let _runtime = runtime.enter();
        crate::telemetry::init(&config.telemetry)
    };
    let telemetry = match telemetry {
        Ok(telemetry) => telemetry,
        Err(message) => {
            eprintln!("tollgate: refusing to start: {message}");
            return ExitCode::from(EX_USAGE);
        }
    };
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let code = runtime.block_on(async {
        let bind = async |addr: std::net::SocketAddr| {
            tokio::net::TcpListener::bind(addr).await.map_err(|error| {
                tracing::error!(%addr, %error, "cannot listen");
                ExitCode::from(EX_USAGE)
            })
        };
        let listeners = async {
            Ok::<_, ExitCode>(crate::server::Listeners {
                grpc: bind(config.server.grpc_listen).await?,
                http: match &config.server.http {
                    Some(http) => Some(bind(http.listen).await?),
                    None => None,
                },
                admin: Some(bind(config.server.admin_listen).await?),
            })
        };
        let listeners = match listeners.await {
            Ok(listeners) => listeners,
            Err(code) => return code,
        };
        let shutdown = crate::server::shutdown_signal();
        match crate::server::serve_reloading(config, path, listeners, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(error = %crate::error_chain::ErrorChain(&error), "tollgate stopped");
                ExitCode::from(EX_SOFTWARE)
            }
        }
    });
    // After serving, with the runtime still up: the last checks' spans go out.
    telemetry.shutdown();
    code
}

fn check_config(path: PathBuf) -> ExitCode {
    let config = match Config::load(&path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("{}: invalid: {error}", path.display());
            return ExitCode::from(EX_USAGE);
        }
    };
    for warning in &config.warnings {
        eprintln!("warning: {warning}");
    }
    let providers = config.authz.providers.len();
    let names: Vec<_> = config
        .authz
        .routes
        .iter()
        .map(|r| r.policy.name.clone())
        .collect();
    let table = RouteTable::new(
        config
            .authz
            .routes
            .into_iter()
            .map(|r| (r.matcher, ()))
            .collect(),
    );
    let findings = table.lint();
    let never_match: Vec<usize> = findings
        .iter()
        .filter(|f| f.kind == FindingKind::Shadows)
        .map(|f| f.later)
        .collect();
    for finding in findings {
        // A route that can never match needs no overlap notes too.
        if finding.kind == FindingKind::Overlaps && never_match.contains(&finding.later) {
            continue;
        }
        let earlier = names.get(finding.earlier).map_or("?", |n| n);
        let later = names.get(finding.later).map_or("?", |n| n);
        match finding.kind {
            FindingKind::Shadows => eprintln!(
                "warning: route `{later}` can never match: route `{earlier}` comes first and matches every request it would"
            ),
            FindingKind::Overlaps => eprintln!(
                "note: routes `{earlier}` and `{later}` overlap: requests matching both get `{earlier}`'s policy (first match wins)"
            ),
        }
    }
    println!(
        "{}: ok ({providers} providers, {} routes)",
        path.display(),
        names.len()
    );
    ExitCode::SUCCESS
}
