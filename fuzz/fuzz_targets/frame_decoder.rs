//! Feed arbitrary bytes to the frame decoder in chunks whose sizes come from
//! the input itself; every message that decodes must re-encode and decode
//! to the same value. Any panic is a bug. Both directions' enums are
//! checked whole: requests, responses, watch events and the stream frames
//! of `ctl logs`/`ctl exec` (`ClientMessage::Stream`, `ServerMessage::
//! StreamOpen`/`Stream`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use noderun_core::proto::{encode_frame, ClientMessage, FrameDecoder, ServerMessage, DEFAULT_MAX_FRAME};

fn check<T>(data: &[u8], chunk: usize)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let mut d = FrameDecoder::new(1 << 16);
    for part in data.chunks(chunk) {
        d.extend(part);
        loop {
            match d.next_message::<T>() {
                Ok(Some((id, msg))) => {
                    let mut again = Vec::new();
                    encode_frame(id, &msg, &mut again, DEFAULT_MAX_FRAME).expect("a decoded message encodes");
                    let mut d2 = FrameDecoder::default();
                    d2.extend(&again);
                    let (id2, msg2) = d2.next_message::<T>().expect("re-encoded frame decodes").expect("whole");
                    assert_eq!((id, &msg), (id2, &msg2));
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    let _ = d.finish();
}

fuzz_target!(|data: &[u8]| {
    let chunk = usize::from(data.first().copied().unwrap_or(1)).max(1);
    check::<ClientMessage>(data, chunk);
    check::<ServerMessage>(data, chunk);
});
