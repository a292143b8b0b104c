//! Exec through the runner: a process started in a running container
//! (joining its namespaces and cgroup, as its own process: user,
//! capabilities, env, cwd, no_new_privs, seccomp) by the single-threaded
//! runner, which is the process's parent and reports its exit.
//!
//! Two forms. Streaming ([`Runner::exec_async`]): the caller's stdin,
//! stdout and stderr go to the runner with the request (SCM_RIGHTS), or
//! the process gets a pty whose master comes back; the caller holds a
//! pidfd (signals without pid reuse) and a pipe on which the runner
//! writes the exit once it reaps the process. Captured
//! ([`Runner::exec_capture`]): for probes, the command's output read into
//! memory up to a bound, killed when the timeout passes.

use super::protocol::{Exit, Request, Response};
use super::{sys, Runner, RunnerError};
use nix::sys::signal::Signal;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// How much of each of stdout and stderr [`Runner::exec_capture`] keeps
/// (the kubelet keeps 10 KiB of a probe's output; this is the default for
/// callers without their own bound).
pub const EXEC_OUTPUT_LIMIT: usize = 16 * 1024;

/// A command to run in the container `id` under the runtime root `root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecCommand {
    pub root: PathBuf,
    pub id: String,
    pub args: Vec<String>,
    /// `NAME=VALUE` over the container's env.
    pub env: Vec<String>,
}

/// Where the process's stdio goes.
#[derive(Debug)]
pub enum ExecIo {
    /// These fds become its stdin, stdout and stderr.
    Stdio {
        stdin: OwnedFd,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    /// A pty on the container's devpts: its controlling terminal and
    /// stdio; the master comes back in [`ExecProcess::pty`].
    Tty,
}

/// A running exec'd process.
#[derive(Debug)]
pub struct ExecProcess {
    control: ExecControl,
    exit: OwnedFd,
}

/// What a captured exec gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// `None` when the runner ended before it could report the exit.
    pub exit: Option<Exit>,
    /// The timeout passed and the process was killed.
    pub timed_out: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Some output went past the bound and was dropped.
    pub truncated: bool,
}

impl Exit {
    /// The code a shell reports: the exit code, or 128 + the signal.
    pub fn shell_code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
        }
    }
}

impl ExecProcess {
    /// The process's pid in the node's pid namespace.
    pub fn pid(&self) -> i32 {
        self.control.pid
    }

    /// The pty master, for [`ExecIo::Tty`].
    pub fn pty(&self) -> Option<BorrowedFd<'_>> {
        self.control.pty.as_ref().map(|p| p.as_fd())
    }

    /// Take the pty master out (to stream it); resizing then needs a dup.
    pub fn take_pty(&mut self) -> Option<OwnedFd> {
        self.control.pty.take()
    }

    /// Signal the process (through its pidfd: never another process).
    pub fn signal(&self, signal: Signal) -> Result<(), RunnerError> {
        self.control.signal(signal)
    }

    /// Set the terminal's size, for [`ExecIo::Tty`].
    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), RunnerError> {
        if self.control.pty.is_none() {
            return Err(RunnerError::Protocol {
                pid: self.control.pid,
                verb: "exec",
                id: self.control.id.clone(),
                message: "resize of a process without a pty (or whose pty was taken)".into(),
            });
        }
        self.control.resize(rows, cols)
    }

    /// A handle that signals and resizes the process while another task
    /// waits for it.
    pub fn control(&self) -> Result<ExecControl, RunnerError> {
        let c = &self.control;
        let dup = |fd: &OwnedFd| {
            fd.try_clone().map_err(|e| RunnerError::Protocol {
                pid: c.pid,
                verb: "exec",
                id: c.id.clone(),
                message: format!("dup of the process's fds: {e}"),
            })
        };
        Ok(ExecControl {
            pid: c.pid,
            id: c.id.clone(),
            pidfd: dup(&c.pidfd)?,
            pty: c.pty.as_ref().map(dup).transpose()?,
        })
    }

    /// Wait for the process to end; `None` when the runner ended first
    /// (the exit is unknown).
    pub async fn wait(self) -> Result<Option<Exit>, RunnerError> {
        let (pid, id) = (self.control.pid, self.control.id.clone());
        let io_error = |e: std::io::Error| RunnerError::Protocol {
            pid,
            verb: "exec",
            id: id.clone(),
            message: format!("reading the exit pipe: {e}"),
        };
        let mut pipe =
            tokio::net::unix::pipe::Receiver::from_owned_fd(self.exit).map_err(io_error)?;
        let mut bytes = Vec::new();
        pipe.read_to_end(&mut bytes).await.map_err(io_error)?;
        if bytes.is_empty() {
            return Ok(None);
        }
        super::protocol::decode::<Exit>(&bytes)
            .map(Some)
            .map_err(|e| RunnerError::Protocol {
                pid,
                verb: "exec",
                id,
                message: format!("garbled exit report: {e}"),
            })
    }
}

/// Signals and resizes an exec'd process (see [`ExecProcess::control`]).
#[derive(Debug)]
pub struct ExecControl {
    pid: i32,
    id: String,
    pidfd: OwnedFd,
    pty: Option<OwnedFd>,
}

impl ExecControl {
    pub fn signal(&self, signal: Signal) -> Result<(), RunnerError> {
        sys::pidfd_send_signal(self.pidfd.as_fd(), signal).map_err(|source| self.error(source))
    }

    /// Set the terminal's size; nothing to do without a pty.
    pub fn resize(&self, rows: u16, cols: u16) -> Result<(), RunnerError> {
        match &self.pty {
            Some(pty) => {
                sys::set_window_size(pty.as_fd(), rows, cols).map_err(|source| self.error(source))
            }
            None => Ok(()),
        }
    }

