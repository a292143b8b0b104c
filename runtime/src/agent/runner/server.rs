//! The runner's side: a single-threaded loop that answers one request at a
//! time by calling the runtime library (`crate::container`), and reaps the
//! containers' inits (its children) the moment they exit, through a pidfd
//! per init, so their exit status and time are known. Each exit is
//! recorded in the container's exit file ([`super::exit_file`]) before
//! the init is reaped.
//!
//! When the agent is gone (end of file on the socket: the daemon was
//! killed) or says [`Request::Close`] (it stops, or drops its handle), the
//! runner serves no more. Inits that still run keep it: it lingers as
//! their parent and a pure reaper (named `noderun-reaper`, stdio on
//! /dev/null, no socket), records each exit as it comes and exits with
//! the last one, so a new daemon reads the exits of containers that ended
//! while it was away. It is no subreaper: orphans inside a container go to
//! the container's init, others to the host's, never to it. With no init
//! left it exits at once (tests that drop a runner leave nothing).
//!
//! The state of a stopped container this runner did not create (adopted
//! after a daemon restart, or another runner's) comes from its exit file.
//! Its parent writes the file before it reaps, so while the init is still
//! a zombie the answer waits a moment (the parent reaps at once), and
//! once it is gone without a file the exit is unknown.

use super::exit_file::{self, ExitRecord};
use super::protocol::{
    self, ContainerState, Exit, FailureKind, Request, Response, Status, MAX_PACKET,
};
use super::sys::{self, StdioSwap};
use crate::container::{self, Container, CreateOptions};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::error::Error;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long a state answer waits for another runner to reap (and
/// record) a zombie init before it calls the container still running.
const RECORD_WAIT: Duration = Duration::from_millis(100);

/// The runner's process name while it serves, and once it only reaps.
pub const RUNNER_NAME: &std::ffi::CStr = c"noderun-runner";
pub const REAPER_NAME: &std::ffi::CStr = c"noderun-reaper";

/// An init this runner created and has not reaped yet.
#[derive(Debug)]
struct Child {
    /// Readable once it exits; `None` when pidfd_open failed (then its
    /// exit is seen at the next reap of another, or when asked about).
    pidfd: Option<OwnedFd>,
    /// Its container's state directory, where the exit file goes.
    dir: PathBuf,
    pid_start_time: u64,
}

/// What the runner knows about an init beyond the runtime's record.
#[derive(Debug, Default, Clone)]
struct Seen {
    /// Which instance of the pid this is about.
    pid_start_time: u64,
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

/// Serve requests on `socket` until the agent closes it or says close,
/// then reap the inits that still run (see the module doc). Never returns
/// an error: a broken socket ends the serving, every other failure is
/// answered.
pub fn serve(socket: OwnedFd) {
    let mut server = Server::default();
    server.serve_requests(socket.as_fd());
    drop(socket);
    server.linger();
}

impl Server {
    /// Answer requests until end of file, a broken socket, or close.
    fn serve_requests(&mut self, socket: std::os::fd::BorrowedFd<'_>) {
        let mut buf = vec![0u8; MAX_PACKET];
        loop {
            let ready = {
                let mut fds = vec![socket];
                fds.extend(
                    self.children
                        .values()
                        .filter_map(|c| c.pidfd.as_ref())
                        .map(|f| f.as_fd()),
                );
                fds.extend(self.execs.values().map(|c| c.pidfd.as_fd()));
                match sys::poll_readable(&fds) {
                    Ok(r) => r,
                    Err(_) => return,
                }
            };
            if ready.iter().skip(1).any(|r| *r) {
                self.reap();
            }
            if !ready[0] {
                continue;
            }
            let (n, fds) = match sys::recv_packet(socket, &mut buf) {
                Ok(Some(packet)) => packet,
                Ok(None) | Err(_) => return,
            };
            let request = protocol::decode::<Request>(&buf[..n]);
            let closing = matches!(request, Ok(Request::Close));
            let (response, out_fds) = match request {
                Ok(request) => self.handle(&request, fds),
                Err(e) => (
                    Response::Failed {
                        kind: FailureKind::Other,
                        message: format!("runner: undecodable request: {e}"),
                    },
                    Vec::new(),
                ),
            };
            let out: Vec<_> = out_fds.iter().map(|f| f.as_fd()).collect();
            if sys::send_packet(socket, &protocol::encode(&response), &out).is_err() || closing {
                return;
            }
        }
    }

    /// The agent is gone: stay the parent of the inits that still run,
    /// record each exit, and return when none is left. Holds nothing but
    /// the inits' pidfds (stdio goes to /dev/null: the daemon's log may
    /// be a pipe someone waits to see closed).
    fn linger(mut self) {
        self.reap();
        if self.children.is_empty() {
            return;
        }
        sys::set_name(REAPER_NAME);
        let _ = sys::null_stdio();
        // Nobody reads an exec'd process's exit any more; they are reaped
        // as they come, and outlive the runner if the inits end first.
        self.execs.clear();
        while !self.children.is_empty() {
            match sys::peek_exit(None, true) {
                Ok(Some((pid, exit))) => self.record_and_reap(pid.as_raw(), Some(exit)),
                Ok(None) => {}
                // No child at all (ECHILD): nothing left to wait for.
                Err(_) => return,
            }
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
            Request::Close => {
                self.reap();
                Ok(Response::Closing {
                    inits: self.children.len() as u32,
                })
            }
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
        let pid_start_time = created.record.pid_start_time;
        self.seen.insert(
            pid.as_raw(),
            Seen {
                pid_start_time,
                ..Seen::default()
            },
        );
        self.children.insert(
            pid.as_raw(),
            Child {
                pidfd: sys::pidfd_open(pid).ok(),
                dir: container::Record::dir(root, id),
                pid_start_time,
            },
        );
        Ok(Response::Created { pid: pid.as_raw() })
    }

    fn start(&mut self, c: &Container) -> Result<Response, container::ContainerError> {
        container::start(c)?;
        let pid_start_time = c.record.pid_start_time;
        self.seen
            .entry(c.record.pid)
            .or_insert_with(|| Seen {
                pid_start_time,
                ..Seen::default()
            })
            .started = Some(noderun_core::Time::now().to_string());
        Ok(Response::Done)
    }

    fn delete(
        &mut self,
        c: &Container,
        force: bool,
    ) -> Result<Response, container::ContainerError> {
        container::delete(c, force)?;
        let pid = c.record.pid;
        if self.children.remove(&pid).is_some() {
            // Killed by a forced delete: collect it now (its directory,
            // and so its exit file, is gone with the container).
            let _ = crate::sys::spawn::wait_exit(Pid::from_raw(pid));
        }
        self.seen.remove(&pid);
        Ok(Response::Done)
    }

    fn state(&mut self, c: &Container) -> Response {
        let pid = c.record.pid;
        if self.children.contains_key(&pid) {
            self.reap_one(pid);
        }
        let mut status = match c.status() {
            container::Status::Created => Status::Created,
            container::Status::Running => Status::Running,
            container::Status::Paused => Status::Paused,
            container::Status::Stopped => Status::Stopped,
        };
        let ours = self
            .seen
            .get(&pid)
            .filter(|s| s.pid_start_time == c.record.pid_start_time);
        let mut seen = ours.cloned().unwrap_or_default();
        if status == Status::Stopped && ours.is_none() {
            match recorded_exit(c) {
                Recorded::Exit(r) => {
                    seen.exit = Some(r.exit);
                    seen.started = r.started;
                    seen.finished = Some(r.finished);
                }
                // Still a zombie: it has not ended for us yet.
                Recorded::Pending if c.dir().join(container::EXEC_FIFO).exists() => {
                    status = Status::Created
                }
                Recorded::Pending => status = Status::Running,
                Recorded::Unknown => {}
            }
        }
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
            self.reap_one(pid);
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

    /// Collect the init `pid` if it has exited.
    fn reap_one(&mut self, pid: i32) {
        match sys::peek_exit(Some(Pid::from_raw(pid)), false) {
            Ok(None) => {}
            Ok(Some((_, exit))) => self.record_and_reap(pid, Some(exit)),
            // Not our child any more (ECHILD): stop watching it.
            Err(_) => self.record_and_reap(pid, None),
        }
    }

    /// The child `pid` has exited (`exit`, left a zombie): if it is an
    /// init, write its exit file and remember the exit; then reap it.
    fn record_and_reap(&mut self, pid: i32, exit: Option<Exit>) {
        if let Some(child) = self.children.remove(&pid) {
            let finished = noderun_core::Time::now().to_string();
            let seen = self.seen.entry(pid).or_insert_with(|| Seen {
                pid_start_time: child.pid_start_time,
                ..Seen::default()
            });
            if let Some(exit) = exit {
                let record = ExitRecord {
                    pid,
                    pid_start_time: child.pid_start_time,
                    exit,
                    started: seen.started.clone(),
                    finished: finished.clone(),
                };
                match exit_file::write(&child.dir, &record) {
                    Ok(()) => {}
                    // Deleted before it was reaped: nobody will ask.
                    Err(e) if e.is_not_found() => {}
                    Err(e) => tracing::warn!(pid, error = %e, "recording a container's exit"),
                }
            }
            seen.exit = exit;
            seen.finished = Some(finished);
        }
        let _ = sys::try_wait(Pid::from_raw(pid));
    }
}

/// What is known of the exit of an init that is not this runner's child.
enum Recorded {
    Exit(ExitRecord),
    /// Still a zombie of a runner: not reaped (and recorded) yet.
    Pending,
    /// Gone without a record: it ended with no runner as its parent (the
    /// host rebooted, the runner was killed) or before exit files.
    Unknown,
}

/// The exit of `c`'s init, which has ended, from its exit file; while it
/// is the zombie of a runner, waits up to [`RECORD_WAIT`] for that runner
/// to record it. A zombie of any other parent (its runner was killed and
/// the host's init inherited it) will never be recorded.
fn recorded_exit(c: &Container) -> Recorded {
    let (pid, start) = (c.record.pid, c.record.pid_start_time);
    let deadline = Instant::now() + RECORD_WAIT;
    loop {
        // Looked at before the file: once the zombie is gone, the file
        // its parent wrote first is there, or there is none.
        let recording = container::process_start_time(pid) == Some(start) && parent_is_runner(pid);
        match exit_file::read(&c.dir(), &c.record) {
            Ok(Some(record)) => return Recorded::Exit(record),
            Ok(None) if recording && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Ok(None) if recording => return Recorded::Pending,
            Ok(None) => return Recorded::Unknown,
            Err(e) => {
                tracing::warn!(container = %c.record.id, error = %e, "reading a container's exit");
                return Recorded::Unknown;
            }
        }
    }
}

/// Whether `pid`'s parent is a container runner (serving or reaping),
/// which records the exits of its inits.
fn parent_is_runner(pid: i32) -> bool {
    let Some(parent) = parent_of(pid) else {
        return false;
    };
    let name = std::fs::read_to_string(format!("/proc/{parent}/comm")).unwrap_or_default();
    [RUNNER_NAME, REAPER_NAME]
        .iter()
        .any(|n| n.to_bytes() == name.trim_end().as_bytes())
}

/// The parent pid (field 4 of /proc/<pid>/stat).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name (field 2) may hold spaces and parentheses: the fields
    // after it start behind the last ')'.
    stat[stat.rfind(')')? + 2..].split(' ').nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parent_of_a_process_and_whether_it_is_a_runner() {
        let me = std::process::id() as i32;
        let parent = nix::unistd::getppid().as_raw();
        assert_eq!(parent_of(me), Some(parent));
        assert_eq!(parent_of(i32::MAX), None);
        // The test harness's parent is no runner.
        assert!(!parent_is_runner(me));
        assert!(!parent_is_runner(i32::MAX));
    }
}
