//! The raw syscalls of the snapshotter and the layer applier that `nix`
//! does not wrap for us here: mount(2) and umount2(2) for overlay and bind
//! mounts, extended attributes (fsetxattr, lsetxattr) and fchownat(2)
//! (nix has it only behind a feature this crate does not enable). Each returns a
//! [`SysError`] naming the call and the path; nothing else in the module
//! calls `libc` for these.

use nix::errno::Errno;
use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A failed syscall, with its argument.
#[derive(Debug, thiserror::Error)]
#[error("{call} {path}: {errno}")]
pub struct SysError {
    pub call: &'static str,
    pub path: PathBuf,
    pub errno: Errno,
}

fn cstring(call: &'static str, path: &Path) -> Result<CString, SysError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| SysError {
        call,
        path: path.into(),
        errno: Errno::EINVAL,
    })
}

fn check(call: &'static str, path: &Path, rc: libc::c_int) -> Result<(), SysError> {
    if rc == 0 {
        Ok(())
    } else {
        Err(SysError {
            call,
            path: path.into(),
            errno: Errno::last(),
        })
    }
}

/// Mount an overlay on `target` with the option string `data` (paths in
/// it are resolved against the calling thread's working directory).
pub fn mount_overlay(target: &Path, data: &str) -> Result<(), SysError> {
    let target_c = cstring("mount overlay", target)?;
    let data_c = CString::new(data).map_err(|_| SysError {
        call: "mount overlay (options hold a NUL)",
        path: target.into(),
        errno: Errno::EINVAL,
    })?;
    // SAFETY: every pointer is a NUL-terminated string that outlives the
    // call; the kernel copies what it needs before returning.
    let rc = unsafe {
        libc::mount(
            c"overlay".as_ptr(),
            target_c.as_ptr(),
            c"overlay".as_ptr(),
            0,
            data_c.as_ptr().cast(),
        )
    };
    check("mount overlay", target, rc)
}

/// Bind-mount `source` on `target`, then make it read-only if asked.
pub fn mount_bind(source: &Path, target: &Path, read_only: bool) -> Result<(), SysError> {
    let source_c = cstring("mount bind", source)?;
    let target_c = cstring("mount bind", target)?;
    // SAFETY: NUL-terminated strings that outlive the call; no data.
    let rc = unsafe {
        libc::mount(
            source_c.as_ptr(),
            target_c.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    check("mount bind", target, rc)?;
    if !read_only {
        return Ok(());
    }
    let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
    // SAFETY: as above; a remount reads only the target.
    let rc = unsafe {
        libc::mount(
            std::ptr::null(),
            target_c.as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        )
    };
    let result = check("remount read-only", target, rc);
    if result.is_err() {
        let _ = unmount(target);
    }
    result
}

/// Unmount `target` (lazily: MNT_DETACH).
pub fn unmount(target: &Path) -> Result<(), SysError> {
    let target_c = cstring("umount", target)?;
    // SAFETY: a NUL-terminated string that outlives the call.
    let rc = unsafe { libc::umount2(target_c.as_ptr(), libc::MNT_DETACH) };
    check("umount", target, rc)
}

fn xattr_name(call: &'static str, path: &Path, name: &str) -> Result<CString, SysError> {
    CString::new(name).map_err(|_| SysError {
        call,
        path: path.into(),
        errno: Errno::EINVAL,
    })
}

/// Set the extended attribute `name` on the open file `fd` (`path` is for
/// the error message).
pub fn set_xattr_fd(fd: impl AsFd, path: &Path, name: &str, value: &[u8]) -> Result<(), SysError> {
    let name_c = xattr_name("fsetxattr", path, name)?;
    // SAFETY: `fd` is a live descriptor borrowed for the call; name is
    // NUL-terminated and value is a valid slice of the given length.
    let rc = unsafe {
        libc::fsetxattr(
            fd.as_fd().as_raw_fd(),
            name_c.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    check("fsetxattr", path, rc)
}

/// Set the extended attribute `name` on `path` itself (a symlink is not
/// followed).
pub fn set_xattr_nofollow(path: &Path, name: &str, value: &[u8]) -> Result<(), SysError> {
    let path_c = cstring("lsetxattr", path)?;
    let name_c = xattr_name("lsetxattr", path, name)?;
    // SAFETY: NUL-terminated strings and a valid slice, all outliving the
    // call.
    let rc = unsafe {
        libc::lsetxattr(
            path_c.as_ptr(),
            name_c.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    check("lsetxattr", path, rc)
}

/// Change the owner of `name` in the directory `dir`, not following a
/// symlink there (`path` is for the error message).
pub fn chown_at_nofollow(
    dir: impl AsFd,
    name: &OsStr,
    uid: u32,
    gid: u32,
    path: &Path,
) -> Result<(), SysError> {
    let name_c = CString::new(name.as_bytes()).map_err(|_| SysError {
        call: "fchownat",
        path: path.into(),
        errno: Errno::EINVAL,
    })?;
    // SAFETY: `dir` is a live descriptor borrowed for the call and the
    // name is NUL-terminated; the flag keeps the kernel from following a
    // symlink at that name.
    let rc = unsafe {
        libc::fchownat(
            dir.as_fd().as_raw_fd(),
            name_c.as_ptr(),
            uid,
            gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    check("fchownat", path, rc)
}

/// The path through /proc that names `name` inside the directory open as
/// `dir`: for the `l*` calls that have no `*at` form. Only the last
/// component is looked up by name, and it is not followed by `l*` calls.
pub fn proc_path(dir: impl AsFd, name: &OsStr) -> PathBuf {
    let mut path = PathBuf::from(format!("/proc/self/fd/{}", dir.as_fd().as_raw_fd()));
    path.push(name);
    path
}
