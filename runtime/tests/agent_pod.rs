//! The node agent's pod layer end to end, in-process: real namespaces,
//! cgroups, overlay rootfs, veths and busybox containers started through
//! the pre-forked runner. Each test has its own state directories, pod
//! UIDs, cgroup parent (`noderun-test-...`, removed by a guard) and a
//! "node" network namespace for the host side of the pod network (the
//! real host's links are never touched). Tests take turns (one lock), so
//! each forks its runner while the other test threads wait; the host
//! snapshots of the leak checks count only what carries the test's names,
//! since other test processes may run at the same time.

use nix::sys::signal::Signal;
use noderun_core::{Container, EnvVar, Pod, PodPhase, QosClass};
use noderun_netplug::config::HOST_VETH_PREFIX;
use noderun_netplug::netlink::Netlink;
use noderun_netplug::Netns;
use noderun_runtime::agent::runner::exit_file::EXIT_FILE;
use noderun_runtime::agent::runner::{
    ExecIo, ExecOutput, Exit, FailureKind, Status, EXEC_OUTPUT_LIMIT,
};
use noderun_runtime::agent::sandbox::{self, nsfs::SharedNs};
use noderun_runtime::agent::{AgentError, PodHost, Runner, RunnerError};
use noderun_runtime::cgroups::{self, Layout};
use noderun_runtime::snapshot::Kind;
use noderun_testkit::{privileged, unique_name_long, Cleanup, HostSnapshot, NetnsGuard, TempDir};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[path = "common/pod_host.rs"]
mod pod_host;

use pod_host::{pod_host, pod_host_on_bridge, IMAGE, LOG_ROTATION};

static SERIAL: Mutex<()> = Mutex::new(());

const WAIT: Duration = Duration::from_secs(20);

/// One node: state, logs and runtime under a temporary directory, a
/// cgroup parent of its own, the host side of the network in a namespace.
/// Fields drop in order: the pod host (and its runner) first, then the
/// cgroup parent, the node namespace, the directory.
struct Node {
    host: PodHost,
    _cgroups: Cleanup,
    node_ns: NetnsGuard,
    dir: TempDir,
    _serial: MutexGuard<'static, ()>,
}

impl Node {
    /// None when not privileged (testkit says why, and fails in CI).
    fn new() -> Option<Node> {
        Node::with_runners(1)
    }

    /// [`Node::new`] with a pool of `count` runners.
    fn with_runners(count: usize) -> Option<Node> {
        if !privileged() {
            return None;
        }
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        // Forked while every other test thread waits on SERIAL.
        let runner = Runner::start_pool(count).expect("start the runners");
        let dir = TempDir::new("nr-agent").unwrap();
        let node_ns = NetnsGuard::new("nr-agent-node").unwrap();
        let parent = PathBuf::from(unique_name_long("noderun-test"));
        let layout = Layout::detect().unwrap();
        let cleanup_parent = parent.clone();
        let cgroups = Cleanup::new(format!("cgroup {}", parent.display()), move || {
            let cg = cgroups::open(&layout, &cleanup_parent)?;
            cg.kill_all()?;
            cg.delete()
        });
        let host = pod_host(runner, dir.path(), node_ns.path(), parent, "10.77.0.0/24");
        Some(Node {
            host,
            _cgroups: cgroups,
            node_ns,
            dir,
            _serial: serial,
        })
    }

    /// A pod guard: torn down (no grace) when dropped.
    fn guard(&self, uid: &str) -> PodGuard<'_> {
        PodGuard {
            host: &self.host,
            uid: uid.into(),
        }
    }

    /// Wait until `done` holds for the pod's status.
    fn wait_status(
        &self,
        pod: &Pod,
        what: &str,
        done: impl Fn(&noderun_core::PodStatus) -> bool,
    ) -> noderun_core::PodStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            let status = self.host.pod_status(pod).unwrap();
            if done(&status) {
                return status;
            }
            assert!(Instant::now() < deadline, "{what}: last status {status:#?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self, pod: &Pod, container: &str) -> String {
        std::fs::read_to_string(self.host.log_file(pod, container).unwrap()).unwrap_or_default()
    }

    /// The log of a container that has ended, once its logger (the only
    /// process holding the file) has written the rest of the pipe.
    fn final_log(&self, pod: &Pod, container: &str) -> String {
        let file = self.host.log_file(pod, container).unwrap();
        let deadline = Instant::now() + WAIT;
        while !holders_of(&file).is_empty() {
            assert!(Instant::now() < deadline, "{file:?} stays open");
            std::thread::sleep(Duration::from_millis(10));
        }
        self.log(pod, container)
    }

    /// The links the node's namespace keeps between pods: loopback and
    /// the network's bridge (made by the first pod, kept for the next).
    fn idle_links(&self) -> BTreeSet<String> {
        [
            "lo".to_string(),
            self.host.network().config().bridge.clone(),
        ]
        .into()
    }

    /// Nothing of any pod is left: not the agent's own (see
    /// `agent_leftovers`), no veth in the node's namespace, and nothing
    /// the host did not have at `before`.
    fn assert_clean(&self, before: &HostSnapshot) {
        assert_eq!(self.agent_leftovers(), Vec::<String>::new());
        assert_eq!(self.node_links(), self.idle_links());
        // Host-wide, only what this test could have made counts: other
        // test processes may be adding and removing their own meanwhile.
        let parent = self
            .host
            .config()
            .cgroup_parent
            .to_string_lossy()
            .into_owned();
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let mut leaks = HostSnapshot::capture().unwrap().additions_since(before);
            leaks.netns.retain(|n| n.starts_with("nr-agent"));
            leaks.links.retain(|l| l.starts_with(HOST_VETH_PREFIX));
            leaks.mounts.retain(|m| m.starts_with(self.dir.path()));
            leaks
                .cgroups
                .retain(|c| c.to_string_lossy().contains(&parent));
            if leaks.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the test left these on the host:\n{leaks}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Link names in the node's namespace.
    fn node_links(&self) -> BTreeSet<String> {
        let ns = Netns::open(self.node_ns.path()).unwrap();
        let mut netlink = Netlink::open_in(&ns).unwrap();
        netlink
            .links()
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .collect()
    }

    /// Everything of the agent's own that a pod leaves: pinned
    /// namespaces, runtime state, bundles, logs, active snapshots, IPAM
    /// allocations.
    fn agent_leftovers(&self) -> Vec<String> {
        let mut out = Vec::new();
        let run = self.dir.join("run");
        for sub in ["netns", "ipcns", "utsns", "containers", "pods"] {
            for e in std::fs::read_dir(run.join(sub)).into_iter().flatten() {
                out.push(format!(
                    "{sub}/{}",
                    e.unwrap().file_name().to_string_lossy()
                ));
            }
        }
        for e in std::fs::read_dir(self.dir.join("log"))
            .into_iter()
            .flatten()
        {
            out.push(format!("log/{}", e.unwrap().file_name().to_string_lossy()));
        }
        for s in self.host.snapshots().list().unwrap() {
            if s.kind != Kind::Committed {
                out.push(format!("snapshot {}", s.name));
            }
        }
        let ipam = self.host.network().store().state().unwrap();
        for owner in ipam.allocations.values() {
            out.push(format!("ip of {}", owner.container_id));
        }
        out
    }
}

