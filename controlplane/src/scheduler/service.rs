//! [`Service`]: the scheduler's loop and everything it owns (one task, no
//! locks). It takes in what the feeds and the binder report, and between
//! those schedules the pods the queue hands out: choose a node, account
//! the pod on it at once (the next pod sees it), start the bind and go on
//! without waiting, up to `binds_in_flight` binds at a time.

use super::binder::{pod_key, split_key, Binder, Outcome, WriteFailure};
use super::condition::{self, REASON_UNSCHEDULABLE};
use super::feed::FeedEvent;
use super::queue::SchedulingQueue;
use super::{Counters, SchedulerError, SchedulerOptions, Shutdown};
use noderun_core::sched::{ClusterCache, Scheduler};
use noderun_core::{ConditionStatus, Pod};
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Pods scheduled between two looks at the feeds and the outcomes.
const BATCH: usize = 64;
/// Feed events taken in at once.
const EVENTS_AT_ONCE: usize = 1024;

/// A pod whose bind is in flight (accounted in the cache on `node`).
#[derive(Debug)]
pub(super) struct InFlight {
    /// The pod as last seen, unbound.
    pub pod: Pod,
    pub node: String,
}

/// What the cache holds of a bound pod, to tell a change that matters to
/// it (another pod of the name, another node, new labels) from one that
/// does not (a status update).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BoundPod {
    pub uid: String,
    pub node: String,
    /// A hash of the labels (a copy would cost more to keep).
    labels: u64,
}

impl BoundPod {
    pub fn of(pod: &Pod) -> BoundPod {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        pod.metadata.labels.hash(&mut hasher);
        BoundPod {
            uid: pod.metadata.uid.clone(),
            node: pod.spec.node_name.clone(),
            labels: hasher.finish(),
        }
    }
}

/// The scheduler's state, owned by its loop.
#[derive(Debug)]
pub(super) struct Service {
    pub cache: ClusterCache,
    algorithm: Scheduler,
    pub queue: SchedulingQueue<String>,
    /// Unbound pods to schedule, as last seen: each is in the queue.
    pub pending: HashMap<String, Pod>,
    /// Pods being bound.
    pub binding: HashMap<String, InFlight>,
    /// Bound pods accounted in the cache.
    pub bound: HashMap<String, BoundPod>,
    /// Pods with a status write in flight.
    writing_status: HashSet<String>,
    binder: Binder,
    binds_in_flight: usize,
    pub counters: Arc<Counters>,
    /// Whether the first list of nodes / pods is in.
    pub synced: (bool, bool),
}

impl Service {
    pub fn new(options: &SchedulerOptions, binder: Binder) -> Service {
        let seed = options.seed.unwrap_or_else(clock_seed);
        Service {
            cache: ClusterCache::new(),
            algorithm: Scheduler::new(options.config.clone(), seed),
            queue: SchedulingQueue::new(options.backoff),
            pending: HashMap::new(),
            binding: HashMap::new(),
            bound: HashMap::new(),
            writing_status: HashSet::new(),
            binder,
            binds_in_flight: options.binds_in_flight.max(1),
            counters: Arc::clone(&options.counters),
            synced: (false, false),
        }
    }

