//! Watches on etcd: one etcd watch per [`Watcher`], over the filter's key
//! prefix from the revision after the requested one, with previous values.
//! A task forwards each etcd event as a [`Change`] (the embedded store's
//! form), and the [`Watcher`] applies the filter's labels and node name.
//! The task ends, and with it the watcher, when the watcher is dropped or
//! when etcd ends, breaks or cancels the watch (see the module docs of
//! [`super`]).

use super::{revision, EtcdStore};
use crate::store::{Change, Store, StoreError, WatchFilter, Watcher};
use etcd_client::{Event, EventType, WatchOptions, WatchStream};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Open `filter`'s watch from `from_revision` (0: from now).
pub(super) async fn open(
    store: &EtcdStore,
    filter: WatchFilter,
    from_revision: u64,
) -> Result<Watcher, StoreError> {
    let prefix = store.range_prefix(filter.kind, filter.namespace.as_deref());
    // A read at the start revision: refused, as a list would be, when it
    // is compacted or in the future; answers the current revision for 0.
    let from = match from_revision {
        0 => store.current_revision().await?,
        from => {
            store.read_at(&prefix, from).await?;
            from
        }
    };
    let options = WatchOptions::new()
        .with_prefix()
        .with_prev_key()
        .with_start_revision(super::etcd_revision(from + 1));
    let mut stream = store
        .client
        .watch_client()
        .watch(prefix.as_str(), Some(options))
        .await
        .map_err(|e| store.failed("watch", &prefix, e))?;
    // etcd first confirms the watch; one compacted since the read above is
    // canceled right away.
    let created = stream
        .message()
        .await
        .map_err(|e| store.failed("watch", &prefix, e))?;
    match created {
        Some(resp) if resp.created() && !resp.canceled() => {}
        Some(resp) if resp.compact_revision() > 0 => {
            return Err(StoreError::Compacted {
                requested: from,
                compacted: revision(resp.compact_revision()),
            })
        }
        other => {
            let why = other.map_or("etcd closed the watch stream".to_owned(), |r| {
                format!("etcd did not start the watch: {:?}", r.cancel_reason())
            });
            return Err(super::backend(
                "watch",
                store.location(&prefix),
                std::io::Error::other(why),
            ));
        }
    }
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(forward(store.clone(), prefix, stream, tx));
    Ok(Watcher::new(filter, from, Vec::new(), rx))
}

/// Hand etcd's events to the watcher until either side goes away.
async fn forward(
    store: EtcdStore,
    prefix: String,
    mut stream: WatchStream,
    tx: mpsc::UnboundedSender<Arc<Change>>,
) {
    loop {
        let message = tokio::select! {
            _ = tx.closed() => return,
            message = stream.message() => message,
        };
        let resp = match message {
            Ok(Some(resp)) => resp,
            Ok(None) => {
                tracing::warn!(key = %prefix, "etcd closed the watch stream; the watcher must relist");
                return;
            }
            Err(e) => {
                tracing::warn!(key = %prefix, error = %e, "etcd watch failed; the watcher must relist");
                return;
            }
        };
        if resp.canceled() {
            tracing::info!(key = %prefix, compacted = resp.compact_revision(),
                reason = resp.cancel_reason(), "etcd canceled the watch; the watcher must relist");
            return;
        }
        for event in resp.events() {
            match change_of(&store, event) {
                Ok(change) => {
                    if tx.send(Arc::new(change)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::error!(key = %prefix, error = %e, "etcd watch event unusable; the watcher must relist");
                    return;
                }
            }
        }
    }
}

/// The store's [`Change`] for one etcd event: the object after it (none
/// for a delete) and before it (its resourceVersion the event's revision,
/// as Deleted events carry it).
fn change_of(store: &EtcdStore, event: &Event) -> Result<Change, StoreError> {
    let Some(kv) = event.kv() else {
        return Err(StoreError::Backend {
            op: "watch",
            path: store.location(""),
            source: Arc::new(std::io::Error::other("etcd sent an event without a key")),
        });
    };
    let at = revision(kv.mod_revision());
    let before = match event.prev_kv() {
        Some(prev) => {
            let mut object = store.decode(prev)?;
            object.metadata_mut().resource_version = at;
            Some(Arc::new(object))
        }
        None => None,
    };
    let (after, created) = match event.event_type() {
        EventType::Put => (Some(Arc::new(store.decode(kv)?)), kv.version() == 1),
        EventType::Delete => (None, false),
    };
    if before.is_none() && !created {
        // etcd leaves the previous value out once it is compacted; without
        // it a delete or a selector move cannot be told to the watcher.
        return Err(StoreError::Compacted {
            requested: at.saturating_sub(1),
            compacted: at,
        });
    }
    Ok(Change {
        revision: at,
        after,
        before,
    })
}
