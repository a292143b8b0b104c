//! The scheduling algorithm alone (no apiserver, no binds): 10,000 pods
//! placed one at a time on 5,000 nodes, each pod accounted in the cache
//! before the next is scheduled, as the scheduler service does. Three
//! workloads, as in kube-scheduler's scheduler_perf:
//!
//! - plain: 100m CPU / 128 MiB pods of 100 ReplicaSets (spread score on);
//! - anti-affinity: two apps of 5,000 pods each, every pod with required
//!   anti-affinity to its own app by hostname (so each app fills every node
//!   exactly once; the last pods of an app have one feasible node left);
//! - node affinity + tolerations: half the nodes tainted
//!   `dedicated=infra:NoSchedule` and labelled `pool=infra`; every pod
//!   requires `pool in (infra)` and tolerates the taint.
//!
//! Each runs with kube-scheduler's adaptive percentageOfNodesToScore (10%
//! of 5,000 nodes) and with every node examined (100%). Prints pods/s.
//! `SCHED_BENCH_PODS` and `SCHED_BENCH_NODES` override the sizes.

use noderun_core::model::{Node, Pod, TaintEffect};
use noderun_core::sched::sample::*;
use noderun_core::sched::{ClusterCache, Scheduler, SchedulerConfig, HOSTNAME_LABEL};
use std::time::Instant;

const GI: i64 = 1 << 30;
const MI: i64 = 1 << 20;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn nodes(count: usize, tainted_every: usize) -> Vec<Node> {
    (0..count)
        .map(|i| {
            let mut n = node(
                &format!("node-{i:05}"),
                32_000,
                128 * GI,
                ["zone-a", "zone-b", "zone-c"][i % 3],
            );
            if tainted_every > 0 && i % tainted_every == 0 {
                n.metadata.labels.insert("pool".into(), "infra".into());
                n.spec
                    .taints
                    .push(taint("dedicated", "infra", TaintEffect::NoSchedule));
            }
            n
        })
        .collect()
}

fn plain(i: usize) -> Pod {
    let rs = format!("rs-{}", i % 100);
    let mut p = owned_by(pod("bench", &format!("plain-{i}"), 100, 128 * MI), &rs);
    p.metadata.labels = labels(&[("app", &rs)]);
    p
}

fn anti_affine_pod(i: usize) -> Pod {
    let app = ["anti-a", "anti-b"][i % 2];
    let mut p = owned_by(pod("bench", &format!("anti-{i}"), 100, 128 * MI), app);
    p.metadata.labels = labels(&[("app", app)]);
    anti_affine(p, app, HOSTNAME_LABEL)
}

fn node_affine_pod(i: usize) -> Pod {
    let p = plain(i);
    tolerating(requires_node_label(p, "pool", &["infra"]), "dedicated")
}

struct Run {
    pods_per_sec: f64,
    placed: usize,
    mean_evaluated: f64,
}

fn run(nodes: &[Node], pods: Vec<Pod>, percentage: u32) -> Run {
    let mut cache = ClusterCache::new();
    for n in nodes {
        cache.update_node(n);
    }
    let config = SchedulerConfig {
        percentage_of_nodes_to_score: percentage,
        ..SchedulerConfig::default()
    };
    let mut scheduler = Scheduler::new(config, 1);
    let count = pods.len();
    let (mut placed, mut evaluated) = (0, 0);
    let start = Instant::now();
    for mut pod in pods {
        match scheduler.schedule(&mut cache, &pod) {
            Ok(p) => {
                evaluated += p.evaluated;
                pod.spec.node_name = p.node;
                cache.add_pod(&pod);
                placed += 1;
            }
            Err(e) => eprintln!("{}: {e}", pod.metadata.name),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    Run {
        pods_per_sec: count as f64 / secs,
        placed,
        mean_evaluated: evaluated as f64 / placed.max(1) as f64,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects workloads.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let pod_count = env_or("SCHED_BENCH_PODS", 10_000);
    let node_count = env_or("SCHED_BENCH_NODES", 5_000);
    let plain_nodes = nodes(node_count, 0);
    let tainted_nodes = nodes(node_count, 2);
    type Workload<'a> = (&'a str, &'a [Node], fn(usize) -> Pod);
    let workloads: [Workload<'_>; 3] = [
        ("plain", &plain_nodes, plain),
        ("anti-affinity (hostname)", &plain_nodes, anti_affine_pod),
        (
            "node affinity + tolerations",
            &tainted_nodes,
            node_affine_pod,
        ),
    ];
    println!("scheduling {pod_count} pods onto {node_count} nodes (algorithm alone, one thread)");
    for (name, nodes, make) in workloads {
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        for pct in [0, 100] {
            let pods: Vec<Pod> = (0..pod_count).map(make).collect();
            let r = run(nodes, pods, pct);
            let pct = if pct == 0 {
                "adaptive".to_string()
            } else {
                format!("{pct}%")
            };
            println!(
                "{name:<28} nodes scored {pct:<8} {:>9.0} pods/s  placed {}/{pod_count}  \
                 mean nodes filtered per pod {:.0}",
                r.pods_per_sec, r.placed, r.mean_evaluated
            );
        }
    }
}
