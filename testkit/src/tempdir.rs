//! [`TempDir`]: a uniquely named directory removed recursively on drop.
//! Before removing it, the guard lazily unmounts every mount point found at
//! or below it in /proc/self/mountinfo, deepest first, and it refuses to
//! remove anything while a mount remains: a recursive delete through a
//! forgotten bind mount would delete the files it exposes.

use crate::{mountinfo, names, report, sys, Error};
use std::path::{Path, PathBuf};

const DEFAULT_PARENT: &str = "/tmp";

/// A directory owned by a test, removed (mounts first) on drop.
#[derive(Debug)]
#[must_use = "the directory is removed when the guard is dropped"]
pub struct TempDir {
    path: PathBuf,
    armed: bool,
}

impl TempDir {
    /// Create `/tmp/<prefix>-<pid>-<n>`.
    pub fn new(prefix: &str) -> Result<TempDir, Error> {
        TempDir::new_in(Path::new(DEFAULT_PARENT), prefix)
    }

    /// Create `<parent>/<prefix>-<pid>-<n>`; `parent` must exist.
    pub fn new_in(parent: &Path, prefix: &str) -> Result<TempDir, Error> {
        // Canonical, so that it compares equal to mountinfo's paths.
        let parent = parent
            .canonicalize()
            .map_err(|e| Error::io("resolve", parent, e))?;
        let path = parent.join(names::unique_name_long(prefix));
        std::fs::create_dir(&path).map_err(|e| Error::io("mkdir", &path, e))?;
        Ok(TempDir { path, armed: true })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `path()` joined with `child`.
    pub fn join(&self, child: impl AsRef<Path>) -> PathBuf {
        self.path.join(child)
    }

    /// Unmount what is mounted inside and remove the directory now.
    pub fn cleanup(mut self) -> Result<(), Error> {
        self.release()
    }

    fn release(&mut self) -> Result<(), Error> {
        if !std::mem::replace(&mut self.armed, false) {
            return Ok(());
        }
        unmount_all_under(&self.path)?;
        match std::fs::remove_dir_all(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io("remove", &self.path, e))
            }
            _ => Ok(()),
        }
    }
}

/// Detach every mount at or below `dir`, deepest first, in passes: a mount
/// stacked on a parent hides the ones below it until it is gone. Stops with
/// an error when a pass makes no progress.
fn unmount_all_under(dir: &Path) -> Result<(), Error> {
    loop {
        let mounted = mountinfo::mount_points_under(dir)?;
        if mounted.is_empty() {
            return Ok(());
        }
        let mut progress = false;
        for target in &mounted {
            progress |= sys::unmount_detach(target)?;
        }
        if !progress {
            return Err(Error::StillMounted {
                path: dir.into(),
                mounts: mounted,
            });
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(err) = self.release() {
            report::drop_failed("TempDir", &err);
        }
    }
}
