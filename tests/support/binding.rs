//! Sender-constrained tokens end to end: the certificates of
//! `tests/fixtures/binding/` (see its README), HTTPS clients that present
//! them, tokens from the real OpenID provider bound to a DPoP key (RFC 9449)
//! or to a client certificate (RFC 8705), and an Envoy bootstrap whose TLS
//! listeners ask for client certificates and hand them to tollgate
//! (`include_peer_certificate`, or an `x-forwarded-client-cert` Envoy
//! writes), calling it over gRPC or its HTTP ext_authz mode.

use std::net::SocketAddr;
use std::path::PathBuf;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;

use super::client::{Response, request};
use super::dpop::DpopKey;
use super::oidc::{DPOP_CLIENT, MTLS_CLIENT, OidcClient, OidcMtls, OidcProvider, form_encode};
use super::repo_path;

/// The Envoy listener that requires a client certificate signed by the
/// fixture CA.
pub const REQUIRED_LISTENER: &str = "client-cert-required";
/// The Envoy listener where a client certificate is optional (verified
/// against the fixture CA when one is offered).
pub const OPTIONAL_LISTENER: &str = "client-cert-optional";

/// `tests/fixtures/binding/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    repo_path("tests/fixtures/binding").join(name)
}

/// The provider's mutual-TLS listener with the fixture server certificate,
/// accepting client certificates of the fixture CA.
pub fn oidc_mtls() -> OidcMtls {
    OidcMtls {
        cert: fixture("server.crt"),
        key: fixture("server.key"),
        ca: fixture("ca.crt"),
    }
}

/// Which client certificate a connection presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCert {
    /// `client-a.crt`: the legitimate client.
    A,
    /// `client-b.crt`: another client of the same CA.
    B,
    /// No certificate at all.
    None,
}

impl ClientCert {
    fn files(self) -> Option<(&'static str, &'static str)> {
        match self {
            ClientCert::A => Some(("client-a.crt", "client-a.key")),
            ClientCert::B => Some(("client-b.crt", "client-b.key")),
            ClientCert::None => None,
        }
    }

    /// The certificate's RFC 8705 thumbprint, base64url(SHA-256(DER)): what
    /// `cnf["x5t#S256"]` of a token bound to it holds.
    pub fn thumbprint(self) -> Option<String> {
        let (cert, _) = self.files()?;
        let pem = read(&fixture(cert));
        let der = pem_body(&pem);
        Some(URL_SAFE_NO_PAD.encode(digest(&SHA256, &der).as_ref()))
    }
}

