//! A pod as the scheduler handles it: the pod being placed, with what it
//! asks for worked out once ([`PodInfo`]), and a pod already bound, as the
//! cache keeps it ([`BoundPod`]).

use super::nodeinfo::{HostPort, Resources};
use super::{NOT_READY_TAINT, UNSCHEDULABLE_TAINT};
use crate::model::{Pod, Taint, TaintEffect};
use crate::Labels;
use alloc::string::String;
use alloc::vec::Vec;

/// The pod (anti-)affinity terms of a pod, as ids of the cache's interned
/// terms. Filled by [`ClusterCache::prepare`](super::ClusterCache::prepare).
#[derive(Debug, Clone, Default)]
pub(crate) struct PodTerms {
    pub required_affinity: Vec<usize>,
    /// No bound pod matches the required affinity terms but the pod matches
    /// them itself: the first pod of a co-located group may go anywhere.
    pub affinity_self_match: bool,
    pub required_anti: Vec<usize>,
    /// Terms of bound pods' required anti-affinity that this pod matches.
    pub existing_anti: Vec<usize>,
    /// Preferred terms with their weight (negative for anti-affinity).
    pub preferred: Vec<(usize, i64)>,
}

/// The pod being scheduled, with what every filter and score needs worked
/// out once rather than per node.
#[derive(Debug, Clone)]
pub struct PodInfo<'p> {
    pub pod: &'p Pod,
    pub requests: Resources,
    pub score_requests: Resources,
    pub host_ports: Vec<HostPort>,
    pub tolerates_unschedulable: bool,
    pub tolerates_not_ready: bool,
    /// The controller whose pods the spread score keeps apart.
    pub owner: Option<String>,
    pub(crate) terms: PodTerms,
}

impl<'p> PodInfo<'p> {
    /// The pod without its pod (anti-)affinity resolved: enough for every
    /// filter and score but those two (use `ClusterCache::prepare` to schedule).
    pub fn new(pod: &'p Pod) -> PodInfo<'p> {
        let tolerates = |key: &str| {
            let taint = Taint {
                key: key.into(),
                effect: TaintEffect::NoSchedule,
                ..Taint::default()
            };
            pod.spec.tolerations.iter().any(|t| t.tolerates(&taint))
        };
        let requests = Resources::requested_by(pod);
        PodInfo {
            pod,
            requests,
            score_requests: requests.for_scoring(),
            host_ports: HostPort::of_pod(pod),
            tolerates_unschedulable: tolerates(UNSCHEDULABLE_TAINT),
            tolerates_not_ready: tolerates(NOT_READY_TAINT),
            owner: spread_owner(pod),
            terms: PodTerms::default(),
        }
    }

    pub fn namespace(&self) -> &str {
        &self.pod.metadata.namespace
    }

    pub fn labels(&self) -> &Labels {
        &self.pod.metadata.labels
    }
}

/// The uid (or, without one, the name) of the controller owning `pod`: pods
/// sharing it are spread apart.
pub(crate) fn spread_owner(pod: &Pod) -> Option<String> {
    let owner = pod.metadata.controller_ref()?;
    Some(if owner.uid.is_empty() {
        alloc::format!("{}/{}", owner.kind, owner.name)
    } else {
        owner.uid.clone()
    })
}

/// A pod bound to a node, as the cache keeps it.
#[derive(Debug, Clone)]
pub(crate) struct BoundPod {
    pub node: String,
    /// The node's slot; None while the node is not in the cache.
    pub slot: Option<u32>,
    pub namespace: String,
    pub labels: Labels,
    pub requests: Resources,
    pub host_ports: Vec<HostPort>,
    /// Interned terms of the pod's required anti-affinity.
    pub anti_terms: Vec<usize>,
    pub owner: Option<String>,
}

impl BoundPod {
    pub fn new(pod: &Pod) -> BoundPod {
        BoundPod {
            node: pod.spec.node_name.clone(),
            slot: None,
            namespace: pod.metadata.namespace.clone(),
            labels: pod.metadata.labels.clone(),
            requests: Resources::requested_by(pod),
            host_ports: HostPort::of_pod(pod),
            anti_terms: Vec::new(),
            owner: spread_owner(pod),
        }
    }
}
