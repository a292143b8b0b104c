//! [`Runner`]: the node agent's container runner, a small helper process
//! forked when the agent starts, before it has threads.
//!
//! Why a process: creating a container clones the calling process (see
//! `crate::sys::spawn`), and a clone of a multi-threaded process may only
//! make async-signal-safe calls until it execs, while the init does its
//! whole setup in Rust first. The agent will be a multi-threaded tokio
//! process; the runner stays single-threaded and calls the runtime library
//! (`crate::container`) for it. The containers' inits are the runner's
//! children: it reaps them as they exit and reports their exit status.
//!
//! The two talk over a SOCK_SEQPACKET socket pair, one postcard message
//! per packet ([`protocol`]), one request at a time. The client side is a
//! mutex'd fd: blocking calls from sync code, or the `*_async` methods,
//! which run the call on tokio's blocking pool.
//!
//! A [`Runner`] may be a pool of such processes ([`Runner::start_pool`]):
//! one request at a time each, so a burst of creates is served N at a
//! time. A container is always served by the same runner, chosen by a hash
//! of its id, so its init is that runner's child, reaped by it, and every
//! later verb (state, kill, exec, delete) reaches the runner that knows
//! its exit. The state of a live container is read from its record on
//! disk without a round trip ([`live`]); only a stopped one (whose exit
//! its runner knows) is asked for.
//!
//! Lifetime: the runner serves until the agent says close (dropping the
//! last [`Runner`] handle does) or its socket reaches end of file (the
//! daemon was killed). Then it exits at once if none of its inits runs,
//! else it stays as their parent, a pure reaper, until the last one has
//! ended: every init's exit goes to the container's exit file
//! ([`exit_file`]) when it is reaped, so a new daemon reads the exits of
//! containers that ended while it was away (as containerd's shims and
//! conmon outlive their daemons). A runner that stays is reaped by a
//! thread of the process that dropped it; after a kill, by the host's
//! init. Containers' state stays under the runtime root.

mod exec;
pub mod exit_file;
mod live;
pub mod protocol;
mod server;
mod sys;

pub use exec::{ExecCommand, ExecControl, ExecIo, ExecOutput, ExecProcess, EXEC_OUTPUT_LIMIT};
pub use protocol::{ContainerState, Exit, FailureKind, Status, Stdio};
pub use sys::RunnerSysError;

use nix::sys::signal::Signal;
use nix::unistd::{ForkResult, Pid};
use protocol::{Request, Response, MAX_PACKET};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What went wrong talking to the runner, or what it reported.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("starting the container runner: {0}")]
    Start(#[source] RunnerSysError),
    #[error("starting the container runner: {0}")]
    SocketPair(#[source] crate::sys::spawn::SpawnError),
    #[error("container runner (pid {pid}): {verb} {id}: {source}")]
    Transport {
        pid: i32,
        verb: &'static str,
        id: String,
        #[source]
        source: RunnerSysError,
    },
    #[error("container runner (pid {pid}) closed its socket during {verb} {id}; it has died (see the node's logs and dmesg)")]
    Gone {
        pid: i32,
        verb: &'static str,
        id: String,
    },
    #[error("container runner (pid {pid}): garbled answer to {verb} {id}: {message}")]
    Protocol {
        pid: i32,
        verb: &'static str,
        id: String,
        message: String,
    },
    /// The runtime's own error, with its context (container, path).
    #[error("{message}")]
    Failed { kind: FailureKind, message: String },
    #[error("the blocking task for {verb} {id} failed: {message}")]
    Task {
        verb: &'static str,
        id: String,
        message: String,
    },
}

impl RunnerError {
    /// Whether the runtime said the container does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            RunnerError::Failed {
                kind: FailureKind::NotFound,
                ..
            }
        )
    }
}

/// The pool size the node agent forks by default: one runner per CPU
/// this process may run on.
pub fn default_pool_size() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// One runner process: its pid and our end of its socket.
#[derive(Debug)]
struct Inner {
    pid: Pid,
    socket: Mutex<Option<OwnedFd>>,
}

impl Inner {
    /// Fork one runner (see [`Runner::start`]).
    fn fork() -> Result<Inner, RunnerError> {
        let (ours, theirs) =
            crate::sys::spawn::seqpacket_pair().map_err(RunnerError::SocketPair)?;
        match sys::fork().map_err(RunnerError::Start)? {
            ForkResult::Child => {
                drop(ours);
                runner_main(theirs)
            }
            ForkResult::Parent { child } => {
                drop(theirs);
                tracing::debug!(pid = child.as_raw(), "container runner started");
                Ok(Inner {
                    pid: child,
                    socket: Mutex::new(Some(ours)),
                })
            }
        }
    }
}

/// The runners of a handle, and what the handle remembers itself.
#[derive(Debug)]
struct Pool {
    /// Never empty.
    runners: Vec<Inner>,
    starts: live::Starts,
}

/// A handle on the runner (or a pool of runners); clones share it. The
/// runners end when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Runner {
    inner: Arc<Pool>,
}

