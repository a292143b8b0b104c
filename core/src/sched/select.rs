//! Choosing a node: filter the nodes (stopping once enough are feasible),
//! score the feasible ones, take the highest total, break ties at random.
//! When none is feasible, say why per node, as kube-scheduler does.

use super::cache::ClusterCache;
use super::filters::{self, Reason};
use super::nodeinfo::NodeInfo;
use super::podinfo::PodInfo;
use super::scores::{self, ScoreWeights};
use super::topology::{Spread, Topology};
use crate::model::Pod;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

/// A tiny xorshift64 generator: ties between equally good nodes are broken
/// with it. Seed it with a constant in tests (deterministic) and from the
/// clock in production.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> XorShift {
        // Zero is the one state xorshift never leaves.
        XorShift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform-enough in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// How the scheduler trades thoroughness for speed.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// kube-scheduler's percentageOfNodesToScore: filtering stops once this
    /// share of the nodes is found feasible, and only those are scored.
    /// 0 is adaptive as in kube-scheduler: 50% less 1% per 125 nodes, at
    /// least 5% (10% of 5,000 nodes); 100 examines every node. The scan
    /// starts where the previous pod's stopped, so every node gets its turn.
    pub percentage_of_nodes_to_score: u32,
    /// Never stop with fewer feasible nodes than this (kube-scheduler: 100).
    pub min_feasible_nodes: usize,
    pub weights: ScoreWeights,
}

impl Default for SchedulerConfig {
    fn default() -> SchedulerConfig {
        SchedulerConfig {
            percentage_of_nodes_to_score: 0,
            min_feasible_nodes: 100,
            weights: ScoreWeights::default(),
        }
    }
}

impl SchedulerConfig {
    /// How many feasible nodes to look for among `nodes`.
    pub fn feasible_nodes_to_find(&self, nodes: usize) -> usize {
        let pct = match self.percentage_of_nodes_to_score {
            0 => 50usize.saturating_sub(nodes / 125).max(5),
            p => (p as usize).min(100),
        };
        if nodes <= self.min_feasible_nodes || pct >= 100 {
            return nodes;
        }
        (nodes * pct / 100).max(self.min_feasible_nodes)
    }
}

/// Where the pod goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub node: String,
    /// The weighted total of the chosen node.
    pub score: i64,
    /// Feasible nodes found (and scored).
    pub feasible: usize,
    /// Nodes the filters ran on.
    pub evaluated: usize,
}

/// No node may take the pod, and why: per reason, how many nodes failed
/// with it (each node counts once, under the first filter it failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unschedulable {
    pub nodes: usize,
    /// Most frequent first.
    pub reasons: Vec<(String, usize)>,
}

impl Unschedulable {
    fn new(nodes: usize, tally: &[(Reason<'_>, usize)]) -> Unschedulable {
        let mut reasons: Vec<(String, usize)> =
            tally.iter().map(|(r, n)| (r.to_string(), *n)).collect();
        reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Unschedulable { nodes, reasons }
    }
}

impl fmt::Display for Unschedulable {
    /// `0/5 nodes are available: 3 Insufficient memory, 2 node(s) had
    /// untolerated taint {gpu: NoSchedule}.`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0/{} nodes are available", self.nodes)?;
        for (i, (reason, n)) in self.reasons.iter().enumerate() {
            let sep = if i == 0 { ": " } else { ", " };
            write!(f, "{sep}{n} {reason}")?;
        }
        f.write_str(".")
    }
}

/// A feasible node's raw scores, normalized once all are known.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    slot: u32,
    /// Weighted least-allocated and balanced-allocation (already 0–100).
    base: i64,
    node_affinity: i64,
    pod_affinity: i64,
    taints: i64,
    spread_node: u32,
    spread_zone: Option<u32>,
}

impl Candidate {
    fn new(
        pod: &PodInfo<'_>,
        spread: Option<&Spread>,
        node: &NodeInfo,
        topo: &Topology,
        w: &ScoreWeights,
    ) -> Candidate {
        let (spread_node, spread_zone) = scores::spread_counts(spread, node, topo);
        Candidate {
            slot: node.slot,
            base: w.least_allocated * scores::least_allocated(pod, node)
                + w.balanced_allocation * scores::balanced_allocation(pod, node),
            node_affinity: scores::node_affinity_raw(pod, node),
            pod_affinity: scores::pod_affinity_raw(pod, node, topo),
            taints: scores::taint_raw(pod, node),
            spread_node,
            spread_zone,
        }
    }
}

/// The largest and smallest raw values over the candidates.
#[derive(Debug, Default)]
struct Extremes {
    node_affinity: i64,
    pod_affinity: (i64, i64),
    taints: i64,
    spread_node: u32,
    spread_zone: u32,
}

