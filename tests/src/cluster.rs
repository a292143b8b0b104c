//! [`Cluster`]: `controlplane` and `noderun agent` started as the built
//! binaries, each cluster with its own data, state, run and log
//! directories (one temp dir), its own node name, pod CIDR, bridge and
//! cgroup parent, and the host side of its pod network in a network
//! namespace of its own (the real host's links are never touched), so
//! clusters run side by side. Dropping it stops both daemons (by PID),
//! runs `noderun reset` on the node's settings (pods, bridge, cgroups),
//! and removes the namespace and the directory; a failing test leaks
//! nothing.
//!
//! The binaries are the ones next to this test's executable
//! (`target/debug/`): `cargo test --workspace` builds them; a run of this
//! crate alone needs `cargo build --bins` first.

use noderun_client::{Client, Endpoint};
use noderun_core::{Kind, Object, Pod};
use noderun_testkit::{unique_name, unique_name_long, ChildGuard, Cleanup, NetnsGuard, TempDir};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The test nodes' hard eviction thresholds unless a test gives its own:
/// kubelet's defaults with the disk ones as absolute amounts, since the
/// shared test VM's disk has less than kubelet's 10% (nodefs) and 15%
/// (imagefs) free and every node would report DiskPressure (and be
/// tainted NoSchedule).
pub const TEST_EVICTION_HARD: &str = "memory.available<100Mi,nodefs.available<1Gi,\
     nodefs.inodesFree<5%,imagefs.available<1Gi,imagefs.inodesFree<5%";

const ADMIN_TOKEN: &str = "e2e-admin-token-0123456789abcdef";
const NODE_TOKEN: &str = "e2e-node-token-0123456789abcdef";
const VIEWER_TOKEN: &str = "e2e-viewer-token-0123456789abcdef";

/// A built binary of the workspace.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/debug/deps/<test> -> target/debug/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --bins` (cargo test --workspace builds it)",
        path.display()
    );
    path
}

/// A pod CIDR no other cluster of this process uses.
fn pod_cidr() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    format!("10.{}.{}.0/24", 100 + (pid % 100), n % 256)
}

/// Process `pid`'s CPU time so far (user + system, its own threads, not
/// its children), in clock ticks.
pub fn cpu_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is
    // the 3rd field, utime the 14th, stime the 15th.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// One node and its control plane.
#[derive(Debug)]
pub struct Cluster {
    noderun: Option<ChildGuard>,
    controlplane: Option<ChildGuard>,
    pub node: String,
    pub pod_cidr: String,
    pub bridge: String,
    pub cgroup_parent: String,
    pub node_ns: Option<NetnsGuard>,
    /// Extra flags for `noderun agent`.
    agent_args: Vec<String>,
    /// The controlplane's TLS listener, when the node talks to it over
    /// TLS (as on another host) rather than the Unix socket.
    tls: Option<std::net::SocketAddr>,
    /// Removes the cgroup parent if `noderun reset` could not.
    cgroups: Option<Cleanup>,
    pub dir: TempDir,
}

impl Cluster {
    /// Start the control plane, import busybox into the node's image
    /// store, start the node, and wait until it is Ready.
    pub fn start() -> Cluster {
        Cluster::start_with(&[])
    }

    /// [`Cluster::start`] with extra `noderun agent` flags.
    pub fn start_with(agent_args: &[&str]) -> Cluster {
        Cluster::start_inner(agent_args, None)
    }

    /// [`Cluster::start`] with the node connecting over TLS, as a node on
    /// another host would: the controlplane also listens on a loopback
    /// port with its own CA and server certificate, and `noderun agent`
    /// is given that address and the CA (not the Unix socket).
    pub fn start_tls() -> Cluster {
        // A free port: bound, read, released (the controlplane binds it
        // next; a collision only fails this test).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port");
        Cluster::start_inner(&[], Some(port))
    }

