//! Where the apiserver listens: a Unix socket (mode 0600, so only root
//! reaches it), TCP with TLS, and — for tests only — plaintext TCP on a
//! loopback address. Each listener is an accept loop that gives every
//! connection its own task; [`RunningServer`] stops them all (and removes
//! the socket file) when shut down or dropped.

use super::connection::serve_connection;
use super::Apiserver;
use crate::store::Store;
use rustls::ServerConfig;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

/// How long a TLS handshake may take.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where to listen.
#[derive(Debug, Clone, Default)]
pub struct Listen {
    /// The Unix socket path.
    pub socket: Option<PathBuf>,
    /// TCP with TLS: the address and the server's TLS configuration.
    pub tls: Option<(SocketAddr, Arc<ServerConfig>)>,
    /// Plaintext TCP, loopback addresses only (tests).
    pub insecure: Option<SocketAddr>,
}

/// A listener that could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("{path} is in use by a running server; stop it or choose another --socket")]
    SocketInUse { path: PathBuf },
    #[error("binding the Unix socket {path}")]
    BindUnix {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("binding TCP {addr}")]
    BindTcp {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("--insecure-listen {addr} is not a loopback address; plaintext is only for tests on 127.0.0.1 or ::1 (use --listen for TLS)")]
    InsecureNotLoopback { addr: SocketAddr },
}

/// The running listeners. Dropping it stops them, closes every connection
/// and removes the socket file.
#[derive(Debug)]
pub struct RunningServer {
    socket: Option<PathBuf>,
    tls_addr: Option<SocketAddr>,
    insecure_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    loops: Vec<JoinHandle<()>>,
}

impl RunningServer {
    /// The Unix socket, if any.
    pub fn socket(&self) -> Option<&Path> {
        self.socket.as_deref()
    }

    /// The bound TLS address (the real port when 0 was asked for).
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// The bound plaintext address.
    pub fn insecure_addr(&self) -> Option<SocketAddr> {
        self.insecure_addr
    }

    /// Stop accepting, tell every connection to close and wait for the
    /// accept loops to end.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for handle in self.loops.drain(..) {
            handle.abort();
            let _ = handle.await;
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for handle in &self.loops {
            handle.abort();
        }
        if let Some(path) = &self.socket {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Bind every listener in `listen` and start serving `server` on them.
pub async fn start<S: Store>(
    server: Arc<Apiserver<S>>,
    listen: Listen,
) -> Result<RunningServer, ListenError> {
    let (shutdown, _) = watch::channel(false);
    let mut running = RunningServer {
        socket: None,
        tls_addr: None,
        insecure_addr: None,
        shutdown,
        loops: Vec::new(),
    };
    if let Some(path) = &listen.socket {
        let listener = bind_unix(path).await?;
        running.socket = Some(path.clone());
        let (server, down) = (Arc::clone(&server), running.shutdown.subscribe());
        running
            .loops
            .push(tokio::spawn(accept_unix(server, listener, down)));
        tracing::info!(socket = %path.display(), "listening (Unix socket, mode 0600)");
    }
    if let Some((addr, config)) = &listen.tls {
        let listener = bind_tcp(*addr).await?;
        let local = listener.local_addr().unwrap_or(*addr);
        running.tls_addr = Some(local);
        let acceptor = Some(TlsAcceptor::from(Arc::clone(config)));
        let (server, down) = (Arc::clone(&server), running.shutdown.subscribe());
        running
            .loops
            .push(tokio::spawn(accept_tcp(server, listener, acceptor, down)));
        tracing::info!(addr = %local, "listening (TCP, TLS)");
    }
    if let Some(addr) = listen.insecure {
        if !addr.ip().is_loopback() {
            return Err(ListenError::InsecureNotLoopback { addr });
        }
        let listener = bind_tcp(addr).await?;
        let local = listener.local_addr().unwrap_or(addr);
        running.insecure_addr = Some(local);
        let (server, down) = (Arc::clone(&server), running.shutdown.subscribe());
        running
            .loops
            .push(tokio::spawn(accept_tcp(server, listener, None, down)));
        tracing::warn!(addr = %local, "listening (plaintext TCP on loopback; for tests only)");
    }
    Ok(running)
}

async fn bind_tcp(addr: SocketAddr) -> Result<TcpListener, ListenError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ListenError::BindTcp { addr, source })
}

/// Bind under a temporary name, restrict it to the owner, then rename it
/// into place: the socket is never reachable with looser permissions.
async fn bind_unix(path: &Path) -> Result<UnixListener, ListenError> {
    let err = |source| ListenError::BindUnix {
        path: path.to_owned(),
        source,
    };
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Err(ListenError::SocketInUse {
                path: path.to_owned(),
            });
        }
        // A leftover of a server that is gone.
        std::fs::remove_file(path).map_err(err)?;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp).map_err(err)?;
    let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    Ok(listener)
}

async fn accept_unix<S: Store>(
    server: Arc<Apiserver<S>>,
    listener: UnixListener,
    shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        match listener.accept().await {
            Ok((stream, _)) => {
                let peer = match stream.peer_cred() {
                    Ok(cred) => format!("unix:pid={:?},uid={}", cred.pid(), cred.uid()),
                    Err(_) => "unix".to_owned(),
                };
                let (server, down) = (Arc::clone(&server), shutdown.clone());
                connections.spawn(serve_connection(server, stream, peer, down));
            }
            Err(e) => accept_failed(&e).await,
        }
    }
}

async fn accept_tcp<S: Store>(
    server: Arc<Apiserver<S>>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, addr) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                accept_failed(&e).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (server, down) = (Arc::clone(&server), shutdown.clone());
        let peer = addr.to_string();
        match &tls {
            None => {
                connections.spawn(serve_connection(server, stream, peer, down));
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                connections.spawn(async move {
                    let handshake =
                        tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(tls)) => serve_connection(server, tls, peer, down).await,
                        Ok(Err(e)) => tracing::info!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

/// Accept errors (out of file descriptors, mostly) are not fatal: wait a
/// little so the loop does not spin, and go on.
async fn accept_failed(e: &std::io::Error) {
    tracing::warn!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_millis(50)).await;
}
