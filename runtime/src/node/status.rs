//! The status a node reports for a pod: what the pod layer observes
//! (container states, pod IP, QoS class) combined with what only the
//! daemon knows (restart counts, the state before the last restart, a
//! container waiting out its back-off, a start that failed), the phase
//! that follows under the pod's restart policy, and the conditions.

use super::init::{self, InitStep};
use super::restart::restarts;
use noderun_core::{
    ConditionStatus, ContainerState, ContainerStateWaiting, ContainerStatus, Pod, PodCondition,
    PodConditionType, PodPhase, PodStatus, RestartPolicy, Time,
};
use std::collections::BTreeMap;

/// What the daemon remembers of one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerHistory {
    pub restart_count: i32,
    /// The state before the last restart.
    pub last_state: ContainerState,
    /// Shown instead of the observed state: `CrashLoopBackOff` while a
    /// restart waits, `CreateContainerError` after a failed start.
    pub waiting: Option<ContainerStateWaiting>,
    /// The container is terminated and will be started again.
    pub will_restart: bool,
    /// What the probes of the running instance say (`None`: it has
    /// none, or is not running).
    pub probed: Option<Probed>,
}

/// A running container's probe results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probed {
    /// The startup probe succeeded (or there is none).
    pub started: bool,
    /// Started, and the readiness probe passes (or there is none).
    pub ready: bool,
}

/// Everything a status is made of.
#[derive(Debug)]
pub struct Report<'a> {
    /// The pod as last read (its status keeps PodScheduled and the
    /// conditions' transition times).
    pub pod: &'a Pod,
    /// The pod layer's view ([`crate::agent::PodHost::pod_status`]).
    pub observed: PodStatus,
    pub history: &'a BTreeMap<String, ContainerHistory>,
    pub host_ip: &'a str,
    pub start_time: Option<Time>,
    pub now: Time,
}

/// How one container stands for the phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// Never started yet.
    Pending,
    Running,
    Restarting,
    Done {
        exit_code: i32,
    },
}

/// A terminated container stands as restarting whenever the pod's restart
/// policy restarts it, not only once the worker has decided so: a status
/// made from an observation taken just before a restart would otherwise
/// show a pod with restartPolicy Always as Failed.
fn standing(
    status: &ContainerStatus,
    history: &ContainerHistory,
    policy: RestartPolicy,
    terminating: bool,
) -> Standing {
    if let Some(t) = &status.state.terminated {
        if history.will_restart || (!terminating && restarts(policy, t.exit_code)) {
            Standing::Restarting
        } else {
            Standing::Done {
                exit_code: t.exit_code,
            }
        }
    } else if status.state.running.is_some() {
        Standing::Running
    } else if history.restart_count > 0 || history.will_restart {
        Standing::Restarting
    } else {
        Standing::Pending
    }
}

/// Succeeded or Failed once every container is done for good, Pending
/// while one has never started, Running otherwise.
fn phase(standings: &[Standing]) -> PodPhase {
    if standings.is_empty() {
        return PodPhase::Pending;
    }
    let exits: Vec<i32> = standings
        .iter()
        .filter_map(|s| match s {
            Standing::Done { exit_code } => Some(*exit_code),
            _ => None,
        })
        .collect();
    if exits.len() == standings.len() {
        if exits.iter().all(|c| *c == 0) {
            PodPhase::Succeeded
        } else {
            PodPhase::Failed
        }
    } else if standings.contains(&Standing::Pending) {
        PodPhase::Pending
    } else {
        PodPhase::Running
    }
}

fn condition(
    previous: &PodStatus,
    type_: PodConditionType,
    ok: bool,
    reason: &str,
    now: Time,
) -> PodCondition {
    let status = if ok {
        ConditionStatus::True
    } else {
        ConditionStatus::False
    };
    let since = previous
        .condition(type_)
        .filter(|c| c.status == status)
        .and_then(|c| c.last_transition_time)
        .unwrap_or(now);
    PodCondition {
        type_,
        status,
        reason: if ok { String::new() } else { reason.into() },
        message: String::new(),
        last_transition_time: Some(since),
    }
}

/// A container adopted after a daemon restart is seen running without
/// its start time (the new runner did not start it): keep the one
/// reported before, for the same container.
fn keep_start_time(mut status: ContainerStatus, previous: &PodStatus) -> ContainerStatus {
    let earlier = previous
        .container_statuses
        .iter()
        .chain(&previous.init_container_statuses)
        .find(|p| p.name == status.name && p.container_id == status.container_id)
        .and_then(|p| p.state.running.as_ref())
        .and_then(|r| r.started_at);
    if let Some(running) = status.state.running.as_mut() {
        if running.started_at.is_none() {
            running.started_at = earlier;
        }
    }
    status
}

