//! Pod attach numbers, printed, never asserted (needs root): ADD and DEL
//! through [`PodNetwork`] for 100 pods on one bridge, each pod its own
//! network namespace, the "host" side a namespace of its own; and the IPAM
//! store alone (lock, read, allocate, atomic write with fsync). Namespace
//! creation is outside the timed part.
//!
//! Run: `cargo bench -p noderun-netplug --bench attach` (add
//! `NODERUN_BENCH_DIR=/dev/shm` to keep the IPAM state on tmpfs).

use noderun_core::ipam::{Owner, Range};
use noderun_netplug::{IpamStore, NetworkConfig, PodNetwork};
use noderun_testkit::{privileged, unique_name, NetnsGuard, TempDir};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const PODS: usize = 100;

fn main() {
    if !privileged() {
        return;
    }
    let parent =
        std::env::var_os("NODERUN_BENCH_DIR").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    println!("IPAM state under {}", parent.display());
    let state = TempDir::new_in(&parent, "nr-bench-netplug").unwrap();
    let host = NetnsGuard::new("nr-bench-host").unwrap();
    let mut config = NetworkConfig::new(
        "bench",
        unique_name("nrbb"),
        "10.250.0.0/16".parse().unwrap(),
    );
    config.state_root = state.path().into();
    let network = PodNetwork::new(config)
        .unwrap()
        .with_host_netns(host.path())
        .unwrap();
    let pods: Vec<NetnsGuard> = (0..PODS)
        .map(|_| NetnsGuard::new("nr-bench-pod").unwrap())
        .collect();

    let adds = timed(pods.iter().enumerate(), |(n, pod)| {
        network
            .add(pod.path(), &format!("pod-{n}"), "eth0")
            .unwrap();
    });
    report("ADD (veth, address, lo, route, IPAM)", adds);
    let dels = timed(0..PODS, |n| {
        network.del(&format!("pod-{n}"), "eth0").unwrap()
    });
    report("DEL (veth, IPAM)", dels);

    let store = IpamStore::open(&state.join("store"), "bench", range()).unwrap();
    let allocs = timed(0..PODS, |n| {
        store
            .allocate(&Owner::new(format!("s-{n}"), "eth0"))
            .unwrap();
    });
    report("IPAM store allocate alone", allocs);
}

fn range() -> Range {
    Range::new("10.251.0.0/16".parse().unwrap()).unwrap()
}

fn timed<T>(items: impl Iterator<Item = T>, mut f: impl FnMut(T)) -> Vec<Duration> {
    items
        .map(|item| {
            let start = Instant::now();
            f(item);
            start.elapsed()
        })
        .collect()
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "{what}: n={} median {:?} p90 {:?} max {:?} mean {:?}",
        samples.len(),
        at(0.5),
        at(0.9),
        at(1.0),
        mean
    );
}
