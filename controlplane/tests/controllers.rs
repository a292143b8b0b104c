//! The controllers against a real apiserver in-process, with fake nodes
//! (Node objects and Leases the test writes; no node agent): ReplicaSets
//! create, replace, scale, adopt and release pods; deleting a ReplicaSet
//! collects its pods; a node whose Lease goes silent is tainted and its
//! pods are evicted and made again; a node under pressure is tainted
//! NoSchedule while its pressure condition holds; an expired watch is
//! relisted.

mod common;

use common::*;
use noderun_controlplane::apiserver::ServeOptions;
use noderun_controlplane::client::{Client, DeleteOptions, Endpoint, ListOptions};
use noderun_controlplane::controllers::node_lifecycle::{
    TAINT_MEMORY_PRESSURE, TAINT_PID_PRESSURE, TAINT_UNREACHABLE,
};
use noderun_controlplane::controllers::reflector::{Change, Reflector};
use noderun_controlplane::controllers::{self, Connector, ControllerOptions};
use noderun_core::proto::ErrorCode;
use noderun_core::{
    ConditionStatus, Kind, Labels, Node, NodeCondition, NodeConditionType, Object, Pod, PodPhase,
    ReplicaSet, TaintEffect, Time, Toleration, TolerationOperator, NODE_LEASE_NAMESPACE,
};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A test server with the controllers running against it; dropping it
/// stops both.
struct Cluster {
    stop: tokio::sync::watch::Sender<bool>,
    controllers: JoinHandle<()>,
    admin: Client,
    _server: TestServer,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.controllers.abort();
    }
}

fn test_options() -> ControllerOptions {
    ControllerOptions {
        node_monitor_grace_period: Duration::from_millis(1500),
        default_toleration_seconds: 1,
        retry_delay: Duration::from_millis(100),
        ..ControllerOptions::default()
    }
}

impl Cluster {
    async fn start() -> Cluster {
        Cluster::start_with(ServeOptions::default(), test_options()).await
    }

    async fn start_with(serve: ServeOptions, options: ControllerOptions) -> Cluster {
        let server = TestServer::start_with(serve, Extra::default()).await;
        let connector = Connector {
            endpoint: Endpoint::Unix(server.socket.clone()),
            token: CONTROLLERS.into(),
        };
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let controllers = tokio::spawn(controllers::run(connector, options, stopped));
        let admin = server.client(ADMIN).await;
        Cluster {
            stop,
            controllers,
            admin,
            _server: server,
        }
    }

    async fn create_rs(&self, name: &str, replicas: i32) -> ReplicaSet {
        let mut object = replicaset("default", name);
        if let Object::ReplicaSet(rs) = &mut object {
            rs.spec.replicas = Some(replicas);
        }
        as_rs(self.admin.create(object).await.expect("create replicaset"))
    }

    async fn rs(&self, name: &str) -> ReplicaSet {
        as_rs(
            self.admin
                .get(Kind::ReplicaSet, "default", name)
                .await
                .unwrap(),
        )
    }

    /// Set `spec.replicas`, reading the set again when the controller's
    /// status update wins the compare-and-swap first.
    async fn scale(&self, name: &str, replicas: i32) {
        eventually("the scale to win its compare-and-swap", || async {
            let mut rs = self.rs(name).await;
            rs.spec.replicas = Some(replicas);
            match self.admin.update(Object::ReplicaSet(rs)).await {
                Ok(_) => Some(()),
                Err(e) if e.code() == Some(ErrorCode::Conflict) => None,
                Err(e) => panic!("scaling {name}: {e}"),
            }
        })
        .await;
    }

    async fn pods(&self) -> Vec<Pod> {
        let (items, _) = self
            .admin
            .list(Kind::Pod, Some("default"), &ListOptions::default())
            .await
            .unwrap();
        items
            .into_iter()
            .map(|o| match o {
                Object::Pod(p) => p,
                other => panic!("not a pod: {other:?}"),
            })
            .collect()
    }

    /// Pods `rs` controls that count as replicas.
    async fn active_pods(&self, rs: &ReplicaSet) -> Vec<Pod> {
        let mut pods: Vec<Pod> = self
            .pods()
            .await
            .into_iter()
            .filter(|p| owned_by(p, rs) && active(p))
            .collect();
        pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        pods
    }

