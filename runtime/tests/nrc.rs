//! `nrc` driven as containerd and the runtime-tools suites drive runc:
//! through its command line, with bundles made from Debian's busybox-static.
//! Each test uses its own state root, bundle and container id, and checks
//! that nothing is left behind (state, cgroups, mounts) — also when the
//! bundle is bad.

use noderun_testkit::{require_privileged, unique_name, CgroupLayout, NetnsGuard, TempDir};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{symlink, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BUSYBOX: &str = "/bin/busybox";

/// A bundle (rootfs of busybox applets + config.json from `nrc spec`) and a
/// private state root, removed on drop after any container left in it is
/// force-deleted.
struct Fixture {
    dir: TempDir,
    id: String,
}

impl Fixture {
    /// None when busybox-static is missing outside CI (scripts/test.sh
    /// installs it; in CI its absence is a failure).
    fn new(args: &[&str]) -> Option<Fixture> {
        if !Path::new(BUSYBOX).exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{BUSYBOX} missing: scripts/test.sh installs busybox-static"
            );
            eprintln!("skipping: {BUSYBOX} missing (apt-get install busybox-static)");
            return None;
        }
        let dir = TempDir::new("nrc-test").expect("temp dir");
        let rootfs = dir.join("bundle/rootfs");
        for sub in ["bin", "proc", "sys", "dev", "tmp", "etc"] {
            std::fs::create_dir_all(rootfs.join(sub)).expect("rootfs dirs");
        }
        std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).expect("copy busybox");
        for applet in applets() {
            let _ = symlink("busybox", rootfs.join("bin").join(applet));
        }
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n").unwrap();
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();
        std::fs::create_dir_all(dir.join("root")).unwrap();
        let f = Fixture {
            dir,
            id: unique_name("nrc"),
        };
        let out = f.nrc(&["spec", "--bundle", f.bundle().to_str().unwrap()]);
        assert!(out.status.success(), "nrc spec: {}", stderr(&out));
        f.edit(|c| {
            c["process"]["args"] = json!(args);
        });
        Some(f)
    }

    fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }

    fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    fn edit(&self, f: impl FnOnce(&mut Value)) {
        let path = self.bundle().join("config.json");
        let mut c: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        f(&mut c);
        std::fs::write(&path, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nrc"));
        cmd.arg("--root").arg(self.root()).args(args);
        cmd.stdin(Stdio::null());
        cmd
    }

    fn nrc(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run nrc")
    }

    /// `nrc run` with the container's stdout captured.
    fn run(&self) -> Output {
        self.nrc(&["run", "--bundle", self.bundle().to_str().unwrap(), &self.id])
    }

    /// `nrc create` with the container's stdio on /dev/null and nrc's own
    /// stderr in a file: the init inherits both and holds them until it
    /// exits, so a captured pipe would not close while it lives.
    fn create(&self) -> Output {
        self.create_with(&[])
    }

    /// Create and start the container, and wait until it runs.
    fn create_and_start(&self) {
        let out = self.create();
        assert!(out.status.success(), "create: {}", stderr(&out));
        let out = self.nrc(&["start", &self.id]);
        assert!(out.status.success(), "start: {}", stderr(&out));
        self.wait_status("running");
    }

    /// `nrc create` with extra flags.
    fn create_with(&self, flags: &[&str]) -> Output {
        let log = self.dir.join("create.stderr");
        let file = std::fs::File::create(&log).expect("stderr file");
        let bundle = self.bundle();
        let mut args = vec!["create", "--bundle", bundle.to_str().unwrap()];
        args.extend_from_slice(flags);
        args.push(&self.id);
        let status = self
            .command(&args)
            .stdout(Stdio::null())
            .stderr(file)
            .status()
            .expect("run nrc create");
        Output {
            status,
            stdout: Vec::new(),
            stderr: std::fs::read(&log).unwrap_or_default(),
        }
    }

    fn state(&self) -> Option<Value> {
        let out = self.nrc(&["state", &self.id]);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).expect("state is JSON"))
    }

    fn status(&self) -> String {
        self.state().map_or("absent".into(), |s| {
            s["status"].as_str().unwrap_or_default().to_string()
        })
    }

    fn wait_status(&self, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.status() != want {
            assert!(
                Instant::now() < deadline,
                "never reached {want}: {}",
                self.status()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Nothing of this container is left: no state, no cgroup, no mounts.
    fn assert_gone(&self) {
        let left: Vec<_> = std::fs::read_dir(self.root()).unwrap().flatten().collect();
        assert!(
            left.is_empty(),
            "state left in {}: {left:?}",
            self.root().display()
        );
        let layout = CgroupLayout::detect().unwrap();
        for dir in layout.cgroup_dirs(&format!("nrc/{}", self.id), &["memory", "pids", "cpu"]) {
            assert!(!dir.exists(), "cgroup left: {}", dir.display());
        }
        let mounts = noderun_testkit::mount_points_under(self.dir.path()).unwrap();
        assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.nrc(&["delete", "--force", &self.id]);
    }
}

fn applets() -> Vec<String> {
    let out = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .expect("busybox --list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .filter(|a| a != "busybox")
        .collect()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `key=value` lines of a container's report.
fn facts(out: &Output) -> BTreeMap<String, String> {
    stdout(out)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

const REPORT: &str = r#"
echo pid=$$
echo hostname=$(hostname)
for n in pid mnt uts ipc net cgroup user; do echo ns_$n=$(readlink /proc/self/ns/$n); done
echo cgroup_paths=$(cut -d: -f3 /proc/self/cgroup | sort -u | tr '\n' ' ')
echo capeff=$(grep CapEff /proc/self/status | cut -f2)
echo capbnd=$(grep CapBnd /proc/self/status | cut -f2)
echo nnp=$(grep NoNewPrivs /proc/self/status | cut -f2)
echo kcore_bytes=$(head -c 16 /proc/kcore | wc -c)
if echo x 2>/dev/null > /proc/sys/kernel/domainname; then echo ro_sys=no; else echo ro_sys=yes; fi
if touch /new-file 2>/dev/null; then echo ro_root=no; else echo ro_root=yes; fi
echo fds=$(ls /proc/self/fd | tr '\n' ' ')
echo dev_null=$(stat -c %F /dev/null)
echo dev_io=$(echo x > /dev/null && head -c 4 /dev/urandom | wc -c)
echo ptmx=$(readlink /dev/ptmx)
echo fd_link=$(readlink /dev/fd)
echo proc_type=$(grep ' /proc ' /proc/mounts | cut -d' ' -f3 | head -n1)
echo pts_type=$(grep ' /dev/pts ' /proc/mounts | cut -d' ' -f3)
echo shm_type=$(grep ' /dev/shm ' /proc/mounts | cut -d' ' -f3)
echo cwd=$(pwd)
echo path=$PATH
"#;

#[test]
fn run_isolates_the_process_as_the_spec_says() {
    require_privileged!();
    let Some(f) = Fixture::new(&["sh", "-c", REPORT]) else {
        return;
    };
    f.edit(|c| c["hostname"] = json!("inside"));
    let out = f.run();
    assert!(
        out.status.success(),
        "nrc run: {}\n{}",
        stderr(&out),
        stdout(&out)
    );
    let got = facts(&out);
    assert_eq!(got["pid"], "1");
    assert_eq!(got["hostname"], "inside");
    for ns in ["pid", "mnt", "uts", "ipc", "net", "cgroup"] {
        assert_ne!(
            got[&format!("ns_{ns}")],
            host_ns(ns),
            "{ns} namespace not new"
        );
    }
    assert_eq!(
        got["ns_user"],
        host_ns("user"),
        "no user namespace was asked for"
    );
    // The cgroup namespace was made with the init in its cgroup: that
    // cgroup is the namespace's root in every hierarchy.
    assert_eq!(
        got["cgroup_paths"], "/",
        "/proc/self/cgroup in the container"
    );
    // `nrc spec`'s default capabilities: AUDIT_WRITE, KILL, NET_BIND_SERVICE.
    assert_eq!(got["capeff"], "0000000020000420");
    assert_eq!(got["capbnd"], "0000000020000420");
    assert_eq!(got["nnp"], "1");
    assert_eq!(got["kcore_bytes"], "0", "/proc/kcore is a masked path");
    assert_eq!(got["ro_sys"], "yes", "/proc/sys is a readonly path");
    assert_eq!(got["ro_root"], "yes", "root.readonly is true");
    let fds: Vec<&str> = got["fds"].split_whitespace().collect();
    assert!(
        fds.iter().all(|fd| ["0", "1", "2", "3"].contains(fd)),
        "host fds leaked into the container: {fds:?}"
    );
    assert_eq!(got["dev_null"], "character special file");
    // The spec denies all devices; the default ones stay usable.
    assert_eq!(
        got["dev_io"], "4",
        "writing /dev/null, reading /dev/urandom"
    );
    assert_eq!(got["ptmx"], "pts/ptmx");
    assert_eq!(got["fd_link"], "/proc/self/fd");
    assert_eq!(got["proc_type"], "proc");
    assert_eq!(got["pts_type"], "devpts");
    assert_eq!(got["shm_type"], "tmpfs");
    assert_eq!(got["cwd"], "/");
    assert!(got["path"].contains("/bin"), "{}", got["path"]);
    f.assert_gone();
}

#[test]
fn run_passes_the_exit_code_through() {
    require_privileged!();
    let Some(f) = Fixture::new(&["sh", "-c", "exit 7"]) else {
        return;
    };
    let out = f.run();
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    f.assert_gone();
}

#[test]
fn bind_mounts_take_ro_and_propagation_options() {
    require_privileged!();
    // Read-only and propagation apply to the new mount (a remount and a
    // propagation change on it, not on what lies under it), for a
    // directory and for a single file.
    let script = "cat /mnt/dir/data /etc/extra; \
        echo x > /mnt/dir/new && echo dir-writable; \
        echo x > /etc/extra && echo file-writable; \
        grep -E ' /mnt/(dir|rw) ' /proc/self/mountinfo; echo done";
    let Some(f) = Fixture::new(&["sh", "-c", script]) else {
        return;
    };
    let dir = f.dir.join("bind-src");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("data"), "from the host\n").unwrap();
    let file = f.dir.join("extra-file");
    std::fs::write(&file, "a host file\n").unwrap();
    f.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.push(json!({"destination": "/mnt/dir", "type": "bind",
            "source": dir, "options": ["rbind", "ro", "rprivate"]}));
        mounts.push(json!({"destination": "/mnt/rw", "type": "bind",
            "source": dir, "options": ["bind", "rslave"]}));
        mounts.push(json!({"destination": "/etc/extra", "type": "bind",
            "source": file, "options": ["bind", "ro", "private"]}));
    });
    let out = f.run();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("from the host\na host file\n"), "{text}");
    assert!(!text.contains("writable"), "{text}");
    let dir_line = text
        .lines()
        .find(|l| l.contains(" /mnt/dir "))
        .expect(&text);
    assert!(
        dir_line.contains(" ro,") && !dir_line.contains("shared:"),
        "{dir_line}"
    );
    let rw_line = text.lines().find(|l| l.contains(" /mnt/rw ")).expect(&text);
    // A slave of a private mount (the container's mounts are cut from the
    // host's) is private: the change succeeded, nothing propagates.
    assert!(
        rw_line.contains(" rw,") && !rw_line.contains("shared:"),
        "{rw_line}"
    );
    assert!(text.ends_with("done\n"), "{text}");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "nothing was written"
    );
    f.assert_gone();
}

