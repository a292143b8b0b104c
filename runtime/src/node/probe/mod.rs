//! Container probes as kubelet runs them, per running container instance:
//! a startup probe first (liveness and readiness wait until it succeeds;
//! failing `failureThreshold` times in a row gets the container killed),
//! then liveness (a result that turns to failure gets the container
//! killed, and its restart policy decides what follows) and readiness (the
//! container's `ready`, and so the pod's ContainersReady and Ready).
//!
//! Timing is kubelet's: nothing runs before `initialDelaySeconds` from the
//! container's start, then one probe every `periodSeconds`; a result
//! changes only after `successThreshold` successes or `failureThreshold`
//! failures in a row. Before any result a container is not ready, is live
//! and, with a startup probe, not started. This module is the pure state;
//! [`handler`] makes the checks (TCP and HTTP GET from the node to the
//! pod IP, exec in the container), [`pod`] runs a pod's probes for its
//! worker.

pub mod handler;
pub mod http;
pub mod pod;

use noderun_core::{Container, Probe};
use std::time::Duration;

/// Which of a container's probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProbeKind {
    Startup,
    Liveness,
    Readiness,
}

impl ProbeKind {
    pub fn name(self) -> &'static str {
        match self {
            ProbeKind::Startup => "startup",
            ProbeKind::Liveness => "liveness",
            ProbeKind::Readiness => "readiness",
        }
    }
}

/// A probe's timing and thresholds (defaulted and validated by the
/// apiserver; at least 1 where a zero would make no sense).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl Timing {
    pub fn of(p: &Probe) -> Timing {
        let secs = |s: i32, min: i32| Duration::from_secs(s.max(min) as u64);
        Timing {
            initial_delay: secs(p.initial_delay_seconds, 0),
            period: secs(p.period_seconds, 1),
            timeout: secs(p.timeout_seconds, 1),
            success_threshold: p.success_threshold.max(1) as u32,
            failure_threshold: p.failure_threshold.max(1) as u32,
        }
    }
}

/// One probe of one container instance. Times are offsets from the
/// container's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeState {
    pub timing: Timing,
    ok: bool,
    successes: u32,
    failures: u32,
    next: Duration,
}

impl ProbeState {
    /// Before any result: a liveness probe counts as passing, startup and
    /// readiness as not (yet).
    pub fn new(kind: ProbeKind, timing: Timing) -> ProbeState {
        ProbeState {
            timing,
            ok: kind == ProbeKind::Liveness,
            successes: 0,
            failures: 0,
            next: timing.initial_delay,
        }
    }

    /// The current result.
    pub fn ok(&self) -> bool {
        self.ok
    }

    /// `failureThreshold` failures in a row.
    pub fn failed(&self) -> bool {
        self.failures >= self.timing.failure_threshold
    }

    /// When the next check is due.
    pub fn next_due(&self) -> Duration {
        self.next
    }

    pub fn is_due(&self, age: Duration) -> bool {
        age >= self.next
    }

    /// A check made at `age` passed (or not); the next is due a period
    /// later.
    pub fn record(&mut self, passed: bool, age: Duration) {
        if passed {
            self.successes += 1;
            self.failures = 0;
            if self.successes >= self.timing.success_threshold {
                self.ok = true;
            }
        } else {
            self.failures += 1;
            self.successes = 0;
            if self.failures >= self.timing.failure_threshold {
                self.ok = false;
            }
        }
        self.next = age + self.timing.period;
    }
}

/// What the probes of a container call for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Leave it running.
    Keep,
    /// Kill it: this probe failed (liveness, or startup never succeeded).
    Kill(ProbeKind),
}

/// The probes of one running container instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerProbes {
    startup: Option<ProbeState>,
    liveness: Option<ProbeState>,
    readiness: Option<ProbeState>,
}

impl ContainerProbes {
    /// The probes container `c` declares (`None` without any).
    pub fn of(c: &Container) -> Option<ContainerProbes> {
        let state =
            |kind, p: &Option<Probe>| p.as_ref().map(|p| ProbeState::new(kind, Timing::of(p)));
        let probes = ContainerProbes {
            startup: state(ProbeKind::Startup, &c.startup_probe),
            liveness: state(ProbeKind::Liveness, &c.liveness_probe),
            readiness: state(ProbeKind::Readiness, &c.readiness_probe),
        };
        let any =
            probes.startup.is_some() || probes.liveness.is_some() || probes.readiness.is_some();
        any.then_some(probes)
    }

    pub fn state(&self, kind: ProbeKind) -> Option<&ProbeState> {
        match kind {
            ProbeKind::Startup => self.startup.as_ref(),
            ProbeKind::Liveness => self.liveness.as_ref(),
            ProbeKind::Readiness => self.readiness.as_ref(),
        }
    }

    fn state_mut(&mut self, kind: ProbeKind) -> Option<&mut ProbeState> {
        match kind {
            ProbeKind::Startup => self.startup.as_mut(),
            ProbeKind::Liveness => self.liveness.as_mut(),
            ProbeKind::Readiness => self.readiness.as_mut(),
        }
    }

    /// The startup probe succeeded, or there is none.
    pub fn started(&self) -> bool {
        self.startup.as_ref().is_none_or(ProbeState::ok)
    }

