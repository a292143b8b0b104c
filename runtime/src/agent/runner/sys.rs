//! The syscalls the runner needs, behind named wrappers: fork, waiting
//! for children (with and without reaping them), pidfds, packet I/O, and swapping the process's
//! stdio for a container's while its init is cloned.

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::{ForkResult, Pid};
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RunnerSysError {
    #[error("{op}: {errno}")]
    Call { op: &'static str, errno: Errno },
    #[error("{op} {path}: {source}")]
    File {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn call(op: &'static str) -> impl FnOnce(Errno) -> RunnerSysError {
    move |errno| RunnerSysError::Call { op, errno }
}

/// fork(2). The child is a copy of the calling thread only: call it
/// before the process starts threads (see [`super::Runner::start`]).
pub fn fork() -> Result<ForkResult, RunnerSysError> {
    // SAFETY: the child runs only the runner's loop, which takes no lock
    // another thread of the parent could have held at fork time except
    // malloc's, which glibc resets in the child.
    unsafe { nix::unistd::fork() }.map_err(call("fork"))
}

/// Close every fd but stdio and those in `keep`: the runner lives as long
/// as the agent and must not hold a copy of whatever its parent had open
/// (a pipe's write end, a listening socket); a logger keeps only its pipe
/// and file.
pub fn close_fds_except(keep: &[RawFd]) -> Result<(), RunnerSysError> {
    let close_range = |first: RawFd, last: RawFd| {
        if first > last {
            return Ok(());
        }
        // SAFETY: close_range only closes fd numbers of this process; the
        // caller owns nothing in that range but the fds it drops here.
        let r = unsafe { libc::syscall(libc::SYS_close_range, first as u32, last as u32, 0) };
        if r == 0 {
            Ok(())
        } else {
            Err(RunnerSysError::Call {
                op: "close_range",
                errno: Errno::last(),
            })
        }
    };
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|fd| *fd > 2).collect();
    keep.sort_unstable();
    let mut first = 3;
    for fd in keep {
        close_range(first, fd - 1)?;
        first = fd + 1;
    }
    close_range(first, RawFd::MAX)
}

/// Run `body` in a process the runner is not the parent of (a grandchild,
/// its parent gone at once, re-parented to init), in a session of its own,
/// stdio on /dev/null and no fd but `keep`: it outlives the runner and the
/// agent. The runner waits only for the short-lived child.
pub fn spawn_detached(
    name: &std::ffi::CStr,
    keep: &[RawFd],
    body: impl FnOnce(),
) -> Result<(), RunnerSysError> {
    match fork()? {
        ForkResult::Parent { child } => {
            crate::sys::spawn::wait_exit(child).map_err(|_| RunnerSysError::Call {
                op: "waitpid (logger's parent)",
                errno: Errno::ECHILD,
            })?;
            Ok(())
        }
        ForkResult::Child => {
            let ok = nix::unistd::setsid().is_ok()
                && matches!(fork(), Ok(ForkResult::Child))
                && close_fds_except(keep).is_ok()
                && null_stdio().is_ok();
            if ok {
                set_name(name);
                body();
            }
            // SAFETY: leave without running the runner's destructors or
            // atexit handlers in this copy of it.
            unsafe { libc::_exit(0) }
        }
    }
}

/// fds 0-2 on /dev/null.
pub fn null_stdio() -> Result<(), RunnerSysError> {
    let null = open_null()?;
    for target in 0..=2 {
        dup2(null.as_fd(), target)?;
    }
    Ok(())
}

/// Name the process (`comm`, as ps shows it).
pub fn set_name(name: &std::ffi::CStr) {
    let _ = nix::sys::prctl::set_name(name);
}

/// A pidfd for `pid`: readable once the process has exited.
pub fn pidfd_open(pid: Pid) -> Result<OwnedFd, RunnerSysError> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd (with
    // close-on-exec set) or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(RunnerSysError::Call {
            op: "pidfd_open",
            errno: Errno::last(),
        });
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Wait until one of `fds` is readable (or hung up); returns which ones.
/// EINTR counts as "none ready".
pub fn poll_readable(fds: &[BorrowedFd<'_>]) -> Result<Vec<bool>, RunnerSysError> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut pfds: Vec<PollFd> = fds
        .iter()
        .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
        .collect();
    match poll(&mut pfds, PollTimeout::NONE) {
        Ok(_) => Ok(pfds
            .iter()
            .map(|p| p.revents().is_some_and(|r| !r.is_empty()))
            .collect()),
        Err(Errno::EINTR) => Ok(vec![false; fds.len()]),
        Err(errno) => Err(RunnerSysError::Call { op: "poll", errno }),
    }
}

/// Non-blocking waitpid of one child: its exit, or `None` while it runs.
pub fn try_wait(pid: Pid) -> Result<Option<super::protocol::Exit>, RunnerSysError> {
    use super::protocol::Exit;
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    loop {
        return match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => Ok(Some(Exit::Code(code))),
            Ok(WaitStatus::Signaled(_, sig, _)) => Ok(Some(Exit::Signal(sig as i32))),
            Ok(_) => Ok(None),
            Err(Errno::EINTR) => continue,
            Err(errno) => Err(RunnerSysError::Call {
                op: "waitpid",
                errno,
            }),
        };
    }
}

/// The exit of a child that has ended, left unreaped (WNOWAIT): the
/// zombie keeps its pid, so the exit can be recorded before anyone sees
/// the process gone; [`try_wait`] collects it after. `pid` `None`: any
/// child. With `block`, wait until one ends. `None` while they all run;
/// ECHILD when there is no such child.
pub fn peek_exit(
    pid: Option<Pid>,
    block: bool,
) -> Result<Option<(Pid, super::protocol::Exit)>, RunnerSysError> {
    use super::protocol::Exit;
    use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
    let id = || match pid {
        Some(pid) => Id::Pid(pid),
        None => Id::All,
    };
    let mut flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
    if !block {
        flags |= WaitPidFlag::WNOHANG;
    }
    loop {
        return match waitid(id(), flags) {
            Ok(WaitStatus::Exited(pid, code)) => Ok(Some((pid, Exit::Code(code)))),
            Ok(WaitStatus::Signaled(pid, sig, _)) => Ok(Some((pid, Exit::Signal(sig as i32)))),
            Ok(_) => Ok(None),
            Err(Errno::EINTR) => continue,
            Err(errno) => Err(RunnerSysError::Call {
                op: "waitid",
                errno,
            }),
        };
    }
}

/// The most fds one packet carries (stdin, stdout, stderr one way; a
/// pidfd, the exit pipe and a pty master the other).
pub const MAX_FDS: usize = 4;

/// Send one packet, with `fds` attached (SCM_RIGHTS) when there are any.
pub fn send_packet(
    fd: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
) -> Result<(), RunnerSysError> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let rights = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage] = if raw.is_empty() { &[] } else { &rights };
    let iov = [std::io::IoSlice::new(bytes)];
    loop {
        return match sendmsg::<()>(fd.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(n) if n == bytes.len() => Ok(()),
            Ok(_) => Err(RunnerSysError::Call {
                op: "send (short packet)",
                errno: Errno::EMSGSIZE,
            }),
            Err(Errno::EINTR) => continue,
            Err(errno) => Err(RunnerSysError::Call { op: "send", errno }),
        };
    }
}