#[test]
fn process_user_env_cwd_and_rlimits_apply() {
    require_privileged!();
    let script = "echo uid=$(id -u) gid=$(id -g) groups=$(id -G); echo cwd=$(pwd); echo greet=$GREETING; echo nofile=$(ulimit -n)";
    let Some(f) = Fixture::new(&["sh", "-c", script]) else {
        return;
    };
    f.edit(|c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [1002]});
        c["process"]["cwd"] = json!("/tmp");
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("GREETING=hello"));
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]);
    });
    let out = f.run();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("uid=1000 gid=1001 groups=1001 1002"),
        "{text}"
    );
    let got = facts(&out);
    assert_eq!(got["cwd"], "/tmp");
    assert_eq!(got["greet"], "hello");
    assert_eq!(got["nofile"], "256");
    f.assert_gone();
}

#[test]
fn lifecycle_create_start_pause_resume_kill_delete() {
    require_privileged!();
    let Some(f) = Fixture::new(&["sleep", "1000"]) else {
        return;
    };
    let out = f.create();
    assert!(out.status.success(), "create: {}", stderr(&out));
    let state = f.state().expect("state after create");
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], f.id.as_str());
    assert_eq!(state["bundle"], f.bundle().to_str().unwrap());
    let pid = state["pid"].as_i64().expect("pid");
    assert!(pid > 0);
    // The init waits in `create` until `start`: it has not exec'd yet.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(
        !exe.ends_with("busybox"),
        "init exec'd before start: {exe:?}"
    );

    let out = f.nrc(&["start", &f.id]);
    assert!(out.status.success(), "start: {}", stderr(&out));
    f.wait_status("running");
    // Running once start opened the fifo; the init's execs (through the
    // exec trampoline, then busybox) follow at once.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let exe = loop {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
        if exe.ends_with("busybox") || std::time::Instant::now() > deadline {
            break exe;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert!(exe.ends_with("busybox"), "{exe:?}");
    let out = f.nrc(&["start", &f.id]);
    assert!(!out.status.success(), "a second start must fail");

    let out = f.nrc(&["ps", "--format", "json", &f.id]);
    assert!(out.status.success(), "ps: {}", stderr(&out));
    let pids: Vec<i64> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pids, vec![pid]);

    let out = f.nrc(&["list", "--quiet"]);
    assert_eq!(stdout(&out).trim(), f.id);

    assert!(f.nrc(&["pause", &f.id]).status.success());
    assert_eq!(f.status(), "paused");
    assert!(f.nrc(&["resume", &f.id]).status.success());
    assert_eq!(f.status(), "running");

    let out = f.nrc(&["delete", &f.id]);
    assert!(
        !out.status.success(),
        "delete of a running container needs --force"
    );

    let out = f.nrc(&["kill", &f.id, "KILL"]);
    assert!(out.status.success(), "kill: {}", stderr(&out));
    f.wait_status("stopped");
    let out = f.nrc(&["delete", &f.id]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    assert_eq!(f.status(), "absent");
    f.assert_gone();
}

