//! `ctl describe`: one object as a person reads it, in kubectl's layout —
//! `Field:` labels padded to one column, nested lists indented — rather
//! than the full manifest `get -o yaml` prints.

use super::columns::age;
use noderun_core::{
    Container, ContainerState, Labels, Node, NodeConditionType, Object, ObjectMeta, Pod,
    ReplicaSet, Time,
};
use std::fmt::Write;

/// The description of `object` at `now`.
pub fn describe(object: &Object, now: Time) -> String {
    let mut d = Description::default();
    meta(&mut d, object.metadata(), now);
    match object {
        Object::Pod(p) => pod(&mut d, p),
        Object::Node(n) => node(&mut d, n),
        Object::ReplicaSet(rs) => replicaset(&mut d, rs),
        Object::Lease(l) => {
            d.field(0, "Holder", &l.spec.holder_identity);
            d.field(
                0,
                "Duration",
                &format!("{}s", l.spec.lease_duration_seconds),
            );
            d.field(0, "Renewed", &time(l.spec.renew_time, now));
        }
        Object::Namespace(ns) => d.field(0, "Status", &format!("{:?}", ns.status.phase)),
    }
    d.text
}

#[derive(Default)]
struct Description {
    text: String,
}

impl Description {
    /// `Label:` padded to 18 columns at `depth` (two spaces a level).
    fn field(&mut self, depth: usize, label: &str, value: &str) {
        let indent = "  ".repeat(depth);
        let value = if value.is_empty() { "<none>" } else { value };
        let label = format!("{label}:");
        let _ = writeln!(self.text, "{indent}{label:<18}{value}");
    }

    fn heading(&mut self, depth: usize, label: &str) {
        let _ = writeln!(self.text, "{}{label}:", "  ".repeat(depth));
    }
}

fn time(t: Option<Time>, now: Time) -> String {
    match t {
        Some(t) => format!("{t} ({} ago)", age(Some(t), now)),
        None => String::new(),
    }
}

fn labels(l: &Labels) -> String {
    l.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn meta(d: &mut Description, m: &ObjectMeta, now: Time) {
    d.field(0, "Name", &m.name);
    if !m.namespace.is_empty() {
        d.field(0, "Namespace", &m.namespace);
    }
    d.field(0, "Labels", &labels(&m.labels));
    d.field(0, "Created", &time(m.creation_timestamp, now));
    if let Some(owner) = m.controller_ref() {
        d.field(
            0,
            "Controlled By",
            &format!("{}/{}", owner.kind, owner.name),
        );
    }
    if m.is_terminating() {
        let grace = m.deletion_grace_period_seconds.unwrap_or_default();
        d.field(
            0,
            "Terminating",
            &format!(
                "since {} (grace period {grace}s)",
                time(m.deletion_timestamp, now)
            ),
        );
    }
}

fn state(s: &ContainerState) -> String {
    if let Some(w) = &s.waiting {
        return format!("Waiting ({})", w.reason);
    }
    if let Some(t) = &s.terminated {
        return format!("Terminated ({}, exit code {})", t.reason, t.exit_code);
    }
    if s.running.is_some() {
        return "Running".into();
    }
    String::new()
}

fn container(d: &mut Description, c: &Container, p: &Pod) {
    d.heading(1, &c.name);
    d.field(2, "Image", &c.image);
    d.field(2, "Command", &c.command.join(" "));
    d.field(2, "Args", &c.args.join(" "));
    // Names are unique across init and app containers.
    if let Some(s) = p
        .status
        .init_container_statuses
        .iter()
        .chain(&p.status.container_statuses)
        .find(|s| s.name == c.name)
    {
        d.field(2, "State", &state(&s.state));
        d.field(2, "Ready", &s.ready.to_string());
        d.field(2, "Restart Count", &s.restart_count.to_string());
    }
}

fn pod(d: &mut Description, p: &Pod) {
    d.field(0, "Node", &p.spec.node_name);
    d.field(0, "Status", &format!("{:?}", p.status.phase));
    d.field(0, "Reason", &p.status.reason);
    if !p.status.message.is_empty() {
        d.field(0, "Message", &p.status.message);
    }
    d.field(0, "IP", &p.status.pod_ip);
    if !p.spec.init_containers.is_empty() {
        d.heading(0, "Init Containers");
        for c in &p.spec.init_containers {
            container(d, c, p);
        }
    }
    d.heading(0, "Containers");
    for c in &p.spec.containers {
        container(d, c, p);
    }
    if !p.status.conditions.is_empty() {
        d.heading(0, "Conditions");
        for c in &p.status.conditions {
            d.field(1, &format!("{:?}", c.type_), &format!("{:?}", c.status));
        }
    }
}

fn node(d: &mut Description, n: &Node) {
    d.field(0, "Pod CIDR", &n.spec.pod_cidr);
    d.field(0, "Unschedulable", &n.spec.unschedulable.to_string());
    let taints: Vec<String> = n
        .spec
        .taints
        .iter()
        .map(|t| format!("{}={}:{:?}", t.key, t.value, t.effect))
        .collect();
    d.field(0, "Taints", &taints.join(", "));
    d.heading(0, "Conditions");
    for c in &n.status.conditions {
        d.field(
            1,
            condition_name(c.type_),
            &format!("{:?} {}", c.status, c.reason),
        );
    }
    for (heading, list) in [
        ("Capacity", &n.status.capacity),
        ("Allocatable", &n.status.allocatable),
    ] {
        d.heading(0, heading);
        for (resource, amount) in list {
            d.field(1, resource, &amount.to_string());
        }
    }
    d.heading(0, "Addresses");
    for a in &n.status.addresses {
        d.field(1, &format!("{:?}", a.type_), &a.address);
    }
    let info = &n.status.node_info;
    d.heading(0, "System Info");
    d.field(1, "Kernel Version", &info.kernel_version);
    d.field(1, "OS Image", &info.os_image);
    d.field(1, "Architecture", &info.architecture);
    d.field(1, "Agent Version", &info.agent_version);
}

/// A node condition's type as the API spells it.
fn condition_name(type_: NodeConditionType) -> &'static str {
    match type_ {
        NodeConditionType::Ready => "Ready",
        NodeConditionType::MemoryPressure => "MemoryPressure",
        NodeConditionType::DiskPressure => "DiskPressure",
        NodeConditionType::PidPressure => "PIDPressure",
        NodeConditionType::NetworkUnavailable => "NetworkUnavailable",
    }
}

