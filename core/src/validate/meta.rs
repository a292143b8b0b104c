//! Validation of `metadata`: the name rule each kind uses, namespace scope,
//! labels, annotations, owner references and finalizers. Also the update
//! rules for the identity fields (name, namespace, uid).

use super::field::{FieldErrors, FieldPath};
use super::labels::{validate_annotations, validate_labels};
use super::names::{self, NameError};
use crate::model::{Kind, ObjectMeta};

/// The rule names of `kind` follow: DNS-1123 subdomains for nodes and
/// leases (a node's lease is named after it), DNS-1123 labels for the rest
/// (a pod's name is its hostname; a namespace's is a label in DNS names).
pub fn name_rule(kind: Kind) -> fn(&str) -> Result<(), NameError> {
    match kind {
        Kind::Node | Kind::Lease => names::dns1123_subdomain,
        Kind::Pod | Kind::ReplicaSet | Kind::Namespace => names::dns1123_label,
    }
}

/// Every `metadata` rule for a stored object of `kind`.
pub(crate) fn validate_object_meta(meta: &ObjectMeta, kind: Kind, errs: &mut FieldErrors) {
    let path = FieldPath::new("metadata");
    let rule = name_rule(kind);
    validate_name(meta, rule, &path, errs);
    let ns = path.child("namespace");
    if kind.is_namespaced() {
        if let Err(e) = names::dns1123_label(&meta.namespace) {
            errs.push(e.at(&ns, &meta.namespace));
        }
    } else if !meta.namespace.is_empty() {
        errs.push(ns.forbidden("not allowed on this type (it is cluster-scoped)"));
    }
    if meta.generation < 0 {
        errs.push(
            path.child("generation")
                .invalid(meta.generation, "must be greater than or equal to 0"),
        );
    }
    validate_labels(&meta.labels, &path.child("labels"), errs);
    validate_annotations(&meta.annotations, &path.child("annotations"), errs);
    validate_owner_references(meta, &path.child("ownerReferences"), errs);
    let finalizers = path.child("finalizers");
    for (i, f) in meta.finalizers.iter().enumerate() {
        if let Err(e) = names::qualified_name(f) {
            errs.push(e.at(&finalizers.index(i), f));
        }
    }
}

/// A name is required unless `generateName` is set, in which case the
/// prefix (less its trailing `-`, which the generated suffix follows) must
/// itself be a valid start of a name.
fn validate_name(
    meta: &ObjectMeta,
    rule: fn(&str) -> Result<(), NameError>,
    path: &FieldPath,
    errs: &mut FieldErrors,
) {
    if !meta.name.is_empty() || meta.generate_name.is_empty() {
        if let Err(e) = rule(&meta.name) {
            errs.push(e.at(&path.child("name"), &meta.name));
        }
        return;
    }
    let prefix = meta.generate_name.trim_end_matches('-');
    if let Err(e) = rule(prefix) {
        let e = if e == NameError::Empty {
            NameError::Invalid("must hold at least one character before the trailing '-'".into())
        } else {
            e
        };
        errs.push(e.at(&path.child("generateName"), &meta.generate_name));
    }
}

fn validate_owner_references(meta: &ObjectMeta, path: &FieldPath, errs: &mut FieldErrors) {
    let mut controllers = 0;
    for (i, r) in meta.owner_references.iter().enumerate() {
        let at = path.index(i);
        if r.api_version.is_empty() {
            errs.push(at.child("apiVersion").required());
        }
        if let Err(e) = name_rule(r.kind)(&r.name) {
            errs.push(e.at(&at.child("name"), &r.name));
        }
        if r.uid.is_empty() {
            errs.push(at.child("uid").required());
        }
        if r.controller {
            controllers += 1;
            if controllers > 1 {
                errs.push(
                    at.child("controller")
                        .forbidden("only one reference can have controller set to true"),
                );
            }
        }
    }
}

