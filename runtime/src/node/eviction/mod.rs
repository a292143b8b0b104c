//! Node pressure eviction, as the kubelet's eviction manager does it.
//! Every `monitoring_interval` (10 s) the manager reads the signals
//! ([`signals`]), checks them against the hard thresholds
//! ([`thresholds`], `--eviction-hard`) and the soft ones ([`soft`],
//! `--eviction-soft`, which evict only once met for their grace period),
//! turns the node's MemoryPressure,
//! DiskPressure and PIDPressure conditions on or off ([`conditions`]; the
//! node status is sent at once when they change, and the node lifecycle
//! controller taints the node so no new pods come), and under pressure
//! evicts one pod per round, ranked by [`rank`] for the resource to
//! reclaim (memory first, then pids, then disk space and inodes).
//!
//! Evicting is the pod's worker's job, so only one task ever writes a
//! pod's status: the manager hands the worker an [`Eviction`] through
//! [`Evictions`]; the worker stops the containers (at once for a hard
//! threshold, with the pod's grace period for a soft one), reports the
//! pod Failed with reason
//! `Evicted` and kubelet's message, releases everything of it on the host
//! (netplug DEL, cgroups, snapshots) and from then on never starts or
//! restarts it. Its owner (a ReplicaSet) replaces it. The manager waits
//! for the pod to be reported Failed before it evicts another.
//!
//! A pod new to the node is refused under pressure as the kubelet refuses
//! it ([`admission`]): under memory pressure a BestEffort pod that does
//! not tolerate the memory-pressure taint, under disk or PID pressure any
//! pod. The worker reports it Failed/Evicted without starting it.
//!
//! Under disk pressure the kubelet first frees node-level space (unused
//! images, dead containers); noderun keeps no dead containers and does
//! not collect images yet, so it goes straight to evicting pods.

pub mod admission;
pub mod conditions;
pub mod rank;
pub mod signals;
pub mod soft;
pub mod thresholds;

use super::{blocking, registration, NodeContext, NodeError};
use conditions::{NodePressure, PressureMemory};
use noderun_client::ListOptions;
use noderun_core::defaults::DEFAULT_TERMINATION_GRACE_SECONDS;
use noderun_core::{
    ConditionStatus, ContainerState, ContainerStateTerminated, Kind, Object, Pod, PodPhase,
    PodStatus, Time,
};
use rank::{Candidate, ContainerUsage, Reclaim, Usage};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thresholds::{Observations, Signal, Threshold};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

/// The reason an evicted pod's status carries.
pub const REASON_EVICTED: &str = "Evicted";

/// The eviction manager's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EvictionConfig {
    /// `--eviction-hard`.
    pub hard: Vec<Threshold>,
    /// `--eviction-soft` with `--eviction-soft-grace-period`.
    pub soft: Vec<soft::SoftThreshold>,
    /// `--eviction-max-pod-grace-period`: caps the grace period of a pod
    /// evicted by a soft threshold (`None`: the pod's own).
    pub max_pod_grace: Option<Duration>,
    /// How often the signals are read (kubelet: 10 s).
    pub monitoring_interval: Duration,
    /// `--eviction-pressure-transition-period` (kubelet: 5 min).
    pub pressure_transition: Duration,
    /// The filesystem of nodefs and imagefs: the state dir.
    pub state_dir: PathBuf,
}

impl Default for EvictionConfig {
    fn default() -> Self {
        EvictionConfig {
            hard: thresholds::default_thresholds(),
            soft: Vec::new(),
            max_pod_grace: None,
            monitoring_interval: Duration::from_secs(10),
            pressure_transition: Duration::from_secs(300),
            state_dir: "/var/lib/noderun".into(),
        }
    }
}

impl EvictionConfig {
    /// The hard memory.available threshold for a node of `capacity`
    /// bytes (held back from allocatable, as the kubelet does).
    pub fn memory_reserve(&self, capacity: i64) -> i64 {
        self.hard
            .iter()
            .find(|t| t.signal == Signal::MemoryAvailable)
            .map_or(0, |t| t.min_available(capacity))
    }
}

/// An order to evict a pod, with the message its status will carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eviction {
    pub message: String,
    /// Between SIGTERM and SIGKILL: zero for a hard threshold (and a
    /// refused pod), the pod's grace period for a soft one.
    pub grace: Duration,
}

