//! The runner's side: a single-threaded loop that answers one request at a
//! time by calling the runtime library (`crate::container`), and reaps the
//! containers' inits (its children) the moment they exit, through a pidfd
//! per init, so their exit status and time are known.

use super::protocol::{
    self, ContainerState, Exit, FailureKind, Request, Response, Status, MAX_PACKET,
};
use super::sys::{self, StdioSwap};
use crate::container::{self, Container, CreateOptions};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::error::Error;
use std::os::fd::{AsFd, OwnedFd};

/// An init this runner created and still watches.
#[derive(Debug)]
struct Child {
    pidfd: OwnedFd,
}

/// What the runner knows about an init beyond the runtime's record.
#[derive(Debug, Default, Clone)]
struct Seen {
    started: Option<String>,
    finished: Option<String>,
    exit: Option<Exit>,
}

#[derive(Debug, Default)]
struct Server {
    /// Inits still running, by pid.
    children: HashMap<i32, Child>,
    /// By init pid: start and end as seen here.
    seen: HashMap<i32, Seen>,
}

/// Serve requests on `socket` until the agent closes it. Never returns an
/// error: a broken socket ends the loop, every other failure is answered.
pub fn serve(socket: OwnedFd) {
    let mut server = Server::default();
    let mut buf = vec![0u8; MAX_PACKET];
    loop {
        let ready = {
            let mut fds = vec![socket.as_fd()];
            fds.extend(server.children.values().map(|c| c.pidfd.as_fd()));
            match sys::poll_readable(&fds) {
                Ok(r) => r,
                Err(_) => return,
            }
        };
        if ready.iter().skip(1).any(|r| *r) {
            server.reap();
        }
        if !ready[0] {
            continue;
        }
        let n = match sys::recv_packet(socket.as_fd(), &mut buf) {
            Ok(Some(n)) => n,
            Ok(None) | Err(_) => return,
        };
        let response = match protocol::decode::<Request>(&buf[..n]) {
            Ok(request) => server.handle(&request),
            Err(e) => Response::Failed {
                kind: FailureKind::Other,
                message: format!("runner: undecodable request: {e}"),
            },
        };
        if sys::send_packet(socket.as_fd(), &protocol::encode(&response)).is_err() {
            return;
        }
    }
}

/// The error and its sources, `outer: inner: innermost`.
fn chain(e: &dyn Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

impl Server {
    fn handle(&mut self, request: &Request) -> Response {
        let result = match request {
            Request::Create {
                root,
                id,
                bundle,
                stdio,
            } => self.create(root, id, bundle, stdio.as_ref()),
            Request::Start { root, id } => Container::load(root, id).and_then(|c| self.start(&c)),
            Request::Kill {
                root,
                id,
                signal,
                all,
            } => Container::load(root, id).and_then(|c| {
                let signal = container::parse_signal(&signal.to_string())?;
                container::kill(&c, signal, *all).map(|()| Response::Done)
            }),
            Request::Delete { root, id, force } => {
                Container::load(root, id).and_then(|c| self.delete(&c, *force))
            }
            Request::State { root, id } => Container::load(root, id).map(|c| self.state(&c)),
        };
        result.unwrap_or_else(|e| Response::Failed {
            kind: match e {
                container::ContainerError::NotFound(_) => FailureKind::NotFound,
                container::ContainerError::AlreadyExists(_) => FailureKind::AlreadyExists,
                container::ContainerError::WrongState { .. } => FailureKind::WrongState,
                _ => FailureKind::Other,
            },
            message: format!(
                "{} container {}: {}",
                request.verb(),
                request.id(),
                chain(&e)
            ),
        })
    }

    fn create(
        &mut self,
        root: &std::path::Path,
        id: &str,
        bundle: &std::path::Path,
        stdio: Option<&protocol::Stdio>,
    ) -> Result<Response, container::ContainerError> {
        let swap = match stdio {
            Some(s) => Some(StdioSwap::to_files(&s.stdout, &s.stderr).map_err(|e| {
                container::ContainerError::Init {
                    id: id.into(),
                    message: format!("container stdio: {}", chain(&e)),
                }
            })?),
            None => None,
        };
        let created = container::create(root, id, bundle, &CreateOptions::default());
        drop(swap);
        let created = created?;
        let pid = created.pid;
        self.seen.insert(pid.as_raw(), Seen::default());
        // Without a pidfd the init is still reaped at the next exit we see
        // (or when it is deleted); its exit would then be found late.
        if let Ok(pidfd) = sys::pidfd_open(pid) {
            self.children.insert(pid.as_raw(), Child { pidfd });
        }
        Ok(Response::Created { pid: pid.as_raw() })
    }

    fn start(&mut self, c: &Container) -> Result<Response, container::ContainerError> {
        container::start(c)?;
        self.seen.entry(c.record.pid).or_default().started =
            Some(noderun_core::Time::now().to_string());
        Ok(Response::Done)
    }

    fn delete(
        &mut self,
        c: &Container,
        force: bool,
    ) -> Result<Response, container::ContainerError> {
        container::delete(c, force)?;
        let pid = c.record.pid;
        if self.children.contains_key(&pid) {
            // Killed by a forced delete: collect it now.
            self.reap_one(pid, true);
        }
        self.children.remove(&pid);
        self.seen.remove(&pid);
        Ok(Response::Done)
    }

    fn state(&mut self, c: &Container) -> Response {
        let pid = c.record.pid;
        if self.children.contains_key(&pid) {
            self.reap_one(pid, false);
        }
        let status = match c.status() {
            container::Status::Created => Status::Created,
            container::Status::Running => Status::Running,
            container::Status::Paused => Status::Paused,
            container::Status::Stopped => Status::Stopped,
        };
        let seen = self.seen.get(&pid).cloned().unwrap_or_default();
        Response::State(ContainerState {
            id: c.record.id.clone(),
            status,
            pid,
            cgroup_path: c.record.cgroup_path.clone(),
            created: c.record.created.clone(),
            started: seen.started,
            finished: seen.finished,
            exit: seen.exit,
        })
    }

    /// Collect every watched init that has exited.
    fn reap(&mut self) {
        let pids: Vec<i32> = self.children.keys().copied().collect();
        for pid in pids {
            self.reap_one(pid, false);
        }
    }

    /// Collect `pid` if it has exited (waiting for it with `block`).
    fn reap_one(&mut self, pid: i32, block: bool) {
        let exit = if block {
            crate::sys::spawn::wait_exit(Pid::from_raw(pid))
                .ok()
                .map(|e| match e {
                    crate::sys::spawn::Exit::Code(c) => Exit::Code(c),
                    crate::sys::spawn::Exit::Signal(s) => Exit::Signal(s),
                })
        } else {
            match sys::try_wait(Pid::from_raw(pid)) {
                Ok(None) => return,
                Ok(exit) => exit,
                // Not our child any more (ECHILD): stop watching it.
                Err(_) => None,
            }
        };
        self.children.remove(&pid);
        let seen = self.seen.entry(pid).or_default();
        seen.exit = exit;
        seen.finished = Some(noderun_core::Time::now().to_string());
    }
}