#[test]
fn delete_force_removes_a_running_container() {
    require_privileged!();
    let Some(f) = Fixture::new(&["sleep", "1000"]) else {
        return;
    };
    assert!(f.create().status.success());
    assert!(f.nrc(&["start", &f.id]).status.success());
    let pid = f.state().unwrap()["pid"].as_i64().unwrap();
    let out = f.nrc(&["delete", "--force", &f.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!Path::new(&format!("/proc/{pid}")).exists() || is_zombie_gone(pid));
    f.assert_gone();
}

fn is_zombie_gone(pid: i64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{pid}")).exists() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

#[test]
fn update_changes_limits_live() {
    require_privileged!();
    let Some(f) = Fixture::new(&["sleep", "1000"]) else {
        return;
    };
    assert!(f.create().status.success());
    let out = f.nrc(&[
        "update",
        "--memory",
        "67108864",
        "--pids-limit",
        "50",
        &f.id,
    ]);
    assert!(out.status.success(), "update: {}", stderr(&out));
    let out = f.nrc(&["events", "--stats", &f.id]);
    assert!(out.status.success(), "events: {}", stderr(&out));
    let stats: Value = serde_json::from_slice(&out.stdout).expect("stats JSON");
    assert_eq!(
        stats["data"]["memory"]["usage"]["limit"], 67108864,
        "{stats}"
    );
    assert_eq!(stats["data"]["pids"]["limit"], 50, "{stats}");
    assert!(f.nrc(&["delete", "--force", &f.id]).status.success());
    f.assert_gone();
}

#[test]
fn joins_a_network_namespace_by_path() {
    require_privileged!();
    let Some(f) = Fixture::new(&["readlink", "/proc/self/ns/net"]) else {
        return;
    };
    let netns = NetnsGuard::new("nrc").unwrap();
    let inode = std::fs::metadata(netns.path()).unwrap().ino();
    let want = format!("net:[{inode}]");
    f.edit(|c| {
        for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "network" {
                ns["path"] = json!(netns.path());
            }
        }
    });
    let out = f.run();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), want);
    f.assert_gone();
    netns.cleanup().unwrap();
}

