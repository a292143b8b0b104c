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

#[path = "../tests/common/pod_host.rs"]
mod pod_host;

use noderun_core::{Container, Pod};
use noderun_runtime::agent::{PhaseTimes, Runner};
use noderun_runtime::cgroups::{self, Layout};
use noderun_testkit::{privileged, unique_name_long, NetnsGuard, TempDir};
use pod_host::{pod_host, IMAGE};
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

    let host = pod_host(
        runner,
        dir.path(),
        node_ns.path(),
        parent.clone(),
        "10.78.0.0/16",
    );

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
    for (i, name) in PhaseTimes::NAMES.iter().enumerate() {
        let mut ms: Vec<f64> = samples
            .iter()
            .map(|t| t.phases()[i].as_secs_f64() * 1e3)
            .collect();
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
        image: IMAGE.into(),
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
