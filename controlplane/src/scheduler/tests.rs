//! The service's loop body driven step by step (feed events given by hand,
//! outcomes taken from the binder one at a time) against a real apiserver
//! in-process: what a bind conflict, a pod deleted before its bind, and a
//! relist do to the cache and the queue. The whole service, with its
//! feeds, is tested in `tests/scheduler.rs`.

use super::binder::{Binder, Outcome};
use super::feed::FeedEvent;
use super::service::Service;
use super::{Backoff, SchedulerOptions};
use crate::apiserver::{self, bootstrap, Apiserver, Authenticator, Listen, RunningServer};
use crate::client::{Client, DeleteOptions, Endpoint};
use crate::store::{EmbeddedOptions, EmbeddedStore};
use noderun_core::sched::sample;
use noderun_core::{Kind, Object, Pod};
use noderun_testkit::TempDir;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

const ADMIN: &str = "admin-token-0123456789abcdef";
const SCHEDULER: &str = "scheduler-token-0123456789abcdef";
const GI: i64 = 1 << 30;

struct Harness {
    service: Service,
    outcomes: mpsc::UnboundedReceiver<Outcome>,
    admin: Client,
    _running: RunningServer,
    // Last: removed once the server is stopped.
    _dir: TempDir,
}

impl Harness {
    async fn start() -> Harness {
        let dir = TempDir::new("cp-scheduler").expect("temp dir");
        let options = EmbeddedOptions {
            data_dir: dir.join("data"),
        };
        let store = EmbeddedStore::open(&options).expect("store");
        bootstrap::ensure_namespaces(&store)
            .await
            .expect("namespaces");
        let tokens = format!("{ADMIN},admin\n{SCHEDULER},system:scheduler\n");
        let authn = Authenticator::parse(&tokens, &dir.join("tokens.csv")).expect("tokens");
        let server = Arc::new(Apiserver::new(store, authn, Default::default()));
        let socket = dir.join("cp.sock");
        let listen = Listen {
            socket: Some(socket.clone()),
            ..Listen::default()
        };
        let running = apiserver::start(server, listen).await.expect("apiserver");
        let endpoint = Endpoint::Unix(socket);
        let admin = Client::connect(&endpoint, ADMIN, "test").await.unwrap();
        let writer = Client::connect(&endpoint, SCHEDULER, "test").await.unwrap();
        let (tx, outcomes) = mpsc::unbounded_channel();
        let options = SchedulerOptions {
            seed: Some(1),
            backoff: Backoff {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(10),
                retry_period: Duration::from_secs(60),
            },
            ..SchedulerOptions::default()
        };
        let mut service = Service::new(&options, Binder::new(vec![writer], tx));
        let n1 = sample::node("n1", 4000, 8 * GI, "");
        service
            .apply(FeedEvent::Listed(Kind::Node, vec![Object::Node(n1)]))
            .unwrap();
        Harness {
            service,
            outcomes,
            admin,
            _running: running,
            _dir: dir,
        }
    }

    async fn create(&self, name: &str) -> Pod {
        let pod = Object::Pod(sample::pod("default", name, 500, GI));
        as_pod(self.admin.create(pod).await.unwrap())
    }

    fn list_pods(&mut self, pods: &[&Pod]) {
        let items = pods.iter().map(|p| Object::Pod((*p).clone())).collect();
        self.service
            .apply(FeedEvent::Listed(Kind::Pod, items))
            .unwrap();
    }

    /// Wait for the next write to end and hand its outcome to the service.
    async fn settle(&mut self, now: Instant) {
        let outcome = self.outcomes.recv().await.expect("an outcome");
        self.service.outcome(outcome, now);
    }
}