/// An `x-forwarded-client-cert` value naming `cert` as Envoy writes one
/// (`Hash=` hex SHA-256 of the DER, `Cert=` the URL-encoded PEM), for a
/// client to forge: only a trusted proxy may set it.
pub fn forged_xfcc(cert: ClientCert) -> String {
    let Some((file, _)) = cert.files() else {
        return String::new();
    };
    let pem = read(&fixture(file));
    let hash: String = digest(&SHA256, &pem_body(&pem))
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let encoded: String = pem
        .iter()
        .map(|&byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect();
    format!("Hash={hash};Cert=\"{encoded}\"")
}

/// HTTPS clients trusting only the fixture CA, one per [`ClientCert`];
/// each keeps its connections, so build them once per test.
#[derive(Debug)]
pub struct HttpsClients {
    a: reqwest::Client,
    b: reqwest::Client,
    none: reqwest::Client,
}

impl HttpsClients {
    pub fn new() -> Self {
        Self {
            a: https_client(ClientCert::A),
            b: https_client(ClientCert::B),
            none: https_client(ClientCert::None),
        }
    }

    /// `method url` with `headers` (a repeated name is sent twice) over a
    /// connection presenting `cert`; `Err` with the cause chain when no
    /// answer came (a refused handshake).
    pub async fn send(
        &self,
        cert: ClientCert,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Response, String> {
        let client = match cert {
            ClientCert::A => &self.a,
            ClientCert::B => &self.b,
            ClientCert::None => &self.none,
        };
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .unwrap_or_else(|e| panic!("bad method {method:?}: {e}"));
        let mut builder = client.request(method, url).body(body);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let response = builder.send().await.map_err(|e| causes(&e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.map_err(|e| causes(&e))?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

impl Default for HttpsClients {
    fn default() -> Self {
        Self::new()
    }
}

fn https_client(cert: ClientCert) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&read(&fixture("ca.crt"))).expect("the fixture CA");
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([ca])
        .timeout(std::time::Duration::from_secs(10));
    if let Some((cert, key)) = cert.files() {
        let mut pem = read(&fixture(cert));
        pem.extend_from_slice(&read(&fixture(key)));
        let identity = reqwest::Identity::from_pem(&pem)
            .unwrap_or_else(|e| panic!("the client identity {cert}: {e}"));
        builder = builder.identity(identity);
    }
    builder.build().expect("building an HTTPS client")
}

/// A token response from `client_credentials` by [`DPOP_CLIENT`] with a
/// proof of `key` (htm `POST`, htu the token endpoint), for `resource`;
/// panics unless it is 200. The whole answer: `access_token`,
/// `token_type`, ...
pub async fn dpop_token(idp: &OidcProvider, key: &DpopKey, resource: &str) -> Value {
    let proof = key.proof("POST", idp.token_endpoint()).sign();
    let response = dpop_token_response(idp, DPOP_CLIENT, Some(&proof), resource).await;
    token_answer(idp, DPOP_CLIENT, Ok(response))
}

/// The answer, as it is, to a client credentials grant (scope `read`) by
/// `client` at the plain token endpoint, with `proof` as its `DPoP` header.
pub async fn dpop_token_response(
    idp: &OidcProvider,
    client: OidcClient,
    proof: Option<&str>,
    resource: &str,
) -> Response {
    let headers: Vec<(&str, &str)> = proof.map(|proof| ("dpop", proof)).into_iter().collect();
    let response = post_token_request(idp.token_endpoint(), client, resource, &headers, None).await;
    response.unwrap_or_else(|e| panic!("POST {}: {e}", idp.token_endpoint()))
}

/// A token response from `client_credentials` by [`MTLS_CLIENT`] at the
/// provider's mutual-TLS token endpoint, presenting `cert`, for `resource`;
/// panics unless it is 200.
pub async fn mtls_token(
    idp: &OidcProvider,
    clients: &HttpsClients,
    cert: ClientCert,
    resource: &str,
) -> Value {
    let response = mtls_token_response(idp, clients, MTLS_CLIENT, cert, resource).await;
    token_answer(idp, MTLS_CLIENT, response)
}

/// The answer, as it is, to a client credentials grant (scope `read`) by
/// `client` at the provider's mutual-TLS token endpoint, presenting `cert`;
/// `Err` when the handshake was refused.
pub async fn mtls_token_response(
    idp: &OidcProvider,
    clients: &HttpsClients,
    client: OidcClient,
    cert: ClientCert,
    resource: &str,
) -> Result<Response, String> {
    let url = idp
        .mtls_token_endpoint()
        .expect("the provider was started without its mutual-TLS listener");
    post_token_request(url, client, resource, &[], Some((clients, cert))).await
}

/// POSTs a client credentials grant for `resource` with scope `read`,
/// authenticating `client` with `client_secret_basic`, with `extra`
/// headers. Over `tls` when given (`Err` if the handshake is refused),
/// else with a plain client.
async fn post_token_request(
    url: &str,
    client: OidcClient,
    resource: &str,
    extra: &[(&str, &str)],
    tls: Option<(&HttpsClients, ClientCert)>,
) -> Result<Response, String> {
    let credentials = format!("{}:{}", form_encode(client.id), form_encode(client.secret));
    let basic = format!("Basic {}", STANDARD.encode(credentials));
    let mut headers = vec![
        ("content-type", "application/x-www-form-urlencoded"),
        ("authorization", basic.as_str()),
    ];
    headers.extend_from_slice(extra);
    let form = format!(
        "grant_type=client_credentials&scope=read&resource={}",
        form_encode(resource)
    );
    match tls {
        None => Ok(request("POST", url, &headers, form.into_bytes()).await),
        Some((clients, cert)) => {
            clients
                .send(cert, "POST", url, &headers, form.into_bytes())
                .await
        }
    }
}

fn token_answer(
    idp: &OidcProvider,
    client: OidcClient,
    response: Result<Response, String>,
) -> Value {
    let response =
        response.unwrap_or_else(|e| panic!("token request by {}: {e}\n{}", client.id, idp.logs()));
    assert_eq!(
        response.status,
        200,
        "token request by {} refused: {}\n{}",
        client.id,
        response.body,
        idp.logs()
    );
    let answer = response.json();
    assert!(
        answer["access_token"].is_string(),
        "no access_token in the answer to {}: {}",
        client.id,
        response.body
    );
    answer
}

/// The claims of a JWT, unverified (the test only looks at what the IdP
/// issued).
pub fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap_or_default();
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_else(|e| panic!("a JWT payload that is not base64url: {e}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("a JWT payload that is not JSON: {e}"))
}

/// How Envoy tells tollgate about the client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateHandoff {
    /// ext_authz `include_peer_certificate: true`: the CheckRequest carries
    /// the connection's certificate (tollgate's `sources: [peer]`).
    Peer,
    /// The connection manager replaces any client-sent
    /// `x-forwarded-client-cert` with one describing the connection's
    /// certificate (`SANITIZE_SET`, with `Cert`, `Subject` and `DNS`), as a
    /// front proxy does (tollgate's `sources: [xfcc]`); the peer
    /// certificate is not included.
    ForwardedHeader,
}

/// How Envoy's ext_authz filter calls tollgate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthzCall {
    /// `grpc_service` (HTTP/2).
    Grpc,
    /// `http_service` (HTTP/1.1) with path prefix [`HTTP_PATH_PREFIX`],
    /// sending every request header (`allowed_headers` `.*`): tollgate's
    /// HTTP ext_authz mode.
    Http,
}

/// The `path_prefix` of [`AuthzCall::Http`]; tollgate's
/// `server.http_path_prefix` must match.
pub const HTTP_PATH_PREFIX: &str = "/authz";

/// An Envoy bootstrap with two HTTPS listeners ([`REQUIRED_LISTENER`] first,
/// then [`OPTIONAL_LISTENER`]) serving the fixture server certificate, both
/// routing everything to `upstream` through ext_authz, which calls tollgate
/// at `authz` as `call` says, hands it the client certificate as `handoff`
/// says (only [`CertificateHandoff::ForwardedHeader`] reaches an HTTP
/// service), and denies when the call fails. The connection manager is an edge proxy
/// (`use_remote_address: true`): it overwrites a client's
/// `x-forwarded-proto`, which would otherwise set the `:scheme` tollgate
/// checks a DPoP proof's `htu` against.
pub fn envoy_bootstrap(
    upstream: SocketAddr,
    authz: SocketAddr,
    call: AuthzCall,
    handoff: CertificateHandoff,
) -> String {
    let service = match call {
        AuthzCall::Grpc => r#"              grpc_service:
                envoy_grpc:
                  cluster_name: tollgate
                timeout: 2s
"#
        .to_owned(),
        AuthzCall::Http => format!(
            r#"              http_service:
                server_uri:
                  uri: "http://{authz}"
                  cluster: tollgate
                  timeout: 2s
                path_prefix: {HTTP_PATH_PREFIX}
              allowed_headers:
                patterns:
                - safe_regex: {{ regex: ".*" }}
"#
        ),
    };
    let (include_peer_certificate, xfcc) = match handoff {
        CertificateHandoff::Peer => (true, ""),
        CertificateHandoff::ForwardedHeader => (
            false,
            r#"          forward_client_cert_details: SANITIZE_SET
          set_current_client_cert_details: { cert: true, subject: true, dns: true }
"#,
        ),
    };
    let listener = |name: &str, require: bool| {
        format!(
            r#"  - name: {name}
    address:
      socket_address: {{ address: 127.0.0.1, port_value: 0 }}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          require_client_certificate: {require}
          common_tls_context:
            alpn_protocols: [h2, http/1.1]
            tls_certificates:
            - certificate_chain: {{ filename: {cert} }}
              private_key: {{ filename: {key} }}
            validation_context:
              trusted_ca: {{ filename: {ca} }}
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: {name}
          use_remote_address: true
{xfcc}          route_config:
            name: local
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{ prefix: "/" }}
                route: {{ cluster: upstream }}
          http_filters:
          - name: envoy.filters.http.ext_authz
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz
              transport_api_version: V3
              failure_mode_allow: false
              include_peer_certificate: {include_peer_certificate}
{service}          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
"#,
            cert = quoted_path("server.crt"),
            key = quoted_path("server.key"),
            ca = quoted_path("ca.crt"),
        )
    };
    let cluster = |name: &str, addr: SocketAddr, extra: &str| {
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
              socket_address: {{ address: "{ip}", port_value: {port} }}
"#,
            ip = addr.ip(),
            port = addr.port(),
        )
    };
    let http2 = r#"    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options: {}
"#;
    format!(
        r#"# Written by tests/support/binding.rs.
admin:
  address:
    socket_address: {{ address: 127.0.0.1, port_value: 0 }}
static_resources:
  listeners:
{required}{optional}  clusters:
{upstream}{tollgate}"#,
        required = listener(REQUIRED_LISTENER, true),
        optional = listener(OPTIONAL_LISTENER, false),
        upstream = cluster("upstream", upstream, ""),
        tollgate = cluster(
            "tollgate",
            authz,
            if call == AuthzCall::Grpc { http2 } else { "" }
        ),
    )
}

fn quoted_path(name: &str) -> String {
    Value::from(fixture(name).to_string_lossy().into_owned()).to_string()
}

fn read(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The DER bytes of the first PEM block in `pem`.
fn pem_body(pem: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(pem);
    let body: String = text
        .lines()
        .skip_while(|line| !line.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|line| !line.starts_with("-----END"))
        .collect();
    STANDARD
        .decode(body)
        .unwrap_or_else(|e| panic!("a PEM body that is not base64: {e}"))
}

/// An error with its sources, `: `-joined (reqwest hides TLS causes in them).
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
