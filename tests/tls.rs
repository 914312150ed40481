//! TLS and mutual TLS on the gRPC listener: the real Envoy calling the real
//! binary over mTLS, a client without a certificate refused, and a renewed
//! certificate served without a restart; and keys fetched over https from
//! an IdP whose certificate a private CA signed. Certificates are the committed
//! fixtures in tests/fixtures/tls (see its README).

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use support::idp::{Idp, JWKS_PATH, jwks_of};
use support::tokens::Token;
use support::{
    AuthzTls, EchoUpstream, Envoy, EnvoyOptions, ScratchDir, TollgateProcess, repo_path,
};

const ISSUER: &str = "https://issuer.tls.test";
/// Bound on waiting for tollgate to serve through Envoy, or to reload.
const LIMIT: Duration = Duration::from_secs(10);

fn tls_fixture(name: &str) -> PathBuf {
    repo_path("tests/fixtures/tls").join(name)
}

fn yaml_path(path: &Path) -> String {
    Value::from(path.to_string_lossy().into_owned()).to_string()
}

/// Anonymous `/status`, scope `read` everywhere else; TLS with `cert` and
/// `key`, and the fixture CA for client certificates.
fn config(cert: &Path, key: &Path) -> String {
    let jwks = repo_path("tests/fixtures/keys/jwks.json");
    format!(
        r#"server:
  grpc_listen: 127.0.0.1:0
  tls:
    cert_file: {cert}
    key_file: {key}
    client_ca_file: {ca}
providers:
  - name: fixtures
    issuer: {ISSUER}
    jwks_file: {jwks}
routes:
  - name: status
    match: {{ path: {{ prefix: /status }} }}
    anonymous: true
  - name: api
    match: {{ path: {{ prefix: / }} }}
    require: {{ scopes: [read] }}
"#,
        cert = yaml_path(cert),
        key = yaml_path(key),
        ca = yaml_path(&tls_fixture("ca.crt")),
        jwks = yaml_path(&jwks),
    )
}

/// `ec-1`'s token from [`ISSUER`] with scope `read`.
fn token() -> String {
    Token::es256()
        .issuer(ISSUER)
        .subject("tls")
        .client_id("tls-client")
        .scopes(["read"])
        .lifetime(Duration::from_secs(600))
        .sign()
}

async fn start_tollgate() -> TollgateProcess {
    TollgateProcess::start_listening(&config(
        &tls_fixture("server.crt"),
        &tls_fixture("server.key"),
    ))
    .await
}

/// A health check over TLS trusting the fixture CA, with `identity` as the
/// client certificate (or none).
async fn health_over_tls(
    tollgate: &TollgateProcess,
    identity: Option<Identity>,
) -> Result<ServingStatus, String> {
    let ca = std::fs::read(tls_fixture("ca.crt")).expect("fixture CA");
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    if let Some(identity) = identity {
        tls = tls.identity(identity);
    }
    let url = format!("https://{}", tollgate.addr());
    let channel = Channel::from_shared(url)
        .map_err(|e| e.to_string())?
        .tls_config(tls)
        .map_err(|e| format!("client TLS config: {e}"))?
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: tollgate::CHECK_SERVICE_NAME.to_owned(),
        })
        .await
        .map_err(|e| format!("health check: {e:?}"))?;
    Ok(reply.into_inner().status())
}

fn client_identity() -> Identity {
    let cert = std::fs::read(tls_fixture("client.crt")).expect("fixture client cert");
    let key = std::fs::read(tls_fixture("client.key")).expect("fixture client key");
    Identity::from_pem(cert, key)
}

