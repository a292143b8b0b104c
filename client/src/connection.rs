//! The client side of one connection: the handshake, then a writer task
//! and a reader task that routes responses to their callers by request id
//! and watch events to their streams.

use super::stream::{Pushed, STREAM_QUEUE};
use super::transport::Stream;
use super::ClientError;
use crate::framing::write_frames;
use noderun_core::proto::{
    encode_frame, ClientMessage, Credentials, FrameDecoder, Hello, HelloOk, Request, Response,
    ServerMessage, StreamFrame, WatchEvent,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Events a watch stream buffers before the reader waits for its consumer
/// (which then holds up the whole connection, and in the end makes the
/// server tell the watch to relist).
pub const WATCH_QUEUE: usize = 1024;

#[derive(Default)]
struct Routes {
    pending: HashMap<u32, oneshot::Sender<Response>>,
    watches: HashMap<u32, mpsc::Sender<WatchEvent>>,
    streams: HashMap<u32, mpsc::Sender<Pushed>>,
    /// The reader has ended: nothing registered now would be answered.
    closed: bool,
}

/// One open connection. Dropping it closes the connection.
pub struct Connection {
    out: mpsc::Sender<Vec<u8>>,
    routes: Arc<Mutex<Routes>>,
    next_id: AtomicU32,
    hello: HelloOk,
    max_frame: u32,
    tasks: [JoinHandle<()>; 2],
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("identity", &self.hello.identity)
            .finish()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn lock(routes: &Mutex<Routes>) -> MutexGuard<'_, Routes> {
    routes.lock().unwrap_or_else(|e| e.into_inner())
}

impl Connection {
    /// Say Hello with `token` over `stream`; on success start the reader
    /// and writer.
    pub async fn open(
        mut stream: Box<dyn Stream>,
        token: &str,
        client: &str,
        max_frame: u32,
    ) -> Result<Connection, ClientError> {
        let hello = ClientMessage::Hello(Hello::new(Credentials::Bearer(token.to_owned()), client));
        let mut buf = Vec::new();
        encode_frame(0, &hello, &mut buf, max_frame)?;
        stream
            .write_all(&buf)
            .await
            .map_err(|_| ClientError::Closed)?;
        let mut decoder = FrameDecoder::new(max_frame);
        let mut chunk = vec![0u8; 16 * 1024];
        let ok = loop {
            if let Some((_, message)) = decoder.next_message::<ServerMessage>()? {
                match message {
                    ServerMessage::HelloOk(ok) => break ok,
                    ServerMessage::Response(Response::Error(e)) => {
                        return Err(ClientError::Refused(e))
                    }
                    _ => {
                        return Err(ClientError::Unexpected {
                            request: "Hello",
                            got: "a message other than HelloOk",
                        })
                    }
                }
            }
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|_| ClientError::Closed)?;
            if n == 0 {
                return Err(ClientError::Closed);
            }
            decoder.extend(&chunk[..n]);
        };
        let (rd, wr) = tokio::io::split(stream);
        let (out, out_rx) = mpsc::channel(256);
        let routes = Arc::new(Mutex::new(Routes::default()));
        let reader = tokio::spawn(read_loop(rd, decoder, Arc::clone(&routes)));
        let writer = tokio::spawn(write_frames(wr, out_rx));
        Ok(Connection {
            out,
            routes,
            next_id: AtomicU32::new(1),
            hello: ok,
            max_frame,
            tasks: [reader, writer],
        })
    }

    /// What the server said in its HelloOk.
    pub fn hello(&self) -> &HelloOk {
        &self.hello
    }

    fn next_id(&self) -> u32 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    async fn send(&self, id: u32, request: Request) -> Result<(), ClientError> {
        let mut buf = Vec::new();
        encode_frame(
            id,
            &ClientMessage::Request(request),
            &mut buf,
            self.max_frame,
        )?;
        self.out.send(buf).await.map_err(|_| ClientError::Closed)
    }

    /// Send `request` and wait for its response.
    pub async fn call(&self, request: Request) -> Result<Response, ClientError> {
        let id = self.next_id();
        let (tx, rx) = oneshot::channel();
        {
            let mut routes = lock(&self.routes);
            if routes.closed {
                return Err(ClientError::Closed);
            }
            routes.pending.insert(id, tx);
        }
        if let Err(e) = self.send(id, request).await {
            lock(&self.routes).pending.remove(&id);
            return Err(e);
        }
        rx.await.map_err(|_| ClientError::Closed)
    }

    /// Open a watch: its first response (WatchStarted or an error) and the
    /// receiver of its events, with the request id that names it.
    pub async fn watch(
        &self,
        request: Request,
    ) -> Result<(u32, Response, mpsc::Receiver<WatchEvent>), ClientError> {
        let id = self.next_id();
        let (tx, rx) = oneshot::channel();
        let (events_tx, events) = mpsc::channel(WATCH_QUEUE);
        {
            let mut routes = lock(&self.routes);
            if routes.closed {
                return Err(ClientError::Closed);
            }
            routes.pending.insert(id, tx);
            routes.watches.insert(id, events_tx);
        }
        let sent = self.send(id, request).await;
        let response = match sent {
            Ok(()) => rx.await.map_err(|_| ClientError::Closed),
            Err(e) => Err(e),
        };
        if !matches!(response, Ok(Response::WatchStarted { .. })) {
            let mut routes = lock(&self.routes);
            routes.pending.remove(&id);
            routes.watches.remove(&id);
        }
        Ok((id, response?, events))
    }

    /// Send a request whose answer is followed by pushed stream messages
    /// (`OpenStream`, `ServeStreams`): its id, its response and the
    /// receiver of what is pushed.
    pub async fn open_pushed(
        &self,
        request: Request,
    ) -> Result<(u32, Response, mpsc::Receiver<Pushed>), ClientError> {
        let id = self.next_id();
        let (tx, rx) = oneshot::channel();
        let (pushed_tx, pushed) = mpsc::channel(STREAM_QUEUE);
        {
            let mut routes = lock(&self.routes);
            if routes.closed {
                return Err(ClientError::Closed);
            }
            routes.pending.insert(id, tx);
            routes.streams.insert(id, pushed_tx);
        }
        let response = match self.send(id, request).await {
            Ok(()) => rx.await.map_err(|_| ClientError::Closed),
            Err(e) => Err(e),
        };
        if !matches!(
            response,
            Ok(Response::StreamOpened | Response::ServingStreams)
        ) {
            let mut routes = lock(&self.routes);
            routes.pending.remove(&id);
            routes.streams.remove(&id);
        }
        Ok((id, response?, pushed))
    }

    /// Send one frame of a stream on request id `id`.
    pub async fn send_stream(&self, id: u32, frame: StreamFrame) -> Result<(), ClientError> {
        let mut buf = Vec::new();
        encode_frame(id, &ClientMessage::Stream(frame), &mut buf, self.max_frame)?;
        self.out.send(buf).await.map_err(|_| ClientError::Closed)
    }

    /// Stop routing what is pushed on `id`.
    pub fn forget_pushed(&self, id: u32) {
        lock(&self.routes).streams.remove(&id);
    }

    /// Stop routing a watch's events (the server is told separately).
    pub fn forget_watch(&self, id: u32) {
        lock(&self.routes).watches.remove(&id);
    }

    /// Queue a CancelWatch without waiting (for drops).
    pub fn cancel_watch_nowait(&self, watch_id: u32) {
        self.forget_watch(watch_id);
        let mut buf = Vec::new();
        let message = ClientMessage::Request(Request::CancelWatch { watch_id });
        if encode_frame(self.next_id(), &message, &mut buf, self.max_frame).is_ok() {
            let _ = self.out.try_send(buf);
        }
    }
}

