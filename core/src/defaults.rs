//! Defaulting: the values the apiserver fills in before validation, the
//! ones Kubernetes fills for the same fields (namespace `default`, a 30 s
//! grace period, the image pull policy from the tag, probe timings,
//! requests from limits, one replica, ...). Defaulting only fills what is
//! unset; it never overrides what a user wrote, so applying it twice
//! changes nothing the second time. Fields whose type already defaults to
//! the Kubernetes value (restart policy Always, port protocol TCP, probe
//! scheme HTTP) need nothing here.

use crate::image_ref::{ImageRef, DEFAULT_TAG};
use crate::model::{
    Container, Kind, Lease, Node, Object, ObjectMeta, Pod, PodSpec, Probe, PullPolicy, ReplicaSet,
};

/// The namespace of namespaced objects created without one.
pub const DEFAULT_NAMESPACE: &str = "default";
/// Seconds between SIGTERM and SIGKILL when a pod does not say.
pub const DEFAULT_TERMINATION_GRACE_SECONDS: i64 = 30;
/// A held lease's duration when its holder does not say.
pub const DEFAULT_LEASE_DURATION_SECONDS: i32 = 40;
/// Probe timings: timeout, period, success and failure thresholds.
pub const DEFAULT_PROBE_TIMEOUT_SECONDS: i32 = 1;
pub const DEFAULT_PROBE_PERIOD_SECONDS: i32 = 10;
pub const DEFAULT_PROBE_SUCCESS_THRESHOLD: i32 = 1;
pub const DEFAULT_PROBE_FAILURE_THRESHOLD: i32 = 3;

/// Fill every unset field of `obj` that has a default.
pub fn apply_defaults(obj: &mut Object) {
    match obj {
        Object::Namespace(ns) => default_metadata(Kind::Namespace, &mut ns.metadata),
        Object::Pod(pod) => default_pod(pod),
        Object::Node(node) => default_node(node),
        Object::ReplicaSet(rs) => default_replicaset(rs),
        Object::Lease(lease) => default_lease(lease),
    }
}

/// Namespaced kinds land in `default` when created without a namespace.
pub fn default_metadata(kind: Kind, meta: &mut ObjectMeta) {
    if kind.is_namespaced() && meta.namespace.is_empty() {
        meta.namespace = DEFAULT_NAMESPACE.into();
    }
}

pub fn default_pod(pod: &mut Pod) {
    default_metadata(Kind::Pod, &mut pod.metadata);
    default_pod_spec(&mut pod.spec);
}

/// The grace period, and each container (init containers included).
pub fn default_pod_spec(spec: &mut PodSpec) {
    spec.termination_grace_period_seconds
        .get_or_insert(DEFAULT_TERMINATION_GRACE_SECONDS);
    let host_network = spec.host_network;
    for c in spec.init_containers.iter_mut().chain(&mut spec.containers) {
        default_container(c, host_network);
    }
}

/// The pull policy Kubernetes picks for `image`: Always for `:latest` (or
/// no tag and no digest, which means `:latest`), IfNotPresent otherwise.
pub fn pull_policy_for(image: &str) -> PullPolicy {
    match ImageRef::parse(image) {
        Ok(r) if r.tag() == Some(DEFAULT_TAG) => PullPolicy::Always,
        _ => PullPolicy::IfNotPresent,
    }
}

/// Pull policy, requests from limits, probe timings, and with the host's
/// network each host port equal to its container port.
pub fn default_container(c: &mut Container, host_network: bool) {
    if c.image_pull_policy.is_none() {
        c.image_pull_policy = Some(pull_policy_for(&c.image));
    }
    // A resource with a limit and no request requests its limit.
    for (name, limit) in &c.resources.limits {
        if !c.resources.requests.contains_key(name) {
            c.resources.requests.insert(name.clone(), *limit);
        }
    }
    if host_network {
        for p in &mut c.ports {
            if p.host_port == 0 {
                p.host_port = p.container_port;
            }
        }
    }
    let probes = [
        &mut c.liveness_probe,
        &mut c.readiness_probe,
        &mut c.startup_probe,
    ];
    for probe in probes.into_iter().flatten() {
        default_probe(probe);
    }
}

