//! Guard against the /proc/self/exe attack (CVE-2019-5736).
//!
//! A container's init is a clone of the runtime, so until it execs the
//! user's program its executable is the runtime's binary on the host. A
//! hostile image can make that exec come back to the binary (an entrypoint
//! script whose interpreter is `#!/proc/self/exe`) and then write through
//! /proc/self/exe to replace the host's runtime for everyone. The defence:
//! processes that start containers run from an executable nothing can
//! write. The runtime re-executes itself once, before any work, from
//!
//! 1. a detached read-only bind mount of its own binary (open_tree +
//!    mount_setattr): no copy, and the mount lives only as long as the
//!    process, never in the host's mount table; or, where the kernel lacks
//!    those calls (before 5.12),
//! 2. a sealed memfd copy, as runc and crun do (costs a copy of the binary).
//!
//! A binary that already sits on a read-only filesystem is left alone.
//!
//! That re-exec costs a second exec and start-up of the binary, so `nrc`
//! does it only where the cheaper exec trampoline (`sys::trampoline`)
//! cannot serve (see `container::exe_guard`); the `noderun agent` daemon
//! does it once, at start.

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, SealFlag};
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

#[derive(Debug, thiserror::Error)]
pub enum SelfExeError {
    #[error("open /proc/self/exe: {0}")]
    Open(std::io::Error),
    #[error("a read-only mount of the runtime binary: {op}: {errno}")]
    Mount { op: &'static str, errno: Errno },
    #[error("memfd_create for the sealed copy of the runtime: {0}")]
    Memfd(Errno),
    #[error("copying the runtime binary into its sealed copy: {0}")]
    Copy(Errno),
    #[error("sealing the runtime's copy: {0}")]
    Seal(Errno),
    #[error("re-executing from the sealed copy: {0}")]
    Exec(Errno),
    #[error("an argument or environment variable holds a NUL byte")]
    Nul,
}

const SEALS: SealFlag = SealFlag::F_SEAL_SEAL
    .union(SealFlag::F_SEAL_SHRINK)
    .union(SealFlag::F_SEAL_GROW)
    .union(SealFlag::F_SEAL_WRITE);

/// True when this process's executable cannot be written through
/// /proc/self/exe: a sealed memfd, or a file on a read-only mount.
pub fn exe_is_protected() -> Result<bool, SelfExeError> {
    let exe = File::open("/proc/self/exe").map_err(SelfExeError::Open)?;
    Ok(is_protected(&exe))
}

fn is_protected(f: &File) -> bool {
    is_sealed(f)
        || nix::sys::statvfs::fstatvfs(f.as_fd())
            .is_ok_and(|v| v.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

fn is_sealed(f: &File) -> bool {
    // A regular file has no seals (EINVAL); a memfd reports its own.
    nix::fcntl::fcntl(f.as_fd(), FcntlArg::F_GET_SEALS)
        .is_ok_and(|bits| SealFlag::from_bits_truncate(bits).contains(SEALS))
}

/// Re-execute this process, same arguments and environment, from a
/// protected executable (see the module docs), unless it runs from one
/// already. Returns only when no re-exec was needed. Call it while
/// single-threaded, before doing anything the re-exec would repeat.
pub fn ensure_protected_exe() -> Result<(), SelfExeError> {
    let exe = File::open("/proc/self/exe").map_err(SelfExeError::Open)?;
    if is_protected(&exe) {
        keep_view_until_exit(&exe);
        return Ok(());
    }
    let mut extra_env = None;
    let target = match read_only_view(c"/proc/self/exe") {
        Ok(fd) => {
            extra_env = hand_over(&fd);
            fd
        }
        // ENOSYS: kernel before 5.12; EPERM: no CAP_SYS_ADMIN here.
        Err(SelfExeError::Mount {
            errno: Errno::ENOSYS | Errno::EPERM | Errno::EINVAL,
            ..
        }) => OwnedFd::from(sealed_copy(&exe)?),
        Err(e) => return Err(e),
    };
    let argv = cstrings(std::env::args_os().map(|a| a.as_bytes().to_vec()))?;
    let envp = cstrings(
        std::env::vars_os()
            .filter(|(k, _)| k != VIEW_FD_ENV)
            .map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                kv
            })
            .chain(extra_env),
    )?;
    // The fd is close-on-exec: the new image does not keep it open.
    let errno = nix::unistd::fexecve(target.as_fd(), &argv, &envp).unwrap_err();
    Err(SelfExeError::Exec(errno))
}

/// Names the fd of the read-only view across the re-exec.
const VIEW_FD_ENV: &str = "_NRC_EXE_VIEW_FD";

/// Closing the last fd of a detached mount unmounts it, and that waits for
/// an RCU grace period (several ms here). Rather than pay it in the middle
/// of the re-exec (a close-on-exec fd), a copy of the fd crosses the exec
/// and the new image closes it at exit, when the container is running. The
/// copy sits high, out of the range `--preserve-fds` hands to containers.
/// Returns the environment entry naming it, or None (then the view's fd is
/// just closed at exec).
fn hand_over(view: &OwnedFd) -> Option<Vec<u8>> {
    const HIGH_FD: RawFd = 512;
    let fd = nix::fcntl::fcntl(view.as_fd(), FcntlArg::F_DUPFD(HIGH_FD)).ok()?;
    Some(format!("{VIEW_FD_ENV}={fd}").into_bytes())
}

/// In the re-executed image: take the view's fd from the environment, check
/// that it is the file this process runs, make it close-on-exec (so no
/// child inherits it) and keep it open until the process exits.
fn keep_view_until_exit(exe: &File) {
    let Some(fd) = std::env::var_os(VIEW_FD_ENV) else {
        return;
    };
    std::env::remove_var(VIEW_FD_ENV);
    let Some(fd) = fd.to_str().and_then(|s| s.parse::<RawFd>().ok()) else {
        return;
    };
    let same_file = |a: &nix::sys::stat::FileStat, b: &nix::sys::stat::FileStat| {
        a.st_dev == b.st_dev && a.st_ino == b.st_ino
    };
    // SAFETY: F_GETFD only reads the fd's flags; -1 means it is not open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return;
    }
    // SAFETY: the fd is open (checked above) and stays open: nothing in this
    // single-threaded start-up closes it; it is only used for fstat and to
    // set close-on-exec, and left alone unless it is our binary.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let matches = match (
        nix::sys::stat::fstat(borrowed),
        nix::sys::stat::fstat(exe.as_fd()),
    ) {
        (Ok(a), Ok(b)) => same_file(&a, &b),
        _ => false,
    };
    if matches {
        let _ = nix::fcntl::fcntl(borrowed, FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC));
    }
}

