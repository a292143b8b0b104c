//! A pod's status as the node sees it: each container's state from the
//! runner (waiting, running, terminated with its exit code or signal), an
//! OOM kill read from the container's cgroup (the kernel's per-cgroup OOM
//! kill counter), the pod IP from the network's IPAM, and the phase that
//! follows from the containers. The daemon pushes it to the apiserver;
//! restarts (and so restartCount and lastState) are the daemon's.

use super::runner::{ContainerState, Exit, Status};
use super::sandbox::POD_IFNAME;
use super::{AgentError, PodHost};
use crate::cgroups;
use noderun_core::ipam::Owner;
use noderun_core::{
    Container, ContainerState as ApiState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, Pod, PodPhase, PodStatus, Time,
};

/// What the node knows of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerReport {
    pub name: String,
    /// The runtime's view; `None` when the container does not exist (yet).
    pub state: Option<ContainerState>,
    /// The kernel's OOM killer killed a process of the container.
    pub oom_killed: bool,
}

impl ContainerReport {
    /// The API's container state; a container not made yet waits with
    /// reason `absent` (`ContainerCreating`, or `PodInitializing` in a pod
    /// with init containers, as kubelet says).
    pub fn api_state(&self, absent: &str) -> ApiState {
        let waiting = |reason: &str| ApiState {
            waiting: Some(ContainerStateWaiting {
                reason: reason.into(),
                message: String::new(),
            }),
            ..ApiState::default()
        };
        let Some(s) = &self.state else {
            return waiting(absent);
        };
        let time = |t: &Option<String>| t.as_deref().and_then(|t| Time::parse_rfc3339(t).ok());
        match s.status {
            Status::Created => waiting(CREATING),
            Status::Running | Status::Paused => ApiState {
                running: Some(ContainerStateRunning {
                    started_at: time(&s.started),
                }),
                ..ApiState::default()
            },
            Status::Stopped => {
                let (exit_code, signal) = match s.exit {
                    Some(Exit::Code(c)) => (c, 0),
                    Some(Exit::Signal(sig)) => (128 + sig, sig),
                    // Ended with no runner to record it: as kubelet, 137.
                    None => (137, 0),
                };
                let (reason, message) = if self.oom_killed {
                    ("OOMKilled", "")
                } else if s.exit.is_none() {
                    (STATUS_UNKNOWN, EXIT_LOST)
                } else if exit_code == 0 {
                    ("Completed", "")
                } else {
                    ("Error", "")
                };
                ApiState {
                    terminated: Some(ContainerStateTerminated {
                        exit_code,
                        signal,
                        reason: reason.into(),
                        message: message.into(),
                        started_at: time(&s.started),
                        finished_at: time(&s.finished),
                        container_id: container_id(&s.id),
                    }),
                    ..ApiState::default()
                }
            }
        }
    }
}

const CREATING: &str = "ContainerCreating";

/// Kubelet's reason for a container whose end it cannot account for.
const STATUS_UNKNOWN: &str = "ContainerStatusUnknown";
const EXIT_LOST: &str = "The container ended while no container runner was its parent \
     (the host rebooted, or the runner was killed), so its exit status was not recorded";

fn container_id(id: &str) -> String {
    format!("noderun://{id}")
}

/// The statuses of a pod's init and app containers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerStatuses {
    pub init: Vec<ContainerStatus>,
    pub app: Vec<ContainerStatus>,
}

/// The phase that follows from the containers' states: Pending while any
/// waits, Succeeded when all exited 0, Failed when all exited and one
/// did not, Running otherwise. (Restart policy is the daemon's.)
pub fn phase(states: &[ApiState]) -> PodPhase {
    if states.is_empty() || states.iter().any(|s| s.waiting.is_some()) {
        return PodPhase::Pending;
    }
    let exits: Vec<i32> = states
        .iter()
        .filter_map(|s| s.terminated.as_ref().map(|t| t.exit_code))
        .collect();
    if exits.len() < states.len() {
        PodPhase::Running
    } else if exits.iter().all(|c| *c == 0) {
        PodPhase::Succeeded
    } else {
        PodPhase::Failed
    }
}

impl PodHost {
    /// What the node knows of each of the pod's (app) containers, in spec
    /// order.
    pub fn container_reports(&self, pod: &Pod) -> Result<Vec<ContainerReport>, AgentError> {
        self.reports(pod, &pod.spec.containers)
    }

    fn reports(
        &self,
        pod: &Pod,
        containers: &[Container],
    ) -> Result<Vec<ContainerReport>, AgentError> {
        let paths = self.paths(&pod.metadata.uid)?;
        let mut out = Vec::with_capacity(containers.len());
        for c in containers {
            let id = paths.container_id(&c.name);
            // No state directory, no container: a new pod's first look
            // need not wait for the runner, busy creating other pods.
            let exists = crate::container::Record::dir(&paths.runtime_root, &id).exists();
            let state = match exists.then(|| self.runner.state(&paths.runtime_root, &id)) {
                None => None,
                Some(Ok(s)) => Some(s),
                Some(Err(e)) if e.is_not_found() => None,
                Some(Err(source)) => {
                    return Err(AgentError::Runner {
                        uid: paths.uid.clone(),
                        container: c.name.clone(),
                        source: Box::new(source),
                    })
                }
            };
            // Only an exit can be an OOM kill (and reading the cgroup of
            // every running container on each look costs).
            let oom_killed = match &state {
                Some(s) if s.status == Status::Stopped => {
                    cgroups::open(&self.layout, &s.cgroup_path)?
                        .stats()
                        .is_ok_and(|stats| stats.oom_kills > 0)
                }
                _ => false,
            };
            out.push(ContainerReport {
                name: c.name.clone(),
                state,
                oom_killed,
            });
        }
        Ok(out)
    }

