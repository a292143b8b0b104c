//! One pod's life on this node, in its own task (so pods start
//! concurrently). Level-triggered: each round takes the newest version of
//! the pod the watch delivered, compares it with the host, acts, and
//! pushes the status when it changed; it runs again on the next event or
//! after `pod_poll`.
//!
//! - new pod: adopted when all its containers exist on the host and were
//!   started (a daemon restart); finished in place when its sandbox is
//!   whole and the stored status shows every container made before (a
//!   restart cut short: those not started are started again); else
//!   started (anything half-made, a container created but never started
//!   included, is torn down first); a
//!   failed start is retried with back-off and shown as
//!   `CreateContainerError`;
//! - init containers run one at a time, in order, each to completion
//!   ([`super::init`]), then the app containers start;
//! - probes ([`super::probe`]) run on the running containers: readiness
//!   and startup results go to the status, a failed liveness or startup
//!   probe gets the container stopped (and the restart policy decides);
//! - a container that exited restarts by the restart policy with
//!   kubelet's back-off ([`super::restart`]) as a new instance on a fresh
//!   rootfs (its log goes on);
//! - `deletionTimestamp` set: SIGTERM, the grace period, SIGKILL,
//!   teardown, then the forced delete (precondition: the pod's UID) that
//!   removes it from the apiserver;
//! - gone from the apiserver: teardown;
//! - ordered evicted by the eviction manager: containers killed at once,
//!   the status made Failed/Evicted, teardown, and nothing started again
//!   ([`super::eviction`]); a new pod the node's pressure does not admit
//!   is reported the same way without being started.

