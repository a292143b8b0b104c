//! Mount-related syscalls: mount, umount, pivot_root, mknod, and opening a
//! path strictly inside a root directory (openat2 with RESOLVE_IN_ROOT), so
//! that a symlink in a container's rootfs can never send a mount outside it.

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("mount {source_path:?} on {target} (type {fstype:?}, flags {flags:?}, data {data:?}): {errno}")]
    Mount {
        source_path: Option<PathBuf>,
        target: PathBuf,
        fstype: Option<String>,
        flags: MsFlags,
        data: Option<String>,
        errno: Errno,
    },
    #[error("umount {target}: {errno}")]
    Umount { target: PathBuf, errno: Errno },
    #[error("pivot_root into {root}: {errno}")]
    PivotRoot { root: PathBuf, errno: Errno },
    #[error("mknod {path} ({kind:?} {major}:{minor}): {errno}")]
    Mknod {
        path: PathBuf,
        kind: SFlag,
        major: u64,
        minor: u64,
        errno: Errno,
    },
    #[error("open {path} inside {root} without leaving it: {errno}")]
    OpenInRoot {
        root: PathBuf,
        path: PathBuf,
        errno: Errno,
    },
    #[error("{op} {path}: {errno}")]
    Path {
        op: &'static str,
        path: PathBuf,
        errno: Errno,
    },
}

/// mount(2).
pub fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), MountError> {
    nix::mount::mount(source, target, fstype, flags, data).map_err(|errno| MountError::Mount {
        source_path: source.map(Path::to_path_buf),
        target: target.into(),
        fstype: fstype.map(String::from),
        flags,
        data: data.map(String::from),
        errno,
    })
}

/// Change the propagation of the mount at `target` (MS_SLAVE, MS_PRIVATE,
/// ..., with MS_REC for the whole tree below it).
pub fn set_propagation(target: &Path, flags: MsFlags) -> Result<(), MountError> {
    mount(None, target, None, flags, None)
}

pub fn umount(target: &Path, flags: MntFlags) -> Result<(), MountError> {
    nix::mount::umount2(target, flags).map_err(|errno| MountError::Umount {
        target: target.into(),
        errno,
    })
}

/// pivot_root(".", ".") from inside `root`: the old root ends up stacked
/// under the new one at "/", from where the caller detaches it. Needs no
/// directory for the old root inside the rootfs.
pub fn pivot_root_here(root: &Path) -> Result<(), MountError> {
    let err = |errno| MountError::PivotRoot {
        root: root.into(),
        errno,
    };
    nix::unistd::chdir(root).map_err(err)?;
    nix::unistd::pivot_root(".", ".").map_err(err)
}

pub fn chroot_here(root: &Path) -> Result<(), MountError> {
    let err = |errno| MountError::PivotRoot {
        root: root.into(),
        errno,
    };
    nix::unistd::chdir(root).map_err(err)?;
    nix::unistd::chroot(".").map_err(err)?;
    nix::unistd::chdir("/").map_err(err)
}

pub fn mknod(
    path: &Path,
    kind: SFlag,
    mode: u32,
    major: u64,
    minor: u64,
) -> Result<(), MountError> {
    let dev = nix::sys::stat::makedev(major, minor);
    nix::sys::stat::mknod(path, kind, Mode::from_bits_truncate(mode), dev).map_err(|errno| {
        MountError::Mknod {
            path: path.into(),
            kind,
            major,
            minor,
            errno,
        }
    })
}

/// Open `path` (relative to `root`, any leading `/` ignored) with every
/// symlink and `..` resolved as if `root` were `/`, so the result is always
/// inside `root`. Returns an O_PATH descriptor.
pub fn open_in_root(root: &OwnedFd, root_path: &Path, path: &Path) -> Result<OwnedFd, MountError> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    nix::fcntl::openat2(root.as_fd(), rel, how).map_err(|errno| MountError::OpenInRoot {
        root: root_path.into(),
        path: path.into(),
        errno,
    })
}

/// The /proc path through which a mount syscall reaches an open fd's
/// target without resolving the path again.
pub fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

pub fn open_dir(path: &Path) -> Result<OwnedFd, MountError> {
    nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| MountError::Path {
        op: "open",
        path: path.into(),
        errno,
    })
}

pub fn symlink(target: &Path, link: &Path) -> Result<(), MountError> {
    match std::os::unix::fs::symlink(target, link) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(MountError::Path {
            op: "symlink",
            path: link.into(),
            errno: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
        }),
    }
}
