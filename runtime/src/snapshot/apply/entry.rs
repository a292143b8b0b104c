//! Making one file of a layer inside a directory already resolved within
//! the layer root: regular files, directories, symlinks, hardlinks, device
//! nodes, fifos and overlay whiteouts, each created by name relative to
//! its directory's descriptor without following a symlink at that name.
//! A name that exists is replaced (a directory is kept when a directory
//! is asked for, and merged), as a later tar entry overrides an earlier
//! one.

use super::meta::EntryMeta;
use crate::snapshot::sys;
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmodat, fstatat, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{linkat, symlinkat, unlinkat, UnlinkatFlags};
use std::ffi::OsStr;
use std::fs::{File, FileTimes, Permissions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::PermissionsExt;
use std::time::SystemTime;

/// A failed step on one entry.
#[derive(Debug, thiserror::Error)]
#[error("{op}: {source}")]
pub struct EntryError {
    pub op: &'static str,
    #[source]
    pub source: io::Error,
}

fn err(op: &'static str) -> impl FnOnce(Errno) -> EntryError {
    move |errno| EntryError {
        op,
        source: errno.into(),
    }
}

fn io_err(op: &'static str) -> impl FnOnce(io::Error) -> EntryError {
    move |source| EntryError { op, source }
}

/// The overlay attribute that makes a directory opaque.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// What happened to the name before an entry was made there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replaced {
    Nothing,
    Something,
}

/// Remove whatever is at `name` (a directory with its contents). Returns
/// whether anything was there.
pub fn remove(dir: BorrowedFd<'_>, name: &OsStr) -> Result<Replaced, EntryError> {
    let stat = match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) => stat,
        Err(Errno::ENOENT) => return Ok(Replaced::Nothing),
        Err(errno) => return Err(err("stat existing entry")(errno)),
    };
    if is_kind(stat.st_mode, SFlag::S_IFDIR) {
        // std's remove_dir_all opens each level with O_NOFOLLOW and
        // removes by descriptor; the /proc path names exactly our entry.
        std::fs::remove_dir_all(sys::proc_path(dir, name))
            .map_err(io_err("remove existing directory"))?;
    } else {
        unlinkat(dir, name, UnlinkatFlags::NoRemoveDir).map_err(err("remove existing entry"))?;
    }
    Ok(Replaced::Something)
}

fn is_kind(mode: u32, kind: SFlag) -> bool {
    SFlag::from_bits_truncate(mode & SFlag::S_IFMT.bits()) == kind
}

/// Run `create`; if the name is taken, remove what is there and run it
/// once more.
fn create_replacing(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    op: &'static str,
    mut create: impl FnMut() -> nix::Result<()>,
) -> Result<Replaced, EntryError> {
    match create() {
        Ok(()) => Ok(Replaced::Nothing),
        Err(Errno::EEXIST) => {
            remove(dir, name)?;
            create().map_err(err(op))?;
            Ok(Replaced::Something)
        }
        Err(errno) => Err(err(op)(errno)),
    }
}

fn timespec(t: SystemTime) -> TimeSpec {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    TimeSpec::from_duration(d)
}

/// Set owner, mode and xattrs on an open file (or directory).
fn set_fd_meta(file: &File, meta: &EntryMeta) -> Result<(), EntryError> {
    std::os::unix::fs::fchown(file, Some(meta.uid), Some(meta.gid)).map_err(io_err("chown"))?;
    // After chown, which clears setuid and setgid bits.
    file.set_permissions(Permissions::from_mode(meta.mode))
        .map_err(io_err("chmod"))?;
    for (name, value) in &meta.xattrs {
        sys::set_xattr_fd(file, "".as_ref(), name, value).map_err(|e| EntryError {
            op: "set xattr",
            source: e.errno.into(),
        })?;
    }
    Ok(())
}

/// Set owner, times and xattrs on `name` itself (not followed), and the
/// mode unless it is a symlink.
fn set_at_meta(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    meta: &EntryMeta,
    chmod: bool,
) -> Result<(), EntryError> {
    sys::chown_at_nofollow(dir, name, meta.uid, meta.gid, name.as_ref()).map_err(|e| {
        EntryError {
            op: "chown",
            source: e.errno.into(),
        }
    })?;
    if chmod {
        let mode = Mode::from_bits_truncate(meta.mode);
        fchmodat(dir, name, mode, FchmodatFlags::FollowSymlink).map_err(err("chmod"))?;
    }
    for (key, value) in &meta.xattrs {
        sys::set_xattr_nofollow(&sys::proc_path(dir, name), key, value).map_err(|e| {
            EntryError {
                op: "set xattr",
                source: e.errno.into(),
            }
        })?;
    }
    let t = timespec(meta.mtime);
    utimensat(dir, name, &t, &t, UtimensatFlags::NoFollowSymlink).map_err(err("set times"))
}

