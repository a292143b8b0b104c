//! Validation of the cluster-level kinds: Namespace (metadata only) and
//! Lease (a holder needs a duration to hold it for).

use super::field::{FieldErrors, FieldPath};
use super::meta::validate_object_meta;
use crate::model::{Kind, Lease, Namespace};

/// A namespace: its metadata (a cluster-scoped DNS-1123 label name).
pub fn validate_namespace(ns: &Namespace) -> Result<(), FieldErrors> {
    let mut errs = FieldErrors::new();
    validate_object_meta(&ns.metadata, Kind::Namespace, &mut errs);
    errs.into_result()
}

/// A lease: metadata, a duration of at least a second once someone holds
/// it, and a transition count that never goes negative.
pub fn validate_lease(lease: &Lease) -> Result<(), FieldErrors> {
    let mut errs = FieldErrors::new();
    validate_object_meta(&lease.metadata, Kind::Lease, &mut errs);
    let spec = FieldPath::new("spec");
    let duration = lease.spec.lease_duration_seconds;
    if !lease.spec.holder_identity.is_empty() && duration < 1 {
        errs.push(spec.child("leaseDurationSeconds").invalid(
            duration,
            "must be greater than or equal to 1 when `holderIdentity` is set",
        ));
    }
    if lease.spec.lease_transitions < 0 {
        errs.push(spec.child("leaseTransitions").invalid(
            lease.spec.lease_transitions,
            "must be greater than or equal to 0",
        ));
    }
    errs.into_result()
}

#[cfg(test)]
mod tests {
    use super::super::field::FieldErrorType::*;
    use super::super::testing::{expect, Want};
    use super::*;
    use crate::model::{ObjectMeta, NODE_LEASE_NAMESPACE};

    #[test]
    fn namespace_rules() {
        let cases: &[(&str, Want)] = &[
            ("prod", None),
            ("", Some(("metadata.name", Required))),
            ("Prod", Some(("metadata.name", Invalid))),
            ("a.b", Some(("metadata.name", Invalid))),
        ];
        for (name, want) in cases {
            let ns = Namespace {
                metadata: ObjectMeta::named("", name),
                ..Namespace::default()
            };
            expect(name, validate_namespace(&ns), *want);
        }
    }

    #[test]
    fn lease_rules() {
        type Case = (&'static str, fn(&mut Lease), Want);
        let cases: &[Case] = &[
            ("held", |_| {}, None),
            (
                "free lease needs no duration",
                |l| {
                    l.spec.holder_identity.clear();
                    l.spec.lease_duration_seconds = 0;
                },
                None,
            ),
            (
                "held without duration",
                |l| l.spec.lease_duration_seconds = 0,
                Some(("spec.leaseDurationSeconds", Invalid)),
            ),
            (
                "negative transitions",
                |l| l.spec.lease_transitions = -1,
                Some(("spec.leaseTransitions", Invalid)),
            ),
            (
                "node names have dots",
                |l| l.metadata.name = "node-1.example.com".into(),
                None,
            ),
            (
                "namespace required",
                |l| l.metadata.namespace.clear(),
                Some(("metadata.namespace", Required)),
            ),
        ];
        for (name, edit, want) in cases {
            let mut lease = Lease {
                metadata: ObjectMeta::named(NODE_LEASE_NAMESPACE, "node-1"),
                ..Lease::default()
            };
            lease.spec.holder_identity = "node-1".into();
            lease.spec.lease_duration_seconds = 40;
            edit(&mut lease);
            expect(name, validate_lease(&lease), *want);
        }
    }
}
