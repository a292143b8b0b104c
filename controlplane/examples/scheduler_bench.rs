//! The scheduler end to end through a real apiserver:
//! `cargo run --release -p noderun-controlplane --example scheduler_bench -- [WORKLOAD] [--pods N] [--nodes N] [--runs N] [--data-dir DIR]`.
//!
//! Each run starts from an empty apiserver: an in-process one on a fresh
//! temp data dir (removed afterwards), or, with `--data-dir DIR`, the
//! `controlplane --no-scheduler --no-controllers` serving `DIR/cp.sock`
//! (tokens read from `DIR/admin.token` and `DIR/scheduler.token`; the
//! script starts a fresh one per run). The bench creates the nodes and
//! the pods (unbound), then starts the scheduler in this process and
//! times from its start until a watch of its own has seen every pod
//! bound: the scheduler's first list, every decision and every bind
//! (each a compare-and-swap write through the apiserver) included.
//!
//! Workloads (`plain`, `anti`, `node`: a name's prefix picks them; all by
//! default) are those of `noderun_core::sched::sample::Workload`, the same
//! as the algorithm-alone bench (`cargo bench -p noderun-core --bench
//! schedule`). Prints pods/s per run and the median of the runs.
//! `SCHED_BENCH_CONNECTIONS` and `SCHED_BENCH_IN_FLIGHT` override the
//! scheduler's bind connections and binds in flight.

mod common;

use noderun_controlplane::client::{Client, Endpoint, ListOptions};
use noderun_controlplane::controllers::Connector;
use noderun_controlplane::scheduler::{self, SchedulerOptions};
use noderun_controlplane::store::{EmbeddedOptions, EmbeddedStore};
use noderun_core::proto::EventType;
use noderun_core::sched::sample::Workload;
use noderun_core::{Kind, Namespace, Object, ObjectMeta};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const ADMIN: &str = "bench-admin-token-0123456789abcdef";
const SCHEDULER: &str = "bench-scheduler-token-0123456789abcdef";
/// Connections the bench creates objects over.
const WRITERS: usize = 32;

#[derive(Debug)]
struct Args {
    workloads: Vec<Workload>,
    pods: usize,
    nodes: usize,
    runs: usize,
    data_dir: Option<PathBuf>,
}

fn parse_args() -> Result<Args, BoxError> {
    let mut args = Args {
        workloads: Vec::new(),
        pods: 10_000,
        nodes: 5_000,
        runs: 1,
        data_dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--pods" => args.pods = value()?.parse()?,
            "--nodes" => args.nodes = value()?.parse()?,
            "--runs" => args.runs = value()?.parse()?,
            "--data-dir" => args.data_dir = Some(value()?.into()),
            name => {
                let w = Workload::ALL
                    .into_iter()
                    .find(|w| w.name().starts_with(name))
                    .ok_or(format!("no workload {name:?}: plain, anti or node"))?;
                args.workloads.push(w);
            }
        }
    }
    if args.workloads.is_empty() {
        args.workloads = Workload::ALL.to_vec();
    }
    Ok(args)
}

fn main() -> Result<(), BoxError> {
    let args = parse_args()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        println!(
            "{} pods onto {} nodes, end to end through the apiserver (scheduler in-process, {} cores)",
            args.pods,
            args.nodes,
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
        for &workload in &args.workloads {
            let mut rates = Vec::new();
            for run in 0..args.runs {
                let r = match &args.data_dir {
                    Some(dir) => against(dir, workload, &args).await?,
                    None => in_process(workload, &args).await?,
                };
                println!(
                    "{:<28} run {}: {:>7.0} pods/s ({:.2} s; {} conflicts, {} unschedulable attempts{})",
                    workload.name(),
                    run + 1,
                    r.pods_per_sec,
                    r.seconds,
                    r.conflicts,
                    r.unschedulable,
                    match placeable(workload, args.pods, args.nodes) {
                        n if n < args.pods => format!("; {n} of {} pods placeable", args.pods),
                        _ => String::new(),
                    }
                );
                rates.push(r.pods_per_sec);
            }
            rates.sort_by(f64::total_cmp);
            println!(
                "{:<28} median {:>7.0} pods/s",
                workload.name(),
                rates[rates.len() / 2]
            );
        }
        Ok::<(), BoxError>(())
    })
}

/// What one run measured.
struct Measured {
    pods_per_sec: f64,
    seconds: f64,
    conflicts: u64,
    unschedulable: u64,
}

/// A run against the controlplane serving `dir/cp.sock`.
async fn against(dir: &Path, workload: Workload, args: &Args) -> Result<Measured, BoxError> {
    let token = |name: &str| -> Result<String, BoxError> {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        Ok(text.trim().to_owned())
    };
    let endpoint = Endpoint::Unix(dir.join("cp.sock"));
    measure(
        &endpoint,
        &token("admin.token")?,
        &token("scheduler.token")?,
        workload,
        args,
    )
    .await
}