fn as_pod(object: Object) -> Pod {
    match object {
        Object::Pod(p) => p,
        other => panic!("not a pod: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bind_conflict_forgets_the_placement_and_retries_after_backoff() {
    let mut h = Harness::start().await;
    let stale = h.create("p").await;
    // Changed since the scheduler saw it: its bind of the old version loses.
    let mut fresh = stale.clone();
    fresh.metadata.labels.insert("tier".into(), "web".into());
    let fresh = as_pod(h.admin.update(Object::Pod(fresh)).await.unwrap());
    h.list_pods(&[&stale]);
    let now = Instant::now();
    h.service.schedule_next(now);
    assert_eq!(h.service.binding.len(), 1);
    assert_eq!(h.service.cache.pod_count(), 1, "assumed at once");
    h.settle(now).await;
    assert_eq!(h.service.counters.bind_conflicts(), 1);
    assert_eq!(
        h.service.cache.pod_count(),
        0,
        "the assumed pod is forgotten"
    );
    assert!(h.service.binding.is_empty());
    assert!(h.service.pending.contains_key("default/p"));
    assert!(!h.service.queue.has_active(), "backing off");
    // The watch brings the new version; it still waits out its backoff.
    h.service
        .apply(FeedEvent::Upserted(Object::Pod(fresh)))
        .unwrap();
    assert!(!h.service.queue.has_active());
    h.service.queue.flush(now + Duration::from_secs(1));
    h.service.schedule_next(now);
    h.settle(now).await;
    assert_eq!(h.service.counters.scheduled(), 1);
    assert_eq!(h.service.bound["default/p"].node, "n1");
    assert_eq!(h.service.cache.pod_count(), 1);
    let stored = as_pod(h.admin.get(Kind::Pod, "default", "p").await.unwrap());
    assert_eq!(stored.spec.node_name, "n1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_deleted_before_its_bind_is_dropped() {
    let mut h = Harness::start().await;
    let gone = h.create("gone").await;
    let raced = h.create("raced").await;
    h.list_pods(&[&gone, &raced]);
    let force = DeleteOptions {
        force: true,
        ..DeleteOptions::default()
    };
    h.admin
        .delete(Kind::Pod, "default", "gone", &force)
        .await
        .unwrap();
    // The bind finds it gone.
    let now = Instant::now();
    h.service.schedule_next(now);
    h.settle(now).await;
    assert!(!h.service.pending.contains_key("default/gone"));
    assert_eq!(h.service.cache.pod_count(), 0);
    // The watch says it is gone while its bind is in flight.
    h.service.schedule_next(now);
    assert_eq!(h.service.cache.pod_count(), 1);
    h.service
        .apply(FeedEvent::Deleted(Object::Pod(raced)))
        .unwrap();
    assert_eq!(h.service.cache.pod_count(), 0);
    h.settle(now).await;
    assert!(h.service.pending.is_empty() && h.service.binding.is_empty());
    assert!(h.service.bound.is_empty());
    assert!(h.service.queue.is_empty());
    assert_eq!(h.service.cache.pod_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relist_drops_what_it_lacks() {
    let mut h = Harness::start().await;
    let n2 = sample::node("n2", 4000, 8 * GI, "");
    h.service
        .apply(FeedEvent::Upserted(Object::Node(n2)))
        .unwrap();
    let bound = sample::bound(sample::pod("default", "bound", 500, GI), "n2");
    let waiting = sample::pod("default", "waiting", 500, GI);
    let leaving = sample::pod("default", "leaving", 500, GI);
    h.list_pods(&[&bound, &waiting, &leaving]);
    assert_eq!(h.service.cache.node_count(), 2);
    assert_eq!(h.service.cache.pod_count(), 1);
    assert_eq!(h.service.pending.len(), 2);
    // Deleted while the watch was down: n2, its pod, and one pending pod.
    let n1 = sample::node("n1", 4000, 8 * GI, "");
    h.service
        .apply(FeedEvent::Listed(Kind::Node, vec![Object::Node(n1)]))
        .unwrap();
    h.list_pods(&[&waiting]);
    assert_eq!(h.service.cache.node_count(), 1);
    assert!(h.service.cache.node("n2").is_none());
    assert_eq!(h.service.cache.pod_count(), 0);
    assert!(h.service.bound.is_empty());
    assert_eq!(h.service.pending.len(), 1);
    assert_eq!(h.service.queue.len(), 1);
    assert!(h
        .service
        .queue
        .pop()
        .is_some_and(|k| k == "default/waiting"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_unbound_event_of_a_bound_pod_changes_nothing() {
    let mut h = Harness::start().await;
    let p = h.create("p").await;
    h.list_pods(&[&p]);
    let now = Instant::now();
    h.service.schedule_next(now);
    h.settle(now).await;
    assert_eq!(h.service.counters.scheduled(), 1);
    // The watch is behind the bind's answer: the pod as it was before.
    h.service
        .apply(FeedEvent::Upserted(Object::Pod(p)))
        .unwrap();
    assert!(h.service.pending.is_empty(), "not queued again");
    assert_eq!(h.service.cache.pod_count(), 1, "still on its node");
    assert!(h.service.bound.contains_key("default/p"));
}
