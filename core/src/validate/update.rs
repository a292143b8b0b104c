//! Update rules: what may change between the stored object and its
//! replacement. Identity never changes; a pod's spec is fixed once created
//! except for container images, added tolerations and binding to a node;
//! a ReplicaSet keeps its selector; a node keeps its pod ranges once set.

use super::field::{FieldErrors, FieldPath};
use super::meta::validate_meta_update;
use super::validate_object;
use crate::model::{Container, NodeSpec, Object, PodSpec};
use alloc::string::ToString;
use alloc::vec::Vec;

const POD_UPDATE_RULE: &str = "pod updates may not change fields other than \
`spec.containers[*].image`, `spec.initContainers[*].image`, `spec.tolerations` (additions only) \
and `spec.nodeName` (only to bind an unbound pod)";

/// Validate `new` as a replacement for `old`: every rule of a new object,
/// plus the rules of the transition. All problems are reported together.
pub fn validate_update(old: &Object, new: &Object) -> Result<(), FieldErrors> {
    let mut errs = validate_object(new).err().unwrap_or_default();
    if old.kind() != new.kind() {
        errs.push(FieldPath::new("kind").invalid(new.kind().name(), "field is immutable"));
        return errs.into_result();
    }
    validate_meta_update(old.metadata(), new.metadata(), &mut errs);
    let spec = FieldPath::new("spec");
    match (old, new) {
        (Object::Pod(o), Object::Pod(n)) => {
            validate_pod_spec_update(&o.spec, &n.spec, &spec, &mut errs)
        }
        (Object::ReplicaSet(o), Object::ReplicaSet(n)) if o.spec.selector != n.spec.selector => {
            errs.push(
                spec.child("selector")
                    .invalid(n.spec.selector.to_string(), "field is immutable"),
            );
        }
        (Object::Node(o), Object::Node(n)) => {
            validate_node_spec_update(&o.spec, &n.spec, &spec, &mut errs)
        }
        _ => {}
    }
    errs.into_result()
}

fn validate_pod_spec_update(
    old: &PodSpec,
    new: &PodSpec,
    path: &FieldPath,
    errs: &mut FieldErrors,
) {
    if !old.node_name.is_empty() && new.node_name != old.node_name {
        errs.push(
            path.child("nodeName")
                .forbidden("may not be changed once the pod is bound to a node"),
        );
    }
    if !old.tolerations.iter().all(|t| new.tolerations.contains(t)) {
        errs.push(path.child("tolerations").forbidden(
            "existing tolerations may not be removed or changed; only additions are allowed",
        ));
    }
    let before = errs.len();
    let lists = [
        ("initContainers", &old.init_containers, &new.init_containers),
        ("containers", &old.containers, &new.containers),
    ];
    for (field, was, now) in lists {
        let at = path.child(field);
        if was.len() != now.len() {
            errs.push(at.forbidden(POD_UPDATE_RULE));
            continue;
        }
        for (i, (w, n)) in was.iter().zip(now).enumerate() {
            if !same_but_image(w, n) {
                errs.push(at.index(i).forbidden(POD_UPDATE_RULE));
            }
        }
    }
    let fields: Vec<(&str, bool)> = alloc::vec![
        ("restartPolicy", old.restart_policy != new.restart_policy),
        ("nodeSelector", old.node_selector != new.node_selector),
        ("affinity", old.affinity != new.affinity),
        (
            "terminationGracePeriodSeconds",
            old.termination_grace_period_seconds != new.termination_grace_period_seconds
        ),
        ("hostNetwork", old.host_network != new.host_network),
        ("hostname", old.hostname != new.hostname),
    ];
    for (field, changed) in fields {
        if changed {
            errs.push(path.child(field).forbidden(POD_UPDATE_RULE));
        }
    }
    // A field the lists above miss (one added to PodSpec later) still may
    // not change: compare everything the rules do not allow.
    if errs.len() == before && !same_but_allowed(old, new) {
        errs.push(path.forbidden(POD_UPDATE_RULE));
    }
}

fn same_but_image(old: &Container, new: &Container) -> bool {
    let mut masked = new.clone();
    masked.image.clone_from(&old.image);
    masked == *old
}

fn same_but_allowed(old: &PodSpec, new: &PodSpec) -> bool {
    let mut masked = new.clone();
    masked.node_name.clone_from(&old.node_name);
    masked.tolerations.clone_from(&old.tolerations);
    let lists = [
        (&mut masked.init_containers, &old.init_containers),
        (&mut masked.containers, &old.containers),
    ];
    for (now, was) in lists {
        for (n, w) in now.iter_mut().zip(was) {
            n.image.clone_from(&w.image);
        }
    }
    masked == *old
}

