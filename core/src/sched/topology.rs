//! Counts of pods per topology domain, kept up to date as pods are bound
//! and removed, so that pod (anti-)affinity and spreading are answered with
//! an array lookup per node.
//!
//! A topology key (`kubernetes.io/hostname`, `topology.kubernetes.io/zone`,
//! any node label) is interned once; each node slot maps to the id of its
//! value. A pod affinity term (selector, namespaces, key) is interned the
//! first time a pod uses it, counted once over the bound pods, and from then
//! on every bound or removed pod adjusts its counts: `matching` (pods the
//! term selects, per domain) and `anti_owners` (bound pods that carry the
//! term as required anti-affinity, per domain, for the symmetric rule).

use super::nodeinfo::NodeInfo;
use super::podinfo::BoundPod;
use super::{HOSTNAME_LABEL, ZONE_LABEL};
use crate::model::{LabelSelector, PodAffinityTerm};
use crate::Labels;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

/// No value: the node lacks the label (or the slot is empty).
pub(crate) const NO_VALUE: u32 = u32::MAX;
/// Interned key id of the zone key (every cache has it, hostname is 1).
pub(crate) const ZONE_KEY: usize = 0;
/// Past this many interned terms, terms no bound pod holds are dropped
/// before a new pod's terms are interned.
const TERM_SOFT_LIMIT: usize = 256;

/// The value of topology `key` on `node`; a node without a hostname label
/// is its own hostname domain.
pub fn node_topology_value<'a>(key: &str, node: &'a NodeInfo) -> Option<&'a str> {
    match node.labels.get(key) {
        Some(v) => Some(v),
        None if key == HOSTNAME_LABEL => Some(&node.name),
        None => None,
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct TopologyKey {
    pub key: String,
    ids: BTreeMap<String, u32>,
    pub names: Vec<String>,
    by_slot: Vec<u32>,
}

impl TopologyKey {
    fn set(&mut self, slot: u32, node: Option<&NodeInfo>) {
        let id = match node.and_then(|n| node_topology_value(&self.key, n)) {
            None => NO_VALUE,
            Some(v) => match self.ids.get(v) {
                Some(&id) => id,
                None => {
                    let id = self.names.len() as u32;
                    self.ids.insert(v.into(), id);
                    self.names.push(v.into());
                    id
                }
            },
        };
        let slot = slot as usize;
        if self.by_slot.len() <= slot {
            self.by_slot.resize(slot + 1, NO_VALUE);
        }
        self.by_slot[slot] = id;
    }

    pub fn value(&self, slot: u32) -> u32 {
        self.by_slot.get(slot as usize).copied().unwrap_or(NO_VALUE)
    }
}

/// An interned pod affinity term with its counts per domain.
#[derive(Debug, Clone)]
pub(crate) struct Term {
    selector: Option<LabelSelector>,
    /// Sorted; the namespace of the pod that declared it when it named none.
    namespaces: Vec<String>,
    pub key: usize,
    pub matching: Vec<u32>,
    pub matching_total: u32,
    pub anti_owners: Vec<u32>,
    pub anti_owner_total: u32,
}

impl Term {
    /// Whether a pod in `namespace` with `labels` is selected (a term
    /// without a selector selects nothing, as in Kubernetes).
    pub fn selects(&self, namespace: &str, labels: &Labels) -> bool {
        self.namespaces.iter().any(|n| n == namespace)
            && self.selector.as_ref().is_some_and(|s| s.matches(labels))
    }

    /// What makes two terms the same term (with the key).
    #[cfg(test)]
    pub fn identity(&self) -> (&Option<LabelSelector>, &[String]) {
        (&self.selector, &self.namespaces)
    }

    fn bump(counts: &mut Vec<u32>, total: &mut u32, value: u32, sign: i64) {
        if value == NO_VALUE {
            return;
        }
        let v = value as usize;
        if counts.len() <= v {
            counts.resize(v + 1, 0);
        }
        if sign > 0 {
            counts[v] += 1;
            *total += 1;
        } else {
            counts[v] -= 1;
            *total -= 1;
        }
    }

    pub fn count(counts: &[u32], value: u32) -> u32 {
        counts.get(value as usize).copied().unwrap_or(0)
    }
}

/// How many pods of one owner are on each node and in each zone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Spread {
    pub per_node: BTreeMap<u32, u32>,
    pub per_zone: BTreeMap<u32, u32>,
}

fn bump_map(map: &mut BTreeMap<u32, u32>, key: u32, sign: i64) {
    if sign > 0 {
        *map.entry(key).or_insert(0) += 1;
    } else if let Some(c) = map.get_mut(&key) {
        *c -= 1;
        if *c == 0 {
            map.remove(&key);
        }
    }
}

/// The topology counts of a [`ClusterCache`](super::ClusterCache); opaque
/// outside the scheduler, read by the pod (anti-)affinity filters and scores.
#[derive(Debug, Clone)]
pub struct Topology {
    pub(crate) keys: Vec<TopologyKey>,
    pub(crate) terms: Vec<Option<Term>>,
    /// Per term id: bound pods holding it as required anti-affinity.
    refs: Vec<u32>,
    pub(crate) spread: BTreeMap<String, Spread>,
}

