//! Node lifecycle: nodes heartbeat by renewing their Lease
//! (`noderun-node-lease/<node>`). A node whose Lease has not changed for
//! the grace period (`--node-monitor-grace-period`, 40 s) gets the
//! condition `Ready=Unknown` (reason `NodeStatusUnknown`); a node whose
//! Lease is renewed again gets `Ready=True` back, but only where this
//! controller had set `Unknown` (what the node itself reports is left as
//! it is). The NoExecute taint follows the Ready condition:
//! `node.kubernetes.io/unreachable` for Unknown, `node.kubernetes.io/not-ready`
//! for False, none otherwise; evicting the pods is [`super::taint_eviction`]'s.
//!
//! As Kubernetes' TaintNodesByCondition, the node's pressure conditions
//! become NoSchedule taints, so the scheduler places no new pods there
//! while they hold: `MemoryPressure=True` gives
//! `node.kubernetes.io/memory-pressure`, `DiskPressure=True`
//! `node.kubernetes.io/disk-pressure`, `PIDPressure=True`
//! `node.kubernetes.io/pid-pressure`; each goes when its condition does.
//!
//! Silence is measured on this controller's clock, from when it last saw
//! the Lease change (or first saw the node), not from the `renewTime` the
//! node wrote: clocks of other hosts do not matter, and after a restart
//! every node has a whole grace period to be seen again.

use super::reconcile_loop::{drive, Controller};
use super::reflector::{key_of, Change, Key, Reflector};
use super::{reflect, Connector, ControllerError, ControllerOptions, Shutdown};
use crate::client::{Client, ClientError};
use noderun_core::{
    ConditionStatus, Kind, Node, NodeCondition, NodeConditionType, Object, Taint, TaintEffect,
    Time, NODE_LEASE_NAMESPACE,
};
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

pub const NAME: &str = "node-lifecycle";

/// The taint of a node whose Ready condition is Unknown.
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// The taint of a node whose Ready condition is False.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// The NoSchedule taints of the pressure conditions.
pub use noderun_core::sched::{
    DISK_PRESSURE_TAINT as TAINT_DISK_PRESSURE, MEMORY_PRESSURE_TAINT as TAINT_MEMORY_PRESSURE,
    PID_PRESSURE_TAINT as TAINT_PID_PRESSURE,
};
const PRESSURE_TAINTS: [(NodeConditionType, &str); 3] = [
    (NodeConditionType::MemoryPressure, TAINT_MEMORY_PRESSURE),
    (NodeConditionType::DiskPressure, TAINT_DISK_PRESSURE),
    (NodeConditionType::PidPressure, TAINT_PID_PRESSURE),
];
/// The reason of the `Ready=Unknown` this controller writes.
pub const REASON_UNKNOWN: &str = "NodeStatusUnknown";
/// The reason of the `Ready=True` it writes when the Lease comes back.
pub const REASON_RENEWED: &str = "NodeLeaseRenewed";

pub(super) async fn run(
    connector: &Connector,
    options: &ControllerOptions,
    shutdown: Shutdown,
) -> Result<(), ControllerError> {
    let mut controller = NodeLifecycle {
        client: connector.connect(NAME).await?,
        nodes: reflect(connector, Kind::Node, None).await?,
        leases: reflect(connector, Kind::Lease, Some(NODE_LEASE_NAMESPACE)).await?,
        grace: options.node_monitor_grace_period,
        heartbeats: HashMap::new(),
    };
    drive(&mut controller, options, shutdown).await
}

/// The last Lease version seen for a node, and when it was seen.
#[derive(Debug, Clone, Copy)]
struct Heartbeat {
    lease_version: Option<u64>,
    seen: Instant,
}

struct NodeLifecycle {
    client: Client,
    nodes: Reflector,
    leases: Reflector,
    grace: Duration,
    heartbeats: HashMap<String, Heartbeat>,
}

