//! Pods end to end on one node: the `controlplane` and `noderun agent`
//! binaries, pods made and removed through `ctl`, their state read from
//! the apiserver. Privileged (root: namespaces, cgroups, mounts). Each
//! test runs its own cluster (see `noderun_tests::cluster`), so they run
//! side by side.

use noderun_client::stream::Pushed;
use noderun_core::proto::{StreamChunk, StreamFrame, StreamKind, StreamTarget};
use noderun_core::{ConditionStatus, Kind, Object, Pod, PodConditionType, PodPhase};
use noderun_testkit::privileged;
use noderun_tests::cluster::{process_name, process_running, Cluster};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::Duration;

const START: Duration = Duration::from_secs(30);

fn running(pod: &Pod) -> bool {
    pod.status.phase == PodPhase::Running
        && !pod.status.pod_ip.is_empty()
        && pod
            .status
            .condition(PodConditionType::Ready)
            .is_some_and(|c| c.status == ConditionStatus::True)
}

/// A cluster, or `None` when not privileged (testkit says why, and
/// fails in CI).
fn cluster() -> Option<Cluster> {
    privileged().then(Cluster::start)
}

#[tokio::test(flavor = "multi_thread")]
async fn create_pod_runs_with_an_ip() {
    let Some(cluster) = cluster() else {
        return;
    };
    cluster.ctl_ok(&[
        "create", "pod", "hello", "--image", "busybox", "--", "sleep", "3600",
    ]);
    let client = cluster.client().await;
    let pod = cluster
        .wait_pod(&client, "hello", START, "Running", running)
        .await;
    let ip: std::net::Ipv4Addr = pod.status.pod_ip.parse().expect("an IPv4 pod IP");
    let subnet_prefix = cluster.pod_cidr.trim_end_matches("0/24");
    assert!(
        ip.to_string().starts_with(subnet_prefix),
        "{ip} in {}",
        cluster.pod_cidr
    );
    assert_eq!(pod.status.host_ip, "127.0.0.1");
    assert!(pod.status.start_time.is_some());
    let c = &pod.status.container_statuses[0];
    assert!(
        c.ready && c.state.running.as_ref().unwrap().started_at.is_some(),
        "{c:?}"
    );
    for t in [
        PodConditionType::PodScheduled,
        PodConditionType::Initialized,
        PodConditionType::ContainersReady,
    ] {
        assert_eq!(
            pod.status.condition(t).unwrap().status,
            ConditionStatus::True
        );
    }
    let wide = cluster.ctl_ok(&["get", "pods", "-o", "wide"]);
    assert!(
        wide.contains("Running")
            && wide.contains(&pod.status.pod_ip)
            && wide.contains(&cluster.node),
        "{wide}"
    );
    // The pod answers on its IP from the node's side.
    let ping = cluster.in_node_ns(&["busybox", "ping", "-c", "1", "-W", "2", &pod.status.pod_ip]);
    assert!(ping.status.success(), "{ping:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_connected_over_tls_runs_pods() {
    if !privileged() {
        return;
    }
    // The agent gets only the controlplane's TLS address and the cluster
    // CA, as a node on another host: registration, lease, pod watch and
    // status all go over TLS.
    let cluster = Cluster::start_tls();
    cluster.ctl_ok(&[
        "create", "pod", "over-tls", "--image", "busybox", "--", "sleep", "3600",
    ]);
    let client = cluster.client().await;
    let pod = cluster
        .wait_pod(&client, "over-tls", START, "Running", running)
        .await;
    assert!(!pod.status.pod_ip.is_empty(), "{:?}", pod.status);
    let node = client
        .get(Kind::Node, "", &cluster.node)
        .await
        .expect("the node registered over TLS");
    let Object::Node(node) = node else {
        panic!("not a node: {node:?}")
    };
    assert!(node.is_ready(), "{:?}", node.status.conditions);
}

/// The text of pod `name`'s container `container` log on the node: the
/// instances it keeps (`<n>.log`, the last two) in order (nothing here
/// writes enough to be rotated).
fn pod_log(cluster: &Cluster, pod: &Pod, container: &str) -> String {
    let dir = cluster
        .log_dir()
        .join(format!(
            "{}_{}_{}",
            pod.metadata.namespace, pod.metadata.name, pod.metadata.uid
        ))
        .join(container);
    let mut instances: Vec<u32> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".log")?
                .parse()
                .ok()
        })
        .collect();
    instances.sort_unstable();
    instances
        .iter()
        .map(|n| std::fs::read_to_string(dir.join(format!("{n}.log"))).unwrap_or_default())
        .collect()
}