/// A run against an apiserver in this process on a temp data dir.
async fn in_process(workload: Workload, args: &Args) -> Result<Measured, BoxError> {
    let dir = std::env::temp_dir().join(format!("noderun-scheduler-bench-{}", std::process::id()));
    let result = async {
        let store = EmbeddedStore::open(&EmbeddedOptions {
            data_dir: dir.join("data"),
        })?;
        let tokens = format!("{ADMIN},admin\n{SCHEDULER},system:scheduler\n");
        let (running, endpoint) = common::serve_in_process(store, &dir, &tokens).await?;
        let measured = measure(&endpoint, ADMIN, SCHEDULER, workload, args).await;
        running.shutdown().await;
        measured
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Create the nodes and pods, start the scheduler, time until all bound.
async fn measure(
    endpoint: &Endpoint,
    admin_token: &str,
    scheduler_token: &str,
    workload: Workload,
    args: &Args,
) -> Result<Measured, BoxError> {
    let mut writers = Vec::new();
    for _ in 0..WRITERS {
        writers.push(Client::connect(endpoint, admin_token, "scheduler-bench").await?);
    }
    let bench_ns = Object::Namespace(Namespace {
        metadata: ObjectMeta::named("", "bench"),
        ..Namespace::default()
    });
    writers[0].create(bench_ns).await?;
    let nodes = workload.nodes(args.nodes).into_iter().map(Object::Node);
    create_all(&writers, nodes.collect()).await?;
    let pods = (0..args.pods).map(|i| Object::Pod(workload.pod(i)));
    create_all(&writers, pods.collect()).await?;

    let watcher = Client::connect(endpoint, admin_token, "scheduler-bench/watch").await?;
    let mut options = SchedulerOptions::default();
    if let Some(n) = env_number("SCHED_BENCH_CONNECTIONS") {
        options.connections = n;
    }
    if let Some(n) = env_number("SCHED_BENCH_IN_FLIGHT") {
        options.binds_in_flight = n;
    }
    let counters = Arc::clone(&options.counters);
    let connector = Connector {
        endpoint: endpoint.clone(),
        token: scheduler_token.to_owned(),
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    // The watch starts before the scheduler, so no bind is missed.
    let mut bound = BoundWatch::start(watcher).await?;
    let start = Instant::now();
    let task = tokio::spawn(scheduler::run(connector, options, stopped));
    let placeable = placeable(workload, args.pods, args.nodes);
    let all_bound = bound.until(placeable, Duration::from_secs(300)).await;
    let seconds = start.elapsed().as_secs_f64();
    let _ = stop.send(true);
    let _ = task.await;
    all_bound?;
    Ok(Measured {
        pods_per_sec: placeable as f64 / seconds,
        seconds,
        conflicts: counters.bind_conflicts(),
        unschedulable: counters.unschedulable(),
    })
}

/// How many of `pods` can be bound on `nodes`: all, but for anti-affinity
/// (each of its two apps takes a node at most once).
fn placeable(workload: Workload, pods: usize, nodes: usize) -> usize {
    match workload {
        Workload::AntiAffinity => pods.min(2 * nodes),
        _ => pods,
    }
}

/// A number from the environment, if set.
fn env_number(name: &str) -> Option<usize> {
    std::env::var(name).ok()?.parse().ok()
}

/// Create `objects` over all `writers`, many at once.
async fn create_all(writers: &[Client], objects: Vec<Object>) -> Result<(), BoxError> {
    let mut shares: Vec<Vec<Object>> = vec![Vec::new(); writers.len()];
    for (i, o) in objects.into_iter().enumerate() {
        shares[i % writers.len()].push(o);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (client, share) in writers.iter().zip(shares) {
        let client = client.clone();
        tasks.spawn(async move {
            for o in share {
                client.create(o).await?;
            }
            Ok::<(), noderun_controlplane::client::ClientError>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// Which pods a watch has seen bound; relists if the watch expires.
struct BoundWatch {
    client: Client,
    seen: HashSet<String>,
    stream: noderun_controlplane::client::WatchStream,
}

impl BoundWatch {
    async fn start(client: Client) -> Result<BoundWatch, BoxError> {
        let stream = client
            .watch(Kind::Pod, Some("bench"), &ListOptions::default(), 0)
            .await?;
        Ok(BoundWatch {
            client,
            seen: HashSet::new(),
            stream,
        })
    }

    /// Wait until `count` pods are bound, or fail after `limit`.
    async fn until(&mut self, count: usize, limit: Duration) -> Result<(), BoxError> {
        let deadline = tokio::time::Instant::now() + limit;
        while self.seen.len() < count {
            let event = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .map_err(|_| {
                    format!(
                        "only {} of {count} pods bound in {limit:?}",
                        self.seen.len()
                    )
                })?
                .ok_or("the watch connection closed")?;
            match (event.event_type, event.object) {
                (EventType::Expired, _) => self.relist().await?,
                (_, Some(Object::Pod(p))) if !p.spec.node_name.is_empty() => {
                    self.seen.insert(p.metadata.name);
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn relist(&mut self) -> Result<(), BoxError> {
        let options = ListOptions::default();
        let (items, revision) = self.client.list(Kind::Pod, Some("bench"), &options).await?;
        for o in items {
            if let Object::Pod(p) = o {
                if !p.spec.node_name.is_empty() {
                    self.seen.insert(p.metadata.name);
                }
            }
        }
        self.stream = self
            .client
            .watch(Kind::Pod, Some("bench"), &options, revision)
            .await?;
        Ok(())
    }
}