fn replicaset(d: &mut Description, rs: &ReplicaSet) {
    d.field(0, "Selector", &rs.spec.selector.to_string());
    let s = &rs.status;
    d.field(
        0,
        "Replicas",
        &format!(
            "{} current / {} desired ({} ready)",
            s.replicas,
            rs.desired_replicas(),
            s.ready_replicas
        ),
    );
    d.heading(0, "Pod Template");
    d.field(1, "Labels", &labels(&rs.spec.template.metadata.labels));
    for c in &rs.spec.template.spec.containers {
        d.heading(1, &c.name);
        d.field(2, "Image", &c.image);
        d.field(2, "Command", &c.command.join(" "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use noderun_core::proto::sample::typical_pod;

    #[test]
    fn a_pod_reads_like_kubectl_describe() {
        let now = Time::from_unix(1_764_000_000, 0);
        let text = describe(&Object::Pod(typical_pod()), now);
        let want = [
            "Name:             shop-web-7d9f8",
            "Namespace:        prod",
            "Controlled By:    ReplicaSet/shop-web",
            "Node:             node-17",
            "Status:           Running",
            "IP:               10.88.17.42",
            "Containers:",
            "  web:",
            "    Image:            registry.local/app:1.4.2",
            "    State:            Running",
            "    Restart Count:    0",
            "Conditions:",
            "  Ready:            True",
        ];
        for line in want {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn init_containers_show_their_own_state() {
        use noderun_core::{ContainerState, ContainerStateTerminated, ContainerStatus};
        let mut pod = typical_pod();
        pod.spec.init_containers = vec![Container {
            name: "setup".into(),
            image: "busybox".into(),
            ..Container::default()
        }];
        pod.status.init_container_statuses = vec![ContainerStatus {
            name: "setup".into(),
            ready: true,
            state: ContainerState {
                terminated: Some(ContainerStateTerminated {
                    reason: "Completed".into(),
                    ..ContainerStateTerminated::default()
                }),
                ..ContainerState::default()
            },
            ..ContainerStatus::default()
        }];
        let text = describe(&Object::Pod(pod), Time::from_unix(1_764_000_000, 0));
        let init = text
            .split("Init Containers:")
            .nth(1)
            .and_then(|rest| rest.split("Containers:").next())
            .unwrap_or_default();
        assert!(
            init.contains("State:            Terminated (Completed, exit code 0)"),
            "{text}"
        );
    }

    #[test]
    fn a_node_shows_its_pressure_and_allocatable() {
        use noderun_core::{ConditionStatus, NodeCondition, Quantity};
        let mut node = Node::default();
        node.metadata.name = "n1".into();
        node.status.conditions = vec![NodeCondition {
            type_: NodeConditionType::PidPressure,
            status: ConditionStatus::True,
            reason: "KubeletHasInsufficientPID".into(),
            ..NodeCondition::default()
        }];
        node.status.capacity = [("memory".to_string(), Quantity::from_bytes(2 << 30))].into();
        node.status.allocatable = [("memory".to_string(), Quantity::from_bytes(1 << 30))].into();
        let text = describe(&Object::Node(node), Time::from_unix(1_764_000_000, 0));
        for line in [
            "  PIDPressure:      True KubeletHasInsufficientPID",
            "Capacity:",
            "  memory:           2Gi",
            "Allocatable:",
            "  memory:           1Gi",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        let mut pod = typical_pod();
        pod.status.reason = "Evicted".into();
        pod.status.message = "The node was low on resource: memory. ".into();
        let text = describe(&Object::Pod(pod), Time::from_unix(1_764_000_000, 0));
        assert!(
            text.contains("Message:          The node was low on resource: memory."),
            "{text}"
        );
    }
}
