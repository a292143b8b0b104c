//! Validation of a node: its pod ranges, taints, the resources it offers
//! and the addresses it reports.

use super::field::{FieldErrors, FieldPath};
use super::meta::validate_object_meta;
use super::names;
use super::net::{parse_cidr, validate_ip, Cidr};
use super::resources::validate_node_resources;
use super::scheduling::effect_name;
use crate::model::{Kind, Node, NodeAddressType, NodeSpec, NodeStatus};
use alloc::collections::BTreeSet;
use alloc::format;
use alloc::vec::Vec;

/// Every rule for a node: metadata, spec and the status it reports.
pub fn validate_node(node: &Node) -> Result<(), FieldErrors> {
    let mut errs = FieldErrors::new();
    validate_object_meta(&node.metadata, Kind::Node, &mut errs);
    validate_node_spec(&node.spec, &FieldPath::new("spec"), &mut errs);
    validate_node_status(&node.status, &FieldPath::new("status"), &mut errs);
    errs.into_result()
}

fn check_cidr(value: &str, path: &FieldPath, errs: &mut FieldErrors) -> Option<Cidr> {
    parse_cidr(value)
        .map_err(|detail| errs.push(path.invalid(value, detail)))
        .ok()
}

fn validate_node_spec(spec: &NodeSpec, path: &FieldPath, errs: &mut FieldErrors) {
    if !spec.pod_cidr.is_empty() {
        check_cidr(&spec.pod_cidr, &path.child("podCIDR"), errs);
    }
    let cidrs_path = path.child("podCIDRs");
    let cidrs: Vec<Cidr> = spec
        .pod_cidrs
        .iter()
        .enumerate()
        .filter_map(|(i, c)| check_cidr(c, &cidrs_path.index(i), errs))
        .collect();
    let v4 = cidrs.iter().filter(|(a, _)| a.is_ipv4()).count();
    if spec.pod_cidrs.len() > 2 || v4 > 1 || cidrs.len() - v4 > 1 {
        errs.push(cidrs_path.invalid(
            spec.pod_cidrs.join(","),
            "may specify no more than one CIDR for each IP family",
        ));
    }
    if let Some(first) = spec.pod_cidrs.first() {
        if !spec.pod_cidr.is_empty() && *first != spec.pod_cidr {
            errs.push(cidrs_path.index(0).invalid(first, "must match `podCIDR`"));
        }
    }
    let taints = path.child("taints");
    let mut seen = BTreeSet::new();
    for (i, t) in spec.taints.iter().enumerate() {
        let at = taints.index(i);
        if let Err(e) = names::qualified_name(&t.key) {
            errs.push(e.at(&at.child("key"), &t.key));
        }
        if let Err(e) = names::label_value(&t.value) {
            errs.push(e.at(&at.child("value"), &t.value));
        }
        if !seen.insert((t.key.as_str(), t.effect)) {
            errs.push(at.duplicate(format!("{}:{}", t.key, effect_name(t.effect))));
        }
    }
}

fn validate_node_status(status: &NodeStatus, path: &FieldPath, errs: &mut FieldErrors) {
    validate_node_resources(&status.capacity, &path.child("capacity"), errs);
    validate_node_resources(&status.allocatable, &path.child("allocatable"), errs);
    let addresses = path.child("addresses");
    for (i, a) in status.addresses.iter().enumerate() {
        let at = addresses.index(i).child("address");
        match a.type_ {
            NodeAddressType::InternalIp | NodeAddressType::ExternalIp => {
                validate_ip(&a.address, &at, errs);
            }
            NodeAddressType::Hostname if a.address.is_empty() => errs.push(at.required()),
            NodeAddressType::Hostname => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::field::FieldErrorType::*;
    use super::super::testing::{expect, quantity, valid_node, Want};
    use super::*;
    use crate::model::{NodeAddress, Taint, TaintEffect};

    type Case = (&'static str, fn(&mut Node), Want);

    #[test]
    fn node_rules() {
        let cases: &[Case] = &[
            ("realistic", |_| {}, None),
            (
                "no ranges yet",
                |n| {
                    n.spec.pod_cidr.clear();
                    n.spec.pod_cidrs.clear();
                },
                None,
            ),
            ("single stack", |n| n.spec.pod_cidrs.truncate(1), None),
            (
                "namespaced node",
                |n| n.metadata.namespace = "default".into(),
                Some(("metadata.namespace", Forbidden)),
            ),
            (
                "pod cidr with host bits",
                |n| {
                    n.spec.pod_cidr = "10.88.1.1/24".into();
                    n.spec.pod_cidrs.clear();
                },
                Some(("spec.podCIDR", Invalid)),
            ),
            (
                "pod cidr prefix too long",
                |n| {
                    n.spec.pod_cidr = "10.88.1.0/33".into();
                    n.spec.pod_cidrs.clear();
                },
                Some(("spec.podCIDR", Invalid)),
            ),
            (
                "bad v6 range",
                |n| n.spec.pod_cidrs[1] = "fd00::1/64".into(),
                Some(("spec.podCIDRs[1]", Invalid)),
            ),
            (
                "two v4 ranges",
                |n| n.spec.pod_cidrs[1] = "10.89.0.0/16".into(),
                Some(("spec.podCIDRs", Invalid)),
            ),
            (
                "first range differs",
                |n| n.spec.pod_cidrs[0] = "10.88.2.0/24".into(),
                Some(("spec.podCIDRs[0]", Invalid)),
            ),
            (
                "taint key missing",
                |n| n.spec.taints[0].key.clear(),
                Some(("spec.taints[0].key", Required)),
            ),
            (
                "taint value bad",
                |n| n.spec.taints[0].value = "a b".into(),
                Some(("spec.taints[0].value", Invalid)),
            ),
            (
                "same key, other effect",
                |n| {
                    let mut t = n.spec.taints[0].clone();
                    t.effect = TaintEffect::NoExecute;
                    n.spec.taints.push(t);
                },
                None,
            ),
            (
                "duplicate taint",
                |n| {
                    n.spec.taints.push(Taint {
                        value: "false".into(),
                        ..n.spec.taints[0].clone()
                    })
                },
                Some(("spec.taints[1]", Duplicate)),
            ),
            (
                "negative allocatable",
                |n| {
                    n.status
                        .allocatable
                        .insert("memory".into(), quantity("-1Gi"));
                },
                Some(("status.allocatable.memory", Invalid)),
            ),
            (
                "unknown capacity",
                |n| {
                    n.status.capacity.insert("disks".into(), quantity("2"));
                },
                Some(("status.capacity.disks", Invalid)),
            ),
            (
                "bad internal ip",
                |n| n.status.addresses[0].address = "192.168.1".into(),
                Some(("status.addresses[0].address", Invalid)),
            ),
            (
                "v6 external ip",
                |n| {
                    n.status.addresses.push(NodeAddress {
                        type_: NodeAddressType::ExternalIp,
                        address: "2001:db8::10".into(),
                    })
                },
                None,
            ),
            (
                "empty hostname",
                |n| n.status.addresses[1].address.clear(),
                Some(("status.addresses[1].address", Required)),
            ),
        ];
        for (name, edit, want) in cases {
            let mut node = valid_node();
            edit(&mut node);
            expect(name, validate_node(&node), *want);
        }
    }
}