struct PodGuard<'a> {
    host: &'a PodHost,
    uid: String,
}

impl Drop for PodGuard<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.host.teardown_pod(&self.uid, Duration::ZERO) {
            eprintln!("teardown of pod {} in a guard: {e}", self.uid);
        }
    }
}

fn uid() -> String {
    unique_name_long("uid")
}

fn container(name: &str, script: &str) -> Container {
    Container {
        name: name.into(),
        image: IMAGE.into(),
        command: vec!["sh".into(), "-c".into(), script.into()],
        ..Container::default()
    }
}

fn pod(name: &str, uid: &str, containers: Vec<Container>) -> Pod {
    let mut p = Pod::default();
    p.metadata.name = name.into();
    p.metadata.namespace = "default".into();
    p.metadata.uid = uid.into();
    p.spec.containers = containers;
    p
}

/// The inode of a pinned namespace: what `readlink /proc/self/ns/<kind>`
/// shows as `<kind>:[<inode>]` inside.
fn ns_inode(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().ino()
}

/// What each container of the first test prints about itself.
const WHOAMI: &str = "echo host=$(hostname) pid=$$ net=$(readlink /proc/self/ns/net) \
     uts=$(readlink /proc/self/ns/uts) ipc=$(readlink /proc/self/ns/ipc) mode=$MODE";

#[test]
fn two_containers_share_hostname_and_network_and_report_exits() {
    let Some(node) = Node::new() else {
        return;
    };
    let uid = uid();
    let _guard = node.guard(&uid);
    let mut server = container(
        "server",
        // nc ends at end of file on its stdin: give it one that stays
        // open (a fifo the shell holds) until the client hangs up.
        &format!(
            "{WHOAMI}; mkfifo /tmp/in; nc -l -p 7000 < /tmp/in & exec 3> /tmp/in; wait $!; echo server-done"
        ),
    );
    server.env = vec![EnvVar {
        name: "MODE".into(),
        value: "listen".into(),
    }];
    let client = container(
        "client",
        &format!(
            "{WHOAMI}; grep -E 'Sig(Blk|Ign)' /proc/self/status; \
             until echo hello-from-client | nc 127.0.0.1 7000; do sleep 0.05; done; exit 3"
        ),
    );
    let p = pod("web-1", &uid, vec![server, client]);
    let started = node.host.start_pod(&p).expect("start the pod");
    assert!(
        started.attachment.subnet.contains(started.ip),
        "{started:?}"
    );
    assert_eq!(started.sandbox.qos, QosClass::BestEffort);

    let status = node.wait_status(&p, "both containers exit", |s| s.phase == PodPhase::Failed);
    assert_eq!(status.pod_ip, started.ip.to_string());
    // Both were started (their exec fifos are gone) and the sandbox is
    // whole: a restarted daemon adopts the pod as it is. A stopped
    // container whose fifo is left was made by a start a crash cut short.
    let reports = node.host.container_reports(&p).unwrap();
    assert!(
        reports.iter().all(|r| node.host.container_started(&uid, r)),
        "{reports:?}"
    );
    assert!(node.host.sandbox_up(&uid));
    let paths = node.host.paths(&uid).unwrap();
    let fifo =
        noderun_runtime::container::Record::dir(&paths.runtime_root, &paths.container_id("client"))
            .join(noderun_runtime::container::EXEC_FIFO);
    std::fs::write(&fifo, b"").unwrap();
    assert!(!node.host.container_started(&uid, &reports[1]));
    std::fs::remove_file(&fifo).unwrap();
    let term = |i: usize| {
        status.container_statuses[i]
            .state
            .terminated
            .clone()
            .unwrap()
    };
    assert_eq!(
        (term(0).exit_code, term(0).reason.as_str()),
        (0, "Completed")
    );
    assert_eq!((term(1).exit_code, term(1).reason.as_str()), (3, "Error"));
    assert!(term(1).finished_at.is_some());

    let paths = node.host.paths(&uid).unwrap();
    let inode = |kind| ns_inode(paths.sandbox.ns(kind));
    for name in ["server", "client"] {
        let log = node.final_log(&p, name);
        assert!(log.contains("host=web-1 pid=1 "), "{name}: {log}");
        assert!(
            log.contains(&format!("net=net:[{}]", inode(SharedNs::Net))),
            "{name} is in the pod's network namespace: {log}"
        );
        assert!(
            log.contains(&format!("uts=uts:[{}]", inode(SharedNs::Uts))),
            "{log}"
        );
        assert!(
            log.contains(&format!("ipc=ipc:[{}]", inode(SharedNs::Ipc))),
            "{log}"
        );
    }
    let server_log = node.final_log(&p, "server");
    assert!(server_log.contains("mode=listen"), "{server_log}");
    assert!(
        server_log.contains("hello-from-client\nserver-done"),
        "the client reached the server over the pod's loopback: {server_log}"
    );
    let client_log = node.final_log(&p, "client");
    assert!(client_log.contains("mode=\n"), "env is per container");
    // Nothing blocked or ignored is inherited from the agent (Rust ignores
    // SIGPIPE in its own processes).
    assert!(
        client_log.contains("SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"),
        "{client_log}"
    );
}

