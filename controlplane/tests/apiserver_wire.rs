//! The apiserver against raw sockets: bad input (malformed, truncated,
//! oversized frames, protocol misuse, random bytes) gets an error frame and
//! a closed connection while every other client is still served (stream
//! frames included; misused stream requests are refused and the
//! connection goes on); a watcher
//! that stops reading is told to relist while others go on.

mod common;

use common::*;
use noderun_controlplane::apiserver::ServeOptions;
use noderun_controlplane::client::ListOptions;
use noderun_core::proto::{
    encode_frame, ClientMessage, Credentials, ErrorCode, EventType, FrameDecoder, Hello, Request,
    Response, ServerMessage, StreamChunk, StreamFrame, StreamKind, StreamTarget, DEFAULT_MAX_FRAME,
};
use noderun_core::{Kind, LabelSelector, Object};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

fn frame(id: u32, message: &ClientMessage) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(id, message, &mut out, DEFAULT_MAX_FRAME).unwrap();
    out
}

fn hello(token: &str) -> Vec<u8> {
    frame(
        0,
        &ClientMessage::Hello(Hello::new(Credentials::Bearer(token.into()), "raw")),
    )
}

/// A header announcing `len` payload bytes on request `id`, then `payload`.
fn raw_frame(len: u32, id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = len.to_le_bytes().to_vec();
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Every message the server sends until it closes the connection.
async fn read_until_closed(stream: &mut UnixStream) -> Vec<(u32, ServerMessage)> {
    let mut decoder = FrameDecoder::default();
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("the server closes within 10 s")
            .unwrap_or(0);
        if n == 0 {
            return out;
        }
        decoder.extend(&chunk[..n]);
        while let Some(m) = decoder
            .next_message::<ServerMessage>()
            .expect("server frames decode")
        {
            out.push(m);
        }
    }
}

