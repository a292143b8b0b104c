//! The apiserver tests' harness: a server in-process on a temp data dir
//! and a temp socket (removed on drop), a tokens file with one token per
//! identity, and fixtures that pass validation.
#![allow(dead_code)]

use noderun_controlplane::apiserver::{
    self, bootstrap, pki, Apiserver, Authenticator, Listen, RunningServer, ServeOptions,
};
use noderun_controlplane::client::{Client, ClientError, Endpoint};
use noderun_controlplane::store::{EmbeddedOptions, EmbeddedStore};
use noderun_core::proto::ErrorCode;
use noderun_core::{
    Container, Kind, Lease, Namespace, Node, Object, ObjectMeta, Pod, PodSpec, PodTemplateSpec,
    ReplicaSet, ReplicaSetSpec, NODE_LEASE_NAMESPACE,
};
use noderun_testkit::{ChildGuard, TempDir};
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

pub const ADMIN: &str = "admin-token-0123456789abcdef";
pub const VIEWER: &str = "viewer-token-0123456789abcdef";
pub const NODE1: &str = "node1-token-0123456789abcdef";
pub const NODE2: &str = "node2-token-0123456789abcdef";
pub const CONTROLLERS: &str = "controllers-token-0123456789abcdef";
pub const SCHEDULER: &str = "scheduler-token-0123456789abcdef";

/// A running apiserver on a fresh store. Dropping it stops the server and
/// removes the data dir and socket.
pub struct TestServer {
    pub running: Option<RunningServer>,
    pub api: Arc<Apiserver<EmbeddedStore>>,
    pub socket: PathBuf,
    pub pki: pki::PkiPaths,
    // Last: removed after the server is stopped.
    pub dir: TempDir,
}

/// Which listeners a test wants besides the socket.
#[derive(Debug, Default, Clone, Copy)]
pub struct Extra {
    pub tls: bool,
    pub insecure: bool,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(ServeOptions::default(), Extra::default()).await
    }

    pub async fn start_with(options: ServeOptions, extra: Extra) -> TestServer {
        let dir = TempDir::new("cp-apiserver").expect("temp dir");
        let data_dir = dir.join("data");
        let store = EmbeddedStore::open(&EmbeddedOptions {
            data_dir: data_dir.clone(),
        })
        .expect("open store");
        bootstrap::ensure_namespaces(&store)
            .await
            .expect("namespaces");
        let tokens = format!(
            "{ADMIN},admin\n{VIEWER},viewer\n{NODE1},node:n1\n{NODE2},node:n2\n\
             {CONTROLLERS},system:controllers\n{SCHEDULER},system:scheduler\n"
        );
        let authn = Authenticator::parse(&tokens, &dir.join("tokens.csv")).expect("tokens");
        let socket = dir.join("cp.sock");
        let pki = pki::PkiPaths::in_data_dir(&data_dir);
        let mut listen = Listen {
            socket: Some(socket.clone()),
            ..Listen::default()
        };
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        if extra.tls {
            pki::ensure(&pki, &[]).expect("pki");
            listen.tls = Some((loopback, pki::server_config(&pki).expect("tls config")));
        }
        if extra.insecure {
            listen.insecure = Some(loopback);
        }
        let server = Arc::new(Apiserver::new(store, authn, options));
        let running = apiserver::start(Arc::clone(&server), listen)
            .await
            .expect("start apiserver");
        TestServer {
            running: Some(running),
            api: server,
            socket,
            pki,
            dir,
        }
    }

    pub fn running(&self) -> &RunningServer {
        self.running.as_ref().expect("server running")
    }

    pub async fn client(&self, token: &str) -> Client {
        self.try_client(token).await.expect("connect")
    }

    pub async fn try_client(&self, token: &str) -> Result<Client, ClientError> {
        Client::connect(&Endpoint::Unix(self.socket.clone()), token, "test").await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        drop(self.running.take());
    }
}

/// The error code of a failed call, or a panic naming what succeeded.
pub fn code<T: std::fmt::Debug>(r: Result<T, ClientError>) -> ErrorCode {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code().unwrap_or_else(|| panic!("not an API error: {e}")),
    }
}