#[test]
fn a_container_over_its_memory_limit_is_reported_oom_killed() {
    let Some(node) = Node::new() else {
        return;
    };
    let uid = uid();
    let _guard = node.guard(&uid);
    // tail buffers the whole "line" of /dev/zero: it grows until killed.
    let mut hog = Container {
        name: "hog".into(),
        image: IMAGE.into(),
        command: vec!["tail".into(), "/dev/zero".into()],
        ..Container::default()
    };
    hog.resources
        .limits
        .insert("memory".into(), "16Mi".parse().unwrap());
    let p = pod("hog", &uid, vec![hog]);
    let started = node.host.start_pod(&p).unwrap();
    assert_eq!(started.sandbox.qos, QosClass::Burstable);
    let status = node.wait_status(&p, "the hog is killed", |s| {
        s.container_statuses[0].state.terminated.is_some()
    });
    let t = status.container_statuses[0]
        .state
        .terminated
        .clone()
        .unwrap();
    assert_eq!(
        (t.reason.as_str(), t.exit_code, t.signal),
        ("OOMKilled", 137, 9),
        "{t:?}"
    );
    // The pod cgroup carries the sum of the limits.
    let cg = cgroups::open(node.host.layout(), &started.sandbox.cgroup).unwrap();
    assert_eq!(cg.stats().unwrap().memory_limit, Some(16 << 20));
}

#[test]
fn teardown_is_graceful_and_leaves_nothing() {
    let Some(node) = Node::new() else {
        return;
    };
    let before = HostSnapshot::capture().unwrap();
    let uid = uid();
    {
        let _guard = node.guard(&uid);
        let polite = container(
            "polite",
            "trap 'echo got-term; exit 0' TERM; echo up; while true; do sleep 0.05; done",
        );
        let deaf = Container {
            name: "deaf".into(),
            image: IMAGE.into(),
            command: vec!["sleep".into(), "3600".into()],
            ..Container::default()
        };
        let p = pod("bye", &uid, vec![polite, deaf]);
        node.host.start_pod(&p).unwrap();
        node.wait_status(&p, "both run", |s| s.phase == PodPhase::Running);
        while !node.log(&p, "polite").contains("up") {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!node.agent_leftovers().is_empty());
        assert_ne!(
            node.node_links(),
            node.idle_links(),
            "the pod's veth is there"
        );

        // sleep, pid 1 of its namespace without a handler, ignores TERM:
        // the grace period runs out and it is killed.
        let grace = Duration::from_millis(500);
        let t = Instant::now();
        node.host.teardown_pod(&uid, grace).unwrap();
        let took = t.elapsed();
        assert!(took >= grace, "waited the grace period: {took:?}");
        assert!(took < grace + Duration::from_secs(5), "{took:?}");
        // The log directory goes with the pod.
        assert!(!node.host.log_file(&p, "polite").unwrap().exists());
        // Twice is fine.
        node.host.teardown_pod(&uid, grace).unwrap();
    }
    node.assert_clean(&before);
}

