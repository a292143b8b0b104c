//! `ctl exec`: the command started through the runner with pipes (or a
//! pty) for stdio; output pumped to the client within the stream window,
//! stdin written as it comes (and acknowledged once written), resizes
//! applied, and the exit code sent once the output has drained. A client
//! that closes the stream gets the process killed.

use super::{stream_error, Out};
use crate::agent::runner::ExecIo;
use crate::agent::AgentError;
use crate::node::NodeContext;
use nix::sys::signal::Signal;
use noderun_core::proto::{
    window_cost, ApiError, ErrorCode, StreamChunk, StreamOpen, STREAM_CHUNK,
};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// How long output may still drain after the process ended (a child it
/// left behind may hold the pipes).
const DRAIN: Duration = Duration::from_secs(2);

fn internal(what: &str, e: impl std::fmt::Display) -> ApiError {
    stream_error(ErrorCode::Internal, format!("{what}: {e}"))
}

/// The process's stdio as the session holds it.
struct Stdio {
    io: ExecIo,
    stdin: Option<OwnedFd>,
    outputs: Vec<(OwnedFd, bool)>,
}

/// A pipe, both ends close-on-exec: (read, write).
fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)
}

fn pipes(stdin: bool) -> std::io::Result<Stdio> {
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (child_in, ours): (OwnedFd, Option<OwnedFd>) = if stdin {
        let (r, w) = pipe()?;
        (r, Some(w))
    } else {
        (std::fs::File::open("/dev/null")?.into(), None)
    };
    Ok(Stdio {
        io: ExecIo::Stdio {
            stdin: child_in,
            stdout: out_w,
            stderr: err_w,
        },
        stdin: ours,
        outputs: vec![(out_r, false), (err_r, true)],
    })
}