impl Runner {
    /// Fork one runner. Call it while the process has one thread (the
    /// daemon's `main`, before the tokio runtime starts): the runner is a
    /// copy of the calling thread, and any lock another thread held at the
    /// fork would stay held in it forever. Tests, whose harness has
    /// threads, fork it while their other threads wait on a lock.
    pub fn start() -> Result<Runner, RunnerError> {
        Runner::start_pool(1)
    }

    /// Fork `count` runners (at least one), under the same rule as
    /// [`Runner::start`]. Each closes the sockets of those forked before
    /// it (it keeps no fd of its parent's). If one cannot be forked, those
    /// already running are ended and the error returned.
    pub fn start_pool(count: usize) -> Result<Runner, RunnerError> {
        let runners = (0..count.max(1))
            .map(|_| Inner::fork())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Runner {
            inner: Arc::new(Pool {
                runners,
                starts: live::Starts::default(),
            }),
        })
    }

    /// The first runner's pid (the only one's, without a pool).
    pub fn pid(&self) -> i32 {
        self.inner.runners[0].pid.as_raw()
    }

    /// Every runner's pid.
    pub fn pids(&self) -> Vec<i32> {
        self.inner.runners.iter().map(|r| r.pid.as_raw()).collect()
    }

    /// The pid of the runner that serves container `id`.
    pub fn pid_for(&self, id: &str) -> i32 {
        self.runner_for(id).pid.as_raw()
    }

    /// The runner that serves container `id`: always the same one for an
    /// id (FNV-1a of the id, modulo the pool's size).
    fn runner_for(&self, id: &str) -> &Inner {
        let runners = &self.inner.runners;
        let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        &runners[(hash % runners.len() as u64) as usize]
    }

    /// Create the container `id` from the bundle at `bundle`, its state
    /// under `root`; returns the init's pid.
    pub fn create(
        &self,
        root: &Path,
        id: &str,
        bundle: &Path,
        stdio: Option<Stdio>,
    ) -> Result<i32, RunnerError> {
        match self.call(&Request::Create {
            root: root.into(),
            id: id.into(),
            bundle: bundle.into(),
            stdio,
        })? {
            Response::Created { pid } => Ok(pid),
            other => Err(self.unexpected("create", id, &other)),
        }
    }

    pub fn start_container(&self, root: &Path, id: &str) -> Result<(), RunnerError> {
        self.done(Request::Start {
            root: root.into(),
            id: id.into(),
        })?;
        self.inner.starts.started(root, id);
        Ok(())
    }

    /// Send `signal` to the init, or with `all` to every process of the
    /// container.
    pub fn kill(
        &self,
        root: &Path,
        id: &str,
        signal: Signal,
        all: bool,
    ) -> Result<(), RunnerError> {
        self.done(Request::Kill {
            root: root.into(),
            id: id.into(),
            signal: signal as i32,
            all,
        })
    }

    pub fn delete(&self, root: &Path, id: &str, force: bool) -> Result<(), RunnerError> {
        let deleted = self.done(Request::Delete {
            root: root.into(),
            id: id.into(),
            force,
        });
        if deleted.is_ok() || deleted.as_ref().is_err_and(RunnerError::is_not_found) {
            self.inner.starts.forget(root, id);
        }
        deleted
    }

    /// The container's state: read from its record when its init lives
    /// (no round trip, so a status read never waits behind a create on
    /// the runner), else its runner's answer, which knows the exit.
    pub fn state(&self, root: &Path, id: &str) -> Result<ContainerState, RunnerError> {
        if let Some(alive) = self.inner.starts.alive(root, id) {
            return Ok(alive);
        }
        match self.call(&Request::State {
            root: root.into(),
            id: id.into(),
        })? {
            Response::State(s) => Ok(self.inner.starts.with_start(root, s)),
            other => Err(self.unexpected("state", id, &other)),
        }
    }

    /// [`Runner::create`] from async code (on tokio's blocking pool).
    pub async fn create_async(
        &self,
        root: PathBuf,
        id: String,
        bundle: PathBuf,
        stdio: Option<Stdio>,
    ) -> Result<i32, RunnerError> {
        let verb_id = id.clone();
        self.blocking("create", verb_id, move |r| {
            r.create(&root, &id, &bundle, stdio)
        })
        .await
    }

    /// [`Runner::start_container`] from async code.
    pub async fn start_async(&self, root: PathBuf, id: String) -> Result<(), RunnerError> {
        self.blocking("start", id.clone(), move |r| r.start_container(&root, &id))
            .await
    }

    /// [`Runner::kill`] from async code.
    pub async fn kill_async(
        &self,
        root: PathBuf,
        id: String,
        signal: Signal,
        all: bool,
    ) -> Result<(), RunnerError> {
        self.blocking("kill", id.clone(), move |r| r.kill(&root, &id, signal, all))
            .await
    }

    /// [`Runner::delete`] from async code.
    pub async fn delete_async(
        &self,
        root: PathBuf,
        id: String,
        force: bool,
    ) -> Result<(), RunnerError> {
        self.blocking("delete", id.clone(), move |r| r.delete(&root, &id, force))
            .await
    }

    /// [`Runner::state`] from async code.
    pub async fn state_async(
        &self,
        root: PathBuf,
        id: String,
    ) -> Result<ContainerState, RunnerError> {
        self.blocking("state", id.clone(), move |r| r.state(&root, &id))
            .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        verb: &'static str,
        id: String,
        f: impl FnOnce(&Runner) -> Result<T, RunnerError> + Send + 'static,
    ) -> Result<T, RunnerError> {
        let runner = self.clone();
        tokio::task::spawn_blocking(move || f(&runner))
            .await
            .map_err(|e| RunnerError::Task {
                verb,
                id,
                message: e.to_string(),
            })?
    }

    fn done(&self, request: Request) -> Result<(), RunnerError> {
        match self.call(&request)? {
            Response::Done => Ok(()),
            other => Err(self.unexpected(request.verb(), request.id(), &other)),
        }
    }

    fn unexpected(&self, verb: &'static str, id: &str, got: &Response) -> RunnerError {
        RunnerError::Protocol {
            pid: self.pid_for(id),
            verb,
            id: id.into(),
            message: format!("unexpected {got:?}"),
        }
    }

    /// One request, one answer, under the lock of the socket of the
    /// runner that serves the request's container.
    fn call(&self, request: &Request) -> Result<Response, RunnerError> {
        self.call_with_fds(request, &[])
            .map(|(response, _)| response)
    }

    /// One request with `fds` attached; the answer with the fds it carries.
    fn call_with_fds(
        &self,
        request: &Request,
        fds: &[std::os::fd::BorrowedFd<'_>],
    ) -> Result<(Response, Vec<OwnedFd>), RunnerError> {
        let (verb, id) = (request.verb(), request.id());
        let runner = self.runner_for(id);
        let pid = runner.pid.as_raw();
        let transport = |source| RunnerError::Transport {
            pid,
            verb,
            id: id.into(),
            source,
        };
        let guard = runner
            .socket
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let socket = guard.as_ref().ok_or_else(|| RunnerError::Gone {
            pid,
            verb,
            id: id.into(),
        })?;
        sys::send_packet(socket.as_fd(), &protocol::encode(request), fds).map_err(transport)?;
        let mut buf = vec![0u8; MAX_PACKET];
        let (n, fds) = sys::recv_packet(socket.as_fd(), &mut buf)
            .map_err(transport)?
            .ok_or_else(|| RunnerError::Gone {
                pid,
                verb,
                id: id.into(),
            })?;
        match protocol::decode::<Response>(&buf[..n]) {
            Ok(Response::Failed { kind, message }) => Err(RunnerError::Failed { kind, message }),
            Ok(response) => Ok((response, fds)),
            Err(e) => Err(RunnerError::Protocol {
                pid,
                verb,
                id: id.into(),
                message: e.to_string(),
            }),
        }
    }
}

