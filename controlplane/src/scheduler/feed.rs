//! A feed: the objects of one kind, listed and then watched over a
//! connection of its own, sent in order to the scheduler's loop. When the
//! apiserver ends the watch with `Expired` (it fell behind, or its revision
//! was compacted) the feed lists again and sends the whole list, which
//! replaces what the loop knew: level-triggered, nothing is lost.
//!
//! The feed keeps no copy of the objects: each is decoded once, on the
//! connection, and moved to the loop.

use super::Counters;
use crate::client::{Client, ClientError, ListOptions, WatchStream};
use noderun_core::proto::EventType;
use noderun_core::{Kind, Object};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What a feed sends.
#[derive(Debug)]
pub enum FeedEvent {
    /// Every object there is (the first message, and after a relist).
    Listed(Kind, Vec<Object>),
    Upserted(Object),
    Deleted(Object),
    /// The feed stopped: its connection failed.
    Failed(Kind, ClientError),
}

/// The task of one feed; dropping it stops the task.
#[derive(Debug)]
pub struct Feed {
    task: JoinHandle<()>,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Feed {
    /// Start feeding `kind` (all namespaces) from `client`, a connection
    /// of its own, into `out`; relists are counted in `counters`.
    pub fn start(
        client: Client,
        kind: Kind,
        out: mpsc::Sender<FeedEvent>,
        counters: Arc<Counters>,
    ) -> Feed {
        let task = tokio::spawn(async move {
            if let Err(e) = feed(&client, kind, &out, &counters).await {
                let _ = out.send(FeedEvent::Failed(kind, e)).await;
            }
        });
        Feed { task }
    }
}

/// List, then watch; again after each expiry. Returns Ok when the loop
/// stopped listening.
async fn feed(
    client: &Client,
    kind: Kind,
    out: &mpsc::Sender<FeedEvent>,
    counters: &Counters,
) -> Result<(), ClientError> {
    let mut first = true;
    loop {
        if !first {
            counters.count_relist();
        }
        first = false;
        let mut stream = list_and_watch(client, kind, out).await?;
        loop {
            let Some(event) = stream.next().await else {
                return Err(ClientError::Closed);
            };
            let sent = match (event.event_type, event.object) {
                (EventType::Expired, _) => {
                    tracing::info!(kind = %kind, revision = event.revision,
                        "scheduler watch expired; relisting");
                    break;
                }
                (EventType::Deleted, Some(o)) => out.send(FeedEvent::Deleted(o)).await,
                (EventType::Added | EventType::Modified, Some(o)) => {
                    out.send(FeedEvent::Upserted(o)).await
                }
                _ => Ok(()),
            };
            if sent.is_err() {
                return Ok(());
            }
        }
    }
}

async fn list_and_watch(
    client: &Client,
    kind: Kind,
    out: &mpsc::Sender<FeedEvent>,
) -> Result<WatchStream, ClientError> {
    let options = ListOptions::default();
    let (items, revision) = client.list(kind, None, &options).await?;
    tracing::debug!(kind = %kind, revision, objects = items.len(), "scheduler listed");
    // Watch before handing the list over, so no event after `revision` is
    // missed while the loop digests it.
    let stream = client.watch(kind, None, &options, revision).await?;
    out.send(FeedEvent::Listed(kind, items))
        .await
        .map_err(|_| ClientError::Closed)?;
    Ok(stream)
}
