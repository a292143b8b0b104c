//! One client connection: the handshake, then requests read and answered
//! concurrently (up to a limit per connection), watch streams pushed on
//! the same connection, and one writer task that owns the socket's write
//! half. A frame that is oversized or does not decode gets an error frame
//! and the connection is closed; nothing a client sends can take more
//! than its own connection down.

use super::streams::{ClientStream, NodeRegistration};
use super::watch::{pump, WatchRequest};
use super::{Apiserver, Identity};
use crate::store::Store;
use noderun_client::framing::write_frames;
use noderun_core::proto::{
    encode_frame, negotiate, ApiError, ClientMessage, ErrorCode, FrameDecoder, FrameError, Hello,
    HelloOk, Request, Response, ServerMessage,
};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadHalf};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::{AbortHandle, JoinSet};

/// Frames queued for the writer before senders wait.
const WRITER_QUEUE: usize = 256;
/// How long the writer may take to flush the last frames of a closing
/// connection.
const CLOSE_FLUSH: std::time::Duration = std::time::Duration::from_secs(2);

/// `message` as one frame; a message over the frame limit becomes a
/// `TooLarge` error on the same request id.
pub fn encode(id: u32, message: &ServerMessage, max_frame: u32) -> Vec<u8> {
    let mut out = Vec::new();
    match encode_frame(id, message, &mut out, max_frame) {
        Ok(()) => out,
        Err(e) => {
            let code = match e {
                FrameError::TooLarge { .. } => ErrorCode::TooLarge,
                _ => ErrorCode::Internal,
            };
            let error = ServerMessage::Response(Response::Error(ApiError::new(
                code,
                format!("the response does not fit in a frame: {e}; ask for less (a namespace or a label selector)"),
            )));
            out.clear();
            // An error message is small: it always fits.
            let _ = encode_frame(id, &error, &mut out, max_frame);
            out
        }
    }
}

fn error_frame(id: u32, error: ApiError, max_frame: u32) -> Vec<u8> {
    encode(
        id,
        &ServerMessage::Response(Response::Error(error)),
        max_frame,
    )
}

/// Why the reader stopped.
enum Stop {
    /// The client closed its end cleanly, or the server shuts down.
    Done,
    /// Close after telling the client why (on this request id).
    Refuse(u32, ApiError),
}

struct Reader<R> {
    rd: ReadHalf<R>,
    decoder: FrameDecoder,
    chunk: Vec<u8>,
}

impl<R: AsyncRead> Reader<R> {
    /// The next message, `Ok(None)` at a clean end of stream.
    async fn next(&mut self) -> Result<Option<(u32, ClientMessage)>, Stop> {
        loop {
            match self.decoder.next_frame() {
                Ok(Some(frame)) => {
                    return match frame.decode::<ClientMessage>() {
                        Ok(m) => Ok(Some((frame.request_id, m))),
                        Err(e) => Err(refuse_frame(frame.request_id, &e)),
                    }
                }
                Ok(None) => {}
                Err(e) => return Err(refuse_frame(0, &e)),
            }
            let n = match self.rd.read(&mut self.chunk).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::debug!(error = %e, "connection read failed");
                    return Err(Stop::Done);
                }
            };
            if n == 0 {
                return match self.decoder.finish() {
                    Ok(()) => Ok(None),
                    Err(e) => Err(refuse_frame(0, &e)),
                };
            }
            self.decoder.extend(&self.chunk[..n]);
        }
    }
}

fn refuse_frame(id: u32, e: &FrameError) -> Stop {
    let code = match e {
        FrameError::TooLarge { .. } => ErrorCode::TooLarge,
        _ => ErrorCode::BadRequest,
    };
    Stop::Refuse(
        id,
        ApiError::new(code, format!("{e}; closing the connection")),
    )
}

/// Serve one connection until the client leaves, breaks the protocol or
/// `shutdown` turns true.
pub async fn serve_connection<S, IO>(
    server: Arc<Apiserver<S>>,
    io: IO,
    peer: String,
    mut shutdown: watch::Receiver<bool>,
) where
    S: Store,
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let options = server.options.clone();
    let (rd, wr) = tokio::io::split(io);
    let (out, out_rx) = mpsc::channel::<Vec<u8>>(WRITER_QUEUE);
    let writer = tokio::spawn(write_frames(wr, out_rx));
    let mut reader = Reader {
        rd,
        decoder: FrameDecoder::new(options.max_frame),
        chunk: vec![0; 64 * 1024],
    };
    let stop = tokio::select! {
        stop = run(&server, &mut reader, &out, &peer) => stop,
        _ = shutdown.wait_for(|down| *down) => Stop::Done,
    };
    if let Stop::Refuse(id, error) = stop {
        tracing::info!(%peer, error = %error, "closing connection");
        let _ = out.send(error_frame(id, error, options.max_frame)).await;
    }
    drop(out);
    let _ = tokio::time::timeout(CLOSE_FLUSH, writer).await;
}

