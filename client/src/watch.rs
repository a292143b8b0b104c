//! [`WatchStream`]: the events of one watch. Dropping it cancels the watch
//! on the server.

use super::connection::Connection;
use noderun_core::proto::WatchEvent;
use std::sync::Arc;
use tokio::sync::mpsc;

/// One watch's events, in revision order. After an `Expired` event the
/// stream ends: list again and watch from the list's revision.
#[derive(Debug)]
pub struct WatchStream {
    conn: Arc<Connection>,
    id: u32,
    revision: u64,
    events: mpsc::Receiver<WatchEvent>,
}

impl WatchStream {
    pub(super) fn new(
        conn: Arc<Connection>,
        id: u32,
        revision: u64,
        events: mpsc::Receiver<WatchEvent>,
    ) -> WatchStream {
        WatchStream {
            conn,
            id,
            revision,
            events,
        }
    }

    /// The revision the watch started after.
    pub fn start_revision(&self) -> u64 {
        self.revision
    }

    /// The next event; `None` when the connection closed.
    pub async fn next(&mut self) -> Option<WatchEvent> {
        self.events.recv().await
    }
}

impl Drop for WatchStream {
    fn drop(&mut self) {
        self.conn.cancel_watch_nowait(self.id);
    }
}
