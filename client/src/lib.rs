//! A client of the apiserver: connect (Unix socket, or TCP with TLS
//! verified against the cluster CA), say Hello with a bearer token, then
//! typed calls. Calls may run concurrently on one [`Client`]; watches are
//! streams on the same connection. Used by `ctl`, the scheduler, the
//! controllers and the node agent; it depends on nothing but the protocol
//! in `noderun-core`, so the node never links the control plane.

mod connection;
mod error;
pub mod framing;
pub mod pem;
pub mod stream;
mod transport;
mod watch;

pub use error::ClientError;
pub use transport::{tls_config, Endpoint};
pub use watch::WatchStream;

use connection::Connection;
use noderun_core::proto::{Preconditions, Request, Response, DEFAULT_MAX_FRAME};
use noderun_core::{Kind, LabelSelector, Object};
use std::sync::Arc;

/// What to list or watch beyond kind and namespace.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub label_selector: LabelSelector,
    /// Only pods bound to this node (`spec.nodeName=`).
    pub node_name: Option<String>,
}

/// How to delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub preconditions: Preconditions,
    /// Remove at once, even a pod running on a node.
    pub force: bool,
    /// The grace period for a pod on a node (its own when `None`).
    pub grace_period_seconds: Option<i64>,
}

/// A connection to the apiserver.
#[derive(Debug, Clone)]
pub struct Client {
    conn: Arc<Connection>,
}

impl Client {
    /// Connect to `endpoint` and authenticate with `token`. `client` names
    /// this program in the server's log (`ctl/0.1`).
    pub async fn connect(
        endpoint: &Endpoint,
        token: &str,
        client: &str,
    ) -> Result<Client, ClientError> {
        let stream = transport::open(endpoint).await?;
        let conn = Connection::open(stream, token, client, DEFAULT_MAX_FRAME).await?;
        Ok(Client {
            conn: Arc::new(conn),
        })
    }

    /// The identity the server authenticated (`admin`, `node:n1`).
    pub fn identity(&self) -> &str {
        &self.conn.hello().identity
    }

    /// Send any request and return the server's answer, errors included.
    pub async fn request(&self, request: Request) -> Result<Response, ClientError> {
        self.conn.call(request).await
    }

    async fn object(&self, request: Request, name: &'static str) -> Result<Object, ClientError> {
        match self.request(request).await? {
            Response::Object(o) | Response::Deleted(o) => Ok(o),
            other => Err(unexpected(name, other)),
        }
    }

    pub async fn get(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> Result<Object, ClientError> {
        let request = Request::Get {
            kind,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        };
        self.object(request, "get").await
    }

    /// Objects of `kind` in `namespace` (`None`: all), and the revision
    /// they were read at (a watch from it continues the list).
    pub async fn list(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        options: &ListOptions,
    ) -> Result<(Vec<Object>, u64), ClientError> {
        let request = Request::List {
            kind,
            namespace: namespace.unwrap_or_default().to_owned(),
            label_selector: options.label_selector.clone(),
            node_name: options.node_name.clone(),
            revision: 0,
        };
        match self.request(request).await? {
            Response::List { items, revision } => Ok((items, revision)),
            other => Err(unexpected("list", other)),
        }
    }

    pub async fn create(&self, object: Object) -> Result<Object, ClientError> {
        self.object(Request::Create { object }, "create").await
    }

    /// Replace an object; fails with Conflict unless its resourceVersion is
    /// still the stored one.
    pub async fn update(&self, object: Object) -> Result<Object, ClientError> {
        self.object(Request::Update { object }, "update").await
    }

    /// Replace only the status (compare-and-swap like update).
    pub async fn update_status(&self, object: Object) -> Result<Object, ClientError> {
        self.object(Request::UpdateStatus { object }, "update status")
            .await
    }

    /// Delete; returns the object as deleted, or as marked for deletion
    /// when a node has to stop it first.
    pub async fn delete(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Object, ClientError> {
        let grace = if options.force {
            Some(0)
        } else {
            options.grace_period_seconds
        };
        let request = Request::Delete {
            kind,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            preconditions: options.preconditions.clone(),
            grace_period_seconds: grace,
        };
        self.object(request, "delete").await
    }

    /// Bind an unbound pod to `node` (0: whatever its version is now).
    pub async fn bind(
        &self,
        namespace: &str,
        name: &str,
        node: &str,
        resource_version: u64,
    ) -> Result<Object, ClientError> {
        let request = Request::Bind {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            node_name: node.to_owned(),
            resource_version,
        };
        self.object(request, "bind").await
    }

    /// Changes after `from_revision` (0: from now).
    pub async fn watch(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        options: &ListOptions,
        from_revision: u64,
    ) -> Result<WatchStream, ClientError> {
        let request = Request::Watch {
            kind,
            namespace: namespace.unwrap_or_default().to_owned(),
            label_selector: options.label_selector.clone(),
            node_name: options.node_name.clone(),
            from_revision,
        };
        let (id, response, events) = self.conn.watch(request).await?;
        match response {
            Response::WatchStarted { revision } => Ok(WatchStream::new(
                Arc::clone(&self.conn),
                id,
                revision,
                events,
            )),
            other => Err(unexpected("watch", other)),
        }
    }

    /// Open a `ctl logs`/`ctl exec` stream; its frames come on the
    /// returned [`stream::StreamHandle`].
    pub async fn open_stream(
        &self,
        target: noderun_core::proto::StreamTarget,
    ) -> Result<stream::StreamHandle, ClientError> {
        stream::open(&self.conn, Request::OpenStream(target), "open stream").await
    }

    /// Offer to serve the streams of this node's pods (a node identity):
    /// the handle receives each [`stream::Pushed::Open`] and the frames.
    pub async fn serve_streams(&self) -> Result<stream::StreamHandle, ClientError> {
        stream::open(&self.conn, Request::ServeStreams, "serve streams").await
    }

    pub async fn ping(&self) -> Result<(), ClientError> {
        match self.request(Request::Ping).await? {
            Response::Pong => Ok(()),
            other => Err(unexpected("ping", other)),
        }
    }
}

fn unexpected(request: &'static str, response: Response) -> ClientError {
    let got = match response {
        Response::Error(e) => return ClientError::Api(e),
        Response::Object(_) => "an object",
        Response::List { .. } => "a list",
        Response::Deleted(_) => "a deleted object",
        Response::WatchStarted { .. } => "a watch start",
        Response::WatchCancelled => "a watch cancellation",
        Response::Pong => "pong",
        Response::StreamOpened => "a stream opening",
        Response::ServingStreams => "a stream service start",
    };
    ClientError::Unexpected { request, got }
}
