//! The binary wire protocol between clients (ctl, nodes, controllers) and
//! the apiserver. A connection is a stream of frames ([`frame`]); the
//! client opens with a [`Hello`] ([`handshake`]); requests get one
//! [`Response`] on their request id; a watch pushes [`WatchEvent`]s on the
//! id of the request that opened it; failures are typed ([`ApiError`]);
//! `ctl logs` and `ctl exec` are streams relayed through the apiserver
//! over the node's connection ([`StreamFrame`], see `stream.rs`).
//! Payloads are postcard: compact, and every model type round-trips.

mod error;
mod frame;
mod handshake;
#[cfg(feature = "std")]
mod io;
mod message;
#[doc(hidden)]
pub mod sample;
mod stream;

pub use error::{ApiError, Cause, ErrorCode};
pub use frame::{encode_frame, Frame, FrameDecoder, FrameError, DEFAULT_MAX_FRAME, HEADER_LEN};
pub use handshake::{negotiate, MAGIC, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION};
#[cfg(feature = "std")]
pub use io::{read_frame, write_frame, FrameIoError};
pub use message::{
    ClientMessage, Credentials, EventType, Hello, HelloOk, Preconditions, Request, Response,
    ServerMessage, WatchEvent,
};
pub use stream::{
    window_cost, StreamChunk, StreamFrame, StreamKind, StreamOpen, StreamTarget, Window,
    MAX_FRAMES_IN_FLIGHT, MIN_FRAME_COST, STREAM_CHUNK, STREAM_WINDOW,
};

#[cfg(test)]
mod tests;
