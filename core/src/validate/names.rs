//! Name rules shared by every kind: DNS-1123 labels and subdomains (object,
//! container and namespace names), qualified names (label and annotation
//! keys, extended resource names), label values, environment variable
//! names, C identifiers and IANA service names (port names). Each rule is a
//! function returning what is wrong; turning that into a field error is the
//! caller's business (`NameError::at`).

use super::field::{FieldError, FieldPath};
use alloc::format;
use alloc::string::String;

/// Longest DNS-1123 label (pod, namespace, container names).
pub const DNS1123_LABEL_MAX: usize = 63;
/// Longest DNS-1123 subdomain (node names).
pub const DNS1123_SUBDOMAIN_MAX: usize = 253;
/// Longest name part of a qualified name (label keys).
pub const QUALIFIED_NAME_MAX: usize = 63;
/// Longest label value.
pub const LABEL_VALUE_MAX: usize = 63;
/// Longest IANA service name (port names).
pub const PORT_NAME_MAX: usize = 15;
/// Most bytes all of an object's annotation keys and values may add up to.
pub const ANNOTATIONS_MAX_BYTES: usize = 256 * 1024;

const LABEL_RULE: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric \
characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name', or '123-abc')";
const SUBDOMAIN_RULE: &str = "a lowercase RFC 1123 subdomain must consist of lower case \
alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')";
const NAME_PART_RULE: &str = "name part must consist of alphanumeric characters, '-', '_' or \
'.', and must start and end with an alphanumeric character (e.g. 'MyName', or 'my.name', or '123-abc')";
const QUALIFIED_SHAPE: &str = "a qualified name must be a name part with an optional DNS \
subdomain prefix and '/' (e.g. 'example.com/MyName')";
const LABEL_VALUE_RULE: &str = "a valid label must be an empty string or consist of alphanumeric \
characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue', or 'my_value', or '12345')";
const ENV_RULE: &str = "a valid environment variable name must consist only of printable ASCII \
characters other than '='";
const C_ID_RULE: &str = "a valid C identifier must start with an alphabetic character or '_', \
followed by alphanumeric characters or '_' (e.g. 'my_name', or 'MY_NAME', or 'MyName')";

/// Why a name breaks its rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("must not be empty")]
    Empty,
    #[error("must be no more than {max} bytes")]
    TooLong { max: usize },
    #[error("{0}")]
    Invalid(String),
}

impl NameError {
    /// This problem as the error of the field at `path` holding `value`.
    pub fn at(self, path: &FieldPath, value: &str) -> FieldError {
        match self {
            NameError::Empty => path.required(),
            NameError::TooLong { max } => path.too_long(max),
            NameError::Invalid(detail) => path.invalid(value, detail),
        }
    }
}

fn invalid(rule: &str) -> NameError {
    NameError::Invalid(rule.into())
}

fn check_len(s: &str, max: usize) -> Result<(), NameError> {
    match s.len() {
        0 => Err(NameError::Empty),
        n if n > max => Err(NameError::TooLong { max }),
        _ => Ok(()),
    }
}

/// Letters or digits at both ends, and only `inner` bytes between.
fn alnum_ends(s: &str, inner: impl Fn(u8) -> bool) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter().all(|&c| inner(c))
        }
        _ => false,
    }
}

fn lower_alnum_or_dash(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'
}

fn is_label_shape(s: &str) -> bool {
    alnum_ends(s, lower_alnum_or_dash) && !s.bytes().any(|c| c.is_ascii_uppercase())
}

/// A DNS-1123 label: at most 63 of `[a-z0-9-]`, alphanumeric at both ends.
pub fn dns1123_label(s: &str) -> Result<(), NameError> {
    check_len(s, DNS1123_LABEL_MAX)?;
    if is_label_shape(s) {
        Ok(())
    } else {
        Err(invalid(LABEL_RULE))
    }
}

