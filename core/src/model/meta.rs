//! Metadata every object carries: identity, labels, ownership, lifecycle.

use super::{Kind, Labels, Time};
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// `metadata` of every object.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ObjectMeta {
    pub name: String,
    /// A prefix the apiserver completes with a random suffix when `name` is empty.
    pub generate_name: String,
    /// Empty for cluster-scoped kinds (Node, Namespace).
    pub namespace: String,
    /// Set by the apiserver on create; never changes.
    pub uid: String,
    /// The store revision of the last write; 0 before the object is stored.
    /// Manifests write it as a string, as Kubernetes does.
    #[serde(with = "revision_serde")]
    pub resource_version: u64,
    /// Bumped by the apiserver on every change to `spec`.
    pub generation: i64,
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub owner_references: Vec<OwnerReference>,
    pub finalizers: Vec<String>,
    pub creation_timestamp: Option<Time>,
    /// Set when a graceful delete has begun.
    pub deletion_timestamp: Option<Time>,
    pub deletion_grace_period_seconds: Option<i64>,
}

/// A link from a dependent object to the object that owns it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct OwnerReference {
    pub api_version: String,
    pub kind: Kind,
    pub name: String,
    pub uid: String,
    /// The owner that manages this object (at most one reference is).
    pub controller: bool,
    pub block_owner_deletion: bool,
}

impl ObjectMeta {
    /// Metadata with a namespace and a name.
    pub fn named(namespace: &str, name: &str) -> ObjectMeta {
        ObjectMeta {
            name: name.into(),
            namespace: namespace.into(),
            ..ObjectMeta::default()
        }
    }

    /// The reference whose `controller` flag is set, if any.
    pub fn controller_ref(&self) -> Option<&OwnerReference> {
        self.owner_references.iter().find(|r| r.controller)
    }

    /// True once a graceful delete has started.
    pub fn is_terminating(&self) -> bool {
        self.deletion_timestamp.is_some()
    }
}

/// A port given as a number or as the name of a container port. A name is
/// never empty: an empty one reads back from a manifest as port 0 (both are
/// invalid and refused by validation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PortRef {
    Number(i32),
    Name(String),
}

impl Default for PortRef {
    fn default() -> Self {
        PortRef::Number(0)
    }
}

#[cfg(any(test, feature = "arbitrary"))]
impl<'a> arbitrary::Arbitrary<'a> for PortRef {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        if u.arbitrary()? {
            return Ok(PortRef::Number(u.arbitrary()?));
        }
        let name: String = u.arbitrary()?;
        Ok(PortRef::Name(if name.is_empty() {
            "http".into()
        } else {
            name
        }))
    }
}

/// Manifests write a port as `8080` or `"http"` (Kubernetes' IntOrString).
pub(crate) mod port_ref_serde {
    use super::PortRef;
    use alloc::string::String;
    use core::fmt;
    use serde::de::{self, Deserializer, Visitor};
    use serde::{Deserialize, Serialize, Serializer};

    pub fn serialize<S: Serializer>(p: &PortRef, s: S) -> Result<S::Ok, S::Error> {
        if !s.is_human_readable() {
            return p.serialize(s);
        }
        match p {
            PortRef::Number(n) => s.serialize_i32(*n),
            PortRef::Name(n) => s.serialize_str(n),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PortRef, D::Error> {
        if !d.is_human_readable() {
            return PortRef::deserialize(d);
        }
        struct V;
        impl Visitor<'_> for V {
            type Value = PortRef;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number or a port name")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortRef, E> {
                i32::try_from(v)
                    .map(PortRef::Number)
                    .map_err(|_| E::custom("port out of range"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortRef, E> {
                i32::try_from(v)
                    .map(PortRef::Number)
                    .map_err(|_| E::custom("port out of range"))
            }
            /// A quoted string is a port name even when it looks like a
            /// number, as in Kubernetes; validation then rejects it.
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortRef, E> {
                Ok(PortRef::Name(String::from(v)))
            }
        }
        d.deserialize_any(V)
    }
}

/// `resourceVersion` is text in manifests (`"1234"`) and an integer on the wire.
mod revision_serde {
    use core::fmt;
    use serde::de::{self, Deserializer, Visitor};
    use serde::Serializer;

    pub fn serialize<S: Serializer>(rv: &u64, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(rv)
        } else {
            s.serialize_u64(*rv)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = u64;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a resource version (a decimal revision number)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
                Ok(v)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
                u64::try_from(v).map_err(|_| E::custom("resource version must not be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
                if v.is_empty() {
                    return Ok(0);
                }
                v.parse()
                    .map_err(|_| E::custom("resource version must be a decimal number"))
            }
        }
        if d.is_human_readable() {
            d.deserialize_any(V)
        } else {
            d.deserialize_u64(V)
        }
    }
}
