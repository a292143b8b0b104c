//! The `netplug` binary driven exactly as a container runtime drives a
//! CNI plugin: run in the node's network namespace (here a namespace of
//! the test's own, via `ip netns exec`), `CNI_*` in the environment, the
//! network configuration on stdin, `CNI_PATH` set, a chained
//! `prevResult`. The same harness drives Debian's reference `bridge` +
//! `host-local` plugins, and both are held to the same expectations.

mod common;

use common::{echo, link_in};
use noderun_testkit::{unique_name, NetnsGuard, TempDir};
use serde_json::{json, Value};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const REFERENCE_DIR: &str = "/usr/lib/cni";
const VERSION: &str = "1.0.0";

/// One CNI plugin under test and the node it runs on.
struct Harness {
    plugin: PathBuf,
    cni_path: String,
    bridge: String,
    state: TempDir,
    node: NetnsGuard,
}

/// What one invocation printed and how it exited.
struct Outcome {
    ok: bool,
    json: Option<Value>,
    raw: String,
}

impl Harness {
    fn netplug() -> Harness {
        let exe = PathBuf::from(env!("CARGO_BIN_EXE_netplug"));
        let dir = exe.parent().unwrap().display().to_string();
        Harness::new(exe, dir)
    }

    fn reference() -> Harness {
        Harness::new(
            Path::new(REFERENCE_DIR).join("bridge"),
            REFERENCE_DIR.into(),
        )
    }

    fn new(plugin: PathBuf, cni_path: String) -> Harness {
        assert!(
            plugin.exists(),
            "{} is missing (scripts/test.sh installs containernetworking-plugins)",
            plugin.display()
        );
        Harness {
            plugin,
            cni_path,
            bridge: unique_name("nrcb"),
            state: TempDir::new("netplug-cni").unwrap(),
            node: NetnsGuard::new("nr-cninode").unwrap(),
        }
    }

    fn both() -> [Harness; 2] {
        [Harness::netplug(), Harness::reference()]
    }

    fn config(&self, subnet: &str) -> Value {
        json!({
            "cniVersion": VERSION,
            "name": "pods",
            "type": "bridge",
            "bridge": self.bridge,
            "isGateway": true,
            "ipam": {"type": "host-local", "subnet": subnet, "dataDir": self.state.path()},
        })
    }

    fn invoke(&self, command: &str, id: &str, netns: Option<&Path>, stdin: &Value) -> Outcome {
        self.invoke_raw(command, id, netns, stdin.to_string().as_bytes())
    }

    fn invoke_raw(&self, command: &str, id: &str, netns: Option<&Path>, stdin: &[u8]) -> Outcome {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.node.name()])
            .arg(&self.plugin)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", id)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", &self.cni_path)
            .env("CNI_ARGS", "IgnoreUnknown=1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(netns) = netns {
            cmd.env("CNI_NETNS", netns);
        }
        let mut child = cmd.spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        let raw = String::from_utf8_lossy(&out.stdout).into_owned();
        Outcome {
            ok: out.status.success(),
            json: serde_json::from_str(&raw).ok(),
            raw: format!("{raw}{}", String::from_utf8_lossy(&out.stderr)),
        }
    }

    /// ADD `id` in `pod`, expecting success; the result.
    fn add(&self, config: &Value, id: &str, pod: &NetnsGuard) -> Value {
        let out = self.invoke("ADD", id, Some(pod.path()), config);
        assert!(out.ok, "{}: ADD {id}: {}", self.plugin.display(), out.raw);
        out.json.unwrap()
    }

    fn del(&self, config: &Value, id: &str, pod: Option<&NetnsGuard>) {
        let out = self.invoke("DEL", id, pod.map(|p| p.path()), config);
        assert!(out.ok, "{}: DEL {id}: {}", self.plugin.display(), out.raw);
    }
}

/// The pod's address from an ADD result, after checking the result's
/// shape: the address is on an interface that names the pod's sandbox.
fn pod_ip(result: &Value, pod: &NetnsGuard) -> IpAddr {
    assert_eq!(result["cniVersion"], VERSION, "{result}");
    let ip = &result["ips"][0];
    let index = ip["interface"].as_u64().expect("ips[0].interface") as usize;
    let iface = &result["interfaces"][index];
    assert_eq!(iface["name"], "eth0", "{result}");
    assert_eq!(
        iface["sandbox"],
        pod.path().display().to_string(),
        "{result}"
    );
    assert!(
        iface["mac"].as_str().is_some_and(|m| m.len() == 17),
        "{result}"
    );
    assert_eq!(ip["gateway"], "10.77.0.1", "{result}");
    let address = ip["address"].as_str().unwrap();
    let (addr, prefix) = address.split_once('/').unwrap();
    assert_eq!(prefix, "24", "{result}");
    addr.parse().unwrap()
}

