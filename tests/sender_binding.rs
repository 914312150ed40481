//! Sender-constrained access tokens end to end: RFC 8705 certificate-bound
//! tokens and RFC 9449 DPoP, issued by the real OpenID provider
//! (`oidc-provider`, with its mutual-TLS listener) and presented through the
//! real Envoy's HTTPS listeners (client certificates passed to tollgate
//! with `include_peer_certificate`) to the real `tollgate` binary.
//!
//! One IdP and one upstream serve every case, with two tollgates each
//! behind its own Envoy (one on the binding config, one also requiring
//! DPoP nonces): starting them is most of the cost. The cases run in one
//! test and each is checked on its own, so a failure lists every case that
//! went wrong, not just the first.
//! Certificates: `tests/fixtures/binding/` (see its README); DPoP keys are
//! generated per run.

mod support;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::SocketAddr;

use support::binding::{
    AuthzCall, CertificateHandoff, ClientCert, HTTP_PATH_PREFIX, HttpsClients, OPTIONAL_LISTENER,
    REQUIRED_LISTENER, dpop_token, envoy_bootstrap, forged_xfcc, jwt_claims, mtls_token, oidc_mtls,
};
use support::challenge::challenges;
use support::dpop::{DpopKey, ath, unix_now};
use support::oidc::{BASIC_CLIENT, JWT_RESOURCE, OPAQUE_RESOURCE, OidcOptions, OidcProvider};
use support::{EchoUpstream, Envoy, Response, ScratchDir, TollgateProcess};

/// The DPoP algorithms tollgate is configured with; its `algs` challenge
/// parameter must list exactly these.
const DPOP_ALGORITHMS: [&str; 5] = ["ES256", "ES384", "EdDSA", "PS256", "RS256"];

/// The binding section and routes are the interface of issue 14, written
/// as a user would.
fn config(issuer: &str) -> String {
    format!(
        r#"server:
  grpc_listen: 127.0.0.1:0
providers:
  - name: oidc
    issuer: {issuer}
    discovery: true
    audiences: [{JWT_RESOURCE}, {OPAQUE_RESOURCE}]
    introspection:
      client_id: tollgate
      client_secret: {{ env: TOLLGATE_TEST_INTROSPECTION_SECRET }}
      timeout: 500ms
binding:
  client_certificate:
    sources: [peer]
  dpop:
    algorithms: [ES256, ES384, EdDSA, PS256, RS256]
    max_age: 60s
    leeway: 5s
    replay_cache_entries: 100000
routes:
  - name: dpop-only
    match: {{ path: {{ prefix: /dpop }} }}
    require: {{ binding: dpop }}
  - name: mtls-only
    match: {{ path: {{ prefix: /mtls }} }}
    require: {{ binding: mtls }}
  - name: either
    match: {{ path: {{ prefix: /either }} }}
    require: {{ binding: any_bound }}
  - name: plain
    match: {{ path: {{ prefix: /plain }} }}
"#
    )
}

/// tollgate on one config with an Envoy in front: two HTTPS listeners.
/// Fields drop in order: Envoy first.
struct Edge {
    envoy: Envoy,
    tollgate: TollgateProcess,
    /// The listener that requires a client certificate.
    required: SocketAddr,
    /// The listener where a client certificate is optional.
    optional: SocketAddr,
    _dir: ScratchDir,
}

impl Edge {
    /// Serves `config_yaml` and puts Envoy in front, routing to `upstream`,
    /// calling tollgate as `call` says and handing over client certificates
    /// as `handoff` says.
    async fn start(
        config_yaml: String,
        upstream: SocketAddr,
        call: AuthzCall,
        handoff: CertificateHandoff,
    ) -> Edge {
        let dir = ScratchDir::new("sender-binding");
        let config_path = dir.join("tollgate.yaml");
        std::fs::write(&config_path, config_yaml)
            .unwrap_or_else(|e| panic!("writing {}: {e}", config_path.display()));
        let tollgate = TollgateProcess::serve_file(
            &config_path,
            &[("TOLLGATE_TEST_INTROSPECTION_SECRET", "tollgate-secret")],
        )
        .await;
        tollgate.wait_until_serving().await;
        let authz = match call {
            AuthzCall::Grpc => tollgate.addr(),
            AuthzCall::Http => tollgate.http_addr().await,
        };
        let bootstrap = envoy_bootstrap(upstream, authz, call, handoff);
        let envoy = Envoy::start_bootstrap(bootstrap, "https").await;
        let required = envoy.listener_named(REQUIRED_LISTENER).await;
        let optional = envoy.listener_named(OPTIONAL_LISTENER).await;
        Edge {
            envoy,
            tollgate,
            required,
            optional,
            _dir: dir,
        }
    }

    /// `https://<the required listener><path>`: what a client with a
    /// certificate requests, and so the `htu` of its proofs.
    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.required)
    }
}

/// [`config`] with DPoP nonces required (RFC 9449 §9).
fn nonce_config(issuer: &str) -> String {
    let yaml = config(issuer);
    let with_nonce = yaml.replacen(
        "    replay_cache_entries: 100000\n",
        "    replay_cache_entries: 100000\n    nonce:\n      lifetime: 5m\n",
        1,
    );
    assert_ne!(with_nonce, yaml, "the binding section moved");
    with_nonce
}

/// [`config`] reading the client certificate from a trusted
/// `x-forwarded-client-cert` only, as behind a front proxy.
fn xfcc_config(issuer: &str) -> String {
    let yaml = config(issuer);
    let xfcc = yaml.replacen("    sources: [peer]\n", "    sources: [xfcc]\n", 1);
    assert_ne!(xfcc, yaml, "the binding section moved");
    xfcc
}

/// [`xfcc_config`] answering Envoy's HTTP service (tollgate's HTTP
/// ext_authz mode), where the peer certificate cannot be sent.
fn http_config(issuer: &str) -> String {
    let yaml = xfcc_config(issuer);
    let http = yaml.replacen(
        "  grpc_listen: 127.0.0.1:0\n",
        &format!(
            "  grpc_listen: 127.0.0.1:0\n  http_enabled: true\n  http_listen: 127.0.0.1:0\n  http_path_prefix: {HTTP_PATH_PREFIX}\n"
        ),
        1,
    );
    assert_ne!(http, yaml, "the server section moved");
    http
}

/// The IdP (with its mutual-TLS listener), the echo upstream, and four
/// edges: tollgate on [`config`]; on it with DPoP nonces; on
/// [`xfcc_config`] behind an Envoy that writes `x-forwarded-client-cert`;
/// and on [`http_config`], called by Envoy's HTTP service.
struct Fixture {
    edge: Edge,
    nonce_edge: Edge,
    xfcc_edge: Edge,
    http_edge: Edge,
    _echo: EchoUpstream,
    idp: OidcProvider,
    clients: HttpsClients,
}

