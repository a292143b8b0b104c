//! The node agent's pod layer: one [`noderun_core::Pod`] bound to this
//! node turned into running, networked containers and back, by calling
//! the runtime, image, snapshot and netplug libraries in-process. The
//! daemon (registration, lease, pod watch, status push, restarts) is built
//! on top of [`PodHost`]; this module does no I/O with the control plane.
//!
//! - [`runner`]: the single-threaded helper process that creates, starts,
//!   signals and deletes containers for the multi-threaded agent.
//! - [`sandbox`]: the pod's shared namespaces (pinned), its cgroup by QoS
//!   class, its network attachment.
//! - [`spec`] and [`resources`]: a pod container's OCI runtime spec;
//!   [`etc_files`]: the pod's /etc/hosts, hostname and resolv.conf.
//! - [`pod`]: start; [`container`]: one container started fresh or
//!   removed (init containers, restarts); [`teardown`]: stop and remove by
//!   pod UID alone;
//!   [`status`]: container states for the pod's status; [`usage`]: the
//!   memory a pod uses, from its cgroups; [`recovery`]: what a crash left
//!   of a pod (containers started, sandbox whole).
//! - [`logs`]: the containers' logs, rotated by size by a logger process
//!   per container instance.
//!
//! Names on the host, all derived from the pod's UID so that a crash can be
//! cleaned without state ([`PodPaths`]):
//! ```text
//! <run>/netns|ipcns|utsns/<uid>          pinned namespaces
//! <run>/containers/<uid>_<name>/         runtime state (the runner's root)
//! <run>/pods/<uid>/<name>/               bundle: config.json, rootfs/ (mount)
//! <run>/pods/<uid>/_etc/                 hosts, hostname, resolv.conf
//! <log>/<ns>_<pod>_<uid>/<name>/<n>.log  container stdout and stderr of
//!                                        its n-th instance (0, then one
//!                                        per restart), rotated to .log.1..
//! snapshot <uid>_<name>                  the container's writable layer
//! cgroup <parent>/<qos>/pod<uid>/<name>  pod and container cgroups
//! netplug container id <uid>, eth0       veth and address
//! ```

pub mod container;
pub mod etc_files;
mod exec;
pub mod logs;
pub mod pod;
pub mod recovery;
pub mod resources;
pub mod runner;
pub mod sandbox;
pub mod spec;
pub mod status;
pub mod teardown;
pub mod usage;

pub use pod::{PhaseTimes, StartedPod};
pub use runner::{Runner, RunnerError};
pub use status::{ContainerReport, ContainerStatuses};

use crate::cgroups::{CgroupError, Layout};
use crate::image::{ImageError, ImageStore};
use crate::snapshot::{SnapshotError, Snapshotter};
use noderun_netplug::PodNetwork;
use sandbox::{SandboxError, SandboxPaths};
use std::path::{Path, PathBuf};

/// What went wrong with a pod, naming the pod (and container) and path.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("pod uid {uid:?} is not usable in names: use 1-64 of [A-Za-z0-9-]")]
    BadUid { uid: String },
    #[error("pod {uid}: container name {name:?} is not usable in names: use 1-63 of [a-z0-9-]")]
    BadContainerName { uid: String, name: String },
    #[error("pod {uid} has no container {name:?}")]
    NoContainer { uid: String, name: String },
    #[error("pod {uid}: {what} is not supported by this node agent yet")]
    Unsupported { uid: String, what: &'static str },
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("pod {uid}, container {container}: image {image}: {source}")]
    Image {
        uid: String,
        container: String,
        image: String,
        #[source]
        source: Box<SnapshotError>,
    },
    #[error("pod {uid}, container {container}: rootfs: {source}")]
    Rootfs {
        uid: String,
        container: String,
        #[source]
        source: Box<SnapshotError>,
    },
    #[error("pod {uid}, container {container}: {source}")]
    Spec {
        uid: String,
        container: String,
        #[source]
        source: spec::SpecError,
    },
    #[error("pod {uid}: {op} {path}: {source}")]
    Io {
        uid: String,
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("pod {uid}, container {container}: {source}")]
    Runner {
        uid: String,
        container: String,
        #[source]
        source: Box<RunnerError>,
    },
    #[error("pod {uid}: rootfs: {source}")]
    Unmount {
        uid: String,
        #[source]
        source: Box<crate::sys::mount::MountError>,
    },
    #[error("pod {uid}, container {container}: {source}")]
    Logs {
        uid: String,
        container: String,
        #[source]
        source: logs::LogError,
    },
    #[error("a socket in the node's network namespace: {source}")]
    NodeSocket {
        #[source]
        source: std::io::Error,
    },
    #[error("agent: {0}")]
    NodeNetns(#[from] noderun_netplug::netns::NetnsError),
    #[error("agent: {0}")]
    Cgroups(#[from] CgroupError),
    #[error("agent: image store: {0}")]
    Images(#[from] ImageError),
}

/// Where the agent keeps things.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// Runtime state, bundles and pinned namespaces (`/run/noderun`).
    pub run_dir: PathBuf,
    /// Container logs (`/var/log/noderun/pods`).
    pub log_dir: PathBuf,
    /// The agent's cgroup parent, relative to the hierarchy roots
    /// (`noderun`); QoS parents and pods go below it.
    pub cgroup_parent: PathBuf,
    /// When container logs are rotated (kubelet's 10 MiB, 5 files).
    pub log_rotation: logs::LogRotation,
    /// The node's resolv.conf, the source of the pods' (kubelet's
    /// `--resolv-conf`; `/etc/resolv.conf`).
    pub resolv_conf: PathBuf,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            run_dir: "/run/noderun".into(),
            log_dir: "/var/log/noderun/pods".into(),
            cgroup_parent: "noderun".into(),
            log_rotation: logs::LogRotation::default(),
            resolv_conf: "/etc/resolv.conf".into(),
        }
    }
}

