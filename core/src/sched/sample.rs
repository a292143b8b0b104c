//! Nodes and pods built in one line, shared by the scheduler's tests and
//! its benchmark (and the scheduler service's tests): a Ready node with
//! CPU, memory and a zone; a pod with requests; the constraints added
//! one at a time; and the benchmark [`Workload`]s, shared by the
//! algorithm's bench and the service's end-to-end one.

use super::{HOSTNAME_LABEL, ZONE_LABEL};
use crate::model::*;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

/// A Ready node with `cpu_millis`, `memory` bytes, 110 pods allocatable,
/// its hostname label and, unless empty, a zone label.
pub fn node(name: &str, cpu_millis: i64, memory: i64, zone: &str) -> Node {
    let mut n = Node {
        metadata: ObjectMeta::named("", name),
        ..Node::default()
    };
    n.metadata
        .labels
        .insert(HOSTNAME_LABEL.into(), name.to_string());
    if !zone.is_empty() {
        n.metadata.labels.insert(ZONE_LABEL.into(), zone.into());
    }
    let a = &mut n.status.allocatable;
    a.insert(resource::CPU.into(), Quantity::from_millis(cpu_millis));
    a.insert(resource::MEMORY.into(), Quantity::from_bytes(memory));
    a.insert(resource::PODS.into(), Quantity::from_units(110));
    n.status.conditions.push(NodeCondition {
        type_: NodeConditionType::Ready,
        status: ConditionStatus::True,
        ..NodeCondition::default()
    });
    n
}

/// A taint of `effect`.
pub fn taint(key: &str, value: &str, effect: TaintEffect) -> Taint {
    Taint {
        key: key.into(),
        value: value.into(),
        effect,
        time_added: None,
    }
}

/// A pod in `namespace` with one container requesting `cpu_millis` and
/// `memory` bytes (zero: not requested), not yet bound.
pub fn pod(namespace: &str, name: &str, cpu_millis: i64, memory: i64) -> Pod {
    let mut requests = ResourceList::new();
    if cpu_millis > 0 {
        requests.insert(resource::CPU.into(), Quantity::from_millis(cpu_millis));
    }
    if memory > 0 {
        requests.insert(resource::MEMORY.into(), Quantity::from_bytes(memory));
    }
    Pod {
        metadata: ObjectMeta::named(namespace, name),
        spec: PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: "busybox:1.36".into(),
                resources: ResourceRequirements {
                    requests,
                    limits: ResourceList::new(),
                },
                ..Container::default()
            }],
            ..PodSpec::default()
        },
        ..Pod::default()
    }
}

/// `pairs` as labels.
pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `pod` owned by the ReplicaSet `name` (uid `rs-<name>`).
pub fn owned_by(mut pod: Pod, name: &str) -> Pod {
    pod.metadata.owner_references.push(OwnerReference {
        api_version: "apps/v1".into(),
        kind: Kind::ReplicaSet,
        name: name.into(),
        uid: alloc::format!("rs-{name}"),
        controller: true,
        block_owner_deletion: true,
    });
    pod
}

/// A term selecting pods labelled `app=<app>` across `topology_key`.
pub fn app_term(app: &str, topology_key: &str) -> PodAffinityTerm {
    PodAffinityTerm {
        label_selector: Some(LabelSelector::from_labels(labels(&[("app", app)]))),
        namespaces: Vec::new(),
        topology_key: topology_key.into(),
    }
}

fn affinity(pod: &mut Pod) -> &mut Affinity {
    pod.spec.affinity.get_or_insert_with(Affinity::default)
}

/// `pod` may not share a `topology_key` domain with pods labelled `app=<app>`.
pub fn anti_affine(pod: Pod, app: &str, topology_key: &str) -> Pod {
    require_pods(pod, |a| &mut a.pod_anti_affinity, app, topology_key)
}

/// `pod` must share a `topology_key` domain with pods labelled `app=<app>`.
pub fn affine(pod: Pod, app: &str, topology_key: &str) -> Pod {
    require_pods(pod, |a| &mut a.pod_affinity, app, topology_key)
}

