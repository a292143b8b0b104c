//! The node daemon: joins the pod layer ([`crate::agent::PodHost`]) to the
//! control plane. It registers the node's [`Node`](noderun_core::Node)
//! (capacity from procfs, labels, taints, pod CIDR, the Ready condition),
//! heartbeats its Lease, and turns the pods bound to it into running
//! containers: one worker per pod starts it, pushes its status, restarts
//! its containers by their restart policy with kubelet's back-off, stops
//! it gracefully when it is deleted and then finalizes the delete.
//!
//! - [`config`]: what the daemon is told (and the flag syntaxes it parses).
//! - [`host`]: the pod host over the node's stores and network.
//! - [`facts`]: the host's facts from procfs (CPUs, memory, address).
//! - [`registration`]: the Node object and its status; [`lease`]: the
//!   heartbeat.
//! - [`dispatch`]: list + watch of the pods bound here, one worker each.
//! - [`worker`]: one pod's life on the node; [`init`]: init containers
//!   in order; [`probe`]: startup, liveness and readiness probes;
//!   [`restart`]: restart decisions and back-off; [`status`]: the pod
//!   status it reports.
//! - [`startlog`]: the per-pod record of a start's phases, logged
//!   once the Running status is stored; [`turns`]: how many pods start
//!   at once.
//! - [`reconcile`]: what is on the host against what is bound here, at
//!   every start, and [`reconcile::reset`] for taking a node down.
//! - [`eviction`]: node pressure (memory, disk, pids) against the hard
//!   thresholds, the pressure conditions, and evicting pods under memory
//!   pressure.
//!
//! It talks to the apiserver with `noderun-client` (the same client `ctl`
//! and the controllers use); the pod layer below it does no I/O with the
//! control plane.

pub mod api;
pub mod config;
pub mod dispatch;
pub mod eviction;
pub mod facts;
pub mod host;
pub mod init;
pub mod lease;
pub mod probe;
pub mod reconcile;
pub mod registration;
pub mod restart;
pub mod startlog;
pub mod status;
mod streams;
pub mod turns;
pub mod worker;

pub use config::NodeConfig;

use crate::agent::{AgentError, PodHost};
use api::Api;
use noderun_client::ClientError;
use std::sync::Arc;

/// What stops the daemon, naming what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("bad flag value {value:?}: {reason}")]
    Flag { value: String, reason: String },
    #[error("reading {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{doing}: {source}")]
    Api {
        doing: String,
        #[source]
        source: Box<ClientError>,
    },
    #[error("{doing}: {source}")]
    Agent {
        doing: String,
        #[source]
        source: Box<AgentError>,
    },
    #[error("opening the node's stores: {0}")]
    Host(#[from] Box<host::HostError>),
    #[error("{doing}: the blocking task failed: {message}")]
    Task { doing: String, message: String },
}

impl NodeError {
    pub(crate) fn api(doing: impl Into<String>) -> impl FnOnce(ClientError) -> NodeError {
        let doing = doing.into();
        move |source| NodeError::Api {
            doing,
            source: Box::new(source),
        }
    }
}

/// Everything a pod worker needs, shared.
#[derive(Debug)]
pub struct NodeContext {
    pub config: NodeConfig,
    pub host: Arc<PodHost>,
    /// The connection for writes (status, deletes, lease, node).
    pub api: Api,
    /// The pressure conditions the node reports (set by the eviction
    /// manager, read by the node status).
    pub pressure: tokio::sync::watch::Sender<eviction::conditions::NodePressure>,
    /// The pod workers the eviction manager can tell to evict.
    pub evictions: eviction::Evictions,
    /// Turns to start a pod ([`NodeConfig::parallel_starts`]).
    pub starts: turns::StartTurns,
}

/// Run `f` with the pod host on tokio's blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    host: &Arc<PodHost>,
    doing: String,
    f: impl FnOnce(&PodHost) -> Result<T, AgentError> + Send + 'static,
) -> Result<T, NodeError> {
    let host = Arc::clone(host);
    let task_doing = doing.clone();
    tokio::task::spawn_blocking(move || f(&host))
        .await
        .map_err(|e| NodeError::Task {
            doing: task_doing,
            message: e.to_string(),
        })?
        .map_err(|source| NodeError::Agent {
            doing,
            source: Box::new(source),
        })
}

/// Run the daemon until `stop` turns true: register, reconcile the host,
/// then heartbeat and run the pods bound here. Pods keep running when it
/// stops; the next start adopts them.
pub async fn run(
    config: NodeConfig,
    host: PodHost,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(), NodeError> {
    let api = Api::connect(config.endpoint.clone(), config.token.clone(), "noderun").await?;
    let ctx = Arc::new(NodeContext {
        starts: turns::StartTurns::new(config.parallel_starts, turns::DEFAULT_HOLD),
        config,
        host: Arc::new(host),
        api,
        pressure: tokio::sync::watch::Sender::new(Default::default()),
        evictions: eviction::Evictions::default(),
    });
    registration::register(&ctx).await?;
    tracing::info!(node = %ctx.config.node_name, "node registered");
    let heartbeat = tokio::spawn(lease::heartbeat(Arc::clone(&ctx), stop.clone()));
    let evictions = tokio::spawn(eviction::run(Arc::clone(&ctx), stop.clone()));
    let streams = tokio::spawn(streams::serve(Arc::clone(&ctx), stop.clone()));
    let pods = dispatch::run(Arc::clone(&ctx), stop.clone()).await;
    let _ = stop.wait_for(|s| *s).await;
    heartbeat.abort();
    evictions.abort();
    streams.abort();
    pods
}
