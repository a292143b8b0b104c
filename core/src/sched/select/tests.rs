use super::*;
use crate::model::{Node, Pod, TaintEffect};
use crate::sched::sample::*;
use crate::sched::{filters, HOSTNAME_LABEL, ZONE_LABEL};
use alloc::collections::BTreeMap;
use alloc::format;
use proptest::prelude::*;

const GI: i64 = 1 << 30;

fn cache_of(nodes: &[Node]) -> ClusterCache {
    let mut c = ClusterCache::new();
    nodes.iter().for_each(|n| c.update_node(n));
    c
}

/// Schedule `pods` one after another, binding each; the chosen node names.
fn place_all(s: &mut Scheduler, c: &mut ClusterCache, pods: &[Pod]) -> Vec<String> {
    pods.iter()
        .map(|p| {
            let placed = s.schedule(c, p).expect("schedulable");
            c.add_pod(&bound(p.clone(), &placed.node));
            placed.node
        })
        .collect()
}

fn same_nodes(count: usize) -> Vec<Node> {
    (0..count)
        .map(|i| node(&format!("n{i}"), 4000, 8 * GI, ["a", "b"][i % 2]))
        .collect()
}

#[test]
fn same_seed_same_choices_other_seed_other_choices() {
    let pods: Vec<Pod> = (0..30).map(|i| pod("d", &format!("p{i}"), 0, 0)).collect();
    let run = |seed| {
        let mut c = cache_of(&same_nodes(20));
        let mut s = Scheduler::new(SchedulerConfig::default(), seed);
        place_all(&mut s, &mut c, &pods)
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}

#[test]
fn ties_are_broken_evenly() {
    let c = cache_of(&same_nodes(4));
    let p = pod("d", "p", 0, 0);
    let mut s = Scheduler::new(SchedulerConfig::default(), 42);
    let mut counts = BTreeMap::new();
    let mut c = c;
    for _ in 0..4000 {
        *counts
            .entry(s.schedule(&mut c, &p).unwrap().node)
            .or_insert(0) += 1;
    }
    assert_eq!(counts.len(), 4);
    assert!(
        counts.values().all(|&n| (800..1200).contains(&n)),
        "{counts:?}"
    );
}

#[test]
fn emptier_node_wins() {
    let mut c = cache_of(&same_nodes(3));
    c.add_pod(&bound(pod("d", "big", 3000, 6 * GI), "n0"));
    c.add_pod(&bound(pod("d", "mid", 1000, 2 * GI), "n1"));
    let mut s = Scheduler::new(SchedulerConfig::default(), 1);
    assert_eq!(
        s.schedule(&mut c, &pod("d", "p", 100, GI)).unwrap().node,
        "n2"
    );
}

#[test]
fn replica_set_spreads_across_nodes_and_zones() {
    let mut c = cache_of(&same_nodes(6));
    let mut s = Scheduler::new(SchedulerConfig::default(), 3);
    let pods: Vec<Pod> = (0..6)
        .map(|i| owned_by(pod("d", &format!("w{i}"), 0, 0), "web"))
        .collect();
    let mut placed = place_all(&mut s, &mut c, &pods);
    placed.sort();
    placed.dedup();
    assert_eq!(placed.len(), 6, "one per node: {placed:?}");
}

#[test]
fn anti_affine_replica_set_lands_one_per_node() {
    let mut c = cache_of(&same_nodes(10));
    let mut s = Scheduler::new(SchedulerConfig::default(), 5);
    let pods: Vec<Pod> = (0..10)
        .map(|i| {
            let mut p = pod("d", &format!("w{i}"), 0, 0);
            p.metadata.labels = labels(&[("app", "web")]);
            anti_affine(p, "web", HOSTNAME_LABEL)
        })
        .collect();
    let mut placed = place_all(&mut s, &mut c, &pods);
    placed.sort();
    placed.dedup();
    assert_eq!(placed.len(), 10);
    let mut eleventh = pod("d", "w10", 0, 0);
    eleventh.metadata.labels = labels(&[("app", "web")]);
    let err = s
        .schedule(&mut c, &anti_affine(eleventh, "web", HOSTNAME_LABEL))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "0/10 nodes are available: 10 node(s) didn't match pod anti-affinity rules."
    );
}

