//! [`Netns`]: an open network namespace file (a pinned `/run/netns/<name>`
//! or a `/proc/<pid>/ns/net`), and the two ways netplug works inside a
//! namespace. [`Netns::run`]: a short-lived thread joins it and runs a
//! closure, the calling thread never changes namespace. [`Netns::enter`]:
//! the calling thread itself joins it for a short closure and goes back
//! before returning (or unwinding); it costs two setns calls instead of a
//! thread, whose start waits for a free CPU on a busy node. Sockets opened
//! inside belong to the namespace for their whole life, which is how
//! netplug talks netlink to a pod: see [`crate::netlink::Netlink::open_in`].

use nix::sched::CloneFlags;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

/// What went wrong with a network namespace, and on which file.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("opening network namespace {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("joining network namespace {path} (setns): {errno}; is it a network namespace file such as /run/netns/<name> or /proc/<pid>/ns/net?")]
    Setns { path: PathBuf, errno: nix::Error },
    #[error("opening the calling thread's network namespace {path}: {source}")]
    Current {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the thread working in network namespace {path} panicked")]
    ThreadPanicked { path: PathBuf },
}

/// An open network namespace.
#[derive(Debug)]
pub struct Netns {
    file: File,
    path: PathBuf,
}

impl Netns {
    /// Open the namespace file at `path`.
    pub fn open(path: &Path) -> Result<Netns, NetnsError> {
        let file = File::open(path).map_err(|source| NetnsError::Open {
            path: path.into(),
            source,
        })?;
        Ok(Netns {
            file,
            path: path.into(),
        })
    }

    /// The namespace of the calling thread.
    pub fn current() -> Result<Netns, NetnsError> {
        Netns::open(Path::new(THREAD_NETNS))
    }

    /// The path it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `f` on a new thread that has joined this namespace and return
    /// its result; the thread ends with `f`.
    pub fn run<T, F>(&self, f: F) -> Result<T, NetnsError>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    nix::sched::setns(&self.file, CloneFlags::CLONE_NEWNET).map_err(|errno| {
                        NetnsError::Setns {
                            path: self.path.clone(),
                            errno,
                        }
                    })?;
                    Ok(f())
                })
                .join()
        })
        .unwrap_or_else(|_| {
            Err(NetnsError::ThreadPanicked {
                path: self.path.clone(),
            })
        })
    }
}

impl Netns {
    /// Run `f` with the calling thread in this namespace and return its
    /// result; the thread is back in its own namespace when this returns,
    /// and also when `f` panics. Keep `f` short and free of blocking: the
    /// thread is in the other namespace while it runs.
    ///
    /// If the thread cannot go back (setns refused on the namespace it
    /// came from, which it was just in) the process aborts: a thread of the
    /// node agent left in a pod's namespace would open its later sockets
    /// there.
    pub fn enter<T>(&self, f: impl FnOnce() -> T) -> Result<T, NetnsError> {
        let home_path = Path::new(THREAD_NETNS);
        let home = File::open(home_path).map_err(|source| NetnsError::Current {
            path: home_path.into(),
            source,
        })?;
        nix::sched::setns(&self.file, CloneFlags::CLONE_NEWNET).map_err(|errno| {
            NetnsError::Setns {
                path: self.path.clone(),
                errno,
            }
        })?;
        let _back = GoBack { home };
        Ok(f())
    }
}

/// The calling thread's network namespace file.
const THREAD_NETNS: &str = "/proc/thread-self/ns/net";

/// Puts the thread back into `home` when dropped (see [`Netns::enter`]).
struct GoBack {
    home: File,
}

impl Drop for GoBack {
    fn drop(&mut self) {
        if let Err(errno) = nix::sched::setns(&self.home, CloneFlags::CLONE_NEWNET) {
            eprintln!(
                "netplug: cannot return this thread to its network namespace ({errno}); aborting rather than work in the wrong one"
            );
            std::process::abort();
        }
    }
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}
