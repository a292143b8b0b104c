//! The ReplicaSet controller: for each ReplicaSet, claim the pods of its
//! namespace (adopt a non-terminating pod its selector matches and no
//! controller owns; release an owned pod that no longer matches), create
//! pods from the template (`generateName: <rs>-`, a controller owner
//! reference) or delete the least valuable ones until the active pods
//! number `spec.replicas`, then write the status. A pod that is being
//! deleted, has failed or has succeeded is not active, so it is replaced.
//! Deleting pods of a ReplicaSet that is gone is the garbage collector's
//! job.

use super::pod_delete::delete_pod;
use super::reconcile_loop::{drive, Controller};
use super::reflector::{Change, Key, Reflector};
use super::{reflect, Connector, ControllerError, ControllerOptions, Shutdown};
use crate::client::{Client, ClientError};
use noderun_core::{
    ConditionStatus, Kind, Object, ObjectMeta, OwnerReference, Pod, PodConditionType, PodPhase,
    ReplicaSet, ReplicaSetStatus, Time,
};
use std::cmp::Reverse;
use std::time::Duration;

pub const NAME: &str = "replicaset";

/// Longest `generateName` prefix that leaves room for the 5-character
/// suffix in a 63-character pod name.
const MAX_PREFIX: usize = 57;

pub(super) async fn run(
    connector: &Connector,
    options: &ControllerOptions,
    shutdown: Shutdown,
) -> Result<(), ControllerError> {
    let mut controller = ReplicaSetController {
        client: connector.connect(NAME).await?,
        sets: reflect(connector, Kind::ReplicaSet, None).await?,
        pods: reflect(connector, Kind::Pod, None).await?,
        burst: options.burst_replicas.max(1),
    };
    drive(&mut controller, options, shutdown).await
}

struct ReplicaSetController {
    client: Client,
    sets: Reflector,
    pods: Reflector,
    burst: usize,
}

impl Controller for ReplicaSetController {
    const NAME: &'static str = NAME;

    fn caches(&mut self) -> (&mut Reflector, &mut Reflector) {
        (&mut self.sets, &mut self.pods)
    }

    fn keys_for(&mut self, cache: usize, change: &Change) -> Vec<Key> {
        let (old, new) = match change {
            Change::Upserted { old, new } => (old.as_deref(), Some(&**new)),
            Change::Deleted(last) => (Some(&**last), None),
            Change::Expired => return Vec::new(),
        };
        if cache == 0 {
            return old
                .or(new)
                .map(super::reflector::key_of)
                .into_iter()
                .collect();
        }
        let mut keys = Vec::new();
        for object in old.into_iter().chain(new) {
            if let Object::Pod(pod) = object {
                self.sets_interested_in(pod, &mut keys);
            }
        }
        keys
    }

    fn all_keys(&self) -> Vec<Key> {
        self.sets.iter().map(super::reflector::key_of).collect()
    }

    async fn reconcile(&mut self, key: &Key) -> Result<Option<Duration>, ClientError> {
        let Some(Object::ReplicaSet(rs)) = self.sets.get(&key.0, &key.1).cloned() else {
            return Ok(None);
        };
        if rs.metadata.is_terminating() {
            return Ok(None);
        }
        self.claim_pods(&rs).await?;
        let more = self.scale(&rs).await?;
        let recheck = self.write_status(&rs).await?;
        if more {
            return Ok(Some(Duration::ZERO));
        }
        Ok(recheck)
    }
}

impl ReplicaSetController {
    /// The ReplicaSets a pod's change may matter to: its controller, or
    /// for an orphan every set whose selector matches it.
    fn sets_interested_in(&self, pod: &Pod, keys: &mut Vec<Key>) {
        let ns = &pod.metadata.namespace;
        match pod.metadata.controller_ref() {
            Some(r) if r.kind == Kind::ReplicaSet => keys.push((ns.clone(), r.name.clone())),
            Some(_) => {}
            None => {
                for set in self.sets.in_namespace(ns) {
                    if let Object::ReplicaSet(rs) = set {
                        if selects(rs, pod) {
                            keys.push((ns.clone(), rs.metadata.name.clone()));
                        }
                    }
                }
            }
        }
    }