/// Receive one packet into `buf`, with the fds attached to it (received
/// close-on-exec); `None` at end of file (peer closed).
pub fn recv_packet(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
) -> Result<Option<(usize, Vec<OwnedFd>)>, RunnerSysError> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let len = buf.len();
    let mut iov = [std::io::IoSliceMut::new(buf)];
    loop {
        let msg = match recvmsg::<()>(
            fd.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_TRUNC | MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => msg,
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(RunnerSysError::Call { op: "recv", errno }),
        };
        let mut fds = Vec::new();
        for cmsg in msg.cmsgs().map_err(|errno| RunnerSysError::Call {
            op: "recv (control message)",
            errno,
        })? {
            if let ControlMessageOwned::ScmRights(raw) = cmsg {
                // SAFETY: the kernel installed these fds in this process
                // for this message; nothing else owns them.
                fds.extend(raw.into_iter().map(|r| unsafe { OwnedFd::from_raw_fd(r) }));
            }
        }
        if msg.flags.contains(MsgFlags::MSG_CTRUNC) {
            return Err(RunnerSysError::Call {
                op: "recv (more fds than a packet may carry)",
                errno: Errno::EMSGSIZE,
            });
        }
        return match msg.bytes {
            0 if fds.is_empty() => Ok(None),
            n if n > len => Err(RunnerSysError::Call {
                op: "recv (packet larger than the limit)",
                errno: Errno::EMSGSIZE,
            }),
            n => Ok(Some((n, fds))),
        };
    }
}

/// A pipe, both ends close-on-exec: (read, write).
pub fn pipe() -> Result<(OwnedFd, OwnedFd), RunnerSysError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(call("pipe2"))
}

