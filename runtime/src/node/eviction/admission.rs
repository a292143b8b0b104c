//! Whether a pod new to this node may start under the node's pressure,
//! as the kubelet's eviction manager admits pods: with no pressure, any
//! pod; under memory pressure alone, every pod but a BestEffort one that
//! does not tolerate the `node.kubernetes.io/memory-pressure` taint; under
//! disk or PID pressure, none. A refused pod is reported Failed with
//! reason `Evicted` and never started. (Kubelet also admits critical pods
//! under any pressure; the API has no priority yet.) Pure code.

use super::conditions::NodePressure;
use noderun_core::sched::MEMORY_PRESSURE_TAINT;
use noderun_core::{Pod, QosClass, Taint, TaintEffect};

/// `None` when `pod` may start under `pressure`, else the message of its
/// refusal (kubelet's: `The node had condition: [MemoryPressure]. `).
pub fn refusal(pod: &Pod, pressure: NodePressure) -> Option<String> {
    let mut conditions = Vec::new();
    if pressure.memory {
        conditions.push("MemoryPressure");
    }
    if pressure.disk {
        conditions.push("DiskPressure");
    }
    if pressure.pid {
        conditions.push("PIDPressure");
    }
    if conditions.is_empty() {
        return None;
    }
    if conditions == ["MemoryPressure"] {
        let taint = Taint {
            key: MEMORY_PRESSURE_TAINT.into(),
            effect: TaintEffect::NoSchedule,
            ..Taint::default()
        };
        let tolerates = pod.spec.tolerations.iter().any(|t| t.tolerates(&taint));
        if pod.qos_class() != QosClass::BestEffort || tolerates {
            return None;
        }
    }
    Some(format!(
        "The node had condition: [{}]. ",
        conditions.join(" ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use noderun_core::{Container, ResourceRequirements, Toleration, TolerationOperator};

    fn pod(memory_limit: Option<&str>, tolerations: Vec<Toleration>) -> Pod {
        let mut p = Pod::default();
        let mut resources = ResourceRequirements::default();
        if let Some(m) = memory_limit {
            resources.limits.insert("memory".into(), m.parse().unwrap());
        }
        p.spec.containers.push(Container {
            name: "c".into(),
            resources,
            ..Container::default()
        });
        p.spec.tolerations = tolerations;
        p
    }

    #[test]
    fn memory_pressure_refuses_only_best_effort_pods_that_do_not_tolerate_it() {
        let memory = NodePressure {
            memory: true,
            ..NodePressure::default()
        };
        let best_effort = pod(None, Vec::new());
        let burstable = pod(Some("64Mi"), Vec::new());
        let tolerant = pod(
            None,
            vec![Toleration {
                key: MEMORY_PRESSURE_TAINT.into(),
                operator: TolerationOperator::Exists,
                effect: Some(TaintEffect::NoSchedule),
                ..Toleration::default()
            }],
        );
        let wrong_effect = pod(
            None,
            vec![Toleration {
                key: MEMORY_PRESSURE_TAINT.into(),
                operator: TolerationOperator::Exists,
                effect: Some(TaintEffect::NoExecute),
                ..Toleration::default()
            }],
        );
        assert_eq!(refusal(&best_effort, NodePressure::default()), None);
        assert_eq!(
            refusal(&best_effort, memory).as_deref(),
            Some("The node had condition: [MemoryPressure]. ")
        );
        assert_eq!(refusal(&burstable, memory), None);
        assert_eq!(refusal(&tolerant, memory), None);
        assert!(refusal(&wrong_effect, memory).is_some());
    }

    #[test]
    fn disk_or_pid_pressure_refuses_every_pod() {
        let burstable = pod(Some("64Mi"), Vec::new());
        let disk = NodePressure {
            disk: true,
            ..NodePressure::default()
        };
        assert_eq!(
            refusal(&burstable, disk).as_deref(),
            Some("The node had condition: [DiskPressure]. ")
        );
        let all = NodePressure {
            memory: true,
            disk: true,
            pid: true,
        };
        assert_eq!(
            refusal(&burstable, all).as_deref(),
            Some("The node had condition: [MemoryPressure DiskPressure PIDPressure]. ")
        );
    }
}