    /// The pods `rs` controls, after adopting and releasing.
    fn owned(&self, rs: &ReplicaSet) -> Vec<Pod> {
        self.pods
            .in_namespace(&rs.metadata.namespace)
            .filter_map(|o| match o {
                Object::Pod(p) if controlled_by(p, rs) => Some(p.clone()),
                _ => None,
            })
            .collect()
    }

    async fn claim_pods(&mut self, rs: &ReplicaSet) -> Result<(), ClientError> {
        let mut changes = Vec::new();
        for object in self.pods.in_namespace(&rs.metadata.namespace) {
            let Object::Pod(pod) = object else { continue };
            if pod.metadata.is_terminating() {
                continue;
            }
            let matches = selects(rs, pod);
            let mut pod = pod.clone();
            let refs = &mut pod.metadata.owner_references;
            match refs.iter().find(|r| r.controller) {
                Some(r) if r.uid == rs.metadata.uid && !matches => {
                    refs.retain(|r| r.uid != rs.metadata.uid);
                    changes.push(("released", pod));
                }
                None if matches => {
                    refs.push(controller_ref(rs));
                    changes.push(("adopted", pod));
                }
                _ => {}
            }
        }
        for (what, pod) in changes {
            let updated = self.client.update(Object::Pod(pod)).await?;
            tracing::info!(replicaset = %rs.metadata.name, namespace = %rs.metadata.namespace,
                pod = %updated.metadata().name, "{what} pod");
            self.pods.record(updated);
        }
        Ok(())
    }

    /// Create or delete pods towards `spec.replicas`; true if more are
    /// left for the next round (a burst's worth at a time).
    async fn scale(&mut self, rs: &ReplicaSet) -> Result<bool, ClientError> {
        let mut active: Vec<Pod> = self.owned(rs).into_iter().filter(is_active).collect();
        let want = usize::try_from(rs.desired_replicas()).unwrap_or(0);
        let (ns, name) = (&rs.metadata.namespace, &rs.metadata.name);
        if active.len() < want {
            let missing = want - active.len();
            let n = missing.min(self.burst);
            for _ in 0..n {
                let created = self
                    .client
                    .create(Object::Pod(pod_from_template(rs)))
                    .await?;
                tracing::info!(replicaset = %name, namespace = %ns,
                    pod = %created.metadata().name, "created pod");
                self.pods.record(created);
            }
            return Ok(missing > n);
        }
        let extra = active.len() - want;
        let n = extra.min(self.burst);
        active.sort_by_key(deletion_rank);
        for pod in active.iter().take(n) {
            if delete_pod(&self.client, &mut self.pods, pod, true).await? {
                tracing::info!(replicaset = %name, namespace = %ns,
                    pod = %pod.metadata.name, "deleted pod (scaling down)");
            }
        }
        Ok(extra > n)
    }

    async fn write_status(&mut self, rs: &ReplicaSet) -> Result<Option<Duration>, ClientError> {
        let owned = self.owned(rs);
        let (status, recheck) = replica_status(rs, &owned, Time::now());
        if status != rs.status {
            let mut next = rs.clone();
            next.status = status;
            let updated = self.client.update_status(Object::ReplicaSet(next)).await?;
            self.sets.record(updated);
        }
        Ok(recheck)
    }
}

/// Whether `rs`'s selector (never an empty one) matches `pod`.
fn selects(rs: &ReplicaSet, pod: &Pod) -> bool {
    !rs.spec.selector.is_empty() && rs.spec.selector.matches(&pod.metadata.labels)
}

