use super::*;
use crate::model::{
    NodeSelectorOperator, NodeSelectorRequirement, NodeSelectorTerm, Pod, PreferredSchedulingTerm,
    TaintEffect, WeightedPodAffinityTerm,
};
use crate::sched::sample::*;
use crate::sched::{ClusterCache, HOSTNAME_LABEL, ZONE_LABEL};
use alloc::vec;

const GI: i64 = 1 << 30;

fn loaded(cpu_used: i64, mem_used: i64) -> NodeInfo {
    let mut n = NodeInfo::new(&node("n", 4000, 4 * GI, ""));
    let used = Resources {
        cpu_millis: cpu_used,
        memory: mem_used,
        pods: 1,
    };
    // Set directly: accounting would count a zero request as the defaults.
    n.requested = used;
    n.score_requested = used;
    n
}

#[test]
fn least_allocated_table() {
    // Node 4 cores / 4 GiB; the pod asks 1 core and 1 GiB.
    let p = pod("d", "p", 1000, GI);
    let cases = [
        (0, 0, 75),
        (1000, GI, 50),
        (3000, 3 * GI, 0),
        (3000, 0, 37),
        (4000, 4 * GI, 0),
    ];
    for (cpu, mem, want) in cases {
        let got = least_allocated(&PodInfo::new(&p), &loaded(cpu, mem));
        assert_eq!(got, want, "{cpu} {mem}");
    }
    // A pod asking for nothing still counts for the defaults.
    let empty = pod("d", "p", 0, 0);
    assert!(least_allocated(&PodInfo::new(&empty), &loaded(0, 0)) < 100);
}

#[test]
fn balanced_allocation_table() {
    let p = pod("d", "p", 1000, GI);
    let cases = [
        (0, 0, 100),
        (1000, GI, 100),
        // cpu 100%, memory 25%: std dev 0.375.
        (3000, 0, 62),
        (0, 3 * GI, 62),
        (3000, 3 * GI, 100),
    ];
    for (cpu, mem, want) in cases {
        let got = balanced_allocation(&PodInfo::new(&p), &loaded(cpu, mem));
        assert_eq!(got, want, "{cpu} {mem}");
    }
}

fn prefers(mut p: Pod, weight: i32, key: &str, value: &str) -> Pod {
    let aff = p.spec.affinity.get_or_insert_with(Default::default);
    let na = aff.node_affinity.get_or_insert_with(Default::default);
    na.preferred_during_scheduling_ignored_during_execution
        .push(PreferredSchedulingTerm {
            weight,
            preference: NodeSelectorTerm {
                match_expressions: vec![NodeSelectorRequirement {
                    key: key.into(),
                    operator: NodeSelectorOperator::In,
                    values: vec![value.into()],
                }],
            },
        });
    p
}

#[test]
fn node_affinity_raw_table() {
    let mut n = node("n", 1000, GI, "a");
    n.metadata.labels.insert("disk".into(), "ssd".into());
    let ni = NodeInfo::new(&n);
    let base = pod("d", "p", 0, 0);
    let cases = [
        (base.clone(), 0),
        (prefers(base.clone(), 10, ZONE_LABEL, "a"), 10),
        (prefers(base.clone(), 10, ZONE_LABEL, "b"), 0),
        (
            prefers(prefers(base.clone(), 10, ZONE_LABEL, "a"), 5, "disk", "ssd"),
            15,
        ),
    ];
    for (p, want) in cases {
        assert_eq!(node_affinity_raw(&PodInfo::new(&p), &ni), want);
    }
}

#[test]
fn taint_raw_table() {
    use TaintEffect::*;
    let mut n = node("n", 1000, GI, "");
    n.spec.taints = vec![
        taint("a", "", PreferNoSchedule),
        taint("b", "", PreferNoSchedule),
        taint("c", "", NoSchedule),
    ];
    let ni = NodeInfo::new(&n);
    let cases = [
        (pod("d", "p", 0, 0), 2),
        (tolerating(pod("d", "p", 0, 0), "a"), 1),
        (tolerating(tolerating(pod("d", "p", 0, 0), "a"), "b"), 0),
    ];
    for (p, want) in cases {
        assert_eq!(taint_raw(&PodInfo::new(&p), &ni), want);
    }
}

