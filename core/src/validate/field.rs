//! Field paths and field errors: where in an object a problem is
//! (`spec.containers[1].resources.limits.memory`) and what kind of problem
//! it is, shaped and worded like the Kubernetes apiserver's so that a user
//! reads the same messages. This module owns the error types only; the
//! rules that produce them live in the sibling modules.

use alloc::borrow::ToOwned;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::{self, Write};
use serde::{Deserialize, Serialize};

/// A path into an object, in the JSON spelling of its fields. Building one
/// is a few string appends; the parent stays usable, so a loop can derive
/// `containers[0]`, `containers[1]`, ... from one `containers` path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldPath(String);

impl FieldPath {
    /// A path starting at the top-level field `root` (`metadata`, `spec`).
    pub fn new(root: &str) -> FieldPath {
        FieldPath(root.to_owned())
    }

    /// The field `name` inside this one: `spec` → `spec.containers`.
    pub fn child(&self, name: &str) -> FieldPath {
        let mut s = self.0.clone();
        if !s.is_empty() {
            s.push('.');
        }
        s.push_str(name);
        FieldPath(s)
    }

    /// The list element `i`: `spec.containers` → `spec.containers[1]`.
    pub fn index(&self, i: usize) -> FieldPath {
        let mut s = self.0.clone();
        // Writing to a String cannot fail.
        let _ = write!(s, "[{i}]");
        FieldPath(s)
    }

