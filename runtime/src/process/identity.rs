//! Who the container's process is and what it may do: rlimits,
//! oom_score_adj, no_new_privs, the user and groups, and the five
//! capability sets, applied in the one order that keeps each step allowed.

use crate::sys::ns::{self, NsError};
use caps::{CapSet, Capability, CapsHashSet};
use nix::sys::resource::Resource;
use oci_spec::runtime::{Capabilities, Linux, LinuxCapabilities, PosixRlimitType, Process};
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Sys(#[from] NsError),
    #[error("capability {name:?} is unknown")]
    UnknownCap { name: String },
    #[error("capabilities: setting the {set:?} set: {message}")]
    Caps { set: CapSet, message: String },
    #[error("write /proc/self/oom_score_adj ({value}): {source}")]
    OomScore {
        value: i32,
        #[source]
        source: std::io::Error,
    },
}

/// Apply everything but seccomp (that comes last, right before exec).
///
/// Order: rlimits and oom_score_adj while CAP_SYS_RESOURCE is still held;
/// the bounding set while CAP_SETPCAP is; the inheritable set while the
/// permitted set is still full; then the uid/gid switch with KEEPCAPS so the
/// permitted set survives it; then permitted, effective and ambient;
/// no_new_privs last (it only affects exec).
pub fn finalize_identity(process: &Process, _linux: &Linux) -> Result<(), IdentityError> {
    for r in process.rlimits().iter().flatten() {
        ns::set_rlimit(resource(r.typ()), r.soft(), r.hard())?;
    }
    if let Some(score) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", score.to_string()).map_err(|source| {
            IdentityError::OomScore {
                value: score,
                source,
            }
        })?;
    }
    let wanted = process.capabilities().clone().unwrap_or_default();
    let bounding = set_of(wanted.bounding())?;
    for cap in caps::all().difference(&bounding) {
        caps::drop(None, CapSet::Bounding, *cap).map_err(|e| caps_err(CapSet::Bounding, e))?;
    }
    caps::set(None, CapSet::Inheritable, &set_of(wanted.inheritable())?)
        .map_err(|e| caps_err(CapSet::Inheritable, e))?;
    switch_user(process)?;
    apply_caps(&wanted)?;
    if process.no_new_privileges().unwrap_or(false) {
        ns::set_no_new_privs()?;
    }
    Ok(())
}

fn switch_user(process: &Process) -> Result<(), IdentityError> {
    let user = process.user();
    ns::set_keep_caps(true)?;
    ns::set_groups(user.additional_gids().as_deref().unwrap_or_default())?;
    ns::set_ids(user.uid(), user.gid())?;
    ns::set_keep_caps(false)?;
    Ok(())
}

fn apply_caps(wanted: &LinuxCapabilities) -> Result<(), IdentityError> {
    // The effective set must stay within the permitted one at every step:
    // empty it, shrink permitted, then raise effective to what is wanted.
    caps::clear(None, CapSet::Effective).map_err(|e| caps_err(CapSet::Effective, e))?;
    caps::set(None, CapSet::Permitted, &set_of(wanted.permitted())?)
        .map_err(|e| caps_err(CapSet::Permitted, e))?;
    caps::set(None, CapSet::Effective, &set_of(wanted.effective())?)
        .map_err(|e| caps_err(CapSet::Effective, e))?;
    let ambient = set_of(wanted.ambient())?;
    caps::clear(None, CapSet::Ambient).map_err(|e| caps_err(CapSet::Ambient, e))?;
    // The kernel only holds an ambient capability that is both permitted
    // and inheritable. Specs often list ambient without inheritable (runc
    // spec's own default does): such entries cannot take effect, so they
    // are skipped, as runc skips them, rather than failing.
    let permitted = set_of(wanted.permitted())?;
    let inheritable = set_of(wanted.inheritable())?;
    for cap in ambient {
        if permitted.contains(&cap) && inheritable.contains(&cap) {
            caps::raise(None, CapSet::Ambient, cap).map_err(|e| caps_err(CapSet::Ambient, e))?;
        }
    }
    Ok(())
}

fn caps_err(set: CapSet, e: caps::errors::CapsError) -> IdentityError {
    IdentityError::Caps {
        set,
        message: e.to_string(),
    }
}

/// oci-spec's capability names (`CAP_NET_RAW`) as the caps crate's set.
fn set_of(list: &Option<Capabilities>) -> Result<CapsHashSet, IdentityError> {
    let mut out = CapsHashSet::new();
    for c in list.iter().flatten() {
        let name = c.to_string();
        let name = if name.starts_with("CAP_") {
            name
        } else {
            format!("CAP_{name}")
        };
        out.insert(Capability::from_str(&name).map_err(|_| IdentityError::UnknownCap { name })?);
    }
    Ok(out)
}

fn resource(t: PosixRlimitType) -> Resource {
    match t {
        PosixRlimitType::RlimitCpu => Resource::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => Resource::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => Resource::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => Resource::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => Resource::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => Resource::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => Resource::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => Resource::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => Resource::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => Resource::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => Resource::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}
