//! The scheduler's view of the cluster: nodes and the pods bound to them,
//! updated one event at a time (no recomputation per scheduled pod).

use super::nodeinfo::NodeInfo;
use super::podinfo::{BoundPod, PodInfo, PodTerms};
use super::topology::Topology;
use crate::model::{Node, Pod};
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

/// Nodes by slot, pods by `namespace/name`, and the topology counts.
///
/// Feed it every node and every bound pod (not yet terminal) the watches
/// report; nodes first is cheaper, but a pod may arrive before its node (it
/// is counted once the node does).
#[derive(Debug, Clone, Default)]
pub struct ClusterCache {
    pub(crate) nodes: Vec<Option<NodeInfo>>,
    free_slots: Vec<u32>,
    by_name: BTreeMap<String, u32>,
    pods: BTreeMap<String, BoundPod>,
    /// Bound pods whose node is not in the cache.
    orphans: usize,
    topology: Topology,
    generation: u64,
}

fn pod_key(namespace: &str, name: &str) -> String {
    alloc::format!("{namespace}/{name}")
}

impl ClusterCache {
    pub fn new() -> ClusterCache {
        ClusterCache::default()
    }

    /// Bumped on every change: a pod found unschedulable is worth retrying
    /// once this has moved.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The number of nodes.
    pub fn node_count(&self) -> usize {
        self.by_name.len()
    }