impl Fixture {
    async fn start() -> Self {
        let idp = OidcProvider::start_with(OidcOptions {
            mtls: Some(oidc_mtls()),
            ..OidcOptions::default()
        })
        .await;
        let echo = EchoUpstream::start().await;
        let peer = CertificateHandoff::Peer;
        let forwarded = CertificateHandoff::ForwardedHeader;
        let (grpc, http) = (AuthzCall::Grpc, AuthzCall::Http);
        let issuer = idp.issuer();
        let (edge, nonce_edge, xfcc_edge, http_edge) = tokio::join!(
            Edge::start(config(issuer), echo.addr, grpc, peer),
            Edge::start(nonce_config(issuer), echo.addr, grpc, peer),
            Edge::start(xfcc_config(issuer), echo.addr, grpc, forwarded),
            Edge::start(http_config(issuer), echo.addr, http, forwarded),
        );
        Fixture {
            edge,
            nonce_edge,
            xfcc_edge,
            http_edge,
            _echo: echo,
            idp,
            clients: HttpsClients::new(),
        }
    }

    /// A URL on the main edge's required listener.
    fn url(&self, path: &str) -> String {
        self.edge.url(path)
    }

    /// `https://<the main edge's optional listener><path>`.
    fn optional_url(&self, path: &str) -> String {
        format!("https://{}{path}", self.edge.optional)
    }

    /// Whether `url` is on the main edge (else on another one).
    fn on_main_edge(&self, url: &str) -> bool {
        [self.edge.required, self.edge.optional]
            .iter()
            .any(|addr| url.starts_with(&format!("https://{addr}/")))
    }

    /// `request` to whichever edge its URL names.
    async fn send(&self, request: &Request) -> Result<Response, String> {
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(authorization) = &request.authorization {
            headers.push(("authorization", authorization));
        }
        for proof in &request.proofs {
            headers.push(("dpop", proof));
        }
        for (name, value) in &request.extra {
            headers.push((name, value));
        }
        self.clients
            .send(
                request.cert,
                &request.method,
                &request.url,
                &headers,
                Vec::new(),
            )
            .await
    }
}

/// One request as a client sends it.
#[derive(Debug, Clone)]
struct Request {
    cert: ClientCert,
    method: String,
    url: String,
    authorization: Option<String>,
    /// Each one is a `DPoP` header line.
    proofs: Vec<String>,
    extra: Vec<(String, String)>,
}

impl Request {
    fn new(cert: ClientCert, method: &str, url: &str) -> Self {
        Request {
            cert,
            method: method.to_owned(),
            url: url.to_owned(),
            authorization: None,
            proofs: Vec::new(),
            extra: Vec::new(),
        }
    }

    fn get(cert: ClientCert, url: &str) -> Self {
        Request::new(cert, "GET", url)
    }

    fn bearer(mut self, token: &str) -> Self {
        self.authorization = Some(format!("Bearer {token}"));
        self
    }

    /// `Authorization: DPoP <token>`, with no proof yet.
    fn dpop_scheme(mut self, token: &str) -> Self {
        self.authorization = Some(format!("DPoP {token}"));
        self
    }

    /// One more `DPoP` header.
    fn proof(mut self, proof: String) -> Self {
        self.proofs.push(proof);
        self
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.extra.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Headers as they would be logged: tokens and proofs cut short.
    fn describe(&self) -> String {
        let authorization = self.authorization.as_deref().map(|value| {
            let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
            format!("{scheme} {}", short(token))
        });
        let proofs: Vec<String> = self.proofs.iter().map(|proof| short(proof)).collect();
        let extra: Vec<String> = self
            .extra
            .iter()
            .map(|(name, value)| format!("{name}: {}", short(value)))
            .collect();
        format!(
            "{} {} cert={:?} authorization={authorization:?} dpop={proofs:?} extra={extra:?}",
            self.method, self.url, self.cert
        )
    }
}

/// The first characters of a token or proof, enough to tell them apart in
/// a failure without writing whole credentials to the log.
fn short(text: &str) -> String {
    let cut: String = text.chars().take(12).collect();
    format!("{cut}...({} chars)", text.len())
}

/// The `error` parameter a challenge must carry.
#[derive(Debug, Clone, Copy)]
enum ErrorParam {
    Exactly(&'static str),
    /// No `error` (a request without credentials).
    Absent,
    /// Not asserted: the issue does not say.
    Unchecked,
}

/// What a client must see.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// 200 from the echo upstream.
    Allow,
    /// 401 with a challenge of `scheme` (and, for `DPoP`, `algs` listing
    /// exactly [`DPOP_ALGORITHMS`]).
    Unauthorized(&'static str, ErrorParam),
    /// 401; the challenge is not asserted.
    UnauthorizedAnyChallenge,
}

/// Why `response` is not what `expect` says, if it is not.
fn mismatch(response: &Response, request: &Request, expect: Expect) -> Option<String> {
    // The echo upstream's answer repeats the request's credentials: only
    // its path is shown. tollgate's deny bodies carry none.
    let echoed = serde_json::from_str::<serde_json::Value>(&response.body).ok();
    let body = match echoed.as_ref().and_then(|echo| echo["path"].as_str()) {
        Some(path) => format!("the upstream's echo of {path}"),
        None => response.body.chars().take(200).collect::<String>(),
    };
    let got = format!(
        "got {} www-authenticate={:?} body={body}",
        response.status,
        response
            .headers
            .get_all("www-authenticate")
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>(),
    );
    match expect {
        Expect::Allow => {
            if response.status != 200 {
                return Some(format!("expected 200 from the upstream, {got}"));
            }
            let path = request
                .url
                .split_once("://")
                .and_then(|(_, rest)| rest.find('/').map(|at| &rest[at..]))
                .unwrap_or("/");
            match echoed {
                Some(echo) if echo["path"] == path => None,
                _ => Some(format!(
                    "expected the echo upstream's answer for {path}, {got}"
                )),
            }
        }
        Expect::UnauthorizedAnyChallenge => {
            (response.status != 401).then(|| format!("expected 401, {got}"))
        }
        Expect::Unauthorized(scheme, error) => {
            if response.status != 401 {
                return Some(format!("expected 401 with a {scheme} challenge, {got}"));
            }
            let all = challenges(response);
            let Some(challenge) = all.iter().find(|c| c.scheme.eq_ignore_ascii_case(scheme)) else {
                return Some(format!("expected a {scheme} challenge, {got}"));
            };
            let problem = match (error, challenge.param("error")) {
                (ErrorParam::Exactly(want), Some(have)) if want == have => None,
                (ErrorParam::Exactly(want), have) => {
                    Some(format!("expected {scheme} error=\"{want}\", not {have:?}"))
                }
                (ErrorParam::Absent, Some(have)) => {
                    Some(format!("expected {scheme} without an error, not {have:?}"))
                }
                (ErrorParam::Absent | ErrorParam::Unchecked, _) => None,
            };
            if let Some(problem) = problem {
                return Some(format!("{problem}, {got}"));
            }
            if scheme.eq_ignore_ascii_case("DPoP") {
                let algs: BTreeSet<&str> = challenge
                    .param("algs")
                    .unwrap_or_default()
                    .split(' ')
                    .filter(|alg| !alg.is_empty())
                    .collect();
                let want: BTreeSet<&str> = DPOP_ALGORITHMS.into_iter().collect();
                if algs != want {
                    return Some(format!(
                        "expected DPoP algs=\"{}\" (in any order), {got}",
                        DPOP_ALGORITHMS.join(" ")
                    ));
                }
            }
            None
        }
    }
}

/// The cases' outcomes; [`Report::finish`] fails the test listing every
/// failed case.
#[derive(Default)]
struct Report {
    passed: Vec<String>,
    failed: Vec<String>,
    /// Requests answered through Envoy so far: each one is a Check, and so
    /// one `check decision=` line in tollgate's log, in order.
    answered: usize,
}

impl Report {
    /// Sends `request` and records whether the answer is `expect`; gives
    /// the answer back, if there was one.
    async fn check(
        &mut self,
        fixture: &Fixture,
        name: &str,
        request: Request,
        expect: Expect,
    ) -> Option<Response> {
        let outcome = fixture.send(&request).await;
        self.count_answer(fixture, &request, &outcome);
        let problem = match &outcome {
            Err(e) => Some(format!("expected {expect:?}, the request failed: {e}")),
            Ok(response) => mismatch(response, &request, expect),
        };
        self.record(name, &request, problem);
        outcome.ok()
    }