/// A DNS-1123 subdomain: at most 253 bytes of labels joined by `.`.
pub fn dns1123_subdomain(s: &str) -> Result<(), NameError> {
    check_len(s, DNS1123_SUBDOMAIN_MAX)?;
    if s.split('.').all(is_label_shape) {
        Ok(())
    } else {
        Err(invalid(SUBDOMAIN_RULE))
    }
}

/// A qualified name (label and annotation keys): an optional DNS subdomain
/// prefix and `/`, then a name part of at most 63 of `[A-Za-z0-9-_.]`,
/// alphanumeric at both ends.
pub fn qualified_name(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    let mut parts = s.split('/');
    let (prefix, name) = match (parts.next(), parts.next(), parts.next()) {
        (Some(name), None, _) => (None, name),
        (Some(prefix), Some(name), None) => (Some(prefix), name),
        _ => return Err(invalid(QUALIFIED_SHAPE)),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            return Err(invalid("prefix part must be non-empty"));
        }
        dns1123_subdomain(prefix).map_err(|e| NameError::Invalid(format!("prefix part {e}")))?;
    }
    if name.is_empty() {
        return Err(invalid("name part must be non-empty"));
    }
    if name.len() > QUALIFIED_NAME_MAX {
        return Err(NameError::Invalid(format!(
            "name part must be no more than {QUALIFIED_NAME_MAX} bytes"
        )));
    }
    if alnum_ends(name, |c| c.is_ascii_alphanumeric() || b"-_.".contains(&c)) {
        Ok(())
    } else {
        Err(invalid(NAME_PART_RULE))
    }
}

/// The prefix of a qualified name, if it has one (`example.com` of
/// `example.com/gpu`).
pub fn qualified_name_prefix(s: &str) -> Option<&str> {
    s.split_once('/').map(|(prefix, _)| prefix)
}

/// A label value: empty, or at most 63 of `[A-Za-z0-9-_.]`, alphanumeric at
/// both ends.
pub fn label_value(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Ok(());
    }
    if s.len() > LABEL_VALUE_MAX {
        return Err(NameError::TooLong {
            max: LABEL_VALUE_MAX,
        });
    }
    if alnum_ends(s, |c| c.is_ascii_alphanumeric() || b"-_.".contains(&c)) {
        Ok(())
    } else {
        Err(invalid(LABEL_VALUE_RULE))
    }
}

/// An environment variable name: not empty, printable ASCII, no `=` (the
/// relaxed rule current Kubernetes applies).
pub fn env_var_name(s: &str) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty);
    }
    if s.bytes().all(|c| (b' '..=b'~').contains(&c) && c != b'=') {
        Ok(())
    } else {
        Err(invalid(ENV_RULE))
    }
}

/// A C identifier: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn c_identifier(s: &str) -> Result<(), NameError> {
    let b = s.as_bytes();
    let Some(first) = b.first() else {
        return Err(NameError::Empty);
    };
    let ok = (first.is_ascii_alphabetic() || *first == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
    if ok {
        Ok(())
    } else {
        Err(invalid(C_ID_RULE))
    }
}