/// A container's observed status with what the daemon remembers of it:
/// restart count, last state, and the waiting state it shows instead
/// (back-off, failed start).
fn with_history(
    mut status: ContainerStatus,
    h: &ContainerHistory,
    previous: &PodStatus,
) -> ContainerStatus {
    if let Some(waiting) = &h.waiting {
        status.state = ContainerState {
            waiting: Some(waiting.clone()),
            ..ContainerState::default()
        };
        status.ready = false;
        status.started = Some(false);
    }
    if let Some(p) = h.probed.filter(|_| status.state.running.is_some()) {
        status.ready = status.ready && p.ready;
        status.started = Some(p.started);
    }
    status.restart_count = h.restart_count;
    status.last_state = h.last_state.clone();
    keep_start_time(status, previous)
}

/// How far the init containers are, for the phase and the Initialized
/// condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Initialization {
    Done,
    Running,
    /// An init container failed and will not run again.
    Failed,
}

fn initialization(
    statuses: &[ContainerStatus],
    history: &BTreeMap<String, ContainerHistory>,
    policy: RestartPolicy,
    terminating: bool,
) -> Initialization {
    let states: Vec<ContainerState> = statuses.iter().map(|s| s.state.clone()).collect();
    match init::next_step(&states) {
        InitStep::Done => Initialization::Done,
        InitStep::Start(_) => Initialization::Running,
        InitStep::Wait(i) => {
            let s = &statuses[i];
            let h = history.get(&s.name).cloned().unwrap_or_default();
            match standing(s, &h, init::init_policy(policy), terminating) {
                Standing::Done { .. } => Initialization::Failed,
                _ => Initialization::Running,
            }
        }
    }
}

