//! The checks a probe makes, as kubelet makes them: from the node to the
//! pod, a TCP connect or an HTTP(S) GET ([`super::http`]) to
//! the pod IP (or the handler's `host`) on the handler's port (a number,
//! or the name of one of the container's ports), from a socket made in
//! the node's network namespace ([`PodHost::node_tcp_socket`]); or a
//! command run inside the container through the runner's exec, which
//! passes when it exits 0. Each check is bounded by the probe's timeout.

use super::http;
use crate::agent::runner::{Exit, EXEC_OUTPUT_LIMIT};
use crate::agent::{AgentError, PodHost};
use noderun_core::{Container, PortRef, Probe, UriScheme};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

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
        https: bool,
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
                path: http::request_path(&h.path),
                https: h.scheme == UriScheme::Https,
            },
            None => Check::Tcp { addr },
        })
    }

    fn describe(&self) -> String {
        match self {
            Check::Tcp { addr } => format!("TCP {addr}"),
            Check::HttpGet { addr, path, https } => {
                format!("HTTP GET {}", http::url(addr, path, *https))
            }
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
            Check::HttpGet { addr, path, https } => (*addr, Some((path, *https))),
        };
        let work = async {
            let stream = connect(&host, addr).await?;
            match path {
                None => Ok(()),
                Some((path, https)) => http::get(stream, addr, path, https).await,
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

#[cfg(test)]
mod tests {
    use super::*;
    use noderun_core::{ContainerPort, HttpGetAction, TcpSocketAction};

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
                path: "/healthz".into(),
                https: false,
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
