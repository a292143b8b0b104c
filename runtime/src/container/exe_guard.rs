//! How a container's processes are kept from reaching the runtime's binary
//! on the host (CVE-2019-5736): either the runtime already runs from an
//! executable nothing can write (a read-only view or sealed copy, see
//! `sys::selfexe`), or the container's process is executed through the
//! sealed exec trampoline (`sys::trampoline`). Callers that can do neither
//! must re-execute from a protected copy first (`nrc` does, see
//! [`trampoline_serves`]); the library refuses to start a container
//! otherwise.

use super::ContainerError;
use crate::sys::selfexe;
use crate::sys::trampoline::Trampoline;
use oci_spec::runtime::LinuxSeccomp;
use std::sync::OnceLock;

/// The trampoline to exec through, or None when this process's binary is
/// protected already.
pub fn choose(
    id: &str,
    seccomp: Option<&LinuxSeccomp>,
) -> Result<Option<&'static Trampoline>, ContainerError> {
    let unguarded = |why: String| ContainerError::Unguarded { id: id.into(), why };
    // A process's executable changes only at exec: asked once, not at
    // every container start (the node's runner starts them all).
    static PROTECTED: OnceLock<Result<bool, String>> = OnceLock::new();
    let protected =
        PROTECTED.get_or_init(|| selfexe::exe_is_protected().map_err(|e| e.to_string()));
    if protected.clone().map_err(unguarded)? {
        return Ok(None);
    }
    trampoline_serves(seccomp).map(Some).map_err(unguarded)
}

/// The trampoline, if it can start a process confined by `seccomp`: it is
/// one more exec, by `execveat`, which the profile must let through
/// whatever the arguments. Else why not.
pub fn trampoline_serves(seccomp: Option<&LinuxSeccomp>) -> Result<&'static Trampoline, String> {
    if let Some(profile) = seccomp {
        if !crate::seccomp::passes_unconditionally(profile, "execveat") {
            return Err(
                "its seccomp profile may refuse execveat, which the exec trampoline needs".into(),
            );
        }
    }
    Trampoline::shared().map_err(|e| e.to_string())
}