/// An IANA service name (port names): at most 15 of `[a-z0-9-]`, at least
/// one letter, no `--`, no `-` at either end.
pub fn port_name(s: &str) -> Result<(), NameError> {
    check_len(s, PORT_NAME_MAX)?;
    if !s.bytes().all(lower_alnum_or_dash) {
        return Err(invalid(
            "must contain only lowercase alphanumeric characters or '-' (e.g. 'http')",
        ));
    }
    if !s.bytes().any(|c| c.is_ascii_lowercase()) {
        return Err(invalid("must contain at least one letter (a-z)"));
    }
    if s.contains("--") {
        return Err(invalid("must not contain consecutive hyphens"));
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err(invalid("must not begin or end with a hyphen"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec::Vec;

    type Rule = fn(&str) -> Result<(), NameError>;

    fn long(n: usize) -> String {
        "a".repeat(n)
    }

    fn check(rule: Rule, name: &str, good: &[&str], bad: &[&str]) {
        for g in good {
            assert_eq!(rule(g), Ok(()), "{name}: {g:?} refused");
        }
        for b in bad {
            assert!(rule(b).is_err(), "{name}: {b:?} accepted");
        }
    }

    #[test]
    fn dns_labels() {
        let ok63 = long(63);
        let bad64 = long(64);
        check(
            dns1123_label,
            "label",
            &["a", "web", "web-1", "1web", "123", &ok63],
            &["", "Web", "-web", "web-", "web.1", "web_1", "wéb", &bad64],
        );
        assert_eq!(dns1123_label(""), Err(NameError::Empty));
        assert_eq!(dns1123_label(&bad64), Err(NameError::TooLong { max: 63 }));
    }

    #[test]
    fn dns_subdomains() {
        let ok253 = [long(63), long(63), long(63), long(61)].join(".");
        let bad254 = [long(63), long(63), long(63), long(62)].join(".");
        check(
            dns1123_subdomain,
            "subdomain",
            &["node-1", "node.example.com", "a.b", &ok253],
            &["", "Node", ".a", "a.", "a..b", "a.-b", "a_b", &bad254],
        );
    }

    #[test]
    fn qualified_names() {
        let name63 = long(63);
        let prefixed63 = ["example.com/", &name63].concat();
        let name64 = long(64);
        let prefixed64 = ["example.com/", &name64].concat();
        check(
            qualified_name,
            "qualified",
            &[
                "app",
                "App.Name_1",
                "example.com/gpu",
                "a/B",
                &name63,
                &prefixed63,
            ],
            &[
                "",
                "/app",
                "example.com/",
                "a/b/c",
                "Example.com/app",
                "-app",
                "app.",
                "app name",
                &name64,
                &prefixed64,
            ],
        );
        let e = qualified_name("Bad/app").unwrap_err().to_string();
        assert!(
            e.starts_with("prefix part a lowercase RFC 1123 subdomain"),
            "{e}"
        );
        assert_eq!(
            qualified_name_prefix("example.com/gpu"),
            Some("example.com")
        );
        assert_eq!(qualified_name_prefix("cpu"), None);
    }

    #[test]
    fn label_values() {
        let ok63 = long(63);
        let bad64 = long(64);
        check(
            label_value,
            "label value",
            &["", "v1", "My_Value.2", &ok63],
            &["-v", "v-", "a b", "a/b", &bad64],
        );
        assert_eq!(label_value(&bad64), Err(NameError::TooLong { max: 63 }));
    }

    #[test]
    fn env_names() {
        check(
            env_var_name,
            "env",
            &["PATH", "my.var", "1X", "a b", "x-y"],
            &["", "A=B", "tab\there", "é"],
        );
    }

    #[test]
    fn c_identifiers() {
        check(
            c_identifier,
            "c id",
            &["_", "a", "MY_NAME", "x1"],
            &["", "1x", "a-b", "a.b"],
        );
    }

    #[test]
    fn port_names() {
        check(
            port_name,
            "port",
            &["http", "h2c", "web-8080", "a", "abcdefghijklmno"],
            &[
                "",
                "HTTP",
                "8080",
                "web--1",
                "-web",
                "web-",
                "web_1",
                "abcdefghijklmnop",
            ],
        );
        let detail = |s| port_name(s).unwrap_err().to_string();
        assert_eq!(detail("8080"), "must contain at least one letter (a-z)");
        assert_eq!(detail("a--b"), "must not contain consecutive hyphens");
    }

    #[test]
    fn name_errors_become_field_errors() {
        use super::super::field::FieldErrorType;
        let path = FieldPath::new("metadata").child("name");
        let cases: Vec<(NameError, FieldErrorType)> = [
            (NameError::Empty, FieldErrorType::Required),
            (NameError::TooLong { max: 63 }, FieldErrorType::TooLong),
            (invalid("x"), FieldErrorType::Invalid),
        ]
        .into_iter()
        .collect();
        for (e, want) in cases {
            let fe = e.at(&path, "Bad");
            assert_eq!(fe.field, "metadata.name");
            assert_eq!(fe.error_type(), want);
        }
    }
}
