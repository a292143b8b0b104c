use super::*;
use crate::model::{ContainerPort, Pod, Protocol, TaintEffect};
use crate::sched::sample::*;
use crate::sched::{ClusterCache, NodeInfo, PodInfo, HOSTNAME_LABEL, ZONE_LABEL};
use alloc::string::ToString;
use alloc::vec::Vec;

const GI: i64 = 1 << 30;
const MI: i64 = 1 << 20;

fn info(n: &crate::model::Node) -> NodeInfo {
    NodeInfo::new(n)
}

#[test]
fn node_ready_table() {
    let mut not_ready = node("n", 1000, GI, "");
    not_ready.status.conditions.clear();
    let plain = pod("d", "p", 0, 0);
    let tolerant = tolerating(pod("d", "p", 0, 0), crate::sched::NOT_READY_TAINT);
    let cases = [
        (node("n", 1000, GI, ""), &plain, Ok(())),
        (not_ready.clone(), &plain, Err(Reason::NotReady)),
        (not_ready, &tolerant, Ok(())),
    ];
    for (n, p, want) in cases {
        assert_eq!(node_ready(&PodInfo::new(p), &info(&n)), want, "{p:?}");
    }
}

#[test]
fn node_schedulable_table() {
    let mut cordoned = node("n", 1000, GI, "");
    cordoned.spec.unschedulable = true;
    let plain = pod("d", "p", 0, 0);
    let tolerant = tolerating(pod("d", "p", 0, 0), crate::sched::UNSCHEDULABLE_TAINT);
    let cases = [
        (node("n", 1000, GI, ""), &plain, Ok(())),
        (cordoned.clone(), &plain, Err(Reason::Unschedulable)),
        (cordoned, &tolerant, Ok(())),
    ];
    for (n, p, want) in cases {
        assert_eq!(node_schedulable(&PodInfo::new(p), &info(&n)), want);
    }
}

