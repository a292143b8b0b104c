//! [`Binder`]: the scheduler's writes, many in flight at once. Each bind
//! (and each PodScheduled status write) is a task of its own on one of
//! several connections, taken in turn; its outcome comes back to the loop
//! over a channel. The loop never waits for a write: it goes on
//! scheduling the next pods, each already accounted on its chosen node.

use crate::client::{Client, ClientError};
use noderun_core::proto::ErrorCode;
use noderun_core::{Object, Pod};
use tokio::sync::mpsc;

/// How a write ended.
#[derive(Debug)]
pub(super) enum Outcome {
    /// A bind of the pod `key` to `node`; the pod as bound on success.
    Bind {
        key: String,
        node: String,
        result: Result<Box<Pod>, WriteFailure>,
    },
    /// A status write of the pod `key`; the pod as written on success.
    Status {
        key: String,
        result: Result<Box<Pod>, WriteFailure>,
    },
}

/// Why a write failed, as far as the loop cares.
#[derive(Debug)]
pub(super) enum WriteFailure {
    /// The pod changed (or was bound, or is being deleted): retry later.
    Conflict(String),
    /// The pod is gone.
    NotFound,
    /// Anything else (the connection, a refusal); retry later.
    Other(ClientError),
}

impl From<ClientError> for WriteFailure {
    fn from(e: ClientError) -> WriteFailure {
        match e.code() {
            Some(ErrorCode::Conflict) => WriteFailure::Conflict(e.to_string()),
            Some(ErrorCode::NotFound) => WriteFailure::NotFound,
            _ => WriteFailure::Other(e),
        }
    }
}

/// Connections to write on, and where outcomes go.
#[derive(Debug)]
pub(super) struct Binder {
    clients: Vec<Client>,
    next: usize,
    outcomes: mpsc::UnboundedSender<Outcome>,
}

impl Binder {
    /// `clients` must not be empty.
    pub fn new(clients: Vec<Client>, outcomes: mpsc::UnboundedSender<Outcome>) -> Binder {
        assert!(!clients.is_empty(), "the binder needs a connection");
        Binder {
            clients,
            next: 0,
            outcomes,
        }
    }

    fn client(&mut self) -> Client {
        self.next = (self.next + 1) % self.clients.len();
        self.clients[self.next].clone()
    }

    /// Bind `namespace/name` at `resource_version` to `node`.
    pub fn bind(&mut self, key: String, resource_version: u64, node: String) {
        let client = self.client();
        let outcomes = self.outcomes.clone();
        tokio::spawn(async move {
            let (namespace, name) = split_key(&key);
            let answer = client.bind(namespace, name, &node, resource_version).await;
            let result = written_pod(answer, "bind");
            let _ = outcomes.send(Outcome::Bind { key, node, result });
        });
    }

    /// Write `pod`'s status (compare-and-swap on its resourceVersion).
    pub fn write_status(&mut self, key: String, pod: Pod) {
        let client = self.client();
        let outcomes = self.outcomes.clone();
        tokio::spawn(async move {
            let answer = client.update_status(Object::Pod(pod)).await;
            let result = written_pod(answer, "update status");
            let _ = outcomes.send(Outcome::Status { key, result });
        });
    }
}

/// The pod a write answered with.
fn written_pod(
    answer: Result<Object, ClientError>,
    request: &'static str,
) -> Result<Box<Pod>, WriteFailure> {
    match answer {
        Ok(Object::Pod(pod)) => Ok(Box::new(pod)),
        Ok(_) => Err(WriteFailure::Other(ClientError::Unexpected {
            request,
            got: "an object other than a pod",
        })),
        Err(e) => Err(e.into()),
    }
}

/// `namespace/name` → `(namespace, name)` (a namespace has no `/`).
pub(super) fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

/// The key of a pod.
pub(super) fn pod_key(pod: &Pod) -> String {
    let meta = &pod.metadata;
    format!("{}/{}", meta.namespace, meta.name)
}
