//! Taint-based eviction: a pod bound to a node with NoExecute taints is
//! deleted once it no longer tolerates them. For each such taint the pod
//! may stay forever (a matching toleration without `tolerationSeconds`),
//! until `timeAdded` plus the shortest matching `tolerationSeconds`, or
//! not at all (no matching toleration). A pod with no toleration of its
//! own for the node-health taints (`unreachable`, `not-ready`) gets the
//! default (`--default-toleration-seconds`, 300 s), as Kubernetes' admission
//! would have given it. The delete is the ordinary graceful one: the
//! pod's ReplicaSet sees it terminating and makes another.

use super::node_lifecycle::{TAINT_NOT_READY, TAINT_UNREACHABLE};
use super::pod_delete::delete_pod;
use super::reconcile_loop::{drive, Controller};
use super::reflector::{key_of, Change, Key, Reflector};
use super::{reflect, Connector, ControllerError, ControllerOptions, Shutdown};
use crate::client::{Client, ClientError};
use noderun_core::{Kind, Object, Pod, Taint, TaintEffect, Time, Toleration};
use std::collections::HashMap;
use std::time::Duration;

pub const NAME: &str = "taint-eviction";

pub(super) async fn run(
    connector: &Connector,
    options: &ControllerOptions,
    shutdown: Shutdown,
) -> Result<(), ControllerError> {
    let mut controller = TaintEviction {
        client: connector.connect(NAME).await?,
        nodes: reflect(connector, Kind::Node, None).await?,
        pods: reflect(connector, Kind::Pod, None).await?,
        default_seconds: options.default_toleration_seconds,
        first_seen: HashMap::new(),
    };
    drive(&mut controller, options, shutdown).await
}

struct TaintEviction {
    client: Client,
    nodes: Reflector,
    pods: Reflector,
    default_seconds: i64,
    /// When a taint without `timeAdded` was first seen: (node, key).
    first_seen: HashMap<(String, String), Time>,
}

impl Controller for TaintEviction {
    const NAME: &'static str = NAME;

    fn caches(&mut self) -> (&mut Reflector, &mut Reflector) {
        (&mut self.nodes, &mut self.pods)
    }

    fn keys_for(&mut self, cache: usize, change: &Change) -> Vec<Key> {
        match (cache, change) {
            (0, Change::Upserted { new, .. }) => {
                let node = &new.metadata().name;
                self.pods_on(node)
            }
            (0, Change::Deleted(node)) => {
                let name = &node.metadata().name;
                self.first_seen.retain(|(n, _), _| n != name);
                Vec::new()
            }
            (1, Change::Upserted { new, .. }) if bound(new).is_some() => vec![key_of(new)],
            _ => Vec::new(),
        }
    }

    fn all_keys(&self) -> Vec<Key> {
        self.pods
            .iter()
            .filter(|p| bound(p).is_some())
            .map(key_of)
            .collect()
    }

    async fn reconcile(&mut self, key: &Key) -> Result<Option<Duration>, ClientError> {
        let Some(Object::Pod(pod)) = self.pods.get(&key.0, &key.1).cloned() else {
            return Ok(None);
        };
        if pod.metadata.is_terminating() || pod.status.phase.is_terminal() {
            return Ok(None);
        }
        let Some(Object::Node(node)) = self.nodes.get("", &pod.spec.node_name) else {
            return Ok(None);
        };
        let now = Time::now();
        let mut taints = Vec::new();
        for taint in node
            .spec
            .taints
            .iter()
            .filter(|t| t.effect == TaintEffect::NoExecute)
        {
            let added = taint.time_added.unwrap_or_else(|| {
                let seen_key = (node.metadata.name.clone(), taint.key.clone());
                *self.first_seen.entry(seen_key).or_insert(now)
            });
            taints.push((taint.clone(), added));
        }
        let Some(evict_at) = eviction_time(&pod.spec.tolerations, &taints, self.default_seconds)
        else {
            return Ok(None);
        };
        let left_ms = evict_at.unix_millis() - now.unix_millis();
        if left_ms > 0 {
            return Ok(Some(Duration::from_millis(left_ms as u64)));
        }
        self.evict(&pod).await
    }
}

