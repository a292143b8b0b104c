//! The probes of one pod's running containers, as its worker runs them
//! each round: a prober per running container instance (made when the
//! worker first sees it running, so the initial delay counts from there;
//! forgotten when it stops or a new instance starts), the checks that are
//! due made concurrently, each bounded by its timeout, and the results
//! and the signals they call for handed back. A container whose liveness
//! (or startup) probe failed gets SIGTERM, then SIGKILL once the pod's
//! grace period has passed; its exit is then an exit like any other, and
//! the restart policy decides.

use super::handler::Check;
use super::{ContainerProbes, ProbeKind, Verdict};
use crate::agent::PodHost;
use crate::node::status::Probed;
use nix::sys::signal::Signal;
use noderun_core::{Container, Pod, PodStatus, Probe};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug)]
struct Kill {
    sigkill_at: Instant,
    sigkilled: bool,
}

#[derive(Debug)]
struct Prober {
    probes: ContainerProbes,
    since: Instant,
    kill: Option<Kill>,
}

/// What a round found: each probed container's results, the signals to
/// send (container name, signal).
#[derive(Debug, Default)]
pub struct Round {
    pub results: BTreeMap<String, Probed>,
    pub signals: Vec<(String, Signal)>,
}

/// The probers of one pod.
#[derive(Debug, Default)]
pub struct PodProbes {
    probers: BTreeMap<String, Prober>,
}

fn probe_of(c: &Container, kind: ProbeKind) -> Option<&Probe> {
    match kind {
        ProbeKind::Startup => c.startup_probe.as_ref(),
        ProbeKind::Liveness => c.liveness_probe.as_ref(),
        ProbeKind::Readiness => c.readiness_probe.as_ref(),
    }
}

impl PodProbes {
    /// Container `name` starts as a new instance: its probes start over.
    pub fn forget(&mut self, name: &str) {
        self.probers.remove(name);
    }

    /// When the next check or SIGKILL is due.
    pub fn next_wakeup(&self) -> Option<Instant> {
        self.probers
            .values()
            .filter_map(|p| match &p.kill {
                Some(k) if !k.sigkilled => Some(k.sigkill_at),
                Some(_) => None,
                None => p.probes.next_due().map(|d| p.since + d),
            })
            .min()
    }

    /// Run the checks due at `now` on the running containers of `pod`
    /// (as `observed`), from the node to `pod_ip`.
    pub async fn round(
        &mut self,
        host: &Arc<PodHost>,
        pod: &Pod,
        observed: &PodStatus,
        pod_ip: Option<IpAddr>,
        grace: Duration,
        now: Instant,
    ) -> Round {
        let running = |name: &str| {
            observed
                .container_statuses
                .iter()
                .any(|s| s.name == name && s.state.running.is_some())
        };
        self.probers.retain(|name, _| running(name));
        let mut checks = tokio::task::JoinSet::new();
        let uid = &pod.metadata.uid;
        for c in pod.spec.containers.iter().filter(|c| running(&c.name)) {
            if !self.probers.contains_key(&c.name) {
                let Some(probes) = ContainerProbes::of(c) else {
                    continue;
                };
                let prober = Prober {
                    probes,
                    since: now,
                    kill: None,
                };
                self.probers.insert(c.name.clone(), prober);
            }
            let prober = &self.probers[&c.name];
            if prober.kill.is_some() {
                continue;
            }
            let age = now - prober.since;
            for kind in prober.probes.due(age) {
                let Some(probe) = probe_of(c, kind) else {
                    continue;
                };
                let timeout = prober.probes.state(kind).map(|s| s.timing.timeout);
                let timeout = timeout.unwrap_or(Duration::from_secs(1));
                let check = Check::of(probe, uid, c, pod_ip);
                let (host, name) = (Arc::clone(host), c.name.clone());
                checks.spawn(async move {
                    let result = match check {
                        Ok(check) => check.run(host, timeout).await,
                        Err(e) => Err(e),
                    };
                    (name, kind, age, result)
                });
            }
        }
        while let Some(done) = checks.join_next().await {
            let Ok((name, kind, age, result)) = done else {
                continue;
            };
            if let Err(e) = &result {
                tracing::info!(pod = %uid, container = %name, probe = kind.name(), error = %e,
                    "probe failed");
            }
            if let Some(p) = self.probers.get_mut(&name) {
                p.probes.record(kind, result.is_ok(), age);
            }
        }
        let mut round = Round::default();
        for (name, p) in &mut self.probers {
            match (&mut p.kill, p.probes.verdict()) {
                (None, Verdict::Kill(kind)) => {
                    tracing::info!(pod = %uid, container = %name, probe = kind.name(), ?grace,
                        "probe failed its threshold; stopping the container");
                    round.signals.push((name.clone(), Signal::SIGTERM));
                    p.kill = Some(Kill {
                        sigkill_at: now + grace,
                        sigkilled: false,
                    });
                }
                (Some(k), _) if !k.sigkilled && now >= k.sigkill_at => {
                    round.signals.push((name.clone(), Signal::SIGKILL));
                    k.sigkilled = true;
                }
                _ => {}
            }
            let ready = p.kill.is_none() && p.probes.ready();
            let started = p.probes.started();
            round
                .results
                .insert(name.clone(), Probed { started, ready });
        }
        round
    }
}