impl Eviction {
    /// Make `status` (as made from the killed containers) the evicted
    /// pod's: Failed, reason Evicted, the message, every container
    /// terminated and not ready.
    pub fn apply(&self, status: &mut PodStatus, now: Time) {
        status.phase = PodPhase::Failed;
        status.reason = REASON_EVICTED.into();
        status.message = self.message.clone();
        let containers = status
            .container_statuses
            .iter_mut()
            .chain(status.init_container_statuses.iter_mut());
        for c in containers {
            c.ready = false;
            c.started = Some(false);
            if c.state.terminated.is_some() {
                continue;
            }
            let terminated = if c.container_id.is_empty() {
                // Never made: as kubelet reports a container of a
                // finished pod that it cannot find.
                ContainerStateTerminated {
                    exit_code: 137,
                    reason: "ContainerStatusUnknown".into(),
                    message: "The container could not be located when the pod was terminated"
                        .into(),
                    finished_at: Some(now),
                    ..ContainerStateTerminated::default()
                }
            } else {
                // Killed before it was seen to exit.
                ContainerStateTerminated {
                    exit_code: 137,
                    signal: 9,
                    reason: "Error".into(),
                    started_at: c.state.running.as_ref().and_then(|r| r.started_at),
                    finished_at: Some(now),
                    container_id: c.container_id.clone(),
                    ..ContainerStateTerminated::default()
                }
            };
            c.state = ContainerState {
                terminated: Some(terminated),
                ..ContainerState::default()
            };
        }
        for cond in &mut status.conditions {
            use noderun_core::PodConditionType::{ContainersReady, Ready};
            if matches!(cond.type_, Ready | ContainersReady)
                && cond.status != ConditionStatus::False
            {
                cond.status = ConditionStatus::False;
                cond.reason = "PodFailed".into();
                cond.last_transition_time = Some(now);
            }
        }
    }
}

/// The workers that can be told to evict their pod, by pod UID.
#[derive(Debug, Default)]
pub struct Evictions {
    by_uid: Mutex<HashMap<String, watch::Sender<Option<Eviction>>>>,
}

impl Evictions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<Option<Eviction>>>> {
        // A panic while holding it leaves a map that is still whole.
        self.by_uid.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tell pod `uid`'s worker to evict it; false when it has no worker or
    /// was told already.
    pub fn order(&self, uid: &str, eviction: Eviction) -> bool {
        let map = self.lock();
        let Some(tx) = map.get(uid) else {
            return false;
        };
        tx.send_if_modified(|slot| {
            if slot.is_some() {
                return false;
            }
            *slot = Some(eviction);
            true
        })
    }

    /// Whether pod `uid` was ordered evicted.
    pub fn ordered(&self, uid: &str) -> bool {
        self.lock().get(uid).is_some_and(|tx| tx.borrow().is_some())
    }

    fn has_worker(&self, uid: &str) -> bool {
        self.lock().contains_key(uid)
    }
}

/// A worker's end: the order, once given. Unregisters on drop.
#[derive(Debug)]
pub struct EvictionWatch {
    ctx: Arc<NodeContext>,
    uid: String,
    rx: watch::Receiver<Option<Eviction>>,
}

impl EvictionWatch {
    pub fn register(ctx: &Arc<NodeContext>, uid: &str) -> EvictionWatch {
        let (tx, rx) = watch::channel(None);
        ctx.evictions.lock().insert(uid.to_owned(), tx);
        EvictionWatch {
            ctx: Arc::clone(ctx),
            uid: uid.to_owned(),
            rx,
        }
    }

    /// The order, if given.
    pub fn ordered(&self) -> Option<Eviction> {
        self.rx.borrow().clone()
    }

    /// Resolves when the order comes (never, once it came).
    pub async fn changed(&mut self) {
        if self.rx.borrow().is_some() || self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for EvictionWatch {
    fn drop(&mut self) {
        self.ctx.evictions.lock().remove(&self.uid);
    }
}

/// Read the signals, update the conditions and evict, every
/// `monitoring_interval`, until `stop`.
pub async fn run(ctx: Arc<NodeContext>, mut stop: watch::Receiver<bool>) {
    let config = ctx.config.eviction.clone();
    let mut tick = tokio::time::interval(config.monitoring_interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut memory = PressureMemory::default();
    let mut soft_memory = soft::SoftMemory::default();
    // A changed pressure whose node status could not be sent yet.
    let mut unsent = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let dir = config.state_dir.clone();
        let observed = match tokio::task::spawn_blocking(move || signals::observe(&dir)).await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "reading the eviction signals failed");
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the eviction signals failed");
                continue;
            }
        };
        let now = Instant::now().into_std();
        let met = thresholds::thresholds_met(&config.hard, &observed);
        let soft_round = soft_memory.observe(&config.soft, &observed, now);
        // A soft threshold sets its condition at once; it evicts only
        // once it has held for its grace period.
        let any_met: Vec<Threshold> = met.iter().chain(&soft_round.met).copied().collect();
        let pressure = memory.observe(&any_met, now, config.pressure_transition);
        unsent = update_conditions(&ctx, pressure, unsent).await;
        let to_evict = match to_reclaim(&met) {
            Some(hard) => Some((hard, false)),
            None => to_reclaim(&soft_round.due).map(|t| (t, true)),
        };
        if let Some((threshold, soft)) = to_evict {
            if let Err(e) = evict_one(&ctx, threshold, soft, &observed).await {
                tracing::warn!(error = %e, "eviction round failed");
            }
        }
    }
}

