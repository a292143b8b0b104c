//! The pod's `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`,
//! managed by the agent as kubelet manages them: written once per pod
//! into `<run>/pods/<uid>/_etc/` (a name no container can have) when its
//! network is up, and bind-mounted over those paths in each of its
//! containers, so every container of the pod, and every restart of one,
//! sees the same files. hosts: the localhost lines and the pod's IP with
//! its hostname; resolv.conf: the node's (`--resolv-conf`), without the
//! loopback nameservers, which cannot answer inside the pod's network
//! namespace (a host running a local resolver such as systemd-resolved
//! should point `--resolv-conf` at the upstream file). A pod on the host
//! network would use the host's own files.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The directory under the pod's bundles dir holding its files.
pub const ETC_DIR: &str = "_etc";

/// Each managed file: its name in the pod's dir and the container path
/// it is mounted on.
pub const FILES: [(&str, &str); 3] = [
    ("hosts", "/etc/hosts"),
    ("hostname", "/etc/hostname"),
    ("resolv.conf", "/etc/resolv.conf"),
];

/// `/etc/hosts` of a pod with IP `ip` and hostname `hostname`.
pub fn hosts(ip: IpAddr, hostname: &str) -> String {
    format!(
        "# noderun-managed hosts file.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         fe00::0\tip6-mcastprefix\n\
         fe00::1\tip6-allnodes\n\
         fe00::2\tip6-allrouters\n\
         {ip}\t{hostname}\n"
    )
}

/// The node's resolv.conf `host` as a pod gets it: every line kept but
/// the nameservers on a loopback address.
pub fn resolv_conf(host: &str) -> String {
    let loopback = |line: &str| {
        let mut words = line.split_whitespace();
        words.next() == Some("nameserver")
            && words
                .next()
                .and_then(|a| a.parse::<IpAddr>().ok())
                .is_some_and(|a| a.is_loopback())
    };
    let mut out: String = host
        .lines()
        .filter(|l| !loopback(l))
        .flat_map(|l| [l, "\n"])
        .collect();
    if out.is_empty() {
        out.push('\n');
    }
    out
}

/// Write the pod's files into `dir`, reading the node's resolv.conf from
/// `host_resolv` (a node without one gives its pods an empty file).
pub fn write(
    dir: &Path,
    ip: IpAddr,
    hostname: &str,
    host_resolv: &Path,
) -> Result<(), (&'static str, PathBuf, std::io::Error)> {
    let host = match std::fs::read_to_string(host_resolv) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(("read", host_resolv.into(), e)),
    };
    std::fs::create_dir_all(dir).map_err(|e| ("create", dir.into(), e))?;
    let contents = [
        hosts(ip, hostname),
        format!("{hostname}\n"),
        resolv_conf(&host),
    ];
    for ((name, _), text) in FILES.iter().zip(contents) {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| ("write", path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_names_the_pod() {
        let text = hosts("10.88.0.7".parse().unwrap(), "web-1");
        assert!(text.contains("127.0.0.1\tlocalhost\n"));
        assert!(text.contains("::1\tlocalhost ip6-localhost ip6-loopback\n"));
        assert!(text.ends_with("10.88.0.7\tweb-1\n"), "{text}");
    }

    #[test]
    fn loopback_nameservers_are_dropped() {
        let host = "# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2\n\
                    nameserver ::1\nnameserver fd00::1\nsearch example.com\noptions edns0 trust-ad\n";
        assert_eq!(
            resolv_conf(host),
            "# generated\nnameserver 10.0.0.2\nnameserver fd00::1\nsearch example.com\noptions edns0 trust-ad\n"
        );
        assert_eq!(resolv_conf("nameserver 127.0.0.1"), "\n");
        assert_eq!(resolv_conf(""), "\n");
    }

    #[test]
    fn the_files_are_written_and_a_bad_source_is_named() {
        let dir = noderun_testkit::TempDir::new("nr-etc").unwrap();
        let resolv = dir.join("host-resolv.conf");
        std::fs::write(&resolv, "nameserver 127.0.0.53\nnameserver 192.0.2.1\n").unwrap();
        let pod = dir.join("pod");
        write(&pod, "10.1.0.2".parse().unwrap(), "p", &resolv).unwrap();
        let read = |n: &str| std::fs::read_to_string(pod.join(n)).unwrap();
        assert_eq!(read("hostname"), "p\n");
        assert_eq!(read("resolv.conf"), "nameserver 192.0.2.1\n");
        assert!(read("hosts").ends_with("10.1.0.2\tp\n"));
        // The source a directory: the error names it, nothing is written.
        let other = dir.join("other");
        let (op, path, _) =
            write(&other, "10.1.0.3".parse().unwrap(), "q", dir.path()).unwrap_err();
        assert_eq!((op, path.as_path()), ("read", dir.path()));
        assert!(!other.exists());
    }
}
