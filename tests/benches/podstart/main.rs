//! Pod start latency end to end (the Kubernetes SLI): from the create
//! request to the watch event that shows the pod Running, through the
//! real `controlplane` and `noderun agent` binaries (one node, busybox
//! already imported). 100 pods one after another, then bursts of 10 and
//! 100 created at once (time until all are Running); after each, the same
//! work done by Debian's crun + CNI bridge ([`floor`]) as the floor to
//! beat. Then noderun's RSS and its CPU use over 10 idle seconds with all
//! those pods.
//!
//! The per-phase breakdown joins three clocks that are one
//! (CLOCK_MONOTONIC): the bench's (create sent, bound seen on the watch,
//! Running seen on the watch) and the daemon's start record for the pod
//! (`noderun_tests::startrecord`): worker saw it, start began, the pod
//! layer's phases, containers started.
//!
//! Needs root and the release binaries:
//! `cargo build --release --bins && cargo bench -p noderun-tests --bench podstart`
//! (`-- N` for another count of sequential pods;
//! `NODERUN_BENCH_AGENT_ARGS="--runners 4"` adds flags to the agent).
//! Without the floor's
//! environment (see [`floor`]) the floor is left out, and the report says
//! so; scripts/bench-podstart.sh sets everything up.

mod cpu;
mod floor;
mod report;
mod stats;

use cpu::CpuTicks;
use floor::{Floor, FloorSample};
use noderun_client::{Client, ListOptions, WatchStream};
use noderun_core::proto::EventType;
use noderun_core::{Container, Kind, Object, ObjectMeta, Pod, PodPhase, PodSpec};
use noderun_tests::cluster::Cluster;
use noderun_tests::startrecord::{self, monotonic_micros, AgentRecord};
use report::{Section, Table};
use std::collections::HashMap;
use std::time::Duration;

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

/// One of our pods as the bench saw it (CLOCK_MONOTONIC microseconds)
/// and as the daemon recorded it.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    pub created: i64,
    pub bound: Option<i64>,
    pub running: i64,
    pub agent: Option<AgentRecord>,
}

/// Follow the watch until every pod of `samples` is Running, noting when
/// each was first seen bound and Running.
async fn follow(watch: &mut WatchStream, samples: &mut HashMap<String, Sample>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while samples.values().any(|s| s.running == 0) {
        let event = tokio::time::timeout_at(deadline, watch.next())
            .await
            .expect("pods Running within 120 s")
            .expect("watch open");
        let now = monotonic_micros();
        let (EventType::Added | EventType::Modified, Some(Object::Pod(p))) =
            (event.event_type, event.object)
        else {
            continue;
        };
        let Some(s) = samples.get_mut(&p.metadata.name) else {
            continue;
        };
        if !p.spec.node_name.is_empty() && s.bound.is_none() {
            s.bound = Some(now);
        }
        if p.status.phase == PodPhase::Running && s.running == 0 {
            s.running = now;
        }
    }
}

/// Create `names` all at once (one after another when there is one) and
/// wait until all are Running.
async fn start_pods(client: &Client, watch: &mut WatchStream, names: &[String]) -> Vec<Sample> {
    let creates: Vec<_> = names
        .iter()
        .map(|n| {
            let (client, object) = (client.clone(), pod(n));
            tokio::spawn(async move {
                let created = monotonic_micros();
                client.create(object).await.expect("create");
                created
            })
        })
        .collect();
    let mut samples = HashMap::new();
    for (name, task) in names.iter().zip(creates) {
        let created = task.await.expect("create task");
        samples.insert(
            name.clone(),
            Sample {
                created,
                ..Sample::default()
            },
        );
    }
    follow(watch, &mut samples).await;
    names.iter().map(|n| samples[n].clone()).collect()
}

/// Attach the daemon's start records (read from its log) to `samples`.
fn attach_records(cluster: &Cluster, names: &[String], samples: &mut [Sample]) {
    // The record is logged right after the status write returns; the
    // watch may show Running a moment earlier.
    for _ in 0..50 {
        let log = std::fs::read_to_string(cluster.noderun_log_path()).unwrap_or_default();
        let records = startrecord::read(&log);
        for (name, s) in names.iter().zip(samples.iter_mut()) {
            s.agent = records.get(name).cloned();
        }
        if samples.iter().all(|s| s.agent.is_some()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run_floor(floor: Option<&Floor>, count: usize, parallel: usize) -> Option<Vec<FloorSample>> {
    let floor = floor?;
    match floor.run(count, parallel) {
        Ok(samples) => Some(samples),
        Err(e) => {
            eprintln!("floor run failed: {e}");
            None
        }
    }
}

async fn bench(cluster: &Cluster, floor: Option<&Floor>, sequential: usize) -> Table {
    let client: Client = cluster.client().await;
    let mut watch = client
        .watch(Kind::Pod, Some("default"), &ListOptions::default(), 0)
        .await
        .expect("watch pods");
    let mut table = Table::default();

    let names: Vec<String> = (0..sequential).map(|i| format!("seq-{i}")).collect();
    let mut ours = Vec::new();
    let before = CpuTicks::now(cluster);
    for name in &names {
        ours.extend(start_pods(&client, &mut watch, std::slice::from_ref(name)).await);
    }
    let cpu = CpuTicks::now(cluster).since(&before);
    attach_records(cluster, &names, &mut ours);
    let theirs = run_floor(floor, sequential, 1);
    table.push(Section::new(format!("sequential {sequential}"), false, ours, theirs).with_cpu(cpu));

    for (burst, tag) in [(10usize, "b10"), (100, "b100")] {
        let names: Vec<String> = (0..burst).map(|i| format!("{tag}-{i}")).collect();
        let before = CpuTicks::now(cluster);
        let mut ours = start_pods(&client, &mut watch, &names).await;
        let cpu = CpuTicks::now(cluster).since(&before);
        attach_records(cluster, &names, &mut ours);
        let theirs = run_floor(floor, burst, burst);
        table.push(Section::new(format!("burst {burst}"), true, ours, theirs).with_cpu(cpu));
    }
    table
}

fn main() {
    if !noderun_testkit::privileged() {
        return;
    }
    let sequential = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100);
    let floor = match Floor::from_env() {
        Ok(f) => Some(f),
        Err(e) => {
            println!("floor (crun + CNI bridge) not run: {e}");
            None
        }
    };
    // Extra `noderun agent` flags for experiments (`--runners 4`).
    let extra = std::env::var("NODERUN_BENCH_AGENT_ARGS").unwrap_or_default();
    let mut agent_args = vec!["--max-pods", "500"];
    agent_args.extend(extra.split_whitespace());
    if !extra.is_empty() {
        println!("noderun agent flags: {}", agent_args.join(" "));
    }
    let cluster = Cluster::start_with(&agent_args);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let table = runtime.block_on(bench(&cluster, floor.as_ref(), sequential));
    drop(floor);
    table.print();

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
