//! The write half of a protocol connection, shared by the apiserver and
//! the client: one task owns the socket's write side and writes the
//! frames others queue, several at a time.

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// How many bytes the writer gathers into one write.
const WRITE_BATCH: usize = 64 * 1024;

/// Write the frames arriving on `rx` to `wr` until every sender is gone
/// (then shut the write side down) or the peer stops taking them.
pub async fn write_frames<W: AsyncWrite + Unpin>(mut wr: W, mut rx: mpsc::Receiver<Vec<u8>>) {
    let mut buf = Vec::with_capacity(WRITE_BATCH);
    while let Some(frame) = rx.recv().await {
        buf.extend_from_slice(&frame);
        while buf.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok(frame) => buf.extend_from_slice(&frame),
                Err(_) => break,
            }
        }
        if wr.write_all(&buf).await.is_err() || wr.flush().await.is_err() {
            return;
        }
        buf.clear();
    }
    let _ = wr.shutdown().await;
}