impl TaintEviction {
    fn pods_on(&self, node: &str) -> Vec<Key> {
        self.pods
            .iter()
            .filter(|p| bound(p) == Some(node))
            .map(key_of)
            .collect()
    }

    async fn evict(&mut self, pod: &Pod) -> Result<Option<Duration>, ClientError> {
        if delete_pod(&self.client, &mut self.pods, pod, false).await? {
            tracing::info!(namespace = %pod.metadata.namespace, pod = %pod.metadata.name,
                node = %pod.spec.node_name, "evicted pod from a NoExecute-tainted node");
        }
        Ok(None)
    }
}

/// The node a pod is bound to.
fn bound(object: &Object) -> Option<&str> {
    match object {
        Object::Pod(p) if !p.spec.node_name.is_empty() => Some(&p.spec.node_name),
        _ => None,
    }
}

/// When a pod with `tolerations` must leave a node with these NoExecute
/// `taints` (each with the time it was added); `None`: it may stay.
pub fn eviction_time(
    tolerations: &[Toleration],
    taints: &[(Taint, Time)],
    default_seconds: i64,
) -> Option<Time> {
    let mut earliest: Option<Time> = None;
    for (taint, added) in taints {
        let matching: Vec<&Toleration> =
            tolerations.iter().filter(|t| t.tolerates(taint)).collect();
        let seconds = if matching.is_empty() {
            if [TAINT_UNREACHABLE, TAINT_NOT_READY].contains(&taint.key.as_str()) {
                default_seconds
            } else {
                0
            }
        } else if matching.iter().any(|t| t.toleration_seconds.is_none()) {
            continue;
        } else {
            matching
                .iter()
                .filter_map(|t| t.toleration_seconds)
                .min()
                .unwrap_or(0)
                .max(0)
        };
        let at = Time::from_unix_millis(added.unix_millis().saturating_add(seconds * 1000));
        earliest = Some(earliest.map_or(at, |e| if at < e { at } else { e }));
    }
    earliest
}

#[cfg(test)]
mod tests {
    use super::*;
    use noderun_core::TolerationOperator;

    fn taint(key: &str) -> (Taint, Time) {
        let t = Taint {
            key: key.into(),
            effect: TaintEffect::NoExecute,
            ..Taint::default()
        };
        (t, Time::from_unix(1000, 0))
    }

    fn tolerate(key: &str, seconds: Option<i64>) -> Toleration {
        Toleration {
            key: key.into(),
            operator: TolerationOperator::Exists,
            effect: Some(TaintEffect::NoExecute),
            toleration_seconds: seconds,
            ..Toleration::default()
        }
    }

    #[test]
    fn eviction_times() {
        let at = |s| Some(Time::from_unix(s, 0));
        let unreachable = taint(TAINT_UNREACHABLE);
        let custom = taint("dedicated");
        type Case = (
            &'static str,
            Vec<Toleration>,
            Vec<(Taint, Time)>,
            Option<Time>,
        );
        let cases: &[Case] = &[
            ("no taints", vec![], vec![], None),
            (
                "default toleration",
                vec![],
                vec![unreachable.clone()],
                at(1300),
            ),
            (
                "own seconds",
                vec![tolerate(TAINT_UNREACHABLE, Some(5))],
                vec![unreachable.clone()],
                at(1005),
            ),
            (
                "forever",
                vec![tolerate(TAINT_UNREACHABLE, None)],
                vec![unreachable.clone()],
                None,
            ),
            (
                "untolerated custom taint: now",
                vec![],
                vec![custom.clone()],
                at(1000),
            ),
            (
                "shortest of several",
                vec![
                    tolerate(TAINT_UNREACHABLE, Some(60)),
                    tolerate("", Some(30)),
                ],
                vec![unreachable.clone()],
                at(1030),
            ),
            (
                "earliest across taints",
                vec![
                    tolerate(TAINT_UNREACHABLE, None),
                    tolerate("dedicated", Some(7)),
                ],
                vec![unreachable.clone(), custom.clone()],
                at(1007),
            ),
            (
                "negative seconds: now",
                vec![tolerate("dedicated", Some(-5))],
                vec![custom],
                at(1000),
            ),
        ];
        for (name, tolerations, taints, want) in cases {
            assert_eq!(eviction_time(tolerations, taints, 300), *want, "{name}");
        }
    }
}
