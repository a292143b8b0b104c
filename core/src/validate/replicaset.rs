//! Validation of a ReplicaSet: the replica count, a selector that owns the
//! pods its template makes, and the template as a pod spec that restarts
//! forever (paths under `spec.template.spec`).

use super::field::{render_map, FieldErrors, FieldPath};
use super::labels::{validate_annotations, validate_label_selector, validate_labels};
use super::meta::validate_object_meta;
use super::pod::validate_pod_spec;
use crate::model::{Kind, ReplicaSet, RestartPolicy};

/// Every rule for a ReplicaSet.
pub fn validate_replicaset(rs: &ReplicaSet) -> Result<(), FieldErrors> {
    let mut errs = FieldErrors::new();
    validate_object_meta(&rs.metadata, Kind::ReplicaSet, &mut errs);
    let spec = FieldPath::new("spec");
    if let Some(n) = rs.spec.replicas {
        if n < 0 {
            errs.push(
                spec.child("replicas")
                    .invalid(n, "must be greater than or equal to 0"),
            );
        }
    }
    if rs.spec.min_ready_seconds < 0 {
        errs.push(spec.child("minReadySeconds").invalid(
            rs.spec.min_ready_seconds,
            "must be greater than or equal to 0",
        ));
    }
    let selector = spec.child("selector");
    if rs.spec.selector.is_empty() {
        errs.push(selector.required());
    } else {
        validate_label_selector(&rs.spec.selector, &selector, &mut errs);
    }
    let template = spec.child("template");
    let tmeta = &rs.spec.template.metadata;
    let tlabels = template.child("metadata").child("labels");
    validate_labels(&tmeta.labels, &tlabels, &mut errs);
    validate_annotations(
        &tmeta.annotations,
        &template.child("metadata").child("annotations"),
        &mut errs,
    );
    if !rs.spec.selector.is_empty() && !rs.spec.selector.matches(&tmeta.labels) {
        errs.push(tlabels.invalid(
            render_map(&tmeta.labels),
            "`selector` does not match template `labels`",
        ));
    }
    let tspec = template.child("spec");
    validate_pod_spec(&rs.spec.template.spec, &tspec, &mut errs);
    let policy = rs.spec.template.spec.restart_policy;
    if policy != RestartPolicy::Always {
        let value = if policy == RestartPolicy::OnFailure {
            "OnFailure"
        } else {
            "Never"
        };
        errs.push(
            tspec
                .child("restartPolicy")
                .not_supported(value, &["Always"]),
        );
    }
    errs.into_result()
}

#[cfg(test)]
mod tests {
    use super::super::field::FieldErrorType::*;
    use super::super::testing::{expect, labels, valid_replicaset, Want};
    use super::*;
    use crate::model::{LabelSelector, LabelSelectorRequirement, SelectorOperator};
    use alloc::string::ToString;

    type Case = (&'static str, fn(&mut ReplicaSet), Want);

    fn add_expression(rs: &mut ReplicaSet, operator: SelectorOperator, values: &[&str]) {
        rs.spec
            .selector
            .match_expressions
            .push(LabelSelectorRequirement {
                key: "tier".into(),
                operator,
                values: values.iter().map(|v| v.to_string()).collect(),
            });
    }

    #[test]
    fn replicaset_rules() {
        let cases: &[Case] = &[
            ("realistic", |_| {}, None),
            ("zero replicas", |r| r.spec.replicas = Some(0), None),
            ("replicas unset", |r| r.spec.replicas = None, None),
            (
                "negative replicas",
                |r| r.spec.replicas = Some(-1),
                Some(("spec.replicas", Invalid)),
            ),
            (
                "negative minReadySeconds",
                |r| r.spec.min_ready_seconds = -1,
                Some(("spec.minReadySeconds", Invalid)),
            ),
            (
                "empty selector",
                |r| r.spec.selector = LabelSelector::default(),
                Some(("spec.selector", Required)),
            ),
            (
                "expression selector",
                |r| add_expression(r, SelectorOperator::In, &["front", "back"]),
                None,
            ),
            (
                "selector expression without values",
                |r| add_expression(r, SelectorOperator::NotIn, &[]),
                Some(("spec.selector.matchExpressions[0].values", Required)),
            ),
            (
                "selector misses template",
                |r| r.spec.selector = LabelSelector::from_labels(labels(&[("app", "db")])),
                Some(("spec.template.metadata.labels", Invalid)),
            ),
            (
                "bad template label",
                |r| {
                    r.spec
                        .template
                        .metadata
                        .labels
                        .insert("x".into(), "-".into());
                },
                Some(("spec.template.metadata.labels.x", Invalid)),
            ),
            (
                "template pod spec checked",
                |r| r.spec.template.spec.containers[0].image.clear(),
                Some(("spec.template.spec.containers[0].image", Required)),
            ),
            (
                "template restarts on failure",
                |r| r.spec.template.spec.restart_policy = RestartPolicy::OnFailure,
                Some(("spec.template.spec.restartPolicy", NotSupported)),
            ),
            (
                "metadata checked",
                |r| r.metadata.name = "Web".into(),
                Some(("metadata.name", Invalid)),
            ),
        ];
        for (name, edit, want) in cases {
            let mut rs = valid_replicaset();
            edit(&mut rs);
            expect(name, validate_replicaset(&rs), *want);
        }
    }

    #[test]
    fn restart_policy_message() {
        let mut rs = valid_replicaset();
        rs.spec.template.spec.restart_policy = RestartPolicy::Never;
        assert_eq!(
            validate_replicaset(&rs).unwrap_err().to_string(),
            r#"spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always""#
        );
    }
}