#[test]
fn tainted_node_gets_only_tolerating_pods() {
    let mut nodes = same_nodes(3);
    nodes[0]
        .spec
        .taints
        .push(taint("gpu", "", TaintEffect::NoSchedule));
    let mut c = cache_of(&nodes);
    let mut s = Scheduler::new(SchedulerConfig::default(), 9);
    for i in 0..30 {
        let placed = s
            .schedule(&mut c, &pod("d", &format!("p{i}"), 0, 0))
            .unwrap();
        assert_ne!(placed.node, "n0");
    }
    let gpu = requires_node_label(
        tolerating(pod("d", "g", 0, 0), "gpu"),
        HOSTNAME_LABEL,
        &["n0"],
    );
    assert_eq!(s.schedule(&mut c, &gpu).unwrap().node, "n0");
}

#[test]
fn prefer_no_schedule_is_avoided_not_refused() {
    let mut nodes = same_nodes(2);
    nodes[0]
        .spec
        .taints
        .push(taint("spot", "", TaintEffect::PreferNoSchedule));
    let mut c = cache_of(&nodes);
    let mut s = Scheduler::new(SchedulerConfig::default(), 9);
    for i in 0..10 {
        let p = pod("d", &format!("p{i}"), 0, 0);
        assert_eq!(s.schedule(&mut c, &p).unwrap().node, "n1");
    }
    let only_spot = requires_node_label(pod("d", "s", 0, 0), HOSTNAME_LABEL, &["n0"]);
    assert_eq!(s.schedule(&mut c, &only_spot).unwrap().node, "n0");
}

#[test]
fn unschedulable_summary_counts_nodes_per_reason() {
    let mut nodes = Vec::new();
    for i in 0..3 {
        nodes.push(node(&format!("small{i}"), 4000, GI, "a"));
    }
    for i in 0..2 {
        let mut n = node(&format!("gpu{i}"), 4000, 8 * GI, "a");
        n.spec
            .taints
            .push(taint("gpu", "", TaintEffect::NoSchedule));
        nodes.push(n);
    }
    let mut c = cache_of(&nodes);
    let mut s = Scheduler::new(SchedulerConfig::default(), 1);
    let err = s.schedule(&mut c, &pod("d", "p", 100, 2 * GI)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "0/5 nodes are available: 3 Insufficient memory, \
         2 node(s) had untolerated taint {gpu: NoSchedule}."
    );
    assert_eq!(err.nodes, 5);
    let empty = s
        .schedule(&mut ClusterCache::new(), &pod("d", "p", 0, 0))
        .unwrap_err();
    assert_eq!(empty.to_string(), "0/0 nodes are available.");
}

#[test]
fn feasible_nodes_to_find_table() {
    let adaptive = SchedulerConfig::default();
    let all = SchedulerConfig {
        percentage_of_nodes_to_score: 100,
        ..SchedulerConfig::default()
    };
    let thirty = SchedulerConfig {
        percentage_of_nodes_to_score: 30,
        ..SchedulerConfig::default()
    };
    let cases = [
        (&adaptive, 0, 0),
        (&adaptive, 50, 50),
        (&adaptive, 100, 100),
        (&adaptive, 1000, 420),
        (&adaptive, 5000, 500),
        (&adaptive, 50_000, 2500),
        (&all, 5000, 5000),
        (&thirty, 5000, 1500),
        (&thirty, 200, 100),
    ];
    for (cfg, nodes, want) in cases {
        assert_eq!(cfg.feasible_nodes_to_find(nodes), want, "{cfg:?} {nodes}");
    }
}

#[test]
fn scan_resumes_where_the_last_one_stopped() {
    let mut c = cache_of(&same_nodes(300));
    let cfg = SchedulerConfig {
        percentage_of_nodes_to_score: 10,
        min_feasible_nodes: 10,
        ..SchedulerConfig::default()
    };
    let mut s = Scheduler::new(cfg, 1);
    let mut seen = BTreeMap::new();
    for i in 0..30 {
        let placed = s
            .schedule(&mut c, &pod("d", &format!("p{i}"), 0, 0))
            .unwrap();
        assert_eq!((placed.feasible, placed.evaluated), (30, 30));
        *seen.entry(placed.node).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), 30, "every pod saw other nodes");
}

