//! `ctl logs`: the instance's kept files in order (or their last lines),
//! then with `-f` what the logger appends, across rotations, until the
//! container instance has ended and its log is drained (as `kubectl logs
//! -f` ends when the container does).

use super::{stream_error, Out};
use crate::agent::logs::{tail_lines, ContainerLogDir};
use crate::node::NodeContext;
use noderun_core::proto::{ApiError, ErrorCode, StreamChunk, StreamOpen};
use noderun_core::Pod;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How often a followed log is looked at for more.
const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// Quiet looks after the container ended before the log counts as done
/// (its logger writes what was left in the pipe).
const QUIET_AFTER_END: u32 = 3;

/// What the client asked for.
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    pub follow: bool,
    pub tail_lines: Option<u64>,
    pub previous: bool,
}

/// The pod as far as its log directory needs it.
fn pod_of(open: &StreamOpen) -> Pod {
    let mut pod = Pod::default();
    pod.metadata.namespace = open.namespace.clone();
    pod.metadata.name = open.pod.clone();
    pod.metadata.uid = open.uid.clone();
    pod
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> ApiError {
    stream_error(
        ErrorCode::Internal,
        format!("{what} {}: {e}", path.display()),
    )
}

pub(super) async fn serve(
    ctx: &Arc<NodeContext>,
    open: &StreamOpen,
    want: Wanted,
    input: mpsc::Receiver<StreamChunk>,
    out: &Out,
) -> Result<Option<i32>, ApiError> {
    let name = format!(
        "container {} of pod {}/{}",
        open.container, open.namespace, open.pod
    );
    let logs = ctx
        .host
        .container_logs(&pod_of(open), &open.container)
        .map_err(|e| stream_error(ErrorCode::BadRequest, e.to_string()))?;
    let instances = logs.instances().unwrap_or_default();
    let instance = match (instances.as_slice(), want.previous) {
        ([], _) => {
            return Err(stream_error(
                ErrorCode::NotFound,
                format!(
                    "{name} has no log yet: it has not started (see ctl describe pod {})",
                    open.pod
                ),
            ))
        }
        ([.., previous, _], true) => *previous,
        (_, true) => {
            return Err(stream_error(
                ErrorCode::NotFound,
                format!("previous terminated instance of {name} not found: it has not restarted"),
            ))
        }
        ([.., last], false) => *last,
    };
    let closed = watch_input(input, out);
    let mut reader = LogReader::open(&logs, instance)?;
    let mut text = reader.kept()?;
    if let Some(n) = want.tail_lines {
        text = tail_lines(&text, usize::try_from(n).unwrap_or(usize::MAX)).to_vec();
    }
    if !send(out, &text, &closed).await {
        return Ok(None);
    }
    if !want.follow || want.previous {
        return Ok(Some(0));
    }
    let mut quiet = 0;
    loop {
        let more = reader.more()?;
        if !more.is_empty() {
            quiet = 0;
            if !send(out, &more, &closed).await {
                return Ok(None);
            }
            continue;
        }
        if let Some(rest) = reader.follow_rotation()? {
            if !send(out, &rest, &closed).await {
                return Ok(None);
            }
            continue;
        }
        if ended(ctx, open, &logs, instance).await {
            quiet += 1;
            if quiet >= QUIET_AFTER_END {
                return Ok(Some(0));
            }
        }
        let mut closed = closed.clone();
        tokio::select! {
            _ = tokio::time::sleep(FOLLOW_POLL) => {}
            _ = closed.wait_for(|c| *c) => return Ok(None),
        }
    }
}

/// Acks open the window; a Close (or the link gone) ends the session.
fn watch_input(mut input: mpsc::Receiver<StreamChunk>, out: &Out) -> watch::Receiver<bool> {
    let (closed_tx, closed) = watch::channel(false);
    let window = Arc::clone(&out.window);
    tokio::spawn(async move {
        while let Some(chunk) = input.recv().await {
            match chunk {
                StreamChunk::Ack(n) => window.acked(n),
                StreamChunk::Close => break,
                _ => {}
            }
        }
        let _ = closed_tx.send(true);
    });
    closed
}

/// Send `bytes` unless the client goes away first.
async fn send(out: &Out, bytes: &[u8], closed: &watch::Receiver<bool>) -> bool {
    let mut closed = closed.clone();
    tokio::select! {
        sent = out.data(bytes, false) => sent,
        _ = closed.wait_for(|c| *c) => false,
    }
}

/// Whether the instance will write no more: a newer one exists, or the
/// container is stopped or gone.
async fn ended(
    ctx: &Arc<NodeContext>,
    open: &StreamOpen,
    logs: &ContainerLogDir,
    instance: u32,
) -> bool {
    if logs
        .instances()
        .unwrap_or_default()
        .last()
        .is_some_and(|n| *n > instance)
    {
        return true;
    }
    let Ok(paths) = ctx.host.paths(&open.uid) else {
        return true;
    };
    let state = ctx
        .host
        .runner()
        .state_async(
            paths.runtime_root.clone(),
            paths.container_id(&open.container),
        )
        .await;
    !matches!(state, Ok(s) if s.status != crate::agent::runner::Status::Stopped)
}

/// Reads one instance's log: what is kept, then what is appended, from
/// the live file it has open (which a rotation renames under it).
struct LogReader {
    logs: ContainerLogDir,
    instance: u32,
    file: File,
    inode: u64,
}

impl LogReader {
    fn open(logs: &ContainerLogDir, instance: u32) -> Result<LogReader, ApiError> {
        let live = logs.live(instance);
        let file = File::open(&live).map_err(|e| io_error("open", &live, e))?;
        let inode = file
            .metadata()
            .map_err(|e| io_error("stat", &live, e))?
            .ino();
        Ok(LogReader {
            logs: logs.clone(),
            instance,
            file,
            inode,
        })
    }

    /// The rotated files, then the live file up to now.
    fn kept(&mut self) -> Result<Vec<u8>, ApiError> {
        let mut text = Vec::new();
        let files = self.logs.files(self.instance);
        for f in &files[..files.len() - 1] {
            match std::fs::read(f) {
                Ok(bytes) => text.extend_from_slice(&bytes),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error("read", f, e)),
            }
        }
        text.extend(self.more()?);
        Ok(text)
    }

    /// What the open file has past what was read.
    fn more(&mut self) -> Result<Vec<u8>, ApiError> {
        let mut bytes = Vec::new();
        let live = self.logs.live(self.instance);
        self.file
            .read_to_end(&mut bytes)
            .map_err(|e| io_error("read", &live, e))?;
        Ok(bytes)
    }

    /// When the live file is another one now (rotated), switch to it and
    /// return what the old one got since the last read (written just
    /// before the rename).
    fn follow_rotation(&mut self) -> Result<Option<Vec<u8>>, ApiError> {
        let live = self.logs.live(self.instance);
        let Ok(meta) = std::fs::metadata(&live) else {
            return Ok(None);
        };
        if meta.ino() == self.inode {
            return Ok(None);
        }
        let rest = self.more()?;
        *self = LogReader::open(&self.logs, self.instance)?;
        Ok(Some(rest))
    }
}
