//! The `controlplane` binary as an operator starts it: first start makes
//! the admin token and the cluster CA and says where they are, clients
//! reach it over the socket and over TLS, SIGTERM stops it and removes the
//! socket, a second start keeps the token and the data, and its scheduler
//! binds pods.

mod common;

use common::start_binary;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use noderun_controlplane::client::{Client, Endpoint};
use noderun_core::{Kind, Namespace, Object, ObjectMeta};
use noderun_testkit::{ChildGuard, TempDir};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

/// A free loopback port (bound and released; good enough for one test).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Start the binary; return its guard and the lines it printed up to
/// "serving on".
fn start(dir: &TempDir, port: u16) -> (ChildGuard, Vec<String>) {
    let listen = format!("127.0.0.1:{port}");
    let args = ["--listen", &listen, "--log-format", "json"];
    start_binary(&dir.join("data"), &dir.join("cp.sock"), &args)
}

fn wait_gone(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while path.exists() {
        assert!(Instant::now() < deadline, "{} still there", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_prints_where_the_token_and_ca_are() {
    let dir = TempDir::new("cp-bin").unwrap();
    let port = free_port();
    let (mut guard, lines) = start(&dir, port);
    let data = dir.join("data");
    let token_path = data.join("admin.token");
    let ca = data.join("pki/ca.crt");
    let text = lines.join("\n");
    assert!(
        text.contains(&format!("admin token written to {}", token_path.display())),
        "{text}"
    );
    assert!(
        text.contains(&format!("cluster CA: {}", ca.display())),
        "{text}"
    );
    let token = std::fs::read_to_string(&token_path).unwrap();
    let unix = Client::connect(&Endpoint::Unix(dir.join("cp.sock")), token.trim(), "t")
        .await
        .unwrap();
    let ns = Object::Namespace(Namespace {
        metadata: ObjectMeta::named("", "kept"),
        ..Namespace::default()
    });
    unix.create(ns).await.unwrap();
    let tls = Endpoint::Tls {
        addr: format!("127.0.0.1:{port}"),
        ca_file: ca.clone(),
    };
    let remote = Client::connect(&tls, token.trim(), "t").await.unwrap();
    remote.get(Kind::Namespace, "", "kept").await.unwrap();
    drop((unix, remote));

    kill(Pid::from_raw(guard.pid()), Signal::SIGTERM).unwrap();
    wait_gone(&dir.join("cp.sock"));
    if let Some(child) = guard.child_mut() {
        assert!(child.wait().unwrap().success(), "clean exit on SIGTERM");
    }

    // The second start keeps the token, the CA and the data.
    let (_guard, lines) = start(&dir, free_port());
    assert!(
        !lines.join("\n").contains("admin token written"),
        "{lines:?}"
    );
    assert_eq!(std::fs::read_to_string(&token_path).unwrap(), token);
    let unix = Client::connect(&Endpoint::Unix(dir.join("cp.sock")), token.trim(), "t")
        .await
        .unwrap();
    unix.get(Kind::Namespace, "", "kept").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn its_scheduler_binds_pods() {
    use noderun_core::sched::sample;
    let dir = TempDir::new("cp-bin-scheduler").unwrap();
    let (_guard, _) = start(&dir, free_port());
    let data = dir.join("data");
    assert!(data.join("scheduler.token").exists());
    let token = std::fs::read_to_string(data.join("admin.token")).unwrap();
    let admin = Client::connect(&Endpoint::Unix(dir.join("cp.sock")), token.trim(), "t")
        .await
        .unwrap();
    let n1 = sample::node("n1", 4000, 8 << 30, "zone-a");
    admin.create(Object::Node(n1)).await.unwrap();
    let pod = sample::pod("default", "web", 500, 1 << 30);
    admin.create(Object::Pod(pod)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = admin.get(Kind::Pod, "default", "web").await.unwrap();
        if matches!(&got, Object::Pod(p) if p.spec.node_name == "n1") {
            break;
        }
        assert!(Instant::now() < deadline, "not bound: {got:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
