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

use noderun_core::model::{Node, Pod};
use noderun_core::sched::sample::Workload;
use noderun_core::sched::{ClusterCache, Scheduler, SchedulerConfig};
use std::time::Instant;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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
    println!("scheduling {pod_count} pods onto {node_count} nodes (algorithm alone, one thread)");
    for workload in Workload::ALL {
        let name = workload.name();
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let nodes = workload.nodes(node_count);
        for pct in [0, 100] {
            let pods: Vec<Pod> = (0..pod_count).map(|i| workload.pod(i)).collect();
            let r = run(&nodes, pods, pct);
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
