//! Validation of label maps, annotation maps and label selectors: the
//! key/value rules every object's metadata, a pod's node selector and a
//! ReplicaSet's selector share.

use super::field::{FieldErrors, FieldPath};
use super::names::{self, ANNOTATIONS_MAX_BYTES};
use crate::model::{LabelSelector, Labels, SelectorOperator};
use alloc::collections::BTreeMap;
use alloc::string::String;

/// Keys must be qualified names and values label values. A bad key is
/// reported at the map (the key is the offending value), a bad value at its
/// entry.
pub(crate) fn validate_labels(labels: &Labels, path: &FieldPath, errs: &mut FieldErrors) {
    for (k, v) in labels {
        if let Err(e) = names::qualified_name(k) {
            errs.push(e.at(path, k));
        }
        if let Err(e) = names::label_value(v) {
            errs.push(e.at(&path.key(k), v));
        }
    }
}

/// Keys must be qualified names (compared in lower case, as Kubernetes
/// does); keys and values together may not exceed 256 KiB.
pub(crate) fn validate_annotations(
    annotations: &BTreeMap<String, String>,
    path: &FieldPath,
    errs: &mut FieldErrors,
) {
    let mut total = 0usize;
    for (k, v) in annotations {
        if let Err(e) = names::qualified_name(&k.to_ascii_lowercase()) {
            errs.push(e.at(path, k));
        }
        total = total.saturating_add(k.len()).saturating_add(v.len());
    }
    if total > ANNOTATIONS_MAX_BYTES {
        errs.push(path.too_long(ANNOTATIONS_MAX_BYTES));
    }
}

/// `matchLabels` as labels; each `matchExpressions` entry with a valid key,
/// values for `In`/`NotIn` and none for `Exists`/`DoesNotExist`.
pub(crate) fn validate_label_selector(
    selector: &LabelSelector,
    path: &FieldPath,
    errs: &mut FieldErrors,
) {
    validate_labels(&selector.match_labels, &path.child("matchLabels"), errs);
    let exprs = path.child("matchExpressions");
    for (i, r) in selector.match_expressions.iter().enumerate() {
        let at = exprs.index(i);
        let key = at.child("key");
        if let Err(e) = names::qualified_name(&r.key) {
            errs.push(e.at(&key, &r.key));
        }
        let values = at.child("values");
        match r.operator {
            SelectorOperator::In | SelectorOperator::NotIn if r.values.is_empty() => {
                errs.push(values.required());
            }
            SelectorOperator::Exists | SelectorOperator::DoesNotExist if !r.values.is_empty() => {
                errs.push(values.forbidden(
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                ));
            }
            _ => {}
        }
        for (j, v) in r.values.iter().enumerate() {
            if let Err(e) = names::label_value(v) {
                errs.push(e.at(&values.index(j), v));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::field::FieldErrorType;
    use super::super::testing::{expect, Want};
    use super::*;
    use crate::model::LabelSelectorRequirement;
    use alloc::string::ToString;
    use alloc::vec;

    fn map(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn labels_errors(pairs: &[(&str, &str)]) -> FieldErrors {
        let mut errs = FieldErrors::new();
        validate_labels(
            &map(pairs),
            &FieldPath::new("metadata").child("labels"),
            &mut errs,
        );
        errs
    }

    #[test]
    fn label_maps() {
        let cases: &[(&[(&str, &str)], Want)] = &[
            (&[("app", "web"), ("example.com/tier", "")], None),
            (
                &[("bad key", "web")],
                Some(("metadata.labels", FieldErrorType::Invalid)),
            ),
            (
                &[("app", "-web")],
                Some(("metadata.labels.app", FieldErrorType::Invalid)),
            ),
            (
                &[("app.kubernetes.io/name", "a b")],
                Some((
                    "metadata.labels[app.kubernetes.io/name]",
                    FieldErrorType::Invalid,
                )),
            ),
        ];
        for (pairs, want) in cases {
            expect(
                &alloc::format!("{pairs:?}"),
                labels_errors(pairs).into_result(),
                *want,
            );
        }
    }

    #[test]
    fn annotations_have_a_total_size_limit() {
        let path = FieldPath::new("metadata").child("annotations");
        let check = |a: &BTreeMap<String, String>| {
            let mut errs = FieldErrors::new();
            validate_annotations(a, &path, &mut errs);
            errs.into_result()
        };
        let mut a = map(&[("Example.com/Note", "any text at all: ok")]);
        expect("small", check(&a), None);
        a.insert("big".into(), "x".repeat(ANNOTATIONS_MAX_BYTES));
        expect(
            "big",
            check(&a),
            Some(("metadata.annotations", FieldErrorType::TooLong)),
        );
        let bad = map(&[("no spaces", "")]);
        expect(
            "bad key",
            check(&bad),
            Some(("metadata.annotations", FieldErrorType::Invalid)),
        );
    }

    #[test]
    fn selector_expressions() {
        use SelectorOperator::*;
        let req = |key: &str, operator, values: &[&str]| LabelSelectorRequirement {
            key: key.into(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
        };
        let cases = [
            (req("env", In, &["prod"]), None),
            (req("env", Exists, &[]), None),
            (
                req("env", In, &[]),
                Some((
                    "spec.selector.matchExpressions[0].values",
                    FieldErrorType::Required,
                )),
            ),
            (
                req("env", DoesNotExist, &["x"]),
                Some((
                    "spec.selector.matchExpressions[0].values",
                    FieldErrorType::Forbidden,
                )),
            ),
            (
                req("env", NotIn, &["a", "b c"]),
                Some((
                    "spec.selector.matchExpressions[0].values[1]",
                    FieldErrorType::Invalid,
                )),
            ),
            (
                req("", Exists, &[]),
                Some((
                    "spec.selector.matchExpressions[0].key",
                    FieldErrorType::Required,
                )),
            ),
        ];
        for (r, want) in cases {
            let sel = LabelSelector {
                match_labels: map(&[("app", "web")]),
                match_expressions: vec![r],
            };
            let mut errs = FieldErrors::new();
            validate_label_selector(&sel, &FieldPath::new("spec").child("selector"), &mut errs);
            expect(&alloc::format!("{sel:?}"), errs.into_result(), want);
        }
    }
}
