//! Round trips of every message, the decoder's behaviour on chunked,
//! oversized, truncated and garbage input, and property tests over
//! arbitrary messages and bytes.

use super::*;
use crate::model::{Kind, LabelSelector, Object};
use alloc::vec::Vec;
use arbitrary::{Arbitrary, Unstructured};
use proptest::prelude::*;

fn frame_of<T: serde::Serialize>(id: u32, m: &T) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(id, m, &mut out, DEFAULT_MAX_FRAME).unwrap();
    out
}

fn decode_all<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    chunk: usize,
) -> Result<Vec<(u32, T)>, FrameError> {
    let mut d = FrameDecoder::default();
    let mut out = Vec::new();
    for c in bytes.chunks(chunk.max(1)) {
        d.extend(c);
        while let Some(m) = d.next_message::<T>()? {
            out.push(m);
        }
    }
    d.finish()?;
    Ok(out)
}

fn every_request() -> Vec<Request> {
    let pod = Object::Pod(sample::typical_pod());
    let sel = LabelSelector::parse("app=shop,tier in (web)").unwrap();
    alloc::vec![
        Request::Get {
            kind: Kind::Pod,
            namespace: "prod".into(),
            name: "a".into()
        },
        Request::List {
            kind: Kind::Pod,
            namespace: "".into(),
            label_selector: sel.clone(),
            node_name: Some("n1".into()),
            revision: 9
        },
        Request::Create {
            object: pod.clone()
        },
        Request::Update {
            object: pod.clone()
        },
        Request::UpdateStatus {
            object: pod.clone()
        },
        Request::Delete {
            kind: Kind::Pod,
            namespace: "prod".into(),
            name: "a".into(),
            preconditions: Preconditions {
                uid: Some("u".into()),
                resource_version: Some(3)
            },
            grace_period_seconds: Some(0),
        },
        Request::Bind {
            namespace: "prod".into(),
            name: "a".into(),
            node_name: "n1".into(),
            resource_version: 7
        },
        Request::Watch {
            kind: Kind::Node,
            namespace: "".into(),
            label_selector: sel,
            node_name: None,
            from_revision: 100
        },
        Request::CancelWatch { watch_id: 4 },
        Request::Ping,
        Request::OpenStream(StreamTarget {
            namespace: "prod".into(),
            pod: "a".into(),
            container: "".into(),
            kind: StreamKind::Logs {
                follow: true,
                tail_lines: Some(10),
                previous: false,
            },
        }),
        Request::OpenStream(StreamTarget {
            namespace: "prod".into(),
            pod: "a".into(),
            container: "web".into(),
            kind: StreamKind::Exec {
                command: alloc::vec!["cat".into(), "/etc/hostname".into()],
                stdin: true,
                tty: true,
            },
        }),
        Request::ServeStreams,
    ]
}

/// A frame of every chunk kind on stream `stream`.
fn every_stream_frame(stream: u32) -> Vec<StreamFrame> {
    [
        StreamChunk::Stdin(alloc::vec![1, 2, 3]),
        StreamChunk::Stdout(b"line\n".to_vec()),
        StreamChunk::Stderr(Vec::new()),
        StreamChunk::StdinClosed,
        StreamChunk::Resize {
            rows: 40,
            cols: 120,
        },
        StreamChunk::Ack(STREAM_WINDOW),
        StreamChunk::Exit(137),
        StreamChunk::Error(ApiError::new(ErrorCode::NotFound, "no container x")),
        StreamChunk::Close,
    ]
    .into_iter()
    .map(|chunk| StreamFrame { stream, chunk })
    .collect()
}

