//! Validation of what steers a pod's placement: tolerations, node affinity
//! (node selector terms and their requirements) and pod (anti-)affinity.
//! Taints are a node's and are checked with the node.

use super::field::{FieldErrors, FieldPath};
use super::labels::validate_label_selector;
use super::names;
use crate::model::{
    Affinity, NodeSelectorOperator, NodeSelectorRequirement, NodeSelectorTerm, PodAffinity,
    PodAffinityTerm, TaintEffect, Toleration, TolerationOperator,
};

pub(crate) fn validate_tolerations(
    tolerations: &[Toleration],
    path: &FieldPath,
    errs: &mut FieldErrors,
) {
    for (i, t) in tolerations.iter().enumerate() {
        let at = path.index(i);
        if t.key.is_empty() {
            if t.operator != TolerationOperator::Exists {
                errs.push(at.child("operator").invalid(
                    "Equal",
                    "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
                ));
            }
        } else if let Err(e) = names::qualified_name(&t.key) {
            errs.push(e.at(&at.child("key"), &t.key));
        }
        let value = at.child("value");
        match t.operator {
            TolerationOperator::Exists if !t.value.is_empty() => {
                errs.push(
                    value.invalid(&t.value, "value must be empty when `operator` is 'Exists'"),
                );
            }
            TolerationOperator::Equal => {
                if let Err(e) = names::label_value(&t.value) {
                    errs.push(e.at(&value, &t.value));
                }
            }
            TolerationOperator::Exists => {}
        }
        if t.toleration_seconds.is_some() && t.effect != Some(TaintEffect::NoExecute) {
            let effect = t.effect.map_or("", effect_name);
            errs.push(at.child("effect").invalid(
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
    }
}

pub(crate) fn effect_name(e: TaintEffect) -> &'static str {
    match e {
        TaintEffect::NoSchedule => "NoSchedule",
        TaintEffect::PreferNoSchedule => "PreferNoSchedule",
        TaintEffect::NoExecute => "NoExecute",
    }
}

/// Weights of preferred terms run from 1 to 100.
fn validate_weight(weight: i32, path: &FieldPath, errs: &mut FieldErrors) {
    if !(1..=100).contains(&weight) {
        errs.push(path.invalid(weight, "must be in the range 1-100"));
    }
}

pub(crate) fn validate_affinity(affinity: &Affinity, path: &FieldPath, errs: &mut FieldErrors) {
    if let Some(node) = &affinity.node_affinity {
        let at = path.child("nodeAffinity");
        if let Some(required) = &node.required_during_scheduling_ignored_during_execution {
            let req = at.child("requiredDuringSchedulingIgnoredDuringExecution");
            let terms = req.child("nodeSelectorTerms");
            if required.node_selector_terms.is_empty() {
                errs.push(terms.required());
            }
            for (i, term) in required.node_selector_terms.iter().enumerate() {
                validate_node_selector_term(term, &terms.index(i), errs);
            }
        }
        let preferred = at.child("preferredDuringSchedulingIgnoredDuringExecution");
        for (i, p) in node
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .enumerate()
        {
            let at = preferred.index(i);
            validate_weight(p.weight, &at.child("weight"), errs);
            validate_node_selector_term(&p.preference, &at.child("preference"), errs);
        }
    }
    if let Some(pa) = &affinity.pod_affinity {
        validate_pod_affinity(pa, &path.child("podAffinity"), errs);
    }
    if let Some(pa) = &affinity.pod_anti_affinity {
        validate_pod_affinity(pa, &path.child("podAntiAffinity"), errs);
    }
}

/// A term needs at least one requirement (an empty term matches nothing,
/// which is never what was meant).
fn validate_node_selector_term(term: &NodeSelectorTerm, path: &FieldPath, errs: &mut FieldErrors) {
    let exprs = path.child("matchExpressions");
    if term.match_expressions.is_empty() {
        errs.push(exprs.required());
    }
    for (i, r) in term.match_expressions.iter().enumerate() {
        validate_node_selector_requirement(r, &exprs.index(i), errs);
    }
}

fn validate_node_selector_requirement(
    r: &NodeSelectorRequirement,
    path: &FieldPath,
    errs: &mut FieldErrors,
) {
    if let Err(e) = names::qualified_name(&r.key) {
        errs.push(e.at(&path.child("key"), &r.key));
    }
    let values = path.child("values");
    match r.operator {
        NodeSelectorOperator::In | NodeSelectorOperator::NotIn => {
            if r.values.is_empty() {
                errs.push(values.required());
            }
            for (j, v) in r.values.iter().enumerate() {
                if let Err(e) = names::label_value(v) {
                    errs.push(e.at(&values.index(j), v));
                }
            }
        }
        NodeSelectorOperator::Exists | NodeSelectorOperator::DoesNotExist => {
            if !r.values.is_empty() {
                errs.push(values.forbidden(
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                ));
            }
        }
        NodeSelectorOperator::Gt | NodeSelectorOperator::Lt => match r.values.as_slice() {
            [one] => {
                if one.parse::<i64>().is_err() {
                    errs.push(values.index(0).invalid(one, "must be an integer"));
                }
            }
            _ => errs.push(values.invalid(
                r.values.len(),
                "must have exactly one value when `operator` is 'Lt' or 'Gt'",
            )),
        },
    }
}

fn validate_pod_affinity(pa: &PodAffinity, path: &FieldPath, errs: &mut FieldErrors) {
    let required = path.child("requiredDuringSchedulingIgnoredDuringExecution");
    for (i, term) in pa
        .required_during_scheduling_ignored_during_execution
        .iter()
        .enumerate()
    {
        validate_pod_affinity_term(term, &required.index(i), errs);
    }
    let preferred = path.child("preferredDuringSchedulingIgnoredDuringExecution");
    for (i, w) in pa
        .preferred_during_scheduling_ignored_during_execution
        .iter()
        .enumerate()
    {
        let at = preferred.index(i);
        validate_weight(w.weight, &at.child("weight"), errs);
        validate_pod_affinity_term(&w.pod_affinity_term, &at.child("podAffinityTerm"), errs);
    }
}

fn validate_pod_affinity_term(term: &PodAffinityTerm, path: &FieldPath, errs: &mut FieldErrors) {
    if let Some(sel) = &term.label_selector {
        validate_label_selector(sel, &path.child("labelSelector"), errs);
    }
    let namespaces = path.child("namespaces");
    for (i, ns) in term.namespaces.iter().enumerate() {
        if let Err(e) = names::dns1123_label(ns) {
            errs.push(e.at(&namespaces.index(i), ns));
        }
    }
    if let Err(e) = names::qualified_name(&term.topology_key) {
        errs.push(e.at(&path.child("topologyKey"), &term.topology_key));
    }
}

#[cfg(test)]
mod tests {
    use super::super::field::FieldErrorType::*;
    use super::super::testing::{expect, labels, Want};
    use super::*;
    use crate::model::{
        LabelSelector, NodeAffinity, NodeSelector, PreferredSchedulingTerm, WeightedPodAffinityTerm,
    };
    use alloc::string::ToString;
    use alloc::vec;

    fn toleration(key: &str, operator: TolerationOperator, value: &str) -> Toleration {
        Toleration {
            key: key.into(),
            operator,
            value: value.into(),
            effect: None,
            toleration_seconds: None,
        }
    }

    #[test]
    fn toleration_rules() {
        use TolerationOperator::*;
        let cases: &[(&str, Toleration, Want)] = &[
            ("exists all", toleration("", Exists, ""), None),
            ("equal", toleration("gpu", Equal, "true"), None),
            (
                "empty key with Equal",
                toleration("", Equal, ""),
                Some(("spec.tolerations[0].operator", Invalid)),
            ),
            (
                "exists with value",
                toleration("gpu", Exists, "x"),
                Some(("spec.tolerations[0].value", Invalid)),
            ),
            (
                "bad key",
                toleration("a b", Exists, ""),
                Some(("spec.tolerations[0].key", Invalid)),
            ),
            (
                "bad value",
                toleration("gpu", Equal, "a b"),
                Some(("spec.tolerations[0].value", Invalid)),
            ),
            (
                "seconds with NoExecute",
                Toleration {
                    effect: Some(TaintEffect::NoExecute),
                    toleration_seconds: Some(300),
                    ..toleration("node.kubernetes.io/unreachable", Exists, "")
                },
                None,
            ),
            (
                "seconds without NoExecute",
                Toleration {
                    effect: Some(TaintEffect::NoSchedule),
                    toleration_seconds: Some(300),
                    ..toleration("gpu", Exists, "")
                },
                Some(("spec.tolerations[0].effect", Invalid)),
            ),
        ];
        let path = FieldPath::new("spec").child("tolerations");
        for (name, t, want) in cases {
            let mut errs = FieldErrors::new();
            validate_tolerations(core::slice::from_ref(t), &path, &mut errs);
            expect(name, errs.into_result(), *want);
        }
    }

    fn req(key: &str, operator: NodeSelectorOperator, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.into(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    fn node_affinity(terms: vec::Vec<NodeSelectorTerm>) -> Affinity {
        Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: terms,
                }),
                ..NodeAffinity::default()
            }),
            ..Affinity::default()
        }
    }

    #[test]
    fn node_affinity_rules() {
        use NodeSelectorOperator::*;
        let t = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms";
        let term = |r| NodeSelectorTerm {
            match_expressions: vec![r],
        };
        let cases: vec::Vec<(Affinity, Want)> = vec![
            (node_affinity(vec![term(req("zone", In, &["a", "b"]))]), None),
            (node_affinity(vec![term(req("ssd", Exists, &[]))]), None),
            (node_affinity(vec![term(req("cores", Gt, &["8"]))]), None),
            (node_affinity(vec![]), Some((t, Required))),
            (node_affinity(vec![NodeSelectorTerm::default()]),
                Some(("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions", Required))),
            (node_affinity(vec![term(req("zone", In, &[]))]),
                Some(("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values", Required))),
            (node_affinity(vec![term(req("ssd", DoesNotExist, &["x"]))]),
                Some(("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values", Forbidden))),
            (node_affinity(vec![term(req("cores", Lt, &["8", "9"]))]),
                Some(("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values", Invalid))),
            (node_affinity(vec![term(req("cores", Gt, &["eight"]))]),
                Some(("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values[0]", Invalid))),
            (node_affinity(vec![term(req("bad key", Exists, &[]))]),
                Some(("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key", Invalid))),
            (Affinity {
                node_affinity: Some(NodeAffinity {
                    preferred_during_scheduling_ignored_during_execution: vec![PreferredSchedulingTerm {
                        weight: 101,
                        preference: term(req("zone", In, &["a"])),
                    }],
                    ..NodeAffinity::default()
                }),
                ..Affinity::default()
            }, Some(("spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight", Invalid))),
        ];
        let path = FieldPath::new("spec").child("affinity");
        for (i, (a, want)) in cases.iter().enumerate() {
            let mut errs = FieldErrors::new();
            validate_affinity(a, &path, &mut errs);
            expect(&alloc::format!("case {i}"), errs.into_result(), *want);
        }
    }

    #[test]
    fn pod_affinity_rules() {
        let term = |key: &str, sel: LabelSelector| PodAffinityTerm {
            label_selector: Some(sel),
            namespaces: vec!["default".into()],
            topology_key: key.into(),
        };
        let web = LabelSelector::from_labels(labels(&[("app", "web")]));
        let anti = |terms: vec::Vec<PodAffinityTerm>, weight: i32| Affinity {
            pod_anti_affinity: Some(PodAffinity {
                required_during_scheduling_ignored_during_execution: terms,
                preferred_during_scheduling_ignored_during_execution: vec![
                    WeightedPodAffinityTerm {
                        weight,
                        pod_affinity_term: PodAffinityTerm {
                            topology_key: "topology.kubernetes.io/zone".into(),
                            ..PodAffinityTerm::default()
                        },
                    },
                ],
            }),
            ..Affinity::default()
        };
        let cases: vec::Vec<(Affinity, Want)> = vec![
            (anti(vec![term("kubernetes.io/hostname", web.clone())], 100), None),
            (anti(vec![term("", web.clone())], 1), Some(("spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey", Required))),
            (anti(vec![], 0), Some(("spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight", Invalid))),
            (anti(vec![PodAffinityTerm {
                namespaces: vec!["Prod".into()],
                ..term("kubernetes.io/hostname", web.clone())
            }], 1), Some(("spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].namespaces[0]", Invalid))),
            (anti(vec![term("kubernetes.io/hostname", LabelSelector::from_labels(labels(&[("app", "-x")])))], 1),
                Some(("spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector.matchLabels.app", Invalid))),
        ];
        let path = FieldPath::new("spec").child("affinity");
        for (i, (a, want)) in cases.iter().enumerate() {
            let mut errs = FieldErrors::new();
            validate_affinity(a, &path, &mut errs);
            expect(&alloc::format!("case {i}"), errs.into_result(), *want);
        }
    }
}