#[test]
fn user_namespace_maps_root() {
    require_privileged!();
    let script = "echo uid=$(id -u); echo map=$(cat /proc/self/uid_map | tr -s ' ')";
    let Some(f) = Fixture::new(&["sh", "-c", script]) else {
        return;
    };
    f.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        // The rootfs stays owned by host root, which the namespace does not
        // map: nothing may be created in it. Drop /sys and the cgroup mount
        // under it (their mountpoints would be made in sys/), keeping the
        // test about ids.
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.retain(|m| !m["destination"].as_str().unwrap().starts_with("/sys"));
    });
    let out = f.run();
    assert!(out.status.success(), "{}\n{}", stderr(&out), stdout(&out));
    let got = facts(&out);
    assert_eq!(got["uid"], "0");
    assert_eq!(got["map"], "0 200000 65536");
    f.assert_gone();
}

#[test]
fn hooks_run_with_the_state_on_stdin() {
    require_privileged!();
    let Some(f) = Fixture::new(&["true"]) else {
        return;
    };
    let log = f.dir.join("hooks.log");
    let hook = |phase: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read s; echo {phase} \"$s\" >> {}", log.display())]});
    f.edit(|c| {
        c["hooks"] = json!({
            "createRuntime": [hook("createRuntime")],
            "poststart": [hook("poststart")],
            "poststop": [hook("poststop")],
        });
    });
    let out = f.run();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&log).expect("hooks wrote their log");
    let phases: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(phases, ["createRuntime", "poststart", "poststop"], "{text}");
    for line in text.lines() {
        let state: Value = serde_json::from_str(line.split_once(' ').unwrap().1).unwrap();
        assert_eq!(state["id"], f.id.as_str(), "{line}");
    }
    f.assert_gone();
}

#[test]
fn a_failing_hook_fails_create_and_leaves_nothing() {
    require_privileged!();
    let Some(f) = Fixture::new(&["true"]) else {
        return;
    };
    f.edit(|c| c["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]}));
    let out = f.create();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("createRuntime"), "{}", stderr(&out));
    f.assert_gone();
}

/// A bad bundle: `create` fails with a message naming the problem and leaves
/// no state, cgroup, mount or process behind.
fn assert_rejected(edit: impl FnOnce(&Fixture), expect: &str) {
    let Some(f) = Fixture::new(&["true"]) else {
        return;
    };
    edit(&f);
    let out = f.create();
    assert!(!out.status.success(), "create of a bad bundle succeeded");
    let err = stderr(&out);
    assert!(err.contains(expect), "expected {expect:?} in: {err}");
    assert_eq!(f.status(), "absent");
    f.assert_gone();
}

#[test]
fn bad_bundles_are_rejected_cleanly() {
    require_privileged!();
    assert_rejected(
        |f| std::fs::remove_dir_all(f.bundle().join("rootfs")).unwrap(),
        "rootfs",
    );
    assert_rejected(
        |f| std::fs::write(f.bundle().join("config.json"), "{\"ociVersion\": ").unwrap(),
        "config.json",
    );
    assert_rejected(|f| f.edit(|c| c["ociVersion"] = json!("2.0.0")), "2.0.0");
    assert_rejected(
        |f| {
            f.edit(|c| {
                c["mounts"].as_array_mut().unwrap().push(
                    json!({"destination": "/../../escape", "type": "tmpfs", "source": "tmpfs"}),
                )
            })
        },
        "..",
    );
    assert_rejected(
        |f| {
            f.edit(|c| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "bogus"}))
            })
        },
        "bogus",
    );
    assert_rejected(
        |f| f.edit(|c| c["process"]["args"] = json!(["/bin/no-such-program"])),
        "no-such-program",
    );
    assert_rejected(
        |f| f.edit(|c| c["process"]["cwd"] = json!("relative/dir")),
        "cwd",
    );
}

