//! The pod's PodScheduled condition, the one part of a pod's status the
//! scheduler writes: `False`, reason `Unschedulable` and the summary of
//! why (`0/5 nodes are available: ...`) while no node fits; `True` once a
//! pod that had been refused is bound. Written only when it changes, so a
//! pod retried many times costs one write, not one per attempt.

use noderun_core::{ConditionStatus, Pod, PodCondition, PodConditionType, Time};

/// kube-scheduler's reason for a pod no node fits.
pub const REASON_UNSCHEDULABLE: &str = "Unschedulable";

/// The pod with its PodScheduled condition set to `status`, `reason` and
/// `message`, or `None` when it already says so.
pub fn with_pod_scheduled(
    pod: &Pod,
    status: ConditionStatus,
    reason: &str,
    message: &str,
) -> Option<Pod> {
    let current = pod.status.condition(PodConditionType::PodScheduled);
    if current.is_some_and(|c| c.status == status && c.reason == reason && c.message == message) {
        return None;
    }
    let transition = match current {
        Some(c) if c.status == status => c.last_transition_time,
        _ => Some(Time::now()),
    };
    let condition = PodCondition {
        type_: PodConditionType::PodScheduled,
        status,
        reason: reason.to_owned(),
        message: message.to_owned(),
        last_transition_time: transition,
    };
    let mut next = pod.clone();
    let conditions = &mut next.status.conditions;
    match conditions
        .iter_mut()
        .find(|c| c.type_ == PodConditionType::PodScheduled)
    {
        Some(c) => *c = condition,
        None => conditions.push(condition),
    }
    Some(next)
}

/// Whether the pod carries PodScheduled=False (it was found unschedulable).
pub fn was_refused(pod: &Pod) -> bool {
    pod.status
        .condition(PodConditionType::PodScheduled)
        .is_some_and(|c| c.status == ConditionStatus::False)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHY: &str = "0/2 nodes are available: 2 Insufficient cpu.";

    #[test]
    fn written_only_when_it_changes() {
        let pod = Pod::default();
        assert!(!was_refused(&pod));
        let refused =
            with_pod_scheduled(&pod, ConditionStatus::False, REASON_UNSCHEDULABLE, WHY).unwrap();
        assert!(was_refused(&refused));
        let c = refused
            .status
            .condition(PodConditionType::PodScheduled)
            .unwrap();
        assert_eq!(
            (c.reason.as_str(), c.message.as_str()),
            (REASON_UNSCHEDULABLE, WHY)
        );
        assert!(c.last_transition_time.is_some());
        assert!(
            with_pod_scheduled(&refused, ConditionStatus::False, REASON_UNSCHEDULABLE, WHY)
                .is_none()
        );
        // A new message replaces the condition (still one), keeping the
        // time of the transition to False.
        let other = "0/3 nodes are available: 3 Insufficient memory.";
        let again = with_pod_scheduled(
            &refused,
            ConditionStatus::False,
            REASON_UNSCHEDULABLE,
            other,
        )
        .unwrap();
        assert_eq!(again.status.conditions.len(), 1);
        let c2 = again
            .status
            .condition(PodConditionType::PodScheduled)
            .unwrap();
        assert_eq!(c2.message, other);
        assert_eq!(c2.last_transition_time, c.last_transition_time);
        let scheduled = with_pod_scheduled(&again, ConditionStatus::True, "", "").unwrap();
        assert!(!was_refused(&scheduled));
        assert_eq!(scheduled.status.conditions.len(), 1);
    }
}
