//! Framing: `u32` little-endian payload length, `u32` little-endian request
//! id, then the postcard-encoded message. [`FrameDecoder`] takes bytes in
//! any chunking and yields whole frames; it refuses an oversized length as
//! soon as the header arrives (before buffering the body), a payload that
//! does not decode or has bytes left over, and a stream that ends inside a
//! frame. It never panics, whatever it is fed.

use alloc::vec::Vec;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Length prefix + request id.
pub const HEADER_LEN: usize = 8;
/// The default limit on one frame's payload.
pub const DEFAULT_MAX_FRAME: u32 = 16 << 20;

/// What went wrong with a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: u64, max: u32 },
    #[error("frame {request_id}: empty payload")]
    Empty { request_id: u32 },
    #[error("frame {request_id}: payload does not decode: {reason}")]
    Malformed {
        request_id: u32,
        reason: postcard::Error,
    },
    #[error("frame {request_id}: {extra} bytes left over after the message")]
    TrailingBytes { request_id: u32, extra: usize },
    #[error("stream ended inside a frame ({buffered} bytes buffered)")]
    Truncated { buffered: usize },
    #[error("message does not encode: {0}")]
    Encode(postcard::Error),
    #[error("the decoder stopped after an earlier error")]
    Poisoned,
}

/// One frame, payload still encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub request_id: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    /// Decode the payload as `T`, refusing leftover bytes.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, FrameError> {
        decode_payload(self.request_id, &self.payload)
    }
}

fn decode_payload<T: DeserializeOwned>(request_id: u32, payload: &[u8]) -> Result<T, FrameError> {
    if payload.is_empty() {
        return Err(FrameError::Empty { request_id });
    }
    let (msg, rest) = postcard::take_from_bytes::<T>(payload)
        .map_err(|reason| FrameError::Malformed { request_id, reason })?;
    if !rest.is_empty() {
        return Err(FrameError::TrailingBytes {
            request_id,
            extra: rest.len(),
        });
    }
    Ok(msg)
}

/// Append one frame carrying `msg` to `out` (callers batch several frames
/// into one write). Nothing is appended on error.
pub fn encode_frame<T: Serialize>(
    request_id: u32,
    msg: &T,
    out: &mut Vec<u8>,
    max: u32,
) -> Result<(), FrameError> {
    let payload = postcard::to_allocvec(msg).map_err(FrameError::Encode)?;
    if payload.len() as u64 > u64::from(max) {
        return Err(FrameError::TooLarge {
            len: payload.len() as u64,
            max,
        });
    }
    out.reserve(HEADER_LEN + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&request_id.to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(())
}

/// Incremental frame decoder.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    /// Bytes before this offset are consumed.
    start: usize,
    max: u32,
    poisoned: bool,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new(DEFAULT_MAX_FRAME)
    }
}

impl FrameDecoder {
    /// A decoder that refuses payloads over `max` bytes.
    pub fn new(max: u32) -> FrameDecoder {
        FrameDecoder {
            buf: Vec::new(),
            start: 0,
            max,
            poisoned: false,
        }
    }

    /// Add bytes as they arrive.
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next whole frame, if one has arrived. After an error the
    /// decoder is poisoned: the stream's framing can no longer be trusted.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if self.poisoned {
            return Err(FrameError::Poisoned);
        }
        let avail = &self.buf[self.start..];
        if avail.len() < HEADER_LEN {
            return Ok(None);
        }
        let len = u32::from_le_bytes([avail[0], avail[1], avail[2], avail[3]]);
        let request_id = u32::from_le_bytes([avail[4], avail[5], avail[6], avail[7]]);
        if len > self.max {
            self.poisoned = true;
            return Err(FrameError::TooLarge {
                len: u64::from(len),
                max: self.max,
            });
        }
        let total = HEADER_LEN + len as usize;
        if avail.len() < total {
            return Ok(None);
        }
        let payload = avail[HEADER_LEN..total].to_vec();
        self.start += total;
        Ok(Some(Frame {
            request_id,
            payload,
        }))
    }

    /// The next frame decoded as `T`, with its request id.
    pub fn next_message<T: DeserializeOwned>(&mut self) -> Result<Option<(u32, T)>, FrameError> {
        match self.next_frame()? {
            None => Ok(None),
            Some(f) => match f.decode() {
                Ok(m) => Ok(Some((f.request_id, m))),
                Err(e) => {
                    self.poisoned = true;
                    Err(e)
                }
            },
        }
    }

    /// At end of stream: an error if a partial frame is left.
    pub fn finish(&self) -> Result<(), FrameError> {
        match self.buffered() {
            0 => Ok(()),
            n => Err(FrameError::Truncated { buffered: n }),
        }
    }
}
