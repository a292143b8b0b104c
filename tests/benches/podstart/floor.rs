//! The floor to beat: the same pod start done by Debian's `crun` and the
//! containernetworking-plugins `bridge` + `host-local`, the way a
//! CRI runtime drives them: a network namespace pinned under /run/netns,
//! CNI ADD (the plugin spawned with CNI_* in its environment and the
//! configuration on stdin), the OCI config written with that namespace,
//! `crun create`, `crun start`. The busybox rootfs is shared read-only
//! (no snapshot: the floor does less than a pod start does). The bridge
//! lives in a "node" network namespace of the bench's own, never on the
//! host. Everything is removed when [`Floor`] drops.
//!
//! Told where things are by the environment (scripts/bench-podstart.sh
//! sets it): `NODERUN_FLOOR_CRUN` (the crun binary), `NODERUN_FLOOR_CNI`
//! (the plugins' directory), `NODERUN_FLOOR_BUNDLE` (a busybox bundle:
//! `rootfs/` and a `config.json` from `runc spec`).

use noderun_testkit::{NetnsGuard, TempDir};
use noderun_tests::startrecord::monotonic_micros;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// One floor pod's times, CLOCK_MONOTONIC microseconds.
#[derive(Debug, Clone, Copy)]
pub struct FloorSample {
    pub begin: i64,
    pub netns: i64,
    pub cni: i64,
    pub create: i64,
    pub start: i64,
}

/// A started floor pod: its container and namespace, removed on drop.
#[derive(Debug)]
struct FloorPod {
    crun: PathBuf,
    root: PathBuf,
    id: String,
    _netns: NetnsGuard,
}

impl Drop for FloorPod {
    fn drop(&mut self) {
        let deleted = Command::new(&self.crun)
            .arg("--root")
            .arg(&self.root)
            .args(["delete", "--force", &self.id])
            .stdout(Stdio::null())
            .status();
        if !deleted.is_ok_and(|s| s.success()) {
            eprintln!("warning: crun delete --force {} failed", self.id);
        }
    }
}

/// The floor's tools, its node namespace and the pods it started.
#[derive(Debug)]
pub struct Floor {
    crun: PathBuf,
    cni_dir: PathBuf,
    bundle: PathBuf,
    config_template: serde_json::Value,
    // Field order is drop order: pods first (their veths and containers),
    // then the node namespace (the bridge), then the files.
    pods: Mutex<Vec<FloorPod>>,
    node: NetnsGuard,
    work: TempDir,
    network_config: Vec<u8>,
    next: std::sync::atomic::AtomicUsize,
}

fn env_path(name: &str) -> Result<PathBuf, String> {
    std::env::var_os(name)
        .map(PathBuf::from)
        .ok_or_else(|| format!("{name} is not set (scripts/bench-podstart.sh sets it)"))
}

