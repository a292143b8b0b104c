//! `ctl logs` and `ctl exec` on the client's side: open the stream, copy
//! what comes to stdout and stderr (acknowledging each write, which opens
//! the node's window), send stdin within its own window and terminal
//! resizes, and end with the command's exit code or the stream's error.

use crate::client::stream::{Pushed, SendWindow};
use crate::client::{Client, ClientError};
use noderun_core::proto::{window_cost, ApiError, StreamChunk, StreamTarget, STREAM_CHUNK};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The apiserver or the node ended the stream with this error.
    #[error("{0}")]
    Ended(ApiError),
    #[error("the connection to the apiserver ended before the stream did")]
    Lost,
    #[error("writing the stream's output: {0}")]
    Output(#[source] std::io::Error),
}

/// Where a stream's input comes from.
#[derive(Default)]
pub struct Input {
    /// Sent as stdin (`-i`); `None`: no stdin.
    pub stdin: Option<Box<dyn AsyncRead + Unpin + Send>>,
    /// Terminal sizes to send (`-t`), the first one at once.
    pub resizes: Option<mpsc::Receiver<(u16, u16)>>,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("stdin", &self.stdin.is_some())
            .field("resizes", &self.resizes.is_some())
            .finish()
    }
}

/// Run the stream of `target` to its end: its exit code (0 for a log).
pub async fn run<O, E>(
    client: &Client,
    target: StreamTarget,
    input: Input,
    mut stdout: O,
    mut stderr: E,
) -> Result<i32, StreamError>
where
    O: AsyncWrite + Unpin,
    E: AsyncWrite + Unpin,
{
    let mut handle = client.open_stream(target).await?;
    let id = handle.id();
    let window = Arc::new(SendWindow::default());
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(stdin) = input.stdin {
        tasks.spawn(send_stdin(stdin, handle.sender(), id, Arc::clone(&window)));
    }
    if let Some(mut resizes) = input.resizes {
        let sender = handle.sender();
        tasks.spawn(async move {
            while let Some((rows, cols)) = resizes.recv().await {
                if sender
                    .send(id, StreamChunk::Resize { rows, cols })
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }
    loop {
        let Some(pushed) = handle.recv().await else {
            return Err(StreamError::Lost);
        };
        let Pushed::Frame(frame) = pushed else {
            continue;
        };
        match frame.chunk {
            StreamChunk::Stdout(bytes) => {
                write(&mut stdout, &bytes).await?;
                handle
                    .send(id, StreamChunk::Ack(window_cost(bytes.len())))
                    .await?;
            }
            StreamChunk::Stderr(bytes) => {
                write(&mut stderr, &bytes).await?;
                handle
                    .send(id, StreamChunk::Ack(window_cost(bytes.len())))
                    .await?;
            }
            StreamChunk::Ack(n) => window.acked(n),
            StreamChunk::Exit(code) => return Ok(code),
            StreamChunk::Error(e) => return Err(StreamError::Ended(e)),
            _ => {}
        }
    }
}

async fn write(out: &mut (impl AsyncWrite + Unpin), bytes: &[u8]) -> Result<(), StreamError> {
    out.write_all(bytes).await.map_err(StreamError::Output)?;
    out.flush().await.map_err(StreamError::Output)
}

/// Copy stdin to the stream within the input window, then say it ended.
async fn send_stdin(
    mut stdin: Box<dyn AsyncRead + Unpin + Send>,
    sender: crate::client::stream::StreamSender,
    id: u32,
    window: Arc<SendWindow>,
) {
    let mut buf = vec![0u8; STREAM_CHUNK];
    loop {
        let n = match stdin.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        window.reserve(window_cost(n) as usize).await;
        if sender
            .send(id, StreamChunk::Stdin(buf[..n].to_vec()))
            .await
            .is_err()
        {
            return;
        }
    }
    let _ = sender.send(id, StreamChunk::StdinClosed).await;
}