impl Controller for NodeLifecycle {
    const NAME: &'static str = NAME;

    fn caches(&mut self) -> (&mut Reflector, &mut Reflector) {
        (&mut self.nodes, &mut self.leases)
    }

    fn keys_for(&mut self, cache: usize, change: &Change) -> Vec<Key> {
        let object = match change {
            Change::Upserted { new, .. } => new,
            Change::Deleted(last) => last,
            Change::Expired => return Vec::new(),
        };
        let name = object.metadata().name.clone();
        if cache == 0 {
            if matches!(change, Change::Deleted(_)) {
                self.heartbeats.remove(&name);
            }
            return vec![key_of(object)];
        }
        vec![(String::new(), name)]
    }

    fn all_keys(&self) -> Vec<Key> {
        self.nodes.iter().map(key_of).collect()
    }

    async fn reconcile(&mut self, key: &Key) -> Result<Option<Duration>, ClientError> {
        let Some(Object::Node(node)) = self.nodes.get("", &key.1).cloned() else {
            self.heartbeats.remove(&key.1);
            return Ok(None);
        };
        let silent_for = self.observe(&key.1);
        let fresh = silent_for < self.grace;
        let mut node = node;
        let mut status = node.status.clone();
        if set_ready(&mut status.conditions, fresh, self.grace, Time::now()) {
            let ready = status.condition(NodeConditionType::Ready).map(|c| c.status);
            tracing::info!(node = %key.1, ready = ?ready, silent_ms = silent_for.as_millis() as u64,
                "node Ready condition changed");
            node.status = status;
            let updated = self.client.update_status(Object::Node(node)).await?;
            self.nodes.record(updated.clone());
            let Object::Node(n) = updated else {
                return Ok(None);
            };
            node = n;
        }
        let mut taints = node.spec.taints.clone();
        let now = Time::now();
        let health = set_taints(&mut taints, ready_status(&node), now);
        let pressure = set_pressure_taints(&mut taints, &node.status.conditions, now);
        if health || pressure {
            tracing::info!(node = %key.1, taints = ?taints.iter().map(|t| &t.key).collect::<Vec<_>>(),
                "node condition taints changed");
            node.spec.taints = taints;
            let updated = self.client.update(Object::Node(node)).await?;
            self.nodes.record(updated);
        }
        Ok(fresh.then(|| self.grace - silent_for))
    }
}

impl NodeLifecycle {
    /// How long the node's Lease has gone unchanged, as this controller saw it.
    fn observe(&mut self, node: &str) -> Duration {
        let version = self
            .leases
            .get(NODE_LEASE_NAMESPACE, node)
            .map(|l| l.metadata().resource_version);
        let now = Instant::now();
        let beat = self.heartbeats.entry(node.to_owned()).or_insert(Heartbeat {
            lease_version: version,
            seen: now,
        });
        if version.is_some() && version != beat.lease_version {
            *beat = Heartbeat {
                lease_version: version,
                seen: now,
            };
        }
        now.duration_since(beat.seen)
    }
}

fn ready_status(node: &Node) -> Option<ConditionStatus> {
    node.status
        .condition(NodeConditionType::Ready)
        .map(|c| c.status)
}