    fn start_inner(agent_args: &[&str], tls: Option<std::net::SocketAddr>) -> Cluster {
        let dir = TempDir::new("nr-e2e").expect("temp dir");
        let node = unique_name_long("e2e-node");
        let cgroup_parent = unique_name_long("noderun-e2e");
        let cg = cgroup_parent.clone();
        let cgroups = Cleanup::new(format!("cgroup {cg}"), move || -> Result<(), String> {
            remove_cgroup_tree(&cg);
            Ok(())
        });
        let mut cluster = Cluster {
            noderun: None,
            controlplane: None,
            node,
            pod_cidr: pod_cidr(),
            bridge: unique_name("nre"),
            cgroup_parent,
            node_ns: Some(NetnsGuard::new("nr-e2e").expect("node namespace")),
            agent_args: agent_args.iter().map(|a| a.to_string()).collect(),
            tls,
            cgroups: Some(cgroups),
            dir,
        };
        cluster.start_controlplane();
        cluster.import_image(&noderun_testkit::busybox_layout());
        cluster.start_noderun();
        cluster.wait_node_ready();
        cluster
    }

    /// Import the OCI layout `layout` into the node's image store
    /// (`noderun image import`; the daemon may be running).
    pub fn import_image(&self, layout: &Path) {
        let import = Command::new(binary("noderun"))
            .arg("image")
            .arg("import")
            .arg("--state-dir")
            .arg(self.state_dir())
            .arg(layout)
            .output()
            .expect("run noderun image import");
        assert!(import.status.success(), "import: {import:?}");
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("cp")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("cp.sock")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    pub fn log_dir(&self) -> PathBuf {
        self.dir.join("log")
    }

    fn admin_token_file(&self) -> PathBuf {
        self.data_dir().join("admin.token")
    }

    fn start_controlplane(&mut self) {
        let data = self.data_dir();
        if !data.join("tokens.csv").exists() {
            std::fs::create_dir_all(&data).unwrap();
            // As scripts/up.sh does: the admin and the node's lines; the
            // controlplane adds its controllers' and scheduler's.
            std::fs::write(
                data.join("tokens.csv"),
                format!(
                    "{ADMIN_TOKEN},admin\n{NODE_TOKEN},node:{}\n{VIEWER_TOKEN},viewer\n",
                    self.node
                ),
            )
            .unwrap();
            std::fs::write(self.admin_token_file(), format!("{ADMIN_TOKEN}\n")).unwrap();
            std::fs::write(self.dir.join("node.token"), format!("{NODE_TOKEN}\n")).unwrap();
            std::fs::write(self.dir.join("viewer.token"), format!("{VIEWER_TOKEN}\n")).unwrap();
        }
        let mut child = Command::new(binary("controlplane"))
            .arg("--data-dir")
            .arg(&data)
            .arg("--socket")
            .arg(self.socket())
            .args(
                self.tls
                    .iter()
                    .flat_map(|a| ["--listen".to_string(), a.to_string()]),
            )
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn controlplane");
        let stdout = child.stdout.take().expect("piped stdout");
        self.controlplane = Some(ChildGuard::new(child));
        for line in BufReader::new(stdout).lines() {
            if line.expect("controlplane stdout").starts_with("serving on") {
                return;
            }
        }
        panic!("controlplane exited before serving");
    }

    /// The node's flags that `agent` and `reset` share.
    fn host_args(&self, cmd: &mut Command) {
        cmd.arg("--state-dir")
            .arg(self.state_dir())
            .arg("--pod-cidr")
            .arg(&self.pod_cidr)
            .arg("--bridge")
            .arg(&self.bridge)
            .arg("--run-dir")
            .arg(self.run_dir())
            .arg("--log-dir")
            .arg(self.log_dir())
            .arg("--cgroup-parent")
            .arg(&self.cgroup_parent)
            .arg("--host-netns")
            .arg(self.node_ns.as_ref().expect("node namespace").path());
    }

    /// Start `noderun agent` (its log goes to `<dir>/noderun.log`).
    pub fn start_noderun(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.noderun_log_path())
            .unwrap();
        let mut cmd = Command::new(binary("noderun"));
        cmd.arg("agent").arg("--control-plane");
        match self.tls {
            Some(addr) => cmd
                .arg(addr.to_string())
                .arg("--ca")
                .arg(self.data_dir().join("pki/ca.crt")),
            None => cmd.arg(self.socket()),
        };
        cmd.arg("--token")
            .arg(self.dir.join("node.token"))
            .arg("--node-name")
            .arg(&self.node)
            .arg("--node-ip")
            .arg("127.0.0.1")
            .args(&self.agent_args);
        if !self.agent_args.iter().any(|a| a == "--eviction-hard") {
            cmd.arg("--eviction-hard").arg(TEST_EVICTION_HARD);
        }
        self.host_args(&mut cmd);
        let child = cmd
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn noderun agent");
        self.noderun = Some(ChildGuard::new(child));
    }

