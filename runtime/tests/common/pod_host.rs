//! A pod host for the agent's tests and its podstart bench: busybox
//! imported and unpacked into stores under `dir`, the pod network's host
//! side in the namespace `node_ns` (the real host's links are never
//! touched), IPAM state, run dir and logs under `dir`, pod cgroups under
//! `cgroup_parent`.

use noderun_netplug::{NetworkConfig, PodNetwork};
use noderun_runtime::agent::logs::LogRotation;
use noderun_runtime::agent::{AgentConfig, PodHost, Runner};
use noderun_runtime::image::{ImageStore, PlatformSpec};
use noderun_runtime::snapshot::{unpack_image, Snapshotter};
use std::path::{Path, PathBuf};

/// The image every pod of these tests runs.
pub const IMAGE: &str = "busybox";

/// Container logs rotate at 16 KiB, 3 files kept: small, so that a test
/// sees rotation.
pub const LOG_ROTATION: LogRotation = LogRotation {
    max_size: 16 * 1024,
    max_files: 3,
};

pub fn pod_host(
    runner: Runner,
    dir: &Path,
    node_ns: &Path,
    cgroup_parent: PathBuf,
    subnet: &str,
) -> PodHost {
    let bridge = noderun_testkit::unique_name("nrab");
    pod_host_on_bridge(runner, dir, node_ns, cgroup_parent, subnet, &bridge)
}

/// [`pod_host`] with the pod network on `bridge` (another host's, for a
/// second host on the same node).
pub fn pod_host_on_bridge(
    runner: Runner,
    dir: &Path,
    node_ns: &Path,
    cgroup_parent: PathBuf,
    subnet: &str,
    bridge: &str,
) -> PodHost {
    let images = ImageStore::open(&dir.join("images"))
        .unwrap()
        .with_platform(PlatformSpec::linux_amd64());
    images
        .import_path(&noderun_testkit::busybox_layout(), None)
        .unwrap();
    let snapshots = Snapshotter::new(&dir.join("snapshots")).unwrap();
    unpack_image(&images, &snapshots, IMAGE).unwrap();
    let mut net = NetworkConfig::new("pods", bridge.to_string(), subnet.parse().unwrap());
    net.state_root = dir.join("ipam");
    let network = PodNetwork::new(net)
        .unwrap()
        .with_host_netns(node_ns)
        .unwrap();
    let config = AgentConfig {
        run_dir: dir.join("run"),
        log_dir: dir.join("log"),
        cgroup_parent,
        log_rotation: LOG_ROTATION,
        ..AgentConfig::default()
    };
    PodHost::new(config, runner, images, snapshots, network).unwrap()
}
