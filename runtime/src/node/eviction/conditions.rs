//! The node's pressure conditions (MemoryPressure, DiskPressure,
//! PIDPressure) from the thresholds met, with kubelet's reasons and
//! messages. A condition turns True as soon as one of its thresholds is
//! met and goes back to False only after none was met for the pressure
//! transition period (`--eviction-pressure-transition-period`, 5 min),
//! so a node hovering at a threshold does not flap. Pure code.

use super::thresholds::Threshold;
use noderun_core::{ConditionStatus, NodeCondition, NodeConditionType, Time};
use std::time::{Duration, Instant};

/// The pressure conditions, in the order the node reports them.
pub const PRESSURE_CONDITIONS: [NodeConditionType; 3] = [
    NodeConditionType::MemoryPressure,
    NodeConditionType::DiskPressure,
    NodeConditionType::PidPressure,
];

/// Which pressure conditions are True now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodePressure {
    pub memory: bool,
    pub disk: bool,
    pub pid: bool,
}

impl NodePressure {
    pub fn of(&self, condition: NodeConditionType) -> bool {
        match condition {
            NodeConditionType::MemoryPressure => self.memory,
            NodeConditionType::DiskPressure => self.disk,
            NodeConditionType::PidPressure => self.pid,
            _ => false,
        }
    }
}

/// When each condition's thresholds were last seen met.
#[derive(Debug, Clone, Default)]
pub struct PressureMemory {
    /// By position in [`PRESSURE_CONDITIONS`].
    last_met: [Option<Instant>; 3],
}

fn slot(condition: NodeConditionType) -> Option<usize> {
    PRESSURE_CONDITIONS.iter().position(|c| *c == condition)
}

impl PressureMemory {
    /// Record one round's met thresholds and say which conditions hold:
    /// met now, or met within the last `transition` period.
    pub fn observe(
        &mut self,
        met: &[Threshold],
        now: Instant,
        transition: Duration,
    ) -> NodePressure {
        for t in met {
            if let Some(i) = slot(t.signal.condition()) {
                self.last_met[i] = Some(now);
            }
        }
        let holds = |c: NodeConditionType| {
            slot(c)
                .and_then(|i| self.last_met[i])
                .is_some_and(|at| now.saturating_duration_since(at) < transition || at == now)
        };
        NodePressure {
            memory: holds(NodeConditionType::MemoryPressure),
            disk: holds(NodeConditionType::DiskPressure),
            pid: holds(NodeConditionType::PidPressure),
        }
    }
}

/// Kubelet's reason and message for `condition` being True or False.
fn wording(condition: NodeConditionType, pressure: bool) -> (&'static str, &'static str) {
    use NodeConditionType::*;
    match (condition, pressure) {
        (MemoryPressure, true) => (
            "KubeletHasInsufficientMemory",
            "noderun has insufficient memory available",
        ),
        (MemoryPressure, false) => (
            "KubeletHasSufficientMemory",
            "noderun has sufficient memory available",
        ),
        (DiskPressure, true) => ("KubeletHasDiskPressure", "noderun has disk pressure"),
        (DiskPressure, false) => ("KubeletHasNoDiskPressure", "noderun has no disk pressure"),
        (PidPressure, true) => (
            "KubeletHasInsufficientPID",
            "noderun has insufficient PID available",
        ),
        (_, _) => (
            "KubeletHasSufficientPID",
            "noderun has sufficient PID available",
        ),
    }
}

