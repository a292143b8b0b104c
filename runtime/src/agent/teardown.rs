//! Tearing a pod down from its UID alone: whatever a start left — all of
//! it, half of it, or nothing — is found by name and removed, so the same
//! call serves a graceful delete, the undo of a failed start and the
//! clean-up after a crash. Order: stop the containers (SIGTERM, the grace
//! period, then SIGKILL), delete them, unmount and remove their rootfs and
//! bundles, remove their snapshots, then the sandbox (netplug DEL,
//! namespaces, pod cgroup), then the logs. Every step runs even when an
//! earlier one failed; the first failure is returned.

use super::runner::Status;
use super::{sandbox, AgentError, PodHost, PodPaths};
use crate::container::Record;
use nix::sys::signal::Signal;
use std::path::Path;
use std::time::{Duration, Instant};

/// How often a graceful stop looks at the containers.
const STOP_POLL: Duration = Duration::from_millis(10);
/// How long a kill waits for the containers to be seen stopped.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Collects the first error of a sequence of steps that all run.
#[derive(Debug, Default)]
struct FirstError(Option<AgentError>);

impl FirstError {
    fn keep(&mut self, r: Result<(), AgentError>) {
        if let Err(e) = r {
            tracing::warn!(error = %e, "teardown step failed");
            self.0.get_or_insert(e);
        }
    }
}

impl PodHost {
    /// Stop and remove everything of pod `uid`. Running containers get
    /// SIGTERM, then SIGKILL once `grace` has passed. Tearing down a pod
    /// that is gone succeeds.
    pub fn teardown_pod(&self, uid: &str, grace: Duration) -> Result<(), AgentError> {
        let paths = self.paths(uid)?;
        let span = tracing::info_span!("pod_teardown", pod = %uid);
        let _enter = span.enter();
        let mut first = FirstError::default();
        let ids = self.container_ids(&paths)?;
        self.stop_gracefully(&paths, &ids, grace);
        for id in &ids {
            first.keep(self.delete_container(&paths, id));
        }
        first.keep(self.remove_bundles(&paths));
        first.keep(self.remove_snapshots(&paths));
        first.keep(
            sandbox::teardown(&paths.sandbox, &self.layout, &self.network).map_err(Into::into),
        );
        for dir in paths.find_log_dirs() {
            first.keep(remove_tree(uid, &dir));
        }
        first.0.map_or(Ok(()), Err)
    }

