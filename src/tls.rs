//! TLS on both listeners with rustls (the ring provider): the certificate chain and key of
//! `[server.tls]`, checked before anything binds a port, and on the gRPC listener the client
//! certificates signed by `client_ca_file` when that is set (mTLS; the HTTP listener, where
//! providers post webhooks, never asks for one).
//!
//! The files are read again when they change ([`reload`]): each new connection takes the
//! current [`Certificates`]; connections already open keep the one they started with.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use arc_swap::ArcSwap;
use rustls::{
    RootCertStore, ServerConfig,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _},
    server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier},
    sign::CertifiedKey,
};

pub mod reload;

/// Where the PEM files are (`[server.tls]`).
#[derive(Clone, Debug)]
pub struct TlsOptions {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_ca_file: Option<PathBuf>,
}

/// Reads and checks the files as start-up does: one line naming the file and the problem.
pub fn check(options: &TlsOptions) -> Result<(), String> {
    build(options, &Files::read(options)?).map(|_| ())
}

/// The TLS settings new connections get; swapped whole when the files change.
#[derive(Debug)]
pub struct Certificates {
    options: TlsOptions,
    current: ArcSwap<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    grpc: Arc<ServerConfig>,
    http: Arc<ServerConfig>,
    /// The files these came from, to tell a change.
    files: Files,
    /// Subject, serial and expiry of the certificate, for the logs.
    summary: String,
}

impl Certificates {
    /// Reads the files once; an error is one line for the operator.
    pub fn load(options: TlsOptions) -> Result<Arc<Self>, String> {
        let loaded = build(&options, &Files::read(&options)?)?;
        tracing::info!(certificate = %loaded.summary, mtls = options.client_ca_file.is_some(), "TLS on");
        Ok(Arc::new(Self {
            options,
            current: ArcSwap::from_pointee(loaded),
        }))
    }

    /// For a new connection on the gRPC listener (client certificates required with mTLS).
    pub fn grpc(&self) -> Arc<ServerConfig> {
        self.current.load().grpc.clone()
    }

    /// For a new connection on the HTTP listener (server TLS only).
    pub fn http(&self) -> Arc<ServerConfig> {
        self.current.load().http.clone()
    }
}

/// The bytes of the files: compared to tell whether they changed.
#[derive(Clone, PartialEq, Eq)]
struct Files {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

/// Key bytes are never printed.
impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Files")
    }
}

impl Files {
    fn read(options: &TlsOptions) -> Result<Self, String> {
        Ok(Self {
            cert: read("cert_file", &options.cert_file)?,
            key: read("key_file", &options.key_file)?,
            client_ca: options
                .client_ca_file
                .as_deref()
                .map(|path| read("client_ca_file", path))
                .transpose()?,
        })
    }
}

fn read(key: &str, path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => {
            format!("server.tls.{key} {}: no such file", path.display())
        }
        _ => format!("server.tls.{key} {}: cannot be read: {err}", path.display()),
    })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Both listeners' settings from the files' bytes, or what is wrong with them.
fn build(options: &TlsOptions, files: &Files) -> Result<Loaded, String> {
    let cert_path = options.cert_file.display();
    let key_path = options.key_file.display();
    let chain = certificates("cert_file", &options.cert_file, &files.cert)?;
    let summary = describe(&chain[0], &format!("server.tls.cert_file {cert_path}"))?;
    let key = PrivateKeyDer::from_pem_slice(&files.key)
        .map_err(|_| format!("server.tls.key_file {key_path}: no PEM private key in the file"))?;
    let provider = provider();
    let signing_key = provider.key_provider.load_private_key(key).map_err(|_| {
        format!("server.tls.key_file {key_path}: not a private key this gateway can use (RSA, ECDSA P-256/P-384 or Ed25519)")
    })?;
    let certified = CertifiedKey::new(chain, signing_key);
    if let Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) =
        certified.keys_match()
    {
        return Err(format!(
            "server.tls.key_file {key_path}: the key does not match the certificate in {cert_path}"
        ));
    }
    let resolver = Arc::new(Resolver(Arc::new(certified)));
    let alpn = || vec![b"h2".to_vec(), b"http/1.1".to_vec()];

    let mut http = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| format!("TLS: {err}"))?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    http.alpn_protocols = alpn();
    let grpc = match (&options.client_ca_file, &files.client_ca) {
        (Some(path), Some(bytes)) => {
            let mut roots = RootCertStore::empty();
            for ca in certificates("client_ca_file", path, bytes)? {
                roots.add(ca).map_err(|err| {
                    format!(
                        "server.tls.client_ca_file {}: not a usable CA certificate: {err}",
                        path.display()
                    )
                })?;
            }
            let verifier =
                WebPkiClientVerifier::builder_with_provider(roots.into(), provider.clone())
                    .build()
                    .map_err(|err| {
                        format!("server.tls.client_ca_file {}: {err}", path.display())
                    })?;
            let mut grpc = ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|err| format!("TLS: {err}"))?
                .with_client_cert_verifier(verifier)
                .with_cert_resolver(resolver);
            grpc.alpn_protocols = alpn();
            Arc::new(grpc)
        }
        _ => Arc::new(http.clone()),
    };
    Ok(Loaded {
        grpc,
        http: Arc::new(http),
        files: files.clone(),
        summary,
    })
}

/// The certificates of a PEM file: at least one.
fn certificates(
    key: &str,
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| format!("server.tls.{key} {}: bad PEM: {err}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "server.tls.{key} {}: no certificate in the file (expected PEM \"BEGIN CERTIFICATE\")",
            path.display()
        ));
    }
    Ok(certs)
}

/// Subject, serial and validity of the gateway's certificate; an error when it is not
/// valid now (expired, or not yet valid), naming the date.
fn describe(cert: &CertificateDer<'_>, what: &str) -> Result<String, String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
        .map_err(|_| format!("{what}: the first certificate cannot be parsed"))?;
    let validity = parsed.validity();
    let now = chrono::Utc::now().timestamp();
    let date = |t: &x509_parser::time::ASN1Time| {
        chrono::DateTime::from_timestamp(t.timestamp(), 0).map_or_else(
            || t.to_string(),
            |d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        )
    };
    if validity.not_after.timestamp() < now {
        return Err(format!(
            "{what}: the certificate expired on {}",
            date(&validity.not_after)
        ));
    }
    if validity.not_before.timestamp() > now {
        return Err(format!(
            "{what}: the certificate is not valid before {}",
            date(&validity.not_before)
        ));
    }
    Ok(format!(
        "subject \"{}\" serial {} valid until {}",
        parsed.subject(),
        parsed.raw_serial_as_string(),
        date(&validity.not_after)
    ))
}

/// Always the one certificate of the [`Loaded`] it belongs to.
#[derive(Debug)]
struct Resolver(Arc<CertifiedKey>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}
