//! Test support for the validation modules: realistic valid objects to
//! break one field at a time, and the assertion the case tables use.

use super::field::{FieldErrorType, FieldErrors};
use crate::model::*;
use alloc::string::ToString;
use alloc::vec;

/// What a case expects: no error, or one error at a field of a type.
pub(crate) type Want = Option<(&'static str, FieldErrorType)>;

/// `Ok` when `want` is `None`; otherwise exactly one error, at `want`'s
/// field and of its type.
#[track_caller]
pub(crate) fn expect(case: &str, result: Result<(), FieldErrors>, want: Want) {
    match (result, want) {
        (Ok(()), None) => {}
        (Err(errs), None) => panic!("{case}: expected no errors, got: {errs}"),
        (Ok(()), Some((field, ty))) => panic!("{case}: expected {ty:?} at {field}, got no errors"),
        (Err(errs), Some((field, ty))) => {
            let got: alloc::vec::Vec<_> = errs
                .iter()
                .map(|e| (e.field.as_str(), e.error_type()))
                .collect();
            assert_eq!(got, [(field, ty)], "{case}: errors: {errs}");
        }
    }
}

pub(crate) fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(crate) fn quantity(s: &str) -> Quantity {
    s.parse().expect("test quantity")
}

fn probe() -> Probe {
    Probe {
        http_get: Some(HttpGetAction {
            path: "/healthz".into(),
            port: PortRef::Name("http".into()),
            ..HttpGetAction::default()
        }),
        initial_delay_seconds: 5,
        timeout_seconds: 1,
        period_seconds: 10,
        success_threshold: 1,
        failure_threshold: 3,
        ..Probe::default()
    }
}

/// A web container with ports, env, resources and probes, all valid.
pub(crate) fn web_container(name: &str) -> Container {
    Container {
        name: name.into(),
        image: "nginx:1.27".into(),
        image_pull_policy: Some(PullPolicy::IfNotPresent),
        command: vec!["nginx".into()],
        args: vec!["-g".into(), "daemon off;".into()],
        env: vec![EnvVar {
            name: "MODE".into(),
            value: "prod".into(),
        }],
        working_dir: "/srv".into(),
        resources: ResourceRequirements {
            requests: [("cpu", "250m"), ("memory", "64Mi")]
                .iter()
                .map(|(k, v)| (k.to_string(), quantity(v)))
                .collect(),
            limits: [("cpu", "1"), ("memory", "128Mi")]
                .iter()
                .map(|(k, v)| (k.to_string(), quantity(v)))
                .collect(),
        },
        ports: vec![ContainerPort {
            name: "http".into(),
            container_port: 8080,
            ..ContainerPort::default()
        }],
        liveness_probe: Some(probe()),
        readiness_probe: Some(probe()),
        ..Container::default()
    }
}

pub(crate) fn valid_pod() -> Pod {
    let mut pod = Pod {
        metadata: ObjectMeta::named("default", "web-0"),
        spec: PodSpec {
            init_containers: vec![Container {
                name: "init".into(),
                image: "busybox".into(),
                command: vec!["true".into()],
                ..Container::default()
            }],
            containers: vec![web_container("web"), web_container("sidecar")],
            termination_grace_period_seconds: Some(30),
            node_selector: labels(&[("kubernetes.io/os", "linux")]),
            tolerations: vec![Toleration {
                key: "gpu".into(),
                operator: TolerationOperator::Exists,
                effect: Some(TaintEffect::NoSchedule),
                ..Toleration::default()
            }],
            ..PodSpec::default()
        },
        ..Pod::default()
    };
    pod.metadata.labels = labels(&[("app", "web")]);
    pod.spec.containers[1].ports[0].container_port = 9090;
    pod.spec.containers[1].ports[0].name = "metrics".into();
    pod.spec.containers[1].liveness_probe = None;
    pod.spec.containers[1].readiness_probe = None;
    pod
}

pub(crate) fn valid_node() -> Node {
    let mut node = Node {
        metadata: ObjectMeta::named("", "node-1.example.com"),
        ..Node::default()
    };
    node.spec.pod_cidr = "10.88.1.0/24".into();
    node.spec.pod_cidrs = vec!["10.88.1.0/24".into(), "fd00:88:1::/64".into()];
    node.spec.taints = vec![Taint {
        key: "example.com/gpu".into(),
        value: "true".into(),
        effect: TaintEffect::NoSchedule,
        time_added: None,
    }];
    for (k, v) in [("cpu", "4"), ("memory", "8Gi"), ("pods", "110")] {
        node.status.capacity.insert(k.into(), quantity(v));
        node.status.allocatable.insert(k.into(), quantity(v));
    }
    node.status.addresses = vec![
        NodeAddress {
            type_: NodeAddressType::InternalIp,
            address: "192.168.1.10".into(),
        },
        NodeAddress {
            type_: NodeAddressType::Hostname,
            address: "node-1".into(),
        },
    ];
    node
}

pub(crate) fn valid_replicaset() -> ReplicaSet {
    let pod = valid_pod();
    ReplicaSet {
        metadata: ObjectMeta::named("default", "web"),
        spec: ReplicaSetSpec {
            replicas: Some(3),
            min_ready_seconds: 5,
            selector: LabelSelector::from_labels(labels(&[("app", "web")])),
            template: PodTemplateSpec {
                metadata: ObjectMeta {
                    labels: labels(&[("app", "web"), ("tier", "front")]),
                    ..ObjectMeta::default()
                },
                spec: pod.spec,
            },
        },
        ..ReplicaSet::default()
    }
}
