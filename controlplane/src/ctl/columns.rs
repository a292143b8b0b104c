//! The columns `ctl get` shows for each kind, as kubectl shows them:
//! pods (name, ready, status, restarts, age; wide adds IP and node),
//! nodes (name, status, age; wide adds the internal IP and pod CIDR),
//! ReplicaSets (name, desired, current, ready, age; wide adds the
//! selector), namespaces and leases (name, age; leases add the holder).

use noderun_core::{
    ConditionStatus, Kind, Node, NodeAddressType, NodeConditionType, Object, Pod, ReplicaSet, Time,
};

/// The header of `kind`'s table (namespace first when `all_namespaces`).
pub fn header(kind: Kind, wide: bool, all_namespaces: bool) -> Vec<&'static str> {
    let mut h: Vec<&str> = match kind {
        Kind::Pod => vec!["name", "ready", "status", "restarts", "age"],
        Kind::Node => vec!["name", "status", "age"],
        Kind::ReplicaSet => vec!["name", "desired", "current", "ready", "age"],
        Kind::Lease => vec!["name", "holder", "age"],
        Kind::Namespace => vec!["name", "status", "age"],
    };
    if wide {
        h.extend(match kind {
            Kind::Pod => &["ip", "node"][..],
            Kind::Node => &["internal-ip", "pod-cidr"][..],
            Kind::ReplicaSet => &["selector"][..],
            Kind::Lease | Kind::Namespace => &[][..],
        });
    }
    if all_namespaces && kind.is_namespaced() {
        h.insert(0, "namespace");
    }
    h
}

/// One row of `object` under [`header`].
pub fn row(object: &Object, wide: bool, all_namespaces: bool, now: Time) -> Vec<String> {
    let meta = object.metadata();
    let age = age(meta.creation_timestamp, now);
    let mut r = vec![meta.name.clone()];
    match object {
        Object::Pod(p) => {
            r.extend([ready(p), pod_status(p), restarts(p), age]);
            if wide {
                r.extend([or_none(&p.status.pod_ip), or_none(&p.spec.node_name)]);
            }
        }
        Object::Node(n) => {
            r.extend([node_status(n), age]);
            if wide {
                let ip = n
                    .status
                    .addresses
                    .iter()
                    .find(|a| a.type_ == NodeAddressType::InternalIp)
                    .map(|a| a.address.clone())
                    .unwrap_or_default();
                r.extend([or_none(&ip), or_none(&n.spec.pod_cidr)]);
            }
        }
        Object::ReplicaSet(rs) => {
            r.extend(replicas(rs));
            r.push(age);
            if wide {
                r.push(rs.spec.selector.to_string());
            }
        }
        Object::Lease(l) => r.extend([or_none(&l.spec.holder_identity), age]),
        Object::Namespace(ns) => {
            let status = if ns.metadata.is_terminating() {
                "Terminating"
            } else {
                "Active"
            };
            r.extend([status.to_owned(), age]);
        }
    }
    if all_namespaces && object.kind().is_namespaced() {
        r.insert(0, meta.namespace.clone());
    }
    r
}

fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".into()
    } else {
        s.to_owned()
    }
}

fn ready(p: &Pod) -> String {
    let ready = p
        .status
        .container_statuses
        .iter()
        .filter(|c| c.ready)
        .count();
    format!("{ready}/{}", p.spec.containers.len())
}

fn restarts(p: &Pod) -> String {
    let n: i64 = p
        .status
        .container_statuses
        .iter()
        .map(|c| i64::from(c.restart_count))
        .sum();
    n.to_string()
}

/// kubectl's STATUS: Terminating, the init containers' progress while
/// they run, a container's waiting or terminated reason, else the phase.
fn pod_status(p: &Pod) -> String {
    if p.metadata.is_terminating() {
        return "Terminating".into();
    }
    if !p.status.reason.is_empty() {
        return p.status.reason.clone();
    }
    if let Some(init) = init_status(p) {
        return init;
    }
    for c in &p.status.container_statuses {
        if let Some(w) = c.state.waiting.as_ref().filter(|w| !w.reason.is_empty()) {
            return w.reason.clone();
        }
        if let Some(t) = c.state.terminated.as_ref().filter(|t| !t.reason.is_empty()) {
            return t.reason.clone();
        }
    }
    format!("{:?}", p.status.phase)
}

