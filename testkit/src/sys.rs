//! The syscalls the guards make, each wrapped so that its error carries the
//! arguments (path, pid, name). The rest of the crate never sees an errno.

use crate::Error;
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::wait::WaitPidFlag;
use nix::unistd::Pid;
use std::fs::File;
use std::path::Path;

/// Lazily unmount the top mount at `target` (MNT_DETACH). `Ok(false)` when
/// nothing is mounted there any more (EINVAL) or the path is gone (ENOENT).
pub(crate) fn unmount_detach(target: &Path) -> Result<bool, Error> {
    match nix::mount::umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) => Ok(true),
        Err(Errno::EINVAL | Errno::ENOENT) => Ok(false),
        Err(errno) => Err(Error::Unmount {
            target: target.into(),
            errno,
        }),
    }
}

/// Bind-mount `from` onto `target`.
pub(crate) fn mount_bind(from: &Path, target: &Path) -> Result<(), Error> {
    nix::mount::mount(
        Some(from),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|errno| Error::Mount {
        from: from.into(),
        target: target.into(),
        fstype: "bind",
        flags: "MS_BIND",
        errno,
    })
}

/// Recursively bind-mount `dir` onto itself, making it a mount point.
pub(crate) fn mount_self_rbind(dir: &Path) -> Result<(), Error> {
    let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
    nix::mount::mount(Some(dir), dir, None::<&str>, flags, None::<&str>).map_err(|errno| {
        Error::Mount {
            from: dir.into(),
            target: dir.into(),
            fstype: "bind",
            flags: "MS_BIND|MS_REC",
            errno,
        }
    })
}

/// Mount a small tmpfs on `target`.
pub(crate) fn mount_tmpfs(target: &Path) -> Result<(), Error> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    nix::mount::mount(Some("tmpfs"), target, Some("tmpfs"), flags, Some("size=1m")).map_err(
        |errno| Error::Mount {
            from: "tmpfs".into(),
            target: target.into(),
            fstype: "tmpfs",
            flags: "MS_NOSUID|MS_NODEV",
            errno,
        },
    )
}

/// Make the mount at `target` and those below it shared. `Ok(false)` when
/// `target` is not a mount point (EINVAL), so nothing was changed.
pub(crate) fn make_rshared(target: &Path) -> Result<bool, Error> {
    let flags = MsFlags::MS_SHARED | MsFlags::MS_REC;
    match nix::mount::mount(None::<&str>, target, None::<&str>, flags, None::<&str>) {
        Ok(()) => Ok(true),
        Err(Errno::EINVAL) => Ok(false),
        Err(errno) => Err(Error::Mount {
            from: target.into(),
            target: target.into(),
            fstype: "none",
            flags: "MS_SHARED|MS_REC",
            errno,
        }),
    }
}

/// Move the calling thread into a new network namespace, for `name`.
pub(crate) fn unshare_net(name: &str) -> Result<(), Error> {
    nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(|errno| Error::Unshare {
        name: name.into(),
        errno,
    })
}

/// Move the calling thread into the network namespace `ns`, opened from
/// `path`.
pub(crate) fn setns_net(ns: &File, path: &Path) -> Result<(), Error> {
    nix::sched::setns(ns, CloneFlags::CLONE_NEWNET).map_err(|errno| Error::Setns {
        path: path.into(),
        errno,
    })
}

/// Send SIGKILL to `pid`. `Ok(false)` when the process is already gone.
pub(crate) fn kill(pid: i32) -> Result<bool, Error> {
    match nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL) {
        Ok(()) => Ok(true),
        Err(Errno::ESRCH) => Ok(false),
        Err(errno) => Err(Error::Kill {
            pid,
            signal: "SIGKILL",
            errno,
        }),
    }
}

/// Wait for the child `pid` to exit and reap it. ECHILD (not our child, or
/// already reaped) counts as done.
pub(crate) fn reap(pid: i32) -> Result<(), Error> {
    let flags = Some(WaitPidFlag::__WALL);
    loop {
        match nix::sys::wait::waitpid(Pid::from_raw(pid), flags) {
            Ok(_) | Err(Errno::ECHILD) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(Error::Wait { pid, errno }),
        }
    }
}