#[test]
fn ids_that_could_escape_the_state_root_are_refused() {
    require_privileged!();
    let Some(f) = Fixture::new(&["true"]) else {
        return;
    };
    for id in ["../x", "a/b", "", "."] {
        let out = f.nrc(&["create", "--bundle", f.bundle().to_str().unwrap(), id]);
        assert!(!out.status.success(), "id {id:?} accepted");
    }
    f.assert_gone();
}

#[test]
fn features_and_version_describe_the_runtime() {
    let out = Command::new(env!("CARGO_BIN_EXE_nrc"))
        .arg("features")
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ociVersionMin"], "1.0.0");
    let ns = doc["linux"]["namespaces"].as_array().unwrap();
    for want in ["pid", "network", "mount", "user", "cgroup"] {
        assert!(ns.iter().any(|n| n == want), "{want} missing from {ns:?}");
    }
    let seccomp = &doc["linux"]["seccomp"];
    assert_eq!(seccomp["enabled"], true);
    assert_eq!(seccomp["archs"], json!(["SCMP_ARCH_X86_64"]));
}

/// A block-list profile: mkdir fails with ENOSYS, sethostname kills the
/// process.
fn block_mkdir_and_sethostname(c: &mut Value, no_new_privs: bool) {
    c["process"]["noNewPrivileges"] = json!(no_new_privs);
    c["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS},
            {"names": ["sethostname"], "action": "SCMP_ACT_KILL_PROCESS"},
        ],
    });
}

#[test]
fn seccomp_profile_confines_the_process() {
    require_privileged!();
    for nnp in [true, false] {
        // /dev is a writable tmpfs (the rootfs is read-only).
        let script = "echo mkdir=$(mkdir /dev/blocked 2>&1); \
                      test -d /dev/blocked && echo made=yes || echo made=no; \
                      echo write=$(echo ok > /dev/file && cat /dev/file)";
        let Some(f) = Fixture::new(&["sh", "-c", script]) else {
            return;
        };
        f.edit(|c| block_mkdir_and_sethostname(c, nnp));
        let out = f.run();
        assert!(
            out.status.success(),
            "nnp={nnp}: {:?} {}",
            out.status,
            stderr(&out)
        );
        let got = facts(&out);
        assert!(
            got["mkdir"].contains("Function not implemented"),
            "nnp={nnp}: mkdir must fail with the profile's errno: {}",
            got["mkdir"]
        );
        assert_eq!(got["made"], "no", "nnp={nnp}");
        assert_eq!(got["write"], "ok", "nnp={nnp}: other syscalls still work");
        f.assert_gone();

        let Some(f) = Fixture::new(&["hostname", "renamed"]) else {
            return;
        };
        f.edit(|c| block_mkdir_and_sethostname(c, nnp));
        let out = f.run();
        assert_eq!(
            out.status.code(),
            Some(128 + libc::SIGSYS),
            "nnp={nnp}: sethostname is killed by the filter; {}",
            stderr(&out)
        );
        f.assert_gone();
    }
}

#[test]
fn seccomp_allow_list_with_errno_default() {
    require_privileged!();
    // Only what busybox needs to start, print and exit is allowed; the
    // default answers everything else with EPERM.
    let allowed = [
        "execve",
        "brk",
        "arch_prctl",
        "set_tid_address",
        "set_robust_list",
        "rseq",
        "prlimit64",
        "readlinkat",
        "getrandom",
        "mprotect",
        "exit_group",
        "exit",
        "uname",
        "getuid",
        "geteuid",
        "getgid",
        "getegid",
        "rt_sigprocmask",
        "rt_sigaction",
        "mmap",
        "munmap",
        "newfstatat",
        "fstat",
        "write",
        "read",
        "close",
        "openat",
        "ioctl",
        "getpid",
        "getppid",
        "access",
        "fcntl",
    ];
    let allow_only = |c: &mut Value| {
        c["process"]["noNewPrivileges"] = json!(true);
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": allowed, "action": "SCMP_ACT_ALLOW"}],
        });
    };
    let Some(f) = Fixture::new(&["true"]) else {
        return;
    };
    f.edit(allow_only);
    let out = f.run();
    assert!(out.status.success(), "{}", stderr(&out));
    f.assert_gone();

    // mkdir is not on the list: it fails with EPERM (not with EEXIST or
    // success, which /dev, a writable tmpfs, would otherwise give).
    let Some(f) = Fixture::new(&["mkdir", "/dev/x"]) else {
        return;
    };
    f.edit(allow_only);
    let out = f.run();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Operation not permitted")
            || stderr(&out).contains("Operation not permitted"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    f.assert_gone();
}

