//! The one error type of the testkit. Each variant names the operation that
//! failed and what it failed on (path, pid, name), so a failed cleanup in a
//! test log says exactly what was left on the host.

use nix::errno::Errno;
use std::path::PathBuf;

/// A boxed error from a user-supplied cleanup closure.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong while making or removing a test resource.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file system call (`op`: "mkdir", "read", "write", ...) failed.
    #[error("{op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// mount(2) failed.
    #[error("mount {fstype} {from} on {target} ({flags})")]
    Mount {
        from: PathBuf,
        target: PathBuf,
        fstype: &'static str,
        flags: &'static str,
        #[source]
        errno: Errno,
    },
    /// umount2(2) with MNT_DETACH failed.
    #[error("unmount {target}")]
    Unmount {
        target: PathBuf,
        #[source]
        errno: Errno,
    },
    /// Mount points were still present under a directory that was about to
    /// be removed recursively; removing it would have deleted what they hold.
    #[error("still mounted under {path}: {mounts:?}; refusing to remove it")]
    StillMounted { path: PathBuf, mounts: Vec<PathBuf> },
    /// Locking a directory with flock(2) failed.
    #[error("lock {path}")]
    Lock {
        path: PathBuf,
        #[source]
        errno: Errno,
    },
    /// unshare(CLONE_NEWNET) failed while creating network namespace `name`.
    #[error("unshare a network namespace for {name}")]
    Unshare {
        name: String,
        #[source]
        errno: Errno,
    },
    /// setns(2) into the namespace pinned at `path` failed.
    #[error("setns into {path}")]
    Setns {
        path: PathBuf,
        #[source]
        errno: Errno,
    },
    /// A helper thread doing `what` panicked.
    #[error("helper thread panicked while {what}")]
    ThreadPanicked { what: String },
    /// `path` is not strictly below a cgroup mount point; killing its
    /// processes could take down the host.
    #[error("{path} is not a cgroup below a cgroup mount point")]
    NotACgroup { path: PathBuf },
    /// The test process itself is in the cgroup it was asked to empty.
    #[error("cgroup {path} holds this test process (pid {pid}); refusing to kill it")]
    OwnCgroup { path: PathBuf, pid: u32 },
    /// Processes were still in a cgroup after SIGKILL and the wait.
    #[error("cgroup {path} still has pids {pids:?} after SIGKILL")]
    CgroupBusy { path: PathBuf, pids: Vec<i32> },
    /// kill(2) failed.
    #[error("kill pid {pid} with {signal}")]
    Kill {
        pid: i32,
        signal: &'static str,
        #[source]
        errno: Errno,
    },
    /// waitpid(2) failed.
    #[error("reap pid {pid}")]
    Wait {
        pid: i32,
        #[source]
        errno: Errno,
    },
    /// The host has neither a cgroup v1 controller nor a cgroup2 mount.
    #[error("no cgroup file system is mounted (looked in {path})")]
    NoCgroups { path: PathBuf },
    /// A closure given to [`crate::Cleanup`] failed.
    #[error("cleanup {what}")]
    Cleanup {
        what: String,
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// An [`Error::Io`] for `op` on `path`.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
