//! What a pod uses now, read from its cgroups: the memory working set of
//! the pod cgroup and of each of its running containers' cgroups, and its
//! processes (for the eviction manager's ranking and message).

use super::runner::Status;
use super::{AgentError, PodHost};
use crate::cgroups;

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
}

impl PodHost {
    /// What the pod uses now. A pod without a cgroup (not started, or torn
    /// down) uses nothing.
    pub fn pod_usage(&self, pod: &noderun_core::Pod) -> Result<PodUsage, AgentError> {
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
        })
    }
}
