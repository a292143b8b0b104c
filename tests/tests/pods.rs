//! Pods end to end on one node: the `controlplane` and `noderun agent`
//! binaries, pods made and removed through `ctl`, their state read from
//! the apiserver. Privileged (root: namespaces, cgroups, mounts). Each
//! test runs its own cluster (see `noderun_tests::cluster`), so they run
//! side by side.

use noderun_core::{ConditionStatus, Pod, PodConditionType, PodPhase};
use noderun_testkit::privileged;
use noderun_tests::cluster::Cluster;
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

/// The text of pod `name`'s container `container` log on the node.
fn pod_log(cluster: &Cluster, pod: &Pod, container: &str) -> String {
    let dir = cluster.log_dir().join(format!(
        "{}_{}_{}",
        pod.metadata.namespace, pod.metadata.name, pod.metadata.uid
    ));
    std::fs::read_to_string(dir.join(container).join("0.log")).unwrap_or_default()
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
    assert!(pod_log(&cluster, &done, "c").contains("hello-from-server"));
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
    assert!(
        pod_log(&cluster, &first, "crasher")
            .matches("crashing")
            .count()
            >= 2
    );
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
}