fn controlled_by(pod: &Pod, rs: &ReplicaSet) -> bool {
    pod.metadata
        .controller_ref()
        .is_some_and(|r| r.uid == rs.metadata.uid)
}

/// Counts towards the replicas: not being deleted, not finished.
pub fn is_active(pod: &Pod) -> bool {
    !pod.metadata.is_terminating() && !pod.status.phase.is_terminal()
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .condition(PodConditionType::Ready)
        .is_some_and(|c| c.status == ConditionStatus::True)
}

/// The reference a pod of `rs` carries to it.
pub fn controller_ref(rs: &ReplicaSet) -> OwnerReference {
    OwnerReference {
        api_version: Kind::ReplicaSet.api_version().into(),
        kind: Kind::ReplicaSet,
        name: rs.metadata.name.clone(),
        uid: rs.metadata.uid.clone(),
        controller: true,
        block_owner_deletion: true,
    }
}

/// A new pod from `rs`'s template.
pub fn pod_from_template(rs: &ReplicaSet) -> Pod {
    let template = &rs.spec.template;
    let mut prefix: String = rs.metadata.name.chars().take(MAX_PREFIX - 1).collect();
    prefix.push('-');
    Pod {
        metadata: ObjectMeta {
            generate_name: prefix,
            namespace: rs.metadata.namespace.clone(),
            labels: template.metadata.labels.clone(),
            annotations: template.metadata.annotations.clone(),
            owner_references: vec![controller_ref(rs)],
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        ..Pod::default()
    }
}

/// Which pods go first when scaling down: not yet on a node, then by
/// phase (Pending, Unknown, Running), not ready before ready, more
/// restarts first, then the newest.
pub fn deletion_rank(pod: &Pod) -> impl Ord {
    let phase = match pod.status.phase {
        PodPhase::Pending => 0,
        PodPhase::Unknown => 1,
        _ => 2,
    };
    let restarts: i32 = pod
        .status
        .container_statuses
        .iter()
        .map(|c| c.restart_count)
        .sum();
    let created = pod
        .metadata
        .creation_timestamp
        .map_or(i64::MIN, |t| t.unix_millis());
    (
        !pod.spec.node_name.is_empty(),
        phase,
        is_ready(pod),
        Reverse(restarts),
        Reverse(created),
    )
}

/// The status `rs` should show for the pods it controls at `now`, and
/// when to look again for a ready pod that is not yet available.
pub fn replica_status(
    rs: &ReplicaSet,
    owned: &[Pod],
    now: Time,
) -> (ReplicaSetStatus, Option<Duration>) {
    let min_ready_ms = i64::from(rs.spec.min_ready_seconds.max(0)) * 1000;
    let mut status = ReplicaSetStatus {
        observed_generation: rs.metadata.generation,
        ..ReplicaSetStatus::default()
    };
    let mut recheck: Option<i64> = None;
    let template_labels = &rs.spec.template.metadata.labels;
    for pod in owned.iter().filter(|p| is_active(p)) {
        status.replicas += 1;
        let labels = &pod.metadata.labels;
        if template_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
        {
            status.fully_labeled_replicas += 1;
        }
        let Some(ready) = pod
            .status
            .condition(PodConditionType::Ready)
            .filter(|c| c.status == ConditionStatus::True)
        else {
            continue;
        };
        status.ready_replicas += 1;
        let since = ready
            .last_transition_time
            .map_or(i64::MAX, |t| now.unix_millis() - t.unix_millis());
        if min_ready_ms == 0 || since >= min_ready_ms {
            status.available_replicas += 1;
        } else {
            let left = min_ready_ms - since;
            recheck = Some(recheck.map_or(left, |r| r.min(left)));
        }
    }
    let recheck = recheck.map(|ms| Duration::from_millis(ms.max(1) as u64));
    (status, recheck)
}

#[cfg(test)]
mod tests {
    use super::*;
    use noderun_core::{PodCondition, PodSpec, PodTemplateSpec, ReplicaSetSpec};

    fn pod(name: &str, node: &str, phase: PodPhase, ready: Option<i64>, created: i64) -> Pod {
        let mut p = Pod {
            metadata: ObjectMeta::named("default", name),
            spec: PodSpec {
                node_name: node.into(),
                ..PodSpec::default()
            },
            ..Pod::default()
        };
        p.metadata.creation_timestamp = Some(Time::from_unix(created, 0));
        p.status.phase = phase;
        if let Some(at) = ready {
            p.status.conditions.push(PodCondition {
                type_: PodConditionType::Ready,
                status: ConditionStatus::True,
                last_transition_time: Some(Time::from_unix(at, 0)),
                ..PodCondition::default()
            });
        }
        p
    }

    #[test]
    fn scale_down_takes_unscheduled_pending_unready_then_newest() {
        let mut pods = [
            pod("running-ready-old", "n1", PodPhase::Running, Some(1), 1),
            pod("running-ready-new", "n1", PodPhase::Running, Some(1), 5),
            pod("running-unready", "n1", PodPhase::Running, None, 2),
            pod("pending-bound", "n1", PodPhase::Pending, None, 3),
            pod("unscheduled", "", PodPhase::Pending, None, 4),
        ];
        pods.sort_by_key(deletion_rank);
        let order: Vec<_> = pods.iter().map(|p| p.metadata.name.as_str()).collect();
        assert_eq!(
            order,
            [
                "unscheduled",
                "pending-bound",
                "running-unready",
                "running-ready-new",
                "running-ready-old"
            ]
        );
    }

    #[test]
    fn status_counts_active_ready_and_available() {
        let labels: noderun_core::Labels = [("app".to_string(), "web".to_string())].into();
        let mut rs = ReplicaSet {
            metadata: ObjectMeta::named("default", "web"),
            spec: ReplicaSetSpec {
                replicas: Some(3),
                min_ready_seconds: 10,
                template: PodTemplateSpec {
                    metadata: ObjectMeta {
                        labels: labels.clone(),
                        ..ObjectMeta::default()
                    },
                    ..PodTemplateSpec::default()
                },
                ..ReplicaSetSpec::default()
            },
            ..ReplicaSet::default()
        };
        rs.metadata.generation = 4;
        let mut pods = vec![
            pod("a", "n1", PodPhase::Running, Some(100), 1),
            pod("b", "n1", PodPhase::Running, Some(195), 1),
            pod("c", "n1", PodPhase::Running, None, 1),
            pod("failed", "n1", PodPhase::Failed, None, 1),
        ];
        pods[0].metadata.labels = labels;
        let mut gone = pod("gone", "n1", PodPhase::Running, Some(1), 1);
        gone.metadata.deletion_timestamp = Some(Time::from_unix(150, 0));
        pods.push(gone);
        let (status, recheck) = replica_status(&rs, &pods, Time::from_unix(200, 0));
        assert_eq!(
            status,
            ReplicaSetStatus {
                replicas: 3,
                fully_labeled_replicas: 1,
                ready_replicas: 2,
                available_replicas: 1,
                observed_generation: 4,
            }
        );
        assert_eq!(recheck, Some(Duration::from_secs(5)));
    }

    #[test]
    fn template_pods_are_owned_and_named_after_the_set() {
        let mut rs = ReplicaSet {
            metadata: ObjectMeta::named("ns", &"x".repeat(63)),
            ..ReplicaSet::default()
        };
        rs.metadata.uid = "u1".into();
        let p = pod_from_template(&rs);
        assert_eq!(p.metadata.generate_name.len(), MAX_PREFIX);
        assert!(p.metadata.generate_name.ends_with('-'));
        let owner = p.metadata.controller_ref().unwrap();
        assert_eq!((owner.uid.as_str(), owner.kind), ("u1", Kind::ReplicaSet));
    }
}