    /// Counts an answer from the main edge's tollgate.
    fn count_answer(
        &mut self,
        fixture: &Fixture,
        request: &Request,
        outcome: &Result<Response, String>,
    ) {
        if outcome.is_ok() && fixture.on_main_edge(&request.url) {
            self.answered += 1;
        }
    }

    /// Records a failed case that is not about one answer's status.
    fn fail(&mut self, name: &str, problem: &str) {
        self.failed.push(format!("- {name}\n    {problem}"));
    }

    /// As [`Report::check`], and tollgate must also log the deny with
    /// `reason`: a bad proof must be refused for what is wrong with it, not
    /// for something else.
    async fn check_reason(
        &mut self,
        fixture: &Fixture,
        name: &str,
        request: Request,
        expect: Expect,
        reason: &str,
    ) {
        let outcome = fixture.send(&request).await;
        self.count_answer(fixture, &request, &outcome);
        let mut problem = match &outcome {
            Err(e) => Some(format!("expected {expect:?}, the request failed: {e}")),
            Ok(response) => mismatch(response, &request, expect),
        };
        if problem.is_none() {
            let line = nth_check_line(fixture, self.answered).await;
            if !line.contains(&format!("reason=\"{reason}\"")) {
                problem = Some(format!(
                    "expected tollgate to log reason=\"{reason}\", it logged: {line}"
                ));
            }
        }
        self.record(name, &request, problem);
    }

    fn record(&mut self, name: &str, request: &Request, problem: Option<String>) {
        match problem {
            None => self.passed.push(name.to_owned()),
            Some(problem) => self.failed.push(format!(
                "- {name}\n    request: {}\n    {problem}",
                request.describe()
            )),
        }
    }