fn require_pods(
    mut pod: Pod,
    which: fn(&mut Affinity) -> &mut Option<PodAffinity>,
    app: &str,
    topology_key: &str,
) -> Pod {
    which(affinity(&mut pod))
        .get_or_insert_with(PodAffinity::default)
        .required_during_scheduling_ignored_during_execution
        .push(app_term(app, topology_key));
    pod
}

/// `pod` must run on a node whose label `key` is one of `values`.
pub fn requires_node_label(mut pod: Pod, key: &str, values: &[&str]) -> Pod {
    let term = NodeSelectorTerm {
        match_expressions: vec![NodeSelectorRequirement {
            key: key.into(),
            operator: NodeSelectorOperator::In,
            values: values.iter().map(|v| String::from(*v)).collect(),
        }],
    };
    affinity(&mut pod)
        .node_affinity
        .get_or_insert_with(NodeAffinity::default)
        .required_during_scheduling_ignored_during_execution
        .get_or_insert_with(NodeSelector::default)
        .node_selector_terms
        .push(term);
    pod
}

/// `pod` tolerates taints `key` of any value and effect.
pub fn tolerating(mut pod: Pod, key: &str) -> Pod {
    pod.spec.tolerations.push(Toleration {
        key: key.into(),
        operator: TolerationOperator::Exists,
        ..Toleration::default()
    });
    pod
}

/// `pod` bound to `node`.
pub fn bound(mut pod: Pod, node: &str) -> Pod {
    pod.spec.node_name = node.into();
    pod
}

const GI: i64 = 1 << 30;
const MI: i64 = 1 << 20;

/// The benchmark workloads, as in kube-scheduler's scheduler_perf: pods
/// `0..n` placed on nodes `0..m` of 32 CPUs and 128 GiB over three zones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// 100m CPU / 128 MiB pods of 100 ReplicaSets (the spread score on).
    Plain,
    /// Two apps of `n/2` pods each, every pod with required anti-affinity
    /// to its own app by hostname (so each app fills every node once when
    /// `n = 2m`; the last pods of an app have one feasible node left).
    AntiAffinity,
    /// Every other node tainted `dedicated=infra:NoSchedule` and labelled
    /// `pool=infra`; every pod requires `pool in (infra)` and tolerates the
    /// taint.
    NodeAffinity,
}

impl Workload {
    pub const ALL: [Workload; 3] = [
        Workload::Plain,
        Workload::AntiAffinity,
        Workload::NodeAffinity,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Plain => "plain",
            Workload::AntiAffinity => "anti-affinity (hostname)",
            Workload::NodeAffinity => "node affinity + tolerations",
        }
    }

    /// The `count` nodes this workload runs on.
    pub fn nodes(self, count: usize) -> Vec<Node> {
        (0..count)
            .map(|i| {
                let mut n = node(
                    &alloc::format!("node-{i:05}"),
                    32_000,
                    128 * GI,
                    ["zone-a", "zone-b", "zone-c"][i % 3],
                );
                if self == Workload::NodeAffinity && i % 2 == 0 {
                    n.metadata.labels.insert("pool".into(), "infra".into());
                    n.spec
                        .taints
                        .push(taint("dedicated", "infra", TaintEffect::NoSchedule));
                }
                n
            })
            .collect()
    }

    /// Pod `i` of this workload, in namespace `bench`, unbound.
    pub fn pod(self, i: usize) -> Pod {
        match self {
            Workload::Plain => plain_pod(i),
            Workload::AntiAffinity => {
                let app = ["anti-a", "anti-b"][i % 2];
                let p = pod("bench", &alloc::format!("anti-{i}"), 100, 128 * MI);
                let mut p = owned_by(p, app);
                p.metadata.labels = labels(&[("app", app)]);
                anti_affine(p, app, HOSTNAME_LABEL)
            }
            Workload::NodeAffinity => {
                let p = requires_node_label(plain_pod(i), "pool", &["infra"]);
                tolerating(p, "dedicated")
            }
        }
    }
}

fn plain_pod(i: usize) -> Pod {
    let rs = alloc::format!("rs-{}", i % 100);
    let mut p = owned_by(
        pod("bench", &alloc::format!("plain-{i}"), 100, 128 * MI),
        &rs,
    );
    p.metadata.labels = labels(&[("app", &rs)]);
    p
}
