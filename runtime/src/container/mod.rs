//! Containers and their lifecycle verbs, one file each, as the OCI runtime
//! spec and runc name them: create, start, state, kill, delete, pause and
//! resume, update, ps, list, exec. A container lives as a directory under the
//! runtime's root (`--root`, default `/run/nrc`): its record, and the exec
//! fifo its init waits on between `create` and `start`.

mod bundle;
mod create;
mod delete;
pub mod exe_guard;
mod exec;
pub mod hooks;
mod kill;
mod pause;
mod resources;
mod start;
mod state;

pub use bundle::Bundle;
pub use create::{create, CreateOptions, Created};
pub use delete::delete;
pub use exec::{exec, ConsoleSocket, ExecOptions, Executed};
pub use kill::{kill, parse_signal};
pub use pause::{pause, resume};
pub use resources::from_spec as resources_from_spec;
pub use start::start;
pub use state::{process_start_time, validate_id, Record, Status, EXEC_FIFO, STATE_FILE};

use crate::cgroups::{self, CgroupError, Cgroups, Layout};
use std::path::{Path, PathBuf};

/// The default state root, as runc's is /run/runc.
pub const DEFAULT_ROOT: &str = "/run/nrc";
/// Where containers' cgroups go when the spec names no cgroupsPath.
pub const DEFAULT_CGROUP_PARENT: &str = "nrc";

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("container id {0:?} is invalid: use letters, digits, '_', '-' and '.', not starting with '.' or '-'")]
    InvalidId(String),
    #[error("container {0:?} does not exist")]
    NotFound(String),
    #[error("container {0:?} already exists")]
    AlreadyExists(String),
    #[error("container {id:?} is {status}; {what}")]
    WrongState {
        id: String,
        status: Status,
        what: &'static str,
    },
    #[error("{path}: invalid config: {message}")]
    BadConfig { path: PathBuf, message: String },
    #[error("{path}: corrupt state: {message}")]
    CorruptState { path: PathBuf, message: String },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Spawn(#[from] crate::sys::spawn::SpawnError),
    #[error("container init for {id:?} failed: {message}")]
    Init { id: String, message: String },
    #[error("{phase} hook #{index} ({path}) failed: {message}")]
    Hook {
        phase: &'static str,
        index: usize,
        path: PathBuf,
        message: String,
    },
    #[error("container {id:?}: the runtime's binary is writable and {why}; run the runtime from a read-only location or a sealed copy (nrc re-executes itself so)")]
    Unguarded { id: String, why: String },
    #[error("unknown signal {0:?} (use a name such as TERM or SIGKILL, or a number)")]
    BadSignal(String),
    #[error("signal {signal} to pid {pid}: {errno}")]
    Signal {
        pid: i32,
        signal: i32,
        errno: nix::errno::Errno,
    },
}

/// A stored container: its record and its cgroup.
#[derive(Debug)]
pub struct Container {
    pub root: PathBuf,
    pub record: Record,
    pub cgroup: Box<dyn Cgroups>,
}

impl Container {
    pub fn load(root: &Path, id: &str) -> Result<Container, ContainerError> {
        let record = Record::load(root, id)?;
        let cgroup = cgroups::open(Layout::host()?, &record.cgroup_path)?;
        Ok(Container {
            root: root.into(),
            record,
            cgroup,
        })
    }

    pub fn dir(&self) -> PathBuf {
        Record::dir(&self.root, &self.record.id)
    }

    /// The status now, from the process, the exec fifo and the freezer.
    pub fn status(&self) -> Status {
        if !self.record.init_alive() {
            return Status::Stopped;
        }
        if self.dir().join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        if self.cgroup.is_frozen() {
            return Status::Paused;
        }
        Status::Running
    }

    /// The OCI state document.
    pub fn state(&self) -> serde_json::Value {
        self.record.oci_state(self.status())
    }

    fn wrong_state(&self, status: Status, what: &'static str) -> ContainerError {
        ContainerError::WrongState {
            id: self.record.id.clone(),
            status,
            what,
        }
    }
}

/// Empty and remove a container's cgroup; our own default parent (`nrc/`)
/// goes with its last container (rmdir fails harmlessly while another
/// container is still in it).
fn remove_cgroup(cg: &dyn Cgroups, relative: &Path) -> Result<(), ContainerError> {
    cg.kill_all()?;
    cg.delete()?;
    if relative.starts_with(DEFAULT_CGROUP_PARENT) {
        for leaf in cg.paths() {
            if let Some(parent) = leaf.parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
    }
    Ok(())
}

/// Every container under `root`, with its status (for `nrc list`).
pub fn list(root: &Path) -> Result<Vec<Container>, ContainerError> {
    Record::list_ids(root)?
        .iter()
        .map(|id| Container::load(root, id))
        .collect()
}