/// Publish the pressure and send the node's status when it changed (or
/// when the last change is still `unsent`); true while it is unsent (it
/// is tried again next round, and by the heartbeat).
async fn update_conditions(ctx: &NodeContext, pressure: NodePressure, unsent: bool) -> bool {
    let changed = ctx.pressure.send_if_modified(|p| {
        let changed = *p != pressure;
        *p = pressure;
        changed
    });
    if changed {
        tracing::info!(
            memory = pressure.memory,
            disk = pressure.disk,
            pid = pressure.pid,
            "node pressure changed"
        );
    }
    if !changed && !unsent {
        return false;
    }
    match registration::refresh(ctx).await {
        Ok(()) => false,
        Err(e) => {
            tracing::warn!(error = %e, "sending the node's pressure conditions failed");
            true
        }
    }
}

/// The met threshold evictions act on: memory first, then pids, then
/// disk space and inodes.
fn to_reclaim(met: &[Threshold]) -> Option<&Threshold> {
    [
        Signal::MemoryAvailable,
        Signal::PidAvailable,
        Signal::NodeFsAvailable,
        Signal::NodeFsInodesFree,
        Signal::ImageFsAvailable,
        Signal::ImageFsInodesFree,
    ]
    .iter()
    .find_map(|s| met.iter().find(|t| t.signal == *s))
}

/// Evict the first pod in the order of `threshold`'s resource, unless an
/// eviction is still under way: at once for a hard threshold, with the
/// pod's grace period (capped by `--eviction-max-pod-grace-period`) for a
/// `soft` one.
async fn evict_one(
    ctx: &Arc<NodeContext>,
    threshold: &Threshold,
    soft: bool,
    observed: &Observations,
) -> Result<(), NodeError> {
    let node = &ctx.config.node_name;
    let options = ListOptions {
        node_name: Some(node.clone()),
        ..ListOptions::default()
    };
    let client = ctx.api.client().await;
    let (items, _) = client
        .list(Kind::Pod, None, &options)
        .await
        .map_err(NodeError::api(format!("listing the pods bound to {node}")))?;
    let live: Vec<Pod> = items
        .into_iter()
        .filter_map(|o| match o {
            Object::Pod(p) => Some(p),
            _ => None,
        })
        .filter(|p| !p.status.phase.is_terminal() && !p.metadata.is_terminating())
        .filter(|p| ctx.evictions.has_worker(&p.metadata.uid))
        .collect();
    if let Some(p) = live.iter().find(|p| ctx.evictions.ordered(&p.metadata.uid)) {
        tracing::info!(pod = %p.metadata.uid, "waiting for the last eviction to finish");
        return Ok(());
    }
    let pods = live.clone();
    let resource = Reclaim::of(threshold.signal);
    let disk = matches!(resource, Reclaim::EphemeralStorage | Reclaim::Inodes);
    let mut candidates = blocking(&ctx.host, "reading the pods' usage".into(), move |h| {
        pods.iter()
            .map(|p| Ok(candidate(p, h.pod_usage(p, disk)?)))
            .collect::<Result<Vec<Candidate>, _>>()
    })
    .await?;
    rank::rank(&mut candidates, resource);
    let Some(victim) = candidates.first() else {
        tracing::warn!(threshold = %threshold, "node pressure, but no pod to evict");
        return Ok(());
    };
    let available = observed.get(&threshold.signal).map_or(0, |o| o.available);
    let message = rank::eviction_message(threshold, available, victim);
    let grace = if soft {
        let pod = live.iter().find(|p| p.metadata.uid == victim.uid);
        let own = pod.and_then(|p| p.spec.termination_grace_period_seconds);
        let cap = ctx.config.eviction.max_pod_grace;
        soft::pod_grace(own, DEFAULT_TERMINATION_GRACE_SECONDS, cap)
    } else {
        Duration::ZERO
    };
    tracing::warn!(pod = %victim.name, uid = %victim.uid, threshold = %threshold,
        grace = ?grace, "evicting pod: {message}");
    ctx.evictions
        .order(&victim.uid, Eviction { message, grace });
    Ok(())
}

