//! Streams: `ctl logs` and `ctl exec` relayed by the apiserver over the
//! node's own connection, so no new listener, certificate or node address
//! is needed.
//!
//! - A client (ctl) sends [`Request::OpenStream`](super::Request) with a
//!   [`StreamTarget`]; the apiserver authorizes it, finds the pod's node
//!   and answers `StreamOpened`; then [`StreamFrame`]s flow both ways on
//!   that request id (`ClientMessage::Stream` up, `ServerMessage::Stream`
//!   down), `stream` being the request id.
//! - A node keeps one `ServeStreams` request open (like a watch); the
//!   apiserver pushes a [`StreamOpen`] on it for each stream to serve,
//!   with a stream number of its own, and the frames of every stream of
//!   that node flow on that request id, told apart by `stream`.
//!
//! Flow control: the output of a stream (stdout, stderr) and its input
//! (stdin) each have a window of [`STREAM_WINDOW`] bytes: a sender stops
//! when that much is unacknowledged, and the receiver sends
//! [`StreamChunk::Ack`] as it consumes. A frame costs its bytes but at
//! least [`MIN_FRAME_COST`] ([`window_cost`]), so the window also bounds
//! how many frames are in flight. The apiserver keeps a bounded
//! queue per stream; a peer that sends past its window overflows it and
//! the stream is closed with an error.

use super::ApiError;
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Bytes of output (or input) a stream may have unacknowledged.
pub const STREAM_WINDOW: u32 = 1 << 20;
/// The largest data chunk a stream frame carries.
pub const STREAM_CHUNK: usize = 32 * 1024;
/// The least a data frame costs against a window, however few bytes it
/// carries: a window then also bounds the frames in flight (at most
/// [`STREAM_WINDOW`] / this = 128), which is what the queues on their way
/// hold.
pub const MIN_FRAME_COST: u32 = 8 * 1024;
/// Data frames one direction of a stream may have in flight.
pub const MAX_FRAMES_IN_FLIGHT: usize = (STREAM_WINDOW / MIN_FRAME_COST) as usize;

/// What a data frame of `len` bytes costs against a window (and what its
/// receiver acknowledges).
pub fn window_cost(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX).max(MIN_FRAME_COST)
}

/// What a stream does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub enum StreamKind {
    /// The container's log, as `kubectl logs`.
    Logs {
        /// Keep sending what the container writes until it ends.
        follow: bool,
        /// Only the last lines.
        tail_lines: Option<u64>,
        /// The previous instance's log (before the last restart).
        previous: bool,
    },
    /// A command in the running container, as `kubectl exec`.
    Exec {
        command: Vec<String>,
        /// The client sends stdin (else the command's stdin is empty).
        stdin: bool,
        /// A terminal: stdout and stderr are one stream, resizes apply.
        tty: bool,
    },
}

impl StreamKind {
    /// `logs` or `exec`, for messages.
    pub fn verb(&self) -> &'static str {
        match self {
            StreamKind::Logs { .. } => "logs",
            StreamKind::Exec { .. } => "exec",
        }
    }
}

/// What a client asks a stream of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub struct StreamTarget {
    pub namespace: String,
    pub pod: String,
    /// Empty: the pod's only container.
    pub container: String,
    pub kind: StreamKind,
}

/// A stream a node is to serve (pushed on its `ServeStreams` request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub struct StreamOpen {
    /// The number its frames carry on the node's connection.
    pub stream: u32,
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    /// Resolved: always a container of the pod.
    pub container: String,
    pub kind: StreamKind,
}

/// One piece of a stream, either way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub struct StreamFrame {
    pub stream: u32,
    pub chunk: StreamChunk,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub enum StreamChunk {
    /// Client → node.
    Stdin(Vec<u8>),
    /// Node → client (a log's text comes as stdout).
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The client's stdin ended.
    StdinClosed,
    /// The client's terminal size changed (exec with a tty).
    Resize {
        rows: u16,
        cols: u16,
    },
    /// The receiver consumed this many bytes: the sender may send as much
    /// more ([`STREAM_WINDOW`]).
    Ack(u32),
    /// The stream ended: the command's exit code (exec; 128 + signal when
    /// killed), 0 for a log.
    Exit(i32),
    /// The stream failed; nothing follows.
    Error(ApiError),
    /// The client gives the stream up (the node stops serving it).
    Close,
}

impl StreamChunk {
    /// The data bytes it carries, which count against a window.
    pub fn data_len(&self) -> u32 {
        match self {
            StreamChunk::Stdin(b) | StreamChunk::Stdout(b) | StreamChunk::Stderr(b) => {
                b.len() as u32
            }
            _ => 0,
        }
    }

    /// Whether nothing follows it on its stream.
    pub fn is_end(&self) -> bool {
        matches!(
            self,
            StreamChunk::Exit(_) | StreamChunk::Error(_) | StreamChunk::Close
        )
    }
}

/// A sender's side of a window: how much it may send before an ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    unacked: u32,
}

impl Default for Window {
    fn default() -> Self {
        Window::new()
    }
}

impl Window {
    pub const fn new() -> Window {
        Window { unacked: 0 }
    }

    /// How many bytes may be sent now.
    pub fn room(&self) -> usize {
        STREAM_WINDOW.saturating_sub(self.unacked) as usize
    }

    pub fn sent(&mut self, n: u32) {
        self.unacked = self.unacked.saturating_add(n);
    }

    pub fn acked(&mut self, n: u32) {
        self.unacked = self.unacked.saturating_sub(n);
    }
}

#[cfg(test)]
mod window_tests {
    use super::*;

    #[test]
    fn a_window_closes_at_its_size_and_opens_with_acks() {
        let mut w = Window::new();
        assert_eq!(w.room(), STREAM_WINDOW as usize);
        w.sent(STREAM_WINDOW - 10);
        assert_eq!(w.room(), 10);
        w.sent(10);
        assert_eq!(w.room(), 0);
        w.acked(100);
        assert_eq!(w.room(), 100);
        w.acked(u32::MAX);
        assert_eq!(w.room(), STREAM_WINDOW as usize);
        assert_eq!(StreamChunk::Stdout(alloc::vec![1, 2, 3]).data_len(), 3);
        assert_eq!(StreamChunk::Ack(7).data_len(), 0);
        assert!(StreamChunk::Exit(0).is_end() && !StreamChunk::StdinClosed.is_end());
        // One-byte frames (keys typed on a terminal) still fill the window
        // after MAX_FRAMES_IN_FLIGHT of them.
        assert_eq!(window_cost(1), MIN_FRAME_COST);
        assert_eq!(window_cost(STREAM_CHUNK), STREAM_CHUNK as u32);
        let mut w = Window::new();
        for _ in 0..MAX_FRAMES_IN_FLIGHT {
            assert!(w.room() >= window_cost(1) as usize);
            w.sent(window_cost(1));
        }
        assert!(w.room() < window_cost(1) as usize);
        assert_eq!(MAX_FRAMES_IN_FLIGHT, 128);
    }
}
