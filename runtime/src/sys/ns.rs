//! Namespace and process-identity syscalls: setns by path, sethostname,
//! the uid/gid switch, no_new_privs, rlimits, closing inherited fds.

use nix::errno::Errno;
use nix::sched::CloneFlags;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum NsError {
    #[error("open namespace {path}: {errno}")]
    Open { path: PathBuf, errno: Errno },
    #[error("setns {path} as {nstype:?}: {errno} (is it a namespace of that type?)")]
    Setns {
        path: PathBuf,
        nstype: CloneFlags,
        errno: Errno,
    },
    #[error("{op}({arg}): {errno}")]
    Call {
        op: &'static str,
        arg: String,
        errno: Errno,
    },
}

/// A namespace file opened ahead of entering it (paths under /proc/<pid>
/// stop resolving once the mount or pid namespace changes).
#[derive(Debug)]
pub struct NsFile {
    pub path: PathBuf,
    pub nstype: CloneFlags,
    fd: std::os::fd::OwnedFd,
}

impl NsFile {
    pub fn open(path: &Path, nstype: CloneFlags) -> Result<NsFile, NsError> {
        let fd = nix::fcntl::open(
            path,
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|errno| NsError::Open {
            path: path.into(),
            errno,
        })?;
        Ok(NsFile {
            path: path.into(),
            nstype,
            fd,
        })
    }

    /// Enter it (for a pid namespace: the caller's future children).
    pub fn enter(&self) -> Result<(), NsError> {
        nix::sched::setns(&self.fd, self.nstype).map_err(|errno| NsError::Setns {
            path: self.path.clone(),
            nstype: self.nstype,
            errno,
        })
    }
}

/// Enter the namespace at `path`; the kernel refuses (EINVAL) when it is
/// not of type `nstype`.
pub fn setns_path(path: &Path, nstype: CloneFlags) -> Result<(), NsError> {
    NsFile::open(path, nstype)?.enter()
}

fn call<T>(op: &'static str, arg: impl ToString, r: nix::Result<T>) -> Result<T, NsError> {
    r.map_err(|errno| NsError::Call {
        op,
        arg: arg.to_string(),
        errno,
    })
}

pub fn sethostname(name: &str) -> Result<(), NsError> {
    call("sethostname", name, nix::unistd::sethostname(name))
}

pub fn set_no_new_privs() -> Result<(), NsError> {
    call(
        "prctl",
        "PR_SET_NO_NEW_PRIVS",
        nix::sys::prctl::set_no_new_privs(),
    )
}

pub fn set_keep_caps(keep: bool) -> Result<(), NsError> {
    call(
        "prctl",
        format!("PR_SET_KEEPCAPS {keep}"),
        nix::sys::prctl::set_keepcaps(keep),
    )
}

pub fn set_groups(gids: &[u32]) -> Result<(), NsError> {
    let gids: Vec<nix::unistd::Gid> = gids
        .iter()
        .map(|g| nix::unistd::Gid::from_raw(*g))
        .collect();
    call(
        "setgroups",
        format!("{gids:?}"),
        nix::unistd::setgroups(&gids),
    )
}

pub fn set_ids(uid: u32, gid: u32) -> Result<(), NsError> {
    let g = nix::unistd::Gid::from_raw(gid);
    call("setresgid", gid, nix::unistd::setresgid(g, g, g))?;
    let u = nix::unistd::Uid::from_raw(uid);
    call("setresuid", uid, nix::unistd::setresuid(u, u, u))
}

pub fn set_rlimit(
    resource: nix::sys::resource::Resource,
    soft: u64,
    hard: u64,
) -> Result<(), NsError> {
    call(
        "setrlimit",
        format!("{resource:?} {soft} {hard}"),
        nix::sys::resource::setrlimit(resource, soft, hard),
    )
}

/// Put every signal back to its default action and unblock them all,
/// right before exec: ignored signals and the blocked mask survive exec,
/// and the runtime's own (Rust ignores SIGPIPE; a daemon may block
/// signals it reads from a signalfd) are no business of the container's
/// process. Best effort: a seccomp profile already loaded may deny the
/// calls, and that must not stop the exec.
pub fn reset_signals() {
    // struct sigaction as the kernel takes it (x86_64): handler, flags,
    // restorer, mask. The raw call reaches the C library's reserved
    // real-time signals too, which its wrapper refuses.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for signal in 1..=64 {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        // SAFETY: rt_sigaction with a valid struct of the size the kernel
        // expects for this architecture and no old-action pointer; it
        // only changes this process's signal dispositions.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signal,
                &default as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                std::mem::size_of::<u64>(),
            )
        };
    }
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
}

/// Mark every fd from `first` up close-on-exec, so nothing the runtime held
/// leaks into the container's process.
pub fn cloexec_from(first: u32) -> Result<(), NsError> {
    // SAFETY: close_range only changes fd flags; no memory is involved.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r == 0 {
        return Ok(());
    }
    // Kernels before 5.11: walk /proc/self/fd.
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .map_err(|e| NsError::Call {
            op: "list",
            arg: "/proc/self/fd".into(),
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
        })?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd >= first as i32)
        .collect();
    for fd in fds {
        // SAFETY: F_SETFD only changes a flag of an fd number; a stale one
        // (the listing's own) fails with EBADF, which is fine.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}
