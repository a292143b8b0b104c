//! What a crash left of a pod, for the daemon's first look at it after a
//! restart: whether each container's start went through, and whether the
//! pod's sandbox (pinned namespaces, network attachment) is whole. A pod
//! whose containers were all started is adopted; one whose sandbox is
//! whole and whose containers were all made before can be finished in
//! place (the containers whose restart was cut short started again);
//! anything else is torn down and started again.

use super::runner::Status;
use super::sandbox::{nsfs::SharedNs, POD_IFNAME};
use super::{ContainerReport, PodHost};
use crate::container::{Record, EXEC_FIFO};

impl PodHost {
    /// Whether the container of `report` (of pod `uid`) exists and its
    /// start went through: `start` removes the exec fifo its init waits
    /// on, so a container still Created, or Stopped with its fifo left,
    /// was made but never started (a daemon killed between create and
    /// start; its init died or waits for a start nobody will send).
    pub fn container_started(&self, uid: &str, report: &ContainerReport) -> bool {
        let Some(state) = &report.state else {
            return false;
        };
        match state.status {
            Status::Running | Status::Paused => true,
            Status::Created => false,
            Status::Stopped => self.paths(uid).is_ok_and(|p| {
                !Record::dir(&p.runtime_root, &state.id)
                    .join(EXEC_FIFO)
                    .exists()
            }),
        }
    }

    /// Whether pod `uid`'s sandbox is whole: every namespace pinned and
    /// the network attached (netplug CHECK: its address allocated, its
    /// veth in place with that address).
    pub fn sandbox_up(&self, uid: &str) -> bool {
        let Ok(paths) = self.paths(uid) else {
            return false;
        };
        let sandbox = &paths.sandbox;
        sandbox.pins.iter().all(|(_, pin)| pin.exists())
            && self
                .network
                .check(sandbox.ns(SharedNs::Net), uid, POD_IFNAME)
                .is_ok()
    }
}
