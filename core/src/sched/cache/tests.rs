use super::*;
use crate::model::{ContainerPort, Pod};
use crate::sched::sample::*;
use crate::sched::topology::Term;
use crate::sched::{XorShift, HOSTNAME_LABEL, ZONE_LABEL};
use alloc::format;
use alloc::vec::Vec;

const GI: i64 = 1 << 30;

/// Counts of one term per domain value name (zero counts left out).
type TermCounts = BTreeMap<String, (u32, u32)>;

/// Everything the cache derives, keyed by names rather than slots or ids,
/// so that caches built in different orders compare equal.
#[derive(Debug, PartialEq)]
struct Digest {
    nodes: BTreeMap<
        String,
        (
            crate::sched::Resources,
            crate::sched::Resources,
            Vec<crate::sched::HostPort>,
        ),
    >,
    pods: BTreeMap<String, (String, bool)>,
    /// Terms some bound pod holds, by their Debug text.
    held_terms: BTreeMap<String, TermCounts>,
    spread: BTreeMap<(String, String), u32>,
}

fn term_name(c: &ClusterCache, t: &Term) -> String {
    format!("{:?}", (t.identity(), &c.topology.keys[t.key].key))
}

fn counts(c: &ClusterCache, t: &Term) -> TermCounts {
    let names = &c.topology.keys[t.key].names;
    let mut out = TermCounts::new();
    for (i, name) in names.iter().enumerate() {
        let m = Term::count(&t.matching, i as u32);
        let a = Term::count(&t.anti_owners, i as u32);
        if m + a > 0 {
            out.insert(name.clone(), (m, a));
        }
    }
    out
}

fn digest(c: &ClusterCache) -> Digest {
    let nodes = c
        .nodes()
        .map(|n| {
            let mut ports = n.host_ports.clone();
            ports.sort();
            (n.name.clone(), (n.requested, n.score_requested, ports))
        })
        .collect();
    let pods = c
        .pods
        .iter()
        .map(|(k, p)| (k.clone(), (p.node.clone(), p.slot.is_some())))
        .collect();
    let held_terms = c
        .topology
        .terms
        .iter()
        .flatten()
        .filter(|t| t.anti_owner_total > 0)
        .map(|t| (term_name(c, t), counts(c, t)))
        .collect();
    let slot_name = |slot: u32| c.nodes[slot as usize].as_ref().unwrap().name.clone();
    let mut spread = BTreeMap::new();
    for (owner, s) in &c.topology.spread {
        for (&slot, &n) in &s.per_node {
            spread.insert((owner.clone(), slot_name(slot)), n);
        }
        for (&zone, &n) in &s.per_zone {
            let z = c.topology.keys[0].names[zone as usize].clone();
            spread.insert((owner.clone(), format!("zone {z}")), n);
        }
    }
    Digest {
        nodes,
        pods,
        held_terms,
        spread,
    }
}

fn random_node(rng: &mut XorShift, i: u64) -> Node {
    let zone = ["", "a", "b", "c"][rng.below(4) as usize];
    let mut n = node(
        &format!("n{i}"),
        4000 + 1000 * rng.below(3) as i64,
        8 * GI,
        zone,
    );
    n.metadata
        .labels
        .insert("rack".into(), format!("r{}", rng.below(2)));
    n
}

fn random_pod(rng: &mut XorShift, j: u64) -> Pod {
    let mut p = pod("d", &format!("p{j}"), 100 * rng.below(4) as i64, 0);
    let app = ["web", "db"][rng.below(2) as usize];
    p.metadata.labels = labels(&[("app", app)]);
    if rng.below(2) == 0 {
        p = owned_by(p, app);
    }
    if rng.below(3) == 0 {
        let key = [HOSTNAME_LABEL, ZONE_LABEL, "rack"][rng.below(3) as usize];
        let other = ["web", "db"][rng.below(2) as usize];
        p = anti_affine(p, other, key);
    }
    if rng.below(4) == 0 {
        p.spec.containers[0].ports.push(ContainerPort {
            container_port: 80,
            host_port: 8000 + rng.below(2) as i32,
            ..ContainerPort::default()
        });
    }
    bound(p, &format!("n{}", rng.below(10)))
}

