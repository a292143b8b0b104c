//! A pod's shared namespaces (network, IPC, UTS) made once and pinned as
//! bind mounts of their nsfs files, the way `ip netns add` pins a network
//! namespace: a short-lived thread unshares them, sets the pod's hostname,
//! bind-mounts `/proc/thread-self/ns/{net,ipc,uts}` onto the pin files and
//! ends, so the calling thread never changes namespace and only the mounts
//! keep the namespaces alive. Containers join them by path.

use crate::sys::mount::{self, MountError};
use crate::sys::ns::{self, NsError};
use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// One kind of namespace a pod shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedNs {
    Net,
    Ipc,
    Uts,
}

impl SharedNs {
    pub const ALL: [SharedNs; 3] = [SharedNs::Net, SharedNs::Ipc, SharedNs::Uts];

    /// The directory under the agent's run dir holding the pins of this
    /// kind, one file per pod uid.
    pub fn dir_name(self) -> &'static str {
        match self {
            SharedNs::Net => "netns",
            SharedNs::Ipc => "ipcns",
            SharedNs::Uts => "utsns",
        }
    }

    fn proc_name(self) -> &'static str {
        match self {
            SharedNs::Net => "net",
            SharedNs::Ipc => "ipc",
            SharedNs::Uts => "uts",
        }
    }

    fn flag(self) -> CloneFlags {
        match self {
            SharedNs::Net => CloneFlags::CLONE_NEWNET,
            SharedNs::Ipc => CloneFlags::CLONE_NEWIPC,
            SharedNs::Uts => CloneFlags::CLONE_NEWUTS,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NsfsError {
    #[error("pin file {path}: {op}: {source}")]
    File {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("pin file {0} exists: tear the pod down before making it again")]
    Exists(PathBuf),
    #[error("unshare {flags:?}: {errno}")]
    Unshare { flags: CloneFlags, errno: Errno },
    #[error(transparent)]
    Ns(#[from] NsError),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error("the thread making the pod's namespaces panicked")]
    ThreadPanicked,
}

/// Make new network, IPC and UTS namespaces with `hostname`, pinned on
/// the files `pins` (created, mode 0; they must not exist).
pub fn pin_new(pins: &[(SharedNs, PathBuf)], hostname: &str) -> Result<(), NsfsError> {
    for (_, path) in pins {
        create_pin_file(path)?;
    }
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let flags = pins
                    .iter()
                    .fold(CloneFlags::empty(), |acc, (kind, _)| acc | kind.flag());
                nix::sched::unshare(flags).map_err(|errno| NsfsError::Unshare { flags, errno })?;
                if pins.iter().any(|(k, _)| *k == SharedNs::Uts) {
                    ns::sethostname(hostname)?;
                }
                for (kind, path) in pins {
                    let source = Path::new("/proc/thread-self/ns").join(kind.proc_name());
                    mount::mount(Some(&source), path, None, MsFlags::MS_BIND, None)?;
                }
                Ok(())
            })
            .join()
    })
    .unwrap_or(Err(NsfsError::ThreadPanicked))
}

fn create_pin_file(path: &Path) -> Result<(), NsfsError> {
    let err = |op| {
        move |source| NsfsError::File {
            op,
            path: path.into(),
            source,
        }
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err("create the directory of"))?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o000)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(NsfsError::Exists(path.into()))
        }
        Err(e) => Err(err("create")(e)),
    }
}

/// Unmount (every mount stacked on it) and remove a pin file; nothing to
/// do when it is gone. The namespace ends once no process is in it.
pub fn unpin(path: &Path) -> Result<(), NsfsError> {
    unmount_all(path)?;
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(NsfsError::File {
            op: "remove",
            path: path.into(),
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Unmount every mount stacked on `target`, lazily (a process that still
/// has it open keeps only its own view); done when nothing is mounted
/// there or the path is gone.
pub fn unmount_all(target: &Path) -> Result<(), MountError> {
    loop {
        match mount::umount(target, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(MountError::Umount {
                errno: Errno::EINVAL | Errno::ENOENT,
                ..
            }) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}