fn validate_node_spec_update(
    old: &NodeSpec,
    new: &NodeSpec,
    path: &FieldPath,
    errs: &mut FieldErrors,
) {
    if !old.pod_cidr.is_empty() && new.pod_cidr != old.pod_cidr {
        errs.push(
            path.child("podCIDR")
                .forbidden("may not be changed once set"),
        );
    }
    if !old.pod_cidrs.is_empty() && new.pod_cidrs != old.pod_cidrs {
        errs.push(
            path.child("podCIDRs")
                .forbidden("may not be changed once set"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::field::FieldErrorType::*;
    use super::super::testing::{expect, labels, valid_node, valid_pod, valid_replicaset, Want};
    use super::*;
    use crate::model::{Namespace, ObjectMeta, Pod, Toleration, TolerationOperator};

    type PodCase = (&'static str, fn(&mut Pod), fn(&mut Pod), Want);

    #[test]
    fn pod_update_rules() {
        let cases: &[PodCase] = &[
            ("no change", |_| {}, |_| {}, None),
            (
                "labels may change",
                |_| {},
                |p| p.metadata.labels = labels(&[("app", "web"), ("v", "2")]),
                None,
            ),
            (
                "image may change",
                |_| {},
                |p| p.spec.containers[1].image = "nginx:1.28".into(),
                None,
            ),
            (
                "init image may change",
                |_| {},
                |p| p.spec.init_containers[0].image = "busybox:1.36".into(),
                None,
            ),
            (
                "binding",
                |_| {},
                |p| p.spec.node_name = "node-1".into(),
                None,
            ),
            (
                "rebinding",
                |p| p.spec.node_name = "node-1".into(),
                |p| p.spec.node_name = "node-2".into(),
                Some(("spec.nodeName", Forbidden)),
            ),
            (
                "unbinding",
                |p| p.spec.node_name = "node-1".into(),
                |p| p.spec.node_name.clear(),
                Some(("spec.nodeName", Forbidden)),
            ),
            (
                "toleration added",
                |_| {},
                |p| {
                    p.spec.tolerations.push(Toleration {
                        operator: TolerationOperator::Exists,
                        ..Toleration::default()
                    })
                },
                None,
            ),
            (
                "toleration removed",
                |_| {},
                |p| p.spec.tolerations.clear(),
                Some(("spec.tolerations", Forbidden)),
            ),
            (
                "command changed",
                |_| {},
                |p| p.spec.containers[0].command.clear(),
                Some(("spec.containers[0]", Forbidden)),
            ),
            (
                "container added",
                |_| {},
                |p| {
                    let mut c = p.spec.containers[1].clone();
                    c.name = "third".into();
                    c.ports.clear();
                    p.spec.containers.push(c);
                },
                Some(("spec.containers", Forbidden)),
            ),
            (
                "restart policy",
                |_| {},
                |p| p.spec.restart_policy = crate::model::RestartPolicy::Never,
                Some(("spec.restartPolicy", Forbidden)),
            ),
            (
                "node selector",
                |_| {},
                |p| p.spec.node_selector.clear(),
                Some(("spec.nodeSelector", Forbidden)),
            ),
            (
                "name",
                |_| {},
                |p| p.metadata.name = "web-1".into(),
                Some(("metadata.name", Invalid)),
            ),
            (
                "uid",
                |p| p.metadata.uid = "u1".into(),
                |p| p.metadata.uid = "u2".into(),
                Some(("metadata.uid", Invalid)),
            ),
            (
                "new object still validated",
                |_| {},
                |p| p.spec.containers[0].image = "Bad Image".into(),
                Some(("spec.containers[0].image", Invalid)),
            ),
        ];
        for (name, old_edit, new_edit, want) in cases {
            let mut old = valid_pod();
            old_edit(&mut old);
            let mut new = old.clone();
            new_edit(&mut new);
            expect(
                name,
                validate_update(&Object::Pod(old), &Object::Pod(new)),
                *want,
            );
        }
    }

    #[test]
    fn any_other_pod_spec_change_is_caught() {
        let old = valid_pod().spec;
        let mut new = old.clone();
        new.containers[0].image = "nginx:2".into();
        assert!(same_but_allowed(&old, &new));
        new.containers[0].tty = true;
        assert!(!same_but_allowed(&old, &new));
    }

    #[test]
    fn kind_and_other_kinds() {
        let pod = Object::Pod(valid_pod());
        let ns = Object::Namespace(Namespace {
            metadata: ObjectMeta::named("", "web-0"),
            ..Namespace::default()
        });
        expect("kind", validate_update(&pod, &ns), Some(("kind", Invalid)));

        let rs = valid_replicaset();
        let mut scaled = rs.clone();
        scaled.spec.replicas = Some(5);
        scaled.spec.template.spec.containers[0].command.clear();
        expect(
            "rs scaled",
            validate_update(&rs.clone().into(), &scaled.into()),
            None,
        );
        let mut reselected = rs.clone();
        reselected.spec.selector =
            crate::model::LabelSelector::from_labels(labels(&[("tier", "front")]));
        expect(
            "rs selector",
            validate_update(&rs.into(), &reselected.into()),
            Some(("spec.selector", Invalid)),
        );

        let mut fresh = valid_node();
        fresh.spec.pod_cidr.clear();
        fresh.spec.pod_cidrs.clear();
        let assigned = valid_node();
        expect(
            "node cidr assigned",
            validate_update(&fresh.into(), &assigned.clone().into()),
            None,
        );
        let mut moved = assigned.clone();
        moved.spec.pod_cidr = "10.88.2.0/24".into();
        moved.spec.pod_cidrs[0] = "10.88.2.0/24".into();
        let errs = validate_update(&assigned.into(), &moved.into()).unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["spec.podCIDR", "spec.podCIDRs"]);
    }
}
