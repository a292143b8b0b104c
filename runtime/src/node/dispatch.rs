//! The pods bound to this node: listed, then watched from the list's
//! revision over a connection of its own (a watch must not share one with
//! writes), listed again whenever the watch expires or the connection
//! breaks. Each pod gets a [`worker`](super::worker) fed through a watch
//! channel that holds only its newest version, so a slow pod never holds
//! up the others or the watch. The first list also drives the start-up
//! [`reconcile`](super::reconcile) of the host.

use super::worker::{self, PodEvent};
use super::{reconcile, NodeContext, NodeError};
use noderun_client::{ListOptions, WatchStream};
use noderun_core::proto::EventType;
use noderun_core::{Kind, Object, Pod};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

const RELIST_WAIT: Duration = Duration::from_millis(200);

#[derive(Debug)]
struct Workers {
    ctx: Arc<NodeContext>,
    by_uid: HashMap<String, (watch::Sender<PodEvent>, JoinHandle<()>)>,
}

impl Workers {
    /// Hand the newest version of a pod to its worker, starting one.
    fn present(&mut self, pod: Pod) {
        self.reap();
        let uid = pod.metadata.uid.clone();
        let event = PodEvent::Present(Box::new(pod));
        match self.by_uid.get(&uid) {
            Some((tx, _)) => {
                let _ = tx.send(event);
            }
            None => {
                let (tx, rx) = watch::channel(event);
                let task = tokio::spawn(worker::run(Arc::clone(&self.ctx), rx));
                self.by_uid.insert(uid, (tx, task));
            }
        }
    }

    fn gone(&mut self, uid: &str) {
        if let Some((tx, _)) = self.by_uid.get(uid) {
            let _ = tx.send(PodEvent::Gone);
        }
    }

    /// Forget workers that finished (their pod was finalized or removed).
    fn reap(&mut self) {
        self.by_uid.retain(|_, (_, task)| !task.is_finished());
    }
}

fn pods_of(objects: Vec<Object>) -> Vec<Pod> {
    objects
        .into_iter()
        .filter_map(|o| match o {
            Object::Pod(p) => Some(p),
            _ => None,
        })
        .collect()
}

/// Watch the pods bound here until `stop`; reconciles the host with the
/// first list. Returns early only when the first list fails.
pub async fn run(ctx: Arc<NodeContext>, mut stop: watch::Receiver<bool>) -> Result<(), NodeError> {
    let api = ctx.api.another("noderun/pods").await?;
    let node = ctx.config.node_name.clone();
    let options = ListOptions {
        node_name: Some(node.clone()),
        ..ListOptions::default()
    };
    let mut workers = Workers {
        ctx: Arc::clone(&ctx),
        by_uid: HashMap::new(),
    };
    let mut first = true;
    loop {
        let client = api.client().await;
        let listed = client.list(Kind::Pod, None, &options).await;
        let (items, revision) = match listed {
            Ok(l) => l,
            Err(e) if first => {
                return Err(NodeError::api(format!("listing the pods bound to {node}"))(
                    e,
                ))
            }
            Err(e) => {
                tracing::warn!(error = %e, "listing pods failed; retrying");
                api.recover(&e).await;
                tokio::time::sleep(RELIST_WAIT).await;
                continue;
            }
        };
        let pods = pods_of(items);
        let bound: BTreeSet<String> = pods.iter().map(|p| p.metadata.uid.clone()).collect();
        if first {
            first = false;
            reconcile::on_start(&ctx, &bound).await;
        }
        workers.reap();
        let known: Vec<String> = workers.by_uid.keys().cloned().collect();
        for uid in known.iter().filter(|u| !bound.contains(*u)) {
            workers.gone(uid);
        }
        for pod in pods {
            workers.present(pod);
        }
        let stream = match client.watch(Kind::Pod, None, &options, revision).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "watching pods failed; listing again");
                api.recover(&e).await;
                tokio::time::sleep(RELIST_WAIT).await;
                continue;
            }
        };
        tokio::select! {
            _ = follow(stream, &mut workers) => {}
            _ = stop.wait_for(|s| *s) => return Ok(()),
        }
        tracing::info!("pod watch ended; listing again");
        api.reconnect().await;
    }
}

/// Feed watch events to the workers until the watch ends.
async fn follow(mut stream: WatchStream, workers: &mut Workers) {
    while let Some(event) = stream.next().await {
        match (event.event_type, event.object) {
            (EventType::Added | EventType::Modified, Some(Object::Pod(pod))) => {
                workers.present(pod)
            }
            (EventType::Deleted, Some(Object::Pod(pod))) => workers.gone(&pod.metadata.uid),
            (EventType::Expired, _) => return,
            _ => {}
        }
    }
}
