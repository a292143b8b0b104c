//! The checks a probe makes, as kubelet makes them: from the node to the
//! pod, a TCP connect or an HTTP/1.1 GET whose status 200–399 passes, to
//! the pod IP (or the handler's `host`) on the handler's port (a number,
//! or the name of one of the container's ports), from a socket made in
//! the node's network namespace ([`PodHost::node_tcp_socket`]); or a
//! command run inside the container through the runner's exec, which
//! passes when it exits 0. Each check is bounded by the probe's timeout.

use crate::agent::runner::{Exit, EXEC_OUTPUT_LIMIT};
use crate::agent::{AgentError, PodHost};
use noderun_core::{Container, PortRef, Probe};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Why a check did not pass, naming where it went.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("probe target host {host:?} is not an IP address (names are not resolved)")]
    Host { host: String },
    #[error("probe port {port:?} names no port of container {container}")]
    PortName { container: String, port: String },
    #[error("probe port {port} is not a TCP port number")]
    PortNumber { port: i32 },
    #[error("the probe has no handler")]
    NoHandler,
    #[error("exec {command:?}: {source}")]
    Exec {
        command: Vec<String>,
        #[source]
        source: Box<AgentError>,
    },
    #[error("exec {command:?}: {outcome}{output}")]
    Command {
        command: Vec<String>,
        outcome: String,
        output: String,
    },
    #[error("the pod has no IP yet")]
    NoPodIp,
    #[error("{addr}: {source}")]
    Socket {
        addr: SocketAddr,
        #[source]
        source: Box<AgentError>,
    },
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: no answer within {after:?}")]
    Timeout { what: String, after: Duration },
    #[error("HTTP GET {url}: {source}")]
    Http {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP GET {url}: not an HTTP/1.x response: {head:?}")]
    BadResponse { url: String, head: String },
    #[error("HTTP GET {url}: status {status}")]
    Status { url: String, status: u16 },
}

/// A check, resolved against the container and the pod IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    Tcp {
        addr: SocketAddr,
    },
    HttpGet {
        addr: SocketAddr,
        path: String,
    },
    /// `command` in container `container` of pod `uid`.
    Exec {
        uid: String,
        container: String,
        command: Vec<String>,
    },
}

impl Check {
    /// The check `probe` of container `c` of pod `uid` makes, the pod's
    /// IP being `pod_ip`.
    pub fn of(
        probe: &Probe,
        uid: &str,
        c: &Container,
        pod_ip: Option<IpAddr>,
    ) -> Result<Check, ProbeError> {
        if let Some(exec) = &probe.exec {
            return Ok(Check::Exec {
                uid: uid.into(),
                container: c.name.clone(),
                command: exec.command.clone(),
            });
        }
        let (host, port) = if let Some(h) = &probe.http_get {
            (&h.host, &h.port)
        } else if let Some(t) = &probe.tcp_socket {
            (&t.host, &t.port)
        } else {
            return Err(ProbeError::NoHandler);
        };
        let ip = if host.is_empty() {
            pod_ip.ok_or(ProbeError::NoPodIp)?
        } else {
            host.parse()
                .map_err(|_| ProbeError::Host { host: host.clone() })?
        };
        let number = match port {
            PortRef::Number(n) => *n,
            PortRef::Name(name) => c
                .ports
                .iter()
                .find(|p| &p.name == name)
                .map(|p| p.container_port)
                .ok_or_else(|| ProbeError::PortName {
                    container: c.name.clone(),
                    port: name.clone(),
                })?,
        };
        let port = u16::try_from(number)
            .ok()
            .filter(|p| *p != 0)
            .ok_or(ProbeError::PortNumber { port: number })?;
        let addr = SocketAddr::new(ip, port);
        Ok(match &probe.http_get {
            Some(h) => Check::HttpGet {
                addr,
                path: request_path(&h.path),
            },
            None => Check::Tcp { addr },
        })
    }

    fn describe(&self) -> String {
        match self {
            Check::Tcp { addr } => format!("TCP {addr}"),
            Check::HttpGet { addr, path } => format!("HTTP GET {}", url(addr, path)),
            Check::Exec { command, .. } => format!("exec {command:?}"),
        }
    }

    /// Make the check from the node; `Ok` when it passes.
    pub async fn run(&self, host: Arc<PodHost>, timeout: Duration) -> Result<(), ProbeError> {
        let (addr, path) = match self {
            // Not cut short from here: the runner's exec kills the command
            // at the timeout, and dropping it earlier would leave the
            // command running.
            Check::Exec {
                uid,
                container,
                command,
            } => return exec(&host, uid, container, command, timeout).await,
            Check::Tcp { addr } => (*addr, None),
            Check::HttpGet { addr, path } => (*addr, Some(path)),
        };
        let work = async {
            match path {
                None => connect(&host, addr).await.map(drop),
                Some(path) => http_get(&host, addr, path).await,
            }
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| ProbeError::Timeout {
                what: self.describe(),
                after: timeout,
            })?
    }
}

