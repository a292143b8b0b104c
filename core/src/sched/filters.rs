//! Filters: whether a pod may run on a node. Each is a pure function of the
//! pod, the node and (for pod affinity) the topology counts, returning the
//! [`Reason`] it may not. [`check`] runs them cheapest first and stops at
//! the first failure.

use super::nodeinfo::NodeInfo;
use super::podinfo::PodInfo;
use super::topology::Topology;
use crate::model::TaintEffect;
use core::fmt;

/// Which resource a node lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    Cpu,
    Memory,
    Pods,
}

/// Why a node was filtered out. Borrows from the node, so that a failing
/// node costs no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason<'n> {
    NotReady,
    Unschedulable,
    Insufficient(ResourceKind),
    HostPortConflict,
    NodeSelectorMismatch,
    UntoleratedTaint {
        key: &'n str,
        value: &'n str,
        effect: TaintEffect,
    },
    PodAffinity,
    PodAntiAffinity,
    ExistingPodAntiAffinity,
}

impl fmt::Display for Reason<'_> {
    /// The text follows kube-scheduler's, as counted in "0/5 nodes are
    /// available: ...".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::NotReady => f.write_str("node(s) were not ready"),
            Reason::Unschedulable => f.write_str("node(s) were unschedulable"),
            Reason::Insufficient(ResourceKind::Cpu) => f.write_str("Insufficient cpu"),
            Reason::Insufficient(ResourceKind::Memory) => f.write_str("Insufficient memory"),
            Reason::Insufficient(ResourceKind::Pods) => f.write_str("Too many pods"),
            Reason::HostPortConflict => {
                f.write_str("node(s) didn't have free ports for the requested pod ports")
            }
            Reason::NodeSelectorMismatch => {
                f.write_str("node(s) didn't match Pod's node affinity/selector")
            }
            Reason::UntoleratedTaint { key, value, effect } => {
                f.write_str("node(s) had untolerated taint {")?;
                f.write_str(key)?;
                if !value.is_empty() {
                    write!(f, "={value}")?;
                }
                write!(f, ": {effect:?}}}")
            }
            Reason::PodAffinity => f.write_str("node(s) didn't match pod affinity rules"),
            Reason::PodAntiAffinity => f.write_str("node(s) didn't match pod anti-affinity rules"),
            Reason::ExistingPodAntiAffinity => {
                f.write_str("node(s) didn't satisfy existing pods anti-affinity rules")
            }
        }
    }
}

pub type FilterResult<'n> = Result<(), Reason<'n>>;

/// Run every filter, cheapest first.
pub fn check<'n>(pod: &PodInfo<'_>, node: &'n NodeInfo, topo: &Topology) -> FilterResult<'n> {
    node_ready(pod, node)?;
    node_schedulable(pod, node)?;
    resources_fit(pod, node)?;
    host_ports(pod, node)?;
    node_selector(pod, node)?;
    taints(pod, node)?;
    node_affinity(pod, node)?;
    pod_anti_affinity(pod, node, topo)?;
    pod_affinity(pod, node, topo)
}

/// A node not Ready takes only pods tolerating `node.kubernetes.io/not-ready`.
pub fn node_ready<'n>(pod: &PodInfo<'_>, node: &'n NodeInfo) -> FilterResult<'n> {
    if node.ready || pod.tolerates_not_ready {
        Ok(())
    } else {
        Err(Reason::NotReady)
    }
}

/// A cordoned node takes only pods tolerating `node.kubernetes.io/unschedulable`.
pub fn node_schedulable<'n>(pod: &PodInfo<'_>, node: &'n NodeInfo) -> FilterResult<'n> {
    if !node.unschedulable || pod.tolerates_unschedulable {
        Ok(())
    } else {
        Err(Reason::Unschedulable)
    }
}

