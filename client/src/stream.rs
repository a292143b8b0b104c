//! Streams on a connection (`ctl logs`, `ctl exec`, and a node serving
//! them): the request that opens one, then frames pushed on its request
//! id, received through a [`StreamHandle`], and frames sent on it with
//! [`StreamHandle::send`].

use super::connection::Connection;
use super::{unexpected, ClientError};
use noderun_core::proto::{Request, Response, StreamChunk, StreamFrame, StreamOpen, Window};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, Notify};

/// Pushed messages a stream buffers before the connection's reader waits
/// for its consumer (the stream window keeps far below it).
pub const STREAM_QUEUE: usize = 1024;

/// What the server pushes on a stream's request id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// A stream for this node to serve.
    Open(StreamOpen),
    Frame(StreamFrame),
}

/// An open stream (or a node's stream service). Dropping it stops the
/// routing of its frames; the server learns of the end when the client
/// sends `Close` or the connection ends.
#[derive(Debug)]
pub struct StreamHandle {
    conn: Arc<Connection>,
    id: u32,
    incoming: mpsc::Receiver<Pushed>,
}

pub(crate) async fn open(
    conn: &Arc<Connection>,
    request: Request,
    what: &'static str,
) -> Result<StreamHandle, ClientError> {
    let (id, response, incoming) = conn.open_pushed(request).await?;
    match response {
        Response::StreamOpened | Response::ServingStreams => Ok(StreamHandle {
            conn: Arc::clone(conn),
            id,
            incoming,
        }),
        other => Err(unexpected(what, other)),
    }
}

impl StreamHandle {
    /// The request id the stream runs on.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The next pushed message; `None` once the connection has ended.
    pub async fn recv(&mut self) -> Option<Pushed> {
        self.incoming.recv().await
    }

    /// Send a chunk of stream `stream` (a client's own stream: its id; a
    /// node: the number in the [`StreamOpen`]).
    pub async fn send(&self, stream: u32, chunk: StreamChunk) -> Result<(), ClientError> {
        self.conn
            .send_stream(self.id, StreamFrame { stream, chunk })
            .await
    }

    /// A sender for the stream's frames that tasks can share.
    pub fn sender(&self) -> StreamSender {
        StreamSender {
            conn: Arc::clone(&self.conn),
            id: self.id,
        }
    }
}

impl Drop for StreamHandle {
    fn drop(&mut self) {
        self.conn.forget_pushed(self.id);
    }
}

/// Sends frames on a stream's request id; clones share the connection.
#[derive(Debug, Clone)]
pub struct StreamSender {
    conn: Arc<Connection>,
    id: u32,
}

impl StreamSender {
    pub async fn send(&self, stream: u32, chunk: StreamChunk) -> Result<(), ClientError> {
        self.conn
            .send_stream(self.id, StreamFrame { stream, chunk })
            .await
    }
}

/// A sender's window shared by the tasks that send on one stream and the
/// one that reads the peer's acks: [`SendWindow::reserve`] waits until
/// the peer has acknowledged enough.
#[derive(Debug, Default)]
pub struct SendWindow {
    window: Mutex<Window>,
    opened: Notify,
}

impl SendWindow {
    /// Wait until `n` bytes may be sent, and count them sent.
    pub async fn reserve(&self, n: usize) {
        loop {
            let opened = self.opened.notified();
            {
                let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
                if w.room() >= n {
                    w.sent(n as u32);
                    return;
                }
            }
            opened.await;
        }
    }

    /// The peer consumed `n` bytes.
    pub fn acked(&self, n: u32) {
        self.window
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .acked(n);
        self.opened.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use noderun_core::proto::STREAM_WINDOW;
    use std::time::Duration;

    #[tokio::test]
    async fn reserve_waits_for_acks() {
        let w = Arc::new(SendWindow::default());
        w.reserve(STREAM_WINDOW as usize).await;
        let waiting = {
            let w = Arc::clone(&w);
            tokio::spawn(async move { w.reserve(10).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "the window is full");
        w.acked(10);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("an ack lets it go")
            .unwrap();
    }
}
