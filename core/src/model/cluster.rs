//! Cluster-level kinds: Namespace (a scope for names) and Lease (a node's
//! heartbeat).

use super::{ObjectMeta, Time};
use alloc::string::String;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub enum NamespacePhase {
    #[default]
    Active,
    Terminating,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct NamespaceStatus {
    pub phase: NamespacePhase,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Namespace {
    pub metadata: ObjectMeta,
    pub status: NamespaceStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct LeaseSpec {
    /// The node (or controller) holding the lease.
    pub holder_identity: String,
    pub lease_duration_seconds: i32,
    pub acquire_time: Option<Time>,
    /// The heartbeat: renewed every few seconds by the holder.
    pub renew_time: Option<Time>,
    pub lease_transitions: i32,
}

/// Node heartbeats: one Lease per node in the `noderun-node-lease` namespace.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Lease {
    pub metadata: ObjectMeta,
    pub spec: LeaseSpec,
}

/// The namespace node leases live in.
pub const NODE_LEASE_NAMESPACE: &str = "noderun-node-lease";