/// A regular file with `data` as its content; returns the bytes written.
pub fn file(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    meta: &EntryMeta,
    data: &mut impl Read,
    buf: &mut [u8],
) -> Result<(u64, Replaced), EntryError> {
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mode = Mode::from_bits_truncate(0o600);
    let mut fd = None;
    let replaced = create_replacing(dir, name, "create file", || {
        fd = Some(openat(dir, name, flags, mode)?);
        Ok(())
    })?;
    let mut file = File::from(fd.expect("created"));
    let written = copy(data, &mut file, buf).map_err(io_err("write file"))?;
    set_fd_meta(&file, meta)?;
    let t = meta.mtime;
    file.set_times(FileTimes::new().set_accessed(t).set_modified(t))
        .map_err(io_err("set times"))?;
    Ok((written, replaced))
}

/// Copy in chunks of `buf`'s size (larger than `io::copy`'s 8 KiB, so a
/// big file takes fewer write calls).
fn copy(from: &mut impl Read, to: &mut File, buf: &mut [u8]) -> io::Result<u64> {
    let mut total = 0;
    loop {
        let n = match from.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// A directory, kept (and merged) when one is there already. Returns it
/// open, so the caller can set attributes on it later.
pub fn directory(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    meta: &EntryMeta,
) -> Result<Replaced, EntryError> {
    let mut replaced = Replaced::Nothing;
    match mkdirat(dir, name, Mode::from_bits_truncate(0o700)) {
        Ok(()) => {}
        Err(Errno::EEXIST) => {
            let stat = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(err("stat existing entry"))?;
            if !is_kind(stat.st_mode, SFlag::S_IFDIR) {
                remove(dir, name)?;
                replaced = Replaced::Something;
                mkdirat(dir, name, Mode::from_bits_truncate(0o700)).map_err(err("mkdir"))?;
            }
        }
        Err(errno) => return Err(err("mkdir")(errno)),
    }
    let opened = open_dir(dir, name)?;
    set_fd_meta(&opened, meta)?;
    Ok(replaced)
}

/// Open the directory `name` (not following a symlink) for reading.
pub fn open_dir(dir: BorrowedFd<'_>, name: &OsStr) -> Result<File, EntryError> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    openat(dir, name, flags, Mode::empty())
        .map(File::from)
        .map_err(err("open directory"))
}

/// A symlink to `target` (stored as given: it is only ever resolved inside
/// the container's root, or by the applier's own walk).
pub fn symlink(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    target: &OsStr,
    meta: &EntryMeta,
) -> Result<Replaced, EntryError> {
    let replaced = create_replacing(dir, name, "symlink", || symlinkat(target, dir, name))?;
    set_at_meta(dir, name, meta, false)?;
    Ok(replaced)
}

/// A hardlink to `src_name` in `src_dir` (the link itself, if that is a
/// symlink).
pub fn hardlink(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    src_dir: BorrowedFd<'_>,
    src_name: &OsStr,
) -> Result<Replaced, EntryError> {
    create_replacing(dir, name, "hardlink", || {
        linkat(src_dir, src_name, dir, name, AtFlags::empty())
    })
}

/// A device node or fifo. `Ok(None)` when this host does not allow making
/// it (no CAP_MKNOD, as in a user namespace): the caller notes the skip.
pub fn node(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    kind: SFlag,
    dev: libc::dev_t,
    meta: &EntryMeta,
) -> Result<Option<Replaced>, EntryError> {
    let perm = Mode::from_bits_truncate(meta.mode);
    match create_replacing(dir, name, "mknod", || mknodat(dir, name, kind, perm, dev)) {
        Ok(replaced) => {
            set_at_meta(dir, name, meta, true)?;
            Ok(Some(replaced))
        }
        Err(EntryError { source, .. }) if source.raw_os_error() == Some(libc::EPERM) => Ok(None),
        Err(e) => Err(e),
    }
}

/// An overlay whiteout for `name`: a 0/0 character device.
pub fn whiteout(dir: BorrowedFd<'_>, name: &OsStr) -> Result<Replaced, EntryError> {
    let dev = libc::makedev(0, 0);
    create_replacing(dir, name, "mknod whiteout", || {
        mknodat(dir, name, SFlag::S_IFCHR, Mode::empty(), dev)
    })
}

/// Mark the directory open as `dir` opaque to the layers below.
pub fn opaque(dir: impl AsFd) -> Result<(), EntryError> {
    let file = open_dir(dir.as_fd(), OsStr::new("."))?;
    sys::set_xattr_fd(&file, "".as_ref(), OPAQUE_XATTR, b"y").map_err(|e| EntryError {
        op: "set trusted.overlay.opaque",
        source: e.errno.into(),
    })
}