fn candidate(pod: &Pod, usage: crate::agent::usage::PodUsage) -> Candidate {
    let to_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let of = |requests: &[(String, i64)], used: u64, containers: &[(String, u64)]| Usage {
        used: to_i64(used),
        request: requests.iter().map(|(_, r)| r).sum(),
        containers: containers
            .iter()
            .map(|(name, used)| ContainerUsage {
                request: requests
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or(0, |(_, r)| *r),
                name: name.clone(),
                used: to_i64(*used),
            })
            .collect(),
    };
    let memory = of(
        &rank::memory_requests(pod),
        usage.working_set,
        &usage.containers,
    );
    let (storage, inodes) = match &usage.disk {
        Some(d) => (
            of(&rank::storage_requests(pod), d.bytes, &d.containers),
            of(&[], d.inodes, &[]),
        ),
        None => Default::default(),
    };
    Candidate {
        uid: pod.metadata.uid.clone(),
        name: format!("{}/{}", pod.metadata.namespace, pod.metadata.name),
        memory,
        storage,
        inodes,
        processes: to_i64(usage.processes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use noderun_core::{ContainerStateRunning, ContainerStatus, PodCondition, PodConditionType};

    #[test]
    fn an_evicted_status_is_failed_with_everything_stopped() {
        let t0 = Time::from_unix(100, 0);
        let now = Time::from_unix(200, 0);
        let mut status = PodStatus {
            phase: PodPhase::Running,
            container_statuses: vec![
                ContainerStatus {
                    name: "a".into(),
                    ready: true,
                    started: Some(true),
                    container_id: "noderun://u_a".into(),
                    state: ContainerState {
                        running: Some(ContainerStateRunning {
                            started_at: Some(t0),
                        }),
                        ..ContainerState::default()
                    },
                    ..ContainerStatus::default()
                },
                ContainerStatus {
                    name: "b".into(),
                    state: ContainerState {
                        terminated: Some(ContainerStateTerminated {
                            exit_code: 137,
                            signal: 9,
                            reason: "Error".into(),
                            ..ContainerStateTerminated::default()
                        }),
                        ..ContainerState::default()
                    },
                    ..ContainerStatus::default()
                },
            ],
            conditions: vec![PodCondition {
                type_: PodConditionType::Ready,
                status: ConditionStatus::True,
                last_transition_time: Some(t0),
                ..PodCondition::default()
            }],
            ..PodStatus::default()
        };
        status.container_statuses.push(ContainerStatus {
            name: "never".into(),
            ..ContainerStatus::default()
        });
        let before_b = status.container_statuses[1].clone();
        let eviction = Eviction {
            message: "The node was low on resource: memory. ".into(),
            grace: Duration::ZERO,
        };
        eviction.apply(&mut status, now);
        assert_eq!(status.phase, PodPhase::Failed);
        assert_eq!(status.reason, "Evicted");
        assert_eq!(status.message, eviction.message);
        let a = &status.container_statuses[0];
        let t = a.state.terminated.as_ref().unwrap();
        assert_eq!(
            (t.exit_code, t.started_at, t.finished_at),
            (137, Some(t0), Some(now))
        );
        assert_eq!(t.container_id, "noderun://u_a");
        assert!(a.state.running.is_none() && !a.ready);
        // An exit already seen stays as it was.
        assert_eq!(status.container_statuses[1].state, before_b.state);
        let never = status.container_statuses[2]
            .state
            .terminated
            .as_ref()
            .unwrap();
        assert_eq!(
            (never.exit_code, never.reason.as_str()),
            (137, "ContainerStatusUnknown")
        );
        let ready = status.condition(PodConditionType::Ready).unwrap();
        assert_eq!(
            (
                ready.status,
                ready.reason.as_str(),
                ready.last_transition_time
            ),
            (ConditionStatus::False, "PodFailed", Some(now))
        );
    }

    #[test]
    fn the_memory_reserve_is_the_hard_threshold() {
        let mut config = EvictionConfig::default();
        assert_eq!(config.memory_reserve(1 << 30), 100 << 20);
        config.hard = thresholds::parse_thresholds("memory.available<10%").unwrap();
        assert_eq!(config.memory_reserve(1000 << 20), 100 << 20);
        config.hard.clear();
        assert_eq!(config.memory_reserve(1 << 30), 0);
    }

    #[test]
    fn memory_is_reclaimed_before_pids_and_pids_before_disk() {
        let met = thresholds::parse_thresholds(
            "imagefs.inodesFree<5%,nodefs.available<10%,pid.available<1k,memory.available<1Mi",
        )
        .unwrap();
        assert_eq!(to_reclaim(&met).unwrap().signal, Signal::MemoryAvailable);
        assert_eq!(to_reclaim(&met[..3]).unwrap().signal, Signal::PidAvailable);
        assert_eq!(
            to_reclaim(&met[..2]).unwrap().signal,
            Signal::NodeFsAvailable
        );
        assert_eq!(
            to_reclaim(&met[..1]).unwrap().signal,
            Signal::ImageFsInodesFree
        );
        assert_eq!(to_reclaim(&[]), None);
    }
}