/// Make the Ready condition say what the Lease says; true if it changed.
/// A silent node's condition becomes Unknown; a heard one's goes back to
/// True only if this controller made it Unknown.
pub fn set_ready(
    conditions: &mut Vec<NodeCondition>,
    fresh: bool,
    grace: Duration,
    now: Time,
) -> bool {
    let current = conditions
        .iter_mut()
        .find(|c| c.type_ == NodeConditionType::Ready);
    let (status, reason, message) = match (fresh, &current) {
        (false, Some(c)) if c.status == ConditionStatus::Unknown => return false,
        (false, _) => (
            ConditionStatus::Unknown,
            REASON_UNKNOWN,
            format!(
                "the node's lease was not renewed for {}s; the node is unreachable",
                grace.as_secs()
            ),
        ),
        (true, Some(c)) if c.status == ConditionStatus::Unknown && c.reason == REASON_UNKNOWN => (
            ConditionStatus::True,
            REASON_RENEWED,
            "the node's lease is renewed again".to_owned(),
        ),
        (true, _) => return false,
    };
    let next = NodeCondition {
        type_: NodeConditionType::Ready,
        status,
        last_heartbeat_time: current.as_ref().and_then(|c| c.last_heartbeat_time),
        last_transition_time: Some(now),
        reason: reason.to_owned(),
        message,
    };
    match current {
        Some(c) => *c = next,
        None => conditions.push(next),
    }
    true
}

/// Make the NoExecute node-health taints follow the Ready condition; true
/// if they changed. A taint already there keeps its `timeAdded`.
pub fn set_taints(taints: &mut Vec<Taint>, ready: Option<ConditionStatus>, now: Time) -> bool {
    let wanted = match ready {
        Some(ConditionStatus::Unknown) => Some(TAINT_UNREACHABLE),
        Some(ConditionStatus::False) => Some(TAINT_NOT_READY),
        _ => None,
    };
    let ours = |t: &Taint| {
        t.effect == TaintEffect::NoExecute
            && [TAINT_UNREACHABLE, TAINT_NOT_READY].contains(&&*t.key)
    };
    let before = taints.len();
    taints.retain(|t| !ours(t) || Some(t.key.as_str()) == wanted);
    let mut changed = taints.len() != before;
    if let Some(key) = wanted {
        if !taints.iter().any(|t| ours(t) && t.key == key) {
            taints.push(Taint {
                key: key.to_owned(),
                value: String::new(),
                effect: TaintEffect::NoExecute,
                time_added: Some(now),
            });
            changed = true;
        }
    }
    changed
}