use super::eviction::{admission, Eviction, EvictionWatch};
use super::init::{self, InitStep};
use super::probe::pod::PodProbes;
use super::restart::{restarts, Backoff};
use super::startlog::StartRecord;
use super::status::{self, ContainerHistory, Report};
use super::{blocking, NodeContext, NodeError};
use crate::agent::{ContainerReport, PodHost};
use crate::sys::clock::monotonic_micros;
use noderun_client::DeleteOptions;
use noderun_core::defaults::DEFAULT_TERMINATION_GRACE_SECONDS;
use noderun_core::proto::{ErrorCode, Preconditions};
use noderun_core::{
    ContainerState, ContainerStateWaiting, ContainerStatus, Kind, Object, Pod, PodPhase, PodStatus,
    Time,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// What the dispatcher tells a worker.
#[derive(Debug, Clone)]
pub enum PodEvent {
    /// The newest version of the pod.
    Present(Box<Pod>),
    /// Deleted from the apiserver (or no longer bound here).
    Gone,
}

/// How long to wait before trying a failed teardown again.
const TEARDOWN_RETRY: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
struct Track {
    history: ContainerHistory,
    backoff: Backoff,
    restart_at: Option<Instant>,
    /// The current instance's exit was seen (and decided on).
    exit_seen: bool,
}

#[derive(Debug)]
struct Worker {
    ctx: Arc<NodeContext>,
    pod: Pod,
    started: bool,
    start_backoff: Backoff,
    start_retry_at: Option<Instant>,
    start_time: Option<Time>,
    /// Known once the pod is attached.
    pod_ip: Option<String>,
    containers: BTreeMap<String, Track>,
    /// The init containers' statuses once they all completed: reported
    /// from then on, and never acted on again (an adopted init container's
    /// exit code is not known to a new runner).
    init_done: Option<Vec<ContainerStatus>>,
    probes: PodProbes,
    /// The eviction order once carried out, or the refusal of a pod the
    /// node's pressure does not admit (the status it makes wins).
    evicted: Option<Eviction>,
    /// Admitted under the node's pressure (checked once, before the
    /// first start).
    admitted: bool,
    /// The evicted pod is reported and torn down: nothing more to do.
    evicted_done: bool,
    /// This start's record, logged once the Running status is stored.
    start_record: Option<StartRecord>,
}

/// Run pod `pod`'s worker until it is deleted and finalized, gone, or the
/// dispatcher stops (then the pod keeps running; the next start adopts it).
pub async fn run(ctx: Arc<NodeContext>, mut events: watch::Receiver<PodEvent>) {
    let mut worker: Option<Worker> = None;
    let mut eviction: Option<EvictionWatch> = None;
    loop {
        let event = events.borrow_and_update().clone();
        let w = match (event, worker.as_mut()) {
            (PodEvent::Gone, Some(w)) => {
                w.remove_from_host().await;
                return;
            }
            (PodEvent::Gone, None) => return,
            (PodEvent::Present(pod), Some(w)) => {
                // A late event must not undo a newer version we wrote.
                if pod.metadata.resource_version >= w.pod.metadata.resource_version {
                    w.pod = *pod;
                }
                w
            }
            (PodEvent::Present(pod), None) => {
                eviction = Some(EvictionWatch::register(&ctx, &pod.metadata.uid));
                worker.insert(Worker::new(Arc::clone(&ctx), *pod))
            }
        };
        if w.pod.metadata.deletion_timestamp.is_some() {
            w.terminate(&mut events).await;
            return;
        }
        let ordered = eviction.as_ref().and_then(EvictionWatch::ordered);
        let result = match ordered.or_else(|| w.evicted.clone()) {
            Some(order) => w.evict(order).await,
            None => w.sync().await,
        };
        if let Err(e) = result {
            tracing::warn!(pod = %w.pod.metadata.uid, error = %e, "pod sync failed");
        }
        let wake = w.next_wakeup();
        let ordered = async {
            match eviction.as_mut() {
                Some(e) => e.changed().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = events.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep_until(wake) => {}
            _ = ordered => {}
        }
    }
}

impl Worker {
    fn new(ctx: Arc<NodeContext>, pod: Pod) -> Worker {
        // Restart counts survive a daemon restart through the stored status.
        let containers = pod
            .status
            .container_statuses
            .iter()
            .chain(&pod.status.init_container_statuses)
            .map(|s| {
                let track = Track {
                    history: ContainerHistory {
                        restart_count: s.restart_count,
                        last_state: s.last_state.clone(),
                        ..ContainerHistory::default()
                    },
                    ..Track::default()
                };
                (s.name.clone(), track)
            })
            .collect();
        Worker {
            start_time: pod.status.start_time,
            ctx,
            pod,
            started: false,
            start_backoff: Backoff::default(),
            start_retry_at: None,
            pod_ip: None,
            containers,
            init_done: None,
            probes: PodProbes::default(),
            evicted: None,
            admitted: false,
            evicted_done: false,
            start_record: Some(StartRecord::seen_now()),
        }
    }

    fn uid(&self) -> &str {
        &self.pod.metadata.uid
    }

    fn host(&self) -> &Arc<PodHost> {
        &self.ctx.host
    }

    fn next_wakeup(&self) -> Instant {
        let poll = Instant::now() + self.ctx.config.pod_poll;
        self.containers
            .values()
            .filter_map(|t| t.restart_at)
            .chain(self.start_retry_at)
            .chain(self.probes.next_wakeup())
            .fold(poll, Instant::min)
    }

    /// One round: start or adopt, restarts due, status.
    async fn sync(&mut self) -> Result<(), NodeError> {
        if !self.started && !self.ensure_started().await? {
            // Refused under node pressure: reported as evicted.
            return match self.evicted.clone() {
                Some(refused) => self.evict(refused).await,
                None => Ok(()),
            };
        }
        let mut observed = self.observe().await?;
        if self.started {
            let restarted = self.restart_due(&observed).await;
            if self.start_next(&observed).await || restarted {
                observed = self.observe().await?;
            }
            self.probe(&observed).await;
        }
        self.push_status(observed).await?;
        self.log_start_record();
        Ok(())
    }

    /// Log the start record once the stored status shows the pod Running
    /// (a pod adopted after a daemon restart has no start to record).
    fn log_start_record(&mut self) {
        if self.pod.status.phase != PodPhase::Running {
            return;
        }
        if let Some(record) = self.start_record.take().filter(|r| r.started_us != 0) {
            let meta = &self.pod.metadata;
            record.log(&meta.uid, &meta.namespace, &meta.name);
        }
    }

    /// The pod layer's view, with the init containers' statuses kept from
    /// when they all completed.
    async fn observe(&mut self) -> Result<PodStatus, NodeError> {
        let mut status = self.observe_host().await?;
        match &self.init_done {
            Some(done) => status.init_container_statuses = done.clone(),
            None => {
                let states: Vec<ContainerState> = status
                    .init_container_statuses
                    .iter()
                    .map(|s| s.state.clone())
                    .collect();
                if init::next_step(&states) == InitStep::Done {
                    self.init_done = Some(status.init_container_statuses.clone());
                }
            }
        }
        Ok(status)
    }

    /// The host's view. The pod IP is looked up in the IPAM state once,
    /// then remembered (it does not change while the pod lives).
    async fn observe_host(&mut self) -> Result<PodStatus, NodeError> {
        let pod = self.pod.clone();
        let doing = format!("reading pod {}", self.uid());
        let Some(pod_ip) = self.pod_ip.clone() else {
            let status = blocking(self.host(), doing, move |h| h.pod_status(&pod)).await?;
            if !status.pod_ip.is_empty() {
                self.pod_ip = Some(status.pod_ip.clone());
            }
            return Ok(status);
        };
        let qos_class = Some(pod.qos_class());
        let statuses = blocking(self.host(), doing, move |h| h.container_statuses(&pod)).await?;
        Ok(PodStatus {
            pod_ip,
            qos_class,
            init_container_statuses: statuses.init,
            container_statuses: statuses.app,
            ..PodStatus::default()
        })
    }

    /// Adopt the pod or start it. False when there is nothing to report
    /// (a finished pod whose containers are gone).
    async fn ensure_started(&mut self) -> Result<bool, NodeError> {
        if self.start_retry_at.is_some_and(|at| Instant::now() < at) {
            return Ok(true);
        }
        let pod = self.pod.clone();
        let uid = self.uid().to_string();
        // Only a pod started whole before can be finished in place (a new
        // pod's first look skips the network check).
        let was_whole = self.was_whole();
        let (reports, started, sandbox_up, mark) =
            blocking(self.host(), format!("looking for pod {uid}"), move |h| {
                let uid = &pod.metadata.uid;
                let reports = h.container_reports(&pod)?;
                let started: Vec<bool> = reports
                    .iter()
                    .map(|r| h.container_started(uid, r))
                    .collect();
                let whole = started.iter().all(|s| *s);
                let sandbox_up = was_whole && !whole && h.sandbox_up(uid);
                Ok((reports, started, sandbox_up, h.eviction_mark(uid)?))
            })
            .await?;
        let whole = !started.is_empty() && started.iter().all(|s| *s);
        let reports: Vec<ContainerReport> = reports;
        if let Some(message) = mark {
            // Evicted before a daemon restart that cut the eviction short:
            // finish it, never restart the stopped containers.
            tracing::warn!(pod = %uid, "finishing an eviction begun before a restart");
            self.evicted = Some(Eviction {
                message,
                grace: Duration::ZERO,
            });
            return Ok(false);
        }
        if whole {
            tracing::info!(pod = %uid, "adopted the pod's running containers");
            self.started = true;
            // Its app containers exist: its init containers completed.
            self.init_done = Some(self.pod.status.init_container_statuses.clone());
            return Ok(true);
        }
        if self.pod.status.phase.is_terminal() {
            // Finished before, and its containers are gone (a reboot):
            // never run it again.
            return Ok(false);
        }
        if sandbox_up {
            // A restart of some of its containers was cut short: keep
            // what runs, start those again (after removing what is left).
            let redo: Vec<String> = reports
                .iter()
                .zip(&started)
                .filter(|(_, started)| !**started)
                .map(|(r, _)| r.name.clone())
                .collect();
            tracing::info!(pod = %uid, containers = ?redo,
                "adopted the pod's running containers; starting the rest again");
            let now = Instant::now();
            for name in redo {
                let track = self.containers.entry(name).or_default();
                track.restart_at = Some(now);
                track.exit_seen = true;
            }
            self.started = true;
            self.init_done = Some(self.pod.status.init_container_statuses.clone());
            return Ok(true);
        }
        if !self.admitted {
            if let Some(message) = admission::refusal(&self.pod, *self.ctx.pressure.borrow()) {
                tracing::warn!(pod = %uid, %message, "pod refused under node pressure");
                self.evicted = Some(Eviction {
                    message,
                    grace: Duration::ZERO,
                });
                return Ok(false);
            }
            self.admitted = true;
        }
        let pod = self.pod.clone();
        let halfmade = reports.iter().any(|r| r.state.is_some()) || self.host_has(&uid);
        let start = blocking(self.host(), format!("starting pod {uid}"), move |h| {
            if halfmade {
                h.teardown_pod(&pod.metadata.uid, Duration::ZERO)?;
            }
            let begin_us = monotonic_micros();
            h.start_pod(&pod).map(|s| (begin_us, s))
        });
        let started = self.ctx.starts.run(start).await;
        match started {
            Ok((begin_us, s)) => {
                if let Some(record) = &mut self.start_record {
                    record.begin_us = begin_us;
                    record.started_us = monotonic_micros();
                    record.times = s.times;
                }
                tracing::info!(pod = %uid, name = %self.pod.metadata.name, ip = %s.ip,
                    total = ?s.times.total(), sandbox = ?s.times.sandbox, network = ?s.times.network,
                    rootfs = ?s.times.rootfs, create = ?s.times.create, start = ?s.times.start,
                    "pod started");
                self.started = true;
                self.start_retry_at = None;
                self.pod_ip = Some(s.ip.to_string());
                self.start_time.get_or_insert_with(Time::now);
                for t in self.containers.values_mut() {
                    t.history.waiting = None;
                }
            }
            Err(e) => {
                let delay = self
                    .start_backoff
                    .next_delay(Duration::ZERO)
                    .max(Duration::from_secs(1));
                tracing::warn!(pod = %uid, error = %e, retry_in = ?delay, "pod start failed");
                self.start_retry_at = Some(Instant::now() + delay);
                for c in &self.pod.spec.containers {
                    let track = self.containers.entry(c.name.clone()).or_default();
                    track.history.waiting = Some(ContainerStateWaiting {
                        reason: "CreateContainerError".into(),
                        message: e.to_string(),
                    });
                }
            }
        }
        Ok(true)
    }

    /// Whether the stored status shows every app container made (the pod
    /// was started whole before).
    fn was_whole(&self) -> bool {
        let stored = &self.pod.status.container_statuses;
        self.pod.spec.containers.iter().all(|c| {
            stored
                .iter()
                .any(|s| s.name == c.name && !s.container_id.is_empty())
        })
    }

    /// Whether something of the pod is on the host (a crash mid-start).
    fn host_has(&self, uid: &str) -> bool {
        self.host()
            .paths(uid)
            .is_ok_and(|p| p.bundles.exists() || p.sandbox.pins.iter().any(|(_, pin)| pin.exists()))
    }

    /// Decide on new exits and restart the containers whose back-off is
    /// over. True when a container was restarted.
    async fn restart_due(&mut self, observed: &PodStatus) -> bool {
        let now = Instant::now();
        let policy = self.pod.spec.restart_policy;
        let mut due = Vec::new();
        let init = observed.init_container_statuses.iter();
        let with_policy = init
            .map(|cs| (cs, init::init_policy(policy)))
            .chain(observed.container_statuses.iter().map(|cs| (cs, policy)));
        for (cs, policy) in with_policy {
            let track = self.containers.entry(cs.name.clone()).or_default();
            if let Some(t) = cs.state.terminated.as_ref().filter(|_| !track.exit_seen) {
                track.exit_seen = true;
                if restarts(policy, t.exit_code) {
                    schedule_restart(track, cs, &self.pod, now);
                }
            }
            // Also a container whose start failed (it exited, or it was
            // never made): it is tried again after its back-off.
            if track.restart_at.is_some_and(|at| at <= now) {
                due.push((cs.name.clone(), track.exit_seen));
            }
        }
        let mut restarted = false;
        for (name, restart) in due {
            restarted |= self.run_container(name, restart).await;
        }
        restarted
    }

    /// Run the probes due on the running containers; their results go to
    /// the containers' status, a failed liveness or startup probe gets
    /// its container stopped (SIGTERM, SIGKILL after the grace period).
    async fn probe(&mut self, observed: &PodStatus) {
        let pod_ip = self.pod_ip.as_deref().and_then(|ip| ip.parse().ok());
        let (host, grace) = (Arc::clone(self.host()), self.grace());
        let round = self
            .probes
            .round(&host, &self.pod, observed, pod_ip, grace, Instant::now())
            .await;
        for (name, track) in &mut self.containers {
            track.history.probed = round.results.get(name).copied();
        }
        for (name, probed) in round.results {
            self.containers.entry(name).or_default().history.probed = Some(probed);
        }
        for (name, signal) in round.signals {
            let uid = self.uid().to_string();
            let doing = format!("signalling container {name} of pod {uid}");
            let sent = blocking(self.host(), doing, move |h| {
                h.signal_container(&uid, &name, signal)
            })
            .await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, "stopping a container its probe failed");
            }
        }
    }

    /// Start the containers whose turn it is and that were never made:
    /// the next init container, or once all completed, the app
    /// containers. True when one was started.
    async fn start_next(&mut self, observed: &PodStatus) -> bool {
        let init_states: Vec<ContainerState> = observed
            .init_container_statuses
            .iter()
            .map(|s| s.state.clone())
            .collect();
        let never_made = |statuses: &[ContainerStatus]| -> Vec<String> {
            statuses
                .iter()
                .filter(|s| s.container_id.is_empty())
                .map(|s| s.name.clone())
                .collect()
        };
        let next = match init::next_step(&init_states) {
            InitStep::Start(i) => never_made(&observed.init_container_statuses[i..=i]),
            InitStep::Wait(_) => Vec::new(),
            InitStep::Done => never_made(&observed.container_statuses),
        };
        let mut started = false;
        for name in next {
            // One whose start failed waits out its back-off in restart_due.
            let pending = self
                .containers
                .get(&name)
                .is_some_and(|t| t.restart_at.is_some());
            if !pending {
                started |= self.run_container(name, false).await;
            }
        }
        started
    }

    /// Start a new instance of container `name` (a restart when `restart`)
    /// on a fresh rootfs; a failed start is tried again after back-off.
    async fn run_container(&mut self, name: String, restart: bool) -> bool {
        let pod = self.pod.clone();
        let doing = format!("starting container {name} of pod {}", self.uid());
        let container = name.clone();
        let result = blocking(self.host(), doing, move |h| {
            h.run_container(&pod, &container)
        })
        .await;
        self.probes.forget(&name);
        let track = self.containers.entry(name.clone()).or_default();
        match result {
            Ok(_) => {
                if restart {
                    track.history.restart_count += 1;
                }
                track.history.will_restart = false;
                track.history.waiting = None;
                track.restart_at = None;
                track.exit_seen = false;
                true
            }
            Err(e) => {
                let delay = track
                    .backoff
                    .next_delay(Duration::ZERO)
                    .max(Duration::from_secs(1));
                tracing::warn!(pod = %self.pod.metadata.uid, container = %name, error = %e,
                    retry_in = ?delay, "container start failed");
                track.restart_at = Some(Instant::now() + delay);
                track.history.waiting = Some(ContainerStateWaiting {
                    reason: "CreateContainerError".into(),
                    message: e.to_string(),
                });
                false
            }
        }
    }

    /// Push the status when it differs from the stored one (retrying a
    /// lost compare-and-swap on a fresh read).
    async fn push_status(&mut self, observed: PodStatus) -> Result<(), NodeError> {
        let history: BTreeMap<String, ContainerHistory> = self
            .containers
            .iter()
            .map(|(k, t)| (k.clone(), t.history.clone()))
            .collect();
        let host_ip = self.ctx.config.node_ip.to_string();
        for _ in 0..3 {
            let now = Time::now();
            let mut status = status::pod_status(Report {
                pod: &self.pod,
                observed: observed.clone(),
                history: &history,
                host_ip: &host_ip,
                start_time: self.start_time,
                now,
            });
            if let Some(eviction) = &self.evicted {
                eviction.apply(&mut status, now);
            }
            if status == self.pod.status {
                return Ok(());
            }
            let mut next = self.pod.clone();
            next.status = status;
            let client = self.ctx.api.client().await;
            let (ns, name) = (&self.pod.metadata.namespace, &self.pod.metadata.name);
            match client.update_status(Object::Pod(next)).await {
                Ok(Object::Pod(stored)) => {
                    self.pod = stored;
                    return Ok(());
                }
                Ok(_) => unreachable!("the apiserver answered a pod write with another kind"),
                Err(e) if e.code() == Some(ErrorCode::Conflict) => {
                    match client.get(Kind::Pod, ns, name).await {
                        Ok(Object::Pod(fresh)) if fresh.metadata.uid == self.pod.metadata.uid => {
                            self.pod = fresh;
                        }
                        // Replaced or gone: the watch will say.
                        _ => return Ok(()),
                    }
                }
                // Gone meanwhile: the watch will say.
                Err(e) if e.code() == Some(ErrorCode::NotFound) => return Ok(()),
                Err(e) => {
                    self.ctx.api.recover(&e).await;
                    return Err(NodeError::api(format!(
                        "updating the status of pod {ns}/{name}"
                    ))(e));
                }
            }
        }
        Ok(())
    }

    /// The grace period: the deletion's, else the pod's own, else 30 s.
    fn grace(&self) -> Duration {
        let seconds = self
            .pod
            .metadata
            .deletion_grace_period_seconds
            .or(self.pod.spec.termination_grace_period_seconds)
            .unwrap_or(DEFAULT_TERMINATION_GRACE_SECONDS);
        Duration::from_secs(seconds.max(0) as u64)
    }

    /// Evict the pod: kill its containers at once, report it Failed with
    /// reason Evicted, remove it from the host. Never started again.
    async fn evict(&mut self, order: Eviction) -> Result<(), NodeError> {
        if self.evicted_done {
            return Ok(());
        }
        let uid = self.uid().to_string();
        if self.evicted.is_none() {
            tracing::warn!(pod = %uid, message = %order.message, "evicting the pod");
            self.evicted = Some(order);
        }
        // Killed at once, it is looked at before the kill: what ran then
        // is reported killed (exit 137), even where the runner could not
        // read the exit code (a container adopted after a daemon restart).
        // Stopped gracefully, its exits are read after the stop.
        let (grace, message) = match &self.evicted {
            Some(e) => (e.grace, e.message.clone()),
            None => (Duration::ZERO, String::new()),
        };
        let before = self.observe().await?;
        let id = uid.clone();
        let doing = format!("stopping the containers of evicted pod {uid}");
        blocking(self.host(), doing, move |h| {
            h.mark_evicted(&id, &message)?;
            h.kill_pod(&id, grace)
        })
        .await?;
        let observed = if grace.is_zero() {
            before
        } else {
            self.observe().await?
        };
        for t in self.containers.values_mut() {
            t.restart_at = None;
            t.history.will_restart = false;
            t.history.waiting = None;
        }
        self.start_retry_at = None;
        self.push_status(observed).await?;
        self.teardown(Duration::ZERO).await;
        self.evicted_done = true;
        Ok(())
    }

    /// Stop and remove everything of the pod, retrying until it worked.
    async fn remove_from_host(&self) {
        self.teardown(self.grace()).await
    }

    /// [`Worker::remove_from_host`] with a grace period of `grace`.
    async fn teardown(&self, grace: Duration) {
        let uid = self.uid().to_string();
        loop {
            let id = uid.clone();
            let done = blocking(self.host(), format!("tearing down pod {uid}"), move |h| {
                h.teardown_pod(&id, grace)
            })
            .await;
            match done {
                Ok(()) => {
                    tracing::info!(pod = %uid, "pod torn down");
                    return;
                }
                Err(e) => {
                    tracing::warn!(pod = %uid, error = %e, "teardown failed; retrying");
                    tokio::time::sleep(TEARDOWN_RETRY).await;
                }
            }
        }
    }

    /// Graceful deletion: stop, tear down, then finalize in the apiserver.
    async fn terminate(&mut self, events: &mut watch::Receiver<PodEvent>) {
        tracing::info!(pod = %self.uid(), grace = ?self.grace(), "pod deleted; stopping it");
        self.remove_from_host().await;
        let (ns, name) = (&self.pod.metadata.namespace, &self.pod.metadata.name);
        let options = DeleteOptions {
            preconditions: Preconditions {
                uid: Some(self.pod.metadata.uid.clone()),
                resource_version: None,
            },
            force: true,
            grace_period_seconds: None,
        };
        loop {
            let client = self.ctx.api.client().await;
            match client.delete(Kind::Pod, ns, name, &options).await {
                Ok(_) => return,
                // Removed already, or replaced by a new pod of that name.
                Err(e) if matches!(e.code(), Some(ErrorCode::NotFound | ErrorCode::Conflict)) => {
                    return
                }
                Err(e) => {
                    tracing::warn!(pod = %self.pod.metadata.uid, error = %e, "finalizing the delete failed; retrying");
                    self.ctx.api.recover(&e).await;
                    tokio::select! {
                        _ = tokio::time::sleep(TEARDOWN_RETRY) => {}
                        changed = events.changed() => {
                            if changed.is_err() || matches!(*events.borrow(), PodEvent::Gone) {
                                return;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Container `cs` of `pod` exited and its restart policy restarts it:
/// the exit becomes the next instance's lastState and the restart is due
/// after kubelet's back-off (shown as CrashLoopBackOff while it waits).
fn schedule_restart(track: &mut Track, cs: &ContainerStatus, pod: &Pod, now: Instant) {
    let Some(t) = &cs.state.terminated else {
        return;
    };
    track.history.last_state = cs.state.clone();
    let ran = match (t.started_at, t.finished_at) {
        (Some(s), Some(f)) => Duration::from_secs(f.secs_since(&s).max(0) as u64),
        _ => Duration::ZERO,
    };
    let delay = track.backoff.next_delay(ran);
    track.restart_at = Some(now + delay);
    track.history.will_restart = true;
    if !delay.is_zero() {
        track.history.waiting = Some(ContainerStateWaiting {
            reason: "CrashLoopBackOff".into(),
            message: format!(
                "back-off {}s restarting failed container={} pod={}",
                delay.as_secs(),
                cs.name,
                pod.metadata.name
            ),
        });
    }
    tracing::info!(pod = %pod.metadata.uid, container = %cs.name, exit_code = t.exit_code,
        reason = %t.reason, restart_in = ?delay, "container exited");
}