    fn error(&self, source: sys::RunnerSysError) -> RunnerError {
        RunnerError::Transport {
            pid: self.pid,
            verb: "exec",
            id: self.id.clone(),
            source,
        }
    }
}

impl Runner {
    /// Start `command` in its container (blocking call to the runner).
    pub fn exec(&self, command: &ExecCommand, io: ExecIo) -> Result<ExecProcess, RunnerError> {
        let tty = matches!(io, ExecIo::Tty);
        let request = Request::Exec {
            root: command.root.clone(),
            id: command.id.clone(),
            args: command.args.clone(),
            env: command.env.clone(),
            tty,
        };
        let fds: Vec<BorrowedFd<'_>> = match &io {
            ExecIo::Stdio {
                stdin,
                stdout,
                stderr,
            } => vec![stdin.as_fd(), stdout.as_fd(), stderr.as_fd()],
            ExecIo::Tty => Vec::new(),
        };
        let (response, fds) = self.call_with_fds(&request, &fds)?;
        let pid = match response {
            Response::Executing { pid } => pid,
            other => return Err(self.unexpected("exec", &command.id, &other)),
        };
        let wanted = if tty { 3 } else { 2 };
        let mut fds = fds.into_iter();
        match (fds.next(), fds.next(), fds.next(), fds.len() + wanted) {
            (Some(pidfd), Some(exit), pty, n) if n == wanted && pty.is_some() == tty => {
                Ok(ExecProcess {
                    control: ExecControl {
                        id: command.id.clone(),
                        pid,
                        pidfd,
                        pty,
                    },
                    exit,
                })
            }
            _ => Err(RunnerError::Protocol {
                pid: self.pid_for(&command.id),
                verb: "exec",
                id: command.id.clone(),
                message: format!("the answer did not carry the {wanted} fds it should"),
            }),
        }
    }

    /// [`Runner::exec`] from async code.
    pub async fn exec_async(
        &self,
        command: ExecCommand,
        io: ExecIo,
    ) -> Result<ExecProcess, RunnerError> {
        self.blocking("exec", command.id.clone(), move |r| r.exec(&command, io))
            .await
    }

    /// Run `command` with stdin from /dev/null and its stdout and stderr
    /// captured (each up to `limit` bytes; the rest is read and dropped);
    /// killed (SIGKILL) when `timeout` passes.
    pub async fn exec_capture(
        &self,
        command: ExecCommand,
        timeout: Duration,
        limit: usize,
    ) -> Result<ExecOutput, RunnerError> {
        let id = command.id.clone();
        let setup = |e: sys::RunnerSysError| RunnerError::Transport {
            pid: self.pid_for(&id),
            verb: "exec",
            id: id.clone(),
            source: e,
        };
        let null = sys::open_null().map_err(setup)?;
        let (out_read, out_write) = sys::pipe().map_err(setup)?;
        let (err_read, err_write) = sys::pipe().map_err(setup)?;
        let io = ExecIo::Stdio {
            stdin: null,
            stdout: out_write,
            stderr: err_write,
        };
        // The write ends went to the runner and are closed here once the
        // call returns: the pipes end when the process (and whatever it
        // left holding them) is gone.
        let process = self.exec_async(command, io).await?;
        let out = Captured::start(out_read, limit);
        let err = Captured::start(err_read, limit);
        let control = process.control()?;
        let waited = tokio::time::timeout(timeout, process.wait()).await;
        let (exit, timed_out) = match waited {
            Ok(exit) => (exit?, false),
            Err(_) => {
                // The process may have ended just now: ESRCH is fine.
                let _ = control.signal(Signal::SIGKILL);
                (None, true)
            }
        };
        // Output still in the pipes is read for a moment; a process the
        // command left behind holding them must not hold the caller.
        let grace = Duration::from_millis(if timed_out { 100 } else { 1000 });
        let (stdout, out_cut) = out.finish(grace).await;
        let (stderr, err_cut) = err.finish(grace).await;
        Ok(ExecOutput {
            exit,
            timed_out,
            stdout,
            stderr,
            truncated: out_cut || err_cut,
        })
    }
}

/// One pipe read into memory up to a bound by a task of its own.
struct Captured {
    buffer: Arc<Mutex<(Vec<u8>, bool)>>,
    task: tokio::task::JoinHandle<()>,
}

impl Captured {
    fn start(fd: OwnedFd, limit: usize) -> Captured {
        let buffer = Arc::new(Mutex::new((Vec::new(), false)));
        let shared = buffer.clone();
        let task = tokio::spawn(async move {
            let Ok(mut pipe) = tokio::net::unix::pipe::Receiver::from_owned_fd(fd) else {
                return;
            };
            let mut chunk = vec![0u8; 4096];
            while let Ok(n @ 1..) = pipe.read(&mut chunk).await {
                let mut b = shared.lock().unwrap_or_else(|p| p.into_inner());
                let room = limit.saturating_sub(b.0.len());
                b.0.extend_from_slice(&chunk[..n.min(room)]);
                b.1 |= n > room;
            }
        });
        Captured { buffer, task }
    }

    /// What was read, and whether some was dropped; waits up to `grace`
    /// for the pipe to end.
    async fn finish(mut self, grace: Duration) -> (Vec<u8>, bool) {
        if tokio::time::timeout(grace, &mut self.task).await.is_err() {
            self.task.abort();
        }
        let mut b = self.buffer.lock().unwrap_or_else(|p| p.into_inner());
        (std::mem::take(&mut b.0), b.1)
    }
}