fn with_prev(config: &Value, prev: &Value) -> Value {
    let mut config = config.clone();
    config["prevResult"] = prev.clone();
    config
}

#[test]
fn add_check_connectivity_and_del_twice_hold_for_both_plugins() {
    for h in Harness::both() {
        let config = h.config("10.77.0.0/24");
        let (a, b) = (common::pod(), common::pod());
        let ra = h.add(&config, "cni-a", &a);
        let rb = h.add(&config, "cni-b", &b);
        let (ip_a, ip_b) = (pod_ip(&ra, &a), pod_ip(&rb, &b));
        assert_ne!(ip_a, ip_b);
        echo(&a, ip_a, &b, ip_b);

        let check = h.invoke("CHECK", "cni-a", Some(a.path()), &with_prev(&config, &ra));
        assert!(check.ok, "{}: CHECK: {}", h.plugin.display(), check.raw);

        h.del(&with_prev(&config, &ra), "cni-a", Some(&a));
        assert!(
            link_in(&a, "eth0").is_none(),
            "{}: eth0 left after DEL",
            h.plugin.display()
        );
        h.del(&with_prev(&config, &ra), "cni-a", Some(&a));
        h.del(&config, "never-added", None);
        h.del(&config, "cni-b", Some(&b));
        assert!(link_in(&b, "eth0").is_none());
    }
}

#[test]
fn check_finds_a_removed_address_for_both_plugins() {
    for h in Harness::both() {
        let config = h.config("10.77.0.0/24");
        let pod = common::pod();
        let result = h.add(&config, "cni-chk", &pod);
        let ip = pod_ip(&result, &pod);
        assert!(ip.is_ipv4());
        let flushed = Command::new("ip")
            .args(["-n", pod.name(), "addr", "flush", "dev", "eth0"])
            .status()
            .unwrap();
        assert!(flushed.success());
        let check = h.invoke(
            "CHECK",
            "cni-chk",
            Some(pod.path()),
            &with_prev(&config, &result),
        );
        assert!(
            !check.ok,
            "{}: CHECK passed without the address",
            h.plugin.display()
        );
        let code = check.json.as_ref().and_then(|v| v["code"].as_u64());
        assert!(
            code.is_some_and(|c| c > 0),
            "{}: {}",
            h.plugin.display(),
            check.raw
        );
        h.del(&config, "cni-chk", Some(&pod));
    }
}

#[test]
fn a_chained_prev_result_is_kept() {
    let h = Harness::netplug();
    let pod = common::pod();
    let prev = json!({"cniVersion": VERSION, "interfaces": [{"name": "lo", "sandbox": pod.path()}],
        "ips": [{"address": "127.0.0.1/8", "interface": 0}]});
    let config = with_prev(&h.config("10.77.0.0/24"), &prev);
    let result = h.add(&config, "chained", &pod);
    assert_eq!(result["interfaces"][0]["name"], "lo");
    assert_eq!(result["ips"][0]["address"], "127.0.0.1/8");
    assert_eq!(result["ips"][1]["interface"], 3);
    pod_ip(
        &json!({"cniVersion": VERSION, "ips": [result["ips"][1].clone()], "interfaces": result["interfaces"]}),
        &pod,
    );
    h.del(&config, "chained", Some(&pod));
}

/// Bad input: the spec's error JSON, a non-zero exit, nothing allocated.
#[test]
fn bad_input_gets_the_spec_error_and_leaks_nothing() {
    let h = Harness::netplug();
    let pod = common::pod();
    let good = h.config("10.77.0.0/24");
    let mut old = good.clone();
    old["cniVersion"] = json!("0.1.0");
    let (old, good) = (old.to_string(), good.to_string());
    let cases: [(&[u8], Option<&Path>, u64); 4] = [
        (b"{not json", Some(pod.path()), 6),
        (old.as_bytes(), Some(pod.path()), 1),
        (
            br#"{"cniVersion":"1.0.0","type":"bridge"}"#,
            Some(pod.path()),
            7,
        ),
        (
            good.as_bytes(),
            Some(Path::new("/run/netns/nr-no-such-netns")),
            3,
        ),
    ];
    for (stdin, netns, want) in cases {
        let out = h.invoke_raw("ADD", "bad", netns, stdin);
        assert!(!out.ok, "{}", out.raw);
        let json = out.json.unwrap_or_else(|| panic!("not JSON: {}", out.raw));
        assert_eq!(json["code"], want, "{json}");
        assert!(
            json["msg"].as_str().is_some_and(|m| !m.is_empty()),
            "{json}"
        );
    }
    assert!(link_in(&pod, "eth0").is_none());
    let state = common::ipam_state_text(h.state.path(), "pods");
    assert!(
        !state.contains("\"bad\""),
        "an address was left allocated: {state}"
    );
}