fn web(name: &str) -> Pod {
    let mut p = owned_by(pod("d", name, 100, 0), "web");
    p.metadata.labels = labels(&[("app", "web")]);
    p
}

fn cluster(bound_pods: &[(&str, Pod)]) -> ClusterCache {
    let mut c = ClusterCache::new();
    for (name, zone) in [("n1", "a"), ("n2", "a"), ("n3", "b")] {
        c.update_node(&node(name, 4000, 8 * GI, zone));
    }
    for (n, p) in bound_pods {
        c.add_pod(&bound(p.clone(), n));
    }
    c
}

fn prefers_pods(mut p: Pod, weight: i32, key: &str, anti: bool) -> Pod {
    let aff = p.spec.affinity.get_or_insert_with(Default::default);
    let slot = if anti {
        &mut aff.pod_anti_affinity
    } else {
        &mut aff.pod_affinity
    };
    slot.get_or_insert_with(Default::default)
        .preferred_during_scheduling_ignored_during_execution
        .push(WeightedPodAffinityTerm {
            weight,
            pod_affinity_term: app_term("web", key),
        });
    p
}

#[test]
fn pod_affinity_raw_table() {
    let bound = [("n1", web("w1")), ("n1", web("w2")), ("n3", web("w3"))];
    let base = pod("d", "p", 0, 0);
    let cases = [
        (base.clone(), [0, 0, 0]),
        (
            prefers_pods(base.clone(), 10, HOSTNAME_LABEL, false),
            [20, 0, 10],
        ),
        (
            prefers_pods(base.clone(), 10, ZONE_LABEL, false),
            [20, 20, 10],
        ),
        (
            prefers_pods(base.clone(), 5, HOSTNAME_LABEL, true),
            [-10, 0, -5],
        ),
    ];
    for (p, want) in cases {
        let mut c = cluster(&bound);
        let info = c.prepare(&p);
        let got =
            ["n1", "n2", "n3"].map(|n| pod_affinity_raw(&info, c.node(n).unwrap(), c.topology()));
        assert_eq!(got, want, "{:?}", p.spec.affinity);
    }
}

#[test]
fn spread_raw_table() {
    let c = cluster(&[("n1", web("w1")), ("n1", web("w2")), ("n3", web("w3"))]);
    let p = web("new");
    let info = PodInfo::new(&p);
    let got = ["n1", "n2", "n3"].map(|n| spread_raw(&info, c.node(n).unwrap(), c.topology()));
    assert_eq!(got, [(2, Some(2)), (0, Some(2)), (1, Some(1))]);
    // Another owner's pods do not count.
    let other = owned_by(pod("d", "x", 0, 0), "db");
    let info = PodInfo::new(&other);
    assert_eq!(
        spread_raw(&info, c.node("n1").unwrap(), c.topology()),
        (0, Some(0))
    );
}

#[test]
fn normalize_table() {
    assert_eq!(normalize_max(5, 10), 50);
    assert_eq!(normalize_max(0, 0), 0);
    assert_eq!(normalize_reverse(0, 2), 100);
    assert_eq!(normalize_reverse(2, 2), 0);
    assert_eq!(normalize_reverse(0, 0), 100);
    assert_eq!(normalize_range(-10, -10, 10), 0);
    assert_eq!(normalize_range(0, -10, 10), 50);
    assert_eq!(normalize_range(3, 3, 3), 0);
    // Node part 100 - 50 = 50; zone part 100 - 100 = 0; zone counts double.
    assert_eq!(normalize_spread(1, 2, Some(2), 2), 16);
    assert_eq!(normalize_spread(0, 2, Some(0), 2), 100);
    assert_eq!(normalize_spread(1, 2, None, 0), 50);
}