#[test]
fn a_bad_seccomp_profile_fails_create_and_leaves_nothing() {
    require_privileged!();
    let Some(f) = Fixture::new(&["true"]) else {
        return;
    };
    f.edit(|c| c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_NOTIFY"}));
    let out = f.create();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("listener"), "{}", stderr(&out));
    f.assert_gone();
}

#[test]
fn the_runtime_binary_cannot_be_overwritten_from_a_container() {
    require_privileged!();
    // CVE-2019-5736: a process in the container holds /proc/<init>/exe
    // (nrc, before the init execs), waits for it to stop running (no more
    // ETXTBSY) and opens it for writing. Here the test plays that process.
    // The profile refuses execveat, so the exec trampoline cannot serve and
    // nrc runs from a read-only view of itself (container::exe_guard).
    let Some(f) = Fixture::new(&["sleep", "1000"]) else {
        return;
    };
    f.edit(|c| {
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["execveat"], "action": "SCMP_ACT_ERRNO"}]});
    });
    // A copy of nrc of its own: no other test runs this file, so once this
    // container is gone nothing executes it (no ETXTBSY to hide behind).
    let nrc = f.dir.join("nrc-copy");
    std::fs::copy(env!("CARGO_BIN_EXE_nrc"), &nrc).unwrap();
    let run = |args: &[&str]| {
        unbusy(|| {
            Command::new(&nrc)
                .arg("--root")
                .arg(f.root())
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
        })
    };
    let bundle = f.bundle();
    assert!(run(&["create", "--bundle", bundle.to_str().unwrap(), &f.id]).success());
    let pid = f.state().unwrap()["pid"].as_i64().unwrap();
    let held = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(format!("/proc/{pid}/exe"))
        .expect("hold the init's executable");
    assert!(run(&["delete", "--force", &f.id]).success());
    assert!(is_zombie_gone(pid), "init {pid} survived delete");
    // Opening is enough to prove the hole; nothing is ever written.
    let reopened = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/self/fd/{}", held.as_raw_fd()));
    let e = reopened.expect_err("the runtime's binary opened for writing");
    assert!(
        matches!(e.raw_os_error(), Some(libc::EROFS) | Some(libc::EPERM)),
        "{e}"
    );
    drop(held);
    f.assert_gone();
}