fn every_server_message() -> Vec<ServerMessage> {
    let pod = Object::Pod(sample::typical_pod());
    let mut all = alloc::vec![
        ServerMessage::HelloOk(HelloOk {
            version: 1,
            identity: "admin".into(),
            server: "controlplane".into()
        }),
        ServerMessage::Response(Response::Object(pod.clone())),
        ServerMessage::Response(Response::List {
            items: alloc::vec![pod.clone(), pod.clone()],
            revision: 12
        }),
        ServerMessage::Response(Response::Deleted(pod.clone())),
        ServerMessage::Response(Response::WatchStarted { revision: 12 }),
        ServerMessage::Response(Response::WatchCancelled),
        ServerMessage::Response(Response::Pong),
        ServerMessage::Response(Response::StreamOpened),
        ServerMessage::Response(Response::ServingStreams),
        ServerMessage::StreamOpen(StreamOpen {
            stream: 3,
            namespace: "prod".into(),
            pod: "a".into(),
            uid: "u-1".into(),
            container: "web".into(),
            kind: StreamKind::Exec {
                command: alloc::vec!["sh".into()],
                stdin: false,
                tty: false,
            },
        }),
    ];
    all.extend(every_stream_frame(3).into_iter().map(ServerMessage::Stream));
    for code in [
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::Conflict,
        ErrorCode::Invalid,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::TooLarge,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
        ErrorCode::BadRequest,
        ErrorCode::Expired,
    ] {
        let e =
            ApiError::new(code, "because").with_cause("spec.containers[0].image", "Required value");
        all.push(ServerMessage::Response(Response::Error(e)));
    }
    for event_type in [
        EventType::Added,
        EventType::Modified,
        EventType::Deleted,
        EventType::Expired,
        EventType::Bookmark,
    ] {
        let object = matches!(
            event_type,
            EventType::Added | EventType::Modified | EventType::Deleted
        )
        .then(|| pod.clone());
        all.push(ServerMessage::Event(WatchEvent {
            event_type,
            revision: 44,
            object,
        }));
    }
    all
}

#[test]
fn every_message_round_trips_in_any_chunking() {
    let mut client = alloc::vec![ClientMessage::Hello(Hello::new(
        Credentials::Bearer("tok".into()),
        "ctl/0.1"
    ))];
    client.extend(every_request().into_iter().map(ClientMessage::Request));
    client.extend(every_stream_frame(9).into_iter().map(ClientMessage::Stream));
    let mut stream = Vec::new();
    for (i, m) in client.iter().enumerate() {
        stream.extend(frame_of(i as u32, m));
    }
    for chunk in [1, 3, 8, 64, 4096, stream.len()] {
        let got: Vec<(u32, ClientMessage)> = decode_all(&stream, chunk).unwrap();
        assert_eq!(got.len(), client.len());
        for (i, (id, m)) in got.iter().enumerate() {
            assert_eq!((*id as usize, m), (i, &client[i]));
        }
    }
    let server = every_server_message();
    let mut stream = Vec::new();
    for m in &server {
        stream.extend(frame_of(7, m));
    }
    let got: Vec<(u32, ServerMessage)> = decode_all(&stream, 5).unwrap();
    assert_eq!(got.into_iter().map(|(_, m)| m).collect::<Vec<_>>(), server);
}

#[test]
fn oversized_frames_are_refused_at_the_header() {
    let mut d = FrameDecoder::new(1024);
    // Only the header of a 1 GiB frame has arrived: refuse now.
    d.extend(&(1u32 << 30).to_le_bytes());
    d.extend(&5u32.to_le_bytes());
    assert_eq!(
        d.next_frame(),
        Err(FrameError::TooLarge {
            len: 1 << 30,
            max: 1024
        })
    );
    assert_eq!(d.next_frame(), Err(FrameError::Poisoned));

    let mut out = Vec::new();
    let big = ClientMessage::Request(Request::Create {
        object: Object::Pod(sample::typical_pod()),
    });
    assert!(matches!(
        encode_frame(1, &big, &mut out, 64),
        Err(FrameError::TooLarge { max: 64, .. })
    ));
    assert!(out.is_empty(), "nothing is written for a refused frame");
}