    /// Kill the controlplane with SIGKILL and start it again on the same
    /// data dir.
    pub fn restart_controlplane(&mut self) {
        if let Some(guard) = self.controlplane.take() {
            guard.cleanup().expect("kill controlplane");
        }
        self.start_controlplane();
    }

    /// Kill the node daemon with SIGKILL and start it again with
    /// `agent_args` as its extra flags (its pods keep running and are
    /// adopted).
    pub fn restart_noderun_with(&mut self, agent_args: &[&str]) {
        self.kill_noderun();
        self.agent_args = agent_args.iter().map(|a| a.to_string()).collect();
        self.start_noderun();
    }

    /// Stop the node daemon as a service manager does (SIGTERM) and wait
    /// until it has exited (its pods keep running); killed if it takes
    /// more than 30 s.
    pub fn stop_noderun(&mut self) {
        let Some(mut guard) = self.noderun.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(guard.pid());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM noderun");
        let child = guard.child_mut().expect("noderun is a std child");
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().expect("wait for noderun").is_none() {
            assert!(
                Instant::now() < deadline,
                "noderun did not stop on SIGTERM\n{}",
                self.noderun_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kill the node daemon with SIGKILL (its pods keep running).
    pub fn kill_noderun(&mut self) {
        if let Some(guard) = self.noderun.take() {
            guard.cleanup().expect("kill noderun");
        }
    }

    /// The pids of the node daemon's container runners (its children
    /// named `noderun-runner`).
    pub fn noderun_runners(&self) -> Vec<i32> {
        let Some(pid) = self.noderun.as_ref().map(|g| g.pid()) else {
            return Vec::new();
        };
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten();
        let mut runners: Vec<i32> = tasks
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
            .flat_map(|c| {
                c.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect::<Vec<i32>>()
            })
            .filter(|p| process_name(*p).as_deref() == Some("noderun-runner"))
            .collect();
        runners.sort_unstable();
        runners.dedup();
        runners
    }

    /// The node daemon's resident memory (VmRSS), in KiB.
    pub fn noderun_rss_kib(&self) -> Option<u64> {
        let pid = self.noderun.as_ref()?.pid();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// The node daemon's CPU time so far (user + system), in clock ticks.
    pub fn noderun_cpu_ticks(&self) -> Option<u64> {
        cpu_ticks(self.noderun_pid()?)
    }

    /// The node daemon's pid, while it runs.
    pub fn noderun_pid(&self) -> Option<i32> {
        Some(self.noderun.as_ref()?.pid())
    }

    /// The control plane's pid, while it runs.
    pub fn controlplane_pid(&self) -> Option<i32> {
        Some(self.controlplane.as_ref()?.pid())
    }

    /// `ctl` against this cluster as admin.
    pub fn ctl(&self, args: &[&str]) -> Output {
        self.ctl_command(args, self.admin_token_file())
            .output()
            .expect("run ctl")
    }

    /// `ctl` as admin, not waited for: stdin and stdout piped (a `logs -f`
    /// to read from, an `exec -i` to write to). The caller kills it.
    pub fn ctl_spawn(&self, args: &[&str]) -> std::process::Child {
        self.ctl_command(args, self.admin_token_file())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ctl")
    }

    /// `ctl` as a viewer (may read, logs included, but not exec).
    pub fn ctl_as_viewer(&self, args: &[&str]) -> Output {
        self.ctl_command(args, self.dir.join("viewer.token"))
            .output()
            .expect("run ctl")
    }

    fn ctl_command(&self, args: &[&str], token_file: PathBuf) -> Command {
        let mut c = Command::new(binary("ctl"));
        c.arg("--socket")
            .arg(self.socket())
            .arg("--token-file")
            .arg(token_file)
            .args(args);
        c
    }

    /// `ctl` that must succeed; its stdout.
    pub fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "ctl {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.noderun_log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `ctl apply -f` of a manifest given as text.
    pub fn apply(&self, manifest: &str) {
        let file = self.dir.join(format!("m{}.yaml", unique_name("m")));
        std::fs::write(&file, manifest).unwrap();
        self.ctl_ok(&["apply", "-f", file.to_str().unwrap()]);
    }

    /// An admin client of the apiserver.
    pub async fn client(&self) -> Client {
        let token = ADMIN_TOKEN;
        Client::connect(&Endpoint::Unix(self.socket()), token, "e2e")
            .await
            .expect("connect as admin")
    }

    /// Where `noderun agent` writes its log.
    pub fn noderun_log_path(&self) -> PathBuf {
        self.dir.join("noderun.log")
    }

    /// The daemon's log so far (for failure messages).
    pub fn noderun_log(&self) -> String {
        let text = std::fs::read_to_string(self.noderun_log_path()).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(80).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("--- noderun log (last lines) ---\n{}", tail.join("\n"))
    }

    fn wait_node_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.ctl(&["get", "nodes"]);
            let text = String::from_utf8_lossy(&out.stdout);
            if text
                .lines()
                .any(|l| l.starts_with(&self.node) && l.contains("Ready"))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node never Ready: {text}\n{}",
                self.noderun_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Poll pod `ns/name` until `done` holds; the last version otherwise
    /// fails the test after `within`.
    pub async fn wait_pod(
        &self,
        client: &Client,
        name: &str,
        within: Duration,
        what: &str,
        done: impl Fn(&Pod) -> bool,
    ) -> Pod {
        let deadline = Instant::now() + within;
        loop {
            let got = client.get(Kind::Pod, "default", name).await;
            if let Ok(Object::Pod(pod)) = &got {
                if done(pod) {
                    return pod.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "pod {name}: {what} not reached in {within:?}; last: {got:#?}\n{}",
                self.noderun_log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Run `args` in the node's network namespace (`nc`, `ping` from the
    /// node's side), by nsenter.
    pub fn in_node_ns(&self, args: &[&str]) -> Output {
        let ns = self.node_ns.as_ref().expect("node namespace").path();
        Command::new("nsenter")
            .arg(format!("--net={}", ns.display()))
            .args(args)
            .output()
            .expect("run nsenter")
    }

    fn reset_node(&self) -> Result<(), String> {
        let mut cmd = Command::new(binary("noderun"));
        cmd.arg("reset");
        self.host_args(&mut cmd);
        let out = cmd.output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_noderun();
        if let Err(e) = self.reset_node() {
            eprintln!("noderun reset of {}: {e}", self.node);
        }
        drop(self.controlplane.take());
        drop(self.cgroups.take());
        drop(self.node_ns.take());
    }
}

/// A process's name (`comm`), while it exists.
pub fn process_name(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim().to_string())
}

/// Whether the process runs (exists and is not a zombie waiting for its
/// parent to reap it).
pub fn process_running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .map(|i| !s[i + 1..].trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// The cgroup's directories (on v1 one in each hierarchy the runtime
/// drives, so that a clean-up after a failed `noderun reset` misses none;
/// the one directory on v2).
pub fn cgroup_dirs(relative: &str) -> Vec<PathBuf> {
    let layout = noderun_testkit::CgroupLayout::detect().expect("cgroup layout");
    let controllers = [
        "memory", "pids", "cpu", "cpuacct", "cpuset", "freezer", "devices", "blkio",
    ];
    layout.cgroup_dirs(relative, &controllers)
}

/// Every directory below `dir` whose name is `name`.
pub fn find_dirs(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            let path = e.path();
            if e.file_name() == name {
                found.push(path.clone());
            }
            found.extend(find_dirs(&path, name));
        }
    }
    found
}

/// Remove a cgroup and everything below it, deepest first (processes in
/// it are killed by `noderun reset` before).
fn remove_cgroup_tree(relative: &str) {
    fn remove(dir: &Path) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    remove(&e.path());
                }
            }
        }
        let _ = std::fs::remove_dir(dir);
    }
    for dir in cgroup_dirs(relative) {
        remove(&dir);
    }
}