/// Timings left at zero take Kubernetes' values; an HTTP probe without a
/// path asks for `/`. The initial delay stays 0 (no delay).
pub fn default_probe(p: &mut Probe) {
    let fill = |field: &mut i32, value: i32| {
        if *field == 0 {
            *field = value;
        }
    };
    fill(&mut p.timeout_seconds, DEFAULT_PROBE_TIMEOUT_SECONDS);
    fill(&mut p.period_seconds, DEFAULT_PROBE_PERIOD_SECONDS);
    fill(&mut p.success_threshold, DEFAULT_PROBE_SUCCESS_THRESHOLD);
    fill(&mut p.failure_threshold, DEFAULT_PROBE_FAILURE_THRESHOLD);
    if let Some(http) = &mut p.http_get {
        if http.path.is_empty() {
            http.path = "/".into();
        }
    }
}

/// `podCIDR` and `podCIDRs` describe the same ranges: fill whichever is
/// missing from the other.
pub fn default_node(node: &mut Node) {
    default_metadata(Kind::Node, &mut node.metadata);
    let spec = &mut node.spec;
    if spec.pod_cidrs.is_empty() && !spec.pod_cidr.is_empty() {
        spec.pod_cidrs.push(spec.pod_cidr.clone());
    } else if spec.pod_cidr.is_empty() {
        if let Some(first) = spec.pod_cidrs.first() {
            spec.pod_cidr.clone_from(first);
        }
    }
}

/// One replica, a selector from the template's labels when none is given,
/// and the template's pod spec defaults.
pub fn default_replicaset(rs: &mut ReplicaSet) {
    default_metadata(Kind::ReplicaSet, &mut rs.metadata);
    rs.spec.replicas.get_or_insert(1);
    if rs.spec.selector.is_empty() {
        rs.spec.selector.match_labels = rs.spec.template.metadata.labels.clone();
    }
    default_pod_spec(&mut rs.spec.template.spec);
}