    /// The map entry `key`: `limits.memory` when the key is a plain word,
    /// `labels[app.kubernetes.io/name]` when it holds `.` or `/` (or
    /// anything else that would make the dotted form ambiguous).
    pub fn key(&self, key: &str) -> FieldPath {
        let plain = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if plain {
            return self.child(key);
        }
        let mut s = self.0.clone();
        s.push('[');
        s.push_str(key);
        s.push(']');
        FieldPath(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The field is missing or empty.
    pub fn required(&self) -> FieldError {
        self.error(FieldErrorKind::Required)
    }

    /// The field holds `value`, which breaks the rule `detail` states.
    pub fn invalid(&self, value: impl Into<FieldValue>, detail: impl Into<String>) -> FieldError {
        self.error(FieldErrorKind::Invalid {
            value: value.into(),
            detail: detail.into(),
        })
    }

    /// The field holds `value`, which is not one of `allowed`.
    pub fn not_supported(&self, value: impl Into<FieldValue>, allowed: &[&str]) -> FieldError {
        self.error(FieldErrorKind::NotSupported {
            value: value.into(),
            allowed: allowed.iter().map(|a| (*a).to_owned()).collect(),
        })
    }

    /// `value` appears here a second time where it must be unique.
    pub fn duplicate(&self, value: impl Into<FieldValue>) -> FieldError {
        self.error(FieldErrorKind::Duplicate {
            value: value.into(),
        })
    }

    /// The field is longer than `max` bytes.
    pub fn too_long(&self, max: usize) -> FieldError {
        self.error(FieldErrorKind::TooLong { max })
    }

    /// The field may not be set (or changed) here, for the reason `detail`.
    pub fn forbidden(&self, detail: impl Into<String>) -> FieldError {
        self.error(FieldErrorKind::Forbidden {
            detail: detail.into(),
        })
    }

    fn error(&self, kind: FieldErrorKind) -> FieldError {
        FieldError {
            field: self.0.clone(),
            kind,
        }
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The offending value as the message shows it: text quoted, numbers bare.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FieldValue {
    Text(String),
    Int(i64),
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Text(s) => write!(f, "{s:?}"),
            FieldValue::Int(n) => write!(f, "{n}"),
        }
    }
}

impl From<&str> for FieldValue {
    fn from(s: &str) -> FieldValue {
        FieldValue::Text(s.to_owned())
    }
}

impl From<&String> for FieldValue {
    fn from(s: &String) -> FieldValue {
        FieldValue::Text(s.clone())
    }
}

impl From<String> for FieldValue {
    fn from(s: String) -> FieldValue {
        FieldValue::Text(s)
    }
}

impl From<i64> for FieldValue {
    fn from(n: i64) -> FieldValue {
        FieldValue::Int(n)
    }
}

impl From<i32> for FieldValue {
    fn from(n: i32) -> FieldValue {
        FieldValue::Int(n.into())
    }
}

impl From<usize> for FieldValue {
    fn from(n: usize) -> FieldValue {
        FieldValue::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

/// What is wrong with a field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FieldErrorKind {
    Required,
    Invalid {
        value: FieldValue,
        detail: String,
    },
    NotSupported {
        value: FieldValue,
        allowed: Vec<String>,
    },
    Duplicate {
        value: FieldValue,
    },
    TooLong {
        max: usize,
    },
    Forbidden {
        detail: String,
    },
}

/// The kind of a field error without its details, for callers that branch
/// on it (and for tests that should not depend on the wording).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldErrorType {
    Required,
    Invalid,
    NotSupported,
    Duplicate,
    TooLong,
    Forbidden,
}

impl FieldErrorKind {
    pub fn error_type(&self) -> FieldErrorType {
        match self {
            FieldErrorKind::Required => FieldErrorType::Required,
            FieldErrorKind::Invalid { .. } => FieldErrorType::Invalid,
            FieldErrorKind::NotSupported { .. } => FieldErrorType::NotSupported,
            FieldErrorKind::Duplicate { .. } => FieldErrorType::Duplicate,
            FieldErrorKind::TooLong { .. } => FieldErrorType::TooLong,
            FieldErrorKind::Forbidden { .. } => FieldErrorType::Forbidden,
        }
    }
}

impl fmt::Display for FieldErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldErrorKind::Required => f.write_str("Required value"),
            FieldErrorKind::Invalid { value, detail } => {
                write!(f, "Invalid value: {value}: {detail}")
            }
            FieldErrorKind::NotSupported { value, allowed } => {
                write!(f, "Unsupported value: {value}: supported values: ")?;
                for (i, a) in allowed.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{a:?}")?;
                }
                Ok(())
            }
            FieldErrorKind::Duplicate { value } => write!(f, "Duplicate value: {value}"),
            FieldErrorKind::TooLong { max } => {
                write!(f, "Too long: may not be more than {max} bytes")
            }
            FieldErrorKind::Forbidden { detail } => write!(f, "Forbidden: {detail}"),
        }
    }
}

/// One problem at one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{field}: {kind}")]
pub struct FieldError {
    /// The path in JSON spelling (`spec.containers[1].image`).
    pub field: String,
    pub kind: FieldErrorKind,
}

impl FieldError {
    pub fn error_type(&self) -> FieldErrorType {
        self.kind.error_type()
    }
}

/// Every problem found in an object, in the order the fields were checked.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, thiserror::Error)]
#[error("{}", Joined(.0))]
pub struct FieldErrors(pub Vec<FieldError>);

struct Joined<'a>(&'a [FieldError]);

impl fmt::Display for Joined<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { "; " };
            write!(f, "{sep}{e}")?;
        }
        Ok(())
    }
}

impl FieldErrors {
    pub fn new() -> FieldErrors {
        FieldErrors(Vec::new())
    }

    pub fn push(&mut self, e: FieldError) {
        self.0.push(e);
    }

    pub fn extend(&mut self, other: FieldErrors) {
        self.0.extend(other.0);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> core::slice::Iter<'_, FieldError> {
        self.0.iter()
    }

    /// `Ok` when nothing was found, the whole list otherwise.
    pub fn into_result(self) -> Result<(), FieldErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }

    /// Whether some error sits at exactly `field`.
    pub fn has(&self, field: &str) -> bool {
        self.0.iter().any(|e| e.field == field)
    }
}