#[tokio::test]
async fn envoy_calls_tollgate_over_mutual_tls() {
    let echo = EchoUpstream::start().await;
    let tollgate = start_tollgate().await;
    let line = tollgate.wait_for_log("serving envoy.service.auth.v3").await;
    assert!(line.contains("mutual"), "{line}");
    let envoy = Envoy::start(
        EnvoyOptions::new(echo.addr, tollgate.addr()).authz_tls(AuthzTls {
            ca: tls_fixture("ca.crt"),
            cert: tls_fixture("client.crt"),
            key: tls_fixture("client.key"),
            server_name: "localhost".to_owned(),
        }),
    )
    .await;

    let bearer = format!("Bearer {}", token());
    let deadline = tokio::time::Instant::now() + LIMIT;
    let allowed = loop {
        let response = support::get(&envoy.url("/orders"), &[("authorization", &bearer)]).await;
        if response.status == 200 || tokio::time::Instant::now() >= deadline {
            break response;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        allowed.status,
        200,
        "{allowed:?}\n{}\n{}",
        tollgate.describe(),
        envoy.logs()
    );
    let denied = support::get(&envoy.url("/orders"), &[]).await;
    assert_eq!(denied.status, 401, "{denied:?}");
    let open = support::get(&envoy.url("/status/200"), &[]).await;
    assert_eq!(open.status, 200, "{open:?}");
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let tollgate = start_tollgate().await;
    let refused = health_over_tls(&tollgate, None).await;
    assert!(refused.is_err(), "no client certificate, yet: {refused:?}");
    let plaintext = tollgate.health().await;
    assert!(plaintext.is_err(), "plaintext was answered: {plaintext:?}");

    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let status = health_over_tls(&tollgate, Some(client_identity())).await;
        if status == Ok(ServingStatus::Serving) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "with a client certificate: {status:?}\n{}",
            tollgate.describe()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A TLS connection to `addr` trusting the fixture CA, offering `alpn`,
/// with the fixture client certificate when `with_certificate`.
async fn tls_connect(
    addr: std::net::SocketAddr,
    alpn: &[u8],
    with_certificate: bool,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let mut roots = RootCertStore::empty();
    let ca = CertificateDer::from_pem_file(tls_fixture("ca.crt")).expect("fixture CA");
    roots.add(ca).expect("adding the CA");
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots);
    let mut config = if with_certificate {
        let chain = CertificateDer::pem_file_iter(tls_fixture("client.crt"))
            .expect("client cert")
            .collect::<Result<Vec<_>, _>>()
            .expect("client cert PEM");
        let key = PrivateKeyDer::from_pem_file(tls_fixture("client.key")).expect("client key");
        builder
            .with_client_auth_cert(chain, key)
            .expect("client auth")
    } else {
        builder.with_no_client_auth()
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").expect("server name");
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

/// The leaf certificate tollgate presents to a new connection.
async fn served_certificate(tollgate: &TollgateProcess) -> Vec<u8> {
    let stream = tls_connect(tollgate.addr(), b"h2", true)
        .await
        .expect("TLS handshake");
    let (_, session) = stream.get_ref();
    session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .expect("a server certificate")
        .to_vec()
}

/// `GET path` over HTTP/1.1 on a TLS connection; the whole answer, or the
/// I/O error that ended it.
async fn https_get(
    addr: std::net::SocketAddr,
    path: &str,
    with_certificate: bool,
) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tls_connect(addr, b"http/1.1", with_certificate).await?;
    let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn http_mode_is_served_over_mutual_tls_too() {
    let yaml = config(&tls_fixture("server.crt"), &tls_fixture("server.key")).replace(
        "  grpc_listen: 127.0.0.1:0\n",
        "  grpc_listen: 127.0.0.1:0\n  http_enabled: true\n  http_listen: 127.0.0.1:0\n",
    );
    let tollgate = TollgateProcess::start_listening(&yaml).await;
    let http = tollgate.http_addr().await;
    let answer = https_get(http, "/orders", true).await.unwrap_or_else(|e| {
        panic!(
            "HTTPS with a client certificate: {e}\n{}",
            tollgate.describe()
        )
    });
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    let refused = https_get(http, "/orders", false).await;
    assert!(
        refused
            .as_ref()
            .map_or(true, |answer| !answer.contains("HTTP/1.1")),
        "answered without a client certificate: {refused:?}"
    );
    let plaintext = {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut tcp = tokio::net::TcpStream::connect(http)
            .await
            .expect("connecting");
        let _ = tcp
            .write_all(b"GET /orders HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            .await;
        let mut answer = Vec::new();
        let _ = tcp.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    };
    assert!(
        !plaintext.contains("HTTP/1.1"),
        "plaintext was answered: {plaintext}"
    );
}

fn der(name: &str) -> Vec<u8> {
    CertificateDer::from_pem_file(tls_fixture(name))
        .expect("fixture certificate")
        .to_vec()
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let dir = ScratchDir::new("tls-reload");
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    std::fs::copy(tls_fixture("server.crt"), &cert).expect("copying the cert");
    std::fs::copy(tls_fixture("server.key"), &key).expect("copying the key");
    let tollgate = TollgateProcess::start_listening(&config(&cert, &key)).await;
    assert_eq!(served_certificate(&tollgate).await, der("server.crt"));

    std::fs::copy(tls_fixture("server-2.key"), &key).expect("renewing the key");
    std::fs::copy(tls_fixture("server-2.crt"), &cert).expect("renewing the cert");
    tollgate.wait_for_log("TLS certificates reloaded").await;
    assert_eq!(served_certificate(&tollgate).await, der("server-2.crt"));

    std::fs::write(&cert, "not a certificate").expect("breaking the cert");
    tollgate.wait_for_log("TLS certificates not reloaded").await;
    assert_eq!(
        served_certificate(&tollgate).await,
        der("server-2.crt"),
        "the last good certificate keeps serving"
    );
}

#[tokio::test]
async fn keys_are_fetched_over_https_from_an_idp_with_a_private_ca() {
    let jwk = std::fs::read_to_string(repo_path("tests/fixtures/keys/ec-p256-1.jwk.json"))
        .expect("fixture JWK");
    let idp = Idp::start_tls(
        jwks_of(&[&jwk]),
        &tls_fixture("server.crt"),
        &tls_fixture("server.key"),
    )
    .await;
    let yaml = |server_line: &str| {
        format!(
            "server:\n  grpc_listen: 127.0.0.1:0\n{server_line}providers:\n  - name: private\n    issuer: {ISSUER}\n    jwks_uri: {uri}\n    jwks_cache: {{ retry_interval: 1s }}\nroutes:\n  - {{ name: api, match: {{ path: {{ prefix: / }} }} }}\n",
            uri = idp.jwks_uri(),
        )
    };
    let ca = format!("  idp_ca_file: {}\n", yaml_path(&tls_fixture("ca.crt")));

    // `start` returns once health says SERVING: the keys came over https.
    let trusting = TollgateProcess::start(&yaml(&ca)).await;
    assert!(idp.hits(JWKS_PATH) >= 1, "{}", trusting.describe());
    let line = trusting.wait_for_log("JWKS fetched").await;
    assert!(line.contains("https://localhost"), "{line}");

    let untrusting = TollgateProcess::start_listening(&yaml("")).await;
    let failed = untrusting.wait_for_log("JWKS fetch failed").await;
    assert!(failed.contains("private"), "{failed}");
    assert_eq!(
        untrusting.health().await,
        Ok(ServingStatus::NotServing),
        "{}",
        untrusting.describe()
    );
}
