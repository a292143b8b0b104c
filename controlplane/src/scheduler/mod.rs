//! The scheduler service: a client of the apiserver like any other, with
//! its own identity (`system:scheduler`), that gives every pending pod a
//! node. The algorithm is `noderun_core::sched` (pure, no I/O); this module
//! is what feeds it and acts on its answers:
//!
//! - [`feed`]: nodes and pods, listed then watched, each over a connection
//!   of its own, relisted when a watch expires (level-triggered);
//! - `events`: bound pods and nodes go to the `ClusterCache`, unbound pods
//!   (not terminating) to the queue; deleted and finished pods leave;
//! - [`queue`]: which pod is tried next; backoff after a failed bind;
//!   unschedulable pods parked until the cluster changes (a node added or
//!   updated, a pod gone) or a period passes;
//! - `service`: the loop. Each pod placed is accounted in the cache at
//!   once and its bind (the binding subresource, compare-and-swap on the
//!   pod's resourceVersion) started without waiting, many in flight over
//!   several connections (`binder`). A failed bind forgets the pod's
//!   place and requeues it with backoff; a pod deleted meanwhile is
//!   dropped. A pod no node fits gets `PodScheduled=False`, reason
//!   `Unschedulable`, with the `0/5 nodes are available: ...` summary
//!   ([`condition`], written only when it changes).
//!
//! It does not own: pods' other status (the nodes), creating or deleting
//! pods (the controllers), preemption (not done).

mod binder;
pub mod condition;
mod events;
pub mod feed;
pub mod queue;
mod service;

use crate::client::{Client, ClientError};
pub use crate::controllers::{Connector, Shutdown};
use binder::Binder;
use feed::Feed;
use noderun_core::sched::SchedulerConfig;
use noderun_core::Kind;
pub use queue::Backoff;
use service::Service;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How the scheduler behaves.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// The algorithm's settings (percentageOfNodesToScore, weights).
    pub config: SchedulerConfig,
    /// Ties between equally good nodes are broken with a generator seeded
    /// with this; `None`: from the clock.
    pub seed: Option<u64>,
    /// Most binds awaiting their answer at once.
    pub binds_in_flight: usize,
    /// Connections the binds (and status writes) are spread over; the
    /// apiserver serves a bounded number of calls per connection at once.
    pub connections: usize,
    pub backoff: Backoff,
    /// After a failure (the apiserver gone), the pause before starting
    /// again.
    pub restart_delay: Duration,
    /// Counts of what the scheduler did.
    pub counters: Arc<Counters>,
}

impl Default for SchedulerOptions {
    fn default() -> SchedulerOptions {
        SchedulerOptions {
            config: SchedulerConfig::default(),
            seed: None,
            // Measured with scheduler_bench (10,000 pods, 5,000 nodes, two
            // cores): more connections or binds in flight only add
            // contention in the apiserver; 4 x 64 fills its per-connection
            // limit.
            binds_in_flight: 256,
            connections: 4,
            backoff: Backoff::default(),
            restart_delay: Duration::from_secs(1),
            counters: Arc::default(),
        }
    }
}

/// What the scheduler has done since it started.
#[derive(Debug, Default)]
pub struct Counters {
    scheduled: AtomicU64,
    bind_conflicts: AtomicU64,
    bind_errors: AtomicU64,
    unschedulable: AtomicU64,
    status_writes: AtomicU64,
    relists: AtomicU64,
    restarts: AtomicU64,
}

impl Counters {
    /// Pods bound.
    pub fn scheduled(&self) -> u64 {
        self.scheduled.load(Ordering::Relaxed)
    }

    /// Binds refused with Conflict (the pod changed, was bound or is
    /// being deleted); each such pod was requeued.
    pub fn bind_conflicts(&self) -> u64 {
        self.bind_conflicts.load(Ordering::Relaxed)
    }

    /// Binds that failed otherwise (requeued too).
    pub fn bind_errors(&self) -> u64 {
        self.bind_errors.load(Ordering::Relaxed)
    }

    /// Attempts that found no node for the pod.
    pub fn unschedulable(&self) -> u64 {
        self.unschedulable.load(Ordering::Relaxed)
    }

    /// PodScheduled conditions written.
    pub fn status_writes(&self) -> u64 {
        self.status_writes.load(Ordering::Relaxed)
    }

    /// Lists made again after a watch expired.
    pub fn relists(&self) -> u64 {
        self.relists.load(Ordering::Relaxed)
    }

    /// Starts after a failure.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    fn count(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn count_relist(&self) {
        self.count(&self.relists);
    }
}

/// Why the scheduler stopped (it is then started again).
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("connecting to the apiserver at {endpoint}")]
    Connect {
        endpoint: String,
        #[source]
        source: Box<ClientError>,
    },
    #[error("listing and watching {plural} (does the token belong to system:scheduler?)")]
    Watch {
        plural: &'static str,
        #[source]
        source: Box<ClientError>,
    },
    #[error("the scheduler's watches stopped")]
    Closed,
}

/// Run the scheduler until `shutdown`, starting it again after a pause
/// whenever it fails (the apiserver restarted, a connection broke).
pub async fn run(connector: Connector, options: SchedulerOptions, mut shutdown: Shutdown) {
    loop {
        if *shutdown.borrow() {
            break;
        }
        match run_once(&connector, &options, shutdown.clone()).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(error = %e, pause_ms = options.restart_delay.as_millis() as u64,
                    "scheduler failed; starting it again");
                options.counters.count(&options.counters.restarts);
            }
        }
        tokio::select! {
            _ = shutdown.wait_for(|stop| *stop) => break,
            _ = tokio::time::sleep(options.restart_delay) => {}
        }
    }
    tracing::info!("scheduler stopped");
}

/// Connect, list, watch and schedule until `shutdown` or a failure.
async fn run_once(
    connector: &Connector,
    options: &SchedulerOptions,
    shutdown: Shutdown,
) -> Result<(), SchedulerError> {
    let connect = |purpose: &'static str| async move {
        Client::connect(
            &connector.endpoint,
            &connector.token,
            &format!("scheduler/{purpose}"),
        )
        .await
        .map_err(|source| SchedulerError::Connect {
            endpoint: connector.endpoint.to_string(),
            source: Box::new(source),
        })
    };
    let mut writers = Vec::new();
    for _ in 0..options.connections.max(1) {
        writers.push(connect("binds").await?);
    }
    let (outcomes_tx, outcomes) = mpsc::unbounded_channel();
    let binder = Binder::new(writers, outcomes_tx);
    let (events_tx, events) = mpsc::channel(4096);
    let counters = &options.counters;
    let _nodes = Feed::start(
        connect("nodes").await?,
        Kind::Node,
        events_tx.clone(),
        Arc::clone(counters),
    );
    let _pods = Feed::start(
        connect("pods").await?,
        Kind::Pod,
        events_tx,
        Arc::clone(counters),
    );
    tracing::info!(endpoint = %connector.endpoint, "scheduler started");
    Service::new(options, binder)
        .run(events, outcomes, shutdown)
        .await
}

#[cfg(test)]
mod tests;
