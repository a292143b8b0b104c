//! The container process's identity and confinement: namespaces created or
//! joined, id maps, hostname, rlimits, user, capabilities, no_new_privs,
//! and the exec itself.

pub mod console;
pub mod exec;
mod identity;
pub mod idmap;
pub mod namespaces;

pub use identity::{finalize_identity, IdentityError};

use crate::sys::ns::{self, NsError};
use oci_spec::runtime::Spec;

/// Set the hostname (and domainname) in the container's new UTS namespace.
pub fn set_hostname(spec: &Spec) -> Result<(), NsError> {
    if let Some(h) = spec.hostname() {
        ns::sethostname(h)?;
    }
    Ok(())
}

/// Become root of the user namespace the init is in. After the clone (or
/// setns) the init still carries the runtime's host ids, which mean nothing
/// there: files it creates, even on a tmpfs mounted in that namespace,
/// would fail with EOVERFLOW. Container uid and gid 0 must be mapped.
pub fn become_namespace_root() -> Result<(), NsError> {
    ns::set_ids(0, 0)
}
