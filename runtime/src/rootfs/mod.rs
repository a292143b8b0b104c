//! The container's root filesystem, built by its init inside a new mount
//! namespace: mount propagation cut from the host, the rootfs bound onto
//! itself, the spec's mounts placed strictly inside it (openat2 with
//! RESOLVE_IN_ROOT, then mounting through the fd, so a symlink cannot send a
//! mount outside), default devices, pivot_root; then masked paths,
//! read-only paths and the read-only root.

mod devices;
mod mounts;
mod options;

pub use options::{parse as parse_mount_options, MountOptions};

use crate::sys::mount::{self as sys, MountError};
use nix::mount::{MntFlags, MsFlags};
use oci_spec::runtime::Spec;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error("mount #{index} ({destination}): {message}")]
    Spec {
        index: usize,
        destination: PathBuf,
        message: String,
    },
    #[error("rootfs {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Choices the spec does not carry.
#[derive(Debug, Clone, Default)]
pub struct PrepareOptions {
    /// chroot instead of pivot_root (rootfs on ramfs).
    pub no_pivot: bool,
}

/// Everything up to and including pivot_root. The caller is the init, in
/// its own mount namespace.
pub fn prepare(spec: &Spec, rootfs: &Path, opts: &PrepareOptions) -> Result<(), RootfsError> {
    let linux = spec.linux().clone().unwrap_or_default();
    let propagation = match linux.rootfs_propagation().as_deref() {
        Some("shared") => MsFlags::MS_SHARED,
        Some("private") => MsFlags::MS_PRIVATE,
        Some("unbindable") => MsFlags::MS_UNBINDABLE,
        _ => MsFlags::MS_SLAVE,
    };
    // Nothing mounted from here on may reach the host's mount table.
    sys::set_propagation(Path::new("/"), propagation | MsFlags::MS_REC)?;
    sys::mount(
        Some(rootfs),
        rootfs,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    let root_fd = sys::open_dir(rootfs)?;
    for (index, m) in spec.mounts().iter().flatten().enumerate() {
        mounts::mount_one(&root_fd, rootfs, m).map_err(|message| RootfsError::Spec {
            index,
            destination: m.destination().clone(),
            message,
        })?;
    }
    devices::create(
        &root_fd,
        rootfs,
        linux.devices().as_deref().unwrap_or_default(),
    )?;
    if opts.no_pivot {
        sys::chroot_here(rootfs)?;
    } else {
        pivot(rootfs)?;
    }
    Ok(())
}

fn pivot(rootfs: &Path) -> Result<(), RootfsError> {
    sys::pivot_root_here(rootfs)?;
    // The old root is now stacked under "/": cut its propagation so the
    // detach does not reach the host, then drop it.
    sys::set_propagation(Path::new("."), MsFlags::MS_SLAVE | MsFlags::MS_REC)?;
    sys::umount(Path::new("."), MntFlags::MNT_DETACH)?;
    nix::unistd::chdir("/").map_err(|errno| MountError::Path {
        op: "chdir",
        path: "/".into(),
        errno,
    })?;
    Ok(())
}

/// After pivot_root: masked paths, read-only paths, the read-only root.
pub fn finish(spec: &Spec) -> Result<(), RootfsError> {
    let linux = spec.linux().clone().unwrap_or_default();
    for p in linux.masked_paths().iter().flatten() {
        mask(Path::new(p))?;
    }
    for p in linux.readonly_paths().iter().flatten() {
        make_readonly(Path::new(p))?;
    }
    if spec
        .root()
        .as_ref()
        .is_some_and(|r| r.readonly().unwrap_or(false))
    {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        sys::mount(None, Path::new("/"), None, flags, None)?;
    }
    Ok(())
}

/// Hide a path: /dev/null over a file, an empty read-only tmpfs over a dir.
fn mask(path: &Path) -> Result<(), RootfsError> {
    match std::fs::metadata(path) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => Ok(sys::mount(
            Some(Path::new("tmpfs")),
            path,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            None,
        )?),
        Ok(_) => Ok(sys::mount(
            Some(Path::new("/dev/null")),
            path,
            None,
            MsFlags::MS_BIND,
            None,
        )?),
    }
}

fn make_readonly(path: &Path) -> Result<(), RootfsError> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    sys::mount(
        Some(path),
        path,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )?;
    let flags = MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_RDONLY
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
        | MsFlags::MS_NOEXEC;
    Ok(sys::mount(Some(path), path, None, flags, None)?)
}
