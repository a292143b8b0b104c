//! The scheduler against a real apiserver in-process, with fake nodes
//! (Node objects, and Leases the test renews; no node agent): pods are
//! bound to nodes that fit; an unschedulable pod says why and is bound
//! once a node fits; taints keep pods off; a ReplicaSet with required
//! anti-affinity spreads one per node; a silent node's pods move; a feed
//! relists after its watch expires; and the scheduler's identity may do no
//! more than its job.

mod common;

use common::*;
use noderun_controlplane::apiserver::ServeOptions;
use noderun_controlplane::client::{Client, DeleteOptions, Endpoint, ListOptions};
use noderun_controlplane::controllers::{self, Connector, ControllerOptions};
use noderun_controlplane::scheduler::feed::{Feed, FeedEvent};
use noderun_controlplane::scheduler::{self, Backoff, Counters, SchedulerOptions};
use noderun_core::proto::ErrorCode;
use noderun_core::sched::sample;
use noderun_core::{
    ConditionStatus, Kind, Node, Object, Pod, PodConditionType, PodPhase, ReplicaSet, TaintEffect,
    Time, NODE_LEASE_NAMESPACE,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

const GI: i64 = 1 << 30;

/// A test server with the scheduler (and, if asked, the controllers)
/// running against it; dropping it stops them.
struct Cluster {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    counters: Arc<Counters>,
    admin: Client,
    server: TestServer,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn test_options() -> SchedulerOptions {
    SchedulerOptions {
        seed: Some(7),
        connections: 2,
        backoff: Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(400),
            retry_period: Duration::from_secs(5),
        },
        restart_delay: Duration::from_millis(100),
        ..SchedulerOptions::default()
    }
}

impl Cluster {
    async fn start() -> Cluster {
        Cluster::start_with(ServeOptions::default(), None).await
    }

    /// With the controllers too when `controllers` is given.
    async fn start_with(serve: ServeOptions, controllers: Option<ControllerOptions>) -> Cluster {
        let server = TestServer::start_with(serve, Extra::default()).await;
        Cluster::on(server, controllers).await
    }

    async fn on(server: TestServer, controllers: Option<ControllerOptions>) -> Cluster {
        let (stop, stopped) = watch::channel(false);
        let options = test_options();
        let counters = Arc::clone(&options.counters);
        let mut tasks = vec![tokio::spawn(scheduler::run(
            connector(&server, SCHEDULER),
            options,
            stopped.clone(),
        ))];
        if let Some(c) = controllers {
            let connector = connector(&server, CONTROLLERS);
            tasks.push(tokio::spawn(controllers::run(connector, c, stopped)));
        }
        let admin = server.client(ADMIN).await;
        Cluster {
            stop,
            tasks,
            counters,
            admin,
            server,
        }
    }

    /// A Ready node with `cpu_millis` and 16 GiB, labelled with its
    /// hostname and zone.
    async fn add_node(&self, name: &str, cpu_millis: i64) {
        self.create_node(sample::node(name, cpu_millis, 16 * GI, "zone-a"))
            .await;
    }

    async fn create_node(&self, node: Node) {
        self.admin.create(Object::Node(node)).await.expect("node");
    }

    async fn create_pod(&self, pod: Pod) {
        self.admin.create(Object::Pod(pod)).await.expect("pod");
    }

    async fn pod(&self, name: &str) -> Pod {
        as_pod(self.admin.get(Kind::Pod, "default", name).await.unwrap())
    }

    async fn pods(&self) -> Vec<Pod> {
        let (items, _) = (self.admin)
            .list(Kind::Pod, Some("default"), &ListOptions::default())
            .await
            .unwrap();
        items.into_iter().map(as_pod).collect()
    }

    /// Wait until every pod named is bound; their nodes by pod name.
    async fn wait_bound(&self, names: &[String]) -> BTreeMap<String, String> {
        eventually("pods bound", || async {
            let pods = self.pods().await;
            let placed: BTreeMap<String, String> = (pods.iter())
                .filter(|p| names.contains(&p.metadata.name) && !p.spec.node_name.is_empty())
                .map(|p| (p.metadata.name.clone(), p.spec.node_name.clone()))
                .collect();
            (placed.len() == names.len()).then_some(placed)
        })
        .await
    }
}

fn connector(server: &TestServer, token: &str) -> Connector {
    Connector {
        endpoint: Endpoint::Unix(server.socket.clone()),
        token: token.into(),
    }
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_are_bound_to_nodes_that_fit() {
    let cluster = Cluster::start().await;
    cluster.add_node("small", 1000).await;
    cluster.add_node("big", 8000).await;
    // Only the big node has room for 2 CPUs.
    let large = names("large", 3);
    for name in &large {
        cluster
            .create_pod(sample::pod("default", name, 2000, GI))
            .await;
    }
    let small = names("small", 20);
    for name in &small {
        cluster
            .create_pod(sample::pod("default", name, 100, 64 << 20))
            .await;
    }
    let placed = cluster.wait_bound(&large).await;
    assert!(placed.values().all(|n| n == "big"), "{placed:?}");
    let placed = cluster.wait_bound(&small).await;
    let used: BTreeSet<&String> = placed.values().collect();
    assert!(used.iter().all(|n| ["small", "big"].contains(&n.as_str())));
    // Every pod bound once (the scheduler counts a bind when its answer
    // comes, which may be after the test sees it).
    eventually("23 binds counted", || async {
        (cluster.counters.scheduled() == 23).then_some(())
    })
    .await;
    assert_eq!(cluster.counters.bind_conflicts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unschedulable_pod_says_why_and_is_bound_once_a_node_fits() {
    let cluster = Cluster::start().await;
    cluster.add_node("small", 1000).await;
    let mut gpu = sample::node("gpu", 32_000, 64 * GI, "zone-a");
    gpu.spec
        .taints
        .push(sample::taint("gpu", "", TaintEffect::NoSchedule));
    cluster.create_node(gpu).await;
    cluster
        .create_pod(sample::pod("default", "hungry", 4000, GI))
        .await;
    let want = "0/2 nodes are available: 1 Insufficient cpu, \
                1 node(s) had untolerated taint {gpu: NoSchedule}.";
    let refused = eventually("the PodScheduled condition", || async {
        let pod = cluster.pod("hungry").await;
        let c = pod
            .status
            .condition(PodConditionType::PodScheduled)
            .cloned();
        c.filter(|c| c.status == ConditionStatus::False && c.message == want)
    })
    .await;
    assert_eq!(refused.reason, "Unschedulable");
    let pod = cluster.pod("hungry").await;
    assert!(pod.spec.node_name.is_empty());
    // Retried when the cluster changes; the same reasons write nothing.
    let (writes, attempts) = (
        cluster.counters.status_writes(),
        cluster.counters.unschedulable(),
    );
    let mut small = as_node(cluster.admin.get(Kind::Node, "", "small").await.unwrap());
    small.metadata.labels.insert("disk".into(), "ssd".into());
    cluster.admin.update(Object::Node(small)).await.unwrap();
    eventually("a retry", || async {
        (cluster.counters.unschedulable() > attempts).then_some(())
    })
    .await;
    assert_eq!(cluster.counters.status_writes(), writes);
    // Other reasons: written again.
    cluster.add_node("small-2", 1000).await;
    let want = "0/3 nodes are available: 2 Insufficient cpu, \
                1 node(s) had untolerated taint {gpu: NoSchedule}.";
    eventually("the new summary", || async {
        let pod = cluster.pod("hungry").await;
        let c = pod
            .status
            .condition(PodConditionType::PodScheduled)
            .cloned()?;
        (c.message == want).then_some(())
    })
    .await;
    assert_eq!(cluster.counters.status_writes(), writes + 1);

    // A node that fits: bound there, and the condition says so.
    cluster.add_node("big", 8000).await;
    let placed = cluster.wait_bound(&["hungry".to_owned()]).await;
    assert_eq!(placed["hungry"], "big");
    eventually("PodScheduled=True", || async {
        let pod = cluster.pod("hungry").await;
        let c = pod
            .status
            .condition(PodConditionType::PodScheduled)
            .cloned()?;
        (c.status == ConditionStatus::True).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tainted_node_gets_only_tolerating_pods() {
    let cluster = Cluster::start().await;
    let mut infra = sample::node("infra", 32_000, 64 * GI, "zone-a");
    infra
        .spec
        .taints
        .push(sample::taint("dedicated", "infra", TaintEffect::NoSchedule));
    cluster.create_node(infra).await;
    cluster.add_node("plain", 32_000).await;
    let plain = names("plain", 20);
    for name in &plain {
        cluster
            .create_pod(sample::pod("default", name, 100, 64 << 20))
            .await;
    }
    let placed = cluster.wait_bound(&plain).await;
    assert!(placed.values().all(|n| n == "plain"), "{placed:?}");
    // Pods that tolerate the taint may go to either; the emptier infra
    // node scores best.
    let tolerating = names("tolerating", 10);
    for name in &tolerating {
        let pod = sample::pod("default", name, 100, 64 << 20);
        cluster
            .create_pod(sample::tolerating(pod, "dedicated"))
            .await;
    }
    let placed = cluster.wait_bound(&tolerating).await;
    assert!(placed.values().any(|n| n == "infra"), "{placed:?}");
    for pod in cluster.pods().await {
        if pod.spec.node_name == "infra" {
            assert!(
                pod.metadata.name.starts_with("tolerating"),
                "{} on the tainted node",
                pod.metadata.name
            );
        }
    }
}

/// The ReplicaSet `name` of `replicas` pods labelled `app=<name>`, each
/// refusing to share a node with another.
fn anti_affine_rs(name: &str, replicas: i32) -> Object {
    let mut object = replicaset("default", name);
    if let Object::ReplicaSet(rs) = &mut object {
        rs.spec.replicas = Some(replicas);
        let spread = sample::anti_affine(Pod::default(), name, noderun_core::sched::HOSTNAME_LABEL);
        rs.spec.template.spec.affinity = spread.spec.affinity;
    }
    object
}

fn controller_options() -> ControllerOptions {
    ControllerOptions {
        node_monitor_grace_period: Duration::from_millis(1500),
        default_toleration_seconds: 1,
        retry_delay: Duration::from_millis(100),
        ..ControllerOptions::default()
    }
}

fn owned_by(pod: &Pod, rs: &ReplicaSet) -> bool {
    let owner = pod.metadata.controller_ref();
    owner.is_some_and(|r| r.uid == rs.metadata.uid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicaset_with_required_anti_affinity_lands_one_per_node() {
    let cluster = Cluster::start_with(ServeOptions::default(), Some(controller_options())).await;
    for i in 0..10 {
        cluster.add_node(&format!("n{i}"), 4000).await;
    }
    let rs = match cluster.admin.create(anti_affine_rs("web", 10)).await {
        Ok(Object::ReplicaSet(rs)) => rs,
        other => panic!("create replicaset: {other:?}"),
    };
    let nodes = eventually("10 replicas bound", || async {
        let pods = cluster.pods().await;
        let nodes: Vec<String> = (pods.iter())
            .filter(|p| owned_by(p, &rs) && !p.spec.node_name.is_empty())
            .map(|p| p.spec.node_name.clone())
            .collect();
        (nodes.len() == 10).then_some(nodes)
    })
    .await;
    let distinct: BTreeSet<&String> = nodes.iter().collect();
    assert_eq!(distinct.len(), 10, "one per node: {nodes:?}");
    // An eleventh replica has nowhere to go, and says so.
    // (Read and written again while the controller's status updates win
    // the compare-and-swap.)
    eventually("the scale to 11", || async {
        let mut more = (cluster.admin)
            .get(Kind::ReplicaSet, "default", "web")
            .await
            .unwrap();
        if let Object::ReplicaSet(rs) = &mut more {
            rs.spec.replicas = Some(11);
        }
        cluster.admin.update(more).await.ok()
    })
    .await;
    let why = eventually("the eleventh refused", || async {
        let pods = cluster.pods().await;
        pods.into_iter().find_map(|p| {
            let c = p.status.condition(PodConditionType::PodScheduled)?;
            (c.status == ConditionStatus::False).then(|| c.message.clone())
        })
    })
    .await;
    assert_eq!(
        why,
        "0/10 nodes are available: 10 node(s) didn't match pod anti-affinity rules."
    );
}

async fn renew_lease(admin: &Client, node: &str) {
    let mut lease = match admin.get(Kind::Lease, NODE_LEASE_NAMESPACE, node).await {
        Ok(l) => l,
        Err(e) if e.code() == Some(ErrorCode::NotFound) => {
            let l = lease(node);
            admin.create(l).await.expect("create lease")
        }
        Err(e) => panic!("lease of {node}: {e}"),
    };
    if let Object::Lease(l) = &mut lease {
        l.spec.renew_time = Some(Time::now());
    }
    // A conflict with the node lifecycle controller's read is harmless.
    let _ = admin.update(lease).await;
}

/// Renew `node`'s Lease every 200 ms until dropped.
struct Heartbeat(JoinHandle<()>);

impl Heartbeat {
    fn start(admin: Client, node: &str) -> Heartbeat {
        let node = node.to_owned();
        Heartbeat(tokio::spawn(async move {
            loop {
                renew_lease(&admin, &node).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pods_of_a_silent_node_move_to_another() {
    let cluster = Cluster::start_with(ServeOptions::default(), Some(controller_options())).await;
    cluster.add_node("n1", 4000).await;
    let n1_beat = Heartbeat::start(cluster.server.client(ADMIN).await, "n1");
    let rs = match cluster.admin.create(replicaset("default", "web")).await {
        Ok(Object::ReplicaSet(rs)) => rs,
        other => panic!("create replicaset: {other:?}"),
    };
    let first = eventually("2 replicas on n1", || async {
        let pods = cluster.pods().await;
        let on_n1: Vec<String> = (pods.iter())
            .filter(|p| owned_by(p, &rs) && p.spec.node_name == "n1")
            .map(|p| p.metadata.name.clone())
            .collect();
        (on_n1.len() == 2).then_some(on_n1)
    })
    .await;
    cluster.add_node("n2", 4000).await;
    let _n2_beat = Heartbeat::start(cluster.server.client(ADMIN).await, "n2");
    // n1 goes silent: tainted unreachable, its pods evicted, the
    // replacements scheduled on n2.
    drop(n1_beat);
    eventually("replacements bound to n2", || async {
        let pods = cluster.pods().await;
        let fresh: Vec<&Pod> = (pods.iter())
            .filter(|p| owned_by(p, &rs) && !p.metadata.is_terminating())
            .filter(|p| !p.status.phase.is_terminal())
            .collect();
        let moved = fresh.len() == 2
            && fresh
                .iter()
                .all(|p| p.spec.node_name == "n2" && !first.contains(&p.metadata.name));
        moved.then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_and_finished_pods_free_their_node() {
    let cluster = Cluster::start().await;
    // Room for two 1-CPU pods.
    cluster.add_node("n1", 2000).await;
    for name in ["a", "b", "c"] {
        cluster
            .create_pod(sample::pod("default", name, 1000, GI))
            .await;
    }
    let bound = eventually("two bound, one refused", || async {
        let pods = cluster.pods().await;
        let bound: Vec<String> = (pods.iter())
            .filter(|p| !p.spec.node_name.is_empty())
            .map(|p| p.metadata.name.clone())
            .collect();
        let refused = pods.iter().any(|p| {
            p.status
                .condition(PodConditionType::PodScheduled)
                .is_some_and(|c| c.status == ConditionStatus::False)
        });
        (bound.len() == 2 && refused).then_some(bound)
    })
    .await;
    let waiting = ["a", "b", "c"]
        .into_iter()
        .find(|n| !bound.contains(&n.to_string()))
        .unwrap()
        .to_owned();
    // One finishes (the node says Succeeded): its CPU is free again.
    let mut done = cluster.pod(&bound[0]).await;
    done.status.phase = PodPhase::Succeeded;
    cluster
        .admin
        .update_status(Object::Pod(done))
        .await
        .unwrap();
    cluster.wait_bound(std::slice::from_ref(&waiting)).await;
    // Another pod waits until a bound one is deleted.
    cluster
        .create_pod(sample::pod("default", "d", 1000, GI))
        .await;
    eventually("d refused", || async {
        let pod = cluster.pod("d").await;
        let c = pod.status.condition(PodConditionType::PodScheduled)?;
        (c.status == ConditionStatus::False).then_some(())
    })
    .await;
    let force = DeleteOptions {
        force: true,
        ..DeleteOptions::default()
    };
    (cluster.admin)
        .delete(Kind::Pod, "default", &bound[1], &force)
        .await
        .unwrap();
    cluster.wait_bound(&["d".to_owned()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_relists_after_its_watch_expires() {
    let server = lagging_watch_server().await;
    let counters = Arc::new(Counters::default());
    // Room for the first list only: the feed then waits on the channel
    // while its watch falls behind.
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let client = server.client(SCHEDULER).await;
    let _feed = Feed::start(client, Kind::Pod, tx, Arc::clone(&counters));
    match rx.recv().await {
        Some(FeedEvent::Listed(Kind::Pod, items)) => assert!(items.is_empty()),
        other => panic!("first event: {other:?}"),
    }
    const PODS: usize = 6000;
    create_pods_at_once(&server, PODS).await;
    // The events that made it, then a fresh list with every pod.
    let deadline = Instant::now() + Duration::from_secs(60);
    let listed = loop {
        assert!(Instant::now() < deadline, "no relist");
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(FeedEvent::Listed(_, items))) => break items.len(),
            Ok(Some(FeedEvent::Failed(_, e))) => panic!("feed failed: {e}"),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => panic!("the feed stopped without relisting"),
        }
    };
    assert_eq!(listed, PODS);
    assert_eq!(counters.relists(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_converges_through_expired_watches() {
    let cluster = Cluster::on(lagging_watch_server().await, None).await;
    for i in 0..20 {
        cluster.add_node(&format!("n{i}"), 32_000).await;
    }
    create_pods_at_once(&cluster.server, 1500).await;
    let all: Vec<String> = (0..1500).map(|i| format!("p{i}")).collect();
    cluster.wait_bound(&all).await;
    // Whether a watch expired depends on timing; when one did, the
    // scheduler relisted and still bound every pod exactly once.
    eprintln!(
        "relists: {}, conflicts: {}",
        cluster.counters.relists(),
        cluster.counters.bind_conflicts()
    );
    eventually("1,500 binds counted", || async {
        (cluster.counters.scheduled() == 1500).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(cluster.counters.scheduled(), 1500, "none bound twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_identity_may_only_read_bind_and_say_why() {
    let server = TestServer::start().await;
    let admin = server.client(ADMIN).await;
    let sched = server.client(SCHEDULER).await;
    assert_eq!(sched.identity(), "system:scheduler");
    admin.create(node("n1")).await.unwrap();
    admin.create(pod("default", "p", "")).await.unwrap();
    admin.create(pod("default", "q", "")).await.unwrap();
    let forbidden = |r: Result<Object, noderun_controlplane::client::ClientError>| {
        assert_eq!(code(r), ErrorCode::Forbidden);
    };
    // No creating, updating or deleting pods, nodes or anything else.
    forbidden(sched.create(pod("default", "mine", "")).await);
    let p = admin.get(Kind::Pod, "default", "p").await.unwrap();
    forbidden(sched.update(p.clone()).await);
    forbidden(
        sched
            .delete(Kind::Pod, "default", "p", &DeleteOptions::default())
            .await,
    );
    let n1 = admin.get(Kind::Node, "", "n1").await.unwrap();
    forbidden(sched.update(n1.clone()).await);
    forbidden(sched.update_status(n1).await);
    forbidden(sched.create(lease("n1")).await);
    forbidden(sched.create(replicaset("default", "rs")).await);
    // Its pod status writes may touch the PodScheduled condition only.
    let mut running = as_pod(p.clone());
    running.status.phase = PodPhase::Running;
    let e = sched.update_status(Object::Pod(running)).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::Forbidden), "{e}");
    assert!(
        e.to_string().contains("only the PodScheduled condition"),
        "{e}"
    );
    let why = noderun_controlplane::scheduler::condition::with_pod_scheduled(
        &as_pod(p),
        ConditionStatus::False,
        "Unschedulable",
        "0/1 nodes are available: 1 Insufficient cpu.",
    )
    .unwrap();
    sched.update_status(Object::Pod(why)).await.unwrap();
    // Reads and binds are its job.
    sched
        .list(Kind::Pod, None, &ListOptions::default())
        .await
        .unwrap();
    sched
        .watch(Kind::Node, None, &ListOptions::default(), 0)
        .await
        .unwrap();
    let bound = sched.bind("default", "q", "n1", 0).await.unwrap();
    assert_eq!(as_pod(bound).spec.node_name, "n1");
}
