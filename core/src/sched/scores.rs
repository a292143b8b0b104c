//! Scores: how good a feasible node is for a pod, each 0–100, summed with
//! [`ScoreWeights`]. Scores that need the other nodes to normalize (node
//! affinity, pod affinity, taints, spread) come in two halves: a raw value
//! per node, and a `normalize_*` function applied once the raw values of
//! every feasible node are known.

use super::nodeinfo::{NodeInfo, Resources};
use super::podinfo::PodInfo;
use super::topology::{Spread, Topology, NO_VALUE, ZONE_KEY};
use crate::model::TaintEffect;

/// The highest score of one scoring function.
pub const MAX_SCORE: i64 = 100;

/// How much each score counts in the total (kube-scheduler's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScoreWeights {
    pub least_allocated: i64,
    pub balanced_allocation: i64,
    pub node_affinity: i64,
    pub pod_affinity: i64,
    pub spread: i64,
    pub taint_toleration: i64,
}

impl Default for ScoreWeights {
    fn default() -> ScoreWeights {
        ScoreWeights {
            least_allocated: 1,
            balanced_allocation: 1,
            node_affinity: 2,
            pod_affinity: 2,
            spread: 2,
            taint_toleration: 3,
        }
    }
}

/// The share of `alloc` used once `used` is, in 0..=1.
fn fraction(used: i64, alloc: i64) -> f64 {
    if alloc <= 0 {
        1.0
    } else {
        (used as f64 / alloc as f64).clamp(0.0, 1.0)
    }
}

fn after(pod: &PodInfo<'_>, node: &NodeInfo) -> Resources {
    let mut r = node.score_requested;
    r.add(pod.score_requests, 1);
    r
}

/// Free CPU and memory after placing the pod, averaged: emptier is better.
pub fn least_allocated(pod: &PodInfo<'_>, node: &NodeInfo) -> i64 {
    let used = after(pod, node);
    let a = node.allocatable;
    let free = |used: i64, alloc: i64| {
        if alloc <= 0 || used > alloc {
            0
        } else {
            (alloc - used) * MAX_SCORE / alloc
        }
    };
    (free(used.cpu_millis, a.cpu_millis) + free(used.memory, a.memory)) / 2
}

/// CPU and memory used in the same proportion after placing the pod: 100
/// when equal, less the further apart (one minus their standard deviation).
pub fn balanced_allocation(pod: &PodInfo<'_>, node: &NodeInfo) -> i64 {
    let used = after(pod, node);
    let a = node.allocatable;
    let cpu = fraction(used.cpu_millis, a.cpu_millis);
    let mem = fraction(used.memory, a.memory);
    let std_dev = (cpu - mem).abs() / 2.0;
    ((1.0 - std_dev) * MAX_SCORE as f64) as i64
}

/// Sum of the weights of the preferred node affinity terms the node matches.
pub fn node_affinity_raw(pod: &PodInfo<'_>, node: &NodeInfo) -> i64 {
    let Some(na) = pod
        .pod
        .spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
    else {
        return 0;
    };
    na.preferred_during_scheduling_ignored_during_execution
        .iter()
        .filter(|t| t.preference.matches(&node.labels))
        .map(|t| i64::from(t.weight))
        .sum()
}

/// How many PreferNoSchedule taints of the node the pod does not tolerate.
pub fn taint_raw(pod: &PodInfo<'_>, node: &NodeInfo) -> i64 {
    let tolerations = &pod.pod.spec.tolerations;
    node.taints
        .iter()
        .filter(|t| t.effect == TaintEffect::PreferNoSchedule)
        .filter(|t| !tolerations.iter().any(|x| x.tolerates(t)))
        .count() as i64
}

/// Per preferred pod (anti-)affinity term, its weight times the pods it
/// selects in the node's domain (anti-affinity weights are negative).
pub fn pod_affinity_raw(pod: &PodInfo<'_>, node: &NodeInfo, topo: &Topology) -> i64 {
    pod.terms
        .preferred
        .iter()
        .map(|&(id, weight)| {
            let selected = topo.domain_counts(id, node.slot).map_or(0, |(m, _)| m);
            weight * i64::from(selected)
        })
        .sum()
}

/// Pods of the same owner as `pod` on the node and in the node's zone
/// (None when the node has no zone).
pub fn spread_raw(pod: &PodInfo<'_>, node: &NodeInfo, topo: &Topology) -> (u32, Option<u32>) {
    spread_counts(owner_spread(pod, topo), node, topo)
}

/// Where the pods of `pod`'s owner are: looked up by owner once per pod,
/// not once per node scored.
pub(crate) fn owner_spread<'t>(pod: &PodInfo<'_>, topo: &'t Topology) -> Option<&'t Spread> {
    pod.owner.as_ref().and_then(|o| topo.spread.get(o))
}

/// [`spread_raw`] given the owner's [`owner_spread`].
pub(crate) fn spread_counts(
    spread: Option<&Spread>,
    node: &NodeInfo,
    topo: &Topology,
) -> (u32, Option<u32>) {
    let zone = topo.value(ZONE_KEY, node.slot);
    let zone_count = |n: u32| (zone != NO_VALUE).then_some(n);
    let Some(spread) = spread else {
        return (0, zone_count(0));
    };
    let on_node = spread.per_node.get(&node.slot).copied().unwrap_or(0);
    let in_zone = spread.per_zone.get(&zone).copied().unwrap_or(0);
    (on_node, zone_count(in_zone))
}

/// `raw` scaled so that `max` (the highest raw value among the nodes) is 100.
pub fn normalize_max(raw: i64, max: i64) -> i64 {
    if max <= 0 {
        0
    } else {
        raw * MAX_SCORE / max
    }
}

/// The reverse: the highest raw value scores 0, zero scores 100.
pub fn normalize_reverse(raw: i64, max: i64) -> i64 {
    MAX_SCORE - normalize_max(raw, max)
}

/// `raw` placed in `min..=max` (values may be negative): min 0, max 100.
pub fn normalize_range(raw: i64, min: i64, max: i64) -> i64 {
    if max <= min {
        0
    } else {
        (raw - min) * MAX_SCORE / (max - min)
    }
}

/// kube-scheduler's selector spread: fewer pods of the owner on the node is
/// better, and when nodes have zones, fewer in the zone counts double.
pub fn normalize_spread(on_node: u32, max_node: u32, in_zone: Option<u32>, max_zone: u32) -> i64 {
    let node_score = normalize_reverse(i64::from(on_node), i64::from(max_node));
    match in_zone {
        Some(z) => {
            let zone_score = normalize_reverse(i64::from(z), i64::from(max_zone));
            (node_score + 2 * zone_score) / 3
        }
        None => node_score,
    }
}

#[cfg(test)]
mod tests;
