//! A typical pod (three containers, labels, resources, ports, env, probes,
//! and a status as a node reports it) shared by tests and benchmarks, so
//! size and speed figures are about a realistic object.

use crate::model::*;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

fn list(pairs: &[(&str, &str)]) -> ResourceList {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Quantity::parse(v).expect("sample quantity")))
        .collect()
}

fn container(name: &str, image: &str, port: i32) -> Container {
    Container {
        name: name.into(),
        image: image.into(),
        image_pull_policy: Some(PullPolicy::IfNotPresent),
        command: vec!["/bin/server".into()],
        args: vec!["--port".into(), port.to_string(), "--log-level=info".into()],
        env: vec![
            EnvVar {
                name: "MODE".into(),
                value: "production".into(),
            },
            EnvVar {
                name: "CACHE_SIZE".into(),
                value: "256".into(),
            },
        ],
        working_dir: "/srv".into(),
        resources: ResourceRequirements {
            requests: list(&[("cpu", "250m"), ("memory", "128Mi")]),
            limits: list(&[("cpu", "1"), ("memory", "256Mi")]),
        },
        ports: vec![ContainerPort {
            name: "http".into(),
            container_port: port,
            protocol: Protocol::Tcp,
            ..ContainerPort::default()
        }],
        readiness_probe: Some(Probe {
            http_get: Some(HttpGetAction {
                path: "/healthz".into(),
                port: PortRef::Name("http".into()),
                ..HttpGetAction::default()
            }),
            period_seconds: 5,
            timeout_seconds: 1,
            success_threshold: 1,
            failure_threshold: 3,
            ..Probe::default()
        }),
        ..Container::default()
    }
}

fn status(name: &str, restarts: i32) -> ContainerStatus {
    ContainerStatus {
        name: name.into(),
        state: ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(Time::from_unix(1_764_000_000, 0)),
            }),
            ..ContainerState::default()
        },
        ready: true,
        restart_count: restarts,
        image: String::from("registry.local/app:1.4.2"),
        container_id: String::from("noderun://3f9a1c0e5b7d"),
        ..ContainerStatus::default()
    }
}

/// The pod figures in the README are measured on.
pub fn typical_pod() -> Pod {
    let labels: Labels = [("app", "shop"), ("tier", "web"), ("release", "2026-11")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let containers: Vec<Container> = vec![
        container("web", "registry.local/app:1.4.2", 8080),
        container("sidecar", "registry.local/proxy:2.1", 9090),
        container("metrics", "registry.local/exporter:0.9", 9100),
    ];
    Pod {
        metadata: ObjectMeta {
            name: "shop-web-7d9f8".into(),
            namespace: "prod".into(),
            uid: "0b1c9e4e-5d3a-4c61-9a38-2f7e41d0c7aa".into(),
            resource_version: 184_467,
            labels,
            annotations: [(
                "noderun.io/created-by".to_string(),
                "replicaset/shop-web".to_string(),
            )]
            .into(),
            owner_references: vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: Kind::ReplicaSet,
                name: "shop-web".into(),
                uid: "6f0e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b".into(),
                controller: true,
                block_owner_deletion: true,
            }],
            creation_timestamp: Some(Time::from_unix(1_763_999_990, 0)),
            ..ObjectMeta::default()
        },
        spec: PodSpec {
            containers,
            node_name: "node-17".into(),
            termination_grace_period_seconds: Some(30),
            tolerations: vec![Toleration {
                key: "noderun.io/not-ready".into(),
                operator: TolerationOperator::Exists,
                effect: Some(TaintEffect::NoExecute),
                toleration_seconds: Some(300),
                ..Toleration::default()
            }],
            ..PodSpec::default()
        },
        status: PodStatus {
            phase: PodPhase::Running,
            conditions: vec![PodCondition {
                type_: PodConditionType::Ready,
                status: ConditionStatus::True,
                last_transition_time: Some(Time::from_unix(1_764_000_002, 0)),
                ..PodCondition::default()
            }],
            host_ip: "192.0.2.17".into(),
            pod_ip: "10.88.17.42".into(),
            start_time: Some(Time::from_unix(1_763_999_991, 0)),
            container_statuses: vec![status("web", 0), status("sidecar", 0), status("metrics", 1)],
            qos_class: Some(QosClass::Burstable),
            ..PodStatus::default()
        },
    }
}