/// Random adds, updates and removals of nodes and pods, then the same final
/// state built from scratch in two orders: all three caches agree.
#[test]
fn incremental_cache_matches_one_built_from_scratch() {
    let mut exercised = (false, false, false);
    for seed in 1..=20 {
        let mut rng = XorShift::new(seed);
        let mut c = ClusterCache::new();
        let mut nodes = BTreeMap::new();
        let mut pods = BTreeMap::new();
        for _ in 0..300 {
            match rng.below(10) {
                0..=2 => {
                    let i = rng.below(8);
                    let n = random_node(&mut rng, i);
                    c.update_node(&n);
                    nodes.insert(n.metadata.name.clone(), n);
                }
                3 => {
                    let name = format!("n{}", rng.below(8));
                    c.remove_node(&name);
                    nodes.remove(&name);
                }
                4..=7 => {
                    let j = rng.below(40);
                    let p = random_pod(&mut rng, j);
                    assert!(c.add_pod(&p));
                    pods.insert(p.metadata.name.clone(), p);
                }
                _ => {
                    let name = format!("p{}", rng.below(40));
                    let had = pods.remove(&name).is_some();
                    assert_eq!(c.remove_pod("d", &name), had);
                }
            }
            // A pending pod's terms get interned too, as scheduling does.
            if rng.below(5) == 0 {
                let probe = random_pod(&mut rng, 99);
                c.prepare(&probe);
            }
        }
        let mut nodes_first = ClusterCache::new();
        nodes.values().for_each(|n| nodes_first.update_node(n));
        pods.values().for_each(|p| assert!(nodes_first.add_pod(p)));
        let mut pods_first = ClusterCache::new();
        pods.values().for_each(|p| assert!(pods_first.add_pod(p)));
        nodes.values().for_each(|n| pods_first.update_node(n));

        let want = digest(&nodes_first);
        exercised.0 |= !want.held_terms.is_empty();
        exercised.1 |= !want.spread.is_empty();
        exercised.2 |= want.pods.values().any(|(_, on_node)| !on_node);
        assert_eq!(digest(&c), want, "seed {seed}");
        assert_eq!(digest(&pods_first), want, "seed {seed}");
        assert_eq!(c.node_count(), nodes.len());
        assert_eq!(c.pod_count(), pods.len());

        // Terms interned late count the bound pods as terms interned early do.
        for t in [app_term("web", ZONE_LABEL), app_term("db", "rack")] {
            let ids = [&mut c, &mut nodes_first].map(|cache| {
                let id = cache.topology.intern(&t, "d", &cache.nodes, &cache.pods);
                counts(cache, cache.topology.term(id))
            });
            assert_eq!(ids[0], ids[1], "seed {seed} {t:?}");
        }
    }
    assert_eq!(exercised, (true, true, true), "terms, spread, orphans");
}

#[test]
fn removing_everything_leaves_nothing_counted() {
    let mut c = ClusterCache::new();
    c.update_node(&node("n1", 1000, GI, "a"));
    let p = owned_by(
        anti_affine(pod("d", "p", 100, GI / 2), "web", ZONE_LABEL),
        "web",
    );
    c.add_pod(&bound(p, "n1"));
    assert_eq!(c.node("n1").unwrap().requested.pods, 1);
    assert!(c.remove_pod("d", "p"));
    assert!(!c.remove_pod("d", "p"));
    let n = c.node("n1").unwrap();
    assert_eq!(n.requested, crate::sched::Resources::default());
    assert!(c.topology.spread.is_empty());
    assert!(c
        .topology
        .terms
        .iter()
        .flatten()
        .all(|t| t.anti_owner_total == 0));
    c.remove_node("n1");
    assert_eq!(c.node_count(), 0);
    assert!(c.node("n1").is_none());
}

#[test]
fn relabelling_a_node_moves_its_pods_between_domains() {
    let mut c = ClusterCache::new();
    c.update_node(&node("n1", 1000, GI, "a"));
    let mut web = pod("d", "w", 0, 0);
    web.metadata.labels = labels(&[("app", "web")]);
    c.add_pod(&bound(web, "n1"));
    let probe = anti_affine(pod("d", "probe", 0, 0), "web", ZONE_LABEL);
    let id = c.prepare(&probe).terms.required_anti[0];
    let by_zone = |c: &ClusterCache| counts(c, c.topology.term(id));
    assert_eq!(by_zone(&c).keys().collect::<Vec<_>>(), ["a"]);
    c.update_node(&node("n1", 1000, GI, "b"));
    assert_eq!(by_zone(&c).keys().collect::<Vec<_>>(), ["b"]);
    // A change that is not a label change keeps what is requested.
    let before = c.node("n1").unwrap().requested;
    c.update_node(&node("n1", 2000, GI, "b"));
    assert_eq!(c.node("n1").unwrap().requested, before);
    assert_eq!(c.node("n1").unwrap().allocatable.cpu_millis, 2000);
}

#[test]
fn pods_without_a_node_are_not_cached() {
    let mut c = ClusterCache::new();
    assert!(!c.add_pod(&pod("d", "p", 0, 0)));
    assert_eq!(c.pod_count(), 0);
}
