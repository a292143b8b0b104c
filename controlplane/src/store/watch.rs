//! [`Watcher`]: one watch's stream of events — first the replay of the
//! history after the requested revision, then the live changes the backend
//! publishes. The backend registers the watcher and reads the replay under
//! the same lock its commits publish under, so the two meet without a gap
//! and without an overlap.

use super::{Change, WatchEvent, WatchFilter};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// The live changes of a backend, fanned out to every registered watcher.
#[derive(Debug, Default)]
pub struct WatchHub {
    senders: Mutex<Vec<mpsc::UnboundedSender<Arc<Change>>>>,
}

impl WatchHub {
    /// Register a watcher: it receives every change published from now on.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<Arc<Change>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().push(tx);
        rx
    }

    /// Hand one committed change to every watcher; dropped watchers are
    /// forgotten here.
    pub fn publish(&self, change: Arc<Change>) {
        self.lock()
            .retain(|tx| tx.send(Arc::clone(&change)).is_ok());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<mpsc::UnboundedSender<Arc<Change>>>> {
        // A poisoned hub still holds a valid list of senders.
        self.senders.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A stream of [`WatchEvent`]s in revision order for one [`WatchFilter`].
#[derive(Debug)]
pub struct Watcher {
    filter: WatchFilter,
    /// The revision the events follow (what `from_revision` 0 resolved to).
    from_revision: u64,
    replay: VecDeque<WatchEvent>,
    live: mpsc::UnboundedReceiver<Arc<Change>>,
}

impl Watcher {
    /// A watcher that first yields `replay` (already filtered, the
    /// changes after `from_revision`), then the changes arriving on `live`
    /// that `filter` lets through.
    pub fn new(
        filter: WatchFilter,
        from_revision: u64,
        replay: Vec<WatchEvent>,
        live: mpsc::UnboundedReceiver<Arc<Change>>,
    ) -> Watcher {
        Watcher {
            filter,
            from_revision,
            replay: replay.into(),
            live,
        }
    }

    /// The next event; `None` once the store is shut down.
    pub async fn next(&mut self) -> Option<WatchEvent> {
        if let Some(event) = self.replay.pop_front() {
            return Some(event);
        }
        loop {
            let change = self.live.recv().await?;
            if let Some(event) = change.event_for(&self.filter) {
                return Some(event);
            }
        }
    }

    /// The revision this watch continues from: its events have later ones.
    pub fn from_revision(&self) -> u64 {
        self.from_revision
    }

    /// Replayed events not yet taken: they are already in memory, so a
    /// consumer may take them at its own pace, unlike live changes, which
    /// queue up unbounded in the hub while it waits.
    pub fn replay_pending(&self) -> usize {
        self.replay.len()
    }

    /// The filter this watcher was opened with.
    pub fn filter(&self) -> &WatchFilter {
        &self.filter
    }
}
