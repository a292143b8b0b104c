//! [`Netns`]: an open network namespace file (a pinned `/run/netns/<name>`
//! or a `/proc/<pid>/ns/net`), and the one way netplug works inside a
//! namespace: a short-lived thread joins it and runs a closure. The calling
//! thread never changes namespace, so the node agent's threads (tokio
//! workers among them) stay where they are. Sockets opened on that thread
//! belong to the namespace for their whole life, which is how netplug talks
//! netlink to a pod: see [`crate::netlink::Netlink::open_in`].

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
        Netns::open(Path::new("/proc/thread-self/ns/net"))
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

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}