impl Inner {
    /// Tell the runner we are done; how many inits it stays for (`None`
    /// when it did not answer: it is gone or broken).
    fn close(&mut self) -> Option<u32> {
        let socket = self
            .socket
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()?;
        sys::send_packet(socket.as_fd(), &protocol::encode(&Request::Close), &[]).ok()?;
        let mut buf = vec![0u8; MAX_PACKET];
        let (n, _) = sys::recv_packet(socket.as_fd(), &mut buf).ok()??;
        match protocol::decode::<Response>(&buf[..n]) {
            Ok(Response::Closing { inits }) => Some(inits),
            _ => None,
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let pid = self.pid;
        if let Some(inits) = self.close().filter(|n| *n > 0) {
            // It stays for its inits: reaped when the last has ended
            // (and by the host's init if this process ends first).
            tracing::info!(
                pid = pid.as_raw(),
                inits,
                "the container runner stays to record its containers' exits"
            );
            let reaper = std::thread::Builder::new()
                .name("runner-reaper".into())
                .spawn(move || crate::sys::spawn::wait_exit(pid));
            if reaper.is_ok() {
                return;
            }
        }
        // It exits now (or never answered): give it a moment, then make
        // sure, and reap it either way.
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match sys::try_wait(pid) {
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                Ok(None) => {
                    let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                    let _ = crate::sys::spawn::wait_exit(pid);
                    return;
                }
                Ok(Some(_)) | Err(_) => return,
            }
        }
    }
}

/// The forked child: become the runner and never return. No parent-death
/// signal: it outlives a killed daemon while its inits run (see the module
/// doc); a parent gone before it started shows as end of file.
fn runner_main(socket: OwnedFd) -> ! {
    sys::set_name(server::RUNNER_NAME);
    let code = match sys::close_fds_except(&[std::os::fd::AsRawFd::as_raw_fd(&socket)]) {
        Ok(()) => {
            server::serve(socket);
            0
        }
        // The parent's fds could not be closed: the agent sees the runner
        // gone at its first request.
        Err(_) => 1,
    };
    // SAFETY: leave without running the parent's atexit handlers or
    // destructors of state copied from it (test harness, tokio).
    unsafe { libc::_exit(code) }
}