/// Name, namespace and uid never change; neither does the creation time.
pub(crate) fn validate_meta_update(old: &ObjectMeta, new: &ObjectMeta, errs: &mut FieldErrors) {
    let path = FieldPath::new("metadata");
    let fields: [(&str, &str, &str); 3] = [
        ("name", &old.name, &new.name),
        ("namespace", &old.namespace, &new.namespace),
        ("uid", &old.uid, &new.uid),
    ];
    for (field, was, now) in fields {
        if was != now {
            errs.push(path.child(field).invalid(now, "field is immutable"));
        }
    }
    if old.creation_timestamp.is_some() && old.creation_timestamp != new.creation_timestamp {
        errs.push(
            path.child("creationTimestamp")
                .forbidden("field is immutable once set"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::field::FieldErrorType::*;
    use super::super::testing::{expect, labels, Want};
    use super::*;
    use crate::model::{OwnerReference, Time};
    use alloc::vec;

    type Case = (&'static str, Kind, fn(&mut ObjectMeta), Want);

    fn owner() -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: Kind::ReplicaSet,
            name: "web".into(),
            uid: "1234".into(),
            controller: true,
            block_owner_deletion: true,
        }
    }

    #[test]
    fn metadata_rules() {
        let cases: &[Case] = &[
            ("valid pod meta", Kind::Pod, |_| {}, None),
            (
                "name missing",
                Kind::Pod,
                |m| m.name.clear(),
                Some(("metadata.name", Required)),
            ),
            (
                "generateName stands in",
                Kind::Pod,
                |m| {
                    m.name.clear();
                    m.generate_name = "web-".into();
                },
                None,
            ),
            (
                "bad generateName",
                Kind::Pod,
                |m| {
                    m.name.clear();
                    m.generate_name = "Web-".into();
                },
                Some(("metadata.generateName", Invalid)),
            ),
            (
                "generateName of dashes",
                Kind::Pod,
                |m| {
                    m.name.clear();
                    m.generate_name = "-".into();
                },
                Some(("metadata.generateName", Invalid)),
            ),
            (
                "pod name with a dot",
                Kind::Pod,
                |m| m.name = "web.1".into(),
                Some(("metadata.name", Invalid)),
            ),
            (
                "node name with dots",
                Kind::Node,
                |m| {
                    m.name = "node-1.example.com".into();
                    m.namespace.clear();
                },
                None,
            ),
            (
                "long pod name",
                Kind::Pod,
                |m| m.name = "a".repeat(64),
                Some(("metadata.name", TooLong)),
            ),
            (
                "namespace missing",
                Kind::Pod,
                |m| m.namespace.clear(),
                Some(("metadata.namespace", Required)),
            ),
            (
                "namespace invalid",
                Kind::ReplicaSet,
                |m| m.namespace = "Prod".into(),
                Some(("metadata.namespace", Invalid)),
            ),
            (
                "namespace on a node",
                Kind::Node,
                |_| {},
                Some(("metadata.namespace", Forbidden)),
            ),
            (
                "namespace on a namespace",
                Kind::Namespace,
                |m| m.namespace.clear(),
                None,
            ),
            (
                "negative generation",
                Kind::Pod,
                |m| m.generation = -1,
                Some(("metadata.generation", Invalid)),
            ),
            (
                "bad label value",
                Kind::Pod,
                |m| m.labels = labels(&[("app", "a b")]),
                Some(("metadata.labels.app", Invalid)),
            ),
            (
                "bad annotation key",
                Kind::Pod,
                |m| {
                    m.annotations.insert("a/b/c".into(), "x".into());
                },
                Some(("metadata.annotations", Invalid)),
            ),
            (
                "owner reference",
                Kind::Pod,
                |m| m.owner_references = vec![owner()],
                None,
            ),
            (
                "owner without uid",
                Kind::Pod,
                |m| {
                    m.owner_references = vec![OwnerReference {
                        uid: "".into(),
                        ..owner()
                    }];
                },
                Some(("metadata.ownerReferences[0].uid", Required)),
            ),
            (
                "owner without apiVersion",
                Kind::Pod,
                |m| {
                    m.owner_references = vec![OwnerReference {
                        api_version: "".into(),
                        ..owner()
                    }];
                },
                Some(("metadata.ownerReferences[0].apiVersion", Required)),
            ),
            (
                "owner without name",
                Kind::Pod,
                |m| {
                    m.owner_references = vec![OwnerReference {
                        name: "".into(),
                        ..owner()
                    }];
                },
                Some(("metadata.ownerReferences[0].name", Required)),
            ),
            (
                "two controllers",
                Kind::Pod,
                |m| {
                    m.owner_references = vec![
                        owner(),
                        OwnerReference {
                            uid: "5678".into(),
                            ..owner()
                        },
                    ];
                },
                Some(("metadata.ownerReferences[1].controller", Forbidden)),
            ),
            (
                "finalizer",
                Kind::Pod,
                |m| m.finalizers = vec!["example.com/cleanup".into()],
                None,
            ),
            (
                "bad finalizer",
                Kind::Pod,
                |m| m.finalizers = vec!["not valid".into()],
                Some(("metadata.finalizers[0]", Invalid)),
            ),
        ];
        for (name, kind, edit, want) in cases {
            let mut meta = ObjectMeta::named("default", "web");
            edit(&mut meta);
            let mut errs = FieldErrors::new();
            validate_object_meta(&meta, *kind, &mut errs);
            expect(name, errs.into_result(), *want);
        }
    }

    #[test]
    fn identity_is_immutable() {
        let mut old = ObjectMeta::named("default", "web");
        old.uid = "u1".into();
        old.creation_timestamp = Some(Time::from_unix(1_700_000_000, 0));
        type Edit = fn(&mut ObjectMeta);
        let cases: &[(Edit, Want)] = &[
            (|m| m.labels = labels(&[("a", "b")]), None),
            (
                |m| m.name = "other".into(),
                Some(("metadata.name", Invalid)),
            ),
            (
                |m| m.namespace = "prod".into(),
                Some(("metadata.namespace", Invalid)),
            ),
            (|m| m.uid = "u2".into(), Some(("metadata.uid", Invalid))),
            (
                |m| m.creation_timestamp = None,
                Some(("metadata.creationTimestamp", Forbidden)),
            ),
        ];
        for (i, (edit, want)) in cases.iter().enumerate() {
            let mut new = old.clone();
            edit(&mut new);
            let mut errs = FieldErrors::new();
            validate_meta_update(&old, &new, &mut errs);
            expect(&alloc::format!("case {i}"), errs.into_result(), *want);
        }
    }
}
