//! The pod sandbox: what a pod's containers share, made before the first
//! container and removed after the last: network, IPC and UTS namespaces
//! pinned under the agent's run dir ([`nsfs`]), the pod's cgroup under
//! its QoS class's parent, and the pod's network attachment (netplug ADD,
//! in-process).
//!
//! Every name derives from the pod's UID ([`SandboxPaths`]), so a sandbox
//! is torn down from the UID alone, whatever state a crash left it in.

pub mod nsfs;

use crate::cgroups::{self, CgroupError, Layout};
use noderun_core::QosClass;
use noderun_netplug::{Attachment, PodNetwork, PodNetworkError};
use nsfs::{NsfsError, SharedNs};
use std::path::{Path, PathBuf};

/// The pod's interface name inside its network namespace.
pub const POD_IFNAME: &str = "eth0";

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("pod {uid}: namespaces: {source}")]
    Namespaces {
        uid: String,
        #[source]
        source: Box<NsfsError>,
    },
    #[error("pod {uid}: cgroup {path}: {source}")]
    Cgroup {
        uid: String,
        path: PathBuf,
        #[source]
        source: Box<CgroupError>,
    },
    #[error("pod {uid}: network: {source}")]
    Network {
        uid: String,
        #[source]
        source: Box<PodNetworkError>,
    },
}

/// The cgroup parent of each QoS class, relative to the agent's parent
/// (`noderun/guaranteed`, ...).
pub fn qos_dir(qos: QosClass) -> &'static str {
    match qos {
        QosClass::Guaranteed => "guaranteed",
        QosClass::Burstable => "burstable",
        QosClass::BestEffort => "besteffort",
    }
}

/// Where a pod's sandbox lives, from its UID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxPaths {
    pub uid: String,
    /// The pinned namespaces, by kind.
    pub pins: Vec<(SharedNs, PathBuf)>,
    /// The agent's cgroup parent (`noderun`).
    pub cgroup_parent: PathBuf,
}

impl SandboxPaths {
    pub fn new(run_dir: &Path, cgroup_parent: &Path, uid: &str) -> SandboxPaths {
        SandboxPaths {
            uid: uid.into(),
            pins: SharedNs::ALL
                .iter()
                .map(|k| (*k, run_dir.join(k.dir_name()).join(uid)))
                .collect(),
            cgroup_parent: cgroup_parent.into(),
        }
    }

    /// The pinned namespace file of `kind`.
    pub fn ns(&self, kind: SharedNs) -> &Path {
        &self
            .pins
            .iter()
            .find(|(k, _)| *k == kind)
            .expect("every kind is pinned")
            .1
    }

    /// The pod's cgroup for QoS class `qos`, relative to the hierarchy
    /// roots: `<parent>/<qos>/pod<uid>`.
    pub fn cgroup(&self, qos: QosClass) -> PathBuf {
        self.cgroup_parent
            .join(qos_dir(qos))
            .join(format!("pod{}", self.uid))
    }
}

/// A made sandbox.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub paths: SandboxPaths,
    pub qos: QosClass,
    /// The pod's cgroup, relative to the hierarchy roots.
    pub cgroup: PathBuf,
}

/// Make the pod's namespaces (UTS with `hostname`) and its cgroup with
/// `resources`. On failure the caller tears the sandbox down.
pub fn create(
    paths: &SandboxPaths,
    layout: &Layout,
    hostname: &str,
    qos: QosClass,
    resources: &cgroups::Resources,
) -> Result<Sandbox, SandboxError> {
    let uid = &paths.uid;
    nsfs::pin_new(&paths.pins, hostname).map_err(|source| SandboxError::Namespaces {
        uid: uid.clone(),
        source: Box::new(source),
    })?;
    let cgroup = paths.cgroup(qos);
    let cgroup_err = |source| SandboxError::Cgroup {
        uid: uid.clone(),
        path: cgroup.clone(),
        source: Box::new(source),
    };
    let cg = cgroups::open(layout, &cgroup).map_err(cgroup_err)?;
    cg.create().map_err(cgroup_err)?;
    cg.apply(resources).map_err(cgroup_err)?;
    Ok(Sandbox {
        paths: paths.clone(),
        qos,
        cgroup,
    })
}

/// netplug ADD of the pod's network namespace, as container `uid`.
pub fn attach(network: &PodNetwork, paths: &SandboxPaths) -> Result<Attachment, SandboxError> {
    network
        .add(paths.ns(SharedNs::Net), &paths.uid, POD_IFNAME)
        .map_err(|source| SandboxError::Network {
            uid: paths.uid.clone(),
            source: Box::new(source),
        })
}

/// Remove the sandbox's network attachment, namespaces and cgroup (under
/// whichever QoS parent it is). Each step succeeds when there is nothing
/// left to remove; every step runs, and the first failure is returned.
pub fn teardown(
    paths: &SandboxPaths,
    layout: &Layout,
    network: &PodNetwork,
) -> Result<(), SandboxError> {
    let uid = &paths.uid;
    let mut first: Option<SandboxError> = None;
    let mut keep = |r: Result<(), SandboxError>| {
        if let Err(e) = r {
            first.get_or_insert(e);
        }
    };
    keep(
        network
            .del(uid, POD_IFNAME)
            .map_err(|source| SandboxError::Network {
                uid: uid.clone(),
                source: Box::new(source),
            }),
    );
    for (_, pin) in &paths.pins {
        keep(nsfs::unpin(pin).map_err(|source| SandboxError::Namespaces {
            uid: uid.clone(),
            source: Box::new(source),
        }));
    }
    for qos in [
        QosClass::Guaranteed,
        QosClass::Burstable,
        QosClass::BestEffort,
    ] {
        let cgroup = paths.cgroup(qos);
        let cgroup_err = |source| SandboxError::Cgroup {
            uid: uid.clone(),
            path: cgroup.clone(),
            source: Box::new(source),
        };
        keep(
            cgroups::open(layout, &cgroup)
                .and_then(|cg| {
                    cg.kill_all()?;
                    cg.delete()
                })
                .map_err(cgroup_err),
        );
    }
    first.map_or(Ok(()), Err)
}

/// Make the QoS parents (`<parent>/guaranteed`, `burstable`, `besteffort`)
/// once, as the kubelet does at start, so that pods never race to create
/// or remove them.
pub fn ensure_qos_parents(layout: &Layout, parent: &Path) -> Result<(), SandboxError> {
    for qos in [
        QosClass::Guaranteed,
        QosClass::Burstable,
        QosClass::BestEffort,
    ] {
        let path = parent.join(qos_dir(qos));
        let err = |source| SandboxError::Cgroup {
            uid: "-".into(),
            path: path.clone(),
            source: Box::new(source),
        };
        cgroups::open(layout, &path)
            .and_then(|cg| cg.create())
            .map_err(err)?;
    }
    Ok(())
}
