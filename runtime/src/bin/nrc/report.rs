//! What `nrc` prints besides command results: errors (stderr, or `--log`
//! in runc's text/JSON shapes), the features document, the default spec.

use crate::args::{Cli, LogFormat};
use std::io::Write;

/// Report a failed command where the caller asked for it.
pub fn error(cli: &Cli, e: &anyhow::Error) {
    let message = format!("{e:#}");
    let line = match cli.log_format {
        LogFormat::Json => serde_json::json!({
            "level": "error",
            "msg": message,
            "time": noderun_core::Time::now().to_string(),
        })
        .to_string(),
        LogFormat::Text => format!("nrc: error: {message}"),
    };
    let logged = cli.log.as_ref().is_some_and(|path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| writeln!(f, "{line}"))
            .is_ok()
    });
    if !logged || cli.log_format == LogFormat::Text {
        eprintln!("nrc: error: {message}");
    }
}

/// The runtime-spec features document.
pub fn features() -> serde_json::Value {
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.1",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "mand", "noatime",
            "nodev", "nodiratime", "noexec", "nomand", "norelatime", "nostrictatime", "nosuid", "private",
            "rbind", "relatime", "remount", "ro", "rprivate", "rshared", "rslave", "runbindable", "rw",
            "shared", "slave", "strictatime", "suid", "sync", "unbindable"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": caps::all().iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_GT",
                              "SCMP_CMP_GE", "SCMP_CMP_MASKED_EQ"],
                "archs": ["SCMP_ARCH_X86_64"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                               "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false}
        },
        "annotations": {"org.noderun.runtime.version": env!("CARGO_PKG_VERSION")}
    })
}

/// A config.json for a bundle with `rootfs/` beside it, running `sh`, as
/// `runc spec` writes one.
pub fn default_spec() -> oci_spec::runtime::Spec {
    oci_spec::runtime::Spec::default()
}
