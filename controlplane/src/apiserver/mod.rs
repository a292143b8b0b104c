//! The apiserver: serves the cluster's objects over the binary protocol
//! of `noderun_core::proto` on a Unix socket and on TCP (TLS).
//!
//! Every request goes through the same pipeline, in this order:
//! authentication ([`authn`]: the Hello's bearer token → an
//! [`Identity`]), authorization ([`authz`]), admission ([`admission`]:
//! defaults, server-owned metadata, validation; the namespace must exist),
//! then the store; the store's revision is the resourceVersion and an
//! update is a compare-and-swap on it. Deletion of a pod bound to a node is
//! graceful ([`delete`]). Watches are streamed on the connection that asked
//! for them, each with a bounded queue ([`watch`]). `ctl logs` and `ctl
//! exec` streams are relayed to the pod's node over the node's own
//! connection ([`streams`]).
//!
//! Layout: [`connection`] (one client: handshake, request loop, writer),
//! [`listener`] (Unix, TLS and test-only plaintext listeners), [`pki`]
//! (the cluster CA and server certificate), [`bootstrap`] (first-start
//! tokens and namespaces), [`compactor`] (forgets old history),
//! [`handlers`] (one method per verb).

pub mod admission;
pub mod authn;
pub mod authz;
pub mod bootstrap;
pub mod compactor;
mod connection;
mod delete;
mod errors;
mod handlers;
mod identity;
pub mod ids;
pub mod listener;
pub mod pki;
pub mod streams;
pub mod watch;

pub use authn::{Authenticator, TokenFileError};
pub use identity::{Identity, UnknownIdentity};
pub use listener::{start, Listen, ListenError, RunningServer};

use crate::store::Store;
use noderun_core::proto::DEFAULT_MAX_FRAME;
use std::time::Duration;

/// Limits of the server's connections.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The largest frame accepted or sent.
    pub max_frame: u32,
    /// Live events a watch may have waiting for its connection before it
    /// is told to relist.
    pub watch_buffer: usize,
    /// Requests one connection may have in progress at once.
    pub max_in_flight: usize,
    /// How long a new connection may take to send its Hello.
    pub handshake_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> ServeOptions {
        ServeOptions {
            max_frame: DEFAULT_MAX_FRAME,
            watch_buffer: 1024,
            max_in_flight: 64,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// The apiserver over a store `S`.
#[derive(Debug)]
pub struct Apiserver<S> {
    store: S,
    authn: Authenticator,
    options: ServeOptions,
    /// Nodes' stream links and the streams relayed on them.
    streams: std::sync::Arc<streams::StreamHub>,
}

impl<S: Store> Apiserver<S> {
    /// An apiserver answering with `store`, trusting the tokens of `authn`.
    pub fn new(store: S, authn: Authenticator, mut options: ServeOptions) -> Apiserver<S> {
        options.watch_buffer = options.watch_buffer.max(1);
        options.max_in_flight = options.max_in_flight.max(1);
        Apiserver {
            store,
            authn,
            streams: std::sync::Arc::new(streams::StreamHub::new(options.max_frame)),
            options,
        }
    }

    /// The store behind it.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The connection limits.
    pub fn options(&self) -> &ServeOptions {
        &self.options
    }
}
