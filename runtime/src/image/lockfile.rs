//! Advisory locks between processes and threads: `flock(2)` on a lock file,
//! opened afresh for each lock so that two threads of one process exclude
//! each other too (flock locks belong to the open file, not the process).
//! Used by the image records (one writer at a time) and the snapshotter
//! (one unpacker per layer; creators shared, removers exclusive).

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
    _flock: Flock<File>,
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
        let arg = match mode {
            LockMode::Shared => FlockArg::LockShared,
            LockMode::Exclusive => FlockArg::LockExclusive,
        };
        let flock = Flock::lock(file, arg).map_err(|(_, errno)| err(errno.into()))?;
        Ok(FileLock { _flock: flock })
    }
}