/// The container's log once `needle` shows in it `count` times (a
/// container's output reaches the file through its logger, a moment
/// after the container wrote it); the log as it is after [`START`].
async fn wait_log(
    cluster: &Cluster,
    pod: &Pod,
    container: &str,
    needle: &str,
    count: usize,
) -> String {
    let deadline = std::time::Instant::now() + START;
    loop {
        let log = pod_log(cluster, pod, container);
        if log.matches(needle).count() >= count || std::time::Instant::now() > deadline {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_pods_talk_over_tcp() {
    let Some(cluster) = cluster() else {
        return;
    };
    cluster.ctl_ok(&[
        "create",
        "pod",
        "server",
        "--image",
        "busybox",
        "--",
        "sh",
        "-c",
        "echo hello-from-server | nc -l -p 8080; sleep 3600",
    ]);
    let client = cluster.client().await;
    let server = cluster
        .wait_pod(&client, "server", START, "Running", running)
        .await;
    let ip = &server.status.pod_ip;
    cluster.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: client\nspec:\n  restartPolicy: Never\n  \
         containers:\n  - name: c\n    image: busybox\n    command: [sh, -c, 'for i in $(seq 100); \
         do nc -w 2 {ip} 8080 && exit 0; sleep 0.1; done; exit 1']\n"
    ));
    let done = cluster
        .wait_pod(&client, "client", START, "Succeeded", |p| {
            p.status.phase.is_terminal()
        })
        .await;
    assert_eq!(done.status.phase, PodPhase::Succeeded, "{:#?}", done.status);
    let t = done.status.container_statuses[0]
        .state
        .terminated
        .clone()
        .unwrap();
    assert_eq!((t.exit_code, t.reason.as_str()), (0, "Completed"));
    let log = wait_log(&cluster, &done, "c", "hello-from-server", 1).await;
    assert!(log.contains("hello-from-server"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashing_container_restarts_with_back_off() {
    let Some(cluster) = cluster() else {
        return;
    };
    cluster.ctl_ok(&[
        "create",
        "pod",
        "crasher",
        "--image",
        "busybox",
        "--",
        "sh",
        "-c",
        "echo crashing; exit 3",
    ]);
    let client = cluster.client().await;
    let restarts = |p: &Pod| {
        p.status
            .container_statuses
            .first()
            .map_or(0, |c| c.restart_count)
    };
    // The first restart comes at once, the second after 10 s of back-off.
    let first = cluster
        .wait_pod(&client, "crasher", START, "first restart", |p| {
            restarts(p) >= 1
        })
        .await;
    let t1 = std::time::Instant::now();
    assert_eq!(first.status.phase, PodPhase::Running);
    let backing_off = cluster
        .wait_pod(&client, "crasher", START, "CrashLoopBackOff", |p| {
            p.status.container_statuses[0]
                .state
                .waiting
                .as_ref()
                .is_some_and(|w| w.reason == "CrashLoopBackOff")
        })
        .await;
    let c = &backing_off.status.container_statuses[0];
    let last = c.last_state.terminated.as_ref().expect("the last exit");
    assert_eq!((last.exit_code, last.reason.as_str()), (3, "Error"));
    assert!(!c.ready);
    cluster
        .wait_pod(&client, "crasher", START, "second restart", |p| {
            restarts(p) >= 2
        })
        .await;
    let gap = t1.elapsed();
    assert!(
        gap >= Duration::from_secs(9),
        "second restart after {gap:?}, not ~10 s"
    );
    // The log keeps the last two instances, the one restarted now and the
    // one before (whose line may still be on its way through its logger).
    let log = wait_log(&cluster, &first, "crasher", "crashing", 2).await;
    assert_eq!(log.matches("crashing").count(), 2, "{log}");
    // ctl logs --previous: the instance before the last restart.
    let previous = cluster.ctl_ok(&["logs", "crasher", "--previous"]);
    assert_eq!(previous, "crashing\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn oom_killed_is_reported() {
    let Some(cluster) = cluster() else {
        return;
    };
    cluster.apply(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: hog\nspec:\n  restartPolicy: Never\n  \
         containers:\n  - name: hog\n    image: busybox\n    command: [tail, /dev/zero]\n    \
         resources:\n      limits:\n        memory: 16Mi\n",
    );
    let client = cluster.client().await;
    let pod = cluster
        .wait_pod(&client, "hog", START, "Failed", |p| {
            p.status.phase.is_terminal()
        })
        .await;
    assert_eq!(pod.status.phase, PodPhase::Failed);
    let t = pod.status.container_statuses[0]
        .state
        .terminated
        .clone()
        .unwrap();
    assert_eq!(
        (t.reason.as_str(), t.exit_code),
        ("OOMKilled", 137),
        "{t:?}"
    );
    assert_eq!(pod.status.container_statuses[0].restart_count, 0);
    // Never restarted: no previous instance.
    assert_eq!(
        pod.status.container_statuses[0].last_state,
        Default::default()
    );
}

/// A pod that stops at once on SIGTERM (a shell as pid 1 ignores it
/// otherwise), with a short grace period.
fn quick_pod(name: &str, labels: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{{labels}}}\nspec:\n  \
         terminationGracePeriodSeconds: 2\n  containers:\n  - name: main\n    image: busybox\n    \
         command: [sh, -c, 'trap \"exit 0\" TERM; while true; do sleep 0.2; done']\n"
    )
}

/// Wait until pod `name` is gone from the apiserver (the node finalized
/// its delete).
async fn wait_gone(cluster: &Cluster, client: &noderun_client::Client, name: &str) {
    let deadline = std::time::Instant::now() + START;
    while client
        .get(noderun_core::Kind::Pod, "default", name)
        .await
        .is_ok()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "pod {name} not gone\n{}",
            cluster.noderun_log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Paths below `dir` whose name holds `needle`.
fn paths_naming(dir: &std::path::Path, needle: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        let path = e.path();
        if e.file_name().to_string_lossy().contains(needle) {
            found.push(path.clone());
        }
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(paths_naming(&path, needle));
        }
    }
    found
}

/// Link names in the node's network namespace.
fn node_links(cluster: &Cluster) -> std::collections::BTreeSet<String> {
    let ns = cluster.node_ns.as_ref().unwrap().path();
    let ns = noderun_netplug::Netns::open(ns).unwrap();
    let mut netlink = noderun_netplug::netlink::Netlink::open_in(&ns).unwrap();
    netlink
        .links()
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect()
}

/// The owners (pod UIDs) of the node's IPAM allocations, as the store
/// reads its state (its other slot keeps the state before the last
/// write).
fn ipam_owners(cluster: &Cluster) -> BTreeSet<String> {
    let subnet = cluster.pod_cidr.parse().expect("the pod CIDR");
    let network = noderun_netplug::NetworkConfig::new("pods", cluster.bridge.clone(), subnet);
    let store = noderun_netplug::IpamStore::open(
        &cluster.run_dir().join("netplug"),
        &network.name,
        network.range().unwrap(),
    )
    .unwrap();
    let state = store.state().unwrap();
    state
        .allocations
        .values()
        .map(|o| o.container_id.clone())
        .collect()
}

/// The UIDs of the pod cgroups (`pod<uid>`) under the node's cgroup
/// parent, in every hierarchy.
fn pod_cgroups(cluster: &Cluster) -> BTreeSet<String> {
    fn walk(dir: &std::path::Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let name = e.file_name().to_string_lossy().into_owned();
                match name.strip_prefix("pod") {
                    Some(uid) => drop(out.insert(uid.to_string())),
                    None => walk(&e.path(), out),
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    for dir in noderun_tests::cluster::cgroup_dirs(&cluster.cgroup_parent) {
        walk(&dir, &mut out);
    }
    out
}

/// Nothing of pod `uid` is left on the node: no pinned namespace, bundle,
/// runtime state, snapshot, log, IPAM allocation (its files name the
/// owner), mount, cgroup or veth.
fn assert_no_trace(cluster: &Cluster, uid: &str) {
    for dir in [cluster.run_dir(), cluster.state_dir(), cluster.log_dir()] {
        assert_eq!(paths_naming(&dir, uid), Vec::<std::path::PathBuf>::new());
    }
    let owners = ipam_owners(cluster);
    assert!(!owners.contains(uid), "IPAM still names {uid}: {owners:?}");
    let mounts = noderun_testkit::mount_points_under(cluster.dir.path()).unwrap();
    assert_eq!(mounts, Vec::<std::path::PathBuf>::new());
    assert!(!pod_cgroups(cluster).contains(uid), "pod{uid} cgroup left");
    let links = node_links(cluster);
    let expected: std::collections::BTreeSet<String> =
        ["lo".to_string(), cluster.bridge.clone()].into();
    assert_eq!(links, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_is_graceful_and_leaves_no_trace() {
    let Some(cluster) = cluster() else {
        return;
    };
    cluster.apply(&quick_pod("doomed", ""));
    let client = cluster.client().await;
    let pod = cluster
        .wait_pod(&client, "doomed", START, "Running", running)
        .await;
    let uid = pod.metadata.uid.clone();
    assert!(!paths_naming(&cluster.run_dir(), &uid).is_empty());
    let t = std::time::Instant::now();
    cluster.ctl_ok(&["delete", "pod", "doomed"]);
    wait_gone(&cluster, &client, "doomed").await;
    // SIGTERM ended it: well within its grace period of 2 s.
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
    assert_no_trace(&cluster, &uid);
}

/// A ReplicaSet `name` of `replicas` [`quick_pod`]s labelled `app: name`.
fn quick_replicaset(name: &str, replicas: u32) -> String {
    let template = quick_pod("x", &format!("app: {name}"));
    let pod_spec: String = template
        .split_once("spec:\n")
        .unwrap()
        .1
        .lines()
        .map(|l| format!("      {l}\n"))
        .collect();
    format!(
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: {name}\nspec:\n  replicas: {replicas}\n  \
         selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: \
         {{app: {name}}}\n    spec:\n{pod_spec}"
    )
}

/// The pods labelled `app=<app>`.
async fn pods_of_app(client: &noderun_client::Client, app: &str) -> Vec<Pod> {
    let options = noderun_client::ListOptions {
        label_selector: noderun_core::LabelSelector::parse(&format!("app={app}")).unwrap(),
        ..Default::default()
    };
    let (items, _) = client
        .list(noderun_core::Kind::Pod, Some("default"), &options)
        .await
        .unwrap();
    items
        .into_iter()
        .filter_map(|o| match o {
            noderun_core::Object::Pod(p) => Some(p),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replicaset_keeps_five_running() {
    let Some(cluster) = cluster() else {
        return;
    };
    cluster.apply(&quick_replicaset("web", 5));
    let client = cluster.client().await;
    let five_running = || async {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let pods = pods_of_app(&client, "web").await;
            let up: Vec<Pod> = pods
                .iter()
                .filter(|p| running(p) && p.metadata.deletion_timestamp.is_none())
                .cloned()
                .collect();
            if up.len() == 5 && pods.len() == 5 {
                return up;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} of {} running\n{}",
                up.len(),
                pods.len(),
                cluster.noderun_log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let first = five_running().await;
    let ips: std::collections::BTreeSet<&str> =
        first.iter().map(|p| p.status.pod_ip.as_str()).collect();
    assert_eq!(ips.len(), 5, "each pod its own IP");
    let gone: Vec<String> = first[..2].iter().map(|p| p.metadata.name.clone()).collect();
    for name in &gone {
        cluster.ctl_ok(&["delete", "pod", name]);
    }
    let second = five_running().await;
    for p in &second {
        assert!(
            !gone.contains(&p.metadata.name),
            "{} came back",
            p.metadata.name
        );
    }
    for p in &first[..2] {
        assert_no_trace_of_pod(&cluster, &p.metadata.uid);
    }
}

/// The deleted pod's own things are gone (other pods still run).
fn assert_no_trace_of_pod(cluster: &Cluster, uid: &str) {
    for dir in [cluster.run_dir(), cluster.state_dir(), cluster.log_dir()] {
        assert_eq!(paths_naming(&dir, uid), Vec::<std::path::PathBuf>::new());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_node_adopts_its_pods_and_removes_stale_ones() {
    let Some(mut cluster) = cluster() else {
        return;
    };
    cluster.apply(&quick_pod("keeper", ""));
    cluster.apply(&quick_pod("stale", ""));
    let client = cluster.client().await;
    let keeper = cluster
        .wait_pod(&client, "keeper", START, "Running", running)
        .await;
    let stale = cluster
        .wait_pod(&client, "stale", START, "Running", running)
        .await;
    cluster.kill_noderun();
    // Removed while the node is down: nobody tells it.
    cluster.ctl_ok(&["delete", "pod", "stale", "--force"]);
    cluster.start_noderun();
    let stale_uid = stale.metadata.uid.clone();
    let deadline = std::time::Instant::now() + START;
    while !paths_naming(&cluster.run_dir(), &stale_uid).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            cluster.noderun_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_no_trace_of_pod(&cluster, &stale_uid);
    // The keeper was not restarted: same start time, no restart, same IP.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = cluster
        .wait_pod(&client, "keeper", START, "Running", running)
        .await;
    let (before_c, after_c) = (
        &keeper.status.container_statuses[0],
        &after.status.container_statuses[0],
    );
    assert_eq!(after_c.restart_count, 0);
    assert_eq!(after_c.state.running, before_c.state.running);
    assert_eq!(after.status.pod_ip, keeper.status.pod_ip);
    assert!(
        cluster.noderun_log().contains("adopted"),
        "{}",
        cluster.noderun_log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_node_registers_and_renews_its_lease() {
    if !privileged() {
        return;
    }
    let cluster = Cluster::start_with(&[
        "--labels",
        "zone=a,disk=ssd",
        "--taints",
        "dedicated=infra:PreferNoSchedule",
        "--max-pods",
        "50",
        "--system-reserved",
        "cpu=100m,memory=50Mi",
        "--kube-reserved",
        "memory=50Mi",
    ]);
    let client = cluster.client().await;
    let Ok(noderun_core::Object::Node(node)) = client
        .get(noderun_core::Kind::Node, "", &cluster.node)
        .await
    else {
        panic!("node {} not registered", cluster.node);
    };
    assert!(node.is_ready());
    assert_eq!(node.spec.pod_cidr, cluster.pod_cidr);
    assert_eq!(
        node.metadata.labels.get("zone").map(String::as_str),
        Some("a")
    );
    assert_eq!(
        node.metadata.labels.get("disk").map(String::as_str),
        Some("ssd")
    );
    assert_eq!(
        node.metadata.labels.get("kubernetes.io/hostname"),
        Some(&cluster.node)
    );
    let taint = &node.spec.taints[0];
    assert_eq!(
        (taint.key.as_str(), taint.value.as_str(), taint.effect),
        (
            "dedicated",
            "infra",
            noderun_core::TaintEffect::PreferNoSchedule
        )
    );
    let capacity = &node.status.capacity;
    assert_eq!(capacity["pods"].value(), 50);
    assert!(capacity["cpu"].value() >= 1 && capacity["memory"].value() > 0);
    // Allocatable: capacity less the reservations and the default hard
    // eviction threshold (memory.available<100Mi).
    let allocatable = &node.status.allocatable;
    assert_eq!(
        allocatable["memory"].value(),
        capacity["memory"].value() - (200 << 20)
    );
    assert_eq!(allocatable["cpu"].millis(), capacity["cpu"].millis() - 100);
    // The pressure conditions are reported, False on a calm node.
    for (type_, reason) in [
        (
            noderun_core::NodeConditionType::MemoryPressure,
            "KubeletHasSufficientMemory",
        ),
        (
            noderun_core::NodeConditionType::DiskPressure,
            "KubeletHasNoDiskPressure",
        ),
        (
            noderun_core::NodeConditionType::PidPressure,
            "KubeletHasSufficientPID",
        ),
    ] {
        let c = node.status.condition(type_).expect("pressure condition");
        assert_eq!(
            (c.status, c.reason.as_str()),
            (ConditionStatus::False, reason)
        );
    }
    assert!(node
        .status
        .addresses
        .iter()
        .any(|a| a.type_ == noderun_core::NodeAddressType::InternalIp && a.address == "127.0.0.1"));
    let lease = || async {
        match client
            .get(
                noderun_core::Kind::Lease,
                noderun_core::NODE_LEASE_NAMESPACE,
                &cluster.node,
            )
            .await
        {
            Ok(noderun_core::Object::Lease(l)) => l,
            other => panic!("no lease: {other:?}"),
        }
    };
    let first = lease().await;
    assert_eq!(first.spec.holder_identity, cluster.node);
    tokio::time::sleep(Duration::from_secs(11)).await;
    let later = lease().await;
    assert!(
        later.spec.renew_time > first.spec.renew_time,
        "{first:?} then {later:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_node_carries_on_when_the_control_plane_restarts() {
    let Some(mut cluster) = cluster() else {
        return;
    };
    cluster.apply(&quick_pod("before", ""));
    let client = cluster.client().await;
    let before = cluster
        .wait_pod(&client, "before", START, "Running", running)
        .await;
    cluster.restart_controlplane();
    // The node reconnects, lists again and runs what comes next.
    cluster.apply(&quick_pod("after", ""));
    let client = cluster.client().await;
    cluster
        .wait_pod(&client, "after", START, "Running", running)
        .await;
    let still = cluster
        .wait_pod(&client, "before", START, "Running", running)
        .await;
    assert_eq!(still.status.container_statuses[0].restart_count, 0);
    assert_eq!(still.status.pod_ip, before.status.pod_ip);
    // And deletes still finish.
    cluster.ctl_ok(&["delete", "pod", "after"]);
    wait_gone(&cluster, &client, "after").await;
}

/// The state of init container `i` of `pod`.
fn init_state(pod: &Pod, i: usize) -> noderun_core::ContainerState {
    pod.status
        .init_container_statuses
        .get(i)
        .map(|s| s.state.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn init_containers_run_in_order_before_the_app() {
    let Some(cluster) = cluster() else {
        return;
    };
    cluster.apply(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: staged\nspec:\n  terminationGracePeriodSeconds: 1\n  initContainers:\n  \
         - name: first\n    image: busybox\n    command: [sh, -c, 'echo first-ran; sleep 3']\n  \
         - name: second\n    image: busybox\n    command: [sh, -c, 'echo second-ran']\n  \
         containers:\n  - name: app\n    image: busybox\n    command: [sleep, '3600']\n",
    );
    let client = cluster.client().await;
    let initializing = cluster
        .wait_pod(
            &client,
            "staged",
            START,
            "first init container running",
            |p| init_state(p, 0).running.is_some(),
        )
        .await;
    assert_eq!(initializing.status.phase, PodPhase::Pending);
    let initialized = initializing
        .status
        .condition(PodConditionType::Initialized)
        .expect("the Initialized condition");
    assert_eq!(
        (initialized.status, initialized.reason.as_str()),
        (ConditionStatus::False, "ContainersNotInitialized")
    );
    let app = &initializing.status.container_statuses[0];
    assert_eq!(
        app.state.waiting.as_ref().map(|w| w.reason.as_str()),
        Some("PodInitializing"),
        "{app:?}"
    );
    assert!(init_state(&initializing, 1).waiting.is_some());
    let table = cluster.ctl_ok(&["get", "pods"]);
    assert!(table.contains("Init:0/2"), "{table}");

    let pod = cluster
        .wait_pod(&client, "staged", START, "Running", running)
        .await;
    let finished = |i: usize| {
        let t = init_state(&pod, i).terminated.expect("init container done");
        assert_eq!((t.exit_code, t.reason.as_str()), (0, "Completed"));
        (t.started_at.unwrap(), t.finished_at.unwrap())
    };
    let (first_start, first_end) = finished(0);
    let (second_start, second_end) = finished(1);
    let app_start = pod.status.container_statuses[0]
        .state
        .running
        .as_ref()
        .and_then(|r| r.started_at)
        .unwrap();
    assert!(
        first_start < first_end && first_end <= second_start && second_end <= app_start,
        "{:#?}",
        pod.status
    );
    assert!(pod.status.init_container_statuses.iter().all(|s| s.ready));
    for (name, ran) in [("first", "first-ran"), ("second", "second-ran")] {
        let log = wait_log(&cluster, &pod, name, ran, 1).await;
        assert!(log.contains(ran), "{name}: {log}");
    }
    let table = cluster.ctl_ok(&["get", "pods"]);
    assert!(table.contains("Running"), "{table}");

    // Deleting it removes the init containers' rootfs, cgroups and logs too.
    let uid = pod.metadata.uid.clone();
    cluster.ctl_ok(&["delete", "pod", "staged"]);
    wait_gone(&cluster, &client, "staged").await;
    assert_no_trace(&cluster, &uid);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_init_container_fails_or_restarts_the_pod() {
    let Some(cluster) = cluster() else {
        return;
    };
    let manifest = |name: &str, policy: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  restartPolicy: {policy}\n  \
             initContainers:\n  - name: setup\n    image: busybox\n    command: [sh, -c, 'echo failing; exit 3']\n  \
             containers:\n  - name: app\n    image: busybox\n    command: [sleep, '3600']\n"
        )
    };
    cluster.apply(&manifest("never", "Never"));
    cluster.apply(&manifest("always", "Always"));
    let client = cluster.client().await;
    let failed = cluster
        .wait_pod(&client, "never", START, "Failed", |p| {
            p.status.phase.is_terminal()
        })
        .await;
    assert_eq!(
        failed.status.phase,
        PodPhase::Failed,
        "{:#?}",
        failed.status
    );
    let t = init_state(&failed, 0).terminated.expect("the init exit");
    assert_eq!((t.exit_code, t.reason.as_str()), (3, "Error"));
    let app = &failed.status.container_statuses[0];
    assert!(
        app.container_id.is_empty() && app.state.waiting.is_some(),
        "the app container never started: {app:?}"
    );
    let table = cluster.ctl_ok(&["get", "pods"]);
    assert!(table.contains("Init:Error"), "{table}");

    // Under Always the init container is restarted (with back-off) and
    // the app container still waits.
    let restarting = cluster
        .wait_pod(&client, "always", START, "an init restart", |p| {
            p.status
                .init_container_statuses
                .first()
                .is_some_and(|s| s.restart_count >= 1)
        })
        .await;
    assert_eq!(restarting.status.phase, PodPhase::Pending);
    assert!(restarting.status.container_statuses[0]
        .container_id
        .is_empty());
    let log = wait_log(&cluster, &restarting, "setup", "failing", 1).await;
    assert!(log.contains("failing"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_container_gets_a_fresh_rootfs() {
    let Some(cluster) = cluster() else {
        return;
    };
    cluster.apply(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: fresh\nspec:\n  containers:\n  \
         - name: c\n    image: busybox\n    command: [sh, -c, 'if [ -e /marker ]; then echo stale-rootfs; \
         else echo fresh-rootfs; fi; touch /marker; exit 1']\n",
    );
    let client = cluster.client().await;
    let pod = cluster
        .wait_pod(&client, "fresh", START, "a restart", |p| {
            p.status
                .container_statuses
                .first()
                .is_some_and(|s| s.restart_count >= 1)
        })
        .await;
    // The second instance has run when its exit is seen (or it is backing
    // off after it).
    let log = wait_log(&cluster, &pod, "c", "-rootfs", 2).await;
    assert_eq!(log.matches("fresh-rootfs").count(), 2, "{log}");
    assert!(!log.contains("stale-rootfs"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_and_startup_probes_gate_ready() {
    let Some(cluster) = cluster() else {
        return;
    };
    // httpd answers on 8080 after 2 s; the startup probe (TCP) holds the
    // readiness probe (HTTP GET) back until then.
    cluster.apply(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  terminationGracePeriodSeconds: 1\n  \
         containers:\n  - name: web\n    image: busybox\n    \
         command: [sh, -c, 'sleep 2; mkdir /www; echo ok > /www/index.html; exec httpd -f -p 8080 -h /www']\n    \
         ports:\n    - name: http\n      containerPort: 8080\n    \
         startupProbe:\n      tcpSocket:\n        port: 8080\n      periodSeconds: 1\n      failureThreshold: 30\n    \
         readinessProbe:\n      httpGet:\n        path: /index.html\n        port: http\n      periodSeconds: 1\n",
    );
    // A path that answers 404 never makes its container ready.
    cluster.apply(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: missing\nspec:\n  terminationGracePeriodSeconds: 1\n  \
         containers:\n  - name: web\n    image: busybox\n    \
         command: [sh, -c, 'mkdir /www; exec httpd -f -p 8080 -h /www']\n    \
         readinessProbe:\n      httpGet:\n        path: /nope\n        port: 8080\n      periodSeconds: 1\n",
    );
    let client = cluster.client().await;
    let ready = |p: &Pod| {
        p.status
            .condition(PodConditionType::Ready)
            .is_some_and(|c| c.status == ConditionStatus::True)
    };
    let starting = cluster
        .wait_pod(&client, "web", START, "running, not started", |p| {
            p.status.phase == PodPhase::Running
        })
        .await;
    let c = &starting.status.container_statuses[0];
    assert!(
        !c.ready && c.started == Some(false) && !ready(&starting),
        "{c:?}"
    );
    let pod = cluster
        .wait_pod(&client, "web", START, "Ready", ready)
        .await;
    let c = &pod.status.container_statuses[0];
    assert!(c.ready && c.started == Some(true), "{c:?}");
    let containers_ready = pod
        .status
        .condition(PodConditionType::ContainersReady)
        .unwrap();
    assert_eq!(containers_ready.status, ConditionStatus::True);
    // The probes reached the pod from the node: httpd answered them.
    let fetched = cluster.in_node_ns(&[
        "busybox",
        "wget",
        "-q",
        "-O",
        "-",
        &format!("http://{}:8080/index.html", pod.status.pod_ip),
    ]);
    assert_eq!(String::from_utf8_lossy(&fetched.stdout).trim(), "ok");

    // httpd there has answered 404 a few times by now (once a second).
    cluster
        .wait_pod(&client, "missing", START, "Running", |p| {
            p.status.phase == PodPhase::Running
        })
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let missing = cluster
        .wait_pod(&client, "missing", START, "its status", |_| true)
        .await;
    let c = &missing.status.container_statuses[0];
    assert!(c.state.running.is_some() && !c.ready, "{c:?}");
    assert!(!ready(&missing), "{:#?}", missing.status);
    assert_eq!(c.restart_count, 0, "readiness never restarts");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_liveness_probe_restarts_the_container() {
    let Some(cluster) = cluster() else {
        return;
    };
    // Nothing listens on 8080: two failures in a row and the container is
    // stopped (sleep ignores SIGTERM: SIGKILL after the 1 s grace period)
    // and restarted by the policy (Always).
    cluster.apply(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: unhealthy\nspec:\n  terminationGracePeriodSeconds: 1\n  \
         containers:\n  - name: app\n    image: busybox\n    command: [sleep, '3600']\n    \
         livenessProbe:\n      tcpSocket:\n        port: 8080\n      initialDelaySeconds: 1\n      \
         periodSeconds: 1\n      failureThreshold: 2\n      timeoutSeconds: 1\n",
    );
    let client = cluster.client().await;
    let pod = cluster
        .wait_pod(&client, "unhealthy", START, "a restart", |p| {
            p.status
                .container_statuses
                .first()
                .is_some_and(|c| c.restart_count >= 1)
        })
        .await;
    let c = &pod.status.container_statuses[0];
    let last = c
        .last_state
        .terminated
        .as_ref()
        .expect("the killed instance");
    assert_eq!(last.exit_code, 137, "{last:?}");
    assert!(
        cluster.noderun_log().contains("probe failed its threshold"),
        "{}",
        cluster.noderun_log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_probes_run_in_the_container() {
    let Some(cluster) = cluster() else {
        return;
    };
    // Healthy (and ready) while /tmp/healthy exists; 3 s after the start
    // it is removed: readiness drops, liveness kills the container, and
    // the new instance is healthy again.
    cluster.apply(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: exec\nspec:\n  terminationGracePeriodSeconds: 1\n  \
         containers:\n  - name: app\n    image: busybox\n    \
         command: [sh, -c, 'touch /tmp/healthy; sleep 3; rm /tmp/healthy; sleep 3600']\n    \
         readinessProbe:\n      exec:\n        command: [test, -e, /tmp/healthy]\n      periodSeconds: 1\n    \
         livenessProbe:\n      exec:\n        command: [cat, /tmp/healthy]\n      initialDelaySeconds: 1\n      \
         periodSeconds: 1\n      failureThreshold: 2\n",
    );
    // A probe command that outlives its timeout is killed, and fails.
    cluster.apply(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: slow\nspec:\n  terminationGracePeriodSeconds: 1\n  \
         containers:\n  - name: app\n    image: busybox\n    command: [sleep, '3600']\n    \
         readinessProbe:\n      exec:\n        command: [sleep, '987']\n      periodSeconds: 1\n      \
         timeoutSeconds: 1\n",
    );
    let client = cluster.client().await;
    cluster
        .wait_pod(&client, "exec", START, "Ready", running)
        .await;
    let pod = cluster
        .wait_pod(&client, "exec", START, "a restart", |p| {
            p.status
                .container_statuses
                .first()
                .is_some_and(|c| c.restart_count >= 1)
        })
        .await;
    let last = pod.status.container_statuses[0]
        .last_state
        .terminated
        .clone()
        .expect("the killed instance");
    assert_eq!(last.exit_code, 137, "{last:?}");
    let log = cluster.noderun_log();
    assert!(
        log.contains("No such file or directory") && log.contains("exit code 1"),
        "the failed probe's output is logged: {log}"
    );
    // The new instance has the file again: Ready again.
    cluster
        .wait_pod(&client, "exec", START, "Ready again", |p| {
            running(p) && p.status.container_statuses[0].restart_count >= 1
        })
        .await;

    let slow = cluster
        .wait_pod(&client, "slow", START, "Running", |p| {
            p.status.phase == PodPhase::Running
        })
        .await;
    assert!(!slow.status.container_statuses[0].ready);
    assert!(
        cluster
            .noderun_log()
            .contains("killed after the 1s timeout"),
        "{}",
        cluster.noderun_log()
    );
    // One probe command at a time at most: each is killed at its timeout.
    // Counted in this cluster's cgroups only (other suites may run the same
    // pod elsewhere on the host).
    let sleeps = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == b"sleep\0987\0"))
            .filter(|e| {
                std::fs::read_to_string(e.path().join("cgroup"))
                    .is_ok_and(|c| c.contains(&cluster.cgroup_parent))
            })
            .count()
    };
    assert!(sleeps() <= 1, "{} probe commands left running", sleeps());
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_get_the_pods_hosts_hostname_and_resolv_conf() {
    if !privileged() {
        return;
    }
    // The node's resolv.conf names a loopback resolver (useless inside
    // the pod's network namespace) and a real one.
    let dir = noderun_testkit::TempDir::new("nr-resolv").unwrap();
    let resolv = dir.join("resolv.conf");
    std::fs::write(
        &resolv,
        "search example.test\nnameserver 127.0.0.53\nnameserver 192.0.2.53\noptions ndots:2\n",
    )
    .unwrap();
    let cluster = Cluster::start_with(&["--resolv-conf", resolv.to_str().unwrap()]);
    // One container adds a line to /etc/hosts; the other sees it: the file
    // is the pod's, not the container's.
    cluster.apply(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: etc\nspec:\n  hostname: custom-host\n  \
         terminationGracePeriodSeconds: 1\n  containers:\n  - name: show\n    image: busybox\n    \
         command: [sh, -c, 'cat /etc/hosts /etc/hostname /etc/resolv.conf; echo 192.0.2.99 shared-entry >> /etc/hosts; sleep 3600']\n  \
         - name: reader\n    image: busybox\n    \
         command: [sh, -c, 'until grep -q shared-entry /etc/hosts; do sleep 0.1; done; echo saw-shared; sleep 3600']\n",
    );
    let client = cluster.client().await;
    let pod = cluster
        .wait_pod(&client, "etc", START, "Running", running)
        .await;
    let log = wait_log(&cluster, &pod, "show", "options ndots:2", 1).await;
    let ip = &pod.status.pod_ip;
    for want in [
        "127.0.0.1\tlocalhost\n",
        "::1\tlocalhost ip6-localhost ip6-loopback\n",
        &format!("{ip}\tcustom-host\n"),
        "\ncustom-host\n",
        "search example.test\nnameserver 192.0.2.53\noptions ndots:2\n",
    ] {
        assert!(log.contains(want), "{want:?} not in {log}");
    }
    assert!(!log.contains("127.0.0.53"), "{log}");
    let read = wait_log(&cluster, &pod, "reader", "saw-shared", 1).await;
    assert!(read.contains("saw-shared"), "{read}");
    // The files live in the pod's state dir, and go with the pod.
    let etc = cluster
        .run_dir()
        .join("pods")
        .join(&pod.metadata.uid)
        .join("_etc");
    let hosts = std::fs::read_to_string(etc.join("hosts")).unwrap();
    assert!(hosts.contains("shared-entry"), "{hosts}");
    let uid = pod.metadata.uid.clone();
    cluster.ctl_ok(&["delete", "pod", "etc"]);
    wait_gone(&cluster, &client, "etc").await;
    assert_no_trace(&cluster, &uid);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_node_keeps_completed_init_containers_and_reruns_unfinished_ones() {
    let Some(mut cluster) = cluster() else {
        return;
    };
    let manifest = |name: &str, init: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n  \
             initContainers:\n  - name: setup\n    image: busybox\n    command: [sh, -c, '{init}']\n  \
             containers:\n  - name: app\n    image: busybox\n    command: [sleep, '3600']\n"
        )
    };
    cluster.apply(&manifest("done", "echo set-up"));
    cluster.apply(&manifest("midway", "sleep 3600"));
    let client = cluster.client().await;
    let done = cluster
        .wait_pod(&client, "done", START, "Running", running)
        .await;
    let midway = cluster
        .wait_pod(&client, "midway", START, "init running", |p| {
            init_state(p, 0).running.is_some()
        })
        .await;
    cluster.kill_noderun();
    cluster.start_noderun();

    // The initialized pod is adopted as it was: its init container stays
    // Completed (a new runner does not know its exit code) and nothing
    // restarts.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = cluster
        .wait_pod(&client, "done", START, "Running", running)
        .await;
    assert_eq!(
        after.status.init_container_statuses, done.status.init_container_statuses,
        "{:#?}",
        after.status
    );
    let app = &after.status.container_statuses[0];
    assert_eq!(app.restart_count, 0);
    assert_eq!(
        app.state.running,
        done.status.container_statuses[0].state.running
    );
    // The pod caught in its init container starts over: a new instance.
    let started = |p: &Pod| init_state(p, 0).running.and_then(|r| r.started_at);
    let rerun = cluster
        .wait_pod(&client, "midway", START, "init running again", |p| {
            started(p).is_some() && started(p) > started(&midway)
        })
        .await;
    assert_eq!(rerun.status.phase, PodPhase::Pending);
    assert!(rerun.status.container_statuses[0].container_id.is_empty());
}

/// A pod of one container that sleeps `seconds`, then exits 7.
fn exiting_pod(name: &str, policy: &str, seconds: u32) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  restartPolicy: {policy}\n  \
         terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: busybox\n    \
         command: [sh, -c, 'sleep {seconds}; exit 7']\n"
    )
}

/// Wait until the runner has recorded the exit of `pod`'s container.
async fn wait_exit_file(cluster: &Cluster, pod: &Pod) {
    let exit_file = cluster
        .run_dir()
        .join("containers")
        .join(format!("{}_main", pod.metadata.uid))
        .join("exit");
    let deadline = std::time::Instant::now() + START;
    while !exit_file.exists() {
        assert!(std::time::Instant::now() < deadline, "no {exit_file:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait until none of `runners` runs any more.
async fn wait_runners_gone(runners: &[i32]) {
    let deadline = std::time::Instant::now() + START;
    while let Some(p) = runners.iter().find(|p| process_running(**p)) {
        assert!(
            std::time::Instant::now() < deadline,
            "runner {p} ({:?}) stays",
            process_name(*p)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The pod ended Failed with its container's exit code 7, not restarted.
async fn wait_failed_with_7(cluster: &Cluster, client: &noderun_client::Client, name: &str) {
    let failed = cluster
        .wait_pod(client, name, START, "Failed", |p| {
            p.status.phase == PodPhase::Failed
        })
        .await;
    let c = &failed.status.container_statuses[0];
    let t = c.state.terminated.as_ref().expect("terminated");
    assert_eq!((t.exit_code, t.reason.as_str()), (7, "Error"), "{c:#?}");
    assert!(t.started_at.is_some() && t.finished_at.is_some(), "{t:#?}");
    assert_eq!(c.restart_count, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn exits_while_the_node_is_down_are_reported_after_its_restart() {
    let Some(mut cluster) = cluster() else {
        return;
    };
    // "early" ends while the daemon is down, "late" once it is back.
    cluster.apply(&exiting_pod("early", "Never", 3));
    cluster.apply(&exiting_pod("late", "OnFailure", 10));
    let client = cluster.client().await;
    let early = cluster
        .wait_pod(&client, "early", START, "Running", running)
        .await;
    cluster
        .wait_pod(&client, "late", START, "Running", running)
        .await;
    let runners = cluster.noderun_runners();
    assert!(!runners.is_empty(), "{}", cluster.noderun_log());
    cluster.kill_noderun();

    // The runner outlives the killed daemon as its containers' parent and
    // records the early exit in the container's exit file.
    wait_exit_file(&cluster, &early).await;
    let lingering: Vec<i32> = runners
        .iter()
        .copied()
        .filter(|p| process_name(*p).as_deref() == Some("noderun-reaper"))
        .collect();
    assert!(!lingering.is_empty(), "a runner stays for the late pod");
    cluster.start_noderun();

    // The restarted daemon reports the real exit: Never, so Failed.
    wait_failed_with_7(&cluster, &client, "early").await;

    // The late exit is recorded by the old runner and read by the new
    // daemon, which restarts it under OnFailure.
    let restarted = cluster
        .wait_pod(&client, "late", START, "a restart", |p| {
            p.status
                .container_statuses
                .first()
                .is_some_and(|c| c.restart_count >= 1)
        })
        .await;
    let c = &restarted.status.container_statuses[0];
    assert_eq!(c.restart_count, 1, "{c:#?}");
    let last = c
        .last_state
        .terminated
        .as_ref()
        .expect("the ended instance");
    assert_eq!((last.exit_code, last.reason.as_str()), (7, "Error"));

    // With its last container gone, the old runner has exited.
    wait_runners_gone(&runners).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_node_leaves_its_runner_to_record_exits() {
    let Some(mut cluster) = cluster() else {
        return;
    };
    cluster.apply(&exiting_pod("ends", "Never", 3));
    let client = cluster.client().await;
    let pod = cluster
        .wait_pod(&client, "ends", START, "Running", running)
        .await;
    let runners = cluster.noderun_runners();
    assert!(!runners.is_empty(), "{}", cluster.noderun_log());
    // A normal stop (SIGTERM): pods keep running, and the runner, told
    // to close, stays for them.
    cluster.stop_noderun();
    assert!(
        cluster
            .noderun_log()
            .contains("the container runner stays to record its containers' exits"),
        "{}",
        cluster.noderun_log()
    );
    wait_exit_file(&cluster, &pod).await;
    wait_runners_gone(&runners).await;
    cluster.start_noderun();
    wait_failed_with_7(&cluster, &client, "ends").await;
}

/// Pod `default/name`, which must exist.
async fn get_pod(client: &noderun_client::Client, name: &str) -> Pod {
    match client.get(noderun_core::Kind::Pod, "default", name).await {
        Ok(noderun_core::Object::Pod(p)) => p,
        other => panic!("pod {name}: {other:?}"),
    }
}

/// Wait until the node reports pressure `condition` True with kubelet's
/// reason and the controller has tainted it NoSchedule for it.
async fn wait_pressure_taint(
    cluster: &Cluster,
    client: &noderun_client::Client,
    condition: noderun_core::NodeConditionType,
) {
    use noderun_core::NodeConditionType::*;
    let (taint, reason) = match condition {
        MemoryPressure => (
            "node.kubernetes.io/memory-pressure",
            "KubeletHasInsufficientMemory",
        ),
        DiskPressure => ("node.kubernetes.io/disk-pressure", "KubeletHasDiskPressure"),
        PidPressure => (
            "node.kubernetes.io/pid-pressure",
            "KubeletHasInsufficientPID",
        ),
        other => panic!("{other:?} is no pressure condition"),
    };
    let deadline = std::time::Instant::now() + START;
    loop {
        let Ok(noderun_core::Object::Node(node)) = client
            .get(noderun_core::Kind::Node, "", &cluster.node)
            .await
        else {
            panic!("node {} gone", cluster.node);
        };
        let tainted = node
            .spec
            .taints
            .iter()
            .any(|t| t.key == taint && t.effect == noderun_core::TaintEffect::NoSchedule);
        if tainted {
            let c = node.status.condition(condition).expect("the condition");
            assert_eq!(
                (c.status, c.reason.as_str()),
                (ConditionStatus::True, reason)
            );
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node not tainted {taint}: {node:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait until nothing of pod `uid` is left under the run and log dirs
/// (an evicted pod is reported first, then torn down).
async fn wait_torn_down(cluster: &Cluster, uid: &str) {
    let deadline = std::time::Instant::now() + START;
    // The logs go last: once they are gone the cgroups are too.
    let left = || {
        !paths_naming(&cluster.run_dir(), uid).is_empty()
            || !paths_naming(&cluster.log_dir(), uid).is_empty()
    };
    while left() {
        assert!(std::time::Instant::now() < deadline, "{uid} not torn down");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Restart the node with the hard eviction threshold `threshold` (checked
/// every 2 s), wait until pod `first` is evicted, and return it with pod
/// `other` as it was then.
async fn first_eviction_under(
    cluster: &mut Cluster,
    client: &noderun_client::Client,
    threshold: &str,
    first: &str,
    other: &str,
) -> (Pod, Pod) {
    cluster.restart_noderun_with(&[
        "--eviction-hard",
        threshold,
        "--eviction-monitoring-interval",
        "2s",
    ]);
    let gone = cluster
        .wait_pod(client, first, START, "Evicted", |p| {
            p.status.phase.is_terminal()
        })
        .await;
    let then = get_pod(client, other).await;
    assert!(
        evicted(&gone),
        "{:#?}\n{}",
        gone.status,
        cluster.noderun_log()
    );
    (gone, then)
}

/// A Guaranteed pod `name` whose container runs `script` in sh.
fn script_pod(name: &str, script: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  \
         terminationGracePeriodSeconds: 2\n  containers:\n  - name: main\n    \
         image: busybox\n    command: [sh, -c, '{script}']\n    \
         resources:\n      limits: {{cpu: 100m, memory: 64Mi}}\n"
    )
}

/// MemAvailable of /proc/meminfo, in KiB.
fn mem_available_kib() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = meminfo
        .lines()
        .find(|l| l.starts_with("MemAvailable:"))
        .unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn evicted(pod: &Pod) -> bool {
    pod.status.phase == PodPhase::Failed && pod.status.reason == "Evicted"
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_pressure_evicts_best_effort_pods_first() {
    let Some(mut cluster) = cluster() else {
        return;
    };
    // A BestEffort pod owned by a ReplicaSet, and a Guaranteed pod well
    // within its 64Mi.
    cluster.apply(&quick_replicaset("cheap", 1));
    cluster.apply(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: solid\nspec:\n  \
         terminationGracePeriodSeconds: 2\n  containers:\n  - name: main\n    image: busybox\n    \
         command: [sleep, '3600']\n    resources:\n      limits: {cpu: 100m, memory: 64Mi}\n",
    );
    let client = cluster.client().await;
    let solid = cluster
        .wait_pod(&client, "solid", START, "Running", running)
        .await;
    assert_eq!(
        solid.status.qos_class,
        Some(noderun_core::QosClass::Guaranteed)
    );
    let deadline = std::time::Instant::now() + START;
    let cheap = loop {
        if let Some(p) = pods_of_app(&client, "cheap")
            .await
            .into_iter()
            .find(running)
        {
            break p;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            cluster.noderun_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        cheap.status.qos_class,
        Some(noderun_core::QosClass::BestEffort)
    );

    // Real pressure for the node's signal: a memory.available threshold
    // 1 GiB above what the machine has available now.
    let threshold = format!("memory.available<{}Ki", mem_available_kib() + (1 << 20));
    cluster.restart_noderun_with(&[
        "--eviction-hard",
        &threshold,
        "--eviction-monitoring-interval",
        "2s",
    ]);

    // The BestEffort pod goes first, while the Guaranteed one still runs.
    let gone = cluster
        .wait_pod(&client, &cheap.metadata.name, START, "Evicted", |p| {
            p.status.phase.is_terminal()
        })
        .await;
    let solid_then = get_pod(&client, "solid").await;
    assert!(
        evicted(&gone),
        "{:#?}\n{}",
        gone.status,
        cluster.noderun_log()
    );
    assert!(
        gone.status
            .message
            .starts_with("The node was low on resource: memory. Threshold quantity: "),
        "{}",
        gone.status.message
    );
    assert!(
        !evicted(&solid_then),
        "the Guaranteed pod went first: {:#?}",
        solid_then.status
    );
    let c = &gone.status.container_statuses[0];
    let t = c
        .state
        .terminated
        .as_ref()
        .expect("the container is terminated");
    assert_eq!(t.exit_code, 137, "{c:?}");
    assert!(!c.ready);

    // The node reports MemoryPressure and the controller taints it, so the
    // ReplicaSet's replacement is not placed there.
    wait_pressure_taint(
        &cluster,
        &client,
        noderun_core::NodeConditionType::MemoryPressure,
    )
    .await;
    let deadline = std::time::Instant::now() + START;
    loop {
        let pods = pods_of_app(&client, "cheap").await;
        let replacement = pods.iter().find(|p| p.metadata.uid != cheap.metadata.uid);
        let refused = replacement.and_then(|p| p.status.condition(PodConditionType::PodScheduled));
        if let Some(c) = refused {
            if c.status == ConditionStatus::False {
                assert!(
                    c.message.contains("node.kubernetes.io/memory-pressure"),
                    "{c:?}"
                );
                assert!(replacement.unwrap().spec.node_name.is_empty());
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no refused replacement: {pods:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Pressure goes on: the Guaranteed pod is next. Neither comes back,
    // and nothing of either is left on the host.
    let solid = cluster
        .wait_pod(&client, "solid", START, "Evicted", evicted)
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for uid in [&cheap.metadata.uid, &solid.metadata.uid] {
        let (items, _) = client
            .list(
                noderun_core::Kind::Pod,
                Some("default"),
                &Default::default(),
            )
            .await
            .unwrap();
        let still = items.iter().find_map(|o| match o {
            noderun_core::Object::Pod(p) if &p.metadata.uid == uid => Some(p.clone()),
            _ => None,
        });
        let still = still.expect("an evicted pod stays until deleted");
        assert!(evicted(&still), "{:#?}", still.status);
        wait_torn_down(&cluster, uid).await;
        assert_no_trace(&cluster, uid);
    }

    // A BestEffort pod bound here past the scheduler is refused, not
    // started, as kubelet's admission refuses it under memory pressure.
    cluster.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: late\nspec:\n  nodeName: {}\n  \
         containers:\n  - name: main\n    image: busybox\n    command: [sleep, '3600']\n",
        cluster.node
    ));
    let late = cluster
        .wait_pod(&client, "late", START, "refused", |p| {
            p.status.phase.is_terminal()
        })
        .await;
    assert!(evicted(&late), "{:#?}", late.status);
    assert_eq!(
        late.status.message,
        "The node had condition: [MemoryPressure]. "
    );
    let c = &late.status.container_statuses[0];
    let t = c.state.terminated.as_ref().expect("reported terminated");
    assert_eq!(
        (t.reason.as_str(), c.container_id.as_str()),
        ("ContainerStatusUnknown", ""),
        "never made: {c:?}"
    );
    wait_torn_down(&cluster, &late.metadata.uid).await;
    assert_no_trace(&cluster, &late.metadata.uid);
}

#[tokio::test(flavor = "multi_thread")]
async fn pid_pressure_evicts_the_pod_with_most_processes_first() {
    let Some(mut cluster) = cluster() else {
        return;
    };
    cluster.apply(&script_pod(
        "forks",
        "for i in 1 2 3 4 5 6 7 8; do sleep 3600 & done; wait",
    ));
    cluster.apply(&script_pod("single", "exec sleep 3600"));
    let client = cluster.client().await;
    for name in ["forks", "single"] {
        cluster
            .wait_pod(&client, name, START, "Running", running)
            .await;
    }
    // Real PID pressure for the node's signal: fewer pids are free than
    // pid_max, always.
    let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max").unwrap();
    let threshold = format!("pid.available<{}", pid_max.trim());
    let (forks, single) =
        first_eviction_under(&mut cluster, &client, &threshold, "forks", "single").await;
    assert!(
        forks
            .status
            .message
            .starts_with("The node was low on resource: pids. Threshold quantity: "),
        "{}",
        forks.status.message
    );
    assert!(!evicted(&single), "the one-process pod went first");
    wait_pressure_taint(
        &cluster,
        &client,
        noderun_core::NodeConditionType::PidPressure,
    )
    .await;
    wait_torn_down(&cluster, &forks.metadata.uid).await;
    assert_no_trace_of_pod(&cluster, &forks.metadata.uid);
}

#[tokio::test(flavor = "multi_thread")]
async fn disk_pressure_evicts_the_pod_writing_most_first() {
    let Some(mut cluster) = cluster() else {
        return;
    };
    cluster.apply(&script_pod(
        "writer",
        "dd if=/dev/zero of=/fill bs=1M count=64 2>/dev/null; echo written; exec sleep 3600",
    ));
    cluster.apply(&script_pod("reader", "exec sleep 3600"));
    let client = cluster.client().await;
    let writer = cluster
        .wait_pod(&client, "writer", START, "Running", running)
        .await;
    cluster
        .wait_pod(&client, "reader", START, "Running", running)
        .await;
    let log = wait_log(&cluster, &writer, "main", "written", 1).await;
    assert!(log.contains("written"), "{log}");
    // Real disk pressure for the node's signal: a nodefs.available
    // threshold 2 GiB above what the state dir's filesystem has free.
    let df = std::process::Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(cluster.state_dir())
        .output()
        .unwrap();
    let free: u64 = String::from_utf8_lossy(&df.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("df's available bytes");
    let threshold = format!("nodefs.available<{}Ki", (free >> 10) + (2 << 20));
    let (writer, reader) =
        first_eviction_under(&mut cluster, &client, &threshold, "writer", "reader").await;
    let message = &writer.status.message;
    assert!(
        message.starts_with("The node was low on resource: ephemeral-storage. ")
            && message.contains("Container main was using "),
        "{message}"
    );
    assert!(!evicted(&reader), "the pod that wrote nothing went first");
    wait_pressure_taint(
        &cluster,
        &client,
        noderun_core::NodeConditionType::DiskPressure,
    )
    .await;
    wait_torn_down(&cluster, &writer.metadata.uid).await;
    assert_no_trace_of_pod(&cluster, &writer.metadata.uid);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_soft_threshold_evicts_gracefully_after_its_grace_period() {
    if !privileged() {
        return;
    }
    // Real pressure for a soft memory.available threshold from the start;
    // it must hold 3 s before it evicts, and the pod gets at most 5 s.
    let threshold = format!("memory.available<{}Ki", mem_available_kib() + (1 << 20));
    let cluster = Cluster::start_with(&[
        "--eviction-soft",
        &threshold,
        "--eviction-soft-grace-period",
        "memory.available=3s",
        "--eviction-max-pod-grace-period",
        "5",
        "--eviction-monitoring-interval",
        "1s",
    ]);
    let client = cluster.client().await;
    wait_pressure_taint(
        &cluster,
        &client,
        noderun_core::NodeConditionType::MemoryPressure,
    )
    .await;
    // Burstable (admitted under memory pressure), bound past the taint; it
    // exits 0 on SIGTERM.
    cluster.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: gentle\nspec:\n  nodeName: {}\n  \
         terminationGracePeriodSeconds: 30\n  containers:\n  - name: main\n    image: busybox\n    \
         command: [sh, -c, 'trap \"exit 0\" TERM; while true; do sleep 0.2; done']\n    \
         resources:\n      requests: {{memory: 1Mi}}\n",
        cluster.node
    ));
    let gentle = cluster
        .wait_pod(&client, "gentle", START, "Evicted", |p| {
            p.status.phase.is_terminal()
        })
        .await;
    assert!(evicted(&gentle), "{:#?}", gentle.status);
    let c = &gentle.status.container_statuses[0];
    let t = c.state.terminated.as_ref().expect("terminated");
    // It ran, and stopped on SIGTERM: not killed.
    assert!(t.started_at.is_some(), "{c:?}");
    assert_eq!((t.exit_code, t.signal), (0, 0), "{c:?}");
    // Not before the threshold had held for its grace period.
    let Ok(noderun_core::Object::Node(node)) = client
        .get(noderun_core::Kind::Node, "", &cluster.node)
        .await
    else {
        panic!("node {} gone", cluster.node);
    };
    let pressure_since = node
        .status
        .condition(noderun_core::NodeConditionType::MemoryPressure)
        .and_then(|c| c.last_transition_time)
        .expect("MemoryPressure since");
    let held = t.finished_at.expect("finished").secs_since(&pressure_since);
    assert!(held >= 2, "evicted {held}s after the pressure began");
    wait_torn_down(&cluster, &gentle.metadata.uid).await;
    assert_no_trace(&cluster, &gentle.metadata.uid);
}

/// ctl's stdout and stderr as text, with its exit code.
fn said(out: &std::process::Output) -> (Option<i32>, String, String) {
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ctl exec -i talker -- COMMAND` fed by `feed` (stdin closed after it):
/// its exit code and stdout.
async fn exec_with_stdin(
    cluster: &Cluster,
    command: &[&str],
    feed: impl FnOnce(&mut std::process::ChildStdin) + Send + 'static,
) -> (Option<i32>, String) {
    use std::io::Read;
    let mut args = vec!["exec", "-i", "talker", "--"];
    args.extend_from_slice(command);
    let mut ctl = noderun_testkit::ChildGuard::new(cluster.ctl_spawn(&args));
    let mut stdin = ctl.child_mut().unwrap().stdin.take().unwrap();
    let feeder = std::thread::spawn(move || feed(&mut stdin));
    let read = tokio::task::spawn_blocking(move || {
        let child = ctl.child_mut().unwrap();
        let mut text = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        (child.wait().unwrap().code(), text)
    });
    feeder.join().unwrap();
    read.await.unwrap()
}

/// Wait until `ctl logs` (with `args`) prints `needle`; its stdout.
async fn wait_ctl_logs(cluster: &Cluster, args: &[&str], needle: &str) -> String {
    let deadline = std::time::Instant::now() + START;
    loop {
        let (code, stdout, stderr) = said(&cluster.ctl(args));
        if stdout.contains(needle) {
            return stdout;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ctl {args:?} never printed {needle:?}: {code:?} {stdout} {stderr}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_and_exec_go_through_the_apiserver() {
    let Some(mut cluster) = cluster() else {
        return;
    };
    cluster.apply(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: talker\nspec:\n  containers:\n  \
         - name: main\n    image: busybox\n    command: [sh, -c, 'i=1; while true; do echo line-$i; \
         i=$((i+1)); sleep 0.2; done']\n",
    );
    let client = cluster.client().await;
    cluster
        .wait_pod(&client, "talker", START, "Running", running)
        .await;

    // logs: what the container wrote, the last lines with --tail.
    let all = wait_ctl_logs(&cluster, &["logs", "talker"], "line-3\n").await;
    assert!(all.starts_with("line-1\nline-2\nline-3\n"), "{all}");
    let tail = cluster.ctl_ok(&["logs", "talker", "--tail", "1"]);
    assert_eq!(tail.lines().count(), 1, "{tail}");
    assert!(tail.starts_with("line-"), "{tail}");
    let seen = tail_number(&tail);

    // -f: the lines written after it started come too.
    let mut follow = noderun_testkit::ChildGuard::new(cluster.ctl_spawn(&["logs", "talker", "-f"]));
    let stdout = follow.child_mut().unwrap().stdout.take().unwrap();
    let later = format!("line-{}", seen + 5);
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|l| *l == later)
    });
    let deadline = std::time::Instant::now() + START;
    while !reader.is_finished() {
        assert!(
            std::time::Instant::now() < deadline,
            "ctl logs -f saw no new line"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reader.join().unwrap().is_some(), "ctl logs -f ended early");
    follow.cleanup().unwrap();

    // exec: a file read inside the container, exit codes, stdin.
    let hostname = cluster.ctl_ok(&["exec", "talker", "--", "cat", "/etc/hostname"]);
    assert_eq!(hostname, "talker\n");
    let (code, _, _) = said(&cluster.ctl(&["exec", "talker", "--", "sh", "-c", "exit 7"]));
    assert_eq!(code, Some(7));
    let (code, stdout, stderr) = said(&cluster.ctl(&[
        "exec",
        "talker",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 0",
    ]));
    assert_eq!(
        (code, stdout.as_str(), stderr.as_str()),
        (Some(0), "out\n", "err\n")
    );
    let (code, text) = exec_with_stdin(&cluster, &["sh", "-c", "cat; echo done"], |stdin| {
        stdin.write_all(b"hello\nworld\n").unwrap();
    })
    .await;
    assert_eq!((code, text.as_str()), (Some(0), "hello\nworld\ndone\n"));

    // More than a window's worth each way: the acks keep it flowing.
    let big = cluster.ctl(&[
        "exec",
        "talker",
        "--",
        "sh",
        "-c",
        "head -c 3000000 /dev/zero | tr '\\0' x",
    ]);
    let (code, _, stderr) = said(&big);
    assert_eq!((code, big.stdout.len()), (Some(0), 3_000_000), "{stderr}");
    assert!(big.stdout.iter().all(|b| *b == b'x'));
    // Small writes: many frames, as a terminal sends them.
    let (code, text) = exec_with_stdin(&cluster, &["wc", "-c"], |stdin| {
        for _ in 0..3000 {
            stdin.write_all(&[b'y'; 1000]).unwrap();
        }
    })
    .await;
    assert_eq!((code, text.trim()), (Some(0), "3000000"));

    // Who may: a viewer reads logs but may not exec.
    let (code, stdout, _) = said(&cluster.ctl_as_viewer(&["logs", "talker", "--tail", "1"]));
    assert_eq!(code, Some(0));
    assert!(stdout.starts_with("line-"), "{stdout}");
    let (code, _, stderr) = said(&cluster.ctl_as_viewer(&["exec", "talker", "--", "true"]));
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("viewer may not exec into pods default/talker"),
        "{stderr}"
    );

    // -t: a terminal on the node, sized by the client, the exit through it
    // (driven with the client library: ctl -t needs a terminal of its own).
    let mut tty = client
        .open_stream(StreamTarget {
            namespace: "default".into(),
            pod: "talker".into(),
            container: String::new(),
            kind: StreamKind::Exec {
                command: vec!["sh".into()],
                stdin: true,
                tty: true,
            },
        })
        .await
        .unwrap();
    let id = tty.id();
    tty.send(id, StreamChunk::Resize { rows: 33, cols: 99 })
        .await
        .unwrap();
    tty.send(id, StreamChunk::Stdin(b"stty size; tty; exit 3\n".to_vec()))
        .await
        .unwrap();
    let mut shown = Vec::new();
    let code = tokio::time::timeout(START, async {
        loop {
            match tty.recv().await {
                Some(Pushed::Frame(StreamFrame {
                    chunk: StreamChunk::Stdout(b),
                    ..
                })) => {
                    tty.send(id, StreamChunk::Ack(b.len() as u32))
                        .await
                        .unwrap();
                    shown.extend_from_slice(&b);
                }
                Some(Pushed::Frame(StreamFrame {
                    chunk: StreamChunk::Exit(code),
                    ..
                })) => return code,
                Some(other) => assert!(
                    matches!(
                        other,
                        Pushed::Frame(StreamFrame {
                            chunk: StreamChunk::Ack(_),
                            ..
                        })
                    ),
                    "{other:?}"
                ),
                None => panic!("the connection ended"),
            }
        }
    })
    .await
    .expect("the tty session ends");
    let shown = String::from_utf8_lossy(&shown);
    assert_eq!(code, 3, "{shown}");
    assert!(
        shown.contains("33 99") && shown.contains("/dev/pts/"),
        "{shown}"
    );

    // Clear errors: no such pod, no such container, a container to pick,
    // a pod on no node, a node gone.
    cluster.apply(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: pair\nspec:\n  containers:\n  \
         - name: a\n    image: busybox\n    command: [sleep, '3600']\n  \
         - name: b\n    image: busybox\n    command: [sleep, '3600']\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata:\n  name: nowhere\nspec:\n  nodeSelector:\n    \
         no-such-label: x\n  containers:\n  - name: c\n    image: busybox\n",
    );
    let cases: [(&[&str], &str); 5] = [
        (
            &["logs", "talker", "--previous"],
            "previous terminated instance of container main of pod default/talker not found",
        ),
        (&["logs", "nosuch"], "not found"),
        (
            &["exec", "talker", "-c", "nope", "--", "true"],
            "container nope is not in pod default/talker",
        ),
        (
            &["logs", "pair"],
            "a container name must be given for pod default/pair with -c, one of: a b",
        ),
        (
            &["logs", "nowhere"],
            "pod default/nowhere is not scheduled to a node yet",
        ),
    ];
    for (args, says) in cases {
        let (code, _, stderr) = said(&cluster.ctl(args));
        assert_eq!(code, Some(1), "ctl {args:?}");
        assert!(stderr.contains(says), "ctl {args:?}: {stderr}");
    }
    cluster.kill_noderun();
    let deadline = std::time::Instant::now() + START;
    loop {
        let (code, _, stderr) = said(&cluster.ctl(&["logs", "talker"]));
        if stderr.contains("is not connected to the apiserver") {
            assert_eq!(code, Some(1));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{stderr}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The container's logger outlived the daemon: what the container wrote
    // while it was down is in the log, without a gap, and the new daemon
    // serves streams again (it adopted the pod: no restart).
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.start_noderun();
    let later = format!("line-{}\n", seen + 30);
    let all = wait_ctl_logs(&cluster, &["logs", "talker"], &later).await;
    let numbers: Vec<u32> = all.lines().map(tail_number).collect();
    assert_eq!(numbers[0], 1);
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "no line lost across the daemon restart"
    );
    let pod = cluster
        .wait_pod(&client, "talker", START, "Running", running)
        .await;
    assert_eq!(pod.status.container_statuses[0].restart_count, 0);
}

/// The number of a `line-N` line.
fn tail_number(line: &str) -> u32 {
    line.trim().trim_start_matches("line-").parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_eviction_cut_short_by_a_daemon_kill_is_finished_at_restart() {
    let Some(mut cluster) = cluster() else {
        return;
    };
    cluster.apply(&script_pod("doomed", "exec sleep 3600"));
    let client = cluster.client().await;
    let pod = cluster
        .wait_pod(&client, "doomed", START, "Running", running)
        .await;
    // What an eviction leaves on the host before it stops the containers
    // and reports: its mark. The daemon dies right then.
    cluster.kill_noderun();
    let mark = cluster
        .run_dir()
        .join("pods")
        .join(&pod.metadata.uid)
        .join("_evicted");
    std::fs::create_dir_all(&mark).unwrap();
    let message = "The node was low on resource: memory. ";
    std::fs::write(mark.join("message"), message).unwrap();
    cluster.start_noderun();
    let done = cluster
        .wait_pod(&client, "doomed", START, "Evicted", |p| {
            p.status.phase.is_terminal()
        })
        .await;
    assert!(evicted(&done), "{:#?}", done.status);
    assert_eq!(done.status.message, message);
    assert_eq!(done.status.container_statuses[0].restart_count, 0);
    wait_torn_down(&cluster, &pod.metadata.uid).await;
    assert_no_trace(&cluster, &pod.metadata.uid);
}

/// [`quick_pod`] of image `image`, labelled `app: <app>`.
fn quick_pod_of(name: &str, app: &str, image: &str) -> String {
    quick_pod(name, &format!("app: {app}")).replace("image: busybox", &format!("image: {image}"))
}

/// Every pod in the default namespace, by name.
async fn pods_by_name(client: &noderun_client::Client) -> BTreeMap<String, Pod> {
    let (items, _) = client
        .list(Kind::Pod, Some("default"), &Default::default())
        .await
        .unwrap();
    items
        .into_iter()
        .filter_map(|o| match o {
            Object::Pod(p) => Some((p.metadata.name.clone(), p)),
            _ => None,
        })
        .collect()
}

/// The snapshot directories no name points at (work a crash cut short).
fn unnamed_snapshot_dirs(cluster: &Cluster) -> Vec<String> {
    let root = cluster.state_dir().join("snapshots");
    let named: BTreeSet<String> = std::fs::read_dir(root.join("names"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|t| t.to_string_lossy().into_owned())
        .collect();
    std::fs::read_dir(root.join("snapshots"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|id| !named.contains(id))
        .collect()
}

/// The processes with a file open whose path names `needle` (pid and
/// path): what is left of a pod's processes that no cgroup holds (an init
/// cut short before it joined its cgroup, a logger).
fn processes_holding(needle: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for proc_dir in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = proc_dir.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        for fd in std::fs::read_dir(proc_dir.path().join("fd"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                let target = target.to_string_lossy().into_owned();
                if target.contains(needle) {
                    found.push((pid.clone(), target));
                }
            }
        }
    }
    found
}

/// The node holds what the pods `live` (UIDs) need and nothing else: an
/// IPAM allocation, a pod cgroup and a veth each, no unnamed snapshot
/// directory, no mount or path under the node's directories naming
/// another pod.
fn assert_host_holds_only(cluster: &Cluster, live: &BTreeSet<String>, gone: &[String]) {
    for uid in gone {
        assert_no_trace_of_pod(cluster, uid);
        // A logger ends once it has drained its pipe: give it a moment.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !processes_holding(uid).is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(processes_holding(uid), Vec::new(), "processes of pod {uid}");
    }
    assert_eq!(&ipam_owners(cluster), live, "IPAM owners");
    assert_eq!(&pod_cgroups(cluster), live, "pod cgroups");
    let veths = node_links(cluster).len() - 2; // lo and the bridge
    assert_eq!(veths, live.len(), "veths: {:?}", node_links(cluster));
    assert_eq!(unnamed_snapshot_dirs(cluster), Vec::<String>::new());
    for mount in noderun_testkit::mount_points_under(cluster.dir.path()).unwrap() {
        let text = mount.to_string_lossy();
        assert!(
            live.iter().any(|uid| text.contains(uid.as_str())),
            "{text} is no live pod's"
        );
    }
}

/// Apply pods `names` of `image` labelled `app: <app>`, in one manifest
/// (created at once, as a burst), and return their UIDs by name.
async fn create_pods(
    cluster: &Cluster,
    client: &noderun_client::Client,
    names: &[String],
    app: &str,
    image: &str,
) -> BTreeMap<String, String> {
    let manifests: Vec<String> = names.iter().map(|n| quick_pod_of(n, app, image)).collect();
    cluster.apply(&manifests.join("---\n"));
    let pods = pods_by_name(client).await;
    names
        .iter()
        .map(|n| (n.clone(), pods[n].metadata.uid.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_killed_mid_start_finishes_or_redoes_half_made_pods() {
    let Some(mut cluster) = cluster() else {
        return;
    };
    let client = cluster.client().await;
    // Pods running well before the kill: adopted, never restarted.
    let steady: Vec<String> = (0..2).map(|i| format!("steady-{i}")).collect();
    create_pods(&cluster, &client, &steady, "steady", "busybox").await;
    // Pods of an image whose own layer another unpack is holding: each
    // waits in its rootfs phase, its sandbox and network made.
    let image = noderun_tests::images::LayeredImage::write(
        &noderun_testkit::busybox_layout(),
        cluster.dir.path(),
        "halfmade",
    );
    cluster.import_image(&image.layout);
    let hold =
        noderun_tests::images::SnapshotLockHold::unpack(&cluster.state_dir(), &image.top_chain);
    let held: Vec<String> = (0..3).map(|i| format!("held-{i}")).collect();
    let held_uids = create_pods(&cluster, &client, &held, "held", "halfmade").await;
    for name in &steady {
        cluster
            .wait_pod(&client, name, START, "Running", running)
            .await;
    }
    // Its /etc files are written once the network is up.
    let deadline = std::time::Instant::now() + START;
    for uid in held_uids.values() {
        let etc = cluster.run_dir().join("pods").join(uid).join("_etc");
        while !etc.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "{uid} never reached its rootfs\n{}",
                cluster.noderun_log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // A burst, and the daemon killed once the first of it runs.
    let burst: Vec<String> = (0..24).map(|i| format!("burst-{i}")).collect();
    create_pods(&cluster, &client, &burst, "burst", "busybox").await;
    let deadline = std::time::Instant::now() + START;
    while !pods_of_app(&client, "burst").await.iter().any(running) {
        assert!(
            std::time::Instant::now() < deadline,
            "no pod Running\n{}",
            cluster.noderun_log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cluster.kill_noderun();
    // Only the node writes a bound pod's status: this is the kill moment.
    let at_kill = pods_by_name(&client).await;
    let (up, down): (Vec<&Pod>, Vec<&Pod>) = at_kill.values().partition(|p| running(p));
    eprintln!(
        "at the kill: {} Running, {} not: {:?}",
        up.len(),
        down.len(),
        down.iter().map(|p| &p.metadata.name).collect::<Vec<_>>()
    );
    for (name, uid) in &held_uids {
        assert!(!running(&at_kill[name]), "{name} ran past the hold");
        let pin = cluster.run_dir().join("netns").join(uid);
        assert!(pin.exists(), "{name}: no network namespace");
        assert!(ipam_owners(&cluster).contains(uid), "{name}: no address");
    }

    // While the node is down: some pods removed at once (the apiserver
    // forgets them; nobody tells the node), some deleted gracefully (the
    // node finalizes them when it is back), Running and half-made alike.
    let of_burst = |pods: &[&Pod]| -> Vec<String> {
        pods.iter()
            .map(|p| p.metadata.name.clone())
            .filter(|n| burst.contains(n))
            .collect()
    };
    let (burst_up, burst_down) = (of_burst(&up), of_burst(&down));
    let mut forced = vec!["held-1".to_string(), burst_up[0].clone()];
    forced.extend(burst_down.first().cloned());
    let mut graceful = vec!["held-2".to_string(), "steady-1".to_string()];
    graceful.extend(burst_down.get(1).cloned());
    for name in &forced {
        cluster.ctl_ok(&["delete", "pod", name, "--force"]);
    }
    for name in &graceful {
        cluster.ctl_ok(&["delete", "pod", name]);
    }
    // A pod cgroup alone, as a teardown cut short after the namespaces
    // leaves it.
    let stray = "0badc0de-0000-4000-8000-000000000000";
    for dir in noderun_tests::cluster::cgroup_dirs(&cluster.cgroup_parent) {
        std::fs::create_dir_all(dir.join("besteffort").join(format!("pod{stray}"))).unwrap();
    }
    // The other unpack is over.
    drop(hold);
    cluster.start_noderun();

    // Every pod still there ends Running with an address of its own;
    // those deleted are finalized.
    for name in &graceful {
        wait_gone(&cluster, &client, name).await;
    }
    let removed: Vec<&String> = forced.iter().chain(&graceful).collect();
    let mut after = BTreeMap::new();
    for name in at_kill.keys().filter(|n| !removed.contains(n)) {
        let pod = cluster
            .wait_pod(&client, name, START, "Running", running)
            .await;
        after.insert(name.clone(), pod);
    }
    assert_eq!(
        pods_by_name(&client).await.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    let ips: BTreeSet<&str> = after.values().map(|p| p.status.pod_ip.as_str()).collect();
    assert_eq!(ips.len(), after.len(), "each pod its own IP: {ips:?}");
    // What ran at the kill was adopted: the same instance, not restarted.
    let kept_up: Vec<&&Pod> = up
        .iter()
        .filter(|p| after.contains_key(&p.metadata.name))
        .collect();
    assert!(kept_up.iter().any(|p| p.metadata.name == "steady-0"));
    for before in kept_up {
        let now = &after[&before.metadata.name];
        let (b, a) = (
            &before.status.container_statuses[0],
            &now.status.container_statuses[0],
        );
        assert_eq!(a.restart_count, 0, "{}: {a:#?}", before.metadata.name);
        assert_eq!(a.state.running, b.state.running, "{}", before.metadata.name);
        assert_eq!(now.status.pod_ip, before.status.pod_ip);
    }
    // Nothing of the removed pods is left (their teardown may still run
    // after the others are Running: wait for it).
    let gone: Vec<String> = removed
        .iter()
        .map(|n| at_kill[*n].metadata.uid.clone())
        .chain([stray.to_string()])
        .collect();
    for uid in &gone {
        wait_torn_down(&cluster, uid).await;
    }
    let live: BTreeSet<String> = after.values().map(|p| p.metadata.uid.clone()).collect();
    assert_host_holds_only(&cluster, &live, &gone);

    // And once every pod is deleted, the host is clean.
    for name in after.keys() {
        cluster.ctl_ok(&["delete", "pod", name]);
    }
    for name in after.keys() {
        wait_gone(&cluster, &client, name).await;
    }
    for pod in after.values() {
        assert_no_trace(&cluster, &pod.metadata.uid);
    }
    let all: Vec<String> = gone
        .into_iter()
        .chain(after.values().map(|p| p.metadata.uid.clone()))
        .collect();
    assert_host_holds_only(&cluster, &BTreeSet::new(), &all);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_killed_mid_restart_finishes_the_pod_in_place() {
    let Some(mut cluster) = cluster() else {
        return;
    };
    let client = cluster.client().await;
    cluster.apply(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: twin\nspec:\n  terminationGracePeriodSeconds: 2\n  \
         containers:\n  - name: keep\n    image: busybox\n    command: [sh, -c, 'trap \"exit 0\" TERM; \
         while true; do sleep 0.2; done']\n  - name: flaky\n    image: busybox\n    \
         command: [sh, -c, 'sleep 1; exit 1']\n",
    );
    let state = |p: &Pod, i: usize| p.status.container_statuses[i].state.clone();
    let pod = cluster
        .wait_pod(&client, "twin", START, "both running", |p| {
            p.status.container_statuses.len() == 2
                && state(p, 0).running.is_some()
                && state(p, 1).running.is_some()
        })
        .await;
    let uid = pod.metadata.uid.clone();
    // Removals of writable layers wait: flaky's restart, once it exited,
    // stops between the removal of its old container and the new one.
    let hold = noderun_tests::images::SnapshotLockHold::removals(&cluster.state_dir());
    let old = cluster
        .run_dir()
        .join("containers")
        .join(format!("{uid}_flaky"));
    let deadline = std::time::Instant::now() + START;
    while old.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "flaky never restarted\n{}",
            cluster.noderun_log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.kill_noderun();
    drop(hold);
    cluster.start_noderun();

    // keep runs on untouched; flaky is started again.
    let after = cluster
        .wait_pod(&client, "twin", START, "flaky restarted", |p| {
            p.status.container_statuses[1].restart_count == 1
        })
        .await;
    let keep = &after.status.container_statuses[0];
    assert_eq!(keep.restart_count, 0, "{:#?}", after.status);
    assert_eq!(keep.state.running, state(&pod, 0).running);
    assert_eq!(after.status.pod_ip, pod.status.pod_ip);
    assert!(
        cluster.noderun_log().contains("starting the rest again"),
        "{}",
        cluster.noderun_log()
    );
    cluster.ctl_ok(&["delete", "pod", "twin"]);
    wait_gone(&cluster, &client, "twin").await;
    assert_no_trace(&cluster, &uid);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_killed_mid_delete_finishes_the_delete() {
    let Some(mut cluster) = cluster() else {
        return;
    };
    let client = cluster.client().await;
    // A pid-1 `sleep` ignores SIGTERM: the stop waits out the grace period.
    cluster.apply(&script_pod("stubborn", "exec sleep 3600"));
    let pod = cluster
        .wait_pod(&client, "stubborn", START, "Running", running)
        .await;
    let uid = pod.metadata.uid.clone();
    cluster.ctl_ok(&["delete", "pod", "stubborn"]);
    // Killed while it waits for the container to stop.
    let stopping = format!("pod deleted; stopping it pod={uid}");
    let deadline = std::time::Instant::now() + START;
    while !std::fs::read_to_string(cluster.noderun_log_path())
        .unwrap_or_default()
        .contains(&stopping)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            cluster.noderun_log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.kill_noderun();
    let left = get_pod(&client, "stubborn").await;
    assert!(left.metadata.deletion_timestamp.is_some());
    assert!(!paths_naming(&cluster.run_dir(), &uid).is_empty());
    // The restarted node stops it again, removes it and finalizes it.
    cluster.start_noderun();
    wait_gone(&cluster, &client, "stubborn").await;
    wait_torn_down(&cluster, &uid).await;
    assert_no_trace(&cluster, &uid);
}
