//! `ctl` as a user runs it, against an in-process apiserver: create,
//! apply (several documents, twice), get as a table, wide, YAML and JSON,
//! scale, delete, and errors that say what to do next.

mod common;

use common::*;
use noderun_core::Kind;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Ctl {
    socket: PathBuf,
    token_file: PathBuf,
}

impl Ctl {
    /// Run `ctl args...`: (success, stdout, stderr).
    async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ctl"));
        cmd.arg("--socket")
            .arg(&self.socket)
            .arg("--token-file")
            .arg(&self.token_file);
        cmd.args(args);
        let out = tokio::task::spawn_blocking(move || cmd.output().expect("run ctl"))
            .await
            .unwrap();
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        (out.status.success(), text(out.stdout), text(out.stderr))
    }

    async fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args).await;
        assert!(ok, "ctl {args:?} failed: {err}");
        out
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

const MANIFEST: &str = "\
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: shop
spec:
  replicas: 2
  template:
    metadata:
      labels: {app: shop}
    spec:
      containers:
      - name: web
        image: nginx:1.27
---
apiVersion: v1
kind: Pod
metadata:
  name: other
  labels: {app: other}
spec:
  containers:
  - name: c
    image: busybox:1.36
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_drives_the_cluster() {
    let server = TestServer::start().await;
    let token_file = server.dir.join("admin.token");
    write(&token_file, &format!("{ADMIN}\n"));
    let ctl = Ctl {
        socket: server.socket.clone(),
        token_file,
    };
    let out = ctl
        .ok(&[
            "create",
            "pod",
            "web",
            "--image",
            "busybox:1.36",
            "-l",
            "app=web",
            "--",
            "sleep",
            "3600",
        ])
        .await;
    assert_eq!(out, "pod/web created\n");
    let manifest = server.dir.join("app.yaml");
    write(&manifest, MANIFEST);
    let out = ctl.ok(&["apply", "-f", manifest.to_str().unwrap()]).await;
    assert_eq!(out, "replicaset/shop created\npod/other created\n");
    let out = ctl.ok(&["apply", "-f", manifest.to_str().unwrap()]).await;
    assert_eq!(out, "replicaset/shop unchanged\npod/other unchanged\n");
    write(&manifest, &MANIFEST.replace("replicas: 2", "replicas: 4"));
    let out = ctl.ok(&["apply", "-f", manifest.to_str().unwrap()]).await;
    assert_eq!(out, "replicaset/shop configured\npod/other unchanged\n");

    let table = ctl.ok(&["get", "pods"]).await;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        lines[0].starts_with("NAME    READY   STATUS    RESTARTS   AGE"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("other   0/1     Pending   0          "),
        "{table}"
    );
    assert!(
        lines[2].starts_with("web     0/1     Pending   0          "),
        "{table}"
    );
    let wide = ctl.ok(&["get", "po", "-o", "wide", "-l", "app=web"]).await;
    assert!(
        wide.lines().next().unwrap().ends_with("IP       NODE"),
        "{wide}"
    );
    assert_eq!(wide.lines().count(), 2, "{wide}");

    ctl.ok(&["scale", "rs", "shop", "--replicas", "7"]).await;
    let rs = ctl.ok(&["get", "rs"]).await;
    assert!(
        rs.lines().nth(1).unwrap().starts_with("shop   7         0"),
        "{rs}"
    );
    let yaml = ctl.ok(&["get", "rs", "shop", "-o", "yaml"]).await;
    assert!(
        yaml.starts_with("apiVersion: apps/v1\nkind: ReplicaSet\n"),
        "{yaml}"
    );
    assert!(yaml.contains("replicas: 7"), "{yaml}");
    let json = ctl.ok(&["get", "nodes", "-o", "json"]).await;
    assert!(json.contains("\"kind\": \"List\""), "{json}");
    let ns = ctl.ok(&["get", "ns"]).await;
    assert!(
        ns.contains("default ") && ns.contains("noderun-node-lease"),
        "{ns}"
    );

    let described = ctl.ok(&["describe", "pod", "web"]).await;
    assert!(
        described.starts_with("Name:             web\nNamespace:        default\n"),
        "{described}"
    );
    assert!(
        described.contains("    Command:          sleep 3600\n"),
        "{described}"
    );
    assert_eq!(ctl.ok(&["delete", "pod", "web"]).await, "pod/web deleted\n");
    let (ok, _, err) = ctl.run(&["get", "pod", "web"]).await;
    assert!(!ok);
    assert!(err.contains("NotFound: Pod default/web not found"), "{err}");
    assert!(
        err.contains("next: list what exists with `ctl get <kind>`"),
        "{err}"
    );
    let (ok, _, err) = ctl.run(&["get", "deployments"]).await;
    assert!(!ok && err.contains("unknown resource type"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_errors_say_what_to_do_next() {
    let server = TestServer::start().await;
    let token_file = server.dir.join("viewer.token");
    write(&token_file, VIEWER);
    let viewer = Ctl {
        socket: server.socket.clone(),
        token_file: token_file.clone(),
    };
    let (ok, _, err) = viewer.run(&["create", "namespace", "x"]).await;
    assert!(!ok);
    assert!(
        err.contains("Forbidden: viewer may not create namespaces x"),
        "{err}"
    );
    assert!(
        err.contains("next: use a token whose identity may do this"),
        "{err}"
    );
    let nowhere = Ctl {
        socket: server.dir.join("missing.sock"),
        token_file,
    };
    let (ok, _, err) = nowhere.run(&["get", "pods"]).await;
    assert!(!ok);
    assert!(
        err.contains("is controlplane running? start it with `controlplane --data-dir"),
        "{err}"
    );
    let bad_token = Ctl {
        socket: server.socket.clone(),
        token_file: server.dir.join("no-such-token"),
    };
    let (ok, _, err) = bad_token.run(&["get", "pods"]).await;
    assert!(!ok && err.contains("pass --token-file"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_get_watch_prints_changes_as_they_happen() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let server = TestServer::start().await;
    let token_file = server.dir.join("admin.token");
    write(&token_file, ADMIN);
    let admin = server.client(ADMIN).await;
    admin.create(pod("default", "before", "")).await.unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ctl"))
        .arg("--socket")
        .arg(&server.socket)
        .arg("--token-file")
        .arg(&token_file)
        .args(["get", "pods", "-w"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut next = async || {
        tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
            .await
            .expect("ctl prints within 10 s")
            .expect("ctl still running")
    };
    assert!(next().await.starts_with("NAME "));
    assert!(next().await.starts_with("before "));
    admin.create(pod("default", "during", "")).await.unwrap();
    let line = next().await;
    assert!(
        line.starts_with("during ") && line.contains("Pending"),
        "{line}"
    );
    admin
        .delete(Kind::Pod, "default", "before", &Default::default())
        .await
        .unwrap();
    assert!(next().await.starts_with("before "));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_reads_its_connection_from_a_config_file() {
    let server = TestServer::start().await;
    let token_file = server.dir.join("viewer.token");
    write(&token_file, VIEWER);
    let conf = server.dir.join("ctl.conf");
    let text = format!(
        "# test cluster\nsocket = {}\ntoken-file = {}\n",
        server.socket.display(),
        token_file.display()
    );
    write(&conf, &text);
    let run = |args: Vec<String>| async move {
        let out = tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_ctl"))
                .args(args)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let conf = conf.display().to_string();
    let (ok, out, err) = run(vec![
        "--config".into(),
        conf.clone(),
        "get".into(),
        "ns".into(),
    ])
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("default"), "{out}");
    // A flag beats the file.
    let missing = server.dir.join("missing.sock").display().to_string();
    let args = vec![
        "--config".into(),
        conf.clone(),
        "--socket".into(),
        missing,
        "get".into(),
        "ns".into(),
    ];
    let (ok, _, err) = run(args).await;
    assert!(!ok && err.contains("missing.sock"), "{err}");
    write(server.dir.join("ctl.conf").as_path(), "sever = typo:1\n");
    let (ok, _, err) = run(vec!["--config".into(), conf, "get".into(), "ns".into()]).await;
    assert!(!ok && err.contains("line 1: unknown key"), "{err}");
}