// From <linux/mount.h>.
const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOUNT_ATTR_RDONLY: u64 = 1;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// A detached, read-only bind mount of the file at `path` (this process's
/// binary, in use), as an fd that can be executed. Nothing is attached to
/// any mount table: the mount goes away with the last reference (the
/// process executing it).
fn read_only_view(path: &std::ffi::CStr) -> Result<OwnedFd, SelfExeError> {
    let err = |op| move |errno| SelfExeError::Mount { op, errno };
    // SAFETY: open_tree with a NUL-terminated path and flags; it returns a
    // new fd or -1, which Errno::result turns into an error.
    let fd = Errno::result(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    })
    .map_err(err("open_tree"))?;
    // SAFETY: open_tree returned this fd just now and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr on our mount fd with an empty path and a valid
    // mount_attr of the size we pass.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map_err(err("mount_setattr"))?;
    Ok(fd)
}

fn sealed_copy(exe: &File) -> Result<File, SelfExeError> {
    let fd = nix::sys::memfd::memfd_create(
        c"nrc:sealed-exe",
        nix::sys::memfd::MFdFlags::MFD_CLOEXEC | nix::sys::memfd::MFdFlags::MFD_ALLOW_SEALING,
    )
    .map_err(SelfExeError::Memfd)?;
    let copy = File::from(fd);
    let len = exe.metadata().map_err(SelfExeError::Open)?.len() as usize;
    let mut done = 0;
    while done < len {
        // In-kernel copy with no pass through user space (sendfile, since
        // copy_file_range refuses to cross filesystems on recent kernels).
        let n = nix::sys::sendfile::sendfile(copy.as_fd(), exe.as_fd(), None, len - done)
            .map_err(SelfExeError::Copy)?;
        if n == 0 {
            return Err(SelfExeError::Copy(Errno::EIO));
        }
        done += n;
    }
    nix::fcntl::fcntl(copy.as_fd(), FcntlArg::F_ADD_SEALS(SEALS)).map_err(SelfExeError::Seal)?;
    debug_assert!(copy.as_raw_fd() >= 0);
    Ok(copy)
}

fn cstrings(items: impl Iterator<Item = Vec<u8>>) -> Result<Vec<CString>, SelfExeError> {
    items
        .map(|b| CString::new(b).map_err(|_| SelfExeError::Nul))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_only_view_refuses_writes_and_stays_off_the_mount_table() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        // A file no one executes (a running binary answers ETXTBSY first).
        let dir = std::env::temp_dir().join(format!("nrc-selfexe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("binary");
        std::fs::write(&file, b"\x7fELF not really").unwrap();
        let c = CString::new(file.as_os_str().as_bytes()).unwrap();
        let view = read_only_view(&c).expect("open_tree + mount_setattr");
        let path = format!("/proc/self/fd/{}", view.as_raw_fd());
        let f = File::open(&path).unwrap();
        assert!(is_protected(&f), "the view is on a read-only mount");
        assert_eq!(std::fs::read(&path).unwrap(), b"\x7fELF not really");
        let e = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EROFS), "{e}");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(&*dir.to_string_lossy()), "{mounts}");
        drop((f, view));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_sealed_copy_matches_the_binary_and_refuses_writes() {
        let exe = File::open("/proc/self/exe").unwrap();
        assert!(!is_sealed(&exe), "the test binary is a plain file");
        assert!(!is_protected(&exe), "and on a writable filesystem");
        let copy = sealed_copy(&exe).unwrap();
        assert!(is_sealed(&copy));
        let original = std::fs::read("/proc/self/exe").unwrap();
        let copied = std::fs::read(format!("/proc/self/fd/{}", copy.as_raw_fd())).unwrap();
        assert!(original == copied, "the copy is byte for byte the binary");
        let w = std::fs::OpenOptions::new()
            .write(true)
            .open(format!("/proc/self/fd/{}", copy.as_raw_fd()));
        match w {
            Ok(mut f) => {
                use std::io::Write;
                let e = f.write_all(b"x").unwrap_err();
                assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
            }
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}"),
        }
    }
}
