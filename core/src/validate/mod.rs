//! Validation of API objects, with errors naming the field. The apiserver
//! runs it on every create and update, after defaulting (`crate::defaults`):
//! unset timings and counts are errors here because defaulting fills them.
//! Every problem is reported, not just the first, as a [`FieldErrors`] list
//! whose entries read like the Kubernetes apiserver's
//! (`spec.containers[1].image: Required value`). The rules follow
//! Kubernetes' own validation; this module owns the rules and their
//! messages, not the admission flow that calls them.

mod cluster;
mod container;
mod field;
mod labels;
mod meta;
pub mod names;
mod net;
mod node;
mod pod;
mod probe;
mod replicaset;
mod resources;
mod scheduling;
mod update;

#[cfg(test)]
mod testing;

pub use cluster::{validate_lease, validate_namespace};
pub use field::{FieldError, FieldErrorKind, FieldErrorType, FieldErrors, FieldPath, FieldValue};
pub use meta::name_rule;
pub use names::NameError;
pub use node::validate_node;
pub use pod::validate_pod;
pub use replicaset::validate_replicaset;
pub use update::validate_update;

use crate::model::Object;

/// Every rule for `obj` as it would be created.
pub fn validate_object(obj: &Object) -> Result<(), FieldErrors> {
    match obj {
        Object::Namespace(o) => validate_namespace(o),
        Object::Pod(o) => validate_pod(o),
        Object::Node(o) => validate_node(o),
        Object::ReplicaSet(o) => validate_replicaset(o),
        Object::Lease(o) => validate_lease(o),
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{valid_node, valid_pod, valid_replicaset};
    use super::*;
    use crate::model::{Lease, Namespace, ObjectMeta, NODE_LEASE_NAMESPACE};

    #[test]
    fn realistic_objects_pass() {
        let mut lease = Lease {
            metadata: ObjectMeta::named(NODE_LEASE_NAMESPACE, "node-1.example.com"),
            ..Lease::default()
        };
        lease.spec.holder_identity = "node-1.example.com".into();
        lease.spec.lease_duration_seconds = 40;
        let objects: [Object; 5] = [
            valid_pod().into(),
            valid_node().into(),
            valid_replicaset().into(),
            Namespace {
                metadata: ObjectMeta::named("", "prod"),
                ..Namespace::default()
            }
            .into(),
            lease.into(),
        ];
        for obj in &objects {
            assert_eq!(validate_object(obj), Ok(()), "{:?}", obj.kind());
        }
    }

    #[test]
    fn dispatch_reaches_each_kind() {
        let mut pod = valid_pod();
        pod.spec.containers.clear();
        let mut node = valid_node();
        node.spec.pod_cidr = "10.0.0.1/8".into();
        let mut rs = valid_replicaset();
        rs.spec.replicas = Some(-2);
        let ns = Namespace::default();
        let lease = Lease::default();
        let cases: [(Object, &str); 5] = [
            (pod.into(), "spec.containers"),
            (node.into(), "spec.podCIDR"),
            (rs.into(), "spec.replicas"),
            (ns.into(), "metadata.name"),
            (lease.into(), "metadata.namespace"),
        ];
        for (obj, field) in cases {
            let errs = validate_object(&obj).unwrap_err();
            assert!(errs.has(field), "{:?}: {errs}", obj.kind());
        }
    }
}
