//! The host against the apiserver. At every start, before any worker
//! runs: every pod found on the host (by the UIDs in the agent's names:
//! bundles, pinned namespaces, runtime state, active snapshots, IPAM
//! allocations, log directories, pod cgroups) that the apiserver does not
//! bind here is torn down; pods that are bound stay, and their workers
//! adopt them (or, half-made, tear them down and start them again).
//! Snapshot directories no name points at (an unpack or rootfs a crash
//! cut short) are removed.
//! [`reset`] tears down every pod and the node's own bridge and cgroup
//! parents (`noderun reset`, used by `scripts/down.sh`).

use super::NodeContext;
use crate::agent::sandbox::{nsfs::SharedNs, qos_dir};
use crate::agent::{AgentError, PodHost};
use crate::cgroups::{self, CgroupError};
use crate::snapshot::Kind as SnapshotKind;
use noderun_core::QosClass;
use noderun_netplug::netlink::Netlink;
use noderun_netplug::Netns;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The QoS classes, each with a cgroup parent of its pods.
const QOS_CLASSES: [QosClass; 3] = [
    QosClass::Guaranteed,
    QosClass::Burstable,
    QosClass::BestEffort,
];

/// Names in `dir` (nothing when it does not exist).
fn names_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The UIDs of every pod the host holds something of.
pub fn pods_on_host(host: &PodHost) -> BTreeSet<String> {
    let config = host.config();
    let run = &config.run_dir;
    let mut uids = BTreeSet::new();
    uids.extend(names_in(&run.join("pods")));
    for kind in SharedNs::ALL {
        uids.extend(names_in(&run.join(kind.dir_name())));
    }
    // `<uid>_<container>`: a UID never holds `_`.
    let before_underscore = |name: &str| name.split_once('_').map(|(uid, _)| uid.to_string());
    uids.extend(
        names_in(&run.join("containers"))
            .iter()
            .filter_map(|n| before_underscore(n)),
    );
    if let Ok(list) = host.snapshots().list() {
        uids.extend(
            list.iter()
                .filter(|s| s.kind == SnapshotKind::Active)
                .filter_map(|s| before_underscore(&s.name)),
        );
    }
    if let Ok(state) = host.network().store().state() {
        uids.extend(state.allocations.values().map(|o| o.container_id.clone()));
    }
    // `<namespace>_<pod>_<uid>`.
    uids.extend(
        names_in(&config.log_dir)
            .iter()
            .filter_map(|n| n.rsplit_once('_').map(|(_, uid)| uid.to_string())),
    );
    // `<parent>/<qos>/pod<uid>`: what a teardown cut short between the
    // namespaces and the cgroup leaves (no cgroup control file starts
    // with `pod`).
    for qos in QOS_CLASSES {
        let parent = config.cgroup_parent.join(qos_dir(qos));
        let dirs = cgroups::open(host.layout(), &parent).map(|cg| cg.paths());
        for dir in dirs.iter().flatten() {
            uids.extend(
                names_in(dir)
                    .iter()
                    .filter_map(|n| n.strip_prefix("pod").map(String::from)),
            );
        }
    }
    uids.retain(|u| host.paths(u).is_ok());
    uids
}

/// Tear down every pod on the host not in `bound`; failures are logged
/// (the next start tries again).
pub async fn on_start(ctx: &Arc<NodeContext>, bound: &BTreeSet<String>) {
    let host = Arc::clone(&ctx.host);
    let bound = bound.clone();
    let done = tokio::task::spawn_blocking(move || {
        let stale: Vec<String> = pods_on_host(&host)
            .into_iter()
            .filter(|u| !bound.contains(u))
            .collect();
        for uid in &stale {
            tracing::info!(pod = %uid, "not bound here any more; tearing down");
            if let Err(e) = host.teardown_pod(uid, Duration::ZERO) {
                tracing::warn!(pod = %uid, error = %e, "teardown of a stale pod failed");
            }
        }
        // Snapshot directories a crash left unnamed (an unpack or a
        // container's rootfs cut short) belong to no pod and no image.
        match host.snapshots().remove_abandoned() {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "removed abandoned snapshot directories"),
            Err(e) => tracing::warn!(error = %e, "removing abandoned snapshot directories failed"),
        }
        stale.len()
    })
    .await;
    match done {
        Ok(n) => tracing::info!(stale = n, "host reconciled with the apiserver"),
        Err(e) => tracing::warn!(error = %e, "host reconcile failed"),
    }
}

/// What [`reset`] could not remove.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error("{0}")]
    Pod(#[from] AgentError),
    #[error("cgroup {path}: {source}")]
    Cgroup {
        path: PathBuf,
        #[source]
        source: CgroupError,
    },
    #[error("bridge {bridge}: {message}")]
    Bridge { bridge: String, message: String },
    #[error("removing abandoned snapshot directories: {0}")]
    Snapshots(#[from] crate::snapshot::SnapshotError),
}

/// Take the node down: every pod torn down (no grace), abandoned
/// snapshot directories removed, then the bridge
/// (in `host_netns` when given) and the QoS and parent cgroups. Returns
/// the UIDs torn down.
pub fn reset(host: &PodHost, host_netns: Option<&Path>) -> Result<Vec<String>, ResetError> {
    let uids: Vec<String> = pods_on_host(host).into_iter().collect();
    for uid in &uids {
        host.teardown_pod(uid, Duration::ZERO)?;
    }
    host.snapshots().remove_abandoned()?;
    let bridge = host.network().config().bridge.clone();
    let bridge_err = |message: String| ResetError::Bridge {
        bridge: bridge.clone(),
        message,
    };
    let mut netlink = match host_netns {
        Some(path) => Netns::open(path)
            .map_err(|e| bridge_err(e.to_string()))
            .and_then(|ns| Netlink::open_in(&ns).map_err(|e| bridge_err(e.to_string())))?,
        None => Netlink::open().map_err(|e| bridge_err(e.to_string()))?,
    };
    netlink
        .delete_link(&bridge)
        .map_err(|e| bridge_err(e.to_string()))?;
    let parent = &host.config().cgroup_parent;
    let dirs = QOS_CLASSES
        .iter()
        .map(|q| parent.join(qos_dir(*q)))
        .chain([parent.clone()]);
    for path in dirs {
        cgroups::open(host.layout(), &path)
            .and_then(|cg| {
                cg.kill_all()?;
                cg.delete()
            })
            .map_err(|source| ResetError::Cgroup { path, source })?;
    }
    Ok(uids)
}
