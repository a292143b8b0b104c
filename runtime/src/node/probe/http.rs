//! A probe's HTTP GET, hand-written HTTP/1.1 as kubelet's prober sends it
//! (`Connection: close`, only the status line read): status 200–399
//! passes. Over HTTPS the server's certificate is not checked, as kubelet
//! does not check it (a pod's certificate is rarely made out to its IP);
//! the handshake's signatures still are.

use super::handler::ProbeError;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The URL, for messages.
pub fn url(addr: &SocketAddr, path: &str, https: bool) -> String {
    let scheme = if https { "https" } else { "http" };
    format!("{scheme}://{addr}{path}")
}

/// The path as sent: `/` when empty, with a leading `/`.
pub fn request_path(path: &str) -> String {
    if path.starts_with('/') {
        path.into()
    } else {
        format!("/{path}")
    }
}

/// GET `path` from `addr` over `stream` (connected to it), with TLS when
/// `https`; `Ok` when the status passes.
pub async fn get(
    stream: TcpStream,
    addr: SocketAddr,
    path: &str,
    https: bool,
) -> Result<(), ProbeError> {
    let url = url(&addr, path, https);
    if !https {
        return exchange(stream, addr, path, url).await;
    }
    let connector = tokio_rustls::TlsConnector::from(tls_config());
    let server = ServerName::IpAddress(addr.ip().into());
    match connector.connect(server, stream).await {
        Ok(tls) => exchange(tls, addr, path, url).await,
        Err(source) => Err(ProbeError::Http { url, source }),
    }
}

/// The request kubelet's prober sends, closed after the answer.
fn request(addr: &SocketAddr, path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: noderun-probe/1.0\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    )
}

/// The status code of a response that starts with `head`, once its status
/// line is complete (`None` while it is not); an error when it is not
/// HTTP/1.x.
fn status_code(head: &[u8]) -> Option<Result<u16, ()>> {
    let end = head.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&head[..end]).map_err(drop);
    let code = line.and_then(|line| {
        let mut parts = line.split(' ');
        let version = parts.next().unwrap_or("");
        let code = parts.next().unwrap_or("");
        if !version.starts_with("HTTP/1.") || code.len() != 3 {
            return Err(());
        }
        code.parse::<u16>().map_err(drop)
    });
    Some(code)
}

/// The most of a response read to find its status line.
const MAX_HEAD: usize = 4096;

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    addr: SocketAddr,
    path: &str,
    url: String,
) -> Result<(), ProbeError> {
    let io_err = |source| ProbeError::Http {
        url: url.clone(),
        source,
    };
    stream
        .write_all(request(&addr, path).as_bytes())
        .await
        .map_err(io_err)?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 512];
    let code = loop {
        if let Some(code) = status_code(&head) {
            break code;
        }
        let n = stream.read(&mut buf).await.map_err(io_err)?;
        if n == 0 || head.len() >= MAX_HEAD {
            break Err(());
        }
        head.extend_from_slice(&buf[..n]);
    };
    let bad = || ProbeError::BadResponse {
        url: url.clone(),
        head: String::from_utf8_lossy(&head[..head.len().min(80)]).into_owned(),
    };
    let status = code.map_err(|()| bad())?;
    if (200..400).contains(&status) {
        Ok(())
    } else {
        Err(ProbeError::Status { url, status })
    }
}

/// The client configuration of HTTPS probes, made once.
fn tls_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    Arc::clone(CONFIG.get_or_init(|| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(AnyCertificate(Arc::clone(&provider)));
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Arc::new(config)
    }))
}

/// Accepts any server certificate (kubelet's InsecureSkipVerify for
/// probes), checking the handshake's signatures with the provider's
/// algorithms.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn status_lines() {
        assert_eq!(status_code(b"HTTP/1.1 200 OK\r\n"), Some(Ok(200)));
        assert_eq!(
            status_code(b"HTTP/1.0 302 Found\r\nLocation: /x"),
            Some(Ok(302))
        );
        assert_eq!(status_code(b"HTTP/1.1 404 Not Found\r\n"), Some(Ok(404)));
        assert_eq!(status_code(b"HTTP/1.1 200"), None, "line not complete");
        assert_eq!(status_code(b"SSH-2.0-x\r\n"), Some(Err(())));
        assert_eq!(status_code(b"HTTP/1.1 2000 x\r\n"), Some(Err(())));
    }

    #[test]
    fn the_request_names_the_target_and_closes() {
        let addr: SocketAddr = "10.1.2.3:8080".parse().unwrap();
        let r = request(&addr, "/healthz");
        assert!(r.starts_with("GET /healthz HTTP/1.1\r\nHost: 10.1.2.3:8080\r\n"));
        assert!(r.contains("Connection: close\r\n") && r.ends_with("\r\n\r\n"));
        assert_eq!(request_path(""), "/");
        assert_eq!(request_path("ready"), "/ready");
    }

    /// A one-request server on loopback answering `status`, over TLS with
    /// a self-signed certificate when `tls`.
    async fn serve_once(status: &'static str, tls: bool) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tls.then(|| {
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = rcgen::CertificateParams::new(vec!["pod.example".into()])
                .unwrap()
                .self_signed(&key)
                .unwrap();
            let der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
            let config = rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], der)
            .unwrap();
            tokio_rustls::TlsAcceptor::from(Arc::new(config))
        });
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, status: &str) {
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.unwrap_or(0);
                // Anything but the probe's request goes unanswered.
                if !buf[..n].starts_with(b"GET /healthz HTTP/1.1\r\n") {
                    return;
                }
                let reply = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
                s.write_all(reply.as_bytes()).await.unwrap();
                s.shutdown().await.unwrap();
            }
            match acceptor {
                Some(a) => {
                    if let Ok(tls) = a.accept(stream).await {
                        answer(tls, status).await;
                    }
                }
                None => answer(stream, status).await,
            }
        });
        addr
    }

    #[tokio::test]
    async fn gets_over_http_and_https_pass_on_2xx_3xx_only() {
        for tls in [false, true] {
            for (status, passes) in [("200 OK", true), ("301 Moved", true), ("500 Oops", false)] {
                let addr = serve_once(status, tls).await;
                let stream = TcpStream::connect(addr).await.unwrap();
                let got = get(stream, addr, "/healthz", tls).await;
                assert_eq!(got.is_ok(), passes, "tls={tls} {status}: {got:?}");
                if let Err(e) = got {
                    let scheme = if tls { "https" } else { "http" };
                    assert!(
                        e.to_string()
                            .contains(&format!("{scheme}://{addr}/healthz")),
                        "{e}"
                    );
                }
            }
        }
    }

    #[tokio::test]
    async fn a_plain_server_fails_an_https_probe() {
        let addr = serve_once("200 OK", false).await;
        let stream = TcpStream::connect(addr).await.unwrap();
        let err = get(stream, addr, "/healthz", true).await.unwrap_err();
        assert!(matches!(err, ProbeError::Http { .. }), "{err}");
    }
}
