//! What a pod uses now: from its cgroups the memory working set of the
//! pod cgroup and of each of its running containers' cgroups, and its
//! processes; and on request its local disk (ephemeral storage: each
//! container's writable layer and its logs), which takes a walk of those
//! trees. For the eviction manager's ranking and message.

use super::runner::Status;
use super::{AgentError, PodHost};
use crate::{cgroups, snapshot};

/// A pod's memory working set and its running containers', in bytes, and
/// its processes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodUsage {
    pub working_set: u64,
    /// Tasks in the pod cgroup (`pids.current`; 0 where the pids
    /// controller is not enabled).
    pub processes: u64,
    /// `(container name, working set)` of each app container that runs.
    pub containers: Vec<(String, u64)>,
    /// Local disk, when asked for.
    pub disk: Option<PodDisk>,
}

/// A pod's ephemeral storage: its containers' writable layers and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodDisk {
    pub bytes: u64,
    pub inodes: u64,
    /// `(container name, bytes)` of each container, logs included.
    pub containers: Vec<(String, u64)>,
}

impl PodHost {
    /// What the pod uses now (with its disk when `disk`). A pod without a
    /// cgroup (not started, or torn down) uses nothing.
    pub fn pod_usage(&self, pod: &noderun_core::Pod, disk: bool) -> Result<PodUsage, AgentError> {
        let paths = self.paths(&pod.metadata.uid)?;
        let pod_cgroup = cgroups::open(&self.layout, &paths.sandbox.cgroup(pod.qos_class()))?;
        let stats = match pod_cgroup.stats() {
            Ok(s) => s,
            Err(cgroups::CgroupError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(PodUsage::default())
            }
            Err(e) => return Err(e.into()),
        };
        let mut containers = Vec::new();
        for c in &pod.spec.containers {
            let id = paths.container_id(&c.name);
            let Ok(state) = self.runner.state(&paths.runtime_root, &id) else {
                continue;
            };
            if state.status == Status::Stopped {
                continue;
            }
            // A container that stops meanwhile is left out.
            if let Ok(s) = cgroups::open(&self.layout, &state.cgroup_path)?.stats() {
                containers.push((c.name.clone(), s.memory_working_set()));
            }
        }
        Ok(PodUsage {
            working_set: stats.memory_working_set(),
            processes: stats.pids_current,
            containers,
            disk: if disk {
                Some(self.pod_disk(pod)?)
            } else {
                None
            },
        })
    }

    /// The pod's writable layers and logs, by container. What is not
    /// there (not made yet, or removed while it is measured) counts as
    /// nothing.
    fn pod_disk(&self, pod: &noderun_core::Pod) -> Result<PodDisk, AgentError> {
        let paths = self.paths(&pod.metadata.uid)?;
        let mut disk = PodDisk::default();
        let all = pod.spec.init_containers.iter().chain(&pod.spec.containers);
        for c in all {
            let failed = |source| AgentError::Rootfs {
                uid: paths.uid.clone(),
                container: c.name.clone(),
                source: Box::new(source),
            };
            let layer = self.snapshots.usage(&paths.container_id(&c.name));
            let layer = present(layer).map_err(failed)?;
            let logs = self.container_logs(pod, &c.name)?;
            let logs = present(snapshot::measure(&logs.dir)).map_err(failed)?;
            let bytes = layer.bytes + logs.bytes;
            disk.bytes += bytes;
            disk.inodes += layer.inodes + logs.inodes;
            disk.containers.push((c.name.clone(), bytes));
        }
        Ok(disk)
    }
}

/// A measurement, or nothing for a tree that is not there.
fn present(
    measured: Result<snapshot::Usage, snapshot::SnapshotError>,
) -> Result<snapshot::Usage, snapshot::SnapshotError> {
    match measured {
        Err(snapshot::SnapshotError::NotFound { .. }) => Ok(snapshot::Usage::default()),
        Err(snapshot::SnapshotError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            Ok(snapshot::Usage::default())
        }
        other => other,
    }
}
