//! The scheduling algorithm, without I/O: an incremental cache of nodes and
//! the pods bound to them ([`ClusterCache`]), the filters that decide
//! whether a pod may run on a node ([`filters`]), the scores that rank the
//! nodes that may ([`scores`]), and the choice of one ([`Scheduler`]).
//!
//! It does not watch the apiserver, bind, or retry: the scheduler service
//! feeds the cache from its watches (`update_node`, `add_pod` for every
//! bound pod, including one it has just chosen a node for, before the bind
//! returns), calls [`Scheduler::schedule`] for each pending pod, and turns an
//! [`Unschedulable`] into the pod's PodScheduled condition.
//!
//! Costs: updating the cache is O(terms + ports) per pod; scheduling one pod
//! is O(nodes examined × filters), each filter a few integer compares or
//! label lookups. Pod (anti-)affinity is answered from per-term counts per
//! topology value kept up to date as pods come and go, never by scanning the
//! bound pods per node.

mod cache;
pub mod filters;
mod nodeinfo;
mod podinfo;
pub mod sample;
pub mod scores;
mod select;
mod topology;

pub use cache::ClusterCache;
pub use filters::Reason;
pub use nodeinfo::{HostPort, NodeInfo, Resources};
pub use podinfo::PodInfo;
pub use scores::ScoreWeights;
pub use select::{Placement, Scheduler, SchedulerConfig, Unschedulable, XorShift};
pub use topology::Topology;

/// The node label holding the node's host name (a node without it stands
/// for itself: its name is its hostname domain).
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";
/// The node label naming the node's zone; the spread score balances across it.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// A pod tolerating this NoSchedule taint may land on a cordoned node.
pub const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";
/// A pod tolerating this NoSchedule taint may land on a node not Ready.
pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";
/// The NoSchedule taints of a node's pressure conditions (TaintNodesByCondition):
/// MemoryPressure, DiskPressure, PIDPressure.
pub const MEMORY_PRESSURE_TAINT: &str = "node.kubernetes.io/memory-pressure";
pub const DISK_PRESSURE_TAINT: &str = "node.kubernetes.io/disk-pressure";
pub const PID_PRESSURE_TAINT: &str = "node.kubernetes.io/pid-pressure";
