//! The state of a live container without asking its runner: the runtime's
//! record on disk (init pid and its start time, cgroup, creation time) and
//! the process itself say whether the init lives and whether it was
//! started; the start time is the one this handle remembered when its
//! start succeeded. What only the runner knows is how an init ended, so a
//! container whose init is gone (or a zombie not reaped yet) is always
//! asked for.
//!
//! Why: the runner answers one request at a time, and during a burst of
//! pod starts a status read would wait behind every create queued before
//! it (a few ms each). The answer read here is the one the runner would
//! give: the same record, the same liveness check.

use super::protocol::{ContainerState, Status};
use crate::container::{self, Container};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// When each container started through this handle did start (RFC 3339),
/// by its state directory (`<root>/<id>`). Entries go with the container's
/// delete.
#[derive(Debug, Default)]
pub(super) struct Starts {
    by_dir: Mutex<HashMap<PathBuf, String>>,
}

impl Starts {
    /// Container `id` under `root` started now.
    pub(super) fn started(&self, root: &Path, id: &str) {
        let now = noderun_core::Time::now().to_string();
        self.lock().insert(container::Record::dir(root, id), now);
    }

    pub(super) fn forget(&self, root: &Path, id: &str) {
        self.lock().remove(&container::Record::dir(root, id));
    }

    /// The container's state if its init is alive (created or running):
    /// `None` when it is stopped, missing or unreadable, for the runner
    /// to answer (with the exit, or the error).
    pub(super) fn alive(&self, root: &Path, id: &str) -> Option<ContainerState> {
        let c = Container::load(root, id).ok()?;
        let status = match c.status() {
            container::Status::Stopped => return None,
            container::Status::Created => Status::Created,
            container::Status::Running => Status::Running,
            container::Status::Paused => Status::Paused,
        };
        let started = match status {
            Status::Created => None,
            _ => self.lock().get(&c.dir()).cloned(),
        };
        Some(ContainerState {
            id: c.record.id.clone(),
            status,
            pid: c.record.pid,
            cgroup_path: c.record.cgroup_path.clone(),
            created: c.record.created.clone(),
            started,
            finished: None,
            exit: None,
        })
    }

    /// The runner's answer `state`, with the start time this handle
    /// reported while the container ran (the runner notes its own a moment
    /// before), so a container's startedAt does not change as it stops.
    pub(super) fn with_start(&self, root: &Path, mut state: ContainerState) -> ContainerState {
        if let Some(started) = self.lock().get(&container::Record::dir(root, &state.id)) {
            state.started = Some(started.clone());
        }
        state
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, String>> {
        self.by_dir
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