async fn read_loop(
    mut rd: ReadHalf<Box<dyn Stream>>,
    mut decoder: FrameDecoder,
    routes: Arc<Mutex<Routes>>,
) {
    let mut chunk = vec![0u8; 64 * 1024];
    'read: loop {
        loop {
            let (id, message) = match decoder.next_message::<ServerMessage>() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "bad frame from the apiserver; closing");
                    break 'read;
                }
            };
            match message {
                ServerMessage::Response(response) => {
                    let waiter = lock(&routes).pending.remove(&id);
                    if let Some(tx) = waiter {
                        let _ = tx.send(response);
                    }
                }
                ServerMessage::Event(event) => {
                    let stream = lock(&routes).watches.get(&id).cloned();
                    if let Some(tx) = stream {
                        if tx.send(event).await.is_err() {
                            lock(&routes).watches.remove(&id);
                        }
                    }
                }
                ServerMessage::StreamOpen(open) => push(&routes, id, Pushed::Open(open)).await,
                ServerMessage::Stream(frame) => push(&routes, id, Pushed::Frame(frame)).await,
                ServerMessage::HelloOk(_) => {}
            }
        }
        match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => decoder.extend(&chunk[..n]),
        }
    }
    // Callers waiting on this connection see it closed; later calls fail
    // at once instead of waiting for an answer that cannot come.
    let mut routes = lock(&routes);
    routes.closed = true;
    routes.pending.clear();
    routes.watches.clear();
    routes.streams.clear();
}

/// Hand a pushed stream message to its receiver (waiting while its queue
/// is full); a receiver gone stops the routing.
async fn push(routes: &Mutex<Routes>, id: u32, message: Pushed) {
    let stream = lock(routes).streams.get(&id).cloned();
    if let Some(tx) = stream {
        if tx.send(message).await.is_err() {
            lock(routes).streams.remove(&id);
        }
    }
}
