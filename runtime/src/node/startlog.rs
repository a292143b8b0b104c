//! The pod start record: when a worker first saw a pod, when its start
//! began (after the blocking pool took it), how long each phase of the pod
//! layer took, when the containers were all started and when the Running
//! status was stored. Logged once per started pod as one line, target
//! `noderun::podstart`, message `pod start phases`, every time a
//! CLOCK_MONOTONIC value in microseconds ([`crate::sys::clock`]) and every
//! phase a duration in microseconds, so a benchmark on the same host can
//! set them against its own clock (the podstart bench does).

use crate::agent::PhaseTimes;
use crate::sys::clock::monotonic_micros;

/// One pod start, filled in as it goes.
#[derive(Debug, Clone, Default)]
pub struct StartRecord {
    /// The worker got the pod from the watch.
    pub seen_us: u64,
    /// The start began (on a blocking thread, after any half-made
    /// leftovers were torn down).
    pub begin_us: u64,
    /// Every container started.
    pub started_us: u64,
    pub times: PhaseTimes,
}

impl StartRecord {
    pub fn seen_now() -> StartRecord {
        StartRecord {
            seen_us: monotonic_micros(),
            ..StartRecord::default()
        }
    }

    /// Log the record; the status showing the pod Running was stored now.
    pub fn log(&self, uid: &str, namespace: &str, name: &str) {
        let us = |d: std::time::Duration| d.as_micros() as u64;
        tracing::info!(
            target: "noderun::podstart",
            pod = %uid,
            namespace = %namespace,
            name = %name,
            seen_us = self.seen_us,
            begin_us = self.begin_us,
            sandbox_us = us(self.times.sandbox),
            network_us = us(self.times.network),
            rootfs_us = us(self.times.rootfs),
            create_us = us(self.times.create),
            start_us = us(self.times.start),
            started_us = self.started_us,
            status_us = monotonic_micros(),
            "pod start phases"
        );
    }
}
