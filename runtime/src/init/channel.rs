//! The channel between the runtime and the container's init while the
//! container is being created: small typed messages over a SOCK_SEQPACKET
//! socket pair (one message per packet). The init's end is close-on-exec,
//! so end-of-file after `Ready` means the init has exec'd or died.

use std::io;
use std::os::fd::OwnedFd;

/// One step of the setup protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Runtime → init: the cgroup and id maps are in place; here is your pid
    /// as the runtime sees it (for hooks' state).
    Go { host_pid: i32 },
    /// Init → runtime: namespaces are joined; run createRuntime hooks now.
    NamespacesReady,
    /// Runtime → init: the runtime's hooks are done.
    HooksDone,
    /// Init → runtime: everything is set up; init now waits for `start`.
    Ready,
    /// Init → runtime: setup failed; the text is the error chain.
    Failed(String),
}

const MAX_MESSAGE: usize = 64 * 1024;

impl Message {
    fn encode(&self) -> Vec<u8> {
        let (tag, body): (u8, Vec<u8>) = match self {
            Message::Go { host_pid } => (1, host_pid.to_le_bytes().to_vec()),
            Message::NamespacesReady => (2, Vec::new()),
            Message::HooksDone => (3, Vec::new()),
            Message::Ready => (4, Vec::new()),
            Message::Failed(text) => (
                5,
                text.as_bytes()[..text.len().min(MAX_MESSAGE - 1)].to_vec(),
            ),
        };
        let mut out = Vec::with_capacity(1 + body.len());
        out.push(tag);
        out.extend(body);
        out
    }

    fn decode(packet: &[u8]) -> io::Result<Message> {
        let bad = || {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad init message {packet:?}"),
            )
        };
        let (&tag, body) = packet.split_first().ok_or_else(bad)?;
        Ok(match tag {
            1 => Message::Go {
                host_pid: i32::from_le_bytes(body.try_into().map_err(|_| bad())?),
            },
            2 => Message::NamespacesReady,
            3 => Message::HooksDone,
            4 => Message::Ready,
            5 => Message::Failed(String::from_utf8_lossy(body).into_owned()),
            _ => return Err(bad()),
        })
    }
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

impl Channel {
    pub fn new(fd: OwnedFd) -> Channel {
        Channel { fd }
    }

    pub fn send(&self, m: &Message) -> io::Result<()> {
        let bytes = m.encode();
        let n = nix::unistd::write(&self.fd, &bytes).map_err(io::Error::from)?;
        if n != bytes.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short write on init channel",
            ));
        }
        Ok(())
    }

    /// The next message; `None` at end of file (the peer closed or exec'd).
    pub fn recv(&self) -> io::Result<Option<Message>> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        loop {
            match nix::unistd::read(&self.fd, &mut buf) {
                Ok(0) => return Ok(None),
                Ok(n) => return Message::decode(&buf[..n]).map(Some),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_cross_the_pair_intact() {
        let (a, b) = crate::sys::spawn::seqpacket_pair().unwrap();
        let (a, b) = (Channel::new(a), Channel::new(b));
        let all = [
            Message::Go { host_pid: 4242 },
            Message::NamespacesReady,
            Message::HooksDone,
            Message::Ready,
            Message::Failed("mount /proc: EPERM".into()),
        ];
        for m in &all {
            a.send(m).unwrap();
            assert_eq!(b.recv().unwrap().as_ref(), Some(m));
        }
        drop(a);
        assert_eq!(b.recv().unwrap(), None);
        assert!(Message::decode(&[9]).is_err());
        assert!(Message::decode(&[]).is_err());
        assert!(Message::decode(&[1, 2]).is_err());
    }
}
