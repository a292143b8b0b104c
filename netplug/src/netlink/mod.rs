//! A synchronous rtnetlink client: one `NETLINK_ROUTE` socket, bound to the
//! network namespace it was opened in, with named operations on links
//! ([`link`]), addresses ([`addr`]) and routes ([`route`]). Messages are
//! built and parsed by `netlink-packet-route`; this module only sends a
//! request and reads its answer (an ack, an error, or a dump). No runtime,
//! no background task: a CNI ADD is a handful of round trips on one socket.
//!
//! Errors carry the operation and its target ("create veth nr0123456789"),
//! and the kernel's errno, which callers inspect through
//! [`NetlinkError::errno`] for the few answers that are not failures
//! (`EEXIST` on an idempotent create, `ENODEV` on a delete).

pub mod addr;
pub mod link;
pub mod route;

pub use addr::Address;
pub use link::{Link, VethSpec};
pub use route::Route;

use crate::netns::{Netns, NetnsError};
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::errno::Errno;

/// Large enough for any datagram the kernel sends on a route socket (dump
/// parts are at most 32 KiB); a larger one is reported, never cut.
const RECV_BUFFER: usize = 64 * 1024;

/// What went wrong talking netlink, and on what.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("opening a netlink route socket: {source}")]
    Socket {
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("netlink {op} {target}: {errno}")]
    Kernel {
        op: &'static str,
        target: String,
        errno: Errno,
    },
    #[error("netlink {op} {target}: {source}")]
    Io {
        op: &'static str,
        target: String,
        #[source]
        source: std::io::Error,
    },
    #[error("netlink {op} {target}: unreadable answer: {reason}")]
    Decode {
        op: &'static str,
        target: String,
        reason: String,
    },
}

impl NetlinkError {
    /// The kernel's errno, when the kernel refused the request.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            NetlinkError::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}

/// What a request is, for error messages: the operation and its target.
#[derive(Clone, Copy)]
pub(crate) struct What<'a> {
    pub op: &'static str,
    pub target: &'a dyn std::fmt::Display,
}

impl What<'_> {
    fn kernel(&self, errno: Errno) -> NetlinkError {
        NetlinkError::Kernel {
            op: self.op,
            target: self.target.to_string(),
            errno,
        }
    }

    fn io(&self, source: std::io::Error) -> NetlinkError {
        NetlinkError::Io {
            op: self.op,
            target: self.target.to_string(),
            source,
        }
    }

    fn decode(&self, reason: impl std::fmt::Display) -> NetlinkError {
        NetlinkError::Decode {
            op: self.op,
            target: self.target.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// A route netlink socket in one network namespace.
#[derive(Debug)]
pub struct Netlink {
    socket: Socket,
    sequence: u32,
    recv: Vec<u8>,
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> Result<Netlink, NetlinkError> {
        let socket_error = |source| NetlinkError::Socket { source };
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(socket_error)?;
        socket.bind_auto().map_err(socket_error)?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(socket_error)?;
        // Acks then carry only the error code, not a copy of the request.
        socket.set_cap_ack(true).map_err(socket_error)?;
        Ok(Netlink {
            socket,
            sequence: 0,
            recv: Vec::with_capacity(RECV_BUFFER),
        })
    }

    /// A socket in `netns`, opened while the calling thread is briefly in
    /// it ([`Netns::enter`]); the socket stays in that namespace whichever
    /// thread uses it afterwards.
    pub fn open_in(netns: &Netns) -> Result<Netlink, NetlinkError> {
        netns.enter(Netlink::open)?
    }

    /// Send `message` and wait for the kernel's ack.
    pub(crate) fn execute(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
        what: What<'_>,
    ) -> Result<(), NetlinkError> {
        self.exchange(message, flags | NLM_F_ACK, what).map(drop)
    }

    /// Send a get request for one object and return the answer.
    pub(crate) fn get(
        &mut self,
        message: RouteNetlinkMessage,
        what: What<'_>,
    ) -> Result<Option<RouteNetlinkMessage>, NetlinkError> {
        Ok(self.exchange(message, 0, what)?.pop())
    }

    /// Send a dump request and return every object of the answer.
    pub(crate) fn dump(
        &mut self,
        message: RouteNetlinkMessage,
        what: What<'_>,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        self.exchange(message, NLM_F_DUMP, what)
    }

    /// Send one request and read until its answer is complete: an ack or
    /// an error for a request, the done message for a dump, or the single
    /// object a get returns.
    fn exchange(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
        what: What<'_>,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
        packet.finalize();
        let mut out = vec![0; packet.buffer_len()];
        packet.serialize(&mut out);
        self.socket.send(&out, 0).map_err(|e| what.io(e))?;

        let single_answer = flags & (NLM_F_ACK | NLM_F_DUMP) == 0;
        let mut answers = Vec::new();
        loop {
            if self.receive(&mut answers, what)? || (single_answer && !answers.is_empty()) {
                return Ok(answers);
            }
        }
    }

    /// Read one datagram and collect the objects that answer the current
    /// request; true once the answer is complete.
    fn receive(
        &mut self,
        answers: &mut Vec<RouteNetlinkMessage>,
        what: What<'_>,
    ) -> Result<bool, NetlinkError> {
        self.recv.clear();
        // MSG_TRUNC: the kernel returns the datagram's real size, so a
        // datagram larger than the buffer is seen instead of cut.
        let size = self
            .socket
            .recv(&mut self.recv, nix::libc::MSG_TRUNC)
            .map_err(|e| what.io(e))?;
        if size > self.recv.len() {
            return Err(what.decode(format!("a {size}-byte datagram overflowed the buffer")));
        }
        let mut offset = 0;
        while offset < self.recv.len() {
            let bytes = &self.recv[offset..];
            let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(bytes)
                .map_err(|e| what.decode(e))?;
            let length = reply.header.length as usize;
            if length == 0 {
                return Err(what.decode("a message of length zero"));
            }
            offset += length;
            if reply.header.sequence_number != self.sequence {
                continue;
            }
            match reply.payload {
                NetlinkPayload::Error(e) if e.code.is_some() => {
                    return Err(what.kernel(Errno::from_raw(-e.raw_code())));
                }
                NetlinkPayload::Error(_) | NetlinkPayload::Done(_) => return Ok(true),
                NetlinkPayload::InnerMessage(inner) => answers.push(inner),
                _ => {}
            }
        }
        Ok(false)
    }
}
