//! The node's end of `ctl logs` and `ctl exec`: one connection of its own
//! to the apiserver with a `ServeStreams` request open on it (made again
//! when it breaks); each pushed `StreamOpen` becomes a session task
//! ([`logs`], [`exec`]) fed the client's frames through a bounded queue,
//! and answering on the shared connection. Output keeps to the stream
//! window (`SendWindow`): it waits for the client's acks, so a slow
//! `ctl` slows its own stream and nothing else.

mod exec;
mod logs;

use super::NodeContext;
use noderun_client::stream::{Pushed, SendWindow, StreamSender};
use noderun_core::proto::{
    window_cost, ApiError, ErrorCode, StreamChunk, StreamKind, StreamOpen, MAX_FRAMES_IN_FLIGHT,
};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Client frames a session may have queued: its stdin frames in flight
/// (the input window bounds them), its acks of the output frames in flight
/// (the output window bounds those), and a few resizes.
const SESSION_QUEUE: usize = 2 * MAX_FRAMES_IN_FLIGHT + 16;
/// The longest wait between attempts to link up again.
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Serve streams until `stop` turns true.
pub async fn serve(ctx: Arc<NodeContext>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut delay = Duration::from_millis(200);
    loop {
        tokio::select! {
            ended = link(&ctx) => match ended {
                Ok(()) => {
                    tracing::info!("stream link to the apiserver ended; linking again");
                    delay = Duration::from_millis(200);
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?delay, "stream link to the apiserver failed");
                    delay = (delay * 2).min(MAX_RETRY);
                }
            },
            _ = stop.wait_for(|s| *s) => return,
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// One link: a connection, `ServeStreams`, sessions until it ends.
async fn link(ctx: &Arc<NodeContext>) -> Result<(), super::NodeError> {
    let api = ctx.api.another("noderun-streams").await?;
    let client = api.client().await;
    let mut handle = client
        .serve_streams()
        .await
        .map_err(super::NodeError::api("offering to serve streams"))?;
    tracing::info!("serving log and exec streams");
    let sender = handle.sender();
    let mut sessions: HashMap<u32, mpsc::Sender<StreamChunk>> = HashMap::new();
    while let Some(pushed) = handle.recv().await {
        sessions.retain(|_, tx| !tx.is_closed());
        match pushed {
            Pushed::Open(open) => {
                let (tx, rx) = mpsc::channel(SESSION_QUEUE);
                sessions.insert(open.stream, tx);
                tokio::spawn(session(Arc::clone(ctx), open, rx, sender.clone()));
            }
            Pushed::Frame(frame) => {
                let end = frame.chunk.is_end();
                if let Some(tx) = sessions.get(&frame.stream) {
                    if tx.try_send(frame.chunk).is_err() || end {
                        // A client past its input window, or done.
                        sessions.remove(&frame.stream);
                    }
                }
            }
        }
    }
    Ok(())
}

/// What a session says to its client.
#[derive(Debug, Clone)]
pub(super) struct Out {
    sender: StreamSender,
    stream: u32,
    window: Arc<SendWindow>,
}

impl Out {
    /// Send data, waiting for the window to have room.
    async fn data(&self, bytes: &[u8], stderr: bool) -> bool {
        for piece in bytes.chunks(noderun_core::proto::STREAM_CHUNK) {
            self.window.reserve(window_cost(piece.len()) as usize).await;
            let chunk = if stderr {
                StreamChunk::Stderr(piece.to_vec())
            } else {
                StreamChunk::Stdout(piece.to_vec())
            };
            if self.send(chunk).await.is_err() {
                return false;
            }
        }
        true
    }

    async fn send(&self, chunk: StreamChunk) -> Result<(), noderun_client::ClientError> {
        self.sender.send(self.stream, chunk).await
    }
}

/// A session's failure, as the client will read it.
pub(super) fn stream_error(code: ErrorCode, message: String) -> ApiError {
    ApiError::new(code, message)
}

async fn session(
    ctx: Arc<NodeContext>,
    open: StreamOpen,
    input: mpsc::Receiver<StreamChunk>,
    sender: StreamSender,
) {
    let out = Out {
        sender,
        stream: open.stream,
        window: Arc::new(SendWindow::default()),
    };
    let what = format!(
        "{} in container {} of pod {}/{}",
        open.kind.verb(),
        open.container,
        open.namespace,
        open.pod
    );
    tracing::info!(stream = open.stream, "{what}");
    let ended = match &open.kind {
        StreamKind::Logs {
            follow,
            tail_lines,
            previous,
        } => {
            let want = logs::Wanted {
                follow: *follow,
                tail_lines: *tail_lines,
                previous: *previous,
            };
            logs::serve(&ctx, &open, want, input, &out).await
        }
        StreamKind::Exec {
            command,
            stdin,
            tty,
        } => exec::serve(&ctx, &open, command.clone(), *stdin, *tty, input, &out).await,
    };
    let last = match ended {
        Ok(Some(code)) => StreamChunk::Exit(code),
        // The client closed it: nothing to say.
        Ok(None) => return,
        Err(e) => {
            tracing::info!(error = %e, "{what} failed");
            StreamChunk::Error(e)
        }
    };
    let _ = out.send(last).await;
}