/// A held lease without a duration gets the default one.
pub fn default_lease(lease: &mut Lease) {
    default_metadata(Kind::Lease, &mut lease.metadata);
    if !lease.spec.holder_identity.is_empty() && lease.spec.lease_duration_seconds == 0 {
        lease.spec.lease_duration_seconds = DEFAULT_LEASE_DURATION_SECONDS;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        ContainerPort, HttpGetAction, LabelSelector, Namespace, PodTemplateSpec, PortRef, Quantity,
        ReplicaSetSpec, TcpSocketAction,
    };
    use crate::validate::validate_object;
    use alloc::string::ToString;
    use alloc::vec;
    use alloc::vec::Vec;

    fn container(image: &str) -> Container {
        Container {
            name: "app".into(),
            image: image.into(),
            ..Container::default()
        }
    }

    fn minimal_pod() -> Pod {
        Pod {
            metadata: ObjectMeta::named("", "web"),
            spec: PodSpec {
                containers: vec![container("busybox")],
                ..PodSpec::default()
            },
            ..Pod::default()
        }
    }

    #[test]
    fn pull_policy_follows_the_tag() {
        let digest = ["busybox@sha256:", &"a".repeat(64)].concat();
        let cases = [
            ("busybox", PullPolicy::Always),
            ("busybox:latest", PullPolicy::Always),
            ("localhost:5000/app", PullPolicy::Always),
            ("busybox:1.36", PullPolicy::IfNotPresent),
            ("localhost:5000/app:v1", PullPolicy::IfNotPresent),
            (digest.as_str(), PullPolicy::IfNotPresent),
            ("Not An Image", PullPolicy::IfNotPresent),
        ];
        for (image, want) in cases {
            let mut c = container(image);
            default_container(&mut c, false);
            assert_eq!(c.image_pull_policy, Some(want), "{image}");
        }
        let mut explicit = container("busybox");
        explicit.image_pull_policy = Some(PullPolicy::IfNotPresent);
        default_container(&mut explicit, false);
        assert_eq!(explicit.image_pull_policy, Some(PullPolicy::IfNotPresent));
    }

    #[test]
    fn pod_defaults() {
        let mut pod = minimal_pod();
        pod.spec.termination_grace_period_seconds = None;
        default_pod(&mut pod);
        assert_eq!(pod.metadata.namespace, "default");
        assert_eq!(pod.spec.termination_grace_period_seconds, Some(30));
        assert!(pod.spec.hostname.is_empty(), "the node uses the pod name");

        let mut kept = minimal_pod();
        kept.metadata.namespace = "prod".into();
        kept.spec.termination_grace_period_seconds = Some(0);
        default_pod(&mut kept);
        assert_eq!(kept.metadata.namespace, "prod");
        assert_eq!(kept.spec.termination_grace_period_seconds, Some(0));
    }

    #[test]
    fn requests_default_to_limits_per_resource() {
        let q = |s: &str| s.parse::<Quantity>().unwrap();
        let mut c = container("busybox:1");
        c.resources.limits.insert("cpu".into(), q("1"));
        c.resources.limits.insert("memory".into(), q("128Mi"));
        c.resources.requests.insert("cpu".into(), q("250m"));
        default_container(&mut c, false);
        assert_eq!(c.resources.requests["cpu"], q("250m"), "a request is kept");
        assert_eq!(
            c.resources.requests["memory"],
            q("128Mi"),
            "a missing one is the limit"
        );
    }

    #[test]
    fn host_network_host_ports() {
        let mut pod = minimal_pod();
        pod.spec.host_network = true;
        pod.spec.containers[0].ports = vec![
            ContainerPort {
                container_port: 8080,
                ..ContainerPort::default()
            },
            ContainerPort {
                container_port: 9090,
                host_port: 9090,
                ..ContainerPort::default()
            },
        ];
        default_pod(&mut pod);
        let host: Vec<i32> = pod.spec.containers[0]
            .ports
            .iter()
            .map(|p| p.host_port)
            .collect();
        assert_eq!(host, [8080, 9090]);

        let mut pod = minimal_pod();
        pod.spec.containers[0].ports = vec![ContainerPort {
            container_port: 8080,
            ..ContainerPort::default()
        }];
        default_pod(&mut pod);
        assert_eq!(
            pod.spec.containers[0].ports[0].host_port, 0,
            "pod network: not exposed"
        );
    }

    #[test]
    fn probe_defaults() {
        let mut p = Probe {
            http_get: Some(HttpGetAction {
                port: PortRef::Number(80),
                ..HttpGetAction::default()
            }),
            ..Probe::default()
        };
        default_probe(&mut p);
        assert_eq!(
            (
                p.initial_delay_seconds,
                p.timeout_seconds,
                p.period_seconds,
                p.success_threshold,
                p.failure_threshold
            ),
            (0, 1, 10, 1, 3)
        );
        assert_eq!(p.http_get.unwrap().path, "/");

        let mut set = Probe {
            timeout_seconds: 5,
            period_seconds: 30,
            success_threshold: 2,
            failure_threshold: 10,
            ..Probe::default()
        };
        let before = set.clone();
        default_probe(&mut set);
        assert_eq!(set, before, "values a user wrote are kept");
    }

    fn replicaset() -> ReplicaSet {
        let mut template = PodTemplateSpec::default();
        template.metadata.labels.insert("app".into(), "web".into());
        template.spec.containers = vec![container("nginx:1.27")];
        ReplicaSet {
            metadata: ObjectMeta::named("", "web"),
            spec: ReplicaSetSpec {
                template,
                ..ReplicaSetSpec::default()
            },
            ..ReplicaSet::default()
        }
    }

    #[test]
    fn replicaset_defaults() {
        let mut rs = replicaset();
        default_replicaset(&mut rs);
        assert_eq!(rs.metadata.namespace, "default");
        assert_eq!(rs.spec.replicas, Some(1));
        assert_eq!(rs.spec.selector.to_string(), "app=web");
        assert_eq!(
            rs.spec.template.spec.termination_grace_period_seconds,
            Some(30)
        );
        assert_eq!(
            rs.spec.template.spec.containers[0].image_pull_policy,
            Some(PullPolicy::IfNotPresent)
        );

        let mut given = replicaset();
        given.spec.replicas = Some(0);
        given.spec.selector = LabelSelector::parse("app in (web,api)").unwrap();
        let selector = given.spec.selector.clone();
        default_replicaset(&mut given);
        assert_eq!(given.spec.replicas, Some(0), "zero replicas is a choice");
        assert_eq!(given.spec.selector, selector);
    }

    #[test]
    fn node_and_lease_and_namespace_defaults() {
        let mut node = Node::default();
        node.spec.pod_cidr = "10.88.1.0/24".into();
        default_node(&mut node);
        assert_eq!(node.spec.pod_cidrs, ["10.88.1.0/24"]);
        assert!(
            node.metadata.namespace.is_empty(),
            "nodes are cluster-scoped"
        );

        let mut dual = Node::default();
        dual.spec.pod_cidrs = vec!["fd00:88:1::/64".into(), "10.88.1.0/24".into()];
        default_node(&mut dual);
        assert_eq!(dual.spec.pod_cidr, "fd00:88:1::/64");

        let mut lease = Lease::default();
        default_lease(&mut lease);
        assert_eq!(lease.spec.lease_duration_seconds, 0, "nobody holds it");
        lease.spec.holder_identity = "node-1".into();
        default_lease(&mut lease);
        assert_eq!(lease.spec.lease_duration_seconds, 40);
        assert_eq!(lease.metadata.namespace, "default");

        let mut ns = Object::Namespace(Namespace::default());
        apply_defaults(&mut ns);
        assert!(ns.metadata().namespace.is_empty());
    }

    fn sample_objects() -> Vec<Object> {
        let mut probed = minimal_pod();
        probed.spec.host_network = true;
        probed.spec.containers[0].ports = vec![ContainerPort {
            container_port: 8080,
            ..ContainerPort::default()
        }];
        probed.spec.containers[0].liveness_probe = Some(Probe {
            tcp_socket: Some(TcpSocketAction {
                port: PortRef::Number(8080),
                host: "".into(),
            }),
            ..Probe::default()
        });
        probed.spec.containers[0]
            .resources
            .limits
            .insert("memory".into(), "64Mi".parse().unwrap());
        let mut node = Node {
            metadata: ObjectMeta::named("", "node-1"),
            ..Node::default()
        };
        node.spec.pod_cidr = "10.88.1.0/24".into();
        let mut lease = Lease {
            metadata: ObjectMeta::named("", "node-1"),
            ..Lease::default()
        };
        lease.spec.holder_identity = "node-1".into();
        vec![
            minimal_pod().into(),
            probed.into(),
            replicaset().into(),
            node.into(),
            lease.into(),
            Namespace {
                metadata: ObjectMeta::named("", "prod"),
                ..Namespace::default()
            }
            .into(),
        ]
    }

    #[test]
    fn defaulted_minimal_objects_validate() {
        for mut obj in sample_objects() {
            let before = validate_object(&obj);
            apply_defaults(&mut obj);
            assert_eq!(
                validate_object(&obj),
                Ok(()),
                "{:?} (before defaults: {before:?})",
                obj.kind()
            );
        }
        let mut raw = Object::Pod(minimal_pod());
        assert!(
            validate_object(&raw).is_err(),
            "without defaults the namespace is missing"
        );
        apply_defaults(&mut raw);
        assert_eq!(validate_object(&raw), Ok(()));
    }

    #[test]
    fn defaulting_twice_is_defaulting_once() {
        for obj in sample_objects() {
            let mut once = obj.clone();
            apply_defaults(&mut once);
            let mut twice = once.clone();
            apply_defaults(&mut twice);
            assert_eq!(once, twice);
            if obj.kind() != Kind::Namespace {
                assert_ne!(once, obj, "{:?}: something was defaulted", obj.kind());
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn defaulting_is_idempotent_for_any_object(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let mut u = arbitrary::Unstructured::new(&bytes);
            if let Ok(obj) = <Object as arbitrary::Arbitrary>::arbitrary(&mut u) {
                let mut once = obj;
                apply_defaults(&mut once);
                let mut twice = once.clone();
                apply_defaults(&mut twice);
                proptest::prop_assert_eq!(once, twice);
            }
        }
    }
}