impl Extremes {
    fn of(cands: &[Candidate]) -> Extremes {
        let mut e = Extremes {
            pod_affinity: (i64::MAX, i64::MIN),
            ..Extremes::default()
        };
        for c in cands {
            e.node_affinity = e.node_affinity.max(c.node_affinity);
            e.pod_affinity = (
                e.pod_affinity.0.min(c.pod_affinity),
                e.pod_affinity.1.max(c.pod_affinity),
            );
            e.taints = e.taints.max(c.taints);
            e.spread_node = e.spread_node.max(c.spread_node);
            e.spread_zone = e.spread_zone.max(c.spread_zone.unwrap_or(0));
        }
        e
    }

    fn total(&self, c: &Candidate, w: &ScoreWeights) -> i64 {
        c.base
            + w.node_affinity * scores::normalize_max(c.node_affinity, self.node_affinity)
            + w.pod_affinity
                * scores::normalize_range(c.pod_affinity, self.pod_affinity.0, self.pod_affinity.1)
            + w.taint_toleration * scores::normalize_reverse(c.taints, self.taints)
            + w.spread
                * scores::normalize_spread(
                    c.spread_node,
                    self.spread_node,
                    c.spread_zone,
                    self.spread_zone,
                )
    }
}

/// Places pods one at a time on a [`ClusterCache`]. Keeps only its
/// configuration, the tie-breaking generator, where the next scan starts,
/// and a scratch buffer reused from pod to pod.
#[derive(Debug, Clone)]
pub struct Scheduler {
    config: SchedulerConfig,
    rng: XorShift,
    next_start: usize,
    candidates: Vec<Candidate>,
}

impl Scheduler {
    pub fn new(config: SchedulerConfig, seed: u64) -> Scheduler {
        Scheduler {
            config,
            rng: XorShift::new(seed),
            next_start: 0,
            candidates: Vec::new(),
        }
    }

    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// Choose a node for `pod`. The cache is not changed but for interning
    /// the pod's affinity terms: account the pod with
    /// [`ClusterCache::add_pod`] once it is given the node.
    pub fn schedule(
        &mut self,
        cache: &mut ClusterCache,
        pod: &Pod,
    ) -> Result<Placement, Unschedulable> {
        let info = cache.prepare(pod);
        self.schedule_prepared(cache, &info)
    }

    /// [`schedule`](Self::schedule) for a pod already prepared by
    /// [`ClusterCache::prepare`] on this cache, unchanged since.
    pub fn schedule_prepared(
        &mut self,
        cache: &ClusterCache,
        pod: &PodInfo<'_>,
    ) -> Result<Placement, Unschedulable> {
        let slots = cache.nodes.len();
        let want = self.config.feasible_nodes_to_find(cache.node_count());
        let topo = cache.topology();
        let weights = self.config.weights;
        let start = if slots == 0 {
            0
        } else {
            self.next_start % slots
        };
        let spread = scores::owner_spread(pod, topo);
        let mut tally: Vec<(Reason<'_>, usize)> = Vec::new();
        self.candidates.clear();
        let mut scanned = 0;
        let mut evaluated = 0;
        while scanned < slots && self.candidates.len() < want {
            let slot = if start + scanned >= slots {
                start + scanned - slots
            } else {
                start + scanned
            };
            scanned += 1;
            let Some(node) = &cache.nodes[slot] else {
                continue;
            };
            evaluated += 1;
            match filters::check(pod, node, topo) {
                Ok(()) => self
                    .candidates
                    .push(Candidate::new(pod, spread, node, topo, &weights)),
                Err(reason) => match tally.iter_mut().find(|(r, _)| *r == reason) {
                    Some((_, n)) => *n += 1,
                    None => tally.push((reason, 1)),
                },
            }
        }
        self.next_start = if slots == 0 {
            0
        } else {
            (start + scanned) % slots
        };
        if self.candidates.is_empty() {
            return Err(Unschedulable::new(cache.node_count(), &tally));
        }
        let (best, score) = self.choose(&weights);
        let node = cache.nodes[best as usize].as_ref().expect("candidate slot");
        Ok(Placement {
            node: node.name.clone(),
            score,
            feasible: self.candidates.len(),
            evaluated,
        })
    }

    /// The candidate with the highest total; among equals, each is as likely.
    fn choose(&mut self, weights: &ScoreWeights) -> (u32, i64) {
        let extremes = Extremes::of(&self.candidates);
        let mut best = (self.candidates[0].slot, i64::MIN);
        let mut ties = 0u64;
        for c in &self.candidates {
            let total = extremes.total(c, weights);
            if total > best.1 {
                best = (c.slot, total);
                ties = 1;
            } else if total == best.1 {
                ties += 1;
                if self.rng.below(ties) == 0 {
                    best.0 = c.slot;
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests;
