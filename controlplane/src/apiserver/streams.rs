//! The relay of `ctl logs` and `ctl exec` streams (see
//! `noderun_core::proto` `stream.rs`): each node keeps a `ServeStreams`
//! request open on its connection ([`StreamHub::register_node`]); a
//! client's `OpenStream`, once authorized and resolved to a pod's
//! container ([`Apiserver::open_stream`]), gets a stream number on that
//! node's link and a [`StreamOpen`] pushed to the node; from then on the
//! hub passes frames between the two connections' writers.
//!
//! Nothing waits here: a frame goes into the other connection's writer
//! queue with `try_send`. The peers keep to the stream window, which keeps
//! each stream far below a writer queue; one whose frames do not fit (a
//! peer ignoring the window, or a connection that stopped reading) is
//! closed with an error on both sides, and every other stream goes on.

use super::authz::{authorize, check_pod_binding, Target, Verb};
use super::connection::encode;
use super::errors::from_store;
use super::handlers::Doing;
use super::{Apiserver, Identity};
use crate::store::Store;
use noderun_core::proto::{
    ApiError, ErrorCode, ServerMessage, StreamChunk, StreamFrame, StreamKind, StreamOpen,
    StreamTarget,
};
use noderun_core::{Kind, Object};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc;

/// A connection's writer queue (encoded frames).
pub type Writer = mpsc::Sender<Vec<u8>>;

/// The client's end of a relayed stream.
#[derive(Debug, Clone)]
struct ClientEnd {
    request_id: u32,
    out: Writer,
}

/// One node's `ServeStreams` request and the streams open on it.
#[derive(Debug)]
struct NodeLink {
    link: u64,
    serve_id: u32,
    out: Writer,
    streams: HashMap<u32, ClientEnd>,
}

#[derive(Debug, Default)]
struct HubState {
    nodes: HashMap<String, NodeLink>,
    next_stream: u32,
    next_link: u64,
}

/// Every node link and relayed stream of the apiserver.
#[derive(Debug)]
pub struct StreamHub {
    state: Mutex<HubState>,
    max_frame: u32,
}

/// A node's registration; dropping it (the connection ended) ends the
/// node's streams with an error.
#[derive(Debug)]
pub struct NodeRegistration {
    hub: Arc<StreamHub>,
    node: String,
    link: u64,
    pub serve_id: u32,
}

/// A client's open stream; dropping it (the connection ended) tells the
/// node to stop.
#[derive(Debug)]
pub struct ClientStream {
    hub: Arc<StreamHub>,
    node: String,
    stream: u32,
}

