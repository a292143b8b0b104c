//! Pod start latency end to end (the Kubernetes SLI): from the create
//! request to the watch event that shows the pod Running, through the
//! real `controlplane` and `noderun agent` binaries (one node, busybox
//! already imported). 100 pods one after another, then bursts of 10 and
//! 100 created at once (time until all are Running); then noderun's RSS
//! and its CPU use over 10 idle seconds with all those pods.
//!
//! Needs root and the release binaries:
//! `cargo build --release --bins && cargo bench -p noderun-tests --bench podstart`
//! (`-- N` for another count of sequential pods).

use noderun_client::{Client, ListOptions, WatchStream};
use noderun_core::proto::EventType;
use noderun_core::{Container, Kind, Object, ObjectMeta, Pod, PodPhase, PodSpec};
use noderun_tests::cluster::Cluster;
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn pod(name: &str) -> Object {
    Object::Pod(Pod {
        metadata: ObjectMeta::named("default", name),
        spec: PodSpec {
            containers: vec![Container {
                name: "main".into(),
                image: "busybox".into(),
                command: vec!["sleep".into(), "3600".into()],
                ..Container::default()
            }],
            ..PodSpec::default()
        },
        ..Pod::default()
    })
}

/// Wait for `names` to be Running; when each became Running, after `t0`.
async fn running(
    watch: &mut WatchStream,
    names: &[String],
    t0: Instant,
) -> HashMap<String, Duration> {
    let mut done = HashMap::new();
    let deadline = t0 + Duration::from_secs(120);
    while done.len() < names.len() {
        let event = tokio::time::timeout_at(deadline.into(), watch.next())
            .await
            .expect("pods Running within 120 s")
            .expect("watch open");
        if let (EventType::Added | EventType::Modified, Some(Object::Pod(p))) =
            (event.event_type, event.object)
        {
            if p.status.phase == PodPhase::Running && names.contains(&p.metadata.name) {
                done.entry(p.metadata.name).or_insert_with(|| t0.elapsed());
            }
        }
    }
    done
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

async fn bench(cluster: &Cluster, sequential: usize) {
    let client: Client = cluster.client().await;
    let mut watch = client
        .watch(Kind::Pod, Some("default"), &ListOptions::default(), 0)
        .await
        .expect("watch pods");
    let mut latencies = Vec::new();
    for i in 0..sequential {
        let name = format!("seq-{i}");
        let t0 = Instant::now();
        client.create(pod(&name)).await.expect("create");
        let done = running(&mut watch, std::slice::from_ref(&name), t0).await;
        latencies.push(done[&name]);
    }
    latencies.sort();
    println!(
        "sequential {sequential}: p50 {} p90 {} p99 {} max {}",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.9)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap())
    );
    for (burst, tag) in [(10usize, "b10"), (100, "b100")] {
        let names: Vec<String> = (0..burst).map(|i| format!("{tag}-{i}")).collect();
        let t0 = Instant::now();
        let creates = names.iter().map(|n| {
            let (client, object) = (client.clone(), pod(n));
            async move { client.create(object).await }
        });
        for r in futures_join(creates).await {
            r.expect("create");
        }
        let done = running(&mut watch, &names, t0).await;
        let mut all: Vec<Duration> = done.into_values().collect();
        all.sort();
        println!(
            "burst {burst}: all Running after {} (p50 {}, p99 {})",
            ms(*all.last().unwrap()),
            ms(percentile(&all, 0.5)),
            ms(percentile(&all, 0.99))
        );
    }
}

/// Run the futures concurrently.
async fn futures_join<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

fn main() {
    if !noderun_testkit::privileged() {
        return;
    }
    let sequential = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100);
    let cluster = Cluster::start_with(&["--max-pods", "500"]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    runtime.block_on(bench(&cluster, sequential));
    let pods = sequential + 110;
    if let Some(rss) = cluster.noderun_rss_kib() {
        println!("noderun RSS with {pods} pods: {rss} KiB");
    }
    // Idle: nothing changes for 10 s; what the daemon spends watching.
    let window = Duration::from_secs(10);
    if let Some(before) = cluster.noderun_cpu_ticks() {
        std::thread::sleep(window);
        if let Some(after) = cluster.noderun_cpu_ticks() {
            // Clock ticks are 1/100 s on Linux.
            let percent = (after - before) as f64 / window.as_secs_f64();
            println!("noderun CPU with {pods} idle pods: {percent:.1}% of one core");
        }
    }
}