    /// The number of bound pods (including those whose node is unknown).
    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        let slot = *self.by_name.get(name)?;
        self.nodes[slot as usize].as_ref()
    }

    /// The topology counts the pod (anti-)affinity filters read.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    pub fn nodes(&self) -> impl Iterator<Item = &NodeInfo> {
        self.nodes.iter().flatten()
    }

    /// Add a node or apply a change to it (labels, taints, allocatable,
    /// conditions). Only a label change touches the pods bound to it.
    pub fn update_node(&mut self, node: &Node) {
        self.generation += 1;
        let mut info = NodeInfo::new(node);
        let Some(&slot) = self.by_name.get(&info.name) else {
            let slot = self.free_slots.pop().unwrap_or_else(|| {
                self.nodes.push(None);
                (self.nodes.len() - 1) as u32
            });
            info.slot = slot;
            self.topology.set_node(slot, Some(&info));
            self.by_name.insert(info.name.clone(), slot);
            self.nodes[slot as usize] = Some(info);
            if self.orphans > 0 {
                self.adopt_orphans(slot);
            }
            return;
        };
        let old = self.nodes[slot as usize].as_mut().expect("named slot");
        info.slot = slot;
        info.requested = old.requested;
        info.score_requested = old.score_requested;
        info.host_ports = core::mem::take(&mut old.host_ports);
        let relabelled = old.labels != info.labels;
        if relabelled {
            self.account_node_pods(slot, -1);
        }
        self.topology.set_node(slot, Some(&info));
        self.nodes[slot as usize] = Some(info);
        if relabelled {
            self.account_node_pods(slot, 1);
        }
    }

    /// Forget a node; its pods stay, uncounted, until they are removed or
    /// the node comes back.
    pub fn remove_node(&mut self, name: &str) {
        let Some(slot) = self.by_name.remove(name) else {
            return;
        };
        self.generation += 1;
        self.account_node_pods(slot, -1);
        for p in self.pods.values_mut().filter(|p| p.slot == Some(slot)) {
            p.slot = None;
            self.orphans += 1;
        }
        self.topology.set_node(slot, None);
        self.nodes[slot as usize] = None;
        self.free_slots.push(slot);
    }

    /// Count (or uncount) every pod bound to `slot` in its topology domains.
    fn account_node_pods(&mut self, slot: u32, sign: i64) {
        for p in self.pods.values().filter(|p| p.slot == Some(slot)) {
            self.topology.account(p, slot, sign);
        }
    }

    fn adopt_orphans(&mut self, slot: u32) {
        let node = self.nodes[slot as usize].as_mut().expect("new slot");
        for p in self.pods.values_mut() {
            if p.slot.is_none() && p.node == node.name {
                p.slot = Some(slot);
                node.account(p.requests, &p.host_ports, 1);
                self.topology.account(p, slot, 1);
                self.orphans -= 1;
            }
        }
    }

    /// Account a pod bound to `pod.spec.node_name` (also the pod the
    /// scheduler has just placed, before its bind completes). A pod already
    /// in the cache is replaced. Returns false, changing nothing, for a pod
    /// with no node.
    pub fn add_pod(&mut self, pod: &Pod) -> bool {
        if pod.spec.node_name.is_empty() {
            return false;
        }
        let meta = &pod.metadata;
        self.remove_pod(&meta.namespace, &meta.name);
        self.generation += 1;
        let mut bound = BoundPod::new(pod);
        self.topology.prune();
        if let Some(anti) = pod
            .spec
            .affinity
            .as_ref()
            .and_then(|a| a.pod_anti_affinity.as_ref())
        {
            for t in &anti.required_during_scheduling_ignored_during_execution {
                let id = self
                    .topology
                    .intern(t, &meta.namespace, &self.nodes, &self.pods);
                bound.anti_terms.push(id);
            }
        }
        self.topology.hold(&bound.anti_terms, 1);
        bound.slot = self.by_name.get(&bound.node).copied();
        match bound.slot {
            Some(slot) => {
                let node = self.nodes[slot as usize].as_mut().expect("named slot");
                node.account(bound.requests, &bound.host_ports, 1);
                self.topology.account(&bound, slot, 1);
            }
            None => self.orphans += 1,
        }
        self.pods
            .insert(pod_key(&meta.namespace, &meta.name), bound);
        true
    }

    /// Forget a bound pod (deleted, terminal, or its bind failed).
    pub fn remove_pod(&mut self, namespace: &str, name: &str) -> bool {
        let Some(bound) = self.pods.remove(&pod_key(namespace, name)) else {
            return false;
        };
        self.generation += 1;
        match bound.slot {
            Some(slot) => {
                let node = self.nodes[slot as usize].as_mut().expect("named slot");
                node.account(bound.requests, &bound.host_ports, -1);
                self.topology.account(&bound, slot, -1);
            }
            None => self.orphans -= 1,
        }
        self.topology.hold(&bound.anti_terms, -1);
        true
    }

    /// Work out what scheduling `pod` needs from the cache: its requests,
    /// and its pod (anti-)affinity terms interned and resolved against the
    /// bound pods' (including the symmetric anti-affinity rule).
    pub fn prepare<'p>(&mut self, pod: &'p Pod) -> PodInfo<'p> {
        let mut info = PodInfo::new(pod);
        let ns = &pod.metadata.namespace;
        let mut terms = PodTerms::default();
        self.topology.prune();
        if let Some(a) = &pod.spec.affinity {
            let mut intern = |t| self.topology.intern(t, ns, &self.nodes, &self.pods);
            if let Some(aff) = &a.pod_affinity {
                for t in &aff.required_during_scheduling_ignored_during_execution {
                    terms.required_affinity.push(intern(t));
                }
                for w in &aff.preferred_during_scheduling_ignored_during_execution {
                    let id = intern(&w.pod_affinity_term);
                    terms.preferred.push((id, i64::from(w.weight)));
                }
            }
            if let Some(anti) = &a.pod_anti_affinity {
                for t in &anti.required_during_scheduling_ignored_during_execution {
                    terms.required_anti.push(intern(t));
                }
                for w in &anti.preferred_during_scheduling_ignored_during_execution {
                    let id = intern(&w.pod_affinity_term);
                    terms.preferred.push((id, -i64::from(w.weight)));
                }
            }
        }
        let topo = &self.topology;
        terms.affinity_self_match = !terms.required_affinity.is_empty()
            && terms.required_affinity.iter().all(|&id| {
                let t = topo.term(id);
                t.matching_total == 0 && t.selects(ns, &pod.metadata.labels)
            });
        for (id, t) in topo.terms.iter().enumerate() {
            if let Some(t) = t {
                if t.anti_owner_total > 0 && t.selects(ns, &pod.metadata.labels) {
                    terms.existing_anti.push(id);
                }
            }
        }
        info.terms = terms;
        info
    }
}

#[cfg(test)]
mod tests;