/// The three pressure conditions for `pressure`; a condition whose status
/// is unchanged from `previous` keeps its transition time.
pub fn pressure_conditions(
    previous: &[NodeCondition],
    pressure: NodePressure,
    now: Time,
) -> Vec<NodeCondition> {
    PRESSURE_CONDITIONS
        .iter()
        .map(|&type_| {
            let on = pressure.of(type_);
            let status = if on {
                ConditionStatus::True
            } else {
                ConditionStatus::False
            };
            let since = previous
                .iter()
                .find(|c| c.type_ == type_ && c.status == status)
                .and_then(|c| c.last_transition_time)
                .unwrap_or(now);
            let (reason, message) = wording(type_, on);
            NodeCondition {
                type_,
                status,
                last_heartbeat_time: Some(now),
                last_transition_time: Some(since),
                reason: reason.into(),
                message: message.into(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::thresholds::{parse_thresholds, Threshold};
    use super::*;

    const PERIOD: Duration = Duration::from_secs(300);

    fn met(text: &str) -> Vec<Threshold> {
        parse_thresholds(text).unwrap()
    }

    #[test]
    fn pressure_holds_for_the_transition_period() {
        let start = Instant::now();
        let mut memory = PressureMemory::default();
        assert_eq!(memory.observe(&[], start, PERIOD), NodePressure::default());
        let p = memory.observe(&met("memory.available<1Mi,pid.available<5"), start, PERIOD);
        assert_eq!(
            p,
            NodePressure {
                memory: true,
                disk: false,
                pid: true
            }
        );
        let p = memory.observe(
            &met("nodefs.inodesFree<5%"),
            start + Duration::from_secs(60),
            PERIOD,
        );
        assert!(
            p.memory && p.disk && p.pid,
            "still within the period: {p:?}"
        );
        let p = memory.observe(&[], start + PERIOD, PERIOD);
        assert_eq!(
            p,
            NodePressure {
                memory: false,
                disk: true,
                pid: false
            },
            "memory and pid were last met a whole period ago"
        );
        let p = memory.observe(&[], start + PERIOD + Duration::from_secs(60), PERIOD);
        assert_eq!(p, NodePressure::default());
        // A zero period: pressure lasts exactly as long as the signal.
        let mut quick = PressureMemory::default();
        let t = start + Duration::from_secs(1000);
        assert!(
            quick
                .observe(&met("memory.available<1Mi"), t, Duration::ZERO)
                .memory
        );
        assert!(
            !quick
                .observe(&[], t + Duration::from_millis(1), Duration::ZERO)
                .memory
        );
    }

    #[test]
    fn conditions_keep_their_transition_time_while_unchanged() {
        let t1 = Time::from_unix(100, 0);
        let t2 = Time::from_unix(200, 0);
        let t3 = Time::from_unix(300, 0);
        let first = pressure_conditions(&[], NodePressure::default(), t1);
        assert_eq!(
            first.iter().map(|c| c.type_).collect::<Vec<_>>(),
            PRESSURE_CONDITIONS
        );
        assert!(first
            .iter()
            .all(|c| c.status == ConditionStatus::False && c.last_transition_time == Some(t1)));
        assert_eq!(first[0].reason, "KubeletHasSufficientMemory");
        assert_eq!(first[1].reason, "KubeletHasNoDiskPressure");
        assert_eq!(first[2].reason, "KubeletHasSufficientPID");
        let pressed = NodePressure {
            memory: true,
            ..NodePressure::default()
        };
        let second = pressure_conditions(&first, pressed, t2);
        assert_eq!(second[0].status, ConditionStatus::True);
        assert_eq!(second[0].reason, "KubeletHasInsufficientMemory");
        assert_eq!(
            second[0].message,
            "noderun has insufficient memory available"
        );
        assert_eq!(second[0].last_transition_time, Some(t2));
        assert_eq!(second[1].last_transition_time, Some(t1), "unchanged");
        assert_eq!(second[1].last_heartbeat_time, Some(t2));
        let third = pressure_conditions(&second, pressed, t3);
        assert_eq!(third[0].last_transition_time, Some(t2));
        let fourth = pressure_conditions(&third, NodePressure::default(), t3);
        assert_eq!(
            (fourth[0].status, fourth[0].last_transition_time),
            (ConditionStatus::False, Some(t3))
        );
    }
}