#[test]
fn xorshift_is_deterministic_and_never_stuck() {
    let mut a = XorShift::new(0);
    let mut b = XorShift::new(0);
    let xs: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
    assert_eq!(xs, (0..4).map(|_| b.next_u64()).collect::<Vec<_>>());
    assert!(xs.iter().all(|&x| x != 0));
}

fn arb_node(i: usize) -> impl Strategy<Value = Node> {
    (
        1u32..5,
        1u32..5,
        0usize..3,
        any::<bool>(),
        any::<bool>(),
        prop::option::of(0usize..3),
    )
        .prop_map(move |(cpu, mem, zone, ready, cordoned, taint_i)| {
            let mut n = node(
                &format!("n{i}"),
                i64::from(cpu) * 1000,
                i64::from(mem) * GI,
                ["a", "b", ""][zone],
            );
            if !ready {
                n.status.conditions.clear();
            }
            n.spec.unschedulable = cordoned && i % 3 == 0;
            if let Some(t) = taint_i {
                let effect = [
                    TaintEffect::NoSchedule,
                    TaintEffect::NoExecute,
                    TaintEffect::PreferNoSchedule,
                ][t];
                n.spec
                    .taints
                    .push(taint(["gpu", "spot", "gpu"][t], "", effect));
            }
            n
        })
}

fn arb_pod(name: String) -> impl Strategy<Value = Pod> {
    (
        0i64..3000,
        0i64..3,
        0usize..2,
        prop::option::of(0usize..3),
        prop::option::of(0usize..2),
        prop::option::of(0usize..2),
        any::<bool>(),
    )
        .prop_map(move |(cpu, mem, app, anti, tol, zone_req, port)| {
            let mut p = pod("d", &name, cpu, mem * GI / 2);
            let app = ["web", "db"][app];
            p.metadata.labels = labels(&[("app", app)]);
            if let Some(k) = anti {
                let key = [HOSTNAME_LABEL, ZONE_LABEL, HOSTNAME_LABEL][k];
                p = anti_affine(p, ["web", "db", "web"][k], key);
            }
            if let Some(t) = tol {
                p = tolerating(p, ["gpu", "spot"][t]);
            }
            if let Some(z) = zone_req {
                p = requires_node_label(p, ZONE_LABEL, &[["a", "b"][z]]);
            }
            if port {
                p.spec.containers[0]
                    .ports
                    .push(crate::model::ContainerPort {
                        container_port: 80,
                        host_port: 8080,
                        ..Default::default()
                    });
            }
            owned_by(p, app)
        })
}

fn arb_cluster() -> impl Strategy<Value = (Vec<Node>, Vec<Pod>, u64, u32)> {
    let nodes = (1usize..12).prop_flat_map(|n| (0..n).map(arb_node).collect::<Vec<_>>());
    let pods = (0usize..25)
        .prop_flat_map(|n| (0..n).map(|i| arb_pod(format!("p{i}"))).collect::<Vec<_>>());
    (
        nodes,
        pods,
        any::<u64>(),
        prop_oneof![Just(0u32), Just(100), 1u32..100],
    )
}

proptest! {
    /// Whatever the cluster, a chosen node passes every filter, and a pod
    /// refused was refused by every node.
    #[test]
    fn chosen_node_passes_every_filter((nodes, pods, seed, pct) in arb_cluster()) {
        let mut c = cache_of(&nodes);
        let cfg = SchedulerConfig {
            percentage_of_nodes_to_score: pct,
            min_feasible_nodes: 2,
            ..SchedulerConfig::default()
        };
        let mut s = Scheduler::new(cfg, seed);
        for p in &pods {
            match s.schedule(&mut c, p) {
                Ok(placed) => {
                    let info = c.prepare(p);
                    let node = c.node(&placed.node).unwrap();
                    prop_assert_eq!(filters::check(&info, node, c.topology()), Ok(()));
                    c.add_pod(&bound(p.clone(), &placed.node));
                }
                Err(err) => {
                    let info = c.prepare(p);
                    prop_assert!(c.nodes().all(|n| filters::check(&info, n, c.topology()).is_err()));
                    let counted: usize = err.reasons.iter().map(|(_, n)| n).sum();
                    prop_assert_eq!(counted, c.node_count());
                }
            }
        }
    }
}
