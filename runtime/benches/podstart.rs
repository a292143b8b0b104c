//! In-process pod start, printed, never asserted (needs root): 50
//! one-container busybox pods (`sleep 3600`) started one after another by
//! the agent's pod layer — sandbox (namespaces pinned, pod cgroup),
//! network (netplug ADD), rootfs (snapshot prepare + overlay mount + spec;
//! the image is unpacked before the timing), create and start through the
//! pre-forked runner — with median and p95 of each phase and of the
//! total. Each pod is torn down after its start, outside the timing.
//! The host side of the pod network is a namespace of the bench's own.
//!
//! Run: `cargo bench -p noderun-runtime --bench podstart` (`PODS=N` for
//! another count).

use noderun_core::{Container, Pod};
use noderun_netplug::{NetworkConfig, PodNetwork};
use noderun_runtime::agent::{AgentConfig, PhaseTimes, PodHost, Runner};
use noderun_runtime::cgroups::{self, Layout};
use noderun_runtime::image::{ImageStore, PlatformSpec};
use noderun_runtime::snapshot::{unpack_image, Snapshotter};
use noderun_testkit::{busybox_layout, privileged, unique_name_long, NetnsGuard, TempDir};
use std::path::PathBuf;
use std::time::Duration;

fn main() {
    // The runner is forked first, while this process has one thread.
    let runner = Runner::start().expect("start the runner");
    if !privileged() {
        return;
    }
    let pods: usize = std::env::var("PODS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50);
    let dir = TempDir::new("nr-podstart").unwrap();
    let node_ns = NetnsGuard::new("nr-bench-node").unwrap();
    let parent = PathBuf::from(unique_name_long("noderun-bench"));
    let layout = Layout::detect().unwrap();

    let images = ImageStore::open(&dir.join("images"))
        .unwrap()
        .with_platform(PlatformSpec::linux_amd64());
    images.import_path(&busybox_layout(), None).unwrap();
    let snapshots = Snapshotter::new(&dir.join("snapshots")).unwrap();
    unpack_image(&images, &snapshots, "busybox").unwrap();
    let mut net = NetworkConfig::new(
        "pods",
        noderun_testkit::unique_name("nrbn"),
        "10.78.0.0/16".parse().unwrap(),
    );
    net.state_root = dir.join("ipam");
    let network = PodNetwork::new(net)
        .unwrap()
        .with_host_netns(node_ns.path())
        .unwrap();
    let config = AgentConfig {
        run_dir: dir.join("run"),
        log_dir: dir.join("log"),
        cgroup_parent: parent.clone(),
    };
    let host = PodHost::new(config, runner, images, snapshots, network).unwrap();

    let mut samples: Vec<PhaseTimes> = Vec::with_capacity(pods);
    // One pod first to make the bridge (a node does it once).
    for i in 0..=pods {
        let uid = format!("bench-{}-{i}", std::process::id());
        let pod = one_container_pod(&uid, i);
        let started = host.start_pod(&pod).unwrap();
        if i > 0 {
            samples.push(started.times);
        }
        host.teardown_pod(&uid, Duration::ZERO).unwrap();
    }
    drop(host);
    if let Ok(cg) = cgroups::open(&layout, &parent) {
        let _ = cg.kill_all().and_then(|()| cg.delete());
    }

    println!("in-process pod start, {pods} one-container busybox pods, sequential (ms)");
    println!("{:<10} {:>8} {:>8}", "phase", "median", "p95");
    let phases: [(&str, fn(&PhaseTimes) -> Duration); 6] = [
        ("sandbox", |t| t.sandbox),
        ("network", |t| t.network),
        ("rootfs", |t| t.rootfs),
        ("create", |t| t.create),
        ("start", |t| t.start),
        ("total", |t| t.total()),
    ];
    for (name, get) in phases {
        let mut ms: Vec<f64> = samples.iter().map(|t| get(t).as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        println!(
            "{name:<10} {:>8.2} {:>8.2}",
            percentile(&ms, 50),
            percentile(&ms, 95)
        );
    }
}

fn one_container_pod(uid: &str, i: usize) -> Pod {
    let mut pod = Pod::default();
    pod.metadata.name = format!("bench-{i}");
    pod.metadata.namespace = "default".into();
    pod.metadata.uid = uid.into();
    pod.spec.containers = vec![Container {
        name: "sleep".into(),
        image: "busybox".into(),
        command: vec!["sleep".into(), "3600".into()],
        ..Container::default()
    }];
    pod
}

/// The `p`th percentile of sorted values (nearest rank).
fn percentile(sorted: &[f64], p: usize) -> f64 {
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}