    /// The statuses of the pod's init containers and of its app
    /// containers, each in spec order (no pod IP lookup: for a caller that
    /// knows it). An init container is ready once it completed (exit 0).
    pub fn container_statuses(&self, pod: &Pod) -> Result<ContainerStatuses, AgentError> {
        let absent = if pod.spec.init_containers.is_empty() {
            CREATING
        } else {
            "PodInitializing"
        };
        let statuses = |containers: &[Container], init: bool| -> Result<_, AgentError> {
            let reports = self.reports(pod, containers)?;
            Ok(reports
                .iter()
                .zip(containers)
                .map(|(r, c)| {
                    let state = r.api_state(absent);
                    let running = state.running.is_some();
                    let completed = state.terminated.as_ref().is_some_and(|t| t.exit_code == 0);
                    ContainerStatus {
                        name: r.name.clone(),
                        ready: if init { completed } else { running },
                        started: Some(running),
                        image: c.image.clone(),
                        container_id: r
                            .state
                            .as_ref()
                            .map(|s| container_id(&s.id))
                            .unwrap_or_default(),
                        state,
                        ..ContainerStatus::default()
                    }
                })
                .collect())
        };
        Ok(ContainerStatuses {
            init: statuses(&pod.spec.init_containers, true)?,
            app: statuses(&pod.spec.containers, false)?,
        })
    }

    /// The pod's status as this node reports it: phase, pod IP, QoS class
    /// and container statuses.
    pub fn pod_status(&self, pod: &Pod) -> Result<PodStatus, AgentError> {
        let statuses = self.container_statuses(pod)?;
        let states: Vec<ApiState> = statuses.app.iter().map(|s| s.state.clone()).collect();
        let owner = Owner::new(&pod.metadata.uid, POD_IFNAME);
        let pod_ip = self
            .network
            .store()
            .lookup(&owner)
            .map_err(|source| {
                AgentError::Sandbox(super::sandbox::SandboxError::Network {
                    uid: pod.metadata.uid.clone(),
                    source: Box::new(source.into()),
                })
            })?
            .map(|ip| ip.to_string())
            .unwrap_or_default();
        Ok(PodStatus {
            phase: phase(&states),
            pod_ip,
            qos_class: Some(pod.qos_class()),
            init_container_statuses: statuses.init,
            container_statuses: statuses.app,
            ..PodStatus::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(status: Status, exit: Option<Exit>, oom: bool) -> ContainerReport {
        ContainerReport {
            name: "c".into(),
            state: Some(ContainerState {
                id: "u_c".into(),
                status,
                pid: 1,
                cgroup_path: "noderun/besteffort/podu/c".into(),
                created: "2026-12-02T10:00:00Z".into(),
                started: Some("2026-12-02T10:00:01Z".into()),
                finished: Some("2026-12-02T10:00:02Z".into()),
                exit,
            }),
            oom_killed: oom,
        }
    }

    #[test]
    fn states_and_reasons() {
        let t = |r: ContainerReport| r.api_state(CREATING).terminated.unwrap();
        let done = t(report(Status::Stopped, Some(Exit::Code(0)), false));
        assert_eq!((done.exit_code, done.reason.as_str()), (0, "Completed"));
        let failed = t(report(Status::Stopped, Some(Exit::Code(3)), false));
        assert_eq!((failed.exit_code, failed.reason.as_str()), (3, "Error"));
        let oom = t(report(Status::Stopped, Some(Exit::Signal(9)), true));
        assert_eq!(
            (oom.exit_code, oom.signal, oom.reason.as_str()),
            (137, 9, "OOMKilled")
        );
        assert!(oom.finished_at.is_some() && oom.container_id == "noderun://u_c");
        let lost = t(report(Status::Stopped, None, false));
        assert_eq!(
            (lost.exit_code, lost.signal, lost.reason.as_str()),
            (137, 0, "ContainerStatusUnknown")
        );
        assert!(lost.message.contains("not recorded"), "{}", lost.message);
        let lost_oom = t(report(Status::Stopped, None, true));
        assert_eq!(
            (lost_oom.exit_code, lost_oom.reason.as_str()),
            (137, "OOMKilled")
        );
        let running = report(Status::Running, None, false).api_state(CREATING);
        assert!(running.running.unwrap().started_at.is_some());
        let absent = ContainerReport {
            name: "c".into(),
            state: None,
            oom_killed: false,
        };
        assert_eq!(
            absent.api_state(CREATING).waiting.unwrap().reason,
            "ContainerCreating"
        );
        assert_eq!(
            absent.api_state("PodInitializing").waiting.unwrap().reason,
            "PodInitializing"
        );
    }

    #[test]
    fn phases() {
        let s = |status, exit| report(status, exit, false).api_state(CREATING);
        let ok = s(Status::Stopped, Some(Exit::Code(0)));
        let bad = s(Status::Stopped, Some(Exit::Code(1)));
        let run = s(Status::Running, None);
        let wait = s(Status::Created, None);
        assert_eq!(phase(&[]), PodPhase::Pending);
        assert_eq!(phase(&[run.clone(), wait]), PodPhase::Pending);
        assert_eq!(phase(&[run, ok.clone()]), PodPhase::Running);
        assert_eq!(phase(&[ok.clone(), ok.clone()]), PodPhase::Succeeded);
        assert_eq!(phase(&[ok, bad]), PodPhase::Failed);
    }
}