fn url(addr: &SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

/// The path as sent: `/` when empty, with a leading `/`.
fn request_path(path: &str) -> String {
    if path.starts_with('/') {
        path.into()
    } else {
        format!("/{path}")
    }
}

async fn connect(host: &PodHost, addr: SocketAddr) -> Result<tokio::net::TcpStream, ProbeError> {
    let socket = host
        .node_tcp_socket(addr.is_ipv6())
        .map_err(|source| ProbeError::Socket {
            addr,
            source: Box::new(source),
        })?;
    socket
        .connect(addr)
        .await
        .map_err(|source| ProbeError::Connect { addr, source })
}

/// Run `command` in the container; it passes when it exits 0 within
/// `timeout` (the runner kills it then).
async fn exec(
    host: &PodHost,
    uid: &str,
    container: &str,
    command: &[String],
    timeout: Duration,
) -> Result<(), ProbeError> {
    let out = host
        .exec_capture(uid, container, command.to_vec(), timeout, EXEC_OUTPUT_LIMIT)
        .await
        .map_err(|source| ProbeError::Exec {
            command: command.to_vec(),
            source: Box::new(source),
        })?;
    let outcome = match (out.timed_out, out.exit) {
        (false, Some(Exit::Code(0))) => return Ok(()),
        (true, _) => format!("killed after the {timeout:?} timeout"),
        (false, Some(exit)) => format!("exit code {}", exit.shell_code()),
        (false, None) => "the runner ended before the command".into(),
    };
    Err(ProbeError::Command {
        command: command.to_vec(),
        outcome,
        output: command_output(&out.stdout, &out.stderr),
    })
}

/// What a failed command said, for the log: `: <output>`, cut short.
fn command_output(stdout: &[u8], stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stdout) + String::from_utf8_lossy(stderr);
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(": {}", &text[..end])
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

async fn http_get(host: &PodHost, addr: SocketAddr, path: &str) -> Result<(), ProbeError> {
    let url = url(&addr, path);
    let io_err = |source| ProbeError::Http {
        url: url.clone(),
        source,
    };
    let mut stream = connect(host, addr).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use noderun_core::{ContainerPort, HttpGetAction, TcpSocketAction};

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

    #[test]
    fn checks_resolve_ports_and_hosts() {
        let c = Container {
            name: "web".into(),
            ports: vec![ContainerPort {
                name: "http".into(),
                container_port: 8080,
                ..ContainerPort::default()
            }],
            ..Container::default()
        };
        let pod_ip = Some("10.88.0.7".parse().unwrap());
        let http = Probe {
            http_get: Some(HttpGetAction {
                path: "healthz".into(),
                port: PortRef::Name("http".into()),
                ..HttpGetAction::default()
            }),
            ..Probe::default()
        };
        assert_eq!(
            Check::of(&http, "u1", &c, pod_ip).unwrap(),
            Check::HttpGet {
                addr: "10.88.0.7:8080".parse().unwrap(),
                path: "/healthz".into()
            }
        );
        let tcp = |host: &str, port: PortRef| Probe {
            tcp_socket: Some(TcpSocketAction {
                port,
                host: host.into(),
            }),
            ..Probe::default()
        };
        assert_eq!(
            Check::of(&tcp("127.0.0.1", PortRef::Number(22)), "u1", &c, pod_ip).unwrap(),
            Check::Tcp {
                addr: "127.0.0.1:22".parse().unwrap()
            }
        );
        let err = |p: &Probe, ip| Check::of(p, "u1", &c, ip).unwrap_err().to_string();
        assert!(err(&tcp("", PortRef::Name("grpc".into())), pod_ip).contains("grpc"));
        assert!(err(&tcp("example.com", PortRef::Number(80)), pod_ip).contains("example.com"));
        assert!(err(&tcp("", PortRef::Number(70000)), pod_ip).contains("70000"));
        assert!(err(&tcp("", PortRef::Number(80)), None).contains("no IP"));
        assert!(err(&Probe::default(), pod_ip).contains("no handler"));
        let exec = Probe {
            exec: Some(noderun_core::ExecAction {
                command: vec!["cat".into(), "/tmp/healthy".into()],
            }),
            ..Probe::default()
        };
        assert_eq!(
            Check::of(&exec, "u1", &c, None).unwrap(),
            Check::Exec {
                uid: "u1".into(),
                container: "web".into(),
                command: vec!["cat".into(), "/tmp/healthy".into()]
            }
        );
        assert_eq!(command_output(b"", b"  "), "");
        assert_eq!(
            command_output(b"cat: ", b"/tmp/healthy: No such file\n"),
            ": cat: /tmp/healthy: No such file"
        );
    }
}