/// The one error the server answered before closing, on request `id`.
fn the_error(messages: &[(u32, ServerMessage)], id: u32) -> (ErrorCode, String) {
    let errors: Vec<_> = messages
        .iter()
        .filter_map(|(i, m)| match m {
            ServerMessage::Response(Response::Error(e)) => Some((*i, e.code, e.message.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 1, "one error frame: {messages:?}");
    assert_eq!(errors[0].0, id, "on the offending request id");
    (errors[0].1, errors[0].2.clone())
}

/// What it is, bytes before the bad part, the bad bytes, whether to close
/// our write side, and the request id, code and text of the expected error.
type BadInput = (
    &'static str,
    Vec<u8>,
    Vec<u8>,
    bool,
    u32,
    ErrorCode,
    &'static str,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_close_only_their_connection() {
    let server = TestServer::start().await;
    let bystander = server.client(ADMIN).await;
    let ping = frame(5, &ClientMessage::Request(Request::Ping));
    let oversized = raw_frame(DEFAULT_MAX_FRAME + 1, 9, &[]);
    let cases: Vec<BadInput> = vec![
        (
            "garbage payload first",
            vec![],
            raw_frame(5, 7, &[0xff; 5]),
            false,
            7,
            ErrorCode::BadRequest,
            "does not decode",
        ),
        (
            "oversized header first",
            vec![],
            oversized.clone(),
            false,
            0,
            ErrorCode::TooLarge,
            "exceeds the limit",
        ),
        (
            "oversized after hello",
            hello(ADMIN),
            oversized,
            false,
            0,
            ErrorCode::TooLarge,
            "exceeds the limit",
        ),
        (
            "truncated frame",
            vec![],
            raw_frame(100, 3, &[1; 10]),
            true,
            0,
            ErrorCode::BadRequest,
            "ended inside a frame",
        ),
        (
            "empty payload",
            hello(ADMIN),
            raw_frame(0, 4, &[]),
            false,
            4,
            ErrorCode::BadRequest,
            "empty payload",
        ),
        (
            "garbage after hello",
            hello(ADMIN),
            raw_frame(3, 11, &[9, 9, 9]),
            false,
            11,
            ErrorCode::BadRequest,
            "does not decode",
        ),
        (
            "trailing bytes",
            hello(ADMIN),
            {
                let mut f = ping.clone();
                f.push(0);
                let len = (f.len() - 8) as u32;
                f[..4].copy_from_slice(&len.to_le_bytes());
                f
            },
            false,
            5,
            ErrorCode::BadRequest,
            "left over",
        ),
        (
            "request before hello",
            vec![],
            ping.clone(),
            false,
            5,
            ErrorCode::BadRequest,
            "first frame must be a Hello",
        ),
        (
            "second hello",
            hello(ADMIN),
            hello(ADMIN),
            false,
            0,
            ErrorCode::BadRequest,
            "second Hello",
        ),
        (
            "bad magic",
            vec![],
            {
                let mut h = Hello::new(Credentials::Bearer(ADMIN.into()), "raw");
                h.magic = *b"HTTP";
                frame(1, &ClientMessage::Hello(h))
            },
            false,
            1,
            ErrorCode::BadRequest,
            "bad magic",
        ),
        (
            "truncated stream frame",
            hello(ADMIN),
            {
                let mut f = frame(6, &ClientMessage::Stream(stdin_frame(6)));
                f.truncate(f.len() - 2);
                f
            },
            true,
            0,
            ErrorCode::BadRequest,
            "ended inside a frame",
        ),
        (
            "malformed stream frame",
            hello(ADMIN),
            // ClientMessage::Stream (variant 2), then a stream number that
            // is no varint.
            raw_frame(6, 12, &[2, 0xff, 0xff, 0xff, 0xff, 0xff]),
            false,
            12,
            ErrorCode::BadRequest,
            "does not decode",
        ),
        (
            "stream frame before hello",
            vec![],
            frame(6, &ClientMessage::Stream(stdin_frame(6))),
            false,
            6,
            ErrorCode::BadRequest,
            "first frame must be a Hello",
        ),
        (
            "bad token",
            vec![],
            hello("wrong-token-0123456789"),
            false,
            0,
            ErrorCode::Unauthorized,
            "invalid bearer token",
        ),
    ];
    for (what, before, bad, half_close, id, want_code, want_text) in cases {
        let mut raw = UnixStream::connect(&server.socket).await.unwrap();
        raw.write_all(&before).await.unwrap();
        raw.write_all(&bad).await.unwrap();
        if half_close {
            raw.shutdown().await.unwrap();
        }
        let messages = read_until_closed(&mut raw).await;
        let (code, text) = the_error(&messages, id);
        assert_eq!(code, want_code, "{what}: {text}");
        assert!(text.contains(want_text), "{what}: {text}");
        // Everyone else is still served.
        bystander
            .ping()
            .await
            .unwrap_or_else(|e| panic!("after {what}: {e}"));
    }
    server.client(VIEWER).await.ping().await.unwrap();
}

fn stdin_frame(stream: u32) -> StreamFrame {
    StreamFrame {
        stream,
        chunk: StreamChunk::Stdin(b"data".to_vec()),
    }
}

/// The messages answering `frames` (the HelloOk left out), sent after a
/// Hello as `token`, until `count` came.
async fn exchange(
    server: &TestServer,
    token: &str,
    frames: &[Vec<u8>],
    count: usize,
) -> Vec<(u32, ServerMessage)> {
    let mut raw = UnixStream::connect(&server.socket).await.unwrap();
    raw.write_all(&hello(token)).await.unwrap();
    for f in frames {
        raw.write_all(f).await.unwrap();
    }
    let mut decoder = FrameDecoder::default();
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    while out.len() < count {
        let n = tokio::time::timeout(Duration::from_secs(10), raw.read(&mut chunk))
            .await
            .expect("answers within 10 s")
            .unwrap();
        assert!(n > 0, "closed after {out:?}");
        decoder.extend(&chunk[..n]);
        while let Some(m) = decoder.next_message::<ServerMessage>().unwrap() {
            if !matches!(m.1, ServerMessage::HelloOk(_)) {
                out.push(m);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_misuse_is_refused_without_closing_the_connection() {
    let server = TestServer::start().await;
    let open = |pod: &str| {
        ClientMessage::Request(Request::OpenStream(StreamTarget {
            namespace: "default".into(),
            pod: pod.into(),
            container: String::new(),
            kind: StreamKind::Logs {
                follow: false,
                tail_lines: None,
                previous: false,
            },
        }))
    };
    let got = exchange(
        &server,
        ADMIN,
        &[
            // Only a node serves streams.
            frame(1, &ClientMessage::Request(Request::ServeStreams)),
            // A frame of a stream that is not open is dropped.
            frame(2, &ClientMessage::Stream(stdin_frame(2))),
            // A stream of a pod that does not exist.
            frame(3, &open("nosuch")),
            frame(4, &ClientMessage::Request(Request::Ping)),
        ],
        3,
    )
    .await;
    let error = |id: u32| match got.iter().find(|(i, _)| *i == id) {
        Some((_, ServerMessage::Response(Response::Error(e)))) => (e.code, e.message.clone()),
        other => panic!("request {id}: {other:?}"),
    };
    let (code, text) = error(1);
    assert_eq!(code, ErrorCode::Forbidden);
    assert!(text.contains("may not serve streams"), "{text}");
    let (code, text) = error(3);
    assert_eq!(code, ErrorCode::NotFound, "{text}");
    assert!(
        got.contains(&(4, ServerMessage::Response(Response::Pong))),
        "{got:?}"
    );
    assert!(!got.iter().any(|(i, _)| *i == 2), "{got:?}");
    // A viewer may not exec, before anything is looked up.
    let exec = ClientMessage::Request(Request::OpenStream(StreamTarget {
        namespace: "default".into(),
        pod: "any".into(),
        container: String::new(),
        kind: StreamKind::Exec {
            command: vec!["true".into()],
            stdin: false,
            tty: false,
        },
    }));
    let got = exchange(&server, VIEWER, &[frame(1, &exec)], 1).await;
    let ServerMessage::Response(Response::Error(e)) = &got[0].1 else {
        panic!("{got:?}")
    };
    assert_eq!(e.code, ErrorCode::Forbidden, "{e}");
}

/// xorshift64*: deterministic noise without a dependency.
fn noise(state: &mut u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| {
            *state ^= *state >> 12;
            *state ^= *state << 25;
            *state ^= *state >> 27;
            (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_never_take_the_server_down() {
    let server = TestServer::start().await;
    let bystander = server.client(ADMIN).await;
    let mut state = 0x9e37_79b9_7f4a_7c15;
    for i in 0..200usize {
        let mut raw = UnixStream::connect(&server.socket).await.unwrap();
        // Half the time after a good handshake, so requests get parsed too.
        if i % 2 == 0 {
            raw.write_all(&hello(ADMIN)).await.unwrap();
        }
        let len = 1 + (i * 37) % 300;
        let mut bytes = noise(&mut state, len);
        if i % 3 == 0 {
            // A plausible length, so the payload reaches the decoder.
            let n = (len as u32).saturating_sub(8);
            bytes[..4.min(len)].copy_from_slice(&n.to_le_bytes()[..4.min(len)]);
        }
        let _ = raw.write_all(&bytes).await;
        let _ = raw.shutdown().await;
        let _ = read_until_closed(&mut raw).await;
    }
    bystander.ping().await.unwrap();
    let created = bystander
        .create(pod("default", "still-here", ""))
        .await
        .unwrap();
    assert!(created.metadata().resource_version > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_watcher_is_told_to_relist_while_others_go_on() {
    const CREATES: usize = 400;
    let options = ServeOptions {
        watch_buffer: 8,
        ..ServeOptions::default()
    };
    let server = TestServer::start_with(options, Extra::default()).await;
    let admin = server.client(ADMIN).await;
    let fast = server.client(VIEWER).await;
    let mut fast_watch = fast
        .watch(Kind::Pod, None, &ListOptions::default(), 0)
        .await
        .unwrap();
    // The slow one: a raw connection that opens a watch and stops reading.
    let mut slow = UnixStream::connect(&server.socket).await.unwrap();
    slow.write_all(&hello(VIEWER)).await.unwrap();
    let watch = Request::Watch {
        kind: Kind::Pod,
        namespace: String::new(),
        label_selector: LabelSelector::default(),
        node_name: None,
        from_revision: 0,
    };
    slow.write_all(&frame(42, &ClientMessage::Request(watch)))
        .await
        .unwrap();
    // Let the watch open before the writes start.
    fast.ping().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Large objects fill the socket and the connection's queue quickly.
    let bulk = "x".repeat(16 * 1024);
    let reader = tokio::spawn(async move {
        let mut revisions = Vec::new();
        while revisions.len() < CREATES {
            let e = tokio::time::timeout(Duration::from_secs(60), fast_watch.next())
                .await
                .expect("the fast watcher keeps getting events")
                .expect("watch open");
            assert_eq!(e.event_type, EventType::Added);
            revisions.push(e.revision);
        }
        revisions
    });
    let mut created = Vec::new();
    for i in 0..CREATES {
        let mut p = pod("default", &format!("p{i}"), "");
        p.metadata_mut()
            .annotations
            .insert("bulk".into(), bulk.clone());
        created.push(admin.create(p).await.unwrap().metadata().resource_version);
    }
    assert_eq!(
        reader.await.unwrap(),
        created,
        "the fast watcher saw every event"
    );
    // Now the slow client reads: some events, then Expired, and its
    // connection still answers.
    slow.write_all(&frame(43, &ClientMessage::Request(Request::Ping)))
        .await
        .unwrap();
    let mut decoder = FrameDecoder::default();
    let mut chunk = vec![0u8; 256 * 1024];
    let (mut events, mut expired, mut pong) = (0usize, false, false);
    while !(expired && pong) {
        let n = tokio::time::timeout(Duration::from_secs(10), slow.read(&mut chunk))
            .await
            .expect("the slow client gets its frames")
            .unwrap();
        assert!(n > 0, "connection closed early");
        decoder.extend(&chunk[..n]);
        while let Some((id, m)) = decoder.next_message::<ServerMessage>().unwrap() {
            match (id, m) {
                (42, ServerMessage::Event(e)) if e.event_type == EventType::Expired => {
                    assert!(e.object.is_none());
                    expired = true;
                }
                (42, ServerMessage::Event(e)) => {
                    assert!(!expired, "no event after Expired");
                    assert!(matches!(e.object, Some(Object::Pod(_))));
                    events += 1;
                }
                (43, ServerMessage::Response(Response::Pong)) => pong = true,
                _ => {}
            }
        }
    }
    assert!(
        events < CREATES,
        "the slow watcher was cut short ({events} events)"
    );
}
