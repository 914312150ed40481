//! TLS on the gRPC and HTTP-mode listeners (rustls with aws-lc-rs): the server certificate,
//! and with a client CA, mutual TLS that refuses clients without a
//! certificate it signed. The files are read once at load, for both
//! listeners, and again whenever their content changes, so a renewed
//! certificate (cert-manager, a rotated Secret) is served to new
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

use crate::digest::sha256;
use crate::error_chain::ErrorChain;

/// Longest a client may take to finish the TLS handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the listener's certificate and key, and the client CA, are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsSettings {
    /// PEM certificate chain, leaf first.
    pub(crate) cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub(crate) key_file: PathBuf,
    /// PEM CA certificates; when set, clients must present a certificate
    /// one of them signed (mutual TLS).
    pub(crate) client_ca_file: Option<PathBuf>,
}

/// The TLS files could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsError {
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

/// The listener's protocol, which TLS negotiates by ALPN: `h2` for gRPC,
/// `http/1.1` for HTTP mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alpn {
    /// gRPC.
    H2,
    /// HTTP ext_authz mode.
    Http1,
}

/// The server configs, one per [`Alpn`], built from one reading of the files.
struct Configs {
    h2: Arc<ServerConfig>,
    http1: Arc<ServerConfig>,
}

/// TLS for the listeners: the files read once at load, and again only when
/// their content changes ([`ServerTls::watch`]).
pub(crate) struct ServerTls {
    settings: TlsSettings,
    // Read once per accepted connection to clone an Arc, written when the
    // files change; never held across an await.
    current: RwLock<Configs>,
    /// SHA-256 of the files' contents when loaded, where [`ServerTls::watch`]
    /// starts noticing changes from.
    loaded: [u8; 32],
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Reads and checks the files; an error here refuses the config.
    pub(crate) fn load(settings: TlsSettings) -> Result<ServerTls, TlsError> {
        let files = Files::read(&settings)?;
        Ok(ServerTls {
            current: RwLock::new(files.configs(&settings)?),
            loaded: files.fingerprint(),
            settings,
        })
    }

    /// Where the files are.
    pub(crate) fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// Whether clients must present a certificate.
    pub(crate) fn mutual(&self) -> bool {
        self.settings.client_ca_file.is_some()
    }

    /// An acceptor with the config current now, for one connection.
    pub(crate) fn acceptor(&self, alpn: Alpn) -> TlsAcceptor {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        TlsAcceptor::from(Arc::clone(match alpn {
            Alpn::H2 => &current.h2,
            Alpn::Http1 => &current.http1,
        }))
    }

    /// Reloads the files whenever their content changes, every `interval`,
    /// forever; a broken set is logged and the previous one keeps serving.
    pub(crate) async fn watch(self: Arc<Self>, interval: Duration) {
        let mut seen = self.loaded;
        let mut poll = tokio::time::interval(interval);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            poll.tick().await;
            // Missing files mid-rotation are not a change yet.
            let Ok(files) = Files::read(&self.settings) else {
                continue;
            };
            let fingerprint = files.fingerprint();
            if seen == fingerprint {
                continue;
            }
            seen = fingerprint;
            match files.configs(&self.settings) {
                Ok(configs) => {
                    *self.current.write().unwrap_or_else(PoisonError::into_inner) = configs;
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

/// The files' bytes, read together.
struct Files {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

impl Files {
    fn read(settings: &TlsSettings) -> Result<Files, TlsError> {
        Ok(Files {
            cert: read(&settings.cert_file)?,
            key: read(&settings.key_file)?,
            client_ca: settings.client_ca_file.as_deref().map(read).transpose()?,
        })
    }

    fn fingerprint(&self) -> [u8; 32] {
        let mut all = Vec::with_capacity(self.cert.len() + self.key.len());
        all.extend_from_slice(&self.cert);
        all.extend_from_slice(&self.key);
        all.extend(self.client_ca.iter().flatten());
        sha256(&all)
    }

    /// Both server configs, from these bytes.
    fn configs(&self, settings: &TlsSettings) -> Result<Configs, TlsError> {
        let chain = certificates(&self.cert, &settings.cert_file)?;
        let key = PrivateKeyDer::from_pem_slice(&self.key).map_err(|e| TlsError::Pem {
            path: settings.key_file.display().to_string(),
            message: format!("no private key: {e}"),
        })?;
        let verifier = match (&self.client_ca, &settings.client_ca_file) {
            (Some(pem), Some(path)) => {
                let mut roots = RootCertStore::empty();
                for certificate in certificates(pem, path)? {
                    roots.add(certificate)?;
                }
                Some(
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()?,
                )
            }
            _ => None,
        };
        let config = |alpn: &[u8]| -> Result<Arc<ServerConfig>, TlsError> {
            let builder = ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()?;
            let builder = match &verifier {
                None => builder.with_no_client_auth(),
                Some(verifier) => builder.with_client_cert_verifier(Arc::clone(verifier)),
            };
            let mut config = builder.with_single_cert(chain.clone(), key.clone_key())?;
            config.alpn_protocols = vec![alpn.to_vec()];
            Ok(Arc::new(config))
        };
        Ok(Configs {
            h2: config(b"h2")?,
            http1: config(b"http/1.1")?,
        })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Every certificate in `pem`, read from `path`; at least one.
fn certificates(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_error = |message: String| TlsError::Pem {
        path: path.display().to_string(),
        message,
    };
    let certificates = CertificateDer::pem_slice_iter(pem)
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
pub(crate) fn incoming(
    listener: TcpListener,
    tls: Arc<ServerTls>,
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
            let acceptor = tls.acceptor(Alpn::H2);
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