#[test]
fn truncated_garbage_and_trailing_bytes() {
    let whole = frame_of(1, &ClientMessage::Request(Request::Ping));
    let mut d = FrameDecoder::default();
    d.extend(&whole[..whole.len() - 1]);
    assert_eq!(d.next_frame(), Ok(None));
    assert_eq!(
        d.finish(),
        Err(FrameError::Truncated {
            buffered: whole.len() - 1
        })
    );

    let mut garbage = Vec::new();
    garbage.extend(&4u32.to_le_bytes());
    garbage.extend(&9u32.to_le_bytes());
    garbage.extend(&[0xff, 0xff, 0xff, 0xff]);
    let e = decode_all::<ClientMessage>(&garbage, 64).unwrap_err();
    assert!(
        matches!(e, FrameError::Malformed { request_id: 9, .. }),
        "{e}"
    );

    let mut trailing = frame_of(2, &ClientMessage::Request(Request::Ping));
    trailing[0] += 1; // claim one more byte and supply it
    trailing.push(0);
    let e = decode_all::<ClientMessage>(&trailing, 64).unwrap_err();
    assert_eq!(
        e,
        FrameError::TrailingBytes {
            request_id: 2,
            extra: 1
        }
    );

    let empty = [0u8; 8];
    assert_eq!(
        decode_all::<ClientMessage>(&empty, 8).unwrap_err(),
        FrameError::Empty { request_id: 0 }
    );
}

#[test]
fn validation_errors_become_invalid_with_causes() {
    let mut pod = sample::typical_pod();
    pod.spec.containers[1].image.clear();
    let errs = crate::validate::validate_pod(&pod).unwrap_err();
    let api = ApiError::from(errs);
    assert_eq!(api.code, ErrorCode::Invalid);
    assert_eq!(api.causes[0].field, "spec.containers[1].image");
    assert_eq!(api.causes[0].message, "Required value");
}

#[test]
fn blocking_io_helpers() {
    let mut wire = Vec::new();
    write_frame(
        &mut wire,
        3,
        &ClientMessage::Request(Request::Ping),
        DEFAULT_MAX_FRAME,
    )
    .unwrap();
    write_frame(
        &mut wire,
        4,
        &ClientMessage::Request(Request::CancelWatch { watch_id: 3 }),
        DEFAULT_MAX_FRAME,
    )
    .unwrap();
    let mut r = std::io::Cursor::new(wire);
    let mut d = FrameDecoder::default();
    let a: (u32, ClientMessage) = read_frame(&mut r, &mut d).unwrap().unwrap();
    let b: (u32, ClientMessage) = read_frame(&mut r, &mut d).unwrap().unwrap();
    assert_eq!((a.0, b.0), (3, 4));
    assert!(read_frame::<_, ClientMessage>(&mut r, &mut d)
        .unwrap()
        .is_none());
}

fn arbitrary_of<T: for<'a> Arbitrary<'a>>(bytes: &[u8]) -> Option<T> {
    T::arbitrary(&mut Unstructured::new(bytes)).ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_client_message_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..4096), id in any::<u32>()) {
        if let Some(m) = arbitrary_of::<ClientMessage>(&bytes) {
            let got: Vec<(u32, ClientMessage)> = decode_all(&frame_of(id, &m), 7).unwrap();
            prop_assert_eq!(got, alloc::vec![(id, m)]);
        }
    }

    #[test]
    fn any_server_message_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..4096), id in any::<u32>()) {
        if let Some(m) = arbitrary_of::<ServerMessage>(&bytes) {
            let got: Vec<(u32, ServerMessage)> = decode_all(&frame_of(id, &m), 13).unwrap();
            prop_assert_eq!(got, alloc::vec![(id, m)]);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048), chunk in 1usize..64) {
        let _ = decode_all::<ClientMessage>(&bytes, chunk);
        let _ = decode_all::<ServerMessage>(&bytes, chunk);
    }

    #[test]
    fn splitting_a_valid_stream_anywhere_gives_the_same_frames(split in any::<proptest::sample::Index>()) {
        let mut stream = Vec::new();
        for (i, r) in every_request().into_iter().enumerate() {
            stream.extend(frame_of(i as u32, &ClientMessage::Request(r)));
        }
        let at = split.index(stream.len() + 1);
        let mut d = FrameDecoder::default();
        let mut got = Vec::new();
        for part in [&stream[..at], &stream[at..]] {
            d.extend(part);
            while let Some(m) = d.next_message::<ClientMessage>().unwrap() {
                got.push(m);
            }
        }
        prop_assert_eq!(got.len(), every_request().len());
        prop_assert!(d.finish().is_ok());
    }
}