impl Default for Topology {
    fn default() -> Topology {
        let key = |k: &str| TopologyKey {
            key: k.into(),
            ..TopologyKey::default()
        };
        Topology {
            keys: alloc::vec![key(ZONE_LABEL), key(HOSTNAME_LABEL)],
            terms: Vec::new(),
            refs: Vec::new(),
            spread: BTreeMap::new(),
        }
    }
}

impl Topology {
    /// Record (or clear) the topology values of the node in `slot`.
    pub(crate) fn set_node(&mut self, slot: u32, node: Option<&NodeInfo>) {
        for k in &mut self.keys {
            k.set(slot, node);
        }
    }

    /// The id of the value of key `key` on the node in `slot`.
    pub(crate) fn value(&self, key: usize, slot: u32) -> u32 {
        self.keys[key].value(slot)
    }

    /// Of term `id`, in the domain of the node in `slot`: the pods it
    /// selects and the bound pods holding it as anti-affinity (None when
    /// the node lacks the term's topology key).
    pub(crate) fn domain_counts(&self, id: usize, slot: u32) -> Option<(u32, u32)> {
        let t = self.term(id);
        let v = self.value(t.key, slot);
        (v != NO_VALUE).then(|| (Term::count(&t.matching, v), Term::count(&t.anti_owners, v)))
    }

    pub(crate) fn term(&self, id: usize) -> &Term {
        self.terms[id].as_ref().expect("live term id")
    }

    fn key_id(&mut self, key: &str, nodes: &[Option<NodeInfo>]) -> usize {
        if let Some(i) = self.keys.iter().position(|k| k.key == key) {
            return i;
        }
        let mut k = TopologyKey {
            key: key.into(),
            ..TopologyKey::default()
        };
        for (slot, n) in nodes.iter().enumerate() {
            k.set(slot as u32, n.as_ref());
        }
        self.keys.push(k);
        self.keys.len() - 1
    }

    /// Drop terms no bound pod holds once there are many of them.
    pub(crate) fn prune(&mut self) {
        if self.terms.iter().filter(|t| t.is_some()).count() < TERM_SOFT_LIMIT {
            return;
        }
        for (t, refs) in self.terms.iter_mut().zip(&self.refs) {
            if *refs == 0 {
                *t = None;
            }
        }
    }

    /// The id of `term` as written by a pod in `namespace`, interning it
    /// (and counting it over `pods`) the first time.
    pub(crate) fn intern(
        &mut self,
        term: &PodAffinityTerm,
        namespace: &str,
        nodes: &[Option<NodeInfo>],
        pods: &BTreeMap<String, BoundPod>,
    ) -> usize {
        let mut namespaces = if term.namespaces.is_empty() {
            alloc::vec![String::from(namespace)]
        } else {
            term.namespaces.clone()
        };
        namespaces.sort();
        namespaces.dedup();
        let key = self.key_id(&term.topology_key, nodes);
        let found = self.terms.iter().position(|t| {
            t.as_ref().is_some_and(|t| {
                t.key == key && t.selector == term.label_selector && t.namespaces == namespaces
            })
        });
        if let Some(id) = found {
            return id;
        }
        let mut t = Term {
            selector: term.label_selector.clone(),
            namespaces,
            key,
            matching: Vec::new(),
            matching_total: 0,
            anti_owners: Vec::new(),
            anti_owner_total: 0,
        };
        for p in pods.values() {
            if let Some(slot) = p.slot {
                if t.selects(&p.namespace, &p.labels) {
                    let v = self.keys[key].value(slot);
                    Term::bump(&mut t.matching, &mut t.matching_total, v, 1);
                }
            }
        }
        match self.terms.iter().position(Option::is_none) {
            Some(id) => {
                self.terms[id] = Some(t);
                self.refs[id] = 0;
                id
            }
            None => {
                self.terms.push(Some(t));
                self.refs.push(0);
                self.terms.len() - 1
            }
        }
    }

    /// Hold (`sign` 1) or release (-1) the anti-affinity terms of a pod.
    pub(crate) fn hold(&mut self, ids: &[usize], sign: i64) {
        for &id in ids {
            if sign > 0 {
                self.refs[id] += 1;
            } else {
                self.refs[id] -= 1;
            }
        }
    }

    /// Count `pod` in (`sign` 1) or out of (-1) the domains of node `slot`.
    pub(crate) fn account(&mut self, pod: &BoundPod, slot: u32, sign: i64) {
        let keys = &self.keys;
        for t in self.terms.iter_mut().flatten() {
            if t.selects(&pod.namespace, &pod.labels) {
                let v = keys[t.key].value(slot);
                Term::bump(&mut t.matching, &mut t.matching_total, v, sign);
            }
        }
        for &id in &pod.anti_terms {
            if let Some(t) = self.terms[id].as_mut() {
                let v = keys[t.key].value(slot);
                Term::bump(&mut t.anti_owners, &mut t.anti_owner_total, v, sign);
            }
        }
        if let Some(owner) = &pod.owner {
            let spread = self.spread.entry(owner.clone()).or_default();
            bump_map(&mut spread.per_node, slot, sign);
            let zone = keys[ZONE_KEY].value(slot);
            if zone != NO_VALUE {
                bump_map(&mut spread.per_zone, zone, sign);
            }
            if spread.per_node.is_empty() {
                self.spread.remove(owner);
            }
        }
    }
}
