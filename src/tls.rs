//! TLS on the gRPC and HTTP-mode listeners (rustls with aws-lc-rs): the server certificate,
//! and with a client CA, mutual TLS that refuses clients without a
//! certificate it signed. The files are read again whenever they change, so
//! a renewed certificate (cert-manager, a rotated Secret) is served to new
//! connections without a restart.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use crate::telemetry::ErrorChain;

/// Longest a client may take to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the listener's certificate and key, and the client CA, are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM CA certificates; when set, clients must present a certificate
    /// one of them signed (mutual TLS).
    pub client_ca_file: Option<PathBuf>,
}

/// The TLS files could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file holds no usable PEM item of the kind needed.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: String,
        /// What is missing or wrong.
        message: String,
    },
    /// rustls refused the certificate, key or CA.
    #[error("TLS configuration refused")]
    Rustls(#[from] rustls::Error),
    /// The client CA could not build a verifier.
    #[error("client CA refused")]
    ClientCa(#[from] rustls::server::VerifierBuilderError),
}

/// The aws-lc-rs provider, named explicitly: the process may link other
/// providers through dependencies, and rustls refuses to guess between them.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The current server config; swapped when the files change.
pub struct TlsConfig {
    settings: TlsSettings,
    /// ALPN protocols offered: `h2` for gRPC, `http/1.1` for the HTTP mode.
    alpn: &'static [u8],
    // Read once per accepted connection to clone the Arc, written when the
    // files change; never held across an await.
    current: RwLock<Arc<ServerConfig>>,
}

impl TlsConfig {
    /// Loads the files now, for the gRPC listener (ALPN `h2`); an error
    /// here stops the start.
    pub fn load(settings: TlsSettings) -> Result<TlsConfig, TlsError> {
        TlsConfig::load_with_alpn(settings, b"h2")
    }

    /// As [`TlsConfig::load`], for an HTTP/1.1 listener.
    pub fn load_http1(settings: TlsSettings) -> Result<TlsConfig, TlsError> {
        TlsConfig::load_with_alpn(settings, b"http/1.1")
    }

    fn load_with_alpn(settings: TlsSettings, alpn: &'static [u8]) -> Result<TlsConfig, TlsError> {
        let config = server_config(&settings, alpn)?;
        Ok(TlsConfig {
            settings,
            alpn,
            current: RwLock::new(Arc::new(config)),
        })
    }

    /// An acceptor with the config current now, for one connection.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current())
    }

    fn current(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The files' contents, to notice a change.
    fn fingerprint(&self) -> Option<Vec<u8>> {
        let mut all = Vec::new();
        let files = [&self.settings.cert_file, &self.settings.key_file];
        for path in files.into_iter().chain(&self.settings.client_ca_file) {
            all.extend(std::fs::read(path).ok()?);
        }
        Some(all)
    }

    /// Reloads the files whenever their content changes, every `interval`,
    /// forever; a broken set is logged and the previous one keeps serving.
    pub async fn watch(self: Arc<Self>, interval: Duration) {
        let mut seen = self.fingerprint();
        let mut poll = tokio::time::interval(interval);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            poll.tick().await;
            // Missing files mid-rotation are not a change yet.
            let Some(now) = self.fingerprint() else {
                continue;
            };
            if seen.as_ref() == Some(&now) {
                continue;
            }
            seen = Some(now);
            match server_config(&self.settings, self.alpn) {
                Ok(config) => {
                    *self.current.write().unwrap_or_else(PoisonError::into_inner) =
                        Arc::new(config);
                    tracing::info!(cert = %self.settings.cert_file.display(), "TLS certificates reloaded");
                }
                Err(error) => tracing::error!(
                    error = %ErrorChain(&error),
                    "TLS certificates not reloaded; the previous ones keep serving"
                ),
            }
        }
    }
}

fn server_config(settings: &TlsSettings, alpn: &[u8]) -> Result<ServerConfig, TlsError> {
    let chain = certificates(&settings.cert_file)?;
    let key =
        PrivateKeyDer::from_pem_slice(&read(&settings.key_file)?).map_err(|e| TlsError::Pem {
            path: settings.key_file.display().to_string(),
            message: format!("no private key: {e}"),
        })?;
    let builder =
        ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match &settings.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for certificate in certificates(path)? {
                roots.add(certificate)?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider()).build()?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key)?;
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(config)
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Every certificate in a PEM file; at least one.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_error = |message: String| TlsError::Pem {
        path: path.display().to_string(),
        message,
    };
    let certificates = CertificateDer::pem_slice_iter(&read(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(format!("bad PEM: {e}")))?;
    if certificates.is_empty() {
        return Err(pem_error("no CERTIFICATE in the file".to_owned()));
    }
    Ok(certificates)
}

/// Accepts connections on `listener` and yields those that finish the TLS
/// handshake with the config current at accept time. Handshakes run
/// concurrently, so one slow client delays no other. Ends when the stream
/// is dropped (the server stopped serving).
pub fn incoming(
    listener: TcpListener,
    tls: Arc<TlsConfig>,
) -> ReceiverStream<Result<TlsStream<TcpStream>, io::Error>> {
    let (sender, receiver) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                () = sender.closed() => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        // Out of file descriptors and the like: pause, go on.
                        tracing::warn!(%error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let acceptor = tls.acceptor();
            let sender = sender.clone();
            tokio::spawn(async move {
                let peer = stream.peer_addr().ok();
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        let _ = sender.send(Ok(stream)).await;
                    }
                    Ok(Err(error)) => {
                        tracing::debug!(?peer, %error, "TLS handshake refused");
                    }
                    Err(_) => tracing::debug!(?peer, "TLS handshake timed out"),
                }
            });
        }
    });
    ReceiverStream::new(receiver)
}
