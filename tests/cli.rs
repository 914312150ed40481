//! The `tollgate` command line as users run it: `check-config`, `serve` and
//! `dev-token`, through the real binary, from the repository root.

mod support;

use std::collections::HashMap;
use std::io::Read as _;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use envoy_types::pb::envoy::config::core::v3::HeaderValueOption;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, CheckResponse};
use serde_json::Value;
use support::{ScratchDir, TollgateProcess, repo_path, tollgate_command};

/// BSD `EX_USAGE`, tollgate's exit code for a bad config or command line.
const EX_USAGE: i32 = 64;
/// Longest any one command may run; they all finish in well under a second.
const COMMAND_LIMIT: Duration = Duration::from_secs(30);

/// What a finished command did.
#[derive(Debug)]
struct Outcome {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `tollgate <args>` from the repository root with `env` added (and
/// the caller's `TOLLGATE_*` and `RUST_LOG` removed), killing it if it runs
/// past [`COMMAND_LIMIT`].
fn tollgate(args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let mut child = tollgate_command(args, env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting tollgate {args:?}: {e}"));
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + COMMAND_LIMIT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = stderr.join().unwrap_or_default();
                panic!(
                    "tollgate {args:?} still running after {COMMAND_LIMIT:?}; stderr:\n{stderr}"
                );
            }
            Err(e) => panic!("waiting for tollgate {args:?}: {e}"),
        }
    };
    Outcome {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// `tollgate check-config` on `yaml` written to a scratch file.
fn check_yaml(yaml: &str) -> Outcome {
    let dir = ScratchDir::new("cli");
    let path = dir.join("tollgate.yaml");
    std::fs::write(&path, yaml).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    tollgate(&["check-config", &path.to_string_lossy()], &[])
}

/// A valid config with one provider and one route; `edit` changes it.
fn minimal_config() -> String {
    let jwks = repo_path("tests/fixtures/keys/jwks.json");
    format!(
        r#"server:
  grpc_listen: 127.0.0.1:0
providers:
  - name: fixtures
    issuer: https://issuer.cli.tollgate.test
    audiences: [api]
    jwks_file: {jwks}
routes:
  - name: everything
    match: {{ path: {{ prefix: / }} }}
    require: {{ scopes: [read] }}
"#,
        jwks = Value::from(jwks.to_string_lossy().into_owned())
    )
}

fn edited(from: &str, to: &str) -> String {
    let config = minimal_config();
    assert!(
        config.contains(from),
        "{from:?} is not in the minimal config"
    );
    config.replacen(from, to, 1)
}

/// The minimal config with `line` added to its provider.
fn with_provider_line(line: &str) -> String {
    let audiences = "    audiences: [api]\n";
    edited(audiences, &format!("{audiences}    {line}\n"))
}

/// The claims of a compact JWS, without verifying it.
fn claims(token: &str) -> serde_json::Map<String, Value> {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a compact JWS: {token:?}");
    let payload = URL_SAFE_NO_PAD
        .decode(parts[1])
        .unwrap_or_else(|e| panic!("payload is not base64url ({e}): {token}"));
    match serde_json::from_slice(&payload) {
        Ok(Value::Object(claims)) => claims,
        other => panic!("payload is not a JSON object: {other:?}"),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn dev_token(args: &[&str]) -> String {
    let mut all = vec!["dev-token"];
    all.extend_from_slice(args);
    let outcome = tollgate(&all, &[]);
    assert_eq!(outcome.code(), Some(0), "{outcome}");
    outcome.stdout.trim_end_matches('\n').to_owned()
}

#[test]
fn check_config_accepts_the_quickstart() {
    let outcome = tollgate(&["check-config", "config/quickstart.yaml"], &[]);
    assert_eq!(outcome.code(), Some(0), "{outcome}");
    assert!(
        outcome.stdout.contains("config/quickstart.yaml: ok"),
        "{outcome}"
    );
    assert!(!outcome.stderr.contains("warning:"), "{outcome}");
}

#[test]
fn check_config_accepts_the_annotated_reference_when_its_secrets_are_set() {
    let secrets = [
        (
            "TOLLGATE_INTERNAL_HMAC",
            "an internal signing secret, 32+ bytes",
        ),
        ("TOLLGATE_INTROSPECTION_SECRET", "introspection secret"),
    ];
    let outcome = tollgate(&["check-config", "config/tollgate.yaml"], &secrets);
    assert_eq!(outcome.code(), Some(0), "{outcome}");
    assert!(outcome.stdout.contains(": ok (5 providers"), "{outcome}");

    // Without a secret in the environment, the field that needs it is named.
    let outcome = tollgate(&["check-config", "config/tollgate.yaml"], &secrets[1..]);
    assert_eq!(outcome.code(), Some(EX_USAGE), "{outcome}");
    assert!(
        outcome.stderr.contains("providers[4].hmac_secret"),
        "{outcome}"
    );
    assert!(
        outcome.stderr.contains("TOLLGATE_INTERNAL_HMAC"),
        "{outcome}"
    );
}

#[test]
fn the_minimal_config_used_below_is_valid() {
    let outcome = check_yaml(&minimal_config());
    assert_eq!(outcome.code(), Some(0), "{outcome}");
}

#[test]
fn check_config_refuses_broken_configs_naming_the_field() {
    let cases = [
        ("a misspelt key", edited("issuer:", "isuer:"), vec!["isuer"]),
        (
            "a duration without a unit",
            with_provider_line("leeway: 30"),
            vec!["leeway"],
        ),
        (
            "a regex that does not compile",
            edited("{ prefix: / }", r#"{ regex: "/reports/[0-9" }"#),
            vec!["routes[0].match.path", "regex"],
        ),
        (
            "the none algorithm",
            with_provider_line("algorithms: [none]"),
            vec!["providers[0].algorithms", "none"],
        ),
        (
            "HS256 without a secret",
            with_provider_line("algorithms: [HS256]"),
            vec!["providers[0].algorithms", "hmac_secret"],
        ),
        (
            "a route naming an unknown provider",
            edited(
                "    require: { scopes: [read] }\n",
                "    providers: [keycloak]\n    require: { scopes: [read] }\n",
            ),
            vec!["routes[0].providers", "keycloak"],
        ),
        (
            "keys over plain http from another host",
            {
                let config = minimal_config();
                let start = config.find("    jwks_file:").unwrap_or_default();
                let end = config[start..]
                    .find('\n')
                    .map_or(config.len(), |n| start + n);
                format!(
                    "{}    jwks_uri: http://example.com/jwks{}",
                    &config[..start],
                    &config[end..]
                )
            },
            vec!["providers[0].jwks_uri", "http://example.com/jwks"],
        ),
    ];
    for (what, yaml, needles) in &cases {
        let outcome = check_yaml(yaml);
        assert_eq!(outcome.code(), Some(EX_USAGE), "{what}:\n{yaml}\n{outcome}");
        for needle in needles {
            assert!(
                outcome.stderr.contains(needle),
                "{what}: stderr should name {needle:?}:\n{yaml}\n{outcome}"
            );
        }
        assert!(!outcome.stdout.contains(": ok"), "{what}: {outcome}");
    }
}

#[test]
fn check_config_refuses_a_missing_file() {
    let outcome = tollgate(&["check-config", "config/no-such-file.yaml"], &[]);
    assert_eq!(outcome.code(), Some(EX_USAGE), "{outcome}");
    assert!(outcome.stderr.contains("no-such-file.yaml"), "{outcome}");
}

#[test]
fn serve_with_a_broken_config_exits_64_before_listening() {
    let dir = ScratchDir::new("cli");
    let path = dir.join("tollgate.yaml");
    std::fs::write(&path, edited("{ prefix: / }", r#"{ regex: "(" }"#))
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    let outcome = tollgate(&["serve", "--config", &path.to_string_lossy()], &[]);
    assert_eq!(outcome.code(), Some(EX_USAGE), "{outcome}");
    assert!(outcome.stderr.contains("refusing to start"), "{outcome}");
    assert!(outcome.stderr.contains("routes[0].match.path"), "{outcome}");
    assert!(
        !outcome
            .stderr
            .contains("serving envoy.service.auth.v3.Authorization"),
        "{outcome}"
    );
}

#[test]
fn check_config_warns_about_a_shadowed_route() {
    // `everything` (prefix /) comes first, so `post-only` can never match.
    let yaml = minimal_config()
        + "  - name: post-only\n    match: { methods: [POST], path: { exact: /post } }\n    require: { scopes: [write] }\n";
    assert!(yaml.contains("exact: /post"), "{yaml}");
    let outcome = check_yaml(&yaml);
    assert_eq!(outcome.code(), Some(0), "{yaml}\n{outcome}");
    let warning = outcome
        .stderr
        .lines()
        .find(|line| line.starts_with("warning:"))
        .unwrap_or_else(|| panic!("no warning:\n{yaml}\n{outcome}"));
    assert!(
        warning.contains("`post-only` can never match") && warning.contains("`everything`"),
        "{warning}"
    );
    assert!(outcome.stdout.contains(": ok"), "{outcome}");
}

#[test]
fn dev_token_prints_only_the_token() {
    let outcome = tollgate(&["dev-token", "--scope", "read", "--scope", "write"], &[]);
    assert_eq!(outcome.code(), Some(0), "{outcome}");
    assert!(outcome.stdout.ends_with('\n'), "{outcome}");
    let lines: Vec<&str> = outcome.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout must be the token alone: {outcome}");
    assert_eq!(outcome.stderr, "", "dev-token must not chatter: {outcome}");
    let token = lines[0];
    assert_eq!(token.split('.').count(), 3, "{token}");
    assert!(token.split('.').all(|part| !part.is_empty()), "{token}");

    let claims = claims(token);
    assert_eq!(claims["scope"], "read write");
    assert_eq!(claims["aud"], tollgate::DEV_AUDIENCE);
    assert_eq!(claims["aud"], "tollgate-quickstart");
    assert_eq!(claims["iss"], tollgate::DEV_ISSUER);
    let exp = claims["exp"].as_u64().unwrap_or_default();
    let expected = now() + 3600;
    assert!(
        exp.abs_diff(expected) <= 60,
        "exp {exp} is not about an hour from now ({expected})"
    );
}

#[test]
fn dev_token_takes_a_lifetime_and_extra_claims() {
    let token = dev_token(&[
        "--scope",
        "read",
        "--lifetime",
        "5m",
        "--claim",
        r#"realm_access={"roles":["a"]}"#,
        "--claim",
        "tenant=acme",
    ]);
    let claims = claims(&token);
    let exp = claims["exp"].as_u64().unwrap_or_default();
    let iat = claims["iat"].as_u64().unwrap_or_default();
    assert_eq!(exp - iat, 300, "{claims:?}");
    assert!(exp.abs_diff(now() + 300) <= 60, "{claims:?}");
    assert_eq!(
        claims["realm_access"],
        serde_json::json!({ "roles": ["a"] })
    );
    assert_eq!(claims["tenant"], "acme");
}

#[test]
fn dev_token_refuses_a_lifetime_without_a_unit() {
    let outcome = tollgate(&["dev-token", "--lifetime", "5"], &[]);
    assert_eq!(outcome.code(), Some(EX_USAGE), "{outcome}");
    assert_eq!(outcome.stdout, "", "no token on a refused command");
    assert!(outcome.stderr.contains("unit"), "{outcome}");
}

fn check_request(method: &str, path: &str, headers: &[(&str, &str)]) -> CheckRequest {
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(HttpRequest {
                    method: method.to_owned(),
                    path: path.to_owned(),
                    host: "localhost:8080".to_owned(),
                    scheme: "http".to_owned(),
                    protocol: "HTTP/1.1".to_owned(),
                    headers,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

/// `(name, value)` of each header a Check response sets.
fn header_pairs(options: &[HeaderValueOption]) -> impl Iterator<Item = (&str, &str)> {
    options
        .iter()
        .filter_map(|h| h.header.as_ref())
        .map(|h| (h.key.as_str(), h.value.as_str()))
}

async fn check(addr: std::net::SocketAddr, request: CheckRequest) -> CheckResponse {
    let mut client = AuthorizationClient::connect(format!("http://{addr}"))
        .await
        .unwrap_or_else(|e| panic!("connecting to tollgate at {addr}: {e}"));
    client
        .check(request)
        .await
        .unwrap_or_else(|e| panic!("Check failed: {e}"))
        .into_inner()
}

#[tokio::test]
async fn quickstart_serves_checks_with_an_env_listen_override() {
    let tollgate = TollgateProcess::serve_file(
        &repo_path("config/quickstart.yaml"),
        &[("TOLLGATE_SERVER__GRPC_LISTEN", "127.0.0.1:0")],
    )
    .await;
    // The file says 9191; port 0 in the environment must win.
    assert_ne!(tollgate.addr().port(), 9191, "{}", tollgate.logs());
    tollgate.wait_until_serving().await;

    let token = dev_token(&["--scope", "read"]);
    let allowed = check(
        tollgate.addr(),
        check_request(
            "GET",
            "/get",
            &[("authorization", &format!("Bearer {token}"))],
        ),
    )
    .await;
    assert_eq!(
        allowed.status.as_ref().map(|s| s.code),
        Some(0),
        "{allowed:?}"
    );
    let Some(HttpResponse::OkResponse(ok)) = &allowed.http_response else {
        panic!("expected an OkResponse: {allowed:?}");
    };
    let set: HashMap<&str, &str> = header_pairs(&ok.headers).collect();
    assert_eq!(set.get("x-auth-subject"), Some(&"dev-client"), "{ok:?}");
    assert_eq!(set.get("x-auth-scopes"), Some(&"read"), "{ok:?}");
    assert!(
        ok.headers_to_remove.iter().any(|h| h == "authorization"),
        "the quickstart removes the token header: {ok:?}"
    );

    let denied = check(tollgate.addr(), check_request("GET", "/get", &[])).await;
    // UNAUTHENTICATED
    assert_eq!(
        denied.status.as_ref().map(|s| s.code),
        Some(16),
        "{denied:?}"
    );
    let Some(HttpResponse::DeniedResponse(deny)) = &denied.http_response else {
        panic!("expected a DeniedResponse: {denied:?}");
    };
    assert_eq!(deny.status.as_ref().map(|s| s.code), Some(401), "{deny:?}");
    let challenge = header_pairs(&deny.headers)
        .find(|(name, _)| *name == "www-authenticate")
        .map(|(_, value)| value);
    assert_eq!(challenge, Some("Bearer realm=\"quickstart\""), "{deny:?}");
}

#[tokio::test]
async fn json_logs_have_one_line_per_decision_and_never_the_token() {
    let tollgate = TollgateProcess::serve_file(
        &repo_path("config/quickstart.yaml"),
        &[
            ("TOLLGATE_SERVER__GRPC_LISTEN", "127.0.0.1:0"),
            ("TOLLGATE_LOG__FORMAT", "json"),
        ],
    )
    .await;
    tollgate.wait_until_serving().await;
    let token = dev_token(&["--scope", "read", "--subject", "svc-logs"]);
    let bearer = format!("Bearer {token}");
    check(
        tollgate.addr(),
        check_request("GET", "/get", &[("authorization", &bearer)]),
    )
    .await;
    check(
        tollgate.addr(),
        check_request("POST", "/post", &[("authorization", &bearer)]),
    )
    .await;
    tollgate.wait_for_log("insufficient_scope").await;

    let decisions: Vec<Value> = tollgate
        .logs()
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"))
        })
        .filter(|line| line.get("decision").is_some())
        .collect();
    assert_eq!(decisions.len(), 2, "{}", tollgate.logs());
    assert_eq!(decisions[0]["decision"], "allow");
    assert_eq!(decisions[0]["route"], "get-needs-read");
    assert_eq!(decisions[0]["subject"], "svc-logs");
    assert_eq!(decisions[0]["client_id"], "dev-client");
    assert_eq!(decisions[1]["decision"], "deny");
    assert_eq!(decisions[1]["reason"], "insufficient_scope");
    assert_eq!(decisions[1]["status"], 403);
    let signature = token.rsplit('.').next().unwrap_or_default();
    assert!(
        !tollgate.logs().contains(signature),
        "the token leaked into the logs"
    );
}
