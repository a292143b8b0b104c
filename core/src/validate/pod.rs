//! Validation of a pod and of a pod spec (which ReplicaSet templates reuse
//! under `spec.template.spec`): the container lists and what spans them,
//! placement fields, and the status addresses. Per-container rules are in
//! `container`, placement rules in `scheduling`.

use super::container::{validate_container, ContainerContext};
use super::field::{FieldErrors, FieldPath};
use super::labels::validate_labels;
use super::meta::validate_object_meta;
use super::names;
use super::net::validate_ip;
use super::scheduling::{validate_affinity, validate_tolerations};
use crate::model::{Kind, Pod, PodSpec, PodStatus, Protocol};
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;

/// Every rule for a pod being created: metadata, spec, and the status
/// addresses (the rest of the status is the node's to report).
pub fn validate_pod(pod: &Pod) -> Result<(), FieldErrors> {
    let mut errs = FieldErrors::new();
    validate_object_meta(&pod.metadata, Kind::Pod, &mut errs);
    validate_pod_spec(&pod.spec, &FieldPath::new("spec"), &mut errs);
    validate_pod_status(&pod.status, &mut errs);
    errs.into_result()
}

/// The rules of a pod spec at `path` (`spec`, or `spec.template.spec`).
pub(crate) fn validate_pod_spec(spec: &PodSpec, path: &FieldPath, errs: &mut FieldErrors) {
    let containers = path.child("containers");
    if spec.containers.is_empty() {
        errs.push(containers.required());
    }
    let init = path.child("initContainers");
    let lists = [
        (&init, &spec.init_containers, true),
        (&containers, &spec.containers, false),
    ];
    let mut names = BTreeSet::new();
    for (list_path, list, is_init) in lists {
        let ctx = ContainerContext {
            init: is_init,
            host_network: spec.host_network,
        };
        for (i, c) in list.iter().enumerate() {
            let at = list_path.index(i);
            validate_container(c, ctx, &at, errs);
            if !c.name.is_empty() && !names.insert(c.name.as_str()) {
                errs.push(at.child("name").duplicate(&c.name));
            }
        }
    }
    validate_host_ports(spec, &containers, errs);
    if let Some(grace) = spec.termination_grace_period_seconds {
        if grace < 0 {
            errs.push(
                path.child("terminationGracePeriodSeconds")
                    .invalid(grace, "must be greater than or equal to 0"),
            );
        }
    }
    if !spec.node_name.is_empty() {
        if let Err(e) = names::dns1123_subdomain(&spec.node_name) {
            errs.push(e.at(&path.child("nodeName"), &spec.node_name));
        }
    }
    if !spec.hostname.is_empty() {
        if let Err(e) = names::dns1123_label(&spec.hostname) {
            errs.push(e.at(&path.child("hostname"), &spec.hostname));
        }
    }
    validate_labels(&spec.node_selector, &path.child("nodeSelector"), errs);
    validate_tolerations(&spec.tolerations, &path.child("tolerations"), errs);
    if let Some(affinity) = &spec.affinity {
        validate_affinity(affinity, &path.child("affinity"), errs);
    }
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
        Protocol::Sctp => "SCTP",
    }
}

/// Two ports of the pod's (non-init) containers may not claim the same
/// host port, protocol and host address: the node could bind only one.
fn validate_host_ports(spec: &PodSpec, containers: &FieldPath, errs: &mut FieldErrors) {
    let mut claimed = BTreeMap::new();
    for (i, c) in spec.containers.iter().enumerate() {
        for (j, p) in c.ports.iter().enumerate() {
            if p.host_port == 0 {
                continue;
            }
            let key = (p.host_port, p.protocol, p.host_ip.as_str());
            if claimed.insert(key, ()).is_some() {
                let at = containers
                    .index(i)
                    .child("ports")
                    .index(j)
                    .child("hostPort");
                errs.push(at.duplicate(format!("{}/{}", p.host_port, protocol_name(p.protocol))));
            }
        }
    }
}

fn validate_pod_status(status: &PodStatus, errs: &mut FieldErrors) {
    let path = FieldPath::new("status");
    if !status.pod_ip.is_empty() {
        validate_ip(&status.pod_ip, &path.child("podIP"), errs);
    }
    if !status.host_ip.is_empty() {
        validate_ip(&status.host_ip, &path.child("hostIP"), errs);
    }
}

#[cfg(test)]
mod tests {
    use super::super::field::FieldErrorType::*;
    use super::super::testing::{expect, labels, valid_pod, web_container, Want};
    use super::*;
    use crate::model::{Affinity, Container, NodeAffinity, NodeSelector, Toleration};
    use alloc::string::ToString;
    use alloc::vec;

