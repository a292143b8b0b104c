//! What constrains where a pod may run: taints and tolerations, node and
//! pod affinity. The types only; the scheduler's filters live elsewhere.

use super::{LabelSelector, Labels, Time};
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// What a taint does to pods that do not tolerate it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub enum TaintEffect {
    /// New pods are not scheduled here.
    #[default]
    NoSchedule,
    /// The scheduler avoids the node when it can.
    PreferNoSchedule,
    /// Running pods are evicted too.
    NoExecute,
}

/// A mark on a node that repels pods without a matching toleration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Taint {
    pub key: String,
    pub value: String,
    pub effect: TaintEffect,
    /// When a NoExecute taint was added (evictions count from here).
    pub time_added: Option<Time>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub enum TolerationOperator {
    #[default]
    Equal,
    Exists,
}

/// A pod's permission to run on nodes with a matching taint.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Toleration {
    /// Empty with operator Exists tolerates every taint.
    pub key: String,
    pub operator: TolerationOperator,
    pub value: String,
    /// None tolerates every effect.
    pub effect: Option<TaintEffect>,
    /// For NoExecute: how long the pod stays bound after the taint appears.
    pub toleration_seconds: Option<i64>,
}

impl Toleration {
    /// Whether this toleration covers `taint`.
    pub fn tolerates(&self, taint: &Taint) -> bool {
        if self.effect.is_some_and(|e| e != taint.effect) {
            return false;
        }
        if self.key.is_empty() {
            return self.operator == TolerationOperator::Exists;
        }
        self.key == taint.key
            && match self.operator {
                TolerationOperator::Exists => true,
                TolerationOperator::Equal => self.value == taint.value,
            }
    }
}

/// Operators of node selector requirements (node labels may also compare as integers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub enum NodeSelectorOperator {
    #[default]
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct NodeSelectorRequirement {
    pub key: String,
    pub operator: NodeSelectorOperator,
    pub values: Vec<String>,
}

impl NodeSelectorRequirement {
    /// Whether a node with `labels` satisfies this requirement.
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.key);
        let as_int = |s: &str| s.parse::<i64>().ok();
        let bound = || self.values.first().and_then(|v| as_int(v));
        match self.operator {
            NodeSelectorOperator::In => value.is_some_and(|v| self.values.contains(v)),
            NodeSelectorOperator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            NodeSelectorOperator::Exists => value.is_some(),
            NodeSelectorOperator::DoesNotExist => value.is_none(),
            NodeSelectorOperator::Gt => {
                matches!((value.and_then(|v| as_int(v)), bound()), (Some(v), Some(b)) if v > b)
            }
            NodeSelectorOperator::Lt => {
                matches!((value.and_then(|v| as_int(v)), bound()), (Some(v), Some(b)) if v < b)
            }
        }
    }
}

/// Terms ANDed together; an empty term matches nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct NodeSelectorTerm {
    pub match_expressions: Vec<NodeSelectorRequirement>,
}

impl NodeSelectorTerm {
    pub fn matches(&self, labels: &Labels) -> bool {
        !self.match_expressions.is_empty()
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }
}

/// Terms ORed together.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct NodeSelector {
    pub node_selector_terms: Vec<NodeSelectorTerm>,
}

impl NodeSelector {
    pub fn matches(&self, labels: &Labels) -> bool {
        self.node_selector_terms.iter().any(|t| t.matches(labels))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct PreferredSchedulingTerm {
    /// 1 to 100.
    pub weight: i32,
    pub preference: NodeSelectorTerm,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct NodeAffinity {
    pub required_during_scheduling_ignored_during_execution: Option<NodeSelector>,
    pub preferred_during_scheduling_ignored_during_execution: Vec<PreferredSchedulingTerm>,
}

/// Pods matched by `label_selector` in `namespaces` (the pod's own when
/// empty), co-located or kept apart per value of the node label `topology_key`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct PodAffinityTerm {
    pub label_selector: Option<LabelSelector>,
    pub namespaces: Vec<String>,
    pub topology_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct WeightedPodAffinityTerm {
    /// 1 to 100.
    pub weight: i32,
    pub pod_affinity_term: PodAffinityTerm,
}

/// Used for both pod affinity and pod anti-affinity.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct PodAffinity {
    pub required_during_scheduling_ignored_during_execution: Vec<PodAffinityTerm>,
    pub preferred_during_scheduling_ignored_during_execution: Vec<WeightedPodAffinityTerm>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Affinity {
    pub node_affinity: Option<NodeAffinity>,
    pub pod_affinity: Option<PodAffinity>,
    pub pod_anti_affinity: Option<PodAffinity>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn taint(key: &str, value: &str, effect: TaintEffect) -> Taint {
        Taint {
            key: key.into(),
            value: value.into(),
            effect,
            time_added: None,
        }
    }

    #[test]
    fn toleration_table() {
        let gpu = taint("gpu", "true", TaintEffect::NoSchedule);
        let t = |key: &str, op, value: &str, effect| Toleration {
            key: key.into(),
            operator: op,
            value: value.into(),
            effect,
            toleration_seconds: None,
        };
        use TolerationOperator::*;
        let cases = [
            (t("gpu", Equal, "true", Some(TaintEffect::NoSchedule)), true),
            (t("gpu", Equal, "true", None), true),
            (t("gpu", Equal, "false", None), false),
            (t("gpu", Exists, "", None), true),
            (t("gpu", Exists, "", Some(TaintEffect::NoExecute)), false),
            (t("", Exists, "", None), true),
            (t("", Equal, "", None), false),
            (t("other", Exists, "", None), false),
        ];
        for (tol, want) in cases {
            assert_eq!(tol.tolerates(&gpu), want, "{tol:?}");
        }
    }

    #[test]
    fn node_selector_requirements() {
        let labels: Labels = [("zone", "a"), ("cores", "16")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let r = |key: &str, operator, values: &[&str]| NodeSelectorRequirement {
            key: key.into(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
        };
        use NodeSelectorOperator::*;
        assert!(r("zone", In, &["a", "b"]).matches(&labels));
        assert!(!r("zone", NotIn, &["a"]).matches(&labels));
        assert!(r("cores", Gt, &["8"]).matches(&labels));
        assert!(!r("cores", Lt, &["8"]).matches(&labels));
        assert!(!r("zone", Gt, &["8"]).matches(&labels));
        assert!(r("ssd", DoesNotExist, &[]).matches(&labels));
        assert!(!NodeSelectorTerm::default().matches(&labels));
    }
}
