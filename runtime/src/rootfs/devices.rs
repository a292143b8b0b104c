//! Device nodes in the container's /dev: the defaults every container gets
//! (null, zero, full, random, urandom, tty), the spec's own, and the usual
//! /dev symlinks. Nodes are made with mknod, or bind-mounted from the host
//! where mknod is not permitted (inside a user namespace).

use super::mounts::ensure_path;
use crate::sys::mount::{self as sys, MountError};
use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sys::stat::SFlag;
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const DEFAULTS: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

pub fn create(root_fd: &OwnedFd, rootfs: &Path, extra: &[LinuxDevice]) -> Result<(), MountError> {
    let dev = ensure_path(root_fd, rootfs, Path::new("/dev"), false)?;
    let dev = sys::fd_path(&dev);
    for (name, major, minor) in DEFAULTS {
        node(
            &dev.join(name),
            SFlag::S_IFCHR,
            0o666,
            major,
            minor,
            &PathBuf::from("/dev").join(name),
        )?;
    }
    for d in extra {
        let rel = d
            .path()
            .strip_prefix("/dev")
            .map_err(|_| MountError::Path {
                op: "device outside /dev",
                path: d.path().clone(),
                errno: Errno::EINVAL,
            })?;
        let kind = match d.typ() {
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            _ => SFlag::S_IFCHR,
        };
        let mode = d.file_mode().unwrap_or(0o666);
        node(
            &dev.join(rel),
            kind,
            mode,
            d.major() as u64,
            d.minor() as u64,
            d.path(),
        )?;
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        if std::fs::symlink_metadata(dev.join(link)).is_err() {
            sys::symlink(Path::new(target), &dev.join(link))?;
        }
    }
    Ok(())
}

fn node(
    path: &Path,
    kind: SFlag,
    mode: u32,
    major: u64,
    minor: u64,
    host: &Path,
) -> Result<(), MountError> {
    let _ = std::fs::remove_file(path);
    match sys::mknod(path, kind, mode, major, minor) {
        Ok(()) => {
            // mknod honours the umask; the spec's mode is what counts.
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
            Ok(())
        }
        Err(MountError::Mknod {
            errno: Errno::EPERM,
            ..
        }) => {
            std::fs::File::create(path).map_err(|e| MountError::Path {
                op: "create",
                path: path.into(),
                errno: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
            })?;
            sys::mount(Some(host), path, None, MsFlags::MS_BIND, None)
        }
        Err(e) => Err(e),
    }
}
