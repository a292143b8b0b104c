//! Apiserver throughput and watch latency through its Unix socket:
//! `cargo run --release -p noderun-controlplane --example apiserver_bench -- [--store URL] [CREATES] [WATCHERS] [STORED]`.
//!
//! Starts an apiserver in this process on a fresh data dir (removed
//! afterwards) and talks to it over the socket: creates/s and gets/s with
//! 1, 8 and 64 clients (one connection each), the delay from the start of
//! a create to each of WATCHERS watchers receiving its event, and the
//! process's RSS once STORED pods are stored. `--store embedded` (the
//! default) keeps the objects in the data dir; `--store
//! etcd://HOST:PORT/PREFIX` in a running etcd, under a prefix of the
//! run's own (it must be empty: the bench creates the same names).

mod common;

use noderun_controlplane::client::{Client, Endpoint, ListOptions};
use noderun_controlplane::store::{EmbeddedOptions, EmbeddedStore, EtcdOptions, EtcdStore, Store};
use noderun_core::{Container, Kind, Object, ObjectMeta, Pod, PodSpec};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "bench-token-0123456789abcdef";

fn pod(name: &str) -> Object {
    Object::Pod(Pod {
        metadata: ObjectMeta::named("default", name),
        spec: PodSpec {
            containers: vec![Container {
                name: "main".into(),
                image: "busybox:1.36".into(),
                ..Container::default()
            }],
            ..PodSpec::default()
        },
        ..Pod::default()
    })
}

async fn clients(endpoint: &Endpoint, n: usize) -> Vec<Client> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(
            Client::connect(endpoint, TOKEN, "bench")
                .await
                .expect("connect"),
        );
    }
    out
}

/// Run `total` calls spread over `clients`, return calls per second.
async fn rate<F, Fut>(clients: &[Client], total: usize, call: F) -> f64
where
    F: Fn(Client, usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (c, client) in clients.iter().enumerate() {
        let (client, call, n) = (client.clone(), call.clone(), clients.len());
        tasks.spawn(async move {
            for i in (c..total).step_by(n) {
                call(client.clone(), i).await;
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("bench task");
    }
    total as f64 / start.elapsed().as_secs_f64()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

async fn watch_latency(endpoint: &Endpoint, admin: &Client, watchers: usize, events: usize) {
    let mut streams = Vec::new();
    for c in clients(endpoint, watchers).await {
        let s = c
            .watch(Kind::Pod, None, &ListOptions::default(), 0)
            .await
            .expect("watch");
        streams.push((c, s));
    }
    let starts = Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    let mut tasks = tokio::task::JoinSet::new();
    for (client, mut stream) in streams {
        let starts = Arc::clone(&starts);
        tasks.spawn(async move {
            let mut delays = Vec::new();
            while delays.len() < events {
                let e = stream.next().await.expect("watch open");
                let now = Instant::now();
                let name = e.object.expect("object").metadata().name.clone();
                let start: Instant = *starts.lock().unwrap().get(&name).expect("start recorded");
                delays.push(now - start);
            }
            drop(client);
            delays
        });
    }
    let mut acks = Vec::new();
    for i in 0..events {
        let name = format!("w{i}");
        let start = Instant::now();
        starts.lock().unwrap().insert(name.clone(), start);
        admin.create(pod(&name)).await.expect("create");
        acks.push(start.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut delays = Vec::new();
    while let Some(d) = tasks.join_next().await {
        delays.extend(d.expect("watcher"));
    }
    delays.sort();
    acks.sort();
    println!(
        "watch fan-out to {watchers} watchers, {events} creates: event after create start p50 {:.2?} p99 {:.2?} max {:.2?} (create ack p50 {:.2?} p99 {:.2?})",
        percentile(&delays, 0.5),
        percentile(&delays, 0.99),
        delays[delays.len() - 1],
        percentile(&acks, 0.5),
        percentile(&acks, 0.99),
    );
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let url = common::take_store_arg(&mut args)?;
    let mut args = args.into_iter();
    let creates: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(4000);
    let watchers: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100);
    let stored: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10_000);
    let dir = std::env::temp_dir().join(format!("noderun-apiserver-bench-{}", std::process::id()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        let sizes = Sizes {
            creates,
            watchers,
            stored,
        };
        if url == "embedded" {
            let store = EmbeddedStore::open(&EmbeddedOptions {
                data_dir: dir.join("data"),
            })?;
            run(store, &dir, sizes).await
        } else {
            let store = EtcdStore::connect(&EtcdOptions::from_url(&url)?).await?;
            run(store, &dir, sizes).await
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// How much the bench does.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    creates: usize,
    watchers: usize,
    stored: usize,
}

/// The whole bench on an apiserver serving from `store`.
async fn run<S: Store>(store: S, dir: &std::path::Path, sizes: Sizes) -> Result<(), BoxError> {
    let Sizes {
        creates,
        watchers,
        stored,
    } = sizes;
    let tokens = format!("{TOKEN},admin\n");
    let (running, endpoint) = common::serve_in_process(store, dir, &tokens).await?;
    let mut made = 0usize;
    for n in [1usize, 8, 64] {
        let cs = clients(&endpoint, n).await;
        let base = made;
        let creates_s = rate(&cs, creates, move |c, i| async move {
            c.create(pod(&format!("p{}", base + i)))
                .await
                .expect("create");
        })
        .await;
        made += creates;
        let gets_s = rate(&cs, creates * 4, move |c, i| async move {
            let name = format!("p{}", base + i % creates);
            c.get(Kind::Pod, "default", &name).await.expect("get");
        })
        .await;
        println!("{n:>2} clients: {creates_s:>8.0} creates/s  {gets_s:>8.0} gets/s");
    }
    let admin = Client::connect(&endpoint, TOKEN, "bench").await?;
    watch_latency(&endpoint, &admin, watchers, 200).await;
    let cs = clients(&endpoint, 64).await;
    let remaining = stored.saturating_sub(made);
    let base = made;
    rate(&cs, remaining, move |c, i| async move {
        c.create(pod(&format!("s{}", base + i)))
            .await
            .expect("create");
    })
    .await;
    let (items, _) = admin.list(Kind::Pod, None, &ListOptions::default()).await?;
    println!(
        "RSS with {} pods stored (server and bench clients in one process): {} MiB",
        items.len(),
        rss_kib() / 1024
    );
    running.shutdown().await;
    Ok(())
}
