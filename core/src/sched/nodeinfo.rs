//! What the scheduler knows of one node: what it offers, what the pods bound
//! to it already take, its labels, taints and health.

use crate::model::{resource, Node, Pod, Protocol, ResourceList, Taint};
use crate::Labels;
use alloc::string::String;
use alloc::vec::Vec;

/// The amounts the scheduler accounts: CPU in millicores, memory in bytes,
/// and a count of pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resources {
    pub cpu_millis: i64,
    pub memory: i64,
    pub pods: i64,
}

/// A node that does not report `pods` in its allocatable takes this many
/// (the kubelet's default).
pub const DEFAULT_MAX_PODS: i64 = 110;
/// What a pod requesting no CPU counts for in the scores (not in the fit).
pub const DEFAULT_SCORE_CPU_MILLIS: i64 = 100;
/// What a pod requesting no memory counts for in the scores (200 MiB).
pub const DEFAULT_SCORE_MEMORY: i64 = 200 << 20;

impl Resources {
    /// CPU and memory of `list`, and `pods` as given.
    pub fn from_list(list: &ResourceList, pods: i64) -> Resources {
        Resources {
            cpu_millis: list.get(resource::CPU).map_or(0, |q| q.millis()),
            memory: list.get(resource::MEMORY).map_or(0, |q| q.value()),
            pods,
        }
    }

    /// What `pod` asks for (one pod).
    pub fn requested_by(pod: &Pod) -> Resources {
        Resources::from_list(&pod.effective_requests(), 1)
    }

    /// The request as the scores see it: zero CPU or memory counts as a
    /// small default, so that best-effort pods still spread.
    pub fn for_scoring(self) -> Resources {
        Resources {
            cpu_millis: if self.cpu_millis == 0 {
                DEFAULT_SCORE_CPU_MILLIS
            } else {
                self.cpu_millis
            },
            memory: if self.memory == 0 {
                DEFAULT_SCORE_MEMORY
            } else {
                self.memory
            },
            pods: self.pods,
        }
    }

    pub(crate) fn add(&mut self, other: Resources, sign: i64) {
        self.cpu_millis += sign * other.cpu_millis;
        self.memory += sign * other.memory;
        self.pods += sign * other.pods;
    }
}

/// A port a pod takes on its node's addresses.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostPort {
    /// Empty, `0.0.0.0` or `::` for every address.
    pub ip: String,
    pub protocol: Protocol,
    pub port: i32,
}

impl HostPort {
    /// The host ports of `pod`'s containers (for a host-network pod, every
    /// container port is one).
    pub fn of_pod(pod: &Pod) -> Vec<HostPort> {
        let mut out = Vec::new();
        for c in pod.spec.init_containers.iter().chain(&pod.spec.containers) {
            for p in &c.ports {
                let port = if p.host_port == 0 && pod.spec.host_network {
                    p.container_port
                } else {
                    p.host_port
                };
                if port > 0 {
                    out.push(HostPort {
                        ip: p.host_ip.clone(),
                        protocol: p.protocol,
                        port,
                    });
                }
            }
        }
        out
    }

    fn any_address(&self) -> bool {
        matches!(self.ip.as_str(), "" | "0.0.0.0" | "::")
    }

    /// Whether two pods could not both bind these ports.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.any_address() || other.any_address())
    }
}

/// One node as the scheduler sees it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub name: String,
    pub labels: Labels,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub ready: bool,
    pub allocatable: Resources,
    /// The sum of the requests of the pods bound here (`pods` is their count).
    pub requested: Resources,
    /// The same with the scoring defaults for pods that request nothing.
    pub score_requested: Resources,
    /// Host ports taken by the pods bound here (one entry per pod port).
    pub host_ports: Vec<HostPort>,
    /// The node's index in the cache, used by the topology counts.
    pub(crate) slot: u32,
}

impl NodeInfo {
    /// A node with nothing bound to it yet.
    pub fn new(node: &Node) -> NodeInfo {
        let alloc = &node.status.allocatable;
        let pods = alloc
            .get(resource::PODS)
            .map_or(DEFAULT_MAX_PODS, |q| q.value());
        NodeInfo {
            name: node.metadata.name.clone(),
            labels: node.metadata.labels.clone(),
            taints: node.spec.taints.clone(),
            unschedulable: node.spec.unschedulable,
            ready: node.is_ready(),
            allocatable: Resources::from_list(alloc, pods),
            requested: Resources::default(),
            score_requested: Resources::default(),
            host_ports: Vec::new(),
            slot: 0,
        }
    }

    /// What is left for new pods.
    pub fn free(&self) -> Resources {
        Resources {
            cpu_millis: self.allocatable.cpu_millis - self.requested.cpu_millis,
            memory: self.allocatable.memory - self.requested.memory,
            pods: self.allocatable.pods - self.requested.pods,
        }
    }

    pub(crate) fn account(&mut self, req: Resources, ports: &[HostPort], sign: i64) {
        self.requested.add(req, sign);
        self.score_requested.add(req.for_scoring(), sign);
        if sign > 0 {
            self.host_ports.extend(ports.iter().cloned());
        } else {
            for p in ports {
                if let Some(i) = self.host_ports.iter().position(|q| q == p) {
                    self.host_ports.swap_remove(i);
                }
            }
        }
    }
}