#[test]
fn an_exhausted_range_is_no_addresses_and_gc_frees_leaked_ips() {
    let h = Harness::netplug();
    // A /29 with the gateway on .1: five addresses for pods.
    let config = h.config("10.77.0.0/29");
    let pods: Vec<NetnsGuard> = (0..6).map(|_| common::pod()).collect();
    for (n, pod) in pods[..5].iter().enumerate() {
        h.add(&config, &format!("full-{n}"), pod);
    }
    let full = h.invoke("ADD", "full-5", Some(pods[5].path()), &config);
    assert!(!full.ok);
    assert_eq!(full.json.unwrap()["code"], 100, "{}", full.raw);

    // The runtime lost track of full-0..3 (a crash between ADD and DEL):
    // GC with only full-4 valid frees their addresses and veths.
    let mut gc = config.clone();
    gc["cni.dev/valid-attachments"] = json!([{"containerID": "full-4", "ifname": "eth0"}]);
    let out = h.invoke("GC", "", None, &gc);
    assert!(out.ok, "GC: {}", out.raw);
    let state = common::ipam_state_text(h.state.path(), "pods");
    for n in 0..4 {
        assert!(
            !state.contains(&format!("\"full-{n}\"")),
            "full-{n} still allocated: {state}"
        );
    }
    assert!(state.contains("\"full-4\""), "{state}");
    for (n, pod) in pods[..5].iter().enumerate() {
        let present = link_in(pod, "eth0").is_some();
        assert_eq!(
            present,
            n == 4,
            "full-{n}: GC leaves exactly the valid pod's interface"
        );
    }
    h.add(&config, "full-5", &pods[5]);
}

#[test]
fn version_and_status_answer() {
    let h = Harness::netplug();
    let out = h.invoke_raw("VERSION", "", None, br#"{"cniVersion":"1.0.0"}"#);
    assert!(out.ok, "{}", out.raw);
    let json = out.json.unwrap();
    assert_eq!(json["cniVersion"], "1.0.0");
    assert!(json["supportedVersions"]
        .as_array()
        .unwrap()
        .contains(&json!("1.1.0")));
    let status = h.invoke("STATUS", "", None, &h.config("10.77.0.0/24"));
    assert!(status.ok, "{}", status.raw);
    assert!(
        status.raw.trim().is_empty(),
        "STATUS prints nothing on success: {}",
        status.raw
    );
}

/// `ipMasq` through the binary: ADD puts the pod's address in netplug's
/// nftables set in the node namespace, DEL (twice) takes it out.
#[test]
fn ip_masq_through_the_binary_follows_add_and_del() {
    let h = Harness::netplug();
    let mut config = h.config("10.77.0.0/24");
    config["ipMasq"] = json!(true);
    let pod = common::pod();
    let result = h.add(&config, "masq", &pod);
    let ip = pod_ip(&result, &pod).to_string();
    let list = || {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                h.node.name(),
                "nft",
                "list",
                "table",
                "inet",
                "netplug",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(list().contains(&ip), "{}", list());
    h.del(&config, "masq", Some(&pod));
    h.del(&config, "masq", Some(&pod));
    assert!(!list().contains(&ip), "{}", list());
}

/// `mtu` and `promiscMode` mean the same for both plugins: the pod's
/// interface gets the MTU, the bridge is promiscuous.
#[test]
fn mtu_and_promisc_mode_hold_for_both_plugins() {
    for h in Harness::both() {
        let mut config = h.config("10.77.0.0/24");
        config["mtu"] = json!(1400);
        config["promiscMode"] = json!(true);
        let pod = common::pod();
        h.add(&config, "opts", &pod);
        let eth0 = link_in(&pod, "eth0").unwrap();
        assert_eq!(eth0.mtu, Some(1400), "{}", h.plugin.display());
        let bridge = link_in(&h.node, &h.bridge).unwrap();
        assert!(
            bridge.promisc,
            "{}: bridge not promiscuous",
            h.plugin.display()
        );
        h.del(&config, "opts", Some(&pod));
    }
}