/// Requests against allocatable minus what the bound pods request. A
/// resource the pod does not request is not checked (as kube-scheduler's
/// fit): a node whose allocatable shrank below what its pods request
/// (say, a raised eviction threshold) still takes a BestEffort pod.
pub fn resources_fit<'n>(pod: &PodInfo<'_>, node: &'n NodeInfo) -> FilterResult<'n> {
    let free = node.free();
    let req = pod.requests;
    if free.pods < 1 {
        Err(Reason::Insufficient(ResourceKind::Pods))
    } else if req.cpu_millis > 0 && req.cpu_millis > free.cpu_millis {
        Err(Reason::Insufficient(ResourceKind::Cpu))
    } else if req.memory > 0 && req.memory > free.memory {
        Err(Reason::Insufficient(ResourceKind::Memory))
    } else {
        Ok(())
    }
}

/// No host port of the pod is taken on the node.
pub fn host_ports<'n>(pod: &PodInfo<'_>, node: &'n NodeInfo) -> FilterResult<'n> {
    let clash = pod
        .host_ports
        .iter()
        .any(|p| node.host_ports.iter().any(|q| p.conflicts(q)));
    if clash {
        Err(Reason::HostPortConflict)
    } else {
        Ok(())
    }
}

/// Every `nodeSelector` label is on the node.
pub fn node_selector<'n>(pod: &PodInfo<'_>, node: &'n NodeInfo) -> FilterResult<'n> {
    let ok = pod
        .pod
        .spec
        .node_selector
        .iter()
        .all(|(k, v)| node.labels.get(k) == Some(v));
    if ok {
        Ok(())
    } else {
        Err(Reason::NodeSelectorMismatch)
    }
}

/// Every NoSchedule and NoExecute taint is tolerated (PreferNoSchedule only
/// lowers the score).
pub fn taints<'n>(pod: &PodInfo<'_>, node: &'n NodeInfo) -> FilterResult<'n> {
    let tolerations = &pod.pod.spec.tolerations;
    for t in &node.taints {
        if t.effect != TaintEffect::PreferNoSchedule && !tolerations.iter().any(|x| x.tolerates(t))
        {
            return Err(Reason::UntoleratedTaint {
                key: &t.key,
                value: &t.value,
                effect: t.effect,
            });
        }
    }
    Ok(())
}

/// The required node affinity, if any, matches the node's labels.
pub fn node_affinity<'n>(pod: &PodInfo<'_>, node: &'n NodeInfo) -> FilterResult<'n> {
    let required = pod
        .pod
        .spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    match required {
        Some(sel) if !sel.matches(&node.labels) => Err(Reason::NodeSelectorMismatch),
        _ => Ok(()),
    }
}

/// Every required affinity term has a selected pod in the node's domain
/// (or the pod is the first of its group: nothing matches yet but itself).
pub fn pod_affinity<'n>(
    pod: &PodInfo<'_>,
    node: &'n NodeInfo,
    topo: &Topology,
) -> FilterResult<'n> {
    let terms = &pod.terms;
    if terms.affinity_self_match {
        return Ok(());
    }
    let near = |&id: &usize| {
        topo.domain_counts(id, node.slot)
            .is_some_and(|(m, _)| m > 0)
    };
    if terms.required_affinity.iter().all(near) {
        Ok(())
    } else {
        Err(Reason::PodAffinity)
    }
}

/// No pod the pod's required anti-affinity selects is in the node's domain,
/// and no bound pod whose required anti-affinity selects this pod is.
pub fn pod_anti_affinity<'n>(
    pod: &PodInfo<'_>,
    node: &'n NodeInfo,
    topo: &Topology,
) -> FilterResult<'n> {
    let terms = &pod.terms;
    let counts = |id: usize| topo.domain_counts(id, node.slot).unwrap_or((0, 0));
    if terms.required_anti.iter().any(|&id| counts(id).0 > 0) {
        Err(Reason::PodAntiAffinity)
    } else if terms.existing_anti.iter().any(|&id| counts(id).1 > 0) {
        Err(Reason::ExistingPodAntiAffinity)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