/// While an init container has not completed, as kubectl shows it:
/// `Init:<reason>` for a failed one or one waiting for a reason (such as
/// CrashLoopBackOff), else `Init:<completed>/<all>`.
fn init_status(p: &Pod) -> Option<String> {
    let all = p.spec.init_containers.len();
    for (done, c) in p.status.init_container_statuses.iter().enumerate() {
        if let Some(t) = &c.state.terminated {
            if t.exit_code == 0 {
                continue;
            }
            return Some(if t.reason.is_empty() {
                format!("Init:ExitCode:{}", t.exit_code)
            } else {
                format!("Init:{}", t.reason)
            });
        }
        if let Some(w) = c
            .state
            .waiting
            .as_ref()
            .filter(|w| !w.reason.is_empty() && w.reason != "PodInitializing")
        {
            return Some(format!("Init:{}", w.reason));
        }
        return Some(format!("Init:{done}/{all}"));
    }
    None
}

fn node_status(n: &Node) -> String {
    let ready = n.status.condition(NodeConditionType::Ready);
    let mut s = match ready.map(|c| c.status) {
        Some(ConditionStatus::True) => "Ready".to_owned(),
        Some(ConditionStatus::False) => "NotReady".to_owned(),
        _ => "Unknown".to_owned(),
    };
    if n.spec.unschedulable {
        s.push_str(",SchedulingDisabled");
    }
    s
}

fn replicas(rs: &ReplicaSet) -> [String; 3] {
    [
        rs.desired_replicas().to_string(),
        rs.status.replicas.to_string(),
        rs.status.ready_replicas.to_string(),
    ]
}

/// kubectl's AGE: `45s`, `12m`, `5h`, `3d`, `<unknown>` without a time.
pub fn age(created: Option<Time>, now: Time) -> String {
    let Some(created) = created else {
        return "<unknown>".into();
    };
    let s = now.secs_since(&created).max(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use noderun_core::proto::sample::typical_pod;

    #[test]
    fn ages() {
        let t0 = Time::from_unix(1_000_000, 0);
        let cases = [
            (5, "5s"),
            (119, "119s"),
            (600, "10m"),
            (7200, "2h"),
            (3 * 86_400, "3d"),
        ];
        for (secs, want) in cases {
            assert_eq!(age(Some(t0), t0.add_secs(secs)), want);
        }
        assert_eq!(age(None, t0), "<unknown>");
    }

    #[test]
    fn init_containers_show_like_kubectl() {
        use noderun_core::{
            Container, ContainerState, ContainerStateTerminated, ContainerStateWaiting,
            ContainerStatus,
        };
        let waiting = |reason: &str| ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: reason.into(),
                message: String::new(),
            }),
            ..ContainerState::default()
        };
        let exited = |code: i32, reason: &str| ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: code,
                reason: reason.into(),
                ..ContainerStateTerminated::default()
            }),
            ..ContainerState::default()
        };
        let running = ContainerState {
            running: Some(Default::default()),
            ..ContainerState::default()
        };
        let mut pod = Pod::default();
        pod.spec.init_containers = vec![Container::default(), Container::default()];
        pod.spec.containers = vec![Container::default()];
        let status = |init: [ContainerState; 2], app: ContainerState| {
            let mut p = pod.clone();
            let s = |state| ContainerStatus {
                state,
                ..ContainerStatus::default()
            };
            p.status.init_container_statuses = init.into_iter().map(s).collect();
            p.status.container_statuses = vec![s(app)];
            pod_status(&p)
        };
        let init = waiting("PodInitializing");
        let cases = [
            (
                status([running.clone(), init.clone()], init.clone()),
                "Init:0/2",
            ),
            (
                status([exited(0, "Completed"), running.clone()], init.clone()),
                "Init:1/2",
            ),
            (
                status([exited(0, "Completed"), exited(1, "Error")], init.clone()),
                "Init:Error",
            ),
            (
                status(
                    [exited(0, "Completed"), waiting("CrashLoopBackOff")],
                    init.clone(),
                ),
                "Init:CrashLoopBackOff",
            ),
            (
                status([exited(0, "Completed"), exited(2, "")], init.clone()),
                "Init:ExitCode:2",
            ),
            (
                status([exited(0, "Completed"), exited(0, "Completed")], init),
                "PodInitializing",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn pod_rows_match_their_header() {
        let pod = Object::Pod(typical_pod());
        let now = Time::from_unix(1_764_000_000, 0);
        for (wide, all) in [(false, false), (true, false), (true, true)] {
            let h = header(Kind::Pod, wide, all);
            let r = row(&pod, wide, all, now);
            assert_eq!(h.len(), r.len(), "wide={wide} all={all}");
        }
        let r = row(&pod, true, true, now);
        assert_eq!(
            r,
            [
                "prod",
                "shop-web-7d9f8",
                "3/3",
                "Running",
                "1",
                "10s",
                "10.88.17.42",
                "node-17"
            ]
        );
    }
}