impl Floor {
    /// The floor's set-up, from the environment; an error says what is
    /// missing.
    pub fn from_env() -> Result<Floor, String> {
        let crun = env_path("NODERUN_FLOOR_CRUN")?;
        let cni_dir = env_path("NODERUN_FLOOR_CNI")?;
        let bundle = env_path("NODERUN_FLOOR_BUNDLE")?;
        let config_path = bundle.join("config.json");
        let text = std::fs::read_to_string(&config_path)
            .map_err(|e| format!("reading {}: {e}", config_path.display()))?;
        let config_template: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("parsing {}: {e}", config_path.display()))?;
        let work = TempDir::new("nr-podstart-floor").map_err(|e| e.to_string())?;
        let node = NetnsGuard::new("nr-bps-node").map_err(|e| e.to_string())?;
        let network_config = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": "podstart-floor",
            "type": "bridge",
            "bridge": "nrbpsfloor",
            "isGateway": true,
            "ipam": {
                "type": "host-local",
                "subnet": "10.249.0.0/16",
                "dataDir": work.join("ipam"),
            },
        })
        .to_string()
        .into_bytes();
        Ok(Floor {
            crun,
            cni_dir,
            bundle,
            config_template,
            pods: Mutex::new(Vec::new()),
            node,
            work,
            network_config,
            next: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Start `count` pods, `parallel` at a time (1: one after another);
    /// each pod's times in the order they were started.
    pub fn run(&self, count: usize, parallel: usize) -> Result<Vec<FloorSample>, String> {
        let samples = Mutex::new(Vec::with_capacity(count));
        let queue = std::sync::atomic::AtomicUsize::new(0);
        // Threads made by a thread inside the node namespace are in it too,
        // and so are the plugins and crun they spawn.
        self.node
            .run_in(|| {
                std::thread::scope(|scope| {
                    let workers: Vec<_> = (0..parallel.min(count))
                        .map(|_| {
                            scope.spawn(|| -> Result<(), String> {
                                while queue.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                                    < count
                                {
                                    let sample = self.start_one()?;
                                    samples.lock().expect("samples").push(sample);
                                }
                                Ok(())
                            })
                        })
                        .collect();
                    workers
                        .into_iter()
                        .try_for_each(|w| w.join().expect("floor worker"))
                })
            })
            .map_err(|e| e.to_string())??;
        Ok(samples.into_inner().expect("samples"))
    }

    fn start_one(&self) -> Result<FloorSample, String> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("nr-bps-{}-{n}", std::process::id());
        let begin = monotonic_micros();
        let netns = NetnsGuard::named(&id).map_err(|e| format!("netns {id}: {e}"))?;
        let t_netns = monotonic_micros();
        self.cni_add(&id, netns.path())?;
        let t_cni = monotonic_micros();
        let bundle = self.write_bundle(&id, netns.path())?;
        let pod = FloorPod {
            crun: self.crun.clone(),
            root: self.work.join("crun"),
            id: id.clone(),
            _netns: netns,
        };
        self.crun(&["create", "--bundle", path_str(&bundle)?, &id])?;
        let t_create = monotonic_micros();
        // From here on the container exists: the pod list owns it.
        self.pods.lock().expect("floor pods").push(pod);
        self.crun(&["start", &id])?;
        let t_start = monotonic_micros();
        Ok(FloorSample {
            begin,
            netns: t_netns - begin,
            cni: t_cni - t_netns,
            create: t_create - t_cni,
            start: t_start - t_create,
        })
    }

    fn cni_add(&self, id: &str, netns: &Path) -> Result<(), String> {
        let mut child = Command::new(self.cni_dir.join("bridge"))
            .env_clear()
            .env("CNI_COMMAND", "ADD")
            .env("CNI_CONTAINERID", id)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", &self.cni_dir)
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawning the CNI bridge plugin for {id}: {e}"))?;
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(&self.network_config)
            .map_err(|e| format!("writing the CNI config for {id}: {e}"))?;
        let out = child
            .wait_with_output()
            .map_err(|e| format!("CNI ADD {id}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "CNI ADD {id}: {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        Ok(())
    }

    /// The bundle's config.json: the template with the pod's network
    /// namespace, the shared rootfs by absolute path.
    fn write_bundle(&self, id: &str, netns: &Path) -> Result<PathBuf, String> {
        let dir = self.work.join("bundles").join(id);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut config = self.config_template.clone();
        config["root"]["path"] = serde_json::json!(self.bundle.join("rootfs"));
        config["root"]["readonly"] = serde_json::json!(true);
        config["process"]["args"] = serde_json::json!(["sleep", "3600"]);
        let namespaces = config["linux"]["namespaces"]
            .as_array_mut()
            .ok_or("the template has no linux.namespaces")?;
        namespaces.retain(|ns| ns["type"] != "network");
        namespaces.push(serde_json::json!({"type": "network", "path": netns}));
        let path = dir.join("config.json");
        std::fs::write(&path, config.to_string())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(dir)
    }

    /// Run crun; its errors go to its `--log` file (a pipe on its stderr
    /// would be inherited by the container and never reach end of file).
    fn crun(&self, args: &[&str]) -> Result<(), String> {
        let log = self.work.join("crun.log");
        let status = Command::new(&self.crun)
            .arg("--log")
            .arg(&log)
            .arg("--root")
            .arg(self.work.join("crun"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("crun {args:?}: {e}"))?;
        if !status.success() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(3).collect();
            return Err(format!("crun {args:?}: {status}: {}", tail.join(" | ")));
        }
        Ok(())
    }
}

fn path_str(p: &Path) -> Result<&str, String> {
    p.to_str()
        .ok_or_else(|| format!("{} is not UTF-8", p.display()))
}
