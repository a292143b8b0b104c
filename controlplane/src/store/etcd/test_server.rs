//! [`EtcdServer`]: Debian's etcd (`/usr/bin/etcd`) started on free
//! 127.0.0.1 ports with its data in a temp dir, for one test. The process
//! is killed by its pid and the dir removed on drop, so a failing test
//! leaves neither; it also dies with the test's thread if the test binary
//! itself is killed. A missing etcd fails the test (CI installs it with
//! `scripts/test.sh`), it is never skipped.

use super::{EtcdOptions, EtcdStore};
use noderun_testkit::{ChildGuard, TempDir};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ETCD: &str = "/usr/bin/etcd";
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running single-member etcd; dropped: killed, then its dir removed.
#[derive(Debug)]
pub struct EtcdServer {
    // Fields drop in order: the process goes before its directory.
    child: ChildGuard,
    _dir: TempDir,
    endpoint: String,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free 127.0.0.1 port");
    listener.local_addr().expect("local address").port()
}

impl EtcdServer {
    /// Start an etcd named after `test` and wait until it accepts
    /// connections (retrying with other ports if one was taken meanwhile).
    pub fn start(test: &str) -> EtcdServer {
        assert!(
            Path::new(ETCD).exists(),
            "{ETCD} is missing: install Debian's etcd-server (scripts/test.sh does)"
        );
        let mut last = String::new();
        for _ in 0..3 {
            match EtcdServer::try_start(test) {
                Ok(server) => return server,
                Err(why) => last = why,
            }
        }
        panic!("etcd for {test} did not start: {last}");
    }

    fn try_start(test: &str) -> Result<EtcdServer, String> {
        let dir = TempDir::new(&format!("etcd-{test}")).map_err(|e| e.to_string())?;
        let (client, peer) = (free_port(), free_port());
        let endpoint = format!("127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let client_url = format!("http://{endpoint}");
        let log_path = dir.path().join("etcd.log");
        let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
        let log_err = log.try_clone().map_err(|e| e.to_string())?;
        let mut command = Command::new(ETCD);
        command
            .arg("--name=test")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=test={peer_url}"))
            .args(["--logger=zap", "--log-level=warn"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        // SAFETY: the closure runs in the forked child before exec and only
        // makes the prctl syscall, which is async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                    .map_err(std::io::Error::from)
            });
        }
        let child = command.spawn().map_err(|e| format!("run {ETCD}: {e}"))?;
        let mut server = EtcdServer {
            child: ChildGuard::new(child),
            _dir: dir,
            endpoint,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(&server.endpoint).is_err() {
            let exited = server
                .child
                .child_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!(
                    "etcd on {} exited or timed out: {log}",
                    server.endpoint
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    /// `etcd://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("etcd://{}", self.endpoint)
    }

    /// A store on this etcd under `prefix` (e.g. `/noderun/`), once etcd
    /// answers requests (it listens before it has elected itself leader).
    pub async fn store_with_prefix(&self, prefix: &str) -> EtcdStore {
        let options = EtcdOptions {
            endpoints: vec![self.endpoint.clone()],
            prefix: prefix.to_owned(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match EtcdStore::connect(&options).await {
                Ok(store) => return store,
                Err(e) if Instant::now() > deadline => {
                    panic!("etcd at {} does not answer: {e}", self.endpoint)
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// A store on this etcd under the default prefix.
    pub async fn store(&self) -> EtcdStore {
        self.store_with_prefix(super::DEFAULT_PREFIX).await
    }
}
