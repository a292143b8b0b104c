//! The API object model: the kinds the control plane stores and the nodes
//! act on, shaped like their Kubernetes namesakes (field names and JSON
//! spelling included) so that a user's manifests read as they expect.

mod cluster;
mod labels;
mod meta;
mod node;
mod pod;
mod quantity;
mod replicaset;
mod scheduling;
mod time;

pub use cluster::*;
pub use labels::*;
pub use meta::*;
pub use node::*;
pub use pod::*;
pub use quantity::*;
pub use replicaset::*;
pub use scheduling::*;
pub use time::*;

use core::fmt;
use core::str::FromStr;
use serde::{Deserialize, Serialize};

/// The kinds of object the system stores.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub enum Kind {
    Namespace,
    #[default]
    Pod,
    Node,
    ReplicaSet,
    Lease,
}

/// A resource name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown resource type {0:?} (known: pods/po, nodes/no, replicasets/rs, namespaces/ns, leases)"
)]
pub struct UnknownKind(pub alloc::string::String);

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Namespace,
        Kind::Pod,
        Kind::Node,
        Kind::ReplicaSet,
        Kind::Lease,
    ];

    /// The `apiVersion` manifests of this kind carry.
    pub const fn api_version(self) -> &'static str {
        match self {
            Kind::Namespace | Kind::Pod | Kind::Node => "v1",
            Kind::ReplicaSet => "apps/v1",
            Kind::Lease => "coordination.k8s.io/v1",
        }
    }

    /// The lower-case plural used on the command line and in store keys.
    pub const fn plural(self) -> &'static str {
        match self {
            Kind::Namespace => "namespaces",
            Kind::Pod => "pods",
            Kind::Node => "nodes",
            Kind::ReplicaSet => "replicasets",
            Kind::Lease => "leases",
        }
    }

    /// The CamelCase name (`ReplicaSet`).
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::Pod => "Pod",
            Kind::Node => "Node",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::Lease => "Lease",
        }
    }

    /// Namespaced kinds live inside a namespace; the others are cluster-wide.
    pub const fn is_namespaced(self) -> bool {
        !matches!(self, Kind::Namespace | Kind::Node)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kind {
    type Err = UnknownKind;
    /// kubectl's spellings: `pod`, `pods`, `po`, `Pod`, `rs`, `replicaset`, ...
    fn from_str(s: &str) -> Result<Kind, UnknownKind> {
        let lower = s.to_ascii_lowercase();
        Ok(match lower.as_str() {
            "ns" | "namespace" | "namespaces" => Kind::Namespace,
            "po" | "pod" | "pods" => Kind::Pod,
            "no" | "node" | "nodes" => Kind::Node,
            "rs" | "replicaset" | "replicasets" => Kind::ReplicaSet,
            "lease" | "leases" => Kind::Lease,
            _ => return Err(UnknownKind(s.into())),
        })
    }
}

/// Any stored object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub enum Object {
    Namespace(Namespace),
    Pod(Pod),
    Node(Node),
    ReplicaSet(ReplicaSet),
    Lease(Lease),
}

impl Object {
    pub fn kind(&self) -> Kind {
        match self {
            Object::Namespace(_) => Kind::Namespace,
            Object::Pod(_) => Kind::Pod,
            Object::Node(_) => Kind::Node,
            Object::ReplicaSet(_) => Kind::ReplicaSet,
            Object::Lease(_) => Kind::Lease,
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Object::Namespace(o) => &o.metadata,
            Object::Pod(o) => &o.metadata,
            Object::Node(o) => &o.metadata,
            Object::ReplicaSet(o) => &o.metadata,
            Object::Lease(o) => &o.metadata,
        }
    }

    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Object::Namespace(o) => &mut o.metadata,
            Object::Pod(o) => &mut o.metadata,
            Object::Node(o) => &mut o.metadata,
            Object::ReplicaSet(o) => &mut o.metadata,
            Object::Lease(o) => &mut o.metadata,
        }
    }
}

macro_rules! object_from {
    ($($variant:ident),*) => {$(
        impl From<$variant> for Object {
            fn from(o: $variant) -> Object {
                Object::$variant(o)
            }
        }
    )*};
}
object_from!(Namespace, Pod, Node, ReplicaSet, Lease);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_parse_as_kubectl_spells_them() {
        for kind in Kind::ALL {
            assert_eq!(kind.plural().parse::<Kind>().unwrap(), kind);
            assert_eq!(kind.name().parse::<Kind>().unwrap(), kind);
        }
        assert_eq!("po".parse::<Kind>().unwrap(), Kind::Pod);
        assert_eq!("rs".parse::<Kind>().unwrap(), Kind::ReplicaSet);
        assert!("deployments".parse::<Kind>().is_err());
    }
}