    /// Started, and the readiness probe passes (or there is none).
    pub fn ready(&self) -> bool {
        self.started() && self.readiness.as_ref().is_none_or(ProbeState::ok)
    }

    /// The probes that run now: the startup probe until it succeeded,
    /// then liveness and readiness.
    fn active(&self) -> Vec<ProbeKind> {
        if !self.started() {
            return vec![ProbeKind::Startup];
        }
        [ProbeKind::Liveness, ProbeKind::Readiness]
            .into_iter()
            .filter(|k| self.state(*k).is_some())
            .collect()
    }

    /// The probes due at `age`.
    pub fn due(&self, age: Duration) -> Vec<ProbeKind> {
        self.active()
            .into_iter()
            .filter(|k| self.state(*k).is_some_and(|s| s.is_due(age)))
            .collect()
    }

    /// When the next probe is due.
    pub fn next_due(&self) -> Option<Duration> {
        self.active()
            .into_iter()
            .filter_map(|k| self.state(k).map(ProbeState::next_due))
            .min()
    }

    /// A check of `kind` made at `age`.
    pub fn record(&mut self, kind: ProbeKind, passed: bool, age: Duration) {
        if let Some(s) = self.state_mut(kind) {
            s.record(passed, age);
        }
    }

    pub fn verdict(&self) -> Verdict {
        if let Some(s) = &self.startup {
            if !s.ok() && s.failed() {
                return Verdict::Kill(ProbeKind::Startup);
            }
        }
        if self.liveness.as_ref().is_some_and(|s| !s.ok()) {
            return Verdict::Kill(ProbeKind::Liveness);
        }
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(delay: i32, period: i32, success: i32, failure: i32) -> Option<Probe> {
        Some(Probe {
            initial_delay_seconds: delay,
            period_seconds: period,
            timeout_seconds: 1,
            success_threshold: success,
            failure_threshold: failure,
            ..Probe::default()
        })
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn nothing_runs_before_the_initial_delay_then_once_a_period() {
        let mut s = ProbeState::new(
            ProbeKind::Readiness,
            Timing::of(&probe(5, 3, 1, 3).unwrap()),
        );
        assert!(!s.is_due(secs(4)) && s.is_due(secs(5)));
        s.record(true, secs(5));
        assert_eq!(s.next_due(), secs(8));
        assert!(!s.is_due(secs(7)) && s.is_due(secs(8)));
    }

    #[test]
    fn results_change_only_after_their_threshold_in_a_row() {
        let t = Timing::of(&probe(0, 1, 2, 3).unwrap());
        let mut ready = ProbeState::new(ProbeKind::Readiness, t);
        assert!(!ready.ok(), "not ready before any result");
        ready.record(true, secs(0));
        assert!(!ready.ok(), "one success of two");
        ready.record(true, secs(1));
        assert!(ready.ok());
        // Two failures and a success: the run of failures starts over.
        ready.record(false, secs(2));
        ready.record(false, secs(3));
        ready.record(true, secs(4));
        ready.record(false, secs(5));
        ready.record(false, secs(6));
        assert!(ready.ok(), "never three failures in a row");
        ready.record(false, secs(7));
        assert!(!ready.ok() && ready.failed());
        let live = ProbeState::new(ProbeKind::Liveness, t);
        assert!(live.ok(), "live before any result");
    }

    #[test]
    fn startup_gates_the_others_and_kills_when_it_never_succeeds() {
        let c = Container {
            startup_probe: probe(0, 1, 1, 2),
            liveness_probe: probe(0, 10, 1, 1),
            readiness_probe: probe(0, 5, 1, 1),
            ..Container::default()
        };
        let mut p = ContainerProbes::of(&c).unwrap();
        assert!(!p.started() && !p.ready());
        assert_eq!(p.due(secs(0)), [ProbeKind::Startup]);
        p.record(ProbeKind::Startup, false, secs(0));
        assert_eq!(p.verdict(), Verdict::Keep);
        p.record(ProbeKind::Startup, true, secs(1));
        assert!(p.started() && !p.ready(), "started, not ready yet");
        assert_eq!(p.due(secs(1)), [ProbeKind::Liveness, ProbeKind::Readiness]);
        p.record(ProbeKind::Readiness, true, secs(1));
        assert!(p.ready());
        assert_eq!(p.next_due(), Some(Duration::ZERO), "liveness still due");
        // Liveness fails once (threshold 1): kill.
        p.record(ProbeKind::Liveness, false, secs(1));
        assert_eq!(p.verdict(), Verdict::Kill(ProbeKind::Liveness));

        let mut never = ContainerProbes::of(&c).unwrap();
        never.record(ProbeKind::Startup, false, secs(0));
        never.record(ProbeKind::Startup, false, secs(1));
        assert_eq!(never.verdict(), Verdict::Kill(ProbeKind::Startup));
    }

    #[test]
    fn a_container_without_probes_has_none() {
        assert_eq!(ContainerProbes::of(&Container::default()), None);
        let only_ready = Container {
            readiness_probe: probe(0, 1, 1, 1),
            ..Container::default()
        };
        let p = ContainerProbes::of(&only_ready).unwrap();
        assert!(p.started() && !p.ready());
        assert_eq!(p.verdict(), Verdict::Keep);
    }
}