impl StreamHub {
    pub fn new(max_frame: u32) -> StreamHub {
        StreamHub {
            state: Mutex::new(HubState::default()),
            max_frame,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn frame(&self, id: u32, message: &ServerMessage) -> Vec<u8> {
        encode(id, message, self.max_frame)
    }

    fn to_client(&self, client: &ClientEnd, chunk: StreamChunk) -> bool {
        let frame = StreamFrame {
            stream: client.request_id,
            chunk,
        };
        let bytes = self.frame(client.request_id, &ServerMessage::Stream(frame));
        client.out.try_send(bytes).is_ok()
    }

    fn to_node(&self, link: &NodeLink, stream: u32, chunk: StreamChunk) -> bool {
        let bytes = self.frame(
            link.serve_id,
            &ServerMessage::Stream(StreamFrame { stream, chunk }),
        );
        link.out.try_send(bytes).is_ok()
    }

    /// Whether node `node` has a link (for tests and errors).
    pub fn is_connected(&self, node: &str) -> bool {
        self.lock().nodes.contains_key(node)
    }

    /// Node `node` serves streams on request `serve_id` of the connection
    /// whose writer is `out`. A link it had before (an old connection) is
    /// replaced and that link's streams end.
    pub fn register_node(
        self: &Arc<Self>,
        node: &str,
        serve_id: u32,
        out: Writer,
    ) -> NodeRegistration {
        let mut state = self.lock();
        state.next_link += 1;
        let link = state.next_link;
        let old = state.nodes.insert(
            node.to_owned(),
            NodeLink {
                link,
                serve_id,
                out,
                streams: HashMap::new(),
            },
        );
        drop(state);
        if let Some(old) = old {
            self.end_all(node, old, "its connection was replaced by a new one");
        }
        NodeRegistration {
            hub: Arc::clone(self),
            node: node.to_owned(),
            link,
            serve_id,
        }
    }

    fn end_all(&self, node: &str, link: NodeLink, why: &str) {
        for client in link.streams.values() {
            let e = ApiError::new(
                ErrorCode::Unavailable,
                format!("node {node} stopped serving the stream: {why}"),
            );
            self.to_client(client, StreamChunk::Error(e));
        }
    }

    /// Open a stream to `open.uid`'s node for the client: `open.stream` is
    /// set here.
    fn open(
        self: &Arc<Self>,
        node: &str,
        mut open: StreamOpen,
        request_id: u32,
        out: Writer,
    ) -> Result<ClientStream, ApiError> {
        let mut state = self.lock();
        state.next_stream = state.next_stream.wrapping_add(1);
        let stream = state.next_stream;
        let Some(link) = state.nodes.get_mut(node) else {
            return Err(ApiError::new(
                ErrorCode::Unavailable,
                format!(
                    "node {node} of pod {}/{} is not connected to the apiserver; \
                     check that noderun agent runs there",
                    open.namespace, open.pod
                ),
            ));
        };
        open.stream = stream;
        let bytes = self.frame(link.serve_id, &ServerMessage::StreamOpen(open));
        if link.out.try_send(bytes).is_err() {
            return Err(ApiError::new(
                ErrorCode::Unavailable,
                format!("node {node} is not keeping up with its connection; try again"),
            ));
        }
        link.streams.insert(stream, ClientEnd { request_id, out });
        Ok(ClientStream {
            hub: Arc::clone(self),
            node: node.to_owned(),
            stream,
        })
    }

    /// A frame from node `node`'s link `link`: to its client.
    pub fn relay_from_node(&self, registration: &NodeRegistration, frame: StreamFrame) {
        let mut state = self.lock();
        let Some(link) = state
            .nodes
            .get_mut(&registration.node)
            .filter(|l| l.link == registration.link)
        else {
            return;
        };
        let Some(client) = link.streams.get(&frame.stream).cloned() else {
            // Ended here already (the client left): the node learns it
            // from the Close sent then.
            return;
        };
        let end = frame.chunk.is_end();
        let delivered = self.to_client(&client, frame.chunk);
        if end || !delivered {
            link.streams.remove(&frame.stream);
        }
        if !delivered {
            self.to_node(link, frame.stream, StreamChunk::Close);
        }
    }

    /// A chunk from the client of `stream`: to its node.
    fn relay_from_client(&self, stream: &ClientStream, chunk: StreamChunk) {
        let mut state = self.lock();
        let Some(link) = state.nodes.get_mut(&stream.node) else {
            return;
        };
        let Some(client) = link.streams.get(&stream.stream).cloned() else {
            return;
        };
        let end = chunk.is_end();
        let delivered = self.to_node(link, stream.stream, chunk);
        if end || !delivered {
            link.streams.remove(&stream.stream);
        }
        if !delivered {
            let e = ApiError::new(
                ErrorCode::Unavailable,
                format!(
                    "node {} is not keeping up with the stream; closed",
                    stream.node
                ),
            );
            self.to_client(&client, StreamChunk::Error(e));
            self.to_node(link, stream.stream, StreamChunk::Close);
        }
    }
}

impl ClientStream {
    /// Pass a chunk the client sent on to the node.
    pub fn send(&self, chunk: StreamChunk) {
        self.hub.relay_from_client(self, chunk);
    }
}

impl Drop for ClientStream {
    fn drop(&mut self) {
        let mut state = self.hub.lock();
        if let Some(link) = state.nodes.get_mut(&self.node) {
            if link.streams.remove(&self.stream).is_some() {
                self.hub.to_node(link, self.stream, StreamChunk::Close);
            }
        }
    }
}

impl Drop for NodeRegistration {
    fn drop(&mut self) {
        let mut state = self.hub.lock();
        let ours = state
            .nodes
            .get(&self.node)
            .is_some_and(|l| l.link == self.link);
        if ours {
            let link = state.nodes.remove(&self.node).expect("checked above");
            drop(state);
            self.hub
                .end_all(&self.node, link, "its connection to the apiserver ended");
        }
    }
}

impl<S: Store> Apiserver<S> {
    /// `OpenStream` from `identity`: authorize (`pods/log`, `pods/exec`; a
    /// node only in its own pods), read the pod, resolve its container
    /// and node, and open the stream on the node's link. Frames for the
    /// client go to `out` on `request_id`.
    pub(super) async fn open_stream(
        &self,
        identity: &Identity,
        request_id: u32,
        target: StreamTarget,
        out: Writer,
    ) -> Result<ClientStream, ApiError> {
        let verb = match target.kind {
            StreamKind::Logs { .. } => Verb::Logs,
            StreamKind::Exec { .. } => Verb::Exec,
        };
        let doing = Doing {
            verb,
            target: Target {
                kind: Kind::Pod,
                namespace: &target.namespace,
                name: &target.pod,
                node_name: None,
            },
            identity,
        };
        let grant = authorize(identity, verb, &doing.target)?;
        let (object, _) = self
            .store
            .get(Kind::Pod, &target.namespace, &target.pod)
            .await
            .map_err(|e| from_store(e, &doing))?;
        check_pod_binding(identity, verb, &grant, &object)?;
        let Object::Pod(pod) = object else {
            return Err(ApiError::new(
                ErrorCode::Internal,
                "a pod key holds another kind",
            ));
        };
        let name = format!("{}/{}", target.namespace, target.pod);
        if let StreamKind::Exec { command, .. } = &target.kind {
            if command.is_empty() {
                return Err(ApiError::new(
                    ErrorCode::BadRequest,
                    format!("exec in pod {name}: no command given; put it after --"),
                ));
            }
        }
        let container = resolve_container(&pod, &name, &target.container)?;
        if pod.spec.node_name.is_empty() {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                format!(
                    "pod {name} is not scheduled to a node yet; wait until it is (ctl get pod {})",
                    target.pod
                ),
            ));
        }
        let open = StreamOpen {
            stream: 0,
            namespace: target.namespace.clone(),
            pod: target.pod.clone(),
            uid: pod.metadata.uid.clone(),
            container,
            kind: target.kind,
        };
        self.streams
            .open(&pod.spec.node_name, open, request_id, out)
    }
}

