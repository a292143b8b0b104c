//! Blocking frame I/O over `std::io` for simple clients and tests (the
//! apiserver and node agent use the decoder with their own async I/O).

use super::{encode_frame, FrameDecoder, FrameError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::{self, Read, Write};
use std::vec::Vec;

/// Why a blocking read or write failed.
#[derive(Debug, thiserror::Error)]
pub enum FrameIoError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("connection: {0}")]
    Io(#[from] io::Error),
}

/// Encode and write one frame.
pub fn write_frame<W: Write, T: Serialize>(
    w: &mut W,
    request_id: u32,
    msg: &T,
    max: u32,
) -> Result<(), FrameIoError> {
    let mut buf = Vec::new();
    encode_frame(request_id, msg, &mut buf, max)?;
    w.write_all(&buf)?;
    Ok(())
}

/// Read until one whole message arrives. `Ok(None)` at a clean end of
/// stream; `Truncated` when it ends inside a frame.
pub fn read_frame<R: Read, T: DeserializeOwned>(
    r: &mut R,
    dec: &mut FrameDecoder,
) -> Result<Option<(u32, T)>, FrameIoError> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(m) = dec.next_message()? {
            return Ok(Some(m));
        }
        let n = match r.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            dec.finish()?;
            return Ok(None);
        }
        dec.extend(&chunk[..n]);
    }
}