    /// Wait until `rs` has exactly `n` active pods; return them.
    async fn wait_replicas(&self, rs: &ReplicaSet, n: usize) -> Vec<Pod> {
        let what = format!("{} active pods of {}", n, rs.metadata.name);
        eventually(&what, || async {
            let pods = self.active_pods(rs).await;
            (pods.len() == n).then_some(pods)
        })
        .await
    }

    async fn set_pod_phase(&self, name: &str, phase: PodPhase) {
        let mut pod = self.admin.get(Kind::Pod, "default", name).await.unwrap();
        if let Object::Pod(p) = &mut pod {
            p.status.phase = phase;
        }
        self.admin.update_status(pod).await.unwrap();
    }

    /// A node with `Ready=True`, and its Lease.
    async fn add_node(&self, name: &str) {
        self.admin.create(node(name)).await.unwrap();
        let mut n = as_node(self.admin.get(Kind::Node, "", name).await.unwrap());
        n.status.conditions.push(NodeCondition {
            type_: NodeConditionType::Ready,
            status: ConditionStatus::True,
            reason: "FakeNodeReady".into(),
            ..NodeCondition::default()
        });
        self.admin.update_status(Object::Node(n)).await.unwrap();
        let mut l = lease(name);
        if let Object::Lease(l) = &mut l {
            l.spec.renew_time = Some(Time::now());
        }
        self.admin.create(l).await.unwrap();
    }

    async fn renew_lease(&self, node: &str) {
        let mut l = self
            .admin
            .get(Kind::Lease, NODE_LEASE_NAMESPACE, node)
            .await
            .unwrap();
        if let Object::Lease(l) = &mut l {
            l.spec.renew_time = Some(Time::now());
        }
        self.admin.update(l).await.unwrap();
    }

    async fn node(&self, name: &str) -> Node {
        as_node(self.admin.get(Kind::Node, "", name).await.unwrap())
    }
}

fn as_rs(object: Object) -> ReplicaSet {
    match object {
        Object::ReplicaSet(rs) => rs,
        other => panic!("not a replicaset: {other:?}"),
    }
}

fn owned_by(pod: &Pod, rs: &ReplicaSet) -> bool {
    pod.metadata
        .controller_ref()
        .is_some_and(|r| r.uid == rs.metadata.uid)
}

fn active(pod: &Pod) -> bool {
    !pod.metadata.is_terminating() && !pod.status.phase.is_terminal()
}

fn names(pods: &[Pod]) -> Vec<String> {
    pods.iter().map(|p| p.metadata.name.clone()).collect()
}

