//! The controllers: clients of the apiserver like any other, with their
//! own identity (`system:controllers`), that keep the cluster as its
//! objects say it should be.
//!
//! - [`replicaset`]: creates and deletes pods to match `spec.replicas`,
//!   adopts matching orphans, releases pods that stop matching, reports
//!   the status.
//! - [`node_lifecycle`]: a node whose Lease is not renewed within the grace
//!   period gets `Ready=Unknown` and the `node.kubernetes.io/unreachable`
//!   NoExecute taint (`not-ready` for `Ready=False`); both go when the
//!   Lease is renewed again.
//! - [`taint_eviction`]: pods on a node with a NoExecute taint are deleted
//!   once their toleration of it runs out.
//! - [`gc`]: pods whose owners are all gone are deleted (the background
//!   cascade of a ReplicaSet's delete).
//!
//! Each is level-triggered: it keeps caches of what it watches
//! ([`reflector`]), relists when a watch expires, and reconciles every key
//! a change concerns from the caches alone, so a restart loses nothing
//! that matters. Each runs in its own task, restarted after a pause if its
//! connection fails. What they do not own: scheduling (the scheduler) and
//! pod status (the nodes).

pub mod gc;
pub mod node_lifecycle;
mod pod_delete;
mod reconcile_loop;
pub mod reflector;
pub mod replicaset;
pub mod taint_eviction;

use crate::client::{Client, ClientError, Endpoint};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Set to `true` (or dropped) to stop the controllers.
pub type Shutdown = tokio::sync::watch::Receiver<bool>;

/// How the controllers behave; the defaults are Kubernetes'.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// A node whose Lease is not renewed for this long is unreachable.
    pub node_monitor_grace_period: Duration,
    /// How long a pod stays on an unreachable or not-ready node when it
    /// has no toleration of its own for that taint.
    pub default_toleration_seconds: i64,
    /// Every key is reconciled this often even without a change.
    pub resync_period: Duration,
    /// A failed reconcile is tried again after this long.
    pub retry_delay: Duration,
    /// Most pods one ReplicaSet reconcile creates or deletes.
    pub burst_replicas: usize,
    /// Counts of what the controllers did.
    pub counters: Arc<Counters>,
}

impl Default for ControllerOptions {
    fn default() -> ControllerOptions {
        ControllerOptions {
            node_monitor_grace_period: Duration::from_secs(40),
            default_toleration_seconds: 300,
            resync_period: Duration::from_secs(300),
            retry_delay: Duration::from_secs(1),
            burst_replicas: 500,
            counters: Arc::default(),
        }
    }
}

/// What the controllers have done since they started.
#[derive(Debug, Default)]
pub struct Counters {
    relists: AtomicU64,
    restarts: AtomicU64,
}

impl Counters {
    /// Caches refilled from a fresh list after their watch expired.
    pub fn relists(&self) -> u64 {
        self.relists.load(Ordering::Relaxed)
    }

    /// Controllers started again after their connection failed.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    fn count_relist(&self) {
        self.relists.fetch_add(1, Ordering::Relaxed);
    }
}

/// Where the controllers reach the apiserver, and as whom.
#[derive(Clone)]
pub struct Connector {
    pub endpoint: Endpoint,
    pub token: String,
}

impl fmt::Debug for Connector {
    /// Never prints the token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl Connector {
    /// A new connection; `purpose` names it in the apiserver's log.
    pub async fn connect(&self, purpose: &str) -> Result<Client, ControllerError> {
        Client::connect(
            &self.endpoint,
            &self.token,
            &format!("controllers/{purpose}"),
        )
        .await
        .map_err(|source| ControllerError::Connect {
            endpoint: self.endpoint.to_string(),
            source,
        })
    }
}

/// Why a controller stopped (it is then started again).
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("connecting to the apiserver at {endpoint}")]
    Connect {
        endpoint: String,
        #[source]
        source: ClientError,
    },
    #[error("listing and watching {plural} (does the token belong to system:controllers?)")]
    Sync {
        plural: &'static str,
        #[source]
        source: ClientError,
    },
    #[error("the connection to the apiserver closed")]
    Closed,
}

/// The controllers this module runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    ReplicaSet,
    NodeLifecycle,
    TaintEviction,
    GarbageCollector,
}

impl Which {
    pub const ALL: [Which; 4] = [
        Which::ReplicaSet,
        Which::NodeLifecycle,
        Which::TaintEviction,
        Which::GarbageCollector,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Which::ReplicaSet => replicaset::NAME,
            Which::NodeLifecycle => node_lifecycle::NAME,
            Which::TaintEviction => taint_eviction::NAME,
            Which::GarbageCollector => gc::NAME,
        }
    }

    async fn run(
        self,
        connector: &Connector,
        options: &ControllerOptions,
        shutdown: Shutdown,
    ) -> Result<(), ControllerError> {
        match self {
            Which::ReplicaSet => replicaset::run(connector, options, shutdown).await,
            Which::NodeLifecycle => node_lifecycle::run(connector, options, shutdown).await,
            Which::TaintEviction => taint_eviction::run(connector, options, shutdown).await,
            Which::GarbageCollector => gc::run(connector, options, shutdown).await,
        }
    }
}

/// Run every controller until `shutdown`.
pub async fn run(connector: Connector, options: ControllerOptions, shutdown: Shutdown) {
    let mut tasks = JoinSet::new();
    for which in Which::ALL {
        let (connector, options, shutdown) = (connector.clone(), options.clone(), shutdown.clone());
        tasks.spawn(async move { supervise(which, &connector, &options, shutdown).await });
    }
    while tasks.join_next().await.is_some() {}
    tracing::info!("controllers stopped");
}

/// Run one controller, starting it again after a growing pause whenever
/// it fails, until `shutdown`.
async fn supervise(
    which: Which,
    connector: &Connector,
    options: &ControllerOptions,
    mut shutdown: Shutdown,
) {
    const MAX_PAUSE: Duration = Duration::from_secs(30);
    let mut pause = options.retry_delay;
    loop {
        if *shutdown.borrow() {
            return;
        }
        tracing::info!(controller = which.name(), "starting");
        let started = Instant::now();
        match which.run(connector, options, shutdown.clone()).await {
            Ok(()) => return,
            Err(e) => tracing::warn!(controller = which.name(), error = %e,
                pause_ms = pause.as_millis() as u64, "controller failed; starting it again"),
        }
        options.counters.restarts.fetch_add(1, Ordering::Relaxed);
        if started.elapsed() > MAX_PAUSE * 2 {
            pause = options.retry_delay;
        }
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => return,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// Connect and start a reflector of `kind` (in `namespace`, or all).
async fn reflect(
    connector: &Connector,
    kind: noderun_core::Kind,
    namespace: Option<&str>,
) -> Result<reflector::Reflector, ControllerError> {
    let client = connector.connect(kind.plural()).await?;
    reflector::Reflector::start(client, kind, namespace)
        .await
        .map_err(|source| ControllerError::Sync {
            plural: kind.plural(),
            source,
        })
}