pub fn container(name: &str) -> Container {
    Container {
        name: name.into(),
        image: "busybox:1.36".into(),
        command: vec!["sleep".into(), "3600".into()],
        ..Container::default()
    }
}

/// A pod `namespace/name`, bound to `node` unless it is empty.
pub fn pod(namespace: &str, name: &str, node: &str) -> Object {
    Object::Pod(Pod {
        metadata: ObjectMeta::named(namespace, name),
        spec: PodSpec {
            containers: vec![container("main")],
            node_name: node.into(),
            ..PodSpec::default()
        },
        ..Pod::default()
    })
}

pub fn node(name: &str) -> Object {
    Object::Node(Node {
        metadata: ObjectMeta::named("", name),
        ..Node::default()
    })
}

pub fn namespace(name: &str) -> Object {
    Object::Namespace(Namespace {
        metadata: ObjectMeta::named("", name),
        ..Namespace::default()
    })
}

pub fn lease(node: &str) -> Object {
    let mut lease = Lease {
        metadata: ObjectMeta::named(NODE_LEASE_NAMESPACE, node),
        ..Lease::default()
    };
    lease.spec.holder_identity = node.into();
    Object::Lease(lease)
}

pub fn replicaset(namespace: &str, name: &str) -> Object {
    let labels: noderun_core::Labels = [("app".to_string(), name.to_string())].into();
    Object::ReplicaSet(ReplicaSet {
        metadata: ObjectMeta::named(namespace, name),
        spec: ReplicaSetSpec {
            replicas: Some(2),
            template: PodTemplateSpec {
                metadata: ObjectMeta {
                    labels,
                    ..ObjectMeta::default()
                },
                spec: PodSpec {
                    containers: vec![container("main")],
                    ..PodSpec::default()
                },
            },
            ..ReplicaSetSpec::default()
        },
        ..ReplicaSet::default()
    })
}

/// The namespace `kind`'s fixtures live in.
pub fn fixture_namespace(kind: Kind) -> &'static str {
    match kind {
        Kind::Lease => NODE_LEASE_NAMESPACE,
        k if k.is_namespaced() => "default",
        _ => "",
    }
}

/// Poll `check` until it gives a value; fail after 30 s.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn as_node(object: Object) -> Node {
    match object {
        Object::Node(n) => n,
        other => panic!("not a node: {other:?}"),
    }
}

pub fn as_pod(object: Object) -> Pod {
    match object {
        Object::Pod(p) => p,
        other => panic!("not a pod: {other:?}"),
    }
}

/// A server whose watches may fall one event behind before it expires
/// them (so that a burst of writes makes a slow watcher relist).
pub async fn lagging_watch_server() -> TestServer {
    let serve = ServeOptions {
        watch_buffer: 1,
        ..ServeOptions::default()
    };
    TestServer::start_with(serve, Extra::default()).await
}

/// Create unbound pods `p0..p<count>` in `default` over 16 admin
/// connections at once.
pub async fn create_pods_at_once(server: &TestServer, count: usize) {
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..16 {
        let admin = server.client(ADMIN).await;
        writers.spawn(async move {
            for i in (w..count).step_by(16) {
                let name = format!("p{i}");
                admin.create(pod("default", &name, "")).await.unwrap();
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.unwrap();
    }
}

/// Start the `controlplane` binary on `data` and `socket` with `args`
/// (logs at warn level on stdout, stderr dropped); returns its guard (the
/// process is killed on drop) and the lines it printed up to "serving on".
pub fn start_binary(data: &Path, socket: &Path, args: &[&str]) -> (ChildGuard, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_controlplane"))
        .arg("--data-dir")
        .arg(data)
        .arg("--socket")
        .arg(socket)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning the controlplane binary");
    let stdout = child.stdout.take().expect("piped stdout");
    let guard = ChildGuard::new(child);
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("reading the binary's stdout");
        let done = line.starts_with("serving on");
        lines.push(line);
        if done {
            break;
        }
    }
    (guard, lines)
}
