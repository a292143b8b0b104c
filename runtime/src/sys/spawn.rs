//! Creating and waiting for the container's init process: clone into new
//! namespaces, the socket pair the runtime and init talk over, the exec
//! fifo, and waitpid.

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("clone with flags {flags:?} failed: {errno}")]
    Clone { flags: CloneFlags, errno: Errno },
    #[error("socketpair for the init channel failed: {0}")]
    SocketPair(Errno),
    #[error("mkfifo {path}: {errno}")]
    Mkfifo { path: PathBuf, errno: Errno },
    #[error("waitpid {pid}: {errno}")]
    Wait { pid: i32, errno: Errno },
}

/// The stack the child starts on. Without CLONE_VM the child gets a
/// copy-on-write copy of the parent's memory, so this only reserves
/// address space; the child's setup runs on it until exec.
const CHILD_STACK: usize = 1 << 20;

/// Run `child` in a new process created with `flags` (namespaces to
/// create). Returns the child's pid as seen from the caller. The caller
/// must be single-threaded (the child is a copy of this one thread).
pub fn clone_child(
    flags: CloneFlags,
    child: Box<dyn FnMut() -> isize + '_>,
) -> Result<Pid, SpawnError> {
    let mut stack = vec![0u8; CHILD_STACK];
    // SAFETY: the runtime is single-threaded when it creates containers
    // (the CLI, or the node agent's pre-forked helper), so the child may
    // allocate and lock freely; SIGCHLD makes it a normal waitable child.
    unsafe { nix::sched::clone(child, &mut stack, flags, Some(libc::SIGCHLD)) }
        .map_err(|errno| SpawnError::Clone { flags, errno })
}

/// As [`clone_child`], with the child created directly inside the cgroup
/// v2 directory `cgroup` (clone3 with CLONE_INTO_CGROUP, Linux 5.7+):
/// nothing has to move it afterwards, and moving a process costs an RCU
/// grace period (see `cgroups::SelfJoin`). Returns the pid and whether the
/// child was placed; on a kernel without clone3 or CLONE_INTO_CGROUP it
/// falls back to [`clone_child`] and the caller places the child itself.
pub fn clone_child_into(
    flags: CloneFlags,
    cgroup: BorrowedFd<'_>,
    mut child: Box<dyn FnMut() -> isize + '_>,
) -> Result<(Pid, bool), SpawnError> {
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    // struct clone_args of <linux/sched.h>, up to `cgroup` (CLONE_ARGS_SIZE_VER2).
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    let args = CloneArgs {
        flags: flags.bits() as u64 | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: clone3 with a valid clone_args of the size we pass; no
    // CLONE_VM and no stack, so the child runs like a fork's, on a
    // copy-on-write copy of this single thread's memory and stack (the
    // caller is single-threaded, as for clone_child).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        0 => {
            let code = child();
            // SAFETY: the child ends here without running the parent's
            // destructors or atexit handlers, as after clone_child's.
            unsafe { libc::_exit(code as i32) }
        }
        pid if pid > 0 => Ok((Pid::from_raw(pid as i32), true)),
        _ => match Errno::last() {
            // No clone3 (before 5.3), or no CLONE_INTO_CGROUP (before 5.7).
            Errno::ENOSYS | Errno::E2BIG | Errno::EINVAL => {
                clone_child(flags, child).map(|pid| (pid, false))
            }
            errno => Err(SpawnError::Clone { flags, errno }),
        },
    }
}

/// A connected pair of SOCK_SEQPACKET sockets (message boundaries kept,
/// close-on-exec so the init's end closes itself when it execs).
pub fn seqpacket_pair() -> Result<(OwnedFd, OwnedFd), SpawnError> {
    socket::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(SpawnError::SocketPair)
}

/// In a cloned child, first thing: close the parent's end of the pair
/// made by [`seqpacket_pair`], which the clone copied into the child's fd
/// table. A child holding both ends never reads end of file when its
/// parent dies before `Go`, and waits forever (outside the cgroup it has
/// not joined yet, so no cgroup kill reaches it). close(2) is
/// async-signal-safe.
pub fn close_parent_end(fd: RawFd) {
    // SAFETY: `fd` is the parent's end, an OwnedFd of the parent copied
    // into this child by the clone; the child never drops that OwnedFd (it
    // ends with _exit or exec), so this is the copy's only close.
    unsafe { libc::close(fd) };
}

/// Make the exec fifo and return an O_PATH handle on it for the init.
///
/// The init inherits the handle (so it needs no search permission on the
/// state directory, which an init in a user namespace or with a non-root
/// user lacks) and reopens it for writing through /proc/self/fd after it
/// has switched to the container's user: mode 0622 lets any user write.
pub fn exec_fifo(path: &Path) -> Result<File, SpawnError> {
    let err = |errno| SpawnError::Mkfifo {
        path: path.into(),
        errno,
    };
    let mode = Mode::from_bits_truncate(0o622);
    nix::unistd::mkfifo(path, mode).map_err(err)?;
    // The umask may have taken the write bits: set the mode exactly.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o622))
        .map_err(|e| err(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))?;
    File::options()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| err(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    /// The shell's convention: the code, or 128 + the signal number.
    pub fn shell_code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
        }
    }
}

/// Wait for a child to end (retrying on EINTR).
pub fn wait_exit(pid: Pid) -> Result<Exit, SpawnError> {
    loop {
        match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(Exit::Code(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(Exit::Signal(sig as i32)),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(errno) => {
                return Err(SpawnError::Wait {
                    pid: pid.as_raw(),
                    errno,
                })
            }
        }
    }
}