#[test]
fn a_proc_self_exe_entrypoint_reaches_only_the_sealed_trampoline() {
    require_privileged!();
    // The CVE-2019-5736 entrypoint: a script whose interpreter is
    // /proc/self/exe, i.e. whatever executes it. nrc (run from a writable
    // file, so through the exec trampoline) hands the container the
    // trampoline, which refuses to run without its marker: no process of
    // the container ever executes nrc.
    let Some(f) = Fixture::new(&["/evil"]) else {
        return;
    };
    let evil = f.bundle().join("rootfs/evil");
    std::fs::write(&evil, "#!/proc/self/exe\n").unwrap();
    std::fs::set_permissions(&evil, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let nrc = f.dir.join("nrc-copy");
    std::fs::copy(env!("CARGO_BIN_EXE_nrc"), &nrc).unwrap();
    let before = std::fs::read(&nrc).unwrap();
    let out = unbusy(|| {
        Command::new(&nrc)
            .arg("--root")
            .arg(f.root())
            .args(["run", "--bundle", f.bundle().to_str().unwrap(), &f.id])
            .stdin(Stdio::null())
            .output()
    });
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nrc: exec of the container process failed: errno 22"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&nrc).unwrap(), before);
    f.assert_gone();
}

#[test]
fn exec_goes_through_the_trampoline_and_reports_a_missing_program() {
    require_privileged!();
    let Some(f) = Fixture::new(&["sleep", "1000"]) else {
        return;
    };
    f.create_and_start();
    let out = f.nrc(&["exec", &f.id, "sh", "-c", "echo exec-ok; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), "exec-ok\n");
    let out = f.nrc(&["exec", &f.id, "/no/such/program"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("/no/such/program"),
        "{}",
        stderr(&out)
    );
    assert!(f.nrc(&["delete", "--force", &f.id]).status.success());
    f.assert_gone();
}

#[test]
fn memory_limit_oom_kills_and_the_stats_say_so() {
    require_privileged!();
    // A shell variable of 64 MB in a 32 MiB cgroup.
    let script = "v=$(head -c 64000000 /dev/zero | tr '\\000' a); echo survived";
    let Some(f) = Fixture::new(&["sh", "-c", script]) else {
        return;
    };
    f.edit(|c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 32 << 20, "swap": 32 << 20}});
    });
    assert!(f.create().status.success());
    let out = f.nrc(&["start", &f.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    f.wait_status("stopped");
    let out = f.nrc(&["events", "--stats", &f.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stats: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        stats["data"]["memory"]["oomKills"].as_u64().unwrap() >= 1,
        "{stats}"
    );
    assert_eq!(stats["data"]["memory"]["usage"]["limit"], 32 << 20);
    let out = f.nrc(&["delete", &f.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    f.assert_gone();
}

#[test]
fn pids_limit_refuses_forks_in_the_container() {
    require_privileged!();
    // The shell is one of the 6 allowed: 5 sleeps start, then the fork of
    // the 6th fails, which ends a non-interactive busybox shell.
    let script = "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 30 & echo started=$i; done";
    let Some(f) = Fixture::new(&["sh", "-c", script]) else {
        return;
    };
    f.edit(|c| c["linux"]["resources"] = json!({"pids": {"limit": 6}}));
    let out = f.run();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("can't fork"), "{}", stderr(&out));
    assert_eq!(facts(&out)["started"], "5", "{}", stdout(&out));
    f.assert_gone();
}

#[test]
fn no_host_file_descriptor_reaches_the_container() {
    require_privileged!();
    let Some(f) = Fixture::new(&["ls", "/proc/self/fd"]) else {
        return;
    };
    // A descriptor the caller leaks into nrc (not close-on-exec).
    let leaked = f.dir.join("leaked");
    std::fs::write(&leaked, b"secret").unwrap();
    let path = std::ffi::CString::new(leaked.to_str().unwrap()).unwrap();
    // SAFETY: open(2) with a valid NUL-terminated path; the fd is closed
    // below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
    assert!(fd > 2);
    let out = f.run();
    // SAFETY: closing the fd opened above.
    unsafe { libc::close(fd) };
    assert!(out.status.success(), "{}", stderr(&out));
    let listing = stdout(&out);
    let fds: Vec<&str> = listing.split_whitespace().collect();
    // 0-2 and the directory ls itself has open.
    assert_eq!(fds, ["0", "1", "2", "3"], "fd {fd} leaked in");
    f.assert_gone();
}

#[test]
fn exec_joins_the_running_container() {
    require_privileged!();
    let Some(f) = Fixture::new(&["sleep", "1000"]) else {
        return;
    };
    f.edit(|c| c["hostname"] = json!("exec-box"));
    f.create_and_start();
    let init = f.state().unwrap()["pid"].as_i64().unwrap();

    let script = "echo host=$(hostname); echo one=$(cat /proc/1/comm); \
                  echo foo=$FOO; echo uid=$(id -u); echo net=$(readlink /proc/self/ns/net); \
                  echo mnt=$(readlink /proc/self/ns/mnt)";
    let out = f.nrc(&["exec", "--env", "FOO=bar", &f.id, "sh", "-c", script]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = facts(&out);
    assert_eq!(got["host"], "exec-box", "uts namespace");
    assert_eq!(got["one"], "sleep", "pid namespace: pid 1 is the init");
    assert_eq!(got["foo"], "bar");
    assert_eq!(got["uid"], "0");
    let ns = |k: &str| std::fs::read_link(format!("/proc/{init}/ns/{k}")).unwrap();
    assert_eq!(Path::new(&got["net"]), ns("net"));
    assert_eq!(Path::new(&got["mnt"]), ns("mnt"));

    // A whole process object from a file, as containerd passes it.
    let process = f.dir.join("process.json");
    std::fs::write(
        &process,
        json!({"args": ["sh", "-c", "echo cwd=$(pwd); echo who=$(id -u)"], "cwd": "/dev",
               "user": {"uid": 7, "gid": 7}, "env": ["PATH=/bin"]})
        .to_string(),
    )
    .unwrap();
    let out = f.nrc(&["exec", "--process", process.to_str().unwrap(), &f.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = facts(&out);
    assert_eq!((got["cwd"].as_str(), got["who"].as_str()), ("/dev", "7"));

    // Exit codes pass through; --user applies.
    let out = f.nrc(&["exec", &f.id, "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let out = f.nrc(&["exec", "--user", "1000:1000", &f.id, "id", "-u"]);
    assert_eq!(stdout(&out).trim(), "1000", "{}", stderr(&out));

    // A detached process sits in the container's cgroup.
    let pid_file = f.dir.join("exec.pid");
    // (Its stdio must not be a pipe the test waits to close.)
    let status = f
        .command(&[
            "exec",
            "--detach",
            "--pid-file",
            pid_file.to_str().unwrap(),
            &f.id,
            "sleep",
            "1000",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(
        cgroup.contains(&format!("nrc/{}", f.id)),
        "exec'd process not in the container's cgroup: {cgroup}"
    );
    let ps = f.nrc(&["ps", "--format", "json", &f.id]);
    assert!(stdout(&ps).contains(&pid.to_string()), "{}", stdout(&ps));

    // Delete --force removes the exec'd process with the rest.
    let out = f.nrc(&["delete", "--force", &f.id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(is_zombie_gone(pid as i64), "exec'd pid {pid} survived");
    f.assert_gone();
}

#[test]
fn exec_refuses_what_it_cannot_do() {
    require_privileged!();
    let Some(f) = Fixture::new(&["sleep", "1000"]) else {
        return;
    };
    assert!(f.create().status.success());
    // Created, not running.
    let out = f.nrc(&["exec", &f.id, "true"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("running"), "{}", stderr(&out));
    assert!(f.nrc(&["start", &f.id]).status.success());
    f.wait_status("running");
    let before = f.nrc(&["ps", &f.id]);
    let out = f.nrc(&["exec", &f.id, "no-such-program"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
    let out = f.nrc(&["exec", &f.id]);
    assert!(stderr(&out).contains("nothing to run"), "{}", stderr(&out));
    let out = f.nrc(&["exec", "-t", &f.id, "sh"]);
    assert!(stderr(&out).contains("console"), "{}", stderr(&out));
    // Nothing was left running by the failures.
    assert_eq!(stdout(&f.nrc(&["ps", &f.id])), stdout(&before));
    assert!(f.nrc(&["delete", "--force", &f.id]).status.success());
    f.assert_gone();
}

/// Everything a pty master yields until its slave side is gone (EIO).
fn read_until_hangup(master: &mut std::fs::File) -> String {
    let mut text = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match std::io::Read::read(master, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// Accept one connection on `listener` and receive the pty master (and the
/// slave's name) that nrc sends over it.
fn receive_console(listener: std::os::unix::net::UnixListener) -> (std::fs::File, String) {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::FromRawFd;
    let (conn, _) = listener.accept().expect("nrc connects");
    let mut name = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .expect("recvmsg");
    let mut master = None;
    for cmsg in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            // SAFETY: SCM_RIGHTS delivered this fd to us; we own it now.
            master = Some(unsafe { std::fs::File::from_raw_fd(fds[0]) });
        }
    }
    let len = msg.bytes;
    let name = String::from_utf8_lossy(&name[..len]).into_owned();
    (master.expect("a pty master fd"), name)
}

#[test]
fn terminal_is_sent_to_the_console_socket() {
    require_privileged!();
    let script = "tty; [ -t 0 ] && echo stdin-is-a-tty; echo done";
    let Some(f) = Fixture::new(&["sh", "-c", script]) else {
        return;
    };
    f.edit(|c| c["process"]["terminal"] = json!(true));
    let socket = f.dir.join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let receiver = std::thread::spawn(move || receive_console(listener));
    let out = f.create_with(&["--console-socket", socket.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (mut master, name) = receiver.join().unwrap();
    assert!(name.starts_with("/dev/pts/"), "{name}");
    assert!(f.nrc(&["start", &f.id]).status.success());
    let text = read_until_hangup(&mut master);
    assert!(text.contains(&name), "tty should print {name}: {text:?}");
    assert!(text.contains("stdin-is-a-tty"), "{text:?}");
    assert!(text.contains("done"), "{text:?}");
    f.wait_status("stopped");
    assert!(f.nrc(&["delete", &f.id]).status.success());
    f.assert_gone();
}

#[test]
fn terminal_and_console_socket_go_together() {
    require_privileged!();
    let Some(f) = Fixture::new(&["true"]) else {
        return;
    };
    f.edit(|c| c["process"]["terminal"] = json!(true));
    let out = f.create();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--console-socket"),
        "{}",
        stderr(&out)
    );
    f.assert_gone();
    f.edit(|c| c["process"]["terminal"] = json!(false));
    let out = f.create_with(&["--console-socket", "/nonexistent.sock"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("terminal is false"),
        "{}",
        stderr(&out)
    );
    f.assert_gone();
}

#[test]
fn exec_with_a_terminal_sends_it_to_the_console_socket() {
    require_privileged!();
    let Some(f) = Fixture::new(&["sleep", "1000"]) else {
        return;
    };
    f.create_and_start();
    let socket = f.dir.join("exec-console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let receiver = std::thread::spawn(move || receive_console(listener));
    let out = f.nrc(&[
        "exec",
        "-t",
        "--console-socket",
        socket.to_str().unwrap(),
        &f.id,
        "sh",
        "-c",
        "tty; echo exec-done",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (mut master, name) = receiver.join().unwrap();
    let text = read_until_hangup(&mut master);
    assert!(
        text.contains(&name) && text.contains("exec-done"),
        "{text:?}"
    );
    assert!(f.nrc(&["delete", "--force", &f.id]).status.success());
    f.assert_gone();
}

#[test]
fn run_in_the_foreground_proxies_the_terminal() {
    require_privileged!();
    let Some(f) = Fixture::new(&["sh", "-c", "tty; [ -t 1 ] && echo out-is-a-tty; exit 4"]) else {
        return;
    };
    f.edit(|c| c["process"]["terminal"] = json!(true));
    let out = f.run();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("/dev/pts/"), "{text:?}");
    assert!(text.contains("out-is-a-tty"), "{text:?}");
    f.assert_gone();
}

/// Run `spawn` (a start of a freshly copied binary) again while it fails
/// with ETXTBSY: a process another test thread forks while the copy's
/// write fd is open holds that fd until it execs, and the kernel refuses to
/// execute a file open for writing.
fn unbusy<T>(mut spawn: impl FnMut() -> std::io::Result<T>) -> T {
    for _ in 0..200 {
        match spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            other => return other.unwrap(),
        }
    }
    panic!("the copied binary stayed busy (ETXTBSY) for 2 s");
}
