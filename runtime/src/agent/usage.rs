//! What a pod uses now, read from its cgroups: the memory working set of
//! the pod cgroup and of each of its running containers' cgroups (for
//! the eviction manager's ranking and message).

use super::runner::Status;
use super::{AgentError, PodHost};
use crate::cgroups;

/// A pod's memory working set, and its running containers', in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodMemory {
    pub working_set: u64,
    /// `(container name, working set)` of each app container that runs.
    pub containers: Vec<(String, u64)>,
}

impl PodHost {
    /// The pod's memory now. A pod without a cgroup (not started, or torn
    /// down) uses nothing.
    pub fn pod_memory(&self, pod: &noderun_core::Pod) -> Result<PodMemory, AgentError> {
        let paths = self.paths(&pod.metadata.uid)?;
        let pod_cgroup = cgroups::open(&self.layout, &paths.sandbox.cgroup(pod.qos_class()))?;
        let working_set = match pod_cgroup.stats() {
            Ok(s) => s.memory_working_set(),
            Err(cgroups::CgroupError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(PodMemory::default())
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
        Ok(PodMemory {
            working_set,
            containers,
        })
    }
}