#[test]
fn resources_fit_table() {
    use ResourceKind::*;
    // node: 2 cores, 4 GiB, 3 pods; 1 core and 1 GiB already requested by 2 pods.
    let mut n = node("n", 2000, 4 * GI, "");
    n.status.allocatable.insert(
        crate::model::resource::PODS.into(),
        crate::model::Quantity::from_units(3),
    );
    let mut ni = info(&n);
    ni.requested = crate::sched::Resources {
        cpu_millis: 1000,
        memory: GI,
        pods: 2,
    };
    let cases: [(i64, i64, Result<(), Reason<'_>>); 6] = [
        (0, 0, Ok(())),
        (1000, 3 * GI, Ok(())),
        (1001, 0, Err(Reason::Insufficient(Cpu))),
        (0, 3 * GI + 1, Err(Reason::Insufficient(Memory))),
        (1001, 3 * GI + 1, Err(Reason::Insufficient(Cpu))),
        (500, 512 * MI, Ok(())),
    ];
    for (cpu, mem, want) in cases {
        let p = pod("d", "p", cpu, mem);
        assert_eq!(resources_fit(&PodInfo::new(&p), &ni), want, "{cpu} {mem}");
    }
    // Allocatable below what is requested already: only pods that
    // request nothing fit.
    ni.requested.memory = 5 * GI;
    ni.requested.cpu_millis = 2500;
    assert_eq!(
        resources_fit(&PodInfo::new(&pod("d", "p", 0, 0)), &ni),
        Ok(())
    );
    assert_eq!(
        resources_fit(&PodInfo::new(&pod("d", "p", 0, 1)), &ni),
        Err(Reason::Insufficient(Memory))
    );
    assert_eq!(
        resources_fit(&PodInfo::new(&pod("d", "p", 1, 0)), &ni),
        Err(Reason::Insufficient(Cpu))
    );
    ni.requested.pods = 3;
    let p = pod("d", "p", 0, 0);
    assert_eq!(
        resources_fit(&PodInfo::new(&p), &ni),
        Err(Reason::Insufficient(Pods))
    );
}

fn with_host_port(mut p: Pod, ip: &str, port: i32, protocol: Protocol) -> Pod {
    p.spec.containers[0].ports.push(ContainerPort {
        container_port: 8080,
        host_port: port,
        host_ip: ip.into(),
        protocol,
        ..ContainerPort::default()
    });
    p
}

#[test]
fn host_ports_table() {
    use Protocol::*;
    let mut ni = info(&node("n", 1000, GI, ""));
    let used = with_host_port(pod("d", "a", 0, 0), "10.0.0.1", 80, Tcp);
    ni.account(
        Default::default(),
        &crate::sched::HostPort::of_pod(&used),
        1,
    );
    let cases = [
        ("", 0, Tcp, true),
        ("", 80, Tcp, false),
        ("0.0.0.0", 80, Tcp, false),
        ("10.0.0.1", 80, Tcp, false),
        ("10.0.0.2", 80, Tcp, true),
        ("", 80, Udp, true),
        ("", 81, Tcp, true),
    ];
    for (ip, port, proto, ok) in cases {
        let p = with_host_port(pod("d", "p", 0, 0), ip, port, proto);
        let got = host_ports(&PodInfo::new(&p), &ni);
        assert_eq!(got.is_ok(), ok, "{ip}:{port}/{proto:?}");
        if !ok {
            assert_eq!(got, Err(Reason::HostPortConflict));
        }
    }
    // A host-network pod takes its container ports on the host.
    let mut hn = pod("d", "p", 0, 0);
    hn.spec.host_network = true;
    hn.spec.containers[0].ports.push(ContainerPort {
        container_port: 80,
        ..ContainerPort::default()
    });
    assert_eq!(
        host_ports(&PodInfo::new(&hn), &ni),
        Err(Reason::HostPortConflict)
    );
}

#[test]
fn node_selector_table() {
    let mut n = node("n", 1000, GI, "a");
    n.metadata.labels.insert("disk".into(), "ssd".into());
    let ni = info(&n);
    let cases: [(&[(&str, &str)], bool); 5] = [
        (&[], true),
        (&[("disk", "ssd")], true),
        (&[("disk", "ssd"), (ZONE_LABEL, "a")], true),
        (&[("disk", "hdd")], false),
        (&[("gpu", "true")], false),
    ];
    for (sel, ok) in cases {
        let mut p = pod("d", "p", 0, 0);
        p.spec.node_selector = labels(sel);
        let got = node_selector(&PodInfo::new(&p), &ni);
        assert_eq!(got.is_ok(), ok, "{sel:?}");
        if !ok {
            assert_eq!(got, Err(Reason::NodeSelectorMismatch));
        }
    }
}

#[test]
fn node_affinity_table() {
    let ni = info(&node("n", 1000, GI, "a"));
    let cases = [
        (pod("d", "p", 0, 0), true),
        (
            requires_node_label(pod("d", "p", 0, 0), ZONE_LABEL, &["a", "b"]),
            true,
        ),
        (
            requires_node_label(pod("d", "p", 0, 0), ZONE_LABEL, &["b"]),
            false,
        ),
        (
            requires_node_label(pod("d", "p", 0, 0), "pool", &["infra"]),
            false,
        ),
        // Terms are ORed.
        (
            requires_node_label(
                requires_node_label(pod("d", "p", 0, 0), "pool", &["infra"]),
                ZONE_LABEL,
                &["a"],
            ),
            true,
        ),
    ];
    for (p, ok) in cases {
        let got = node_affinity(&PodInfo::new(&p), &ni);
        assert_eq!(got.is_ok(), ok, "{:?}", p.spec.affinity);
        if !ok {
            assert_eq!(got, Err(Reason::NodeSelectorMismatch));
        }
    }
}

#[test]
fn taints_table() {
    use TaintEffect::*;
    let tainted = |effect| {
        let mut n = node("n", 1000, GI, "");
        n.spec.taints.push(taint("gpu", "", effect));
        info(&n)
    };
    let plain = pod("d", "p", 0, 0);
    let tolerant = tolerating(pod("d", "p", 0, 0), "gpu");
    let mut wrong_effect = pod("d", "p", 0, 0);
    wrong_effect
        .spec
        .tolerations
        .push(crate::model::Toleration {
            key: "gpu".into(),
            operator: crate::model::TolerationOperator::Exists,
            effect: Some(NoExecute),
            ..Default::default()
        });
    let gpu = |effect| {
        Err(Reason::UntoleratedTaint {
            key: "gpu",
            value: "",
            effect,
        })
    };
    let cases = [
        (NoSchedule, &plain, gpu(NoSchedule)),
        (NoExecute, &plain, gpu(NoExecute)),
        (PreferNoSchedule, &plain, Ok(())),
        (NoSchedule, &tolerant, Ok(())),
        (NoExecute, &tolerant, Ok(())),
        (NoSchedule, &wrong_effect, gpu(NoSchedule)),
        (NoExecute, &wrong_effect, Ok(())),
    ];
    for (effect, p, want) in cases {
        let n = tainted(effect);
        assert_eq!(taints(&PodInfo::new(p), &n), want, "{effect:?} {p:?}");
    }
}

/// Pods bound before the case, with their node.
type Bound<'a> = &'a [(&'a str, Pod)];

/// Three nodes in two zones; `web` pods bound as listed.
fn cluster(bound_pods: &[(&str, Pod)]) -> ClusterCache {
    let mut c = ClusterCache::new();
    for (name, zone) in [("n1", "a"), ("n2", "a"), ("n3", "b")] {
        c.update_node(&node(name, 4000, 8 * GI, zone));
    }
    for (n, p) in bound_pods {
        assert!(c.add_pod(&bound(p.clone(), n)));
    }
    c
}

fn web(name: &str) -> Pod {
    let mut p = pod("d", name, 100, 0);
    p.metadata.labels = labels(&[("app", "web")]);
    p
}

/// Which of n1, n2, n3 `filter` lets `p` onto.
fn passing(
    c: &mut ClusterCache,
    p: &Pod,
    filter: for<'n> fn(&PodInfo<'_>, &'n NodeInfo, &Topology) -> FilterResult<'n>,
) -> Vec<&'static str> {
    let info = c.prepare(p);
    ["n1", "n2", "n3"]
        .into_iter()
        .filter(|n| filter(&info, c.node(n).unwrap(), c.topology()).is_ok())
        .collect()
}

#[test]
fn pod_anti_affinity_table() {
    let spread_host = anti_affine(web("new"), "web", HOSTNAME_LABEL);
    let spread_zone = anti_affine(web("new"), "web", ZONE_LABEL);
    let other_ns = {
        let mut p = anti_affine(web("new"), "web", HOSTNAME_LABEL);
        p.metadata.namespace = "other".into();
        p
    };
    let cases: [(Bound, &Pod, &[&str]); 6] = [
        (&[], &spread_host, &["n1", "n2", "n3"]),
        (&[("n1", web("w1"))], &spread_host, &["n2", "n3"]),
        (&[("n1", web("w1"))], &spread_zone, &["n3"]),
        (&[("n1", web("w1")), ("n3", web("w3"))], &spread_zone, &[]),
        // The term looks in the pod's own namespace only.
        (&[("n1", web("w1"))], &other_ns, &["n1", "n2", "n3"]),
        // Symmetric: a bound pod's anti-affinity keeps the new pod away.
        (
            &[("n2", anti_affine(pod("d", "db", 0, 0), "web", ZONE_LABEL))],
            &web("new"),
            &["n3"],
        ),
    ];
    for (i, (bound, p, want)) in cases.iter().enumerate() {
        let mut c = cluster(bound);
        assert_eq!(passing(&mut c, p, pod_anti_affinity), *want, "case {i}");
    }
    let mut c = cluster(&[("n2", anti_affine(pod("d", "db", 0, 0), "web", ZONE_LABEL))]);
    let p = web("new");
    let info = c.prepare(&p);
    assert_eq!(
        pod_anti_affinity(&info, c.node("n1").unwrap(), c.topology()),
        Err(Reason::ExistingPodAntiAffinity)
    );
}

#[test]
fn pod_affinity_table() {
    let near_web = |key| affine(pod("d", "new", 0, 0), "web", key);
    let first_web = affine(web("new"), "web", ZONE_LABEL);
    let cases: [(Bound, Pod, &[&str]); 5] = [
        // Nothing to be near, and the pod is not a web pod itself.
        (&[], near_web(HOSTNAME_LABEL), &[]),
        (&[("n1", web("w1"))], near_web(HOSTNAME_LABEL), &["n1"]),
        (&[("n1", web("w1"))], near_web(ZONE_LABEL), &["n1", "n2"]),
        // The first pod of a group that wants to be together goes anywhere.
        (&[], first_web.clone(), &["n1", "n2", "n3"]),
        (&[("n3", web("w3"))], first_web, &["n3"]),
    ];
    for (i, (bound, p, want)) in cases.iter().enumerate() {
        let mut c = cluster(bound);
        assert_eq!(passing(&mut c, p, pod_affinity), *want, "case {i}");
    }
    // A node without the topology key is never near anything.
    let mut c = cluster(&[("n1", web("w1"))]);
    let mut bare = node("n4", 1000, GI, "");
    bare.metadata.labels.clear();
    c.update_node(&bare);
    let p = near_web(ZONE_LABEL);
    let info = c.prepare(&p);
    assert_eq!(
        pod_affinity(&info, c.node("n4").unwrap(), c.topology()),
        Err(Reason::PodAffinity)
    );
}

#[test]
fn check_runs_cheapest_first_and_reports_the_first_failure() {
    let mut n = node("n", 100, GI, "");
    n.spec.unschedulable = true;
    n.spec
        .taints
        .push(taint("gpu", "", TaintEffect::NoSchedule));
    let mut c = ClusterCache::new();
    c.update_node(&n);
    let p = pod("d", "p", 1000, 0);
    let info = c.prepare(&p);
    assert_eq!(
        check(&info, c.node("n").unwrap(), c.topology()),
        Err(Reason::Unschedulable)
    );
}

#[test]
fn reason_texts() {
    use TaintEffect::*;
    let cases = [
        (
            Reason::Insufficient(ResourceKind::Memory),
            "Insufficient memory",
        ),
        (Reason::Insufficient(ResourceKind::Pods), "Too many pods"),
        (
            Reason::UntoleratedTaint {
                key: "gpu",
                value: "",
                effect: NoSchedule,
            },
            "node(s) had untolerated taint {gpu: NoSchedule}",
        ),
        (
            Reason::UntoleratedTaint {
                key: "dedicated",
                value: "infra",
                effect: NoExecute,
            },
            "node(s) had untolerated taint {dedicated=infra: NoExecute}",
        ),
    ];
    for (r, want) in cases {
        assert_eq!(r.to_string(), want);
    }
}
