//! Restart decisions for a pod's containers: which exits restart (by the
//! pod's restart policy) and kubelet's back-off: the first restart at
//! once, then 10 s, doubling up to 5 min; a container that ran 10 min
//! before it exited starts over with an immediate restart.

use noderun_core::RestartPolicy;
use std::time::Duration;

pub const INITIAL_BACKOFF: Duration = Duration::from_secs(10);
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A container that ran this long is healthy again: its back-off resets.
pub const RESET_AFTER: Duration = Duration::from_secs(600);

/// Whether a container that exited with `exit_code` is started again.
pub fn restarts(policy: RestartPolicy, exit_code: i32) -> bool {
    match policy {
        RestartPolicy::Always => true,
        RestartPolicy::OnFailure => exit_code != 0,
        RestartPolicy::Never => false,
    }
}

/// One container's back-off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backoff {
    /// The delay the last exit got; `None` when the next exit restarts at
    /// once.
    last: Option<Duration>,
}

impl Backoff {
    /// The container exited after running for `ran`: how long to wait
    /// before starting it again.
    pub fn next_delay(&mut self, ran: Duration) -> Duration {
        if ran >= RESET_AFTER {
            self.last = None;
        }
        let (delay, next) = match self.last {
            None => (Duration::ZERO, INITIAL_BACKOFF),
            Some(d) => (d, (d * 2).min(MAX_BACKOFF)),
        };
        self.last = Some(next);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies() {
        use RestartPolicy::*;
        assert!(restarts(Always, 0) && restarts(Always, 1));
        assert!(!restarts(OnFailure, 0) && restarts(OnFailure, 137));
        assert!(!restarts(Never, 0) && !restarts(Never, 1));
    }

    #[test]
    fn backoff_doubles_to_five_minutes_and_resets() {
        let mut b = Backoff::default();
        let quick = Duration::from_secs(1);
        let delays: Vec<u64> = (0..8).map(|_| b.next_delay(quick).as_secs()).collect();
        assert_eq!(delays, [0, 10, 20, 40, 80, 160, 300, 300]);
        // Ten minutes of running: back to an immediate restart, then 10 s.
        assert_eq!(b.next_delay(RESET_AFTER), Duration::ZERO);
        assert_eq!(b.next_delay(quick), INITIAL_BACKOFF);
        // Just under ten minutes does not reset.
        assert_eq!(
            b.next_delay(RESET_AFTER - Duration::from_secs(1)),
            Duration::from_secs(20)
        );
    }
}