    type Case = (&'static str, fn(&mut Pod), Want);

    #[test]
    fn pod_rules() {
        let cases: &[Case] = &[
            ("realistic", |_| {}, None),
            ("only init containers is not enough", |p| p.spec.containers.clear(), Some(("spec.containers", Required))),
            ("duplicate container names", |p| p.spec.containers[1].name = "web".into(),
                Some(("spec.containers[1].name", Duplicate))),
            ("init and app share a name", |p| p.spec.init_containers[0].name = "sidecar".into(),
                Some(("spec.containers[1].name", Duplicate))),
            ("init container checked", |p| p.spec.init_containers[0].image.clear(),
                Some(("spec.initContainers[0].image", Required))),
            ("second container checked", |p| {
                p.spec.containers[1].resources.limits.insert("memory".into(), "-1Gi".parse().unwrap());
            }, Some(("spec.containers[1].resources.limits.memory", Invalid))),
            ("host ports apart", |p| {
                p.spec.containers[0].ports[0].host_port = 80;
                p.spec.containers[1].ports[0].host_port = 81;
            }, None),
            ("host port conflict", |p| {
                p.spec.containers[0].ports[0].host_port = 80;
                p.spec.containers[1].ports[0].host_port = 80;
            }, Some(("spec.containers[1].ports[0].hostPort", Duplicate))),
            ("same host port, other protocol", |p| {
                p.spec.containers[0].ports[0].host_port = 53;
                p.spec.containers[1].ports[0].host_port = 53;
                p.spec.containers[1].ports[0].protocol = Protocol::Udp;
            }, None),
            ("grace zero", |p| p.spec.termination_grace_period_seconds = Some(0), None),
            ("grace negative", |p| p.spec.termination_grace_period_seconds = Some(-1),
                Some(("spec.terminationGracePeriodSeconds", Invalid))),
            ("bound", |p| p.spec.node_name = "node-1.example.com".into(), None),
            ("bad node name", |p| p.spec.node_name = "Node_1".into(), Some(("spec.nodeName", Invalid))),
            ("bad hostname", |p| p.spec.hostname = "web.1".into(), Some(("spec.hostname", Invalid))),
            ("node selector key", |p| p.spec.node_selector = labels(&[("bad key", "x")]),
                Some(("spec.nodeSelector", Invalid))),
            ("node selector value", |p| p.spec.node_selector = labels(&[("disk", "-ssd")]),
                Some(("spec.nodeSelector.disk", Invalid))),
            ("toleration checked", |p| p.spec.tolerations.push(Toleration::default()),
                Some(("spec.tolerations[1].operator", Invalid))),
            ("affinity checked", |p| p.spec.affinity = Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector::default()),
                    ..NodeAffinity::default()
                }),
                ..Affinity::default()
            }), Some(("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms", Required))),
            ("pod ip", |p| {
                p.status.pod_ip = "10.88.1.5".into();
                p.status.host_ip = "fd00::1".into();
            }, None),
            ("bad pod ip", |p| p.status.pod_ip = "10.88.1".into(), Some(("status.podIP", Invalid))),
            ("bad host ip", |p| p.status.host_ip = "node-1".into(), Some(("status.hostIP", Invalid))),
            ("metadata checked", |p| p.metadata.namespace.clear(), Some(("metadata.namespace", Required))),
        ];
        for (name, edit, want) in cases {
            let mut pod = valid_pod();
            edit(&mut pod);
            expect(name, validate_pod(&pod), *want);
        }
    }

    #[test]
    fn every_problem_is_reported() {
        let mut pod = valid_pod();
        pod.metadata.name = "Web".into();
        pod.spec.containers[0].image.clear();
        pod.spec.containers[1].name = "web".into();
        pod.spec.containers[1]
            .resources
            .limits
            .insert("memory".into(), "-1Gi".parse().unwrap());
        pod.spec.containers.push(Container {
            ports: vec![crate::model::ContainerPort {
                container_port: 0,
                ..Default::default()
            }],
            ..web_container("third")
        });
        pod.spec.termination_grace_period_seconds = Some(-5);
        let errs = validate_pod(&pod).unwrap_err();
        let fields: vec::Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "metadata.name",
                "spec.containers[0].image",
                "spec.containers[1].resources.limits.memory",
                "spec.containers[1].name",
                "spec.containers[2].ports[0].containerPort",
                "spec.terminationGracePeriodSeconds",
            ],
            "{errs}"
        );
        let text = errs.to_string();
        assert!(
            text.contains(r#"spec.containers[1].name: Duplicate value: "web"; "#),
            "{text}"
        );
        assert!(
            text.ends_with("spec.terminationGracePeriodSeconds: Invalid value: -5: must be greater than or equal to 0"),
            "{text}"
        );
        assert_eq!(
            errs.iter()
                .filter(|e| e.to_string().contains("Required value"))
                .count(),
            1
        );
    }
}
