//! The messages: a client's handshake and requests, the server's handshake
//! answer, responses and watch events. Each direction has one enum
//! ([`ClientMessage`], [`ServerMessage`]) so a decoder is typed.

use super::stream::{StreamFrame, StreamOpen, StreamTarget};
use super::ApiError;
use crate::model::{Kind, LabelSelector, Object};
use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// What the client proves itself with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub enum Credentials {
    None,
    /// A bearer token (from the tokens file).
    Bearer(String),
}

/// The first frame of every connection, client → server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub struct Hello {
    pub magic: [u8; 4],
    pub min_version: u16,
    pub max_version: u16,
    pub credentials: Credentials,
    /// Free text for logs (`ctl/0.1`, `noderun/node-1`).
    pub client: String,
}

/// The server's answer to a good Hello.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub struct HelloOk {
    /// The version both sides speak from now on.
    pub version: u16,
    /// Who the server authenticated (`admin`, `node:node-1`, `viewer`).
    pub identity: String,
    pub server: String,
}

/// Preconditions of a delete.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub struct Preconditions {
    pub uid: Option<String>,
    pub resource_version: Option<u64>,
}

/// A client's request; answered by one [`Response`] on the same request id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub enum Request {
    Get {
        kind: Kind,
        namespace: String,
        name: String,
    },
    List {
        kind: Kind,
        /// Empty: every namespace.
        namespace: String,
        label_selector: LabelSelector,
        /// Field selector `spec.nodeName=`.
        node_name: Option<String>,
        /// 0: the latest.
        revision: u64,
    },
    Create {
        object: Object,
    },
    /// Compare-and-swap on `metadata.resourceVersion`.
    Update {
        object: Object,
    },
    /// Only `status` changes (the node reporting).
    UpdateStatus {
        object: Object,
    },
    Delete {
        kind: Kind,
        namespace: String,
        name: String,
        preconditions: Preconditions,
        /// None: the object's own grace period; Some(0): at once.
        grace_period_seconds: Option<i64>,
    },
    /// Bind a pod to a node (the scheduler's write).
    Bind {
        namespace: String,
        name: String,
        node_name: String,
        resource_version: u64,
    },
    /// Events after `from_revision` (0: from now) are pushed on this
    /// request's id until cancelled.
    Watch {
        kind: Kind,
        namespace: String,
        label_selector: LabelSelector,
        node_name: Option<String>,
        from_revision: u64,
    },
    CancelWatch {
        watch_id: u32,
    },
    Ping,
    /// A log or exec stream of a pod's container: answered
    /// `StreamOpened`, then [`StreamFrame`]s both ways on this request id.
    OpenStream(StreamTarget),
    /// A node offers to serve streams of its pods: answered
    /// `ServingStreams`, then [`StreamOpen`]s and [`StreamFrame`]s are
    /// pushed on this request id until the connection ends.
    ServeStreams,
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub enum Response {
    Object(Object),
    List {
        items: Vec<Object>,
        revision: u64,
    },
    /// The object as it was when deleted (or marked for deletion).
    Deleted(Object),
    WatchStarted {
        revision: u64,
    },
    WatchCancelled,
    Pong,
    Error(ApiError),
    StreamOpened,
    ServingStreams,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub enum EventType {
    Added,
    Modified,
    Deleted,
    /// The watch fell behind or its revision was compacted: list again.
    Expired,
    /// Progress: nothing matched up to `revision`.
    Bookmark,
}

/// A change pushed on a watch's request id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub struct WatchEvent {
    pub event_type: EventType,
    pub revision: u64,
    /// None for Expired and Bookmark.
    pub object: Option<Object>,
}

/// Everything a client sends.
// Messages live only between decoding and dispatch; boxing the large
// request variant would cost an allocation per request for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub enum ClientMessage {
    Hello(Hello),
    Request(Request),
    /// A piece of an open stream (see `OpenStream`, `ServeStreams`).
    Stream(StreamFrame),
}

/// Everything a server sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(any(test, feature = "arbitrary"), derive(arbitrary::Arbitrary))]
pub enum ServerMessage {
    HelloOk(HelloOk),
    Response(Response),
    Event(WatchEvent),
    /// A stream for the node to serve, on its `ServeStreams` request.
    StreamOpen(StreamOpen),
    /// A piece of an open stream.
    Stream(StreamFrame),
}
