//! [`Identity`]: who a connection authenticated as. There are five kinds:
//! `admin` (everything), `viewer` (read only), `node:<name>` (the node
//! agent of one node), `system:controllers` (the ReplicaSet, node
//! lifecycle and garbage collection controllers) and `system:scheduler`
//! (the scheduler). The authorization rules live in `authz`.

use noderun_core::validate::names;
use std::fmt;
use std::str::FromStr;

/// An authenticated principal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    Admin,
    Viewer,
    /// The agent of the named node.
    Node(String),
    /// The control plane's controllers.
    Controllers,
    /// The scheduler.
    Scheduler,
}

/// Text that names no identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown identity {0:?} (expected admin, viewer, system:controllers, system:scheduler or node:<node name>)")]
pub struct UnknownIdentity(pub String);

impl FromStr for Identity {
    type Err = UnknownIdentity;

    fn from_str(s: &str) -> Result<Identity, UnknownIdentity> {
        match s {
            "admin" => Ok(Identity::Admin),
            "viewer" => Ok(Identity::Viewer),
            "system:controllers" => Ok(Identity::Controllers),
            "system:scheduler" => Ok(Identity::Scheduler),
            _ => match s.strip_prefix("node:") {
                Some(name) if names::dns1123_subdomain(name).is_ok() => {
                    Ok(Identity::Node(name.to_owned()))
                }
                _ => Err(UnknownIdentity(s.to_owned())),
            },
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Admin => f.write_str("admin"),
            Identity::Viewer => f.write_str("viewer"),
            Identity::Node(name) => write!(f, "node:{name}"),
            Identity::Controllers => f.write_str("system:controllers"),
            Identity::Scheduler => f.write_str("system:scheduler"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_parse_and_print_back() {
        for text in [
            "admin",
            "viewer",
            "node:node-1.example.com",
            "system:controllers",
            "system:scheduler",
        ] {
            let id: Identity = text.parse().unwrap();
            assert_eq!(id.to_string(), text);
        }
        for bad in ["", "root", "node:", "node:Bad_Name", "Admin", "system:"] {
            assert!(bad.parse::<Identity>().is_err(), "{bad:?}");
        }
    }
}
