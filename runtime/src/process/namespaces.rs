//! The spec's namespaces split into the ones the clone creates (no path)
//! and the ones the init joins by path (the pod sandbox case).

use crate::sys::ns::{setns_path, NsError};
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum NamespaceError {
    #[error("namespace type {0:?} is not supported (supported: pid, network, mount, ipc, uts, user, cgroup)")]
    Unsupported(LinuxNamespaceType),
    #[error(transparent)]
    Join(#[from] NsError),
    #[error("unshare of the cgroup namespace: {0}")]
    Unshare(nix::Error),
}

#[derive(Debug, Clone)]
pub struct NamespacePlan {
    create: CloneFlags,
    /// In join order.
    join: Vec<(CloneFlags, PathBuf)>,
}

pub fn clone_flag(t: LinuxNamespaceType) -> Result<CloneFlags, NamespaceError> {
    Ok(match t {
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        other => return Err(NamespaceError::Unsupported(other)),
    })
}

impl NamespacePlan {
    pub fn from_spec(namespaces: &[LinuxNamespace]) -> Result<NamespacePlan, NamespaceError> {
        let mut plan = NamespacePlan {
            create: CloneFlags::empty(),
            join: Vec::new(),
        };
        for ns in namespaces {
            let flag = clone_flag(ns.typ())?;
            match ns.path() {
                Some(p) => plan.join.push((flag, p.clone())),
                None => plan.create |= flag,
            }
        }
        // A joined user namespace decides what the others may do: first.
        // The mount namespace last: after it, paths resolve in the
        // container's view and the other namespace files may be gone.
        plan.join.sort_by_key(|(flag, _)| match *flag {
            CloneFlags::CLONE_NEWUSER => 0,
            CloneFlags::CLONE_NEWNS => 2,
            _ => 1,
        });
        Ok(plan)
    }

    /// The namespaces the clone creates: all the new ones but the cgroup
    /// namespace, which the init makes itself once it is in its cgroup
    /// ([`NamespacePlan::unshare_late`]), so that the cgroup is the
    /// namespace's root, as runc does.
    pub fn clone_flags(&self) -> CloneFlags {
        self.create - CloneFlags::CLONE_NEWCGROUP
    }

    pub fn creates_cgroup_namespace(&self) -> bool {
        self.create.contains(CloneFlags::CLONE_NEWCGROUP)
    }

    /// In the init, once it is in its cgroup: create the new namespaces the
    /// clone left out (the cgroup namespace).
    pub fn unshare_late(&self) -> Result<(), NamespaceError> {
        if self.creates_cgroup_namespace() {
            nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).map_err(NamespaceError::Unshare)?;
        }
        Ok(())
    }

    pub fn creates_user_namespace(&self) -> bool {
        self.create.contains(CloneFlags::CLONE_NEWUSER)
    }

    /// True when the container runs in a user namespace other than the
    /// runtime's, created or joined.
    pub fn enters_user_namespace(&self) -> bool {
        self.creates_user_namespace()
            || self
                .join
                .iter()
                .any(|(flag, _)| *flag == CloneFlags::CLONE_NEWUSER)
    }

    pub fn creates_uts_namespace(&self) -> bool {
        self.create.contains(CloneFlags::CLONE_NEWUTS)
    }

    /// Join every namespace given by path, in the planned order.
    pub fn join_all(&self) -> Result<(), NamespaceError> {
        for (flag, path) in &self.join {
            setns_path(path, *flag)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(json: &str) -> Vec<LinuxNamespace> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn create_and_join_split() {
        let plan = NamespacePlan::from_spec(&ns(
            r#"[{"type":"pid"},{"type":"mount"},{"type":"network","path":"/run/netns/pod"},{"type":"user","path":"/proc/1/ns/user"},{"type":"ipc","path":"/proc/9/ns/ipc"}]"#,
        ))
        .unwrap();
        assert_eq!(
            plan.clone_flags(),
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS
        );
        let order: Vec<CloneFlags> = plan.join.iter().map(|(f, _)| *f).collect();
        assert_eq!(order[0], CloneFlags::CLONE_NEWUSER);
        assert!(!plan.creates_user_namespace() && !plan.creates_uts_namespace());
    }

    #[test]
    fn time_namespaces_are_refused() {
        assert!(matches!(
            NamespacePlan::from_spec(&ns(r#"[{"type":"time"}]"#)),
            Err(NamespaceError::Unsupported(LinuxNamespaceType::Time))
        ));
    }
}
