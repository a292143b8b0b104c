//! Watch streams. [`Apiserver::open_watch`] authorizes and opens a store
//! watch; [`pump`] then moves its events to the connection's writer. Each
//! watch has its own bounded queue: while the connection is slow to take
//! frames, live events wait there, and a watch whose queue is full when
//! the next live event arrives is told to relist (an Expired event) and
//! ended, so a slow client never makes the store buffer without bound and
//! never holds up anyone else. Replayed events (already in memory) are
//! taken at the connection's pace instead.

use super::authz::{authorize, Target, Verb};
use super::connection::encode;
use super::errors::from_store;
use super::handlers::Doing;
use super::{Apiserver, Identity};
use crate::store::{self, Store, WatchFilter, Watcher};
use noderun_core::proto::{ApiError, EventType, Response, ServerMessage, WatchEvent};
use noderun_core::{Kind, LabelSelector};
use std::collections::VecDeque;
use tokio::sync::mpsc;

/// What a client asked to watch.
#[derive(Debug, Clone)]
pub struct WatchRequest {
    pub kind: Kind,
    pub namespace: String,
    pub label_selector: LabelSelector,
    pub node_name: Option<String>,
    pub from_revision: u64,
}

impl<S: Store> Apiserver<S> {
    /// Authorize and open a watch.
    pub async fn open_watch(
        &self,
        identity: &Identity,
        request: WatchRequest,
    ) -> Result<Watcher, ApiError> {
        let doing = Doing {
            verb: Verb::Watch,
            target: Target {
                kind: request.kind,
                namespace: &request.namespace,
                name: "",
                node_name: request.node_name.as_deref(),
            },
            identity,
        };
        authorize(identity, doing.verb, &doing.target)?;
        let filter = WatchFilter {
            kind: request.kind,
            namespace: (!request.namespace.is_empty()).then(|| request.namespace.clone()),
            selector: request.label_selector.clone(),
            node_name: request.node_name.clone(),
        };
        self.store
            .watch(filter, request.from_revision)
            .await
            .map_err(|e| from_store(e, &doing))
    }
}

fn event_frame(id: u32, event: store::WatchEvent, max_frame: u32) -> Vec<u8> {
    let event_type = match event.event_type {
        store::EventType::Added => EventType::Added,
        store::EventType::Modified => EventType::Modified,
        store::EventType::Deleted => EventType::Deleted,
    };
    let message = ServerMessage::Event(WatchEvent {
        event_type,
        revision: event.revision,
        object: Some((*event.object).clone()),
    });
    encode(id, &message, max_frame)
}

fn expired_frame(id: u32, revision: u64, max_frame: u32) -> Vec<u8> {
    let message = ServerMessage::Event(WatchEvent {
        event_type: EventType::Expired,
        revision,
        object: None,
    });
    encode(id, &message, max_frame)
}

/// Stream `watcher`'s events on request id `id` into `out` (the
/// connection's writer queue) until the client goes away, the store shuts
/// down or the watch falls `capacity` events behind.
pub async fn pump(
    id: u32,
    mut watcher: Watcher,
    out: mpsc::Sender<Vec<u8>>,
    capacity: usize,
    max_frame: u32,
) {
    let started = ServerMessage::Response(Response::WatchStarted {
        revision: watcher.from_revision(),
    });
    if out.send(encode(id, &started, max_frame)).await.is_err() {
        return;
    }
    let mut queue: VecDeque<Vec<u8>> = VecDeque::new();
    let mut last_revision = watcher.from_revision();
    loop {
        let replaying = watcher.replay_pending() > 0;
        let may_take = queue.len() < capacity || !replaying;
        tokio::select! {
            biased;
            permit = out.reserve(), if !queue.is_empty() => match (permit, queue.pop_front()) {
                (Ok(permit), Some(frame)) => permit.send(frame),
                _ => return,
            },
            event = watcher.next(), if may_take => match event {
                Some(_) if queue.len() >= capacity => {
                    tracing::info!(watch = id, capacity, revision = last_revision,
                        "watcher fell too far behind; telling it to relist");
                    break;
                }
                Some(event) => {
                    last_revision = event.revision;
                    queue.push_back(event_frame(id, event, max_frame));
                }
                None => {
                    tracing::debug!(watch = id, "store closed the watch");
                    break;
                }
            },
        }
    }
    drop(watcher);
    queue.clear();
    // Best effort: the client may already be gone.
    let _ = out.send(expired_frame(id, last_revision, max_frame)).await;
}
