//! [`MountGuard`]: a mount point that is lazily unmounted (MNT_DETACH) when
//! the guard goes out of scope, so a test that panics between mount and
//! unmount leaves no mount on the host. It does not remove the directory.

use crate::{report, sys, Error};
use std::path::{Path, PathBuf};

/// Unmounts its path with MNT_DETACH on drop.
#[derive(Debug)]
#[must_use = "the mount is removed when the guard is dropped"]
pub struct MountGuard {
    target: PathBuf,
    armed: bool,
}

impl MountGuard {
    /// Guard a mount that is already at `target`.
    pub fn adopt(target: impl Into<PathBuf>) -> MountGuard {
        MountGuard {
            target: target.into(),
            armed: true,
        }
    }

    /// Mount a 1 MiB tmpfs on `target` and guard it.
    pub fn tmpfs(target: impl Into<PathBuf>) -> Result<MountGuard, Error> {
        let target = target.into();
        sys::mount_tmpfs(&target)?;
        Ok(MountGuard::adopt(target))
    }

    /// Bind-mount `from` onto `target` and guard it.
    pub fn bind(from: &Path, target: impl Into<PathBuf>) -> Result<MountGuard, Error> {
        let target = target.into();
        sys::mount_bind(from, &target)?;
        Ok(MountGuard::adopt(target))
    }

    /// The guarded mount point.
    pub fn path(&self) -> &Path {
        &self.target
    }

    /// Unmount now, returning whether that worked. A path with nothing
    /// mounted on it any more is not an error.
    pub fn cleanup(mut self) -> Result<(), Error> {
        self.release()
    }

    fn release(&mut self) -> Result<(), Error> {
        if !std::mem::replace(&mut self.armed, false) {
            return Ok(());
        }
        sys::unmount_detach(&self.target).map(drop)
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        if let Err(err) = self.release() {
            report::drop_failed("MountGuard", &err);
        }
    }
}