/// Make the NoSchedule pressure taints follow the pressure conditions;
/// true if they changed. A taint already there keeps its `timeAdded`.
pub fn set_pressure_taints(
    taints: &mut Vec<Taint>,
    conditions: &[NodeCondition],
    now: Time,
) -> bool {
    let mut changed = false;
    for (condition, key) in PRESSURE_TAINTS {
        let wanted = conditions
            .iter()
            .any(|c| c.type_ == condition && c.status == ConditionStatus::True);
        let ours = |t: &Taint| t.key == key && t.effect == TaintEffect::NoSchedule;
        let present = taints.iter().any(ours);
        if wanted && !present {
            taints.push(Taint {
                key: key.to_owned(),
                value: String::new(),
                effect: TaintEffect::NoSchedule,
                time_added: Some(now),
            });
            changed = true;
        } else if !wanted && present {
            taints.retain(|t| !ours(t));
            changed = true;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(40);

    #[test]
    fn silence_makes_ready_unknown_and_a_renewal_undoes_only_that() {
        let t = Time::from_unix(100, 0);
        let mut conditions = Vec::new();
        assert!(
            !set_ready(&mut conditions, true, GRACE, t),
            "no condition, heard: nothing to do"
        );
        assert!(set_ready(&mut conditions, false, GRACE, t));
        assert_eq!(conditions[0].status, ConditionStatus::Unknown);
        assert_eq!(conditions[0].reason, REASON_UNKNOWN);
        assert!(
            !set_ready(&mut conditions, false, GRACE, t),
            "already Unknown"
        );
        assert!(set_ready(&mut conditions, true, GRACE, t));
        assert_eq!(conditions[0].status, ConditionStatus::True);
        // The node's own False is not overwritten by a renewal...
        conditions[0].status = ConditionStatus::False;
        conditions[0].reason = "RuntimeDown".into();
        assert!(!set_ready(&mut conditions, true, GRACE, t));
        // ...but silence still wins.
        assert!(set_ready(&mut conditions, false, GRACE, t));
        assert_eq!(conditions.len(), 1);
    }

    #[test]
    fn taints_follow_the_ready_condition() {
        let t = Time::from_unix(100, 0);
        let other = Taint {
            key: "gpu".into(),
            effect: TaintEffect::NoSchedule,
            ..Taint::default()
        };
        let mut taints = vec![other.clone()];
        assert!(!set_taints(&mut taints, Some(ConditionStatus::True), t));
        assert!(!set_taints(&mut taints, None, t));
        assert!(set_taints(&mut taints, Some(ConditionStatus::Unknown), t));
        assert_eq!(taints[1].key, TAINT_UNREACHABLE);
        assert_eq!(taints[1].time_added, Some(t));
        let later = Time::from_unix(200, 0);
        assert!(!set_taints(
            &mut taints,
            Some(ConditionStatus::Unknown),
            later
        ));
        assert_eq!(taints[1].time_added, Some(t), "timeAdded is kept");
        assert!(set_taints(&mut taints, Some(ConditionStatus::False), later));
        assert_eq!(taints.len(), 2);
        assert_eq!(taints[1].key, TAINT_NOT_READY);
        assert!(set_taints(&mut taints, Some(ConditionStatus::True), later));
        assert_eq!(taints, [other]);
    }

    #[test]
    fn pressure_conditions_become_no_schedule_taints() {
        let t = Time::from_unix(100, 0);
        let condition = |type_, status| NodeCondition {
            type_,
            status,
            ..NodeCondition::default()
        };
        let other = Taint {
            key: "gpu".into(),
            effect: TaintEffect::NoSchedule,
            ..Taint::default()
        };
        let mut taints = vec![other.clone()];
        let calm = [
            condition(NodeConditionType::Ready, ConditionStatus::True),
            condition(NodeConditionType::MemoryPressure, ConditionStatus::False),
            condition(NodeConditionType::DiskPressure, ConditionStatus::False),
        ];
        assert!(!set_pressure_taints(&mut taints, &calm, t));
        assert!(!set_pressure_taints(&mut taints, &[], t));
        let pressed = [
            condition(NodeConditionType::MemoryPressure, ConditionStatus::True),
            condition(NodeConditionType::PidPressure, ConditionStatus::True),
        ];
        assert!(set_pressure_taints(&mut taints, &pressed, t));
        let keys: Vec<(&str, TaintEffect)> = taints.iter().map(|t| (&*t.key, t.effect)).collect();
        assert_eq!(
            keys,
            [
                ("gpu", TaintEffect::NoSchedule),
                (TAINT_MEMORY_PRESSURE, TaintEffect::NoSchedule),
                (TAINT_PID_PRESSURE, TaintEffect::NoSchedule),
            ]
        );
        assert_eq!(taints[1].time_added, Some(t));
        let later = Time::from_unix(200, 0);
        assert!(!set_pressure_taints(&mut taints, &pressed, later));
        assert_eq!(taints[1].time_added, Some(t), "timeAdded is kept");
        // Memory pressure ends, disk pressure starts.
        let next = [
            condition(NodeConditionType::DiskPressure, ConditionStatus::True),
            condition(NodeConditionType::PidPressure, ConditionStatus::True),
        ];
        assert!(set_pressure_taints(&mut taints, &next, later));
        let keys: Vec<&str> = taints.iter().map(|t| &*t.key).collect();
        assert_eq!(keys, ["gpu", TAINT_PID_PRESSURE, TAINT_DISK_PRESSURE]);
        // Health taints and pressure taints live side by side.
        assert!(set_taints(
            &mut taints,
            Some(ConditionStatus::Unknown),
            later
        ));
        assert!(set_pressure_taints(&mut taints, &calm, later));
        assert_eq!(
            taints.iter().map(|t| &*t.key).collect::<Vec<_>>(),
            ["gpu", TAINT_UNREACHABLE]
        );
    }
}
