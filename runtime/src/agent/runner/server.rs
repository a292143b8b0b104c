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

/// A process exec'd into a container, still running: its exit goes to
/// `status` (the agent holds the pipe's read end).
#[derive(Debug)]
struct Execed {
    pidfd: OwnedFd,
    status: OwnedFd,
}

#[derive(Debug, Default)]
struct Server {
    /// Inits still running, by pid.
    children: HashMap<i32, Child>,
    /// By init pid: start and end as seen here.
    seen: HashMap<i32, Seen>,
    /// Exec'd processes still running, by pid.
    execs: HashMap<i32, Execed>,
}

/// What the answer to a request carries besides the message.
type Answer = (Response, Vec<OwnedFd>);

/// Serve requests on `socket` until the agent closes it. Never returns an
/// error: a broken socket ends the loop, every other failure is answered.
pub fn serve(socket: OwnedFd) {
    let mut server = Server::default();
    let mut buf = vec![0u8; MAX_PACKET];
    loop {
        let ready = {
            let mut fds = vec![socket.as_fd()];
            fds.extend(server.children.values().map(|c| c.pidfd.as_fd()));
            fds.extend(server.execs.values().map(|c| c.pidfd.as_fd()));
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
        let (n, fds) = match sys::recv_packet(socket.as_fd(), &mut buf) {
            Ok(Some(packet)) => packet,
            Ok(None) | Err(_) => return,
        };
        let (response, out_fds) = match protocol::decode::<Request>(&buf[..n]) {
            Ok(request) => server.handle(&request, fds),
            Err(e) => (
                Response::Failed {
                    kind: FailureKind::Other,
                    message: format!("runner: undecodable request: {e}"),
                },
                Vec::new(),
            ),
        };
        let out: Vec<_> = out_fds.iter().map(|f| f.as_fd()).collect();
        if sys::send_packet(socket.as_fd(), &protocol::encode(&response), &out).is_err() {
            return;
        }
    }
}

/// A runtime error as the answer to `request`.
fn failure(verb: &str, id: &str, e: container::ContainerError) -> Response {
    Response::Failed {
        kind: match e {
            container::ContainerError::NotFound(_) => FailureKind::NotFound,
            container::ContainerError::AlreadyExists(_) => FailureKind::AlreadyExists,
            container::ContainerError::WrongState { .. } => FailureKind::WrongState,
            _ => FailureKind::Other,
        },
        message: format!("{verb} container {id}: {}", chain(&e)),
    }
}

/// Start the logger of a container instance: a detached process that
/// copies a pipe into the rotated log at `live` (see `agent::logs`);
/// returns the pipe's write end, the container's stdout and stderr. The
/// log is opened here first so that a bad path fails the create.
fn spawn_logger(
    live: &std::path::Path,
    rotation: crate::agent::logs::LogRotation,
) -> Result<OwnedFd, String> {
    use crate::agent::logs::{copy_to_log, RotatingLog};
    use std::os::fd::AsRawFd;
    drop(RotatingLog::open(live, rotation).map_err(|e| chain(&e))?);
    let (read, write) = sys::pipe().map_err(|e| chain(&e))?;
    sys::spawn_detached(c"noderun-logger", &[read.as_raw_fd()], move || {
        copy_to_log(read, RotatingLog::open(live, rotation).ok())
    })
    .map_err(|e| format!("starting the logger of {}: {}", live.display(), chain(&e)))?;
    Ok(write)
}

/// The pty master the exec'd process sent over the console pair.
fn receive_pty(socket: &std::os::unix::net::UnixStream) -> Result<OwnedFd, String> {
    let mut name = [0u8; 256];
    match sys::recv_packet(socket.as_fd(), &mut name) {
        Ok(Some((_, mut fds))) if fds.len() == 1 => Ok(fds.remove(0)),
        Ok(Some((_, fds))) => Err(format!("expected one fd, got {}", fds.len())),
        Ok(None) => Err("the process closed the console socket without sending it".into()),
        Err(e) => Err(chain(&e)),
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
    /// Answer one request; `fds` came with it (only exec takes any: the
    /// others' are closed).
    fn handle(&mut self, request: &Request, fds: Vec<OwnedFd>) -> Answer {
        let result = match request {
            Request::Exec {
                root,
                id,
                args,
                env,
                tty,
            } => {
                return Container::load(root, id)
                    .map_err(|e| Box::new(failure("exec", id, e)))
                    .and_then(|c| self.exec(&c, args, env, *tty, fds))
                    .unwrap_or_else(|failed| (*failed, Vec::new()))
            }
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
        (
            result.unwrap_or_else(|e| failure(request.verb(), request.id(), e)),
            Vec::new(),
        )
    }

    /// Start `args` in the container with the caller's stdio (`fds`) or a
    /// pty; the answer carries a pidfd, the exit pipe and the pty master.
    fn exec(
        &mut self,
        c: &Container,
        args: &[String],
        env: &[String],
        tty: bool,
        fds: Vec<OwnedFd>,
    ) -> Result<Answer, Box<Response>> {
        let fail = |message: String| {
            Box::new(Response::Failed {
                kind: FailureKind::Other,
                message: format!("exec in container {}: {message}", c.record.id),
            })
        };
        let expected = if tty { 0 } else { 3 };
        if fds.len() != expected {
            return Err(fail(format!(
                "expected {expected} stdio fds with the request, got {}",
                fds.len()
            )));
        }
        let console = if tty {
            let pair = std::os::unix::net::UnixStream::pair()
                .map_err(|e| fail(format!("console socket pair: {e}")))?;
            Some(pair)
        } else {
            None
        };
        let opts = container::ExecOptions {
            process: container::ExecOptions::for_command(c, args.to_vec(), env, tty),
            detach: true,
            pid_file: None,
            console_socket: console
                .as_ref()
                .map(|(_, theirs)| theirs.try_clone().map(std::sync::Arc::new))
                .transpose()
                .map_err(|e| fail(format!("dup the console socket: {e}")))?
                .map(container::ConsoleSocket::Connected),
        };
        let executed = {
            let _swap = match fds.as_slice() {
                [i, o, e] => Some(
                    StdioSwap::to_fds([i.as_fd(), o.as_fd(), e.as_fd()])
                        .map_err(|e| fail(format!("exec stdio: {}", chain(&e))))?,
                ),
                _ => None,
            };
            container::exec(c, &opts)
        };
        drop(fds);
        let executed = executed.map_err(|e| Box::new(failure("exec", &c.record.id, e)))?;
        let pid = Pid::from_raw(executed.pid);
        let started = (|| {
            let pidfd = sys::pidfd_open(pid).map_err(|e| fail(chain(&e)))?;
            let (status_read, status_write) = sys::pipe().map_err(|e| fail(chain(&e)))?;
            let mut out = vec![
                pidfd
                    .try_clone()
                    .map_err(|e| fail(format!("dup pidfd: {e}")))?,
                status_read,
            ];
            if let Some((ours, _)) = &console {
                out.push(receive_pty(ours).map_err(|e| fail(format!("the pty master: {e}")))?);
            }
            Ok((
                Execed {
                    pidfd,
                    status: status_write,
                },
                out,
            ))
        })();
        match started {
            Ok((execed, out)) => {
                self.execs.insert(pid.as_raw(), execed);
                Ok((Response::Executing { pid: pid.as_raw() }, out))
            }
            Err(failed) => {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                let _ = crate::sys::spawn::wait_exit(pid);
                Err(failed)
            }
        }
    }

    fn create(
        &mut self,
        root: &std::path::Path,
        id: &str,
        bundle: &std::path::Path,
        stdio: Option<&protocol::Stdio>,
    ) -> Result<Response, container::ContainerError> {
        let stdio_error = |message: String| container::ContainerError::Init {
            id: id.into(),
            message: format!("container stdio: {message}"),
        };
        let swap = match stdio {
            Some(s) => Some(match s.rotation {
                None => {
                    StdioSwap::to_files(&s.stdout, &s.stderr).map_err(|e| stdio_error(chain(&e)))?
                }
                Some(rotation) => {
                    if s.stdout != s.stderr {
                        return Err(stdio_error(format!(
                            "a rotated log takes stdout and stderr in one file, not {} and {}",
                            s.stdout.display(),
                            s.stderr.display()
                        )));
                    }
                    let pipe = spawn_logger(&s.stdout, rotation).map_err(stdio_error)?;
                    let null = sys::open_null().map_err(|e| stdio_error(chain(&e)))?;
                    StdioSwap::to_fds([null.as_fd(), pipe.as_fd(), pipe.as_fd()])
                        .map_err(|e| stdio_error(chain(&e)))?
                }
            }),
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

    /// Collect every watched init and exec'd process that has exited.
    fn reap(&mut self) {
        let pids: Vec<i32> = self.children.keys().copied().collect();
        for pid in pids {
            self.reap_one(pid, false);
        }
        let execs: Vec<i32> = self.execs.keys().copied().collect();
        for pid in execs {
            match sys::try_wait(Pid::from_raw(pid)) {
                Ok(None) => {}
                Ok(exit) => {
                    if let Some(execed) = self.execs.remove(&pid) {
                        // The agent may have stopped listening: nothing to do.
                        if let Some(exit) = exit {
                            let _ = sys::write_all(execed.status.as_fd(), &protocol::encode(&exit));
                        }
                    }
                }
                Err(_) => {
                    self.execs.remove(&pid);
                }
            }
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