/// The handshake, then the request loop. Spawned request and watch tasks
/// live in a JoinSet dropped (aborted) on return.
async fn run<S: Store, R: AsyncRead>(
    server: &Arc<Apiserver<S>>,
    reader: &mut Reader<R>,
    out: &mpsc::Sender<Vec<u8>>,
    peer: &str,
) -> Stop {
    let options = &server.options;
    let first = tokio::time::timeout(options.handshake_timeout, reader.next()).await;
    let identity = match first {
        Err(_) => {
            let e = ApiError::new(
                ErrorCode::BadRequest,
                "no Hello within the handshake timeout",
            );
            return Stop::Refuse(0, e);
        }
        Ok(Err(stop)) => return stop,
        Ok(Ok(None)) => return Stop::Done,
        Ok(Ok(Some((id, ClientMessage::Hello(hello))))) => match accept(server, &hello) {
            Ok((identity, ok)) => {
                tracing::debug!(%peer, %identity, client = %hello.client, "client connected");
                let message = ServerMessage::HelloOk(ok);
                if out
                    .send(encode(id, &message, options.max_frame))
                    .await
                    .is_err()
                {
                    return Stop::Done;
                }
                identity
            }
            Err(e) => return Stop::Refuse(id, e),
        },
        Ok(Ok(Some((id, ClientMessage::Request(_) | ClientMessage::Stream(_))))) => {
            let e = ApiError::new(ErrorCode::BadRequest, "the first frame must be a Hello");
            return Stop::Refuse(id, e);
        }
    };
    let identity = Arc::new(identity);
    let in_flight = Arc::new(Semaphore::new(options.max_in_flight));
    let mut tasks = JoinSet::new();
    let mut watches: HashMap<u32, AbortHandle> = HashMap::new();
    // Streams this client opened, by request id; the node link when this
    // is a node serving streams. Dropped with the connection.
    let mut streams: HashMap<u32, ClientStream> = HashMap::new();
    let mut serving: Option<NodeRegistration> = None;
    loop {
        while tasks.try_join_next().is_some() {}
        let (id, request) = match reader.next().await {
            Ok(Some((id, ClientMessage::Request(r)))) => (id, r),
            Ok(Some((id, ClientMessage::Stream(frame)))) => {
                match &serving {
                    Some(link) if link.serve_id == id => {
                        server.streams.relay_from_node(link, frame)
                    }
                    _ => {
                        let end = frame.chunk.is_end();
                        if let Some(stream) = streams.get(&id) {
                            stream.send(frame.chunk);
                        }
                        if end {
                            streams.remove(&id);
                        }
                    }
                }
                continue;
            }
            Ok(Some((id, ClientMessage::Hello(_)))) => {
                let e = ApiError::new(ErrorCode::BadRequest, "a second Hello on one connection");
                return Stop::Refuse(id, e);
            }
            Ok(None) => return Stop::Done,
            Err(stop) => return stop,
        };
        match request {
            Request::Watch {
                kind,
                namespace,
                label_selector,
                node_name,
                from_revision,
            } => {
                let request = WatchRequest {
                    kind,
                    namespace,
                    label_selector,
                    node_name,
                    from_revision,
                };
                watches.retain(|_, h| !h.is_finished());
                if let Some(old) = watches.remove(&id) {
                    old.abort();
                }
                let handle = tasks.spawn(watch_task(
                    Arc::clone(server),
                    Arc::clone(&identity),
                    id,
                    request,
                    out.clone(),
                ));
                watches.insert(id, handle);
            }
            Request::CancelWatch { watch_id } => {
                let response = match watches.remove(&watch_id) {
                    Some(handle) => {
                        handle.abort();
                        Response::WatchCancelled
                    }
                    None => Response::Error(ApiError::new(
                        ErrorCode::NotFound,
                        format!("no watch with request id {watch_id} on this connection"),
                    )),
                };
                let frame = encode(id, &ServerMessage::Response(response), options.max_frame);
                if out.send(frame).await.is_err() {
                    return Stop::Done;
                }
            }
            Request::OpenStream(target) => {
                let response = match server.open_stream(&identity, id, target, out.clone()).await {
                    Ok(stream) => {
                        streams.insert(id, stream);
                        Response::StreamOpened
                    }
                    Err(e) => Response::Error(e),
                };
                let frame = encode(id, &ServerMessage::Response(response), options.max_frame);
                if out.send(frame).await.is_err() {
                    return Stop::Done;
                }
            }
            Request::ServeStreams => {
                let response = match identity.as_ref() {
                    Identity::Node(node) => {
                        serving = Some(server.streams.register_node(node, id, out.clone()));
                        tracing::debug!(%peer, %node, "node serves streams");
                        Response::ServingStreams
                    }
                    other => Response::Error(ApiError::new(
                        ErrorCode::Forbidden,
                        format!("{other} may not serve streams: only a node identity does"),
                    )),
                };
                let frame = encode(id, &ServerMessage::Response(response), options.max_frame);
                if out.send(frame).await.is_err() {
                    return Stop::Done;
                }
            }
            request => {
                let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
                    return Stop::Done;
                };
                let server = Arc::clone(server);
                let identity = Arc::clone(&identity);
                let out = out.clone();
                tasks.spawn(async move {
                    let response = server.handle(&identity, request).await;
                    let max = server.options.max_frame;
                    let _ = out
                        .send(encode(id, &ServerMessage::Response(response), max))
                        .await;
                    drop(permit);
                });
            }
        }
    }
}

fn accept<S: Store>(server: &Apiserver<S>, hello: &Hello) -> Result<(Identity, HelloOk), ApiError> {
    let version = negotiate(hello)?;
    let identity = server.authn.authenticate(&hello.credentials)?;
    let ok = HelloOk {
        version,
        identity: identity.to_string(),
        server: format!("noderun-controlplane/{}", env!("CARGO_PKG_VERSION")),
    };
    Ok((identity, ok))
}

async fn watch_task<S: Store>(
    server: Arc<Apiserver<S>>,
    identity: Arc<Identity>,
    id: u32,
    request: WatchRequest,
    out: mpsc::Sender<Vec<u8>>,
) {
    let max = server.options.max_frame;
    match server.open_watch(&identity, request).await {
        Ok(watcher) => pump(id, watcher, out, server.options.watch_buffer, max).await,
        Err(e) => {
            let _ = out.send(error_frame(id, e, max)).await;
        }
    }
}