/// The names of one pod's things on the host, from its UID.
#[derive(Debug, Clone)]
pub struct PodPaths {
    pub uid: String,
    pub sandbox: SandboxPaths,
    /// The runner's runtime root (shared by all pods).
    pub runtime_root: PathBuf,
    /// `<run>/pods/<uid>`: the pod's bundles.
    pub bundles: PathBuf,
    log_dir: PathBuf,
}

impl PodPaths {
    pub fn new(config: &AgentConfig, uid: &str) -> Result<PodPaths, AgentError> {
        let ok = !uid.is_empty()
            && uid.len() <= 64
            && uid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(AgentError::BadUid { uid: uid.into() });
        }
        Ok(PodPaths {
            uid: uid.into(),
            sandbox: SandboxPaths::new(&config.run_dir, &config.cgroup_parent, uid),
            runtime_root: config.run_dir.join("containers"),
            bundles: config.run_dir.join("pods").join(uid),
            log_dir: config.log_dir.clone(),
        })
    }

    /// The container id (runtime) and snapshot key: `<uid>_<name>`.
    pub fn container_id(&self, name: &str) -> String {
        format!("{}_{name}", self.uid)
    }

    /// The prefix every container id and snapshot key of the pod has.
    pub fn id_prefix(&self) -> String {
        format!("{}_", self.uid)
    }

    /// `<run>/pods/<uid>/_etc`: the pod's hosts, hostname and resolv.conf
    /// ([`etc_files`]).
    pub fn etc_dir(&self) -> PathBuf {
        self.bundles.join(etc_files::ETC_DIR)
    }

    pub fn bundle(&self, name: &str) -> PathBuf {
        self.bundles.join(name)
    }

    /// `<run>/pods/<uid>/_evicted/message`: the pod is being evicted (a
    /// directory whose name no container can have, as `_etc`).
    pub fn eviction_mark(&self) -> PathBuf {
        self.bundles.join("_evicted").join("message")
    }

    /// `<log>/<namespace>_<pod name>_<uid>`.
    pub fn pod_log_dir(&self, namespace: &str, pod_name: &str) -> PathBuf {
        self.log_dir
            .join(format!("{namespace}_{pod_name}_{}", self.uid))
    }

    /// The pod's log directories found by UID (for teardown without the
    /// pod object).
    pub fn find_log_dirs(&self) -> Vec<PathBuf> {
        let suffix = format!("_{}", self.uid);
        std::fs::read_dir(&self.log_dir)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(&suffix))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A container name must be a DNS label (it becomes part of ids, keys,
/// paths and the cgroup).
fn check_container_name(uid: &str, name: &str) -> Result<(), AgentError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(AgentError::BadContainerName {
            uid: uid.into(),
            name: name.into(),
        })
    }
}

/// The node's pods: start, stop, status. Holds no per-pod state; every
/// call works from the pod object or its UID and what is on the host.
#[derive(Debug)]
pub struct PodHost {
    config: AgentConfig,
    runner: Runner,
    images: ImageStore,
    snapshots: Snapshotter,
    network: PodNetwork,
    layout: Layout,
}

impl PodHost {
    /// The pod host over these stores and this network; makes the QoS
    /// cgroup parents.
    pub fn new(
        config: AgentConfig,
        runner: Runner,
        images: ImageStore,
        snapshots: Snapshotter,
        network: PodNetwork,
    ) -> Result<PodHost, AgentError> {
        let layout = Layout::detect()?;
        sandbox::ensure_qos_parents(&layout, &config.cgroup_parent)?;
        Ok(PodHost {
            config,
            runner,
            images,
            snapshots,
            network,
            layout,
        })
    }

    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    pub fn network(&self) -> &PodNetwork {
        &self.network
    }

    pub fn snapshots(&self) -> &Snapshotter {
        &self.snapshots
    }

    /// The names of pod `uid`'s things.
    pub fn paths(&self, uid: &str) -> Result<PodPaths, AgentError> {
        PodPaths::new(&self.config, uid)
    }

    /// The cgroup layout the agent detected.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// A TCP socket (not connected) in the node's network namespace: the
    /// one the pod network's host side is in, else the agent's own. Pod
    /// IPs are reached from there, as kubelet's probes reach them.
    pub fn node_tcp_socket(&self, ipv6: bool) -> Result<tokio::net::TcpSocket, AgentError> {
        let make = || {
            if ipv6 {
                tokio::net::TcpSocket::new_v6()
            } else {
                tokio::net::TcpSocket::new_v4()
            }
        };
        let made = match self.network.host_netns() {
            Some(ns) => ns.enter(make)?,
            None => make(),
        };
        made.map_err(|source| AgentError::NodeSocket { source })
    }

    fn io(uid: &str, op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> AgentError {
        let (uid, path) = (uid.to_string(), path.to_path_buf());
        move |source| AgentError::Io {
            uid,
            op,
            path,
            source,
        }
    }
}