pub(super) async fn serve(
    ctx: &Arc<NodeContext>,
    open: &StreamOpen,
    command: Vec<String>,
    stdin: bool,
    tty: bool,
    mut input: mpsc::Receiver<StreamChunk>,
    out: &Out,
) -> Result<Option<i32>, ApiError> {
    let name = format!(
        "container {} of pod {}/{}",
        open.container, open.namespace, open.pod
    );
    let mut stdio = if tty {
        Stdio {
            io: ExecIo::Tty,
            stdin: None,
            outputs: Vec::new(),
        }
    } else {
        pipes(stdin).map_err(|e| internal("pipes for the command's stdio", e))?
    };
    let io = std::mem::replace(&mut stdio.io, ExecIo::Tty);
    let process = ctx
        .host
        .exec_streaming(&open.uid, &open.container, command, io)
        .await
        .map_err(|e| exec_error(&name, e))?;
    let control = process.control().map_err(|e| internal("exec control", e))?;
    let mut pumps = JoinSet::new();
    let mut stdin_writer: Option<Writer> = None;
    if let Some(pty) = process.pty() {
        let read = pty
            .try_clone_to_owned()
            .map_err(|e| internal("dup pty", e))?;
        let write = pty
            .try_clone_to_owned()
            .map_err(|e| internal("dup pty", e))?;
        let read = pty_fd(read).map_err(|e| internal("pty", e))?;
        pumps.spawn(pump_pty(read, out.clone()));
        if stdin {
            stdin_writer = Some(Writer::Pty(pty_fd(write).map_err(|e| internal("pty", e))?));
        }
    }
    for (fd, stderr) in stdio.outputs {
        let reader = pipe::Receiver::from_owned_fd(fd).map_err(|e| internal("output pipe", e))?;
        pumps.spawn(pump_pipe(reader, out.clone(), stderr));
    }
    if let Some(fd) = stdio.stdin {
        let sender = pipe::Sender::from_owned_fd(fd).map_err(|e| internal("stdin pipe", e))?;
        stdin_writer = Some(Writer::Pipe(sender));
    }
    let stdin_tx = stdin_writer.map(|w| spawn_stdin(w, out.clone()));
    let mut stdin_tx = stdin_tx;
    let mut exited = tokio::spawn(process.wait());
    let exit = loop {
        tokio::select! {
            chunk = input.recv() => match chunk {
                Some(StreamChunk::Stdin(data)) => {
                    if let Some(tx) = &stdin_tx {
                        // Over the window: a client breaking the protocol.
                        if tx.try_send(data).is_err() {
                            stdin_tx = None;
                        }
                    }
                }
                Some(StreamChunk::StdinClosed) => stdin_tx = None,
                Some(StreamChunk::Resize { rows, cols }) => {
                    if let Err(e) = control.resize(rows, cols) {
                        tracing::debug!(error = %e, "resize");
                    }
                }
                Some(StreamChunk::Ack(n)) => out.window.acked(n),
                Some(StreamChunk::Close) | None => {
                    let _ = control.signal(Signal::SIGKILL);
                    return Ok(None);
                }
                Some(_) => {}
            },
            exit = &mut exited => break exit,
        }
    };
    drop(stdin_tx);
    // Keep taking acks while the output drains.
    let window = Arc::clone(&out.window);
    let acks = tokio::spawn(async move {
        while let Some(chunk) = input.recv().await {
            if let StreamChunk::Ack(n) = chunk {
                window.acked(n);
            }
        }
    });
    let drained =
        tokio::time::timeout(DRAIN, async { while pumps.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        pumps.abort_all();
    }
    acks.abort();
    match exit {
        Ok(Ok(Some(exit))) => Ok(Some(exit.shell_code())),
        Ok(Ok(None)) => Err(internal(
            &format!("exec in {name}"),
            "the exit is unknown: the node's container runner ended",
        )),
        Ok(Err(e)) => Err(internal(&format!("exec in {name}"), e)),
        Err(e) => Err(internal(&format!("exec in {name}"), e)),
    }
}

fn exec_error(name: &str, e: AgentError) -> ApiError {
    use crate::agent::runner::{FailureKind, RunnerError};
    let code = match &e {
        AgentError::Runner { source, .. } => match source.as_ref() {
            RunnerError::Failed {
                kind: FailureKind::NotFound,
                ..
            } => ErrorCode::NotFound,
            RunnerError::Failed {
                kind: FailureKind::WrongState,
                ..
            } => ErrorCode::BadRequest,
            _ => ErrorCode::Internal,
        },
        _ => ErrorCode::Internal,
    };
    let hint = match code {
        ErrorCode::NotFound => "; it has not been created on the node (is the pod Running?)",
        ErrorCode::BadRequest => "; exec needs a running container",
        _ => "",
    };
    stream_error(code, format!("exec in {name}: {e}{hint}"))
}

/// Where stdin goes.
enum Writer {
    Pipe(pipe::Sender),
    Pty(AsyncFd<OwnedFd>),
}

/// A task writing stdin as it comes, acknowledging what it wrote.
fn spawn_stdin(mut writer: Writer, out: Out) -> mpsc::Sender<Vec<u8>> {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(noderun_core::proto::MAX_FRAMES_IN_FLIGHT + 8);
    tokio::spawn(async move {
        while let Some(data) = rx.recv().await {
            let written = match &mut writer {
                Writer::Pipe(p) => p.write_all(&data).await.is_ok(),
                Writer::Pty(fd) => write_pty(fd, &data).await.is_ok(),
            };
            if !written
                || out
                    .send(StreamChunk::Ack(window_cost(data.len())))
                    .await
                    .is_err()
            {
                return;
            }
        }
        // The channel closed: stdin ends (a pty gets end-of-file, ^D).
        if let Writer::Pty(fd) = &writer {
            let _ = write_pty(fd, &[4]).await;
        }
    });
    tx
}

async fn pump_pipe(mut reader: pipe::Receiver, out: Out, stderr: bool) {
    let mut buf = vec![0u8; STREAM_CHUNK];
    while let Ok(n @ 1..) = reader.read(&mut buf).await {
        if !out.data(&buf[..n], stderr).await {
            return;
        }
    }
}

/// A pty master, non-blocking, for tokio.
fn pty_fd(fd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = fcntl(&fd, FcntlArg::F_GETFL).map_err(std::io::Error::from)?;
    fcntl(
        &fd,
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .map_err(std::io::Error::from)?;
    // SAFETY: the OwnedFd is moved into the AsyncFd, which owns it until
    // dropped; its fd stays open and the same for that whole time.
    unsafe { AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)
}

async fn pump_pty(fd: AsyncFd<OwnedFd>, out: Out) {
    let mut buf = vec![0u8; STREAM_CHUNK];
    loop {
        let Ok(mut ready) = fd.readable().await else {
            return;
        };
        match ready.try_io(|inner| {
            nix::unistd::read(inner.get_ref(), &mut buf).map_err(std::io::Error::from)
        }) {
            // EIO: the slave side is closed (the process ended).
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => {
                if !out.data(&buf[..n], false).await {
                    return;
                }
            }
            Err(_would_block) => continue,
        }
    }
}

async fn write_pty(fd: &AsyncFd<OwnedFd>, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        let mut ready = fd.writable().await?;
        match ready
            .try_io(|inner| nix::unistd::write(inner.get_ref(), data).map_err(std::io::Error::from))
        {
            Ok(Ok(n)) => data = &data[n..],
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => continue,
        }
    }
    Ok(())
}