impl<'a> IntoIterator for &'a FieldErrors {
    type Item = &'a FieldError;
    type IntoIter = core::slice::Iter<'a, FieldError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for FieldErrors {
    type Item = FieldError;
    type IntoIter = alloc::vec::IntoIter<FieldError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl From<FieldError> for FieldErrors {
    fn from(e: FieldError) -> FieldErrors {
        FieldErrors(alloc::vec![e])
    }
}

/// The value of a labels-like map rendered as the message shows it
/// (`app=web,tier=front`).
pub(crate) fn render_map<'a>(map: impl IntoIterator<Item = (&'a String, &'a String)>) -> String {
    let mut out = String::new();
    for (i, (k, v)) in map.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Shorthand used by the rule modules: `value.to_string()` as a field value.
pub(crate) fn shown(value: &impl fmt::Display) -> FieldValue {
    FieldValue::Text(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_in_json_spelling() {
        let cases = [
            (
                FieldPath::new("spec")
                    .child("containers")
                    .index(1)
                    .child("resources")
                    .child("limits")
                    .key("memory"),
                "spec.containers[1].resources.limits.memory",
            ),
            (
                FieldPath::new("metadata")
                    .child("labels")
                    .key("app.kubernetes.io/name"),
                "metadata.labels[app.kubernetes.io/name]",
            ),
            (FieldPath::new("metadata").key(""), "metadata[]"),
            (FieldPath::new("").child("kind"), "kind"),
        ];
        for (path, want) in cases {
            assert_eq!(path.as_str(), want);
            assert_eq!(path.to_string(), want);
        }
    }

    #[test]
    fn messages_read_like_the_apiserver() {
        let spec = FieldPath::new("spec");
        let cases = [
            (
                spec.child("containers")
                    .index(1)
                    .child("resources")
                    .child("limits")
                    .key("memory")
                    .invalid("12Zi", "unknown suffix"),
                r#"spec.containers[1].resources.limits.memory: Invalid value: "12Zi": unknown suffix"#,
            ),
            (
                FieldPath::new("metadata").child("name").required(),
                "metadata.name: Required value",
            ),
            (
                spec.child("restartPolicy")
                    .not_supported("X", &["Always", "OnFailure", "Never"]),
                r#"spec.restartPolicy: Unsupported value: "X": supported values: "Always", "OnFailure", "Never""#,
            ),
            (
                spec.child("replicas")
                    .invalid(-1, "must be greater than or equal to 0"),
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
            ),
            (
                spec.child("containers")
                    .index(1)
                    .child("name")
                    .duplicate("web"),
                r#"spec.containers[1].name: Duplicate value: "web""#,
            ),
            (
                FieldPath::new("metadata").child("name").too_long(63),
                "metadata.name: Too long: may not be more than 63 bytes",
            ),
            (
                spec.forbidden("pod updates may not change this"),
                "spec: Forbidden: pod updates may not change this",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn error_lists_join_and_convert() {
        let mut errs = FieldErrors::new();
        assert_eq!(errs.clone().into_result(), Ok(()));
        errs.push(FieldPath::new("metadata").child("name").required());
        errs.push(FieldPath::new("spec").child("containers").required());
        assert_eq!(
            errs.to_string(),
            "metadata.name: Required value; spec.containers: Required value"
        );
        assert!(errs.has("spec.containers"));
        assert!(!errs.has("spec"));
        assert_eq!(errs.len(), 2);
        let types: Vec<_> = errs.iter().map(FieldError::error_type).collect();
        assert_eq!(types, [FieldErrorType::Required; 2]);
        assert!(errs.into_result().is_err());
    }

    #[test]
    fn render_map_joins_pairs() {
        let m: alloc::collections::BTreeMap<String, String> = [("a", "1"), ("b", "2")]
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        assert_eq!(render_map(&m), "a=1,b=2");
        assert_eq!(shown(&7), FieldValue::Text("7".into()));
    }
}