/// An unowned pod with `rs`'s labels.
fn orphan(name: &str, app: &str) -> Object {
    let mut object = pod("default", name, "");
    let labels: Labels = [("app".to_string(), app.to_string())].into();
    object.metadata_mut().labels = labels;
    object
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicaset_creates_owned_pods_and_reports_status() {
    let cluster = Cluster::start().await;
    let rs = cluster.create_rs("web", 3).await;
    let pods = cluster.wait_replicas(&rs, 3).await;
    for p in &pods {
        assert!(p.metadata.name.starts_with("web-"), "{}", p.metadata.name);
        assert_eq!(
            p.metadata.labels.get("app").map(String::as_str),
            Some("web")
        );
        let owner = p.metadata.controller_ref().unwrap();
        assert_eq!(
            (owner.kind, owner.name.as_str(), owner.controller),
            (Kind::ReplicaSet, "web", true)
        );
    }
    let status = eventually("status of web", || async {
        let rs = cluster.rs("web").await;
        (rs.status.replicas == 3).then_some(rs.status)
    })
    .await;
    assert_eq!(status.observed_generation, 1);
    assert_eq!((status.ready_replicas, status.available_replicas), (0, 0));
    assert_eq!(status.fully_labeled_replicas, 3);
    // Nothing more is made once the count is right.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(cluster.pods().await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_up_and_down_prefers_deleting_unscheduled_pods() {
    let cluster = Cluster::start().await;
    let rs = cluster.create_rs("web", 2).await;
    cluster.wait_replicas(&rs, 2).await;
    cluster.scale("web", 5).await;
    let pods = cluster.wait_replicas(&rs, 5).await;
    // Two of them on a node and running: those stay when scaling down.
    let kept: Vec<String> = names(&pods[..2]);
    for name in &kept {
        cluster.admin.bind("default", name, "n1", 0).await.unwrap();
        cluster.set_pod_phase(name, PodPhase::Running).await;
    }
    cluster.scale("web", 2).await;
    let left = cluster.wait_replicas(&rs, 2).await;
    assert_eq!(names(&left), kept);
    let status = eventually("status after scaling down", || async {
        let rs = cluster.rs("web").await;
        (rs.status.replicas == 2 && rs.status.observed_generation == 3).then_some(rs.status)
    })
    .await;
    assert_eq!(status.fully_labeled_replicas, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_or_failed_pods_are_replaced() {
    let cluster = Cluster::start().await;
    let rs = cluster.create_rs("web", 2).await;
    let first = cluster.wait_replicas(&rs, 2).await;
    let gone = &first[0].metadata.name;
    cluster
        .admin
        .delete(Kind::Pod, "default", gone, &DeleteOptions::default())
        .await
        .unwrap();
    let second = eventually("a replacement for the deleted pod", || async {
        let pods = cluster.active_pods(&rs).await;
        (pods.len() == 2 && !names(&pods).contains(gone)).then_some(pods)
    })
    .await;
    let failed = second[0].metadata.name.clone();
    cluster.set_pod_phase(&failed, PodPhase::Failed).await;
    eventually("a replacement for the failed pod", || async {
        let pods = cluster.active_pods(&rs).await;
        (pods.len() == 2 && !names(&pods).contains(&failed)).then_some(())
    })
    .await;
    // The failed pod is kept (as Kubernetes does), just not counted.
    let all = cluster.pods().await;
    assert_eq!(all.len(), 3, "{:?}", names(&all));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_are_adopted_and_pods_that_stop_matching_are_released() {
    let cluster = Cluster::start().await;
    cluster.admin.create(orphan("stray", "web")).await.unwrap();
    cluster
        .admin
        .create(orphan("other-app", "db"))
        .await
        .unwrap();
    let rs = cluster.create_rs("web", 2).await;
    let pods = cluster.wait_replicas(&rs, 2).await;
    assert!(
        names(&pods).contains(&"stray".to_string()),
        "{:?}",
        names(&pods)
    );
    assert_eq!(cluster.pods().await.len(), 3, "one created, one adopted");
    let db = cluster
        .admin
        .get(Kind::Pod, "default", "other-app")
        .await
        .unwrap();
    assert!(db.metadata().owner_references.is_empty());

    // Relabelled, the stray leaves the set, which makes another pod.
    let mut stray = cluster
        .admin
        .get(Kind::Pod, "default", "stray")
        .await
        .unwrap();
    stray
        .metadata_mut()
        .labels
        .insert("app".into(), "elsewhere".into());
    cluster.admin.update(stray).await.unwrap();
    eventually("the stray released and replaced", || async {
        let pods = cluster.active_pods(&rs).await;
        let stray = cluster
            .admin
            .get(Kind::Pod, "default", "stray")
            .await
            .ok()?;
        let released = stray.metadata().owner_references.is_empty();
        (released && pods.len() == 2 && !names(&pods).contains(&"stray".into())).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_replicaset_collects_its_pods() {
    let cluster = Cluster::start().await;
    cluster
        .admin
        .create(orphan("bystander", "db"))
        .await
        .unwrap();
    let rs = cluster.create_rs("web", 3).await;
    let pods = cluster.wait_replicas(&rs, 3).await;
    // One is on a node: its delete is graceful and left to the node.
    let bound = pods[0].metadata.name.clone();
    cluster
        .admin
        .bind("default", &bound, "n1", 0)
        .await
        .unwrap();
    cluster
        .admin
        .delete(
            Kind::ReplicaSet,
            "default",
            "web",
            &DeleteOptions::default(),
        )
        .await
        .unwrap();
    let left = eventually("the set's pods deleted", || async {
        let left: Vec<Pod> = cluster
            .pods()
            .await
            .into_iter()
            .filter(|p| owned_by(p, &rs))
            .collect();
        (left.len() == 1 && left[0].metadata.is_terminating()).then_some(left)
    })
    .await;
    assert_eq!(left[0].metadata.name, bound);
    let all = names(&cluster.pods().await);
    assert!(all.contains(&"bystander".to_string()), "{all:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_node_is_tainted_and_its_pods_move() {
    let cluster = Cluster::start().await;
    cluster.add_node("n1").await;
    let rs = cluster.create_rs("web", 2).await;
    let first = cluster.wait_replicas(&rs, 2).await;
    for p in &first {
        cluster
            .admin
            .bind("default", &p.metadata.name, "n1", 0)
            .await
            .unwrap();
    }
    // A pod that tolerates the node being unreachable forever stays.
    let mut stays = pod("default", "stays", "n1");
    if let Object::Pod(p) = &mut stays {
        p.spec.tolerations.push(Toleration {
            key: TAINT_UNREACHABLE.into(),
            operator: TolerationOperator::Exists,
            effect: Some(TaintEffect::NoExecute),
            ..Toleration::default()
        });
    }
    cluster.admin.create(stays).await.unwrap();

    // While the Lease is renewed the node stays Ready and untainted.
    let heard_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < heard_until {
        cluster.renew_lease("n1").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let n1 = cluster.node("n1").await;
    assert!(n1.is_ready(), "{:?}", n1.status.conditions);
    assert!(n1.spec.taints.is_empty(), "{:?}", n1.spec.taints);

    // Silent: Ready=Unknown and the NoExecute taint.
    let n1 = eventually("n1 unreachable", || async {
        let n = cluster.node("n1").await;
        let tainted = n
            .spec
            .taints
            .iter()
            .any(|t| t.key == TAINT_UNREACHABLE && t.effect == TaintEffect::NoExecute);
        tainted.then_some(n)
    })
    .await;
    let ready = n1.status.condition(NodeConditionType::Ready).unwrap();
    assert_eq!(ready.status, ConditionStatus::Unknown);

    // After the toleration period the set's pods are evicted and made again.
    let first_names = names(&first);
    eventually("pods evicted from n1 and replaced", || async {
        let pods = cluster.pods().await;
        let evicted = pods
            .iter()
            .filter(|p| first_names.contains(&p.metadata.name))
            .all(|p| p.metadata.is_terminating());
        let fresh = cluster.active_pods(&rs).await;
        let replaced = fresh.len() == 2
            && fresh
                .iter()
                .all(|p| !first_names.contains(&p.metadata.name));
        (evicted && replaced).then_some(())
    })
    .await;
    let stays = cluster
        .admin
        .get(Kind::Pod, "default", "stays")
        .await
        .unwrap();
    assert!(
        !stays.metadata().is_terminating(),
        "a forever toleration is kept"
    );

    // Heard again: Ready and untainted.
    eventually("n1 ready again", || async {
        cluster.renew_lease("n1").await;
        let n = cluster.node("n1").await;
        (n.is_ready() && n.spec.taints.is_empty()).then_some(())
    })
    .await;
}

/// Set node `name`'s condition `type_` to `status`, as its agent would
/// (read again after a conflict with the controller's writes).
async fn set_node_condition(
    cluster: &Cluster,
    name: &str,
    type_: NodeConditionType,
    status: ConditionStatus,
) {
    eventually("the node condition written", || async {
        let mut n = cluster.node(name).await;
        n.status.conditions.retain(|c| c.type_ != type_);
        n.status.conditions.push(NodeCondition {
            type_,
            status,
            reason: "FakePressure".into(),
            ..NodeCondition::default()
        });
        match cluster.admin.update_status(Object::Node(n)).await {
            Ok(_) => Some(()),
            Err(e) if e.code() == Some(ErrorCode::Conflict) => None,
            Err(e) => panic!("updating node {name}: {e}"),
        }
    })
    .await;
}

fn pressure_taints(n: &Node) -> Vec<(String, TaintEffect)> {
    n.spec
        .taints
        .iter()
        .filter(|t| t.key.ends_with("-pressure"))
        .map(|t| (t.key.clone(), t.effect))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pressure_conditions_taint_the_node_no_schedule() {
    let cluster = Cluster::start().await;
    cluster.add_node("n1").await;
    set_node_condition(
        &cluster,
        "n1",
        NodeConditionType::MemoryPressure,
        ConditionStatus::True,
    )
    .await;
    set_node_condition(
        &cluster,
        "n1",
        NodeConditionType::PidPressure,
        ConditionStatus::True,
    )
    .await;
    eventually("n1 tainted for memory and pid pressure", || async {
        let taints = pressure_taints(&cluster.node("n1").await);
        (taints
            == [
                (TAINT_MEMORY_PRESSURE.to_string(), TaintEffect::NoSchedule),
                (TAINT_PID_PRESSURE.to_string(), TaintEffect::NoSchedule),
            ])
        .then_some(())
    })
    .await;
    set_node_condition(
        &cluster,
        "n1",
        NodeConditionType::MemoryPressure,
        ConditionStatus::False,
    )
    .await;
    eventually(
        "the memory pressure taint goes with the condition",
        || async {
            let taints = pressure_taints(&cluster.node("n1").await);
            (taints == [(TAINT_PID_PRESSURE.to_string(), TaintEffect::NoSchedule)]).then_some(())
        },
    )
    .await;
    set_node_condition(
        &cluster,
        "n1",
        NodeConditionType::PidPressure,
        ConditionStatus::False,
    )
    .await;
    eventually("no pressure, no pressure taint", || async {
        pressure_taints(&cluster.node("n1").await)
            .is_empty()
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_watch_is_relisted() {
    // A watch may fall one event behind before the apiserver expires it.
    let serve = ServeOptions {
        watch_buffer: 1,
        ..ServeOptions::default()
    };
    let server = TestServer::start_with(serve, Extra::default()).await;
    let client = server.client(CONTROLLERS).await;
    let mut pods = Reflector::start(client, Kind::Pod, None).await.unwrap();
    // Not read while thousands of pods arrive: the client's queue, the
    // socket and the server's queue fill, and the server gives up on it.
    const PODS: usize = 6000;
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..16 {
        let admin = server.client(ADMIN).await;
        writers.spawn(async move {
            for i in (w..PODS).step_by(16) {
                admin
                    .create(pod("default", &format!("p{i}"), ""))
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.unwrap();
    }
    let mut expired = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), pods.next()).await {
            Ok(Ok(Change::Expired)) => {
                expired = true;
                break;
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("watch failed: {e}"),
            Err(_) => break,
        }
    }
    assert!(expired, "the watch never expired ({} cached)", pods.len());
    pods.resync().await.unwrap();
    assert_eq!(pods.len(), PODS);
    // And it keeps following changes after the relist.
    let admin = server.client(ADMIN).await;
    admin.create(pod("default", "after", "")).await.unwrap();
    let change = tokio::time::timeout(Duration::from_secs(10), pods.next())
        .await
        .expect("an event after the relist")
        .unwrap();
    assert!(
        matches!(&change, Change::Upserted { new, .. } if new.metadata().name == "after"),
        "{change:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controllers_converge_through_expired_watches() {
    let options = ControllerOptions {
        counters: Default::default(),
        ..test_options()
    };
    let counters = options.counters.clone();
    let serve = ServeOptions {
        watch_buffer: 1,
        ..ServeOptions::default()
    };
    let cluster = Cluster::start_with(serve, options).await;
    let rs = cluster.create_rs("web", 200).await;
    cluster.wait_replicas(&rs, 200).await;
    cluster.scale("web", 10).await;
    cluster.wait_replicas(&rs, 10).await;
    eventually("status of 10", || async {
        (cluster.rs("web").await.status.replicas == 10).then_some(())
    })
    .await;
    // Whether a watch expired depends on timing; when one did, the
    // controllers relisted and still converged.
    eprintln!("relists: {}", counters.relists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controlplane_binary_runs_the_controllers() {
    let dir = noderun_testkit::TempDir::new("cp-controllers-bin").unwrap();
    let socket = dir.join("cp.sock");
    let (_guard, _) = start_binary(
        &dir.join("data"),
        &socket,
        &["--node-monitor-grace-period", "1s"],
    );
    let data = dir.join("data");
    let token = std::fs::read_to_string(data.join("admin.token")).unwrap();
    let admin = Client::connect(&Endpoint::Unix(socket), token.trim(), "t")
        .await
        .unwrap();
    let rs = as_rs(admin.create(replicaset("default", "web")).await.unwrap());
    eventually("the binary's controllers to make 2 pods", || async {
        let (items, _) = admin
            .list(Kind::Pod, Some("default"), &ListOptions::default())
            .await
            .ok()?;
        let owned = items
            .iter()
            .filter(|o| matches!(o, Object::Pod(p) if owned_by(p, &rs)))
            .count();
        (owned == 2).then_some(())
    })
    .await;
    // A node that never heartbeats is unreachable after the 1 s grace.
    admin.create(node("silent")).await.unwrap();
    eventually("node silent tainted", || async {
        let n = as_node(admin.get(Kind::Node, "", "silent").await.ok()?);
        n.spec
            .taints
            .iter()
            .any(|t| t.key == TAINT_UNREACHABLE)
            .then_some(())
    })
    .await;
}