#[test]
fn graceful_stop_delivers_term_to_a_handling_container() {
    let Some(node) = Node::new() else {
        return;
    };
    let uid = uid();
    let _guard = node.guard(&uid);
    let marker = node.dir.join("got-term");
    let p = pod(
        "polite",
        &uid,
        vec![container(
            "polite",
            "trap 'echo got-term; exit 0' TERM; echo up; while true; do sleep 0.05; done",
        )],
    );
    node.host.start_pod(&p).unwrap();
    while !node.log(&p, "polite").contains("up") {
        std::thread::sleep(Duration::from_millis(10));
    }
    let log = node.host.log_file(&p, "polite").unwrap();
    // Keep a copy of the log: teardown removes it.
    let copier = std::thread::spawn(move || {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(text) = std::fs::read_to_string(&log) {
                if text.contains("got-term") {
                    std::fs::write(&marker, text).unwrap();
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let t = Instant::now();
    node.host
        .teardown_pod(&uid, Duration::from_secs(10))
        .unwrap();
    let took = t.elapsed();
    copier.join().unwrap();
    assert!(
        took < Duration::from_secs(5),
        "a container that handles TERM stops long before the grace period: {took:?}"
    );
    assert!(
        node.dir.join("got-term").exists(),
        "TERM reached the container"
    );
}

#[test]
fn half_made_pods_tear_down_by_uid() {
    let Some(node) = Node::new() else {
        return;
    };
    let before = HostSnapshot::capture().unwrap();

    // What the agent cannot run yet is refused before anything is made.
    let mut host_net = pod("hostnet", &uid(), vec![container("c", "true")]);
    host_net.spec.host_network = true;
    let refused = node.host.start_pod(&host_net).unwrap_err().to_string();
    assert!(
        refused.contains("hostNetwork is not supported"),
        "{refused}"
    );
    assert_eq!(node.agent_leftovers(), Vec::<String>::new());
    // A container name the pod does not have.
    let uid_none = uid();
    let err = node
        .host
        .run_container(
            &pod("none", &uid_none, vec![container("c", "true")]),
            "nope",
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains(&uid_none) && err.contains("nope"), "{err}");
    assert_eq!(node.agent_leftovers(), Vec::<String>::new());

    // A start that fails at its second container undoes itself.
    let uid1 = uid();
    let p = pod(
        "broken",
        &uid1,
        vec![
            container("ok", "sleep 3600"),
            Container {
                name: "missing".into(),
                image: "no-such-image:v9".into(),
                ..Container::default()
            },
        ],
    );
    let err = node.host.start_pod(&p).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&uid1) && text.contains("missing") && text.contains("no-such-image"),
        "{text}"
    );
    assert_eq!(node.agent_leftovers(), Vec::<String>::new());

    // A "crash" after the sandbox, network and one rootfs: torn down from
    // the UID alone.
    let uid2 = uid();
    let _guard = node.guard(&uid2);
    let paths = node.host.paths(&uid2).unwrap();
    let made = sandbox::create(
        &paths.sandbox,
        node.host.layout(),
        "half",
        QosClass::BestEffort,
        &Default::default(),
    )
    .unwrap();
    assert!(!node.host.sandbox_up(&uid2), "namespaces without a network");
    sandbox::attach(node.host.network(), &paths.sandbox).unwrap();
    assert!(node.host.sandbox_up(&uid2));
    let top = node
        .host
        .snapshots()
        .list()
        .unwrap()
        .into_iter()
        .find(|s| s.kind == Kind::Committed)
        .unwrap();
    let chain = noderun_runtime::snapshot::ChainId::parse(&top.name).unwrap();
    let mount = node
        .host
        .snapshots()
        .prepare(&paths.container_id("c"), Some(&chain))
        .unwrap();
    let rootfs = paths.bundle("c").join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    mount.mount(&rootfs).unwrap();
    let pod_cgroup = cgroups::open(node.host.layout(), &made.cgroup).unwrap();
    assert!(pod_cgroup.paths().iter().all(|p| p.is_dir()));
    assert!(!node.agent_leftovers().is_empty());

    node.host.teardown_pod(&uid2, Duration::ZERO).unwrap();
    assert!(!node.host.sandbox_up(&uid2));
    node.assert_clean(&before);
}

#[test]
fn the_runner_survives_a_failing_create_and_goes_with_its_handle() {
    let Some(node) = Node::new() else {
        return;
    };
    let runner_pid = node.host.runner().pid();
    // It holds stdio and its socket, none of the test process's fds.
    let fds = std::fs::read_dir(format!("/proc/{runner_pid}/fd"))
        .unwrap()
        .count();
    assert_eq!(fds, 4, "the runner's fds");

    let uid1 = uid();
    let _guard1 = node.guard(&uid1);
    let bad = Container {
        name: "bad".into(),
        image: IMAGE.into(),
        command: vec!["/no/such/program".into()],
        ..Container::default()
    };
    let err = node
        .host
        .start_pod(&pod("bad", &uid1, vec![bad]))
        .unwrap_err();
    assert!(matches!(err, AgentError::Runner { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&uid1) && text.contains("bad") && text.contains("/no/such/program"),
        "the error names pod, container and program: {text}"
    );

    // The same runner serves the next pod.
    let uid2 = uid();
    let _guard2 = node.guard(&uid2);
    let p = pod("fine", &uid2, vec![container("fine", "exit 0")]);
    node.host.start_pod(&p).unwrap();
    let status = node.wait_status(&p, "it completes", |s| s.phase == PodPhase::Succeeded);
    assert_eq!(
        status.container_statuses[0]
            .state
            .terminated
            .as_ref()
            .unwrap()
            .exit_code,
        0
    );
    assert_eq!(node.host.runner().pid(), runner_pid);

    // Direct calls: a missing container is "not found", a bad bundle says
    // which path.
    let root = node.dir.join("run/containers");
    let missing = node.host.runner().state(&root, "nope").unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
    let no_bundle = node
        .host
        .runner()
        .create(&root, "x1", &node.dir.join("no-bundle"), None)
        .unwrap_err()
        .to_string();
    assert!(no_bundle.contains("no-bundle"), "{no_bundle}");
    let paths2 = node.host.paths(&uid2).unwrap();
    let fine_id = paths2.container_id("fine");
    let state = node.host.runner().state(&root, &fine_id).unwrap();
    assert_eq!(
        (state.status, state.exit),
        (Status::Stopped, Some(Exit::Code(0)))
    );
    // Recorded in its exit file too, for a runner that did not create it.
    let recorded = std::fs::read_to_string(root.join(&fine_id).join(EXIT_FILE)).unwrap();
    assert!(recorded.contains("\"exit\":{\"code\":0}"), "{recorded}");
    let again = node
        .host
        .runner()
        .create(&root, &fine_id, &paths2.bundle("fine"), None)
        .unwrap_err();
    assert!(
        matches!(
            again,
            RunnerError::Failed {
                kind: FailureKind::AlreadyExists,
                ..
            }
        ),
        "{again:?}"
    );

    // A second handle from async code.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let runner = node.host.runner().clone();
    let async_missing = rt
        .block_on(runner.state_async(root.clone(), "nope".into()))
        .unwrap_err();
    assert!(async_missing.is_not_found());
    drop(runner);

    // Dropping the last handle ends and reaps the runner.
    drop(_guard2);
    drop(_guard1);
    let Node { host, .. } = node;
    drop(host);
    assert!(
        !Path::new(&format!("/proc/{runner_pid}")).exists(),
        "the runner is gone and reaped"
    );
}

/// A second pod host on the node's directories, network and cgroup
/// parent with a runner of its own: a daemon that ran before the node's.
/// (Forked while the other tests wait on SERIAL, which `node` holds.)
fn earlier_host(node: &Node) -> PodHost {
    let runner = Runner::start().expect("start a second runner");
    pod_host_on_bridge(
        runner,
        node.dir.path(),
        node.node_ns.path(),
        node.host.config().cgroup_parent.clone(),
        "10.77.0.0/24",
        &node.host.network().config().bridge,
    )
}

/// What a process's fds point at, in fd order.
fn fd_targets(pid: i32) -> Vec<String> {
    let mut fds: Vec<(u32, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .map(|e| {
            let n = e.file_name().to_string_lossy().parse().unwrap();
            let target = std::fs::read_link(e.path()).unwrap_or_default();
            (n, target.to_string_lossy().into_owned())
        })
        .collect();
    fds.sort();
    fds.into_iter().map(|(_, t)| t).collect()
}

fn comm(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim().to_string())
}

#[test]
fn a_runner_closed_while_its_init_runs_stays_to_record_the_exit() {
    let Some(node) = Node::new() else {
        return;
    };
    let before = HostSnapshot::capture().unwrap();
    let uid = uid();
    let _guard = node.guard(&uid);
    let (p, old_runner) = start_on_a_closed_runner(&node, "lingers", &uid, "sleep 2; exit 7");
    // It holds nothing of the agent's (no socket, stdio on /dev/null),
    // only the init's pidfd (and the sealed copy of the runtime's binary
    // that inits exec).
    let fds = fd_targets(old_runner);
    assert_eq!(fds[..3], ["/dev/null"; 3], "{fds:?}");
    assert!(fds.contains(&"anon_inode:[pidfd]".to_string()), "{fds:?}");
    assert!(
        fds[3..]
            .iter()
            .all(|t| t == "anon_inode:[pidfd]" || t.starts_with("/memfd:nrc:")),
        "the lingering runner holds more: {fds:?}"
    );

    // The node's runner did not create the container: it reads the exit
    // the lingering one recorded, with the times.
    let (status, t) = wait_terminated(&node, &p);
    assert_eq!((t.exit_code, t.signal, t.reason.as_str()), (7, 0, "Error"));
    assert!(
        t.started_at.is_some() && t.finished_at >= t.started_at,
        "{t:?}"
    );
    assert_eq!(status.phase, PodPhase::Failed);
    let paths = node.host.paths(&uid).unwrap();
    let dir = paths.runtime_root.join(paths.container_id("c"));
    let exit_file = dir.join(EXIT_FILE);
    let text = std::fs::read_to_string(&exit_file).unwrap();
    assert!(text.contains("\"exit\":{\"code\":7}"), "{text}");

    // Its last init reaped, the runner exits (and is reaped by a thread
    // of the process that dropped its handle: no zombie).
    wait_gone(old_runner);

    // The exit file goes with the container's state.
    node.host.teardown_pod(&uid, Duration::ZERO).unwrap();
    assert!(!dir.exists(), "{dir:?} stays");
    node.assert_clean(&before);
}

/// Pod `name` (container `c` running `script`) started by a runner of its
/// own, whose handle is then dropped while the init runs, as by a daemon
/// that stops: the runner stays as the init's reaper. Returns the pod
/// and the runner's pid.
fn start_on_a_closed_runner(node: &Node, name: &str, uid: &str, script: &str) -> (Pod, i32) {
    let earlier = earlier_host(node);
    let p = pod(name, uid, vec![container("c", script)]);
    earlier.start_pod(&p).unwrap();
    let runner = earlier.runner().pid();
    drop(earlier);
    wait_named(runner, "noderun-reaper");
    (p, runner)
}

/// The pod's status once its container `c` has terminated, and how.
fn wait_terminated(
    node: &Node,
    p: &Pod,
) -> (
    noderun_core::PodStatus,
    noderun_core::ContainerStateTerminated,
) {
    let status = node.wait_status(p, "the container exits", |s| {
        s.container_statuses[0].state.terminated.is_some()
    });
    let t = status.container_statuses[0].state.terminated.clone();
    (status, t.unwrap())
}

/// Wait until process `pid` is named `name`.
fn wait_named(pid: i32, name: &str) {
    let deadline = Instant::now() + WAIT;
    while comm(pid).as_deref() != Some(name) {
        assert!(Instant::now() < deadline, "{pid}: {:?}", comm(pid));
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Wait until process `pid` is gone (and reaped).
fn wait_gone(pid: i32) {
    let deadline = Instant::now() + WAIT;
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < deadline, "{pid} ({:?}) stays", comm(pid));
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn an_exit_no_runner_recorded_is_reported_unknown() {
    let Some(node) = Node::new() else {
        return;
    };
    let before = HostSnapshot::capture().unwrap();
    let uid = uid();
    let _guard = node.guard(&uid);
    let (p, old_runner) = start_on_a_closed_runner(&node, "orphan", &uid, "sleep 1; exit 7");
    // Killed while its init runs (as by the OOM killer): the init ends as
    // the host init's child, and nobody records its exit.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(old_runner), Signal::SIGKILL).unwrap();
    wait_gone(old_runner);

    let (status, t) = wait_terminated(&node, &p);
    assert_eq!(
        (t.exit_code, t.signal, t.reason.as_str()),
        (137, 0, "ContainerStatusUnknown"),
        "{t:?}"
    );
    assert!(t.message.contains("not recorded"), "{}", t.message);
    assert_eq!(status.phase, PodPhase::Failed);
    let paths = node.host.paths(&uid).unwrap();
    let dir = paths.runtime_root.join(paths.container_id("c"));
    assert!(!dir.join(EXIT_FILE).exists());

    node.host.teardown_pod(&uid, Duration::ZERO).unwrap();
    assert!(!dir.exists(), "{dir:?} stays");
    node.assert_clean(&before);
}

/// A tokio runtime for the runner's async exec API (tests are sync).
fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Run `args` in the container through the captured form.
fn capture(
    node: &Node,
    uid: &str,
    container: &str,
    args: &[&str],
    timeout: Duration,
    limit: usize,
) -> Result<ExecOutput, AgentError> {
    let args = args.iter().map(|a| a.to_string()).collect();
    tokio_rt().block_on(node.host.exec_capture(uid, container, args, timeout, limit))
}

/// Run `script` in the container through the captured form.
fn exec_sh(node: &Node, uid: &str, container: &str, script: &str) -> ExecOutput {
    let args = ["sh", "-c", script];
    capture(node, uid, container, &args, WAIT, EXEC_OUTPUT_LIMIT).unwrap()
}

/// A pipe as files: (read, write), close-on-exec.
fn pipe() -> (std::fs::File, std::fs::File) {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    (r.into(), w.into())
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn exec_runs_inside_the_container_as_its_process() {
    let Some(node) = Node::new() else {
        return;
    };
    let uid = uid();
    let _guard = node.guard(&uid);
    let mut c = container("main", "echo started; exec sleep 3600");
    c.env = vec![EnvVar {
        name: "MODE".into(),
        value: "from-spec".into(),
    }];
    c.working_dir = "/tmp".into();
    let p = pod("exec-target", &uid, vec![c]);
    node.host.start_pod(&p).unwrap();
    node.wait_status(&p, "it runs", |s| s.phase == PodPhase::Running);

    let out = exec_sh(&node, &uid, "main", "hostname");
    assert_eq!(out.exit, Some(Exit::Code(0)), "{out:?}");
    assert_eq!(text(&out.stdout), "exec-target\n");

    // Its namespaces are the init's (net and uts the pod's pins; pid and
    // mount the container's own), its env, cwd and no_new_privs the
    // container's process', and it is not pid 1.
    let out = exec_sh(
        &node,
        &uid,
        "main",
        "echo net=$(readlink /proc/self/ns/net) uts=$(readlink /proc/self/ns/uts); \
         echo pid1=$(cat /proc/1/cmdline | tr '\\0' ' ') me=$$ mode=$MODE cwd=$(pwd); \
         grep -E 'NoNewPrivs|CapEff|CapBnd|Seccomp:' /proc/self/status | tr '\\n' ' '; echo; \
         grep -E 'NoNewPrivs|CapEff|CapBnd|Seccomp:' /proc/1/status | tr '\\n' ' '; echo; \
         echo to-stderr >&2; exit 7",
    );
    assert_eq!(out.exit, Some(Exit::Code(7)), "{out:?}");
    let stdout = text(&out.stdout);
    let paths = node.host.paths(&uid).unwrap();
    let net = ns_inode(paths.sandbox.ns(SharedNs::Net));
    let uts = ns_inode(paths.sandbox.ns(SharedNs::Uts));
    assert!(
        stdout.contains(&format!("net=net:[{net}] uts=uts:[{uts}]")),
        "{stdout}"
    );
    assert!(stdout.contains("pid1=sleep 3600 "), "{stdout}");
    assert!(!stdout.contains(" me=1 "), "{stdout}");
    assert!(stdout.contains("mode=from-spec cwd=/tmp"), "{stdout}");
    // Capabilities, no_new_privs and seccomp mode as the init has them.
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[2].contains("NoNewPrivs:\t1"), "{stdout}");
    assert_eq!(lines[2], lines[3], "exec'd process vs the init");
    assert_eq!(text(&out.stderr), "to-stderr\n");
    assert!(!out.truncated && !out.timed_out);

    // Its cgroup is the container's.
    let rt = tokio_rt();
    let runner = node.host.runner().clone();
    let (read, write) = pipe();
    let io = ExecIo::Stdio {
        stdin: OwnedFd::from(std::fs::File::open("/dev/null").unwrap()),
        stdout: OwnedFd::from(write.try_clone().unwrap()),
        stderr: OwnedFd::from(write),
    };
    let command = node
        .host
        .exec_command(&uid, "main", vec!["sleep".into(), "30".into()], vec![])
        .unwrap();
    let process = rt.block_on(runner.exec_async(command, io)).unwrap();
    let init = node
        .host
        .runner()
        .state(&paths.runtime_root, &paths.container_id("main"))
        .unwrap()
        .pid;
    let init_cgroup = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
    let exec_cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", process.pid())).unwrap();
    assert_eq!(exec_cgroup, init_cgroup);
    process.signal(Signal::SIGTERM).unwrap();
    assert_eq!(
        rt.block_on(process.wait()).unwrap(),
        Some(Exit::Signal(Signal::SIGTERM as i32))
    );
    drop(read);

    // The runner's next container gets a pid namespace of its own: the
    // exec did not leave the runner in the first container's.
    let uid2 = unique_name_long("uid");
    let _guard2 = node.guard(&uid2);
    let p2 = pod("after-exec", &uid2, vec![container("c", "echo pid=$$")]);
    node.host.start_pod(&p2).unwrap();
    node.wait_status(&p2, "it completes", |s| s.phase == PodPhase::Succeeded);
    assert_eq!(node.final_log(&p2, "c"), "pid=1\n");
}

#[test]
fn exec_streams_stdin_and_a_pty_and_reports_the_exit() {
    let Some(node) = Node::new() else {
        return;
    };
    let uid = uid();
    let _guard = node.guard(&uid);
    let p = pod(
        "exec-stream",
        &uid,
        vec![container("main", "exec sleep 3600")],
    );
    node.host.start_pod(&p).unwrap();
    node.wait_status(&p, "it runs", |s| s.phase == PodPhase::Running);
    let rt = tokio_rt();

    // stdin piped through `cat`, which ends at end of file.
    let (stdin_read, mut stdin_write) = pipe();
    let (mut out_read, out_write) = pipe();
    let io = ExecIo::Stdio {
        stdin: OwnedFd::from(stdin_read),
        stdout: OwnedFd::from(out_write.try_clone().unwrap()),
        stderr: OwnedFd::from(out_write),
    };
    let process = rt
        .block_on(
            node.host
                .exec_streaming(&uid, "main", vec!["cat".into()], io),
        )
        .unwrap();
    stdin_write.write_all(b"line one\nline two\n").unwrap();
    drop(stdin_write);
    let mut echoed = String::new();
    out_read.read_to_string(&mut echoed).unwrap();
    assert_eq!(echoed, "line one\nline two\n");
    assert_eq!(rt.block_on(process.wait()).unwrap(), Some(Exit::Code(0)));

    // A pty: the process's stdio is a terminal of the container's devpts,
    // whose size the caller sets.
    let mut process = rt
        .block_on(node.host.exec_streaming(
            &uid,
            "main",
            vec![
                "sh".into(),
                "-c".into(),
                "read go; tty; stty size; exit 5".into(),
            ],
            ExecIo::Tty,
        ))
        .unwrap();
    process.resize(40, 100).unwrap();
    let mut pty = std::fs::File::from(process.take_pty().unwrap());
    pty.write_all(b"go\n").unwrap();
    let exit = rt.block_on(process.wait()).unwrap();
    assert_eq!(exit, Some(Exit::Code(5)));
    // Read what the terminal shows until the slave side is gone (EIO).
    let mut shown = Vec::new();
    let mut chunk = [0u8; 1024];
    while let Ok(n @ 1..) = pty.read(&mut chunk) {
        shown.extend_from_slice(&chunk[..n]);
    }
    let shown = text(&shown);
    assert!(shown.contains("/dev/pts/"), "{shown:?}");
    assert!(shown.contains("40 100"), "{shown:?}");
}

#[test]
fn exec_bounds_output_times_out_and_names_what_is_missing() {
    let Some(node) = Node::new() else {
        return;
    };
    let uid = uid();
    let _guard = node.guard(&uid);
    let p = pod(
        "exec-bounds",
        &uid,
        vec![
            container("main", "exec sleep 3600"),
            container("done", "exit 0"),
        ],
    );
    node.host.start_pod(&p).unwrap();
    node.wait_status(&p, "main runs, done ended", |s| {
        s.container_statuses[0].state.running.is_some()
            && s.container_statuses[1].state.terminated.is_some()
    });
    let secs = Duration::from_secs;

    // Output past the bound is read and dropped.
    let script = "yes | head -c 100000; echo tail >&2";
    let out = capture(&node, &uid, "main", &["sh", "-c", script], secs(10), 1000).unwrap();
    assert_eq!(out.exit, Some(Exit::Code(0)));
    assert_eq!(out.stdout.len(), 1000);
    assert!(out.truncated);
    assert_eq!(text(&out.stderr), "tail\n");

    // A command past its timeout is killed, and the call returns.
    let begun = Instant::now();
    let short = Duration::from_millis(300);
    let out = capture(&node, &uid, "main", &["sleep", "30"], short, 1000).unwrap();
    assert!(out.timed_out && out.exit.is_none(), "{out:?}");
    assert!(begun.elapsed() < Duration::from_secs(5));

    // Errors name the pod and container: a missing container, a stopped
    // one, a program the image lacks. The runner serves on after each.
    let cases = [
        ("nope", "true", "does not exist"),
        ("done", "true", "running"),
        ("main", "/no/such/program", "/no/such/program"),
    ];
    for (container, program, says) in cases {
        let err = capture(&node, &uid, container, &[program], secs(5), 1000)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&uid) && err.contains(container) && err.contains(says),
            "exec in {container}: {err}"
        );
    }
    let out = exec_sh(&node, &uid, "main", "echo still-serving");
    assert_eq!(text(&out.stdout), "still-serving\n");
    let empty = capture(&node, &uid, "main", &[], secs(5), 10)
        .unwrap_err()
        .to_string();
    assert!(empty.contains("no command"), "{empty}");
}

/// Processes with a file under `dir` open (loggers, containers).
fn holders_of(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for proc in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(fds) = std::fs::read_dir(proc.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|t| t.starts_with(dir)) {
                let comm = std::fs::read_to_string(proc.path().join("comm")).unwrap_or_default();
                out.push(format!(
                    "{} {}",
                    proc.file_name().to_string_lossy(),
                    comm.trim()
                ));
                break;
            }
        }
    }
    out
}

#[test]
fn container_logs_rotate_by_size_without_losing_lines() {
    let Some(node) = Node::new() else {
        return;
    };
    let uid = uid();
    let mut guard = Some(node.guard(&uid));
    // ~69 KB of numbered lines from stdout and stderr, several times the
    // rotation size, as fast as the shell writes them.
    let script = "i=0; while [ $i -lt 3000 ]; do echo \"line $i to-out\"; \
                  echo \"line $((i+1)) to-err\" >&2; i=$((i+2)); done";
    let p = pod("chatty", &uid, vec![container("chatty", script)]);
    node.host.start_pod(&p).unwrap();
    node.wait_status(&p, "it completes", |s| s.phase == PodPhase::Succeeded);
    let logs = node.host.container_logs(&p, "chatty").unwrap();
    assert_eq!(logs.instances().unwrap(), vec![0]);

    // The logger writes what is left in the pipe after the exit.
    node.final_log(&p, "chatty");
    let kept = String::from_utf8(logs.read(0).unwrap()).unwrap();
    let files = logs.files(0);
    assert_eq!(files.len(), LOG_ROTATION.max_files as usize, "{files:?}");
    for f in &files {
        let len = std::fs::metadata(f).unwrap().len();
        assert!(len <= LOG_ROTATION.max_size, "{f:?}: {len} bytes");
    }
    // Every kept line is whole and the numbers run on without a gap up to
    // the last one written.
    let numbers: Vec<u32> = kept
        .lines()
        .map(|l| l.split(' ').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(*numbers.last().unwrap(), 2999, "{kept:.200}");
    assert!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "a line was lost"
    );
    assert!(numbers.len() > 1500, "{} lines kept", numbers.len());

    // Its logger is gone with the container; teardown leaves no process
    // holding anything of the node's.
    drop(guard.take());
    let deadline = Instant::now() + WAIT;
    while !holders_of(node.dir.path()).is_empty() {
        assert!(
            Instant::now() < deadline,
            "still open: {:?}",
            holders_of(node.dir.path())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The runners' pids, continued by SIGCONT when dropped (a test that
/// stopped them and then failed must not leave them stopped).
struct Stopped(Vec<i32>);

impl Stopped {
    fn stop(pids: Vec<i32>) -> Stopped {
        for &pid in &pids {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGSTOP).unwrap();
        }
        Stopped(pids)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        for &pid in &self.0 {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGCONT);
        }
    }
}

/// The parent pid of `pid`, from /proc.
fn parent_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = stat.rsplit_once(')').unwrap().1;
    rest.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_pool_of_runners_serves_each_container_by_one_runner() {
    let Some(node) = Node::with_runners(3) else {
        return;
    };
    let runner = node.host.runner().clone();
    let pids = runner.pids();
    assert_eq!(pids.len(), 3);
    assert_eq!(pids.iter().collect::<BTreeSet<_>>().len(), 3, "{pids:?}");
    for pid in &pids {
        // Stdio and its own socket: none of its parent's fds, nor the
        // sockets of the runners forked before it.
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count();
        assert_eq!(fds, 4, "runner {pid}'s fds");
    }
    // Containers spread over every runner, each always to the same one.
    let ids: Vec<String> = (0..60).map(|i| format!("{}_c{i}", uid())).collect();
    let served: BTreeSet<i32> = ids.iter().map(|id| runner.pid_for(id)).collect();
    assert_eq!(served, pids.iter().copied().collect());
    assert!(ids
        .iter()
        .all(|id| runner.pid_for(id) == runner.pid_for(id)));

    let before = HostSnapshot::capture().unwrap();
    let uid = uid();
    let mut guard = Some(node.guard(&uid));
    let names = ["a", "b", "c", "d", "e", "f"];
    let mut containers: Vec<Container> = names
        .iter()
        .map(|n| container(n, "exec sleep 60"))
        .collect();
    containers.push(container(
        "ends",
        "until [ -e /tmp/go ]; do sleep 0.02; done; exit 7",
    ));
    let p = pod("pool", &uid, containers);
    node.host.start_pod(&p).unwrap();
    let paths = node.host.paths(&uid).unwrap();
    let root = paths.runtime_root.clone();

    let mut running = Vec::new();
    for name in names {
        let id = paths.container_id(name);
        let state = runner.state(&root, &id).unwrap();
        assert_eq!(state.status, Status::Running, "{name}");
        // The init is the child of the runner that serves its id: that
        // runner reaps it and knows its exit.
        assert_eq!(parent_of(state.pid), runner.pid_for(&id), "{name}'s init");
        // exec reaches it through the same runner.
        let out = exec_sh(&node, &uid, name, "echo in-$(hostname)");
        assert_eq!(out.exit, Some(Exit::Code(0)), "{name}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "in-pool");
        running.push((id, state));
    }

    // A live container's state is read without its runner: with every
    // runner stopped, it still comes, the same as before.
    {
        let _stopped = Stopped::stop(pids.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        let (r, root2, ids) = (
            runner.clone(),
            root.clone(),
            running.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
        );
        std::thread::spawn(move || {
            let states: Vec<_> = ids.iter().map(|id| r.state(&root2, id)).collect();
            let _ = tx.send(states);
        });
        let states = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the states of live containers come without the runners");
        for ((id, was), now) in running.iter().zip(states) {
            assert_eq!(&now.unwrap(), was, "{id}");
        }
    }

    // A container that ended: its runner tells the exit, and its start
    // time is the one shown while it ran.
    let ends = paths.container_id("ends");
    let seen_running = runner.state(&root, &ends).unwrap();
    assert_eq!(seen_running.status, Status::Running);
    assert!(seen_running.started.is_some(), "{seen_running:?}");
    assert_eq!(
        exec_sh(&node, &uid, "ends", "touch /tmp/go").exit,
        Some(Exit::Code(0))
    );
    let deadline = Instant::now() + WAIT;
    let ended = loop {
        let s = runner.state(&root, &ends).unwrap();
        if s.status == Status::Stopped {
            break s;
        }
        assert!(Instant::now() < deadline, "'ends' still {s:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(ended.exit, Some(Exit::Code(7)));
    assert_eq!(ended.started, seen_running.started);
    assert!(ended.finished.is_some());

    // Deleted: gone for every verb, through any handle.
    drop(guard.take());
    for (id, _) in &running {
        assert!(runner.state(&root, id).unwrap_err().is_not_found(), "{id}");
    }
    node.assert_clean(&before);
}