    fn finish(self, fixture: &Fixture) {
        let mut summary = format!(
            "sender binding: {} of {} cases passed\n",
            self.passed.len(),
            self.passed.len() + self.failed.len()
        );
        for line in &self.failed {
            let _ = writeln!(summary, "{line}");
        }
        eprintln!("{summary}");
        if !self.failed.is_empty() {
            panic!(
                "{summary}\n--- tollgate\n{}\n--- envoy\n{}\n--- tollgate with nonces\n{}\n--- tollgate reading xfcc\n{}\n--- tollgate in HTTP mode\n{}",
                fixture.edge.tollgate.logs(),
                fixture.edge.envoy.logs(),
                fixture.nonce_edge.tollgate.logs(),
                fixture.xfcc_edge.tollgate.logs(),
                fixture.http_edge.tollgate.logs(),
            );
        }
    }
}

/// The `n`th (from 1) `check decision=` line tollgate has logged, waiting a
/// little for it: lines are written after the answer.
async fn nth_check_line(fixture: &Fixture, n: usize) -> String {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let logs = fixture.edge.tollgate.logs();
        if let Some(line) = logs
            .lines()
            .filter(|line| line.contains("check decision="))
            .nth(n - 1)
        {
            return line.to_owned();
        }
        if tokio::time::Instant::now() > deadline {
            return format!("(no check line number {n})");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Client A's certificate: the legitimate holder of the cert-bound tokens.
const A: ClientCert = ClientCert::A;

const ALLOW: Expect = Expect::Allow;
/// The answer to every bad proof.
const INVALID_PROOF: Expect =
    Expect::Unauthorized("DPoP", ErrorParam::Exactly("invalid_dpop_proof"));

/// 401 with a `DPoP` challenge carrying `error`.
fn dpop_error(error: &'static str) -> Expect {
    Expect::Unauthorized("DPoP", ErrorParam::Exactly(error))
}

/// 401 with a `Bearer` challenge carrying `error`.
fn bearer_error(error: &'static str) -> Expect {
    Expect::Unauthorized("Bearer", ErrorParam::Exactly(error))
}

/// A valid DPoP request by alice for `token` at `path` (query allowed) on
/// the main edge's required listener.
fn dpop_request(f: &Fixture, t: &Tokens, method: &str, path: &str, token: &str) -> Request {
    let url = f.url(path);
    let htu = url.split('?').next().unwrap_or_default().to_owned();
    Request::new(A, method, &url)
        .dpop_scheme(token)
        .proof(t.alice.proof(method, &htu).access_token(token).sign())
}

/// The keys and tokens the cases use, from the real IdP.
struct Tokens {
    /// The DPoP client's key.
    alice: DpopKey,
    /// Someone else's key, for stolen tokens and wrong signatures.
    thief: DpopKey,
    /// Bound to alice's key.
    dpop_jwt: String,
    dpop_opaque: String,
    /// Bound to keys of the other algorithms (ES384, EdDSA, PS256, RS256)
    /// and to an ES512 key, which tollgate is not configured to accept.
    other_algorithms: Vec<(DpopKey, String)>,
    /// Bound to certificate A.
    mtls_jwt: String,
    mtls_opaque: String,
    /// Bound to nothing.
    plain_jwt: String,
    plain_opaque: String,
}

impl Tokens {
    /// Gets every token, asserting the IdP bound each as asked: what the
    /// cases rely on, so a failure here is the harness's, not tollgate's.
    async fn issue(f: &Fixture) -> Tokens {
        let clients = &f.clients;
        let alice = DpopKey::generate();
        let thief = DpopKey::generate();
        let a = A;

        // The IdP issues what the cases rely on: tokens bound as asked.
        let dpop_answer = dpop_token(&f.idp, &alice, JWT_RESOURCE).await;
        assert_eq!(dpop_answer["token_type"], "DPoP", "{dpop_answer}");
        let dpop_jwt = dpop_answer["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert_eq!(
            jwt_claims(&dpop_jwt)["cnf"]["jkt"],
            alice.thumbprint(),
            "the DPoP JWT is bound to alice's key"
        );
        let dpop_opaque = dpop_token(&f.idp, &alice, OPAQUE_RESOURCE).await["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let introspected = f.idp.introspect(&dpop_opaque).await;
        assert_eq!(
            introspected["cnf"]["jkt"],
            alice.thumbprint(),
            "{introspected}"
        );
        assert_eq!(introspected["token_type"], "DPoP", "{introspected}");

        // A token bound to a key of each other configured algorithm, and to an
        // ES512 key, which tollgate is not configured to accept.
        let mut other_algorithms = Vec::new();
        for alg in ["ES384", "EdDSA", "PS256", "RS256", "ES512"] {
            let key = DpopKey::for_algorithm(alg);
            let token = dpop_token(&f.idp, &key, JWT_RESOURCE).await["access_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert_eq!(
                jwt_claims(&token)["cnf"]["jkt"],
                key.thumbprint(),
                "the IdP and the test agree on the {alg} key's thumbprint"
            );
            other_algorithms.push((key, token));
        }

        let mtls_jwt = mtls_token(&f.idp, clients, a, JWT_RESOURCE).await["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let a_thumbprint = a.thumbprint().expect("A has a certificate");
        assert_eq!(jwt_claims(&mtls_jwt)["cnf"]["x5t#S256"], a_thumbprint);
        let mtls_opaque = mtls_token(&f.idp, clients, a, OPAQUE_RESOURCE).await["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let introspected = f.idp.introspect(&mtls_opaque).await;
        assert_eq!(
            introspected["cnf"]["x5t#S256"], a_thumbprint,
            "{introspected}"
        );
        assert_ne!(
            ClientCert::B.thumbprint(),
            Some(a_thumbprint.clone()),
            "A and B are different certificates"
        );

        let plain_jwt = f
            .idp
            .client_credentials_token(BASIC_CLIENT, "read", Some(JWT_RESOURCE))
            .await;
        assert!(jwt_claims(&plain_jwt).get("cnf").is_none());
        let plain_opaque = f
            .idp
            .client_credentials_token(BASIC_CLIENT, "read", Some(OPAQUE_RESOURCE))
            .await;
        assert!(f.idp.introspect(&plain_opaque).await.get("cnf").is_none());

        // Envoy's required listener refuses a handshake without a certificate.
        let refused = f
            .send(&Request::get(ClientCert::None, &f.url("/plain")).bearer(&plain_jwt))
            .await;
        assert!(
            refused.is_err(),
            "the required listener answered a client without a certificate: {refused:?}"
        );

        Tokens {
            alice,
            thief,
            dpop_jwt,
            dpop_opaque,
            other_algorithms,
            mtls_jwt,
            mtls_opaque,
            plain_jwt,
            plain_opaque,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bound_tokens_are_accepted_only_from_their_holder() {
    let f = Fixture::start().await;
    let t = Tokens::issue(&f).await;
    let mut report = Report::default();
    unbound_tokens(&f, &t, &mut report).await;
    valid_dpop_proofs(&f, &t, &mut report).await;
    unusual_but_valid(&f, &t, &mut report).await;
    every_configured_algorithm(&f, &t, &mut report).await;
    certificate_bound_tokens_from_their_certificate(&f, &t, &mut report).await;
    dpop_tokens_are_not_bearer_tokens(&f, &t, &mut report).await;
    htu_host_is_the_host_sent(&f, &t, &mut report).await;
    stolen_dpop_tokens(&f, &t, &mut report).await;
    bad_proofs(&f, &t, &mut report).await;
    stolen_certificate_bound_tokens(&f, &t, &mut report).await;
    route_requirements(&f, &t, &mut report).await;
    nonces(&f, &t, &mut report).await;
    forwarded_certificates(&f, &t, &mut report).await;
    http_mode(&f, &t, &mut report).await;

    // No credential reaches tollgate's log.
    let logs = [&f.edge, &f.nonce_edge, &f.xfcc_edge, &f.http_edge]
        .map(|edge| edge.tollgate.logs())
        .concat();
    for (what, secret) in [
        ("the DPoP JWT", &t.dpop_jwt),
        ("the DPoP opaque token", &t.dpop_opaque),
        ("the cert-bound JWT", &t.mtls_jwt),
        ("the cert-bound opaque token", &t.mtls_opaque),
    ] {
        assert!(!logs.contains(secret.as_str()), "tollgate logged {what}");
    }
    report.finish(&f);
}

/// Unbound tokens: routes without a binding requirement take them.
async fn unbound_tokens(f: &Fixture, t: &Tokens, report: &mut Report) {
    let cases = [
        (
            "unbound JWT on plain",
            Request::get(A, &f.url("/plain/x")).bearer(&t.plain_jwt),
        ),
        (
            "unbound opaque on plain",
            Request::get(A, &f.url("/plain/x")).bearer(&t.plain_opaque),
        ),
        (
            "unbound JWT on plain, no client certificate",
            Request::get(ClientCert::None, &f.optional_url("/plain/x")).bearer(&t.plain_jwt),
        ),
    ];
    for (name, request) in cases {
        report.check(f, name, request, ALLOW).await;
    }
}

/// DPoP-bound tokens with a valid proof pass on every route.
async fn valid_dpop_proofs(f: &Fixture, t: &Tokens, report: &mut Report) {
    for (kind, token) in [("JWT", &t.dpop_jwt), ("opaque", &t.dpop_opaque)] {
        for path in ["/dpop/items", "/either/items", "/plain/items"] {
            let name = format!("DPoP {kind} with a valid proof on {path}");
            report
                .check(f, &name, dpop_request(f, t, "GET", path, token), ALLOW)
                .await;
        }
    }
    report
        .check(
            f,
            "DPoP JWT, POST with an htm POST proof",
            dpop_request(f, t, "POST", "/dpop/items", &t.dpop_jwt),
            ALLOW,
        )
        .await;
    report
        .check(
            f,
            "DPoP JWT, a query in the URL and none in htu",
            dpop_request(f, t, "GET", "/dpop/items?page=2&q=a%20b", &t.dpop_jwt),
            ALLOW,
        )
        .await;
    {
        // RFC 9449 4.3 (9): htu is compared ignoring query and fragment.
        let url = f.url("/dpop/items?page=2");
        let proof = t.alice.proof("GET", &url).access_token(&t.dpop_jwt).sign();
        let request = Request::get(A, &url).dpop_scheme(&t.dpop_jwt).proof(proof);
        report
            .check(f, "DPoP JWT, htu carrying the same query", request, ALLOW)
            .await;
    }
    {
        // RFC 9449 4.3 asks servers to normalise htu as RFC 3986 6.2.2 and
        // 6.2.3 say before comparing: scheme and host case, dot segments,
        // percent-encoded unreserved characters; and to ignore the fragment.
        let url = f.url("/dpop/items");
        let authority = f.edge.required.to_string();
        let equivalents = [
            (
                "upper-case scheme",
                format!("HTTPS://{authority}/dpop/items"),
            ),
            ("a fragment", format!("{url}#section")),
            (
                "a dot segment",
                format!("https://{authority}/dpop/x/../items"),
            ),
            ("%69 for i", format!("https://{authority}/dpop/%69tems")),
        ];
        for (what, htu) in equivalents {
            let proof = t.alice.proof("GET", &htu).access_token(&t.dpop_jwt).sign();
            let request = Request::get(A, &url).dpop_scheme(&t.dpop_jwt).proof(proof);
            let name = format!("DPoP JWT, htu the same URL with {what}");
            report.check(f, &name, request, ALLOW).await;
        }
        let request = Request::get(A, &url)
            .proof(t.alice.proof("GET", &url).access_token(&t.dpop_jwt).sign());
        let request = Request {
            authorization: Some(format!("dpop {}", t.dpop_jwt)),
            ..request
        };
        report
            .check(f, "DPoP JWT, the scheme written dpop", request, ALLOW)
            .await;
    }
    {
        let url = f.url("/dpop/items");
        let proof = t
            .alice
            .proof("GET", &url)
            .access_token(&t.dpop_jwt)
            .iat(unix_now() - 30)
            .sign();
        let request = Request::get(A, &url).dpop_scheme(&t.dpop_jwt).proof(proof);
        report
            .check(
                f,
                "DPoP JWT, a proof 30s old (within max_age)",
                request,
                ALLOW,
            )
            .await;
    }
    {
        // DPoP needs no client certificate.
        let url = f.optional_url("/dpop/items");
        let proof = t.alice.proof("GET", &url).access_token(&t.dpop_jwt).sign();
        let request = Request::get(ClientCert::None, &url)
            .dpop_scheme(&t.dpop_jwt)
            .proof(proof);
        report
            .check(f, "DPoP JWT without a client certificate", request, ALLOW)
            .await;
    }
}

/// Proofs that are valid though written unusually, and a request whose
/// client claims another scheme.
async fn unusual_but_valid(f: &Fixture, t: &Tokens, report: &mut Report) {
    let url = f.url("/dpop/items");
    // Media types compare case-insensitively (RFC 7515 §4.1.9).
    let proof = t
        .alice
        .proof("GET", &url)
        .access_token(&t.dpop_jwt)
        .header("typ", "DPoP+JWT")
        .sign();
    let request = Request::get(A, &url).dpop_scheme(&t.dpop_jwt).proof(proof);
    report
        .check(f, "DPoP JWT, typ written DPoP+JWT", request, ALLOW)
        .await;
    // The scheme is the connection's (Envoy's :scheme), not a header the
    // client sends.
    let proof = t.alice.proof("GET", &url).access_token(&t.dpop_jwt).sign();
    let request = Request::get(A, &url)
        .dpop_scheme(&t.dpop_jwt)
        .proof(proof)
        .header("x-forwarded-proto", "http");
    report
        .check(
            f,
            "DPoP JWT over https, the client sending x-forwarded-proto: http",
            request,
            ALLOW,
        )
        .await;
}

/// Each configured algorithm works; one outside the list does not.
async fn every_configured_algorithm(f: &Fixture, t: &Tokens, report: &mut Report) {
    for (key, token) in &t.other_algorithms {
        let alg = key.alg();
        let url = f.url("/dpop/items");
        let proof = key.proof("GET", &url).access_token(token).sign();
        let request = Request::get(A, &url).dpop_scheme(token).proof(proof);
        if DPOP_ALGORITHMS.contains(&alg) {
            let name = format!("DPoP JWT bound to an {alg} key, with its {alg} proof");
            report.check(f, &name, request, ALLOW).await;
        } else {
            let name = format!("bad proof: {alg}, not among the configured algorithms");
            report
                .check_reason(f, &name, request, INVALID_PROOF, "dpop_proof_algorithm")
                .await;
        }
    }
}

/// Certificate-bound tokens from their own certificate pass everywhere.
async fn certificate_bound_tokens_from_their_certificate(
    f: &Fixture,
    t: &Tokens,
    report: &mut Report,
) {
    for (kind, token) in [("JWT", &t.mtls_jwt), ("opaque", &t.mtls_opaque)] {
        for path in ["/mtls/items", "/either/items", "/plain/items"] {
            let name = format!("cert-bound {kind} from certificate A on {path}");
            let request = Request::get(A, &f.url(path)).bearer(token);
            report.check(f, &name, request, ALLOW).await;
        }
    }
}

/// A DPoP-bound token is not a bearer token, on any route.
async fn dpop_tokens_are_not_bearer_tokens(f: &Fixture, t: &Tokens, report: &mut Report) {
    for (kind, token) in [("JWT", &t.dpop_jwt), ("opaque", &t.dpop_opaque)] {
        for path in ["/plain/items", "/dpop/items", "/either/items"] {
            let name = format!("DPoP {kind} sent as Bearer on {path}");
            let request = Request::get(A, &f.url(path)).bearer(token);
            report
                .check(f, &name, request, dpop_error("invalid_token"))
                .await;
        }
    }
    {
        let url = f.url("/plain/items");
        let proof = t.alice.proof("GET", &url).access_token(&t.dpop_jwt).sign();
        let request = Request::get(A, &url).bearer(&t.dpop_jwt).proof(proof);
        report
            .check(
                f,
                "DPoP JWT sent as Bearer with a valid proof beside it",
                request,
                dpop_error("invalid_token"),
            )
            .await;
    }
    report
        .check(
            f,
            "DPoP JWT under the DPoP scheme without a proof",
            Request::get(A, &f.url("/dpop/items")).dpop_scheme(&t.dpop_jwt),
            Expect::Unauthorized("DPoP", ErrorParam::Unchecked),
        )
        .await;

    {
        // An unbound token has no key for a proof to match (oidc-provider's
        // own resource endpoints refuse it the same way), and a token that
        // does not verify is invalid under either scheme.
        let url = f.url("/plain/items");
        let proof = t.alice.proof("GET", &url).access_token(&t.plain_jwt).sign();
        let request = Request::get(A, &url).dpop_scheme(&t.plain_jwt).proof(proof);
        report
            .check(
                f,
                "unbound JWT under the DPoP scheme with a valid proof",
                request,
                dpop_error("invalid_token"),
            )
            .await;
        let proof = t
            .alice
            .proof("GET", &url)
            .access_token("not-a-token")
            .sign();
        let request = Request::get(A, &url)
            .dpop_scheme("not-a-token")
            .proof(proof);
        report
            .check(
                f,
                "a token that is not one under the DPoP scheme",
                request,
                dpop_error("invalid_token"),
            )
            .await;
    }
}

/// htu's host is the Host sent.
async fn htu_host_is_the_host_sent(f: &Fixture, t: &Tokens, report: &mut Report) {
    {
        // htu's host is the request's :authority, which is the Host the
        // client sent, whatever address it connected to.
        let url = f.url("/dpop/items");
        let host = "api.example.test";
        let proof = t
            .alice
            .proof("GET", &format!("https://{host}/dpop/items"))
            .access_token(&t.dpop_jwt)
            .sign();
        let request = Request::get(A, &url)
            .dpop_scheme(&t.dpop_jwt)
            .proof(proof)
            .header("host", host);
        report
            .check(f, "Host api.example.test, htu naming it", request, ALLOW)
            .await;
        let proof = t.alice.proof("GET", &url).access_token(&t.dpop_jwt).sign();
        let request = Request::get(A, &url)
            .dpop_scheme(&t.dpop_jwt)
            .proof(proof)
            .header("host", host);
        report
            .check(
                f,
                "Host api.example.test, htu naming the address connected to",
                request,
                INVALID_PROOF,
            )
            .await;
    }
}

/// A stolen DPoP token with the thief's own, otherwise valid, proof.
async fn stolen_dpop_tokens(f: &Fixture, t: &Tokens, report: &mut Report) {
    for (kind, token) in [("JWT", &t.dpop_jwt), ("opaque", &t.dpop_opaque)] {
        for path in ["/dpop/items", "/plain/items"] {
            let url = f.url(path);
            let proof = t.thief.proof("GET", &url).access_token(token).sign();
            let request = Request::get(A, &url).dpop_scheme(token).proof(proof);
            let name = format!("stolen DPoP {kind} with the thief's proof on {path}");
            report
                .check(f, &name, request, dpop_error("invalid_token"))
                .await;
        }
    }
}

/// Bad proofs: each breaks one thing about a valid one.
async fn bad_proofs(f: &Fixture, t: &Tokens, report: &mut Report) {
    let url = f.url("/dpop/items");
    let good = || t.alice.proof("GET", &url).access_token(&t.dpop_jwt);
    let http_url = url.replacen("https://", "http://", 1);
    let other_host = url.replacen("127.0.0.1", "localhost", 1);
    let other_port = f.optional_url("/dpop/items");
    let bad_proofs: Vec<(&str, String, &str)> = vec![
        (
            "htm POST for a GET",
            t.alice.proof("POST", &url).access_token(&t.dpop_jwt).sign(),
            "dpop_proof_method",
        ),
        (
            "htu another path",
            t.alice
                .proof("GET", &f.url("/dpop/other"))
                .access_token(&t.dpop_jwt)
                .sign(),
            "dpop_proof_url",
        ),
        (
            "htu another host",
            t.alice
                .proof("GET", &other_host)
                .access_token(&t.dpop_jwt)
                .sign(),
            "dpop_proof_url",
        ),
        (
            "htu another scheme (http)",
            t.alice
                .proof("GET", &http_url)
                .access_token(&t.dpop_jwt)
                .sign(),
            "dpop_proof_url",
        ),
        (
            "htu another port",
            t.alice
                .proof("GET", &other_port)
                .access_token(&t.dpop_jwt)
                .sign(),
            "dpop_proof_url",
        ),
        (
            "htu with a trailing slash",
            t.alice
                .proof("GET", &format!("{url}/"))
                .access_token(&t.dpop_jwt)
                .sign(),
            "dpop_proof_url",
        ),
        (
            "htu path in another case",
            t.alice
                .proof("GET", &url.replacen("/dpop/items", "/DPOP/items", 1))
                .access_token(&t.dpop_jwt)
                .sign(),
            "dpop_proof_url",
        ),
        (
            "iat 120s old (max_age 60s + leeway 5s)",
            good().iat(unix_now() - 120).sign(),
            "dpop_proof_stale",
        ),
        (
            "iat 60s ahead (leeway 5s)",
            good().iat(unix_now() + 60).sign(),
            "dpop_proof_stale",
        ),
        (
            "ath of another token",
            good().claim("ath", ath(&t.plain_jwt)).sign(),
            "dpop_proof_token_hash",
        ),
        (
            "no ath",
            good().without_claim("ath").sign(),
            "dpop_proof_token_hash",
        ),
        (
            "no jti",
            good().without_claim("jti").sign(),
            "dpop_proof_malformed",
        ),
        (
            "alg none, no signature",
            good().unsigned().sign(),
            "dpop_proof_algorithm",
        ),
        (
            "HS256",
            good()
                .hs256(b"a-secret-of-at-least-thirty-two-bytes!")
                .sign(),
            "dpop_proof_algorithm",
        ),
        (
            "jwk with the private key d",
            good().header("jwk", t.alice.private_jwk()).sign(),
            "dpop_proof_key",
        ),
        (
            "no jwk",
            good().without_header("jwk").sign(),
            "dpop_proof_key",
        ),
        (
            "no typ",
            good().without_header("typ").sign(),
            "dpop_proof_type",
        ),
        (
            "typ JWT",
            good().header("typ", "JWT").sign(),
            "dpop_proof_type",
        ),
        (
            "signed by another key than jwk",
            good().signed_by(&t.thief).sign(),
            "dpop_proof_signature",
        ),
        (
            "a crit header",
            good().header("crit", serde_json::json!(["exp"])).sign(),
            "dpop_proof_malformed",
        ),
        (
            "not a JWS at all",
            "not-a-proof".to_owned(),
            "dpop_proof_malformed",
        ),
    ];
    for (what, proof, reason) in bad_proofs {
        let request = Request::get(A, &url).dpop_scheme(&t.dpop_jwt).proof(proof);
        let name = format!("bad proof: {what}");
        report
            .check_reason(f, &name, request, INVALID_PROOF, reason)
            .await;
    }
    {
        let request = Request::get(A, &url)
            .dpop_scheme(&t.dpop_jwt)
            .proof(good().sign())
            .proof(good().sign());
        report
            .check_reason(
                f,
                "bad proof: two DPoP headers",
                request,
                INVALID_PROOF,
                "dpop_proof_malformed",
            )
            .await;
    }
    {
        let proof = good().sign();
        let request = Request::get(A, &url).dpop_scheme(&t.dpop_jwt).proof(proof);
        report
            .check(f, "replay: the proof's first use", request.clone(), ALLOW)
            .await;
        report
            .check_reason(
                f,
                "replay: the same proof again",
                request,
                INVALID_PROOF,
                "dpop_proof_replayed",
            )
            .await;
    }
    {
        // Replay is by jti: a new proof for another URL under a used jti.
        let first = good().sign();
        let jti = jwt_claims(&first)["jti"].clone();
        let request = Request::get(A, &url).dpop_scheme(&t.dpop_jwt).proof(first);
        report
            .check(f, "jti reuse: the first proof", request, ALLOW)
            .await;
        let other_url = f.url("/plain/items");
        let second = t
            .alice
            .proof("GET", &other_url)
            .access_token(&t.dpop_jwt)
            .claim("jti", jti)
            .sign();
        let request = Request::get(A, &other_url)
            .dpop_scheme(&t.dpop_jwt)
            .proof(second);
        report
            .check_reason(
                f,
                "jti reuse: another proof with the same jti",
                request,
                INVALID_PROOF,
                "dpop_proof_replayed",
            )
            .await;
    }
    {
        let url = f.url("/plain/items");
        let proof = t
            .alice
            .proof("GET", &url)
            .access_token(&t.dpop_opaque)
            .sign();
        let request = Request::get(A, &url)
            .dpop_scheme(&t.dpop_opaque)
            .proof(proof);
        report
            .check(
                f,
                "replay (opaque, plain): first use",
                request.clone(),
                ALLOW,
            )
            .await;
        report
            .check_reason(
                f,
                "replay (opaque, plain): again",
                request,
                INVALID_PROOF,
                "dpop_proof_replayed",
            )
            .await;
    }
}

/// A stolen certificate-bound token.
async fn stolen_certificate_bound_tokens(f: &Fixture, t: &Tokens, report: &mut Report) {
    for (kind, token) in [("JWT", &t.mtls_jwt), ("opaque", &t.mtls_opaque)] {
        for path in ["/mtls/items", "/either/items", "/plain/items"] {
            let name = format!("cert-bound {kind} from certificate B on {path}");
            let request = Request::get(ClientCert::B, &f.url(path)).bearer(token);
            report
                .check(f, &name, request, bearer_error("invalid_token"))
                .await;
            let name = format!("cert-bound {kind} without a certificate on {path}");
            let request = Request::get(ClientCert::None, &f.optional_url(path)).bearer(token);
            report
                .check(f, &name, request, bearer_error("invalid_token"))
                .await;
        }
    }
    {
        // Only the handshake's certificate counts (`sources: [peer]`): a
        // client's own x-forwarded-client-cert naming A changes nothing.
        let request = Request::get(ClientCert::B, &f.url("/mtls/items"))
            .bearer(&t.mtls_jwt)
            .header("x-forwarded-client-cert", &forged_xfcc(A));
        report
            .check(
                f,
                "cert-bound JWT from B with a forged x-forwarded-client-cert",
                request,
                bearer_error("invalid_token"),
            )
            .await;
    }
}

/// Routes that require a binding.
async fn route_requirements(f: &Fixture, t: &Tokens, report: &mut Report) {
    let cases = [
        (
            "no token on a dpop route",
            Request::get(A, &f.url("/dpop/items")),
            Expect::Unauthorized("DPoP", ErrorParam::Absent),
        ),
        (
            "unbound JWT on a dpop route",
            Request::get(A, &f.url("/dpop/items")).bearer(&t.plain_jwt),
            Expect::Unauthorized("DPoP", ErrorParam::Unchecked),
        ),
        (
            "unbound opaque on a dpop route",
            Request::get(A, &f.url("/dpop/items")).bearer(&t.plain_opaque),
            Expect::Unauthorized("DPoP", ErrorParam::Unchecked),
        ),
        (
            "cert-bound JWT (from A) on a dpop route",
            Request::get(A, &f.url("/dpop/items")).bearer(&t.mtls_jwt),
            Expect::Unauthorized("DPoP", ErrorParam::Unchecked),
        ),
        (
            "unbound JWT on an mtls route",
            Request::get(A, &f.url("/mtls/items")).bearer(&t.plain_jwt),
            bearer_error("invalid_token"),
        ),
        (
            "unbound opaque on an mtls route",
            Request::get(A, &f.url("/mtls/items")).bearer(&t.plain_opaque),
            bearer_error("invalid_token"),
        ),
        (
            "no token on an mtls route",
            Request::get(A, &f.url("/mtls/items")),
            Expect::Unauthorized("Bearer", ErrorParam::Absent),
        ),
        (
            "DPoP JWT with a valid proof on an mtls route",
            dpop_request(f, t, "GET", "/mtls/items", &t.dpop_jwt),
            Expect::UnauthorizedAnyChallenge,
        ),
        (
            "unbound JWT on an any_bound route",
            Request::get(A, &f.url("/either/items")).bearer(&t.plain_jwt),
            Expect::UnauthorizedAnyChallenge,
        ),
        (
            "unbound opaque on an any_bound route",
            Request::get(A, &f.url("/either/items")).bearer(&t.plain_opaque),
            Expect::UnauthorizedAnyChallenge,
        ),
        (
            "no token on an any_bound route",
            Request::get(A, &f.url("/either/items")),
            Expect::UnauthorizedAnyChallenge,
        ),
    ];
    for (name, request, expect) in cases {
        report.check(f, name, request, expect).await;
    }
}

/// DPoP nonces (RFC 9449 §9), on the edge whose tollgate requires
/// them: a refusal hands out a nonce in DPoP-Nonce through Envoy, and a
/// proof carrying it passes.
async fn nonces(f: &Fixture, t: &Tokens, report: &mut Report) {
    {
        let url = f.nonce_edge.url("/dpop/items");
        let proof = || t.alice.proof("GET", &url).access_token(&t.dpop_jwt);
        let use_nonce = dpop_error("use_dpop_nonce");
        let nonce_of = |report: &mut Report, name: &str, answer: Option<Response>| {
            let nonce = answer
                .as_ref()
                .and_then(|answer| answer.header("dpop-nonce"))
                .map(str::to_owned);
            if nonce.as_deref().is_none_or(str::is_empty) {
                report.fail(name, "the 401 has no DPoP-Nonce header");
            }
            nonce
        };
        let request = Request::get(A, &url)
            .dpop_scheme(&t.dpop_jwt)
            .proof(proof().sign());
        let name = "nonce: a valid proof without one";
        let answer = report.check(f, name, request, use_nonce).await;
        if let Some(nonce) = nonce_of(report, name, answer) {
            let request = Request::get(A, &url)
                .dpop_scheme(&t.dpop_jwt)
                .proof(proof().claim("nonce", nonce).sign());
            report
                .check(
                    f,
                    "nonce: the proof with the server's nonce",
                    request,
                    ALLOW,
                )
                .await;
        }
        let request = Request::get(A, &url)
            .dpop_scheme(&t.dpop_jwt)
            .proof(proof().claim("nonce", "made-up").sign());
        let name = "nonce: a made-up nonce";
        let answer = report.check(f, name, request, use_nonce).await;
        nonce_of(report, name, answer);
    }
}

/// The certificate from x-forwarded-client-cert, as Envoy writes it
/// (SANITIZE_SET: a client's own header is replaced, or removed when it
/// shows no certificate), on the edge whose tollgate reads only that.
async fn forwarded_certificates(f: &Fixture, t: &Tokens, report: &mut Report) {
    {
        let edge = &f.xfcc_edge;
        let optional = |path: &str| format!("https://{}{path}", edge.optional);
        let forged = forged_xfcc(A);
        let cases = [
            (
                "xfcc: cert-bound JWT from certificate A",
                Request::get(A, &edge.url("/mtls/items")).bearer(&t.mtls_jwt),
                ALLOW,
            ),
            (
                "xfcc: cert-bound opaque from certificate A",
                Request::get(A, &edge.url("/plain/items")).bearer(&t.mtls_opaque),
                ALLOW,
            ),
            (
                "xfcc: cert-bound JWT from certificate B",
                Request::get(ClientCert::B, &edge.url("/mtls/items")).bearer(&t.mtls_jwt),
                bearer_error("invalid_token"),
            ),
            (
                "xfcc: cert-bound JWT from B, with its own header naming A",
                Request::get(ClientCert::B, &edge.url("/mtls/items"))
                    .bearer(&t.mtls_jwt)
                    .header("x-forwarded-client-cert", &forged),
                bearer_error("invalid_token"),
            ),
            (
                "xfcc: cert-bound JWT, no certificate, a header naming A",
                Request::get(ClientCert::None, &optional("/plain/items"))
                    .bearer(&t.mtls_jwt)
                    .header("x-forwarded-client-cert", &forged),
                bearer_error("invalid_token"),
            ),
            (
                "xfcc: unbound JWT on an mtls route",
                Request::get(A, &edge.url("/mtls/items")).bearer(&t.plain_jwt),
                bearer_error("invalid_token"),
            ),
        ];
        for (name, request, expect) in cases {
            report.check(f, name, request, expect).await;
        }
    }
}

/// The same rules through Envoy's HTTP service (tollgate's HTTP ext_authz
/// mode): the scheme comes from x-forwarded-proto, the host from Host, and
/// the certificate from x-forwarded-client-cert.
async fn http_mode(f: &Fixture, t: &Tokens, report: &mut Report) {
    let edge = &f.http_edge;
    let url = edge.url("/dpop/items");
    let proof = || t.alice.proof("GET", &url).access_token(&t.dpop_jwt);
    let dpop = |proof: String| Request::get(A, &url).dpop_scheme(&t.dpop_jwt).proof(proof);
    let replayed = proof().sign();
    let cases = [
        (
            "http mode: DPoP JWT with a valid proof",
            dpop(proof().sign()),
            ALLOW,
        ),
        (
            "http mode: the client sending x-forwarded-proto: http",
            dpop(proof().sign()).header("x-forwarded-proto", "http"),
            ALLOW,
        ),
        (
            "http mode: DPoP JWT sent as Bearer",
            Request::get(A, &url).bearer(&t.dpop_jwt),
            dpop_error("invalid_token"),
        ),
        (
            "http mode: a proof for another path",
            dpop(
                t.alice
                    .proof("GET", &edge.url("/dpop/other"))
                    .access_token(&t.dpop_jwt)
                    .sign(),
            ),
            INVALID_PROOF,
        ),
        (
            "http mode: a proof with the http scheme",
            dpop(
                t.alice
                    .proof("GET", &url.replacen("https://", "http://", 1))
                    .access_token(&t.dpop_jwt)
                    .sign(),
            ),
            INVALID_PROOF,
        ),
        (
            "http mode: replay, first use",
            dpop(replayed.clone()),
            ALLOW,
        ),
        ("http mode: replay, again", dpop(replayed), INVALID_PROOF),
        (
            "http mode: no token on a dpop route",
            Request::get(A, &url),
            Expect::Unauthorized("DPoP", ErrorParam::Absent),
        ),
        (
            "http mode: cert-bound JWT from certificate A",
            Request::get(A, &edge.url("/mtls/items")).bearer(&t.mtls_jwt),
            ALLOW,
        ),
        (
            "http mode: cert-bound JWT from certificate B",
            Request::get(ClientCert::B, &edge.url("/mtls/items")).bearer(&t.mtls_jwt),
            bearer_error("invalid_token"),
        ),
        (
            "http mode: cert-bound opaque from certificate B",
            Request::get(ClientCert::B, &edge.url("/plain/items")).bearer(&t.mtls_opaque),
            bearer_error("invalid_token"),
        ),
    ];
    for (name, request, expect) in cases {
        report.check(f, name, request, expect).await;
    }
}

#[test]
fn the_binding_envoy_bootstrap_passes_validation() {
    let dir = ScratchDir::new("binding-validate");
    let path = dir.join("envoy.yaml");
    let addr: SocketAddr = "127.0.0.1:9".parse().expect("an address");
    for (call, handoff) in [
        (AuthzCall::Grpc, CertificateHandoff::Peer),
        (AuthzCall::Grpc, CertificateHandoff::ForwardedHeader),
        (AuthzCall::Http, CertificateHandoff::ForwardedHeader),
    ] {
        std::fs::write(&path, envoy_bootstrap(addr, addr, call, handoff))
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        if let Err(message) = support::validate_config(&path) {
            panic!("{call:?} {handoff:?}: {message}");
        }
    }
}