/// Write all of `bytes` to a blocking fd.
pub fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> Result<(), RunnerSysError> {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(RunnerSysError::Call { op: "write", errno }),
        }
    }
    Ok(())
}

/// Send `signal` to the process behind `pidfd` (no pid reuse possible).
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: Signal) -> Result<(), RunnerSysError> {
    // SAFETY: pidfd_send_signal takes an fd, a signal number, a null
    // siginfo and flags 0; no memory is passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal as libc::c_int,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        return Err(RunnerSysError::Call {
            op: "pidfd_send_signal",
            errno: Errno::last(),
        });
    }
    Ok(())
}

/// Set a terminal's window size (TIOCSWINSZ on the pty master).
pub fn set_window_size(pty: BorrowedFd<'_>, rows: u16, cols: u16) -> Result<(), RunnerSysError> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which points
    // at a live local for the whole call.
    let r = unsafe { libc::ioctl(pty.as_raw_fd(), libc::TIOCSWINSZ, &size) };
    if r < 0 {
        return Err(RunnerSysError::Call {
            op: "ioctl(TIOCSWINSZ)",
            errno: Errno::last(),
        });
    }
    Ok(())
}

/// The process's stdio replaced by a container's while it lives: the
/// runner is single-threaded, and the init it clones inherits fds 0-2,
/// which its process keeps across exec. Dropping puts the runner's own
/// stdio back.
#[derive(Debug)]
pub struct StdioSwap {
    saved: Vec<(RawFd, OwnedFd)>,
}

impl StdioSwap {
    /// fds 0-2 replaced by these (an exec's pipes or the caller's own).
    pub fn to_fds(fds: [BorrowedFd<'_>; 3]) -> Result<StdioSwap, RunnerSysError> {
        let mut swap = StdioSwap { saved: Vec::new() };
        for (target, file) in (0..).zip(fds) {
            swap.replace(target, file)?;
        }
        Ok(swap)
    }

    /// Keep the current fd `target` and put `file` in its place.
    fn replace(&mut self, target: RawFd, file: BorrowedFd<'_>) -> Result<(), RunnerSysError> {
        // SAFETY: fds 0-2 are open for the life of the process; the
        // borrow ends before the dup2 below replaces it.
        let current = unsafe { BorrowedFd::borrow_raw(target) };
        let saved = current
            .try_clone_to_owned()
            .map_err(|source| RunnerSysError::File {
                op: "dup stdio",
                path: format!("fd {target}").into(),
                source,
            })?;
        self.saved.push((target, saved));
        dup2(file, target)
    }

    /// stdin from /dev/null, stdout and stderr appended to the files.
    pub fn to_files(stdout: &Path, stderr: &Path) -> Result<StdioSwap, RunnerSysError> {
        let null = open(Path::new("/dev/null"), false)?;
        let out = open(stdout, true)?;
        let err = if stderr == stdout {
            out.try_clone().map_err(|source| RunnerSysError::File {
                op: "dup",
                path: stderr.into(),
                source,
            })?
        } else {
            open(stderr, true)?
        };
        StdioSwap::to_fds([null.as_fd(), out.as_fd(), err.as_fd()])
    }
}

impl Drop for StdioSwap {
    fn drop(&mut self) {
        for (target, saved) in self.saved.drain(..) {
            let _ = dup2(saved.as_fd(), target);
        }
    }
}

fn dup2(from: BorrowedFd<'_>, to: RawFd) -> Result<(), RunnerSysError> {
    // SAFETY: dup2 onto one of the standard fds, which the process owns
    // and which stay open (replaced atomically); no memory is passed.
    let r = unsafe { libc::dup2(from.as_raw_fd(), to) };
    if r < 0 {
        return Err(RunnerSysError::Call {
            op: "dup2",
            errno: Errno::last(),
        });
    }
    Ok(())
}

fn open(path: &Path, append: bool) -> Result<File, RunnerSysError> {
    let mut opts = std::fs::OpenOptions::new();
    if append {
        opts.append(true).create(true);
    } else {
        opts.read(true);
    }
    opts.open(path).map_err(|source| RunnerSysError::File {
        op: "open",
        path: path.into(),
        source,
    })
}

/// /dev/null for reading and writing, close-on-exec.
pub fn open_null() -> Result<OwnedFd, RunnerSysError> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|source| RunnerSysError::File {
            op: "open",
            path: "/dev/null".into(),
            source,
        })
}