    /// Run until `shutdown`, or until a feed fails.
    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<FeedEvent>,
        mut outcomes: mpsc::UnboundedReceiver<Outcome>,
        mut shutdown: Shutdown,
    ) -> Result<(), SchedulerError> {
        let mut batch = Vec::with_capacity(EVENTS_AT_ONCE);
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            let now = Instant::now();
            self.queue.flush(now);
            if self.can_schedule() {
                for _ in 0..BATCH {
                    if !self.can_schedule() {
                        break;
                    }
                    self.schedule_next(now);
                }
                self.take_ready(&mut events, &mut outcomes)?;
                // Let the binds just spawned, and the connections, run.
                tokio::task::yield_now().await;
                continue;
            }
            let wakeup = self.queue.next_wakeup();
            tokio::select! {
                stop = shutdown.wait_for(|stop| *stop) => {
                    drop(stop);
                    return Ok(());
                }
                n = events.recv_many(&mut batch, EVENTS_AT_ONCE) => {
                    if n == 0 {
                        return Err(SchedulerError::Closed);
                    }
                    for event in batch.drain(..) {
                        self.apply(event)?;
                    }
                }
                Some(outcome) = outcomes.recv() => self.outcome(outcome, Instant::now()),
                _ = sleep_until(wakeup) => {}
            }
        }
    }

    fn can_schedule(&mut self) -> bool {
        self.synced == (true, true)
            && self.binding.len() < self.binds_in_flight
            && self.queue.has_active()
    }

    /// Take in what the feeds and the binder have ready, without waiting.
    fn take_ready(
        &mut self,
        events: &mut mpsc::Receiver<FeedEvent>,
        outcomes: &mut mpsc::UnboundedReceiver<Outcome>,
    ) -> Result<(), SchedulerError> {
        let now = Instant::now();
        while let Ok(outcome) = outcomes.try_recv() {
            self.outcome(outcome, now);
        }
        loop {
            match events.try_recv() {
                Ok(event) => self.apply(event)?,
                Err(mpsc::error::TryRecvError::Empty) => return Ok(()),
                Err(mpsc::error::TryRecvError::Disconnected) => return Err(SchedulerError::Closed),
            }
        }
    }

    /// Try the next pod of the queue.
    pub(super) fn schedule_next(&mut self, now: Instant) {
        let Some(key) = self.queue.pop() else {
            return;
        };
        let Some(mut pod) = self.pending.remove(&key) else {
            return;
        };
        match self.algorithm.schedule(&mut self.cache, &pod) {
            Ok(placement) => {
                pod.spec.node_name = placement.node;
                self.cache.add_pod(&pod);
                let node = std::mem::take(&mut pod.spec.node_name);
                let rv = pod.metadata.resource_version;
                self.binder.bind(key.clone(), rv, node.clone());
                self.binding.insert(key, InFlight { pod, node });
            }
            Err(unschedulable) => {
                self.counters.count(&self.counters.unschedulable);
                let why = unschedulable.to_string();
                tracing::debug!(pod = %key, reason = %why, "unschedulable");
                self.queue.park_unschedulable(key.clone(), now);
                let next = condition::with_pod_scheduled(
                    &pod,
                    ConditionStatus::False,
                    REASON_UNSCHEDULABLE,
                    &why,
                );
                if let Some(next) = next {
                    self.write_status(&key, next);
                }
                self.pending.insert(key, pod);
            }
        }
    }

    fn write_status(&mut self, key: &str, pod: Pod) {
        if self.writing_status.insert(key.to_owned()) {
            self.counters.count(&self.counters.status_writes);
            self.binder.write_status(key.to_owned(), pod);
        }
    }

    /// A bind or status write has ended.
    pub(super) fn outcome(&mut self, outcome: Outcome, now: Instant) {
        match outcome {
            Outcome::Bind {
                key,
                node,
                result: Ok(pod),
            } => {
                self.counters.count(&self.counters.scheduled);
                tracing::trace!(pod = %key, node = %node, "bound");
                self.bind_seen(&key, &pod);
            }
            Outcome::Bind {
                key,
                node,
                result: Err(failure),
            } => self.bind_failed(key, &node, failure, now),
            Outcome::Status { key, result } => {
                self.writing_status.remove(&key);
                match result {
                    // Known at once, so that a retry before the watch
                    // brings it does not write it again.
                    Ok(written) => self.status_written(&key, *written),
                    Err(e) => {
                        tracing::debug!(pod = %key, error = ?e, "PodScheduled condition not written")
                    }
                }
            }
        }
    }

    fn status_written(&mut self, key: &str, written: Pod) {
        let rv = written.metadata.resource_version;
        if let Some(pending) = self.pending.get_mut(key) {
            let same = pending.metadata.uid == written.metadata.uid;
            if same && pending.metadata.resource_version < rv && written.spec.node_name.is_empty() {
                *pending = written;
            }
        }
    }

    /// Our bind of `pod` is known to have succeeded (its answer, or the
    /// watch, whichever came first): it is now a bound pod like any other.
    pub fn bind_seen(&mut self, key: &str, pod: &Pod) {
        let Some(in_flight) = self.binding.remove(key) else {
            return;
        };
        self.bound.insert(key.to_owned(), BoundPod::of(pod));
        if condition::was_refused(&in_flight.pod) {
            if let Some(next) = condition::with_pod_scheduled(pod, ConditionStatus::True, "", "") {
                self.write_status(key, next);
            }
        }
    }

    fn bind_failed(&mut self, key: String, node: &str, failure: WriteFailure, now: Instant) {
        match &failure {
            WriteFailure::Conflict(why) => {
                self.counters.count(&self.counters.bind_conflicts);
                tracing::debug!(pod = %key, node, reason = %why, "bind conflict; requeued");
            }
            WriteFailure::NotFound => {}
            WriteFailure::Other(e) => {
                self.counters.count(&self.counters.bind_errors);
                tracing::warn!(pod = %key, node, error = %e, "bind failed; requeued");
            }
        }
        // Gone from `binding`: the watch has seen it bound (elsewhere) or
        // deleted, and said so to the cache already.
        let Some(in_flight) = self.binding.remove(&key) else {
            return;
        };
        let (namespace, name) = split_key(&key);
        self.cache.remove_pod(namespace, name);
        self.queue.cluster_changed(now);
        if matches!(failure, WriteFailure::NotFound) {
            self.queue.forget(&key);
            return;
        }
        self.pending.insert(key.clone(), in_flight.pod);
        self.queue.retry_later(key, now);
    }

    /// Forget an unbound pod: deleted, terminating, or replaced.
    pub fn drop_pending(&mut self, key: &str) {
        self.pending.remove(key);
        self.queue.forget(&key.to_owned());
        if self.binding.remove(key).is_some() {
            let (namespace, name) = split_key(key);
            self.cache.remove_pod(namespace, name);
        }
    }

    /// Forget a bound pod (deleted or finished): its node has room again.
    pub fn drop_bound(&mut self, key: &str, now: Instant) {
        if self.bound.remove(key).is_some() {
            let (namespace, name) = split_key(key);
            self.cache.remove_pod(namespace, name);
            self.queue.cluster_changed(now);
        }
    }

    /// The key of `pod` (for the feeds' handlers).
    pub fn key(pod: &Pod) -> String {
        pod_key(pod)
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A tie-breaking seed that differs from run to run.
fn clock_seed() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    since.as_nanos() as u64 ^ u64::from(std::process::id())
}
