//! Reaching the apiserver: a Unix socket, TCP with TLS verified against
//! the cluster CA, or plaintext TCP (tests). Every way ends in the same
//! byte stream handed to the connection.

use super::ClientError;
use crate::pem::read_certs;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::TlsConnector;

/// Where the apiserver is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A Unix socket path.
    Unix(PathBuf),
    /// `host:port` with TLS; the server must present a certificate for
    /// `host` signed by the CA in `ca_file`.
    Tls { addr: String, ca_file: PathBuf },
    /// Plaintext TCP (the server's `--insecure-listen`, tests only).
    Insecure(SocketAddr),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
            Endpoint::Tls { addr, .. } => write!(f, "tls:{addr}"),
            Endpoint::Insecure(addr) => write!(f, "tcp:{addr}"),
        }
    }
}

/// A byte stream to the apiserver.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Open a stream to `endpoint`.
pub async fn open(endpoint: &Endpoint) -> Result<Box<dyn Stream>, ClientError> {
    let connect_err = |source| ClientError::Connect {
        endpoint: endpoint.to_string(),
        source,
    };
    match endpoint {
        Endpoint::Unix(path) => Ok(Box::new(
            UnixStream::connect(path).await.map_err(connect_err)?,
        )),
        Endpoint::Insecure(addr) => {
            let tcp = TcpStream::connect(addr).await.map_err(connect_err)?;
            let _ = tcp.set_nodelay(true);
            Ok(Box::new(tcp))
        }
        Endpoint::Tls { addr, ca_file } => {
            let config = tls_config(ca_file)?;
            let host = host_of(addr);
            let name =
                ServerName::try_from(host.to_owned()).map_err(|_| ClientError::ServerName {
                    host: host.to_owned(),
                })?;
            let tcp = TcpStream::connect(addr.as_str())
                .await
                .map_err(connect_err)?;
            let _ = tcp.set_nodelay(true);
            let tls = TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|source| ClientError::Tls {
                    endpoint: endpoint.to_string(),
                    source,
                })?;
            Ok(Box::new(tls))
        }
    }
}

/// `host` of `host:port` or `[v6]:port`.
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// A TLS client configuration that trusts only the cluster CA.
pub fn tls_config(ca_file: &Path) -> Result<Arc<ClientConfig>, ClientError> {
    let certs = read_certs(ca_file).map_err(|source| ClientError::CaFile {
        path: ca_file.to_owned(),
        source,
    })?;
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|source| ClientError::CaCert {
            path: ca_file.to_owned(),
            source,
        })?;
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|source| ClientError::CaCert {
                path: ca_file.to_owned(),
                source,
            })?
            .with_root_certificates(roots)
            .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn hosts() {
        assert_eq!(host_of("127.0.0.1:6443"), "127.0.0.1");
        assert_eq!(host_of("[::1]:6443"), "::1");
        assert_eq!(host_of("cp.example.com:6443"), "cp.example.com");
    }
}