    /// The pod's containers under the runtime root, by id prefix (also
    /// state directories a crash left without a record).
    fn container_ids(&self, paths: &PodPaths) -> Result<Vec<String>, AgentError> {
        let prefix = paths.id_prefix();
        let root = &paths.runtime_root;
        let entries = match std::fs::read_dir(root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Self::io(&paths.uid, "list", root)(e)),
        };
        let mut ids: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| name.starts_with(&prefix))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Stop pod `uid`'s containers (SIGTERM and up to `grace` to exit,
    /// then SIGKILL to every process of each) and wait until they have
    /// stopped, leaving them, their rootfs and the sandbox in place: their
    /// exits can still be read (an eviction reports them before the
    /// teardown).
    pub fn kill_pod(&self, uid: &str, grace: Duration) -> Result<(), AgentError> {
        let paths = self.paths(uid)?;
        let ids = self.container_ids(&paths)?;
        self.stop_gracefully(&paths, &ids, grace);
        self.signal_and_wait(&paths, &ids, Signal::SIGKILL, true, KILL_WAIT);
        Ok(())
    }

    /// Record on the host that pod `uid` is being evicted, with the
    /// message its status will carry, before its containers are stopped:
    /// a daemon killed before it reported the eviction finds the mark at
    /// its next start and finishes the eviction instead of restarting the
    /// stopped containers. The teardown removes the mark with the bundles.
    pub fn mark_evicted(&self, uid: &str, message: &str) -> Result<(), AgentError> {
        let file = self.paths(uid)?.eviction_mark();
        let dir = file.parent().expect("the mark is in a directory");
        std::fs::create_dir_all(dir).map_err(Self::io(uid, "create", dir))?;
        std::fs::write(&file, message).map_err(Self::io(uid, "write", &file))
    }

    /// The message of pod `uid`'s eviction mark, if it has one.
    pub fn eviction_mark(&self, uid: &str) -> Result<Option<String>, AgentError> {
        let file = self.paths(uid)?.eviction_mark();
        match std::fs::read_to_string(&file) {
            Ok(message) => Ok(Some(message)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Self::io(uid, "read", &file)(e)),
        }
    }

    /// SIGTERM to every live container, then wait until they have all
    /// stopped or `grace` has passed (what remains is killed by delete).
    fn stop_gracefully(&self, paths: &PodPaths, ids: &[String], grace: Duration) {
        if !grace.is_zero() {
            self.signal_and_wait(paths, ids, Signal::SIGTERM, false, grace);
        }
    }

    /// `signal` to every live container (to all its processes with
    /// `all`), then wait until they have all stopped or `wait` has passed.
    fn signal_and_wait(
        &self,
        paths: &PodPaths,
        ids: &[String],
        signal: Signal,
        all: bool,
        wait: Duration,
    ) {
        let root = &paths.runtime_root;
        let live = |id: &String| {
            self.runner
                .state(root, id)
                .is_ok_and(|s| s.status != Status::Stopped)
        };
        let mut running: Vec<&String> = ids.iter().filter(|id| live(id)).collect();
        if running.is_empty() {
            return;
        }
        for id in &running {
            // It may have exited meanwhile: delete deals with the rest.
            let _ = self.runner.kill(root, id, signal, all);
        }
        let deadline = Instant::now() + wait;
        while !running.is_empty() && Instant::now() < deadline {
            std::thread::sleep(STOP_POLL);
            running.retain(|id| live(id));
        }
    }

    /// Force-delete a container (SIGKILL to what is left, cgroup and
    /// state removed), and any state directory the runtime could not load.
    pub(super) fn delete_container(&self, paths: &PodPaths, id: &str) -> Result<(), AgentError> {
        let root = &paths.runtime_root;
        let container = id
            .strip_prefix(&paths.id_prefix())
            .unwrap_or(id)
            .to_string();
        match self.runner.delete(root, id, true) {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => {
                // No record: a create cut short by a crash. Its processes
                // die with the pod cgroup; the directory goes here.
                remove_tree(&paths.uid, &Record::dir(root, id))
            }
            Err(source) => Err(AgentError::Runner {
                uid: paths.uid.clone(),
                container,
                source: Box::new(source),
            }),
        }
    }

    /// Unmount each bundle's rootfs and remove `<run>/pods/<uid>`.
    fn remove_bundles(&self, paths: &PodPaths) -> Result<(), AgentError> {
        let uid = &paths.uid;
        let entries = match std::fs::read_dir(&paths.bundles) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Self::io(uid, "list", &paths.bundles)(e)),
        };
        for entry in entries.flatten() {
            let rootfs = entry.path().join("rootfs");
            sandbox::nsfs::unmount_all(&rootfs).map_err(|source| AgentError::Unmount {
                uid: uid.clone(),
                source: Box::new(source),
            })?;
        }
        remove_tree(uid, &paths.bundles)
    }

    /// Remove the pod's active snapshots (keys `<uid>_<name>`).
    fn remove_snapshots(&self, paths: &PodPaths) -> Result<(), AgentError> {
        let prefix = paths.id_prefix();
        let rootfs_err = |container: &str, source| AgentError::Rootfs {
            uid: paths.uid.clone(),
            container: container.into(),
            source: Box::new(source),
        };
        let list = self.snapshots.list().map_err(|e| rootfs_err("-", e))?;
        for info in list.iter().filter(|i| i.name.starts_with(&prefix)) {
            match self.snapshots.remove(&info.name) {
                Ok(()) | Err(crate::snapshot::SnapshotError::NotFound { .. }) => {}
                Err(e) => return Err(rootfs_err(&info.name[prefix.len()..], e)),
            }
        }
        Ok(())
    }
}

pub(super) fn remove_tree(uid: &str, dir: &Path) -> Result<(), AgentError> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(PodHost::io(uid, "remove", dir)(e))
        }
        _ => Ok(()),
    }
}
