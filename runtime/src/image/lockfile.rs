//! Advisory locks between processes and threads: `flock(2)` on a lock file,
//! opened afresh for each lock so that two threads of one process exclude
//! each other too (flock locks belong to the open file, not the process).
//! Used by the image records (one writer at a time) and the snapshotter
//! (one unpacker per layer; creators shared, removers exclusive), and by
//! registry pulls on the partial file of each download (one writer per
//! blob; garbage collection removes only partial files nobody holds).

use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A lock that could not be taken.
#[derive(Debug, thiserror::Error)]
#[error("lock {path}: {source}")]
pub struct LockError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// Shared (many holders) or exclusive (one holder).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    Shared,
    Exclusive,
}

/// A held lock; released when dropped.
#[derive(Debug)]
#[must_use = "the lock is released when the guard is dropped"]
pub struct FileLock {
    flock: Flock<File>,
}

impl FileLock {
    /// Block until `path` (created if missing) is locked in `mode`.
    pub fn acquire(path: &Path, mode: LockMode) -> Result<FileLock, LockError> {
        let err = |source| LockError {
            path: path.into(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(err)?;
        let lock = FileLock::lock_file(file, path, mode, true)?;
        Ok(lock.expect("a blocking flock returns only when held"))
    }

    /// Lock the open `file` (at `path`, for errors) in `mode`. With `wait`
    /// false, `Ok(None)` when another open file holds a conflicting lock.
    pub fn lock_file(
        file: File,
        path: &Path,
        mode: LockMode,
        wait: bool,
    ) -> Result<Option<FileLock>, LockError> {
        let arg = match (mode, wait) {
            (LockMode::Shared, true) => FlockArg::LockShared,
            (LockMode::Exclusive, true) => FlockArg::LockExclusive,
            (LockMode::Shared, false) => FlockArg::LockSharedNonblock,
            (LockMode::Exclusive, false) => FlockArg::LockExclusiveNonblock,
        };
        match Flock::lock(file, arg) {
            Ok(flock) => Ok(Some(FileLock { flock })),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) if !wait => Ok(None),
            Err((_, errno)) => Err(LockError {
                path: path.into(),
                source: errno.into(),
            }),
        }
    }

    /// The locked file, for reading and writing through it.
    pub fn file(&self) -> &File {
        &self.flock
    }
}
