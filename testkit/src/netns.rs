//! [`NetnsGuard`]: a named network namespace made the way `ip netns add`
//! makes one (a new namespace bind-mounted onto /run/netns/<name>, with
//! /run/netns a shared mount point), so `ip netns exec` and the code under
//! test find it. The namespace is created by a short-lived thread, so the
//! calling thread never changes namespace; drop unmounts and removes the
//! file, which frees the namespace once nothing else holds it.

use crate::{names, report, sys, Error};
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where named network namespaces are pinned, as iproute2 does.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// Threads of this process setting up the run directory take turns here;
/// other processes are kept out by an flock on the directory.
static RUN_DIR_SETUP: Mutex<()> = Mutex::new(());

/// A named network namespace, removed on drop.
#[derive(Debug)]
#[must_use = "the namespace is removed when the guard is dropped"]
pub struct NetnsGuard {
    name: String,
    path: PathBuf,
    armed: bool,
}

impl NetnsGuard {
    /// Create a namespace named `<prefix>-<pid>-<n>`.
    pub fn new(prefix: &str) -> Result<NetnsGuard, Error> {
        NetnsGuard::named(&names::unique_name_long(prefix))
    }

    /// Create a namespace named exactly `name`; fails if it exists.
    pub fn named(name: &str) -> Result<NetnsGuard, Error> {
        prepare_run_dir()?;
        let path = Path::new(NETNS_RUN_DIR).join(name);
        // Mode 0, as iproute2: the file only serves as a mount point.
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o000)
            .open(&path)
            .map_err(|e| Error::io("create", &path, e))?;
        // From here on the guard owns the file, so a failure removes it.
        let guard = NetnsGuard {
            name: name.to_string(),
            path,
            armed: true,
        };
        pin_new_netns(name, &guard.path)?;
        Ok(guard)
    }

    /// The namespace's name, as `ip netns list` shows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pinned namespace file, /run/netns/<name>.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `f` on a new thread that has joined this namespace, and return
    /// its result. A panic in `f` is resumed on the calling thread.
    pub fn run_in<T, F>(&self, f: F) -> Result<T, Error>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let ns = File::open(&self.path).map_err(|e| Error::io("open", &self.path, e))?;
        let outcome = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    sys::setns_net(&ns, &self.path)?;
                    Ok(f())
                })
                .join()
        });
        outcome.unwrap_or_else(|payload| std::panic::resume_unwind(payload))
    }

    /// Remove the namespace now.
    pub fn cleanup(mut self) -> Result<(), Error> {
        self.release()
    }

    fn release(&mut self) -> Result<(), Error> {
        if !std::mem::replace(&mut self.armed, false) {
            return Ok(());
        }
        sys::unmount_detach(&self.path)?;
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io("remove", &self.path, e))
            }
            _ => Ok(()),
        }
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        if let Err(err) = self.release() {
            report::drop_failed("NetnsGuard", &err);
        }
    }
}

/// On a dedicated thread: unshare a new network namespace and bind-mount
/// it onto `target`. The thread exits right after, so only the mount keeps
/// the namespace alive.
fn pin_new_netns(name: &str, target: &Path) -> Result<(), Error> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                sys::unshare_net(name)?;
                sys::mount_bind(Path::new("/proc/thread-self/ns/net"), target)
            })
            .join()
    })
    .unwrap_or_else(|_| {
        Err(Error::ThreadPanicked {
            what: format!("creating network namespace {name}"),
        })
    })
}

/// Make sure /run/netns exists and is a shared mount point, so that mounts
/// made under it reach every mount namespace that has it (which is why
/// iproute2 makes it one). Idempotent: a second call adds no mount.
fn prepare_run_dir() -> Result<(), Error> {
    let dir = Path::new(NETNS_RUN_DIR);
    let _threads = RUN_DIR_SETUP
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|e| Error::io("mkdir", dir, e))?;
    let handle = File::open(dir).map_err(|e| Error::io("open", dir, e))?;
    let _processes =
        Flock::lock(handle, FlockArg::LockExclusive).map_err(|(_, errno)| Error::Lock {
            path: dir.into(),
            errno,
        })?;
    if !sys::make_rshared(dir)? {
        // Not a mount point yet: make it one, then share it.
        sys::mount_self_rbind(dir)?;
        sys::make_rshared(dir)?;
    }
    Ok(())
}