/// The pod's status as this node reports it.
pub fn pod_status(report: Report<'_>) -> PodStatus {
    let Report {
        pod,
        observed,
        history,
        host_ip,
        start_time,
        now,
    } = report;
    let none = ContainerHistory::default();
    let policy = pod.spec.restart_policy;
    let terminating = pod.metadata.is_terminating();
    let init = initialization(
        &observed.init_container_statuses,
        history,
        policy,
        terminating,
    );
    let mut standings = Vec::new();
    let statuses: Vec<ContainerStatus> = observed
        .container_statuses
        .into_iter()
        .map(|status| {
            let h = history.get(&status.name).unwrap_or(&none);
            standings.push(standing(&status, h, policy, terminating));
            with_history(status, h, &pod.status)
        })
        .collect();
    let init_statuses: Vec<ContainerStatus> = observed
        .init_container_statuses
        .into_iter()
        .map(|status| {
            let h = history.get(&status.name).unwrap_or(&none);
            with_history(status, h, &pod.status)
        })
        .collect();
    let phase = match init {
        Initialization::Done => phase(&standings),
        Initialization::Running => PodPhase::Pending,
        Initialization::Failed => PodPhase::Failed,
    };
    let all_ready = !statuses.is_empty() && statuses.iter().all(|s| s.ready);
    let previous = &pod.status;
    let scheduled = previous
        .condition(PodConditionType::PodScheduled)
        .cloned()
        .unwrap_or(PodCondition {
            type_: PodConditionType::PodScheduled,
            status: ConditionStatus::True,
            last_transition_time: Some(now),
            ..PodCondition::default()
        });
    let conditions = vec![
        condition(
            previous,
            PodConditionType::Initialized,
            init == Initialization::Done,
            "ContainersNotInitialized",
            now,
        ),
        condition(
            previous,
            PodConditionType::ContainersReady,
            all_ready,
            "ContainersNotReady",
            now,
        ),
        condition(
            previous,
            PodConditionType::Ready,
            all_ready,
            "ContainersNotReady",
            now,
        ),
        scheduled,
    ];
    PodStatus {
        phase,
        conditions,
        reason: String::new(),
        message: String::new(),
        host_ip: host_ip.into(),
        pod_ip: observed.pod_ip,
        start_time,
        init_container_statuses: init_statuses,
        container_statuses: statuses,
        qos_class: observed.qos_class,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use noderun_core::{ContainerStateRunning, ContainerStateTerminated};

    fn running() -> ContainerStatus {
        ContainerStatus {
            name: "c".into(),
            ready: true,
            started: Some(true),
            state: ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(Time::from_unix(100, 0)),
                }),
                ..ContainerState::default()
            },
            ..ContainerStatus::default()
        }
    }

    fn exited(code: i32) -> ContainerStatus {
        ContainerStatus {
            name: "c".into(),
            state: ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: code,
                    reason: if code == 0 { "Completed" } else { "Error" }.into(),
                    ..ContainerStateTerminated::default()
                }),
                ..ContainerState::default()
            },
            ..ContainerStatus::default()
        }
    }

    fn report_of(
        pod: &Pod,
        statuses: Vec<ContainerStatus>,
        history: &BTreeMap<String, ContainerHistory>,
    ) -> PodStatus {
        pod_status(Report {
            pod,
            observed: PodStatus {
                pod_ip: "10.88.0.2".into(),
                container_statuses: statuses,
                ..PodStatus::default()
            },
            history,
            host_ip: "192.168.1.5",
            start_time: Some(Time::from_unix(99, 0)),
            now: Time::from_unix(200, 0),
        })
    }

    #[test]
    fn running_pod_is_ready() {
        let pod = Pod::default();
        let s = report_of(&pod, vec![running()], &BTreeMap::new());
        assert_eq!(s.phase, PodPhase::Running);
        assert_eq!(
            (s.pod_ip.as_str(), s.host_ip.as_str()),
            ("10.88.0.2", "192.168.1.5")
        );
        for t in [
            PodConditionType::Initialized,
            PodConditionType::ContainersReady,
            PodConditionType::Ready,
            PodConditionType::PodScheduled,
        ] {
            assert_eq!(
                s.condition(t).unwrap().status,
                ConditionStatus::True,
                "{t:?}"
            );
        }
        assert_eq!(s.start_time, Some(Time::from_unix(99, 0)));
    }

    #[test]
    fn transition_times_are_kept_while_unchanged() {
        let mut pod = Pod::default();
        pod.status = report_of(&pod, vec![running()], &BTreeMap::new());
        let later = pod_status(Report {
            pod: &pod,
            observed: PodStatus {
                container_statuses: vec![running()],
                ..PodStatus::default()
            },
            history: &BTreeMap::new(),
            host_ip: "h",
            start_time: None,
            now: Time::from_unix(900, 0),
        });
        let ready = later.condition(PodConditionType::Ready).unwrap();
        assert_eq!(ready.last_transition_time, Some(Time::from_unix(200, 0)));
    }

    #[test]
    fn an_adopted_container_keeps_its_start_time() {
        let mut pod = Pod::default();
        pod.status = report_of(&pod, vec![running()], &BTreeMap::new());
        let mut adopted = running();
        adopted.state.running = Some(ContainerStateRunning { started_at: None });
        let s = report_of(&pod, vec![adopted], &BTreeMap::new());
        let started = s.container_statuses[0].state.running.as_ref().unwrap();
        assert_eq!(started.started_at, Some(Time::from_unix(100, 0)));
    }

    #[test]
    fn phases_follow_exits_and_restarts() {
        let mut never = Pod::default();
        never.spec.restart_policy = RestartPolicy::Never;
        let none = BTreeMap::new();
        assert_eq!(
            report_of(&never, vec![exited(0)], &none).phase,
            PodPhase::Succeeded
        );
        assert_eq!(
            report_of(&never, vec![exited(2)], &none).phase,
            PodPhase::Failed
        );
        // OnFailure: a clean exit is final, a failed one restarts.
        let mut on_failure = Pod::default();
        on_failure.spec.restart_policy = RestartPolicy::OnFailure;
        assert_eq!(
            report_of(&on_failure, vec![exited(0)], &none).phase,
            PodPhase::Succeeded
        );
        assert_eq!(
            report_of(&on_failure, vec![exited(2)], &none).phase,
            PodPhase::Running
        );
        // Always (the default): an exit seen before the worker has decided
        // on the restart is still Running, never Failed.
        let pod = Pod::default();
        assert_eq!(
            report_of(&pod, vec![exited(2)], &none).phase,
            PodPhase::Running
        );
        // A pod being deleted does not restart: its exits are final.
        let mut deleting = Pod::default();
        deleting.metadata.deletion_timestamp = Some(Time::from_unix(1, 0));
        assert_eq!(
            report_of(&deleting, vec![exited(2)], &none).phase,
            PodPhase::Failed
        );
        let never_started = ContainerStatus {
            name: "c".into(),
            state: ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: "ContainerCreating".into(),
                    message: String::new(),
                }),
                ..ContainerState::default()
            },
            ..ContainerStatus::default()
        };
        let s = report_of(&pod, vec![never_started], &none);
        assert_eq!(s.phase, PodPhase::Pending);
        assert_eq!(
            s.condition(PodConditionType::Ready).unwrap().reason,
            "ContainersNotReady"
        );
        // A crashed container waiting out its back-off: Running, not ready,
        // CrashLoopBackOff shown with the last exit.
        let backing_off = ContainerHistory {
            restart_count: 3,
            last_state: exited(1).state,
            waiting: Some(ContainerStateWaiting {
                reason: "CrashLoopBackOff".into(),
                message: "back-off 40s".into(),
            }),
            will_restart: true,
            probed: None,
        };
        let history = BTreeMap::from([("c".to_string(), backing_off)]);
        let s = report_of(&pod, vec![exited(1)], &history);
        assert_eq!(s.phase, PodPhase::Running);
        let c = &s.container_statuses[0];
        assert_eq!(c.restart_count, 3);
        assert_eq!(c.state.waiting.as_ref().unwrap().reason, "CrashLoopBackOff");
        assert_eq!(c.last_state.terminated.as_ref().unwrap().exit_code, 1);
        assert!(!c.ready);
        assert_eq!(
            s.condition(PodConditionType::ContainersReady)
                .unwrap()
                .status,
            ConditionStatus::False
        );
    }

    #[test]
    fn init_containers_hold_the_pod_pending_or_fail_it() {
        let named = |name: &str, mut s: ContainerStatus| {
            s.name = name.into();
            s
        };
        let waiting = |name: &str| ContainerStatus {
            name: name.into(),
            state: ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: "PodInitializing".into(),
                    message: String::new(),
                }),
                ..ContainerState::default()
            },
            ..ContainerStatus::default()
        };
        let status = |pod: &Pod, init: Vec<ContainerStatus>, app: Vec<ContainerStatus>| {
            pod_status(Report {
                pod,
                observed: PodStatus {
                    init_container_statuses: init,
                    container_statuses: app,
                    ..PodStatus::default()
                },
                history: &BTreeMap::new(),
                host_ip: "h",
                start_time: None,
                now: Time::from_unix(200, 0),
            })
        };
        let initialized =
            |s: &PodStatus| s.condition(PodConditionType::Initialized).unwrap().clone();
        let pod = Pod::default();
        // The first init container runs: Pending, not initialized.
        let s = status(
            &pod,
            vec![named("i1", running()), waiting("i2")],
            vec![waiting("c")],
        );
        assert_eq!(s.phase, PodPhase::Pending);
        let cond = initialized(&s);
        assert_eq!(
            (cond.status, cond.reason.as_str()),
            (ConditionStatus::False, "ContainersNotInitialized")
        );
        assert_eq!(s.init_container_statuses.len(), 2);
        // A failed init container under Always (and OnFailure) runs again:
        // still Pending.
        let s = status(&pod, vec![named("i1", exited(1))], vec![waiting("c")]);
        assert_eq!(s.phase, PodPhase::Pending);
        // Under Never the pod has failed.
        let mut never = Pod::default();
        never.spec.restart_policy = RestartPolicy::Never;
        let s = status(&never, vec![named("i1", exited(1))], vec![waiting("c")]);
        assert_eq!(s.phase, PodPhase::Failed);
        assert_eq!(initialized(&s).status, ConditionStatus::False);
        // All completed, the app container runs: initialized and Running.
        let s = status(
            &never,
            vec![named("i1", exited(0)), named("i2", exited(0))],
            vec![running()],
        );
        assert_eq!(s.phase, PodPhase::Running);
        assert_eq!(initialized(&s).status, ConditionStatus::True);
        assert_eq!(
            s.condition(PodConditionType::Ready).unwrap().status,
            ConditionStatus::True
        );
        // Completed, the app container not made yet: Pending.
        let s = status(&pod, vec![named("i1", exited(0))], vec![waiting("c")]);
        assert_eq!(s.phase, PodPhase::Pending);
        assert_eq!(initialized(&s).status, ConditionStatus::True);
    }

    #[test]
    fn probes_decide_ready_and_started() {
        let pod = Pod::default();
        let probed = |started, ready| ContainerHistory {
            probed: Some(Probed { started, ready }),
            ..ContainerHistory::default()
        };
        let with = |h: ContainerHistory| {
            let history = BTreeMap::from([("c".to_string(), h)]);
            report_of(&pod, vec![running()], &history)
        };
        let s = with(probed(true, false));
        assert_eq!(s.phase, PodPhase::Running);
        assert!(!s.container_statuses[0].ready);
        assert_eq!(s.container_statuses[0].started, Some(true));
        for t in [PodConditionType::ContainersReady, PodConditionType::Ready] {
            let c = s.condition(t).unwrap();
            assert_eq!(
                (c.status, c.reason.as_str()),
                (ConditionStatus::False, "ContainersNotReady")
            );
        }
        let s = with(probed(false, false));
        assert_eq!(s.container_statuses[0].started, Some(false));
        let s = with(probed(true, true));
        assert!(s.container_statuses[0].ready);
        assert_eq!(
            s.condition(PodConditionType::Ready).unwrap().status,
            ConditionStatus::True
        );
        // Probe results never make a stopped container ready.
        let history = BTreeMap::from([("c".to_string(), probed(true, true))]);
        let s = report_of(&pod, vec![exited(1)], &history);
        assert!(!s.container_statuses[0].ready);
    }
}
