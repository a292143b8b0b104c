//! Pod: one or more containers scheduled together onto a node, sharing a
//! network namespace, with their status as the node reports it.

use super::meta::port_ref_serde;
use super::{Affinity, ObjectMeta, PortRef, Quantity, Time, Toleration};
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Resource name → amount (`cpu: 500m`, `memory: 128Mi`).
pub type ResourceList = BTreeMap<String, Quantity>;

/// Well-known resource names.
pub mod resource {
    pub const CPU: &str = "cpu";
    pub const MEMORY: &str = "memory";
    pub const PODS: &str = "pods";
    pub const EPHEMERAL_STORAGE: &str = "ephemeral-storage";
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Pod {
    pub metadata: ObjectMeta,
    pub spec: PodSpec,
    pub status: PodStatus,
}

/// What to do when a container exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub enum RestartPolicy {
    #[default]
    Always,
    OnFailure,
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct PodSpec {
    /// Run to completion, in order, before `containers` start.
    pub init_containers: Vec<Container>,
    pub containers: Vec<Container>,
    pub restart_policy: RestartPolicy,
    /// The node the pod is bound to; empty until scheduled.
    pub node_name: String,
    /// Node labels the node must carry.
    pub node_selector: BTreeMap<String, String>,
    pub affinity: Option<Affinity>,
    pub tolerations: Vec<Toleration>,
    /// Seconds between SIGTERM and SIGKILL on delete (default 30).
    pub termination_grace_period_seconds: Option<i64>,
    /// Use the node's network namespace instead of the pod's own.
    pub host_network: bool,
    /// The pod's hostname (default: the pod's name).
    pub hostname: String,
}

/// When the image is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub enum PullPolicy {
    Always,
    #[default]
    IfNotPresent,
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Container {
    pub name: String,
    pub image: String,
    /// None until defaulting picks one from the image tag (Always for
    /// `:latest` or no tag, IfNotPresent otherwise), as Kubernetes does.
    pub image_pull_policy: Option<PullPolicy>,
    /// Replaces the image's entrypoint.
    pub command: Vec<String>,
    /// Replaces the image's cmd.
    pub args: Vec<String>,
    pub env: Vec<EnvVar>,
    pub working_dir: String,
    pub resources: ResourceRequirements,
    pub ports: Vec<ContainerPort>,
    pub liveness_probe: Option<Probe>,
    pub readiness_probe: Option<Probe>,
    pub startup_probe: Option<Probe>,
    pub tty: bool,
    pub stdin: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ResourceRequirements {
    /// What the scheduler reserves.
    pub requests: ResourceList,
    /// What the cgroup enforces.
    pub limits: ResourceList,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub enum Protocol {
    #[default]
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "SCTP")]
    Sctp,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ContainerPort {
    pub name: String,
    pub container_port: i32,
    /// 0 when the port is not exposed on the host.
    pub host_port: i32,
    #[serde(rename = "hostIP")]
    pub host_ip: String,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ExecAction {
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub enum UriScheme {
    #[default]
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "HTTPS")]
    Https,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct HttpGetAction {
    pub path: String,
    #[serde(with = "port_ref_serde")]
    pub port: PortRef,
    /// Defaults to the pod IP.
    pub host: String,
    pub scheme: UriScheme,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct TcpSocketAction {
    #[serde(with = "port_ref_serde")]
    pub port: PortRef,
    pub host: String,
}

/// A health check; exactly one of `exec`, `http_get`, `tcp_socket` is set.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Probe {
    pub exec: Option<ExecAction>,
    pub http_get: Option<HttpGetAction>,
    pub tcp_socket: Option<TcpSocketAction>,
    pub initial_delay_seconds: i32,
    pub timeout_seconds: i32,
    pub period_seconds: i32,
    pub success_threshold: i32,
    pub failure_threshold: i32,
}

/// Where a pod is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub enum PodPhase {
    /// Accepted, not yet running every container (scheduling, pulling, creating).
    #[default]
    Pending,
    Running,
    /// Every container exited 0 and will not restart.
    Succeeded,
    /// Every container has exited and at least one failed.
    Failed,
    /// The node stopped reporting.
    Unknown,
}

impl PodPhase {
    /// Succeeded and Failed are final.
    pub fn is_terminal(self) -> bool {
        matches!(self, PodPhase::Succeeded | PodPhase::Failed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub enum ConditionStatus {
    True,
    False,
    #[default]
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub enum PodConditionType {
    #[default]
    PodScheduled,
    Initialized,
    ContainersReady,
    Ready,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct PodCondition {
    #[serde(rename = "type")]
    pub type_: PodConditionType,
    pub status: ConditionStatus,
    pub reason: String,
    pub message: String,
    pub last_transition_time: Option<Time>,
}

/// Resource guarantees, from requests and limits (decides eviction order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub enum QosClass {
    Guaranteed,
    Burstable,
    #[default]
    BestEffort,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct PodStatus {
    pub phase: PodPhase,
    pub conditions: Vec<PodCondition>,
    /// A short CamelCase reason for the phase (`Evicted`, `NodeLost`).
    pub reason: String,
    pub message: String,
    #[serde(rename = "hostIP")]
    pub host_ip: String,
    #[serde(rename = "podIP")]
    pub pod_ip: String,
    pub start_time: Option<Time>,
    pub init_container_statuses: Vec<ContainerStatus>,
    pub container_statuses: Vec<ContainerStatus>,
    pub qos_class: Option<QosClass>,
}

impl PodStatus {
    /// The condition of `type_`, if reported.
    pub fn condition(&self, type_: PodConditionType) -> Option<&PodCondition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ContainerStatus {
    pub name: String,
    pub state: ContainerState,
    /// The state before the last restart.
    pub last_state: ContainerState,
    pub ready: bool,
    pub restart_count: i32,
    pub image: String,
    #[serde(rename = "imageID")]
    pub image_id: String,
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub started: Option<bool>,
}

/// At most one of the three is set; none set means not yet known.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ContainerState {
    pub waiting: Option<ContainerStateWaiting>,
    pub running: Option<ContainerStateRunning>,
    pub terminated: Option<ContainerStateTerminated>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ContainerStateWaiting {
    /// `ContainerCreating`, `CrashLoopBackOff`, `ErrImagePull`, ...
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ContainerStateRunning {
    pub started_at: Option<Time>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ContainerStateTerminated {
    pub exit_code: i32,
    pub signal: i32,
    /// `Completed`, `Error`, `OOMKilled`, ...
    pub reason: String,
    pub message: String,
    pub started_at: Option<Time>,
    pub finished_at: Option<Time>,
    #[serde(rename = "containerID")]
    pub container_id: String,
}

impl Pod {
    /// The QoS class from the containers' requests and limits, as Kubernetes
    /// computes it: Guaranteed when every container limits CPU and memory
    /// with requests equal to limits, BestEffort when nothing is requested
    /// or limited, Burstable otherwise.
    pub fn qos_class(&self) -> QosClass {
        let all = || {
            self.spec
                .init_containers
                .iter()
                .chain(&self.spec.containers)
        };
        let tracked = [resource::CPU, resource::MEMORY];
        let any_set = all().any(|c| {
            tracked.iter().any(|r| {
                c.resources.requests.get(*r).is_some_and(|q| !q.is_zero())
                    || c.resources.limits.get(*r).is_some_and(|q| !q.is_zero())
            })
        });
        if !any_set {
            return QosClass::BestEffort;
        }
        let guaranteed = all().all(|c| {
            tracked.iter().all(|r| match c.resources.limits.get(*r) {
                Some(limit) if !limit.is_zero() => {
                    c.resources.requests.get(*r).is_none_or(|req| req == limit)
                }
                _ => false,
            })
        });
        if guaranteed {
            QosClass::Guaranteed
        } else {
            QosClass::Burstable
        }
    }

    /// What the pod asks the scheduler for: the sum over its containers, or
    /// the largest init container where that is larger (init containers
    /// run one at a time before the others).
    pub fn effective_requests(&self) -> ResourceList {
        let mut sum = ResourceList::new();
        for c in &self.spec.containers {
            for (name, q) in &c.resources.requests {
                let e = sum.entry(name.clone()).or_insert(Quantity::ZERO);
                *e = e.saturating_add(q);
            }
        }
        for c in &self.spec.init_containers {
            for (name, q) in &c.resources.requests {
                let e = sum.entry(name.clone()).or_insert(Quantity::ZERO);
                if *q > *e {
                    *e = *q;
                }
            }
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn container(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Container {
        let list = |p: &[(&str, &str)]| -> ResourceList {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
                .collect()
        };
        Container {
            name: "c".into(),
            image: "busybox".into(),
            resources: ResourceRequirements {
                requests: list(requests),
                limits: list(limits),
            },
            ..Container::default()
        }
    }

    fn pod(containers: Vec<Container>) -> Pod {
        Pod {
            spec: PodSpec {
                containers,
                ..PodSpec::default()
            },
            ..Pod::default()
        }
    }

    #[test]
    fn qos_classes() {
        let full = [("cpu", "1"), ("memory", "1Gi")];
        assert_eq!(
            pod(vec![container(&[], &[])]).qos_class(),
            QosClass::BestEffort
        );
        assert_eq!(
            pod(vec![container(&full, &full)]).qos_class(),
            QosClass::Guaranteed
        );
        assert_eq!(
            pod(vec![container(&[], &full)]).qos_class(),
            QosClass::Guaranteed
        );
        assert_eq!(
            pod(vec![container(&[("cpu", "500m")], &full)]).qos_class(),
            QosClass::Burstable
        );
        assert_eq!(
            pod(vec![container(&full, &full), container(&[], &[])]).qos_class(),
            QosClass::Burstable
        );
        assert_eq!(
            pod(vec![container(&[("memory", "1Mi")], &[])]).qos_class(),
            QosClass::Burstable
        );
    }

    #[test]
    fn effective_requests_sum_containers_and_cover_init() {
        let mut p = pod(vec![
            container(&[("cpu", "250m")], &[]),
            container(&[("cpu", "250m"), ("memory", "64Mi")], &[]),
        ]);
        p.spec.init_containers = vec![container(&[("cpu", "2")], &[])];
        let r = p.effective_requests();
        assert_eq!(r["cpu"].millis(), 2000);
        assert_eq!(r["memory"].value(), 64 << 20);
    }
}