/// The container a stream is for: the named one, or the pod's only one.
fn resolve_container(
    pod: &noderun_core::Pod,
    name: &str,
    wanted: &str,
) -> Result<String, ApiError> {
    let names: Vec<&str> = pod
        .spec
        .init_containers
        .iter()
        .chain(&pod.spec.containers)
        .map(|c| c.name.as_str())
        .collect();
    let app: Vec<&str> = pod
        .spec
        .containers
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    match wanted {
        "" if app.len() == 1 => Ok(app[0].to_owned()),
        "" => Err(ApiError::new(
            ErrorCode::BadRequest,
            format!(
                "a container name must be given for pod {name} with -c, one of: {}",
                app.join(" ")
            ),
        )),
        c if names.contains(&c) => Ok(c.to_owned()),
        c => Err(ApiError::new(
            ErrorCode::NotFound,
            format!(
                "container {c} is not in pod {name}; its containers: {}",
                names.join(" ")
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use noderun_core::{Container, Pod};

    fn pod(containers: &[&str]) -> Pod {
        let mut p = Pod::default();
        p.spec.containers = containers
            .iter()
            .map(|n| Container {
                name: (*n).into(),
                ..Container::default()
            })
            .collect();
        p
    }

    #[test]
    fn the_container_is_the_named_one_or_the_only_one() {
        assert_eq!(resolve_container(&pod(&["a"]), "d/p", "").unwrap(), "a");
        assert_eq!(
            resolve_container(&pod(&["a", "b"]), "d/p", "b").unwrap(),
            "b"
        );
        let e = resolve_container(&pod(&["a", "b"]), "d/p", "").unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(e.message.contains("-c, one of: a b"), "{e}");
        let e = resolve_container(&pod(&["a"]), "d/p", "z").unwrap_err();
        assert_eq!(e.code, ErrorCode::NotFound);
        assert!(e.message.contains("container z is not in pod d/p"), "{e}");
    }

    fn decode(bytes: &[u8]) -> (u32, ServerMessage) {
        let mut d = noderun_core::proto::FrameDecoder::default();
        d.extend(bytes);
        d.next_message().unwrap().unwrap()
    }

    /// Container c of pod d/p (uid u).
    fn open_of(kind: StreamKind) -> StreamOpen {
        StreamOpen {
            stream: 0,
            namespace: "d".into(),
            pod: "p".into(),
            uid: "u".into(),
            container: "c".into(),
            kind,
        }
    }

    #[tokio::test]
    async fn frames_pass_between_client_and_node_and_end_cleanly() {
        let hub = Arc::new(StreamHub::new(1 << 20));
        let (node_out, mut node_rx) = mpsc::channel(8);
        let (client_out, mut client_rx) = mpsc::channel(8);
        let open = open_of(StreamKind::Logs {
            follow: false,
            tail_lines: None,
            previous: false,
        });
        let refused = hub
            .open("n1", open.clone(), 5, client_out.clone())
            .unwrap_err();
        assert_eq!(refused.code, ErrorCode::Unavailable);
        assert!(
            refused
                .message
                .contains("node n1 of pod d/p is not connected"),
            "{refused}"
        );

        let registration = hub.register_node("n1", 77, node_out);
        let stream = hub.open("n1", open, 5, client_out).unwrap();
        let (id, pushed) = decode(&node_rx.recv().await.unwrap());
        let ServerMessage::StreamOpen(pushed) = pushed else {
            panic!("{pushed:?}")
        };
        assert_eq!((id, pushed.container.as_str()), (77, "c"));

        stream.send(StreamChunk::Ack(10));
        let (id, got) = decode(&node_rx.recv().await.unwrap());
        assert_eq!(
            (id, got),
            (
                77,
                ServerMessage::Stream(StreamFrame {
                    stream: pushed.stream,
                    chunk: StreamChunk::Ack(10)
                })
            )
        );
        for chunk in [StreamChunk::Stdout(b"hi\n".to_vec()), StreamChunk::Exit(0)] {
            hub.relay_from_node(
                &registration,
                StreamFrame {
                    stream: pushed.stream,
                    chunk: chunk.clone(),
                },
            );
            let (id, got) = decode(&client_rx.recv().await.unwrap());
            assert_eq!(
                (id, got),
                (5, ServerMessage::Stream(StreamFrame { stream: 5, chunk }))
            );
        }
        // Ended: later frames of that stream go nowhere, and dropping the
        // client's end sends no Close.
        hub.relay_from_node(
            &registration,
            StreamFrame {
                stream: pushed.stream,
                chunk: StreamChunk::Stdout(vec![1]),
            },
        );
        drop(stream);
        assert!(client_rx.try_recv().is_err() && node_rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_node_leaving_or_a_full_queue_ends_the_stream_with_an_error() {
        let hub = Arc::new(StreamHub::new(1 << 20));
        let (node_out, mut node_rx) = mpsc::channel(8);
        let registration = hub.register_node("n1", 1, node_out);
        let open = open_of(StreamKind::Exec {
            command: vec!["sh".into()],
            stdin: true,
            tty: false,
        });
        // A client whose queue holds one frame.
        let (client_out, mut client_rx) = mpsc::channel(1);
        let _stream = hub.open("n1", open.clone(), 9, client_out).unwrap();
        let (_, pushed) = decode(&node_rx.recv().await.unwrap());
        let ServerMessage::StreamOpen(pushed) = pushed else {
            panic!()
        };
        let out = |n: u8| StreamFrame {
            stream: pushed.stream,
            chunk: StreamChunk::Stdout(vec![n]),
        };
        hub.relay_from_node(&registration, out(1));
        hub.relay_from_node(&registration, out(2));
        // The second did not fit: the node is told to stop.
        let (_, close) = decode(&node_rx.recv().await.unwrap());
        assert_eq!(
            close,
            ServerMessage::Stream(StreamFrame {
                stream: pushed.stream,
                chunk: StreamChunk::Close
            })
        );
        let _ = client_rx.recv().await;

        let (client_out, mut client_rx) = mpsc::channel(8);
        let _second = hub.open("n1", open, 10, client_out).unwrap();
        drop(registration);
        let (id, got) = decode(&client_rx.recv().await.unwrap());
        let ServerMessage::Stream(StreamFrame {
            chunk: StreamChunk::Error(e),
            ..
        }) = got
        else {
            panic!("{got:?}")
        };
        assert_eq!(id, 10);
        assert!(e.message.contains("node n1 stopped serving"), "{e}");
        assert!(!hub.is_connected("n1"));
    }
}
