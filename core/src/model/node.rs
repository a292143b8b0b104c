//! Node: a host that runs pods, with what it offers and how healthy it is.

use super::{ConditionStatus, ObjectMeta, ResourceList, Taint, Time};
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Node {
    pub metadata: ObjectMeta,
    pub spec: NodeSpec,
    pub status: NodeStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct NodeSpec {
    /// The range pod IPs on this node come from (`10.88.1.0/24`).
    #[serde(rename = "podCIDR")]
    pub pod_cidr: String,
    /// Dual-stack ranges; the first equals `pod_cidr`.
    #[serde(rename = "podCIDRs")]
    pub pod_cidrs: Vec<String>,
    /// Cordoned: no new pods.
    pub unschedulable: bool,
    pub taints: Vec<Taint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub enum NodeConditionType {
    #[default]
    Ready,
    MemoryPressure,
    DiskPressure,
    #[serde(rename = "PIDPressure")]
    PidPressure,
    NetworkUnavailable,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct NodeCondition {
    #[serde(rename = "type")]
    pub type_: NodeConditionType,
    pub status: ConditionStatus,
    pub last_heartbeat_time: Option<Time>,
    pub last_transition_time: Option<Time>,
    pub reason: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub enum NodeAddressType {
    #[default]
    Hostname,
    #[serde(rename = "InternalIP")]
    InternalIp,
    #[serde(rename = "ExternalIP")]
    ExternalIp,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct NodeAddress {
    #[serde(rename = "type")]
    pub type_: NodeAddressType,
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct NodeSystemInfo {
    pub machine_id: String,
    #[serde(rename = "bootID")]
    pub boot_id: String,
    pub kernel_version: String,
    pub os_image: String,
    pub operating_system: String,
    pub architecture: String,
    pub container_runtime_version: String,
    pub agent_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct NodeStatus {
    /// Everything the host has.
    pub capacity: ResourceList,
    /// What pods may use: capacity minus what the system reserves.
    pub allocatable: ResourceList,
    pub conditions: Vec<NodeCondition>,
    pub addresses: Vec<NodeAddress>,
    pub node_info: NodeSystemInfo,
}

impl NodeStatus {
    /// The condition of `type_`, if reported.
    pub fn condition(&self, type_: NodeConditionType) -> Option<&NodeCondition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }
}

impl Node {
    /// Ready means the node reported the Ready condition as True.
    pub fn is_ready(&self) -> bool {
        self.status
            .condition(NodeConditionType::Ready)
            .is_some_and(|c| c.status == ConditionStatus::True)
    }
}
