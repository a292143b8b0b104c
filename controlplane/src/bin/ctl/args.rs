//! `ctl`'s flags and subcommands (clap derive), kept apart from what they
//! do.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Drive a noderun cluster: create, apply, get, delete and scale objects.
///
/// Examples:
///   ctl create pod web --image busybox:1.36 -- sleep 3600
///   ctl apply -f app.yaml
///   ctl get pods -o wide
///   ctl scale rs web --replicas 3
///   ctl logs web -f
///   ctl exec -it web -- sh
///   ctl delete pod web
#[derive(Debug, Parser)]
#[command(version, verbatim_doc_comment)]
pub struct Cli {
    #[command(flatten)]
    pub conn: Connection,
    /// The namespace of namespaced objects.
    #[arg(short, long, global = true, default_value = "default")]
    pub namespace: String,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the apiserver is and who we are. Unset flags come from the
/// config file, then from a local controlplane's defaults.
#[derive(Debug, Args)]
pub struct Connection {
    /// A config file of `key = value` lines (server, ca-file, token-file,
    /// socket); default ~/.config/noderun/ctl.conf when it exists.
    #[arg(long, global = true, env = "NODERUN_CONFIG")]
    pub config: Option<PathBuf>,
    /// The controlplane's Unix socket [default: /run/noderun/controlplane.sock].
    #[arg(long, global = true, env = "NODERUN_SOCKET")]
    pub socket: Option<PathBuf>,
    /// HOST:PORT of the apiserver's TLS listener (controlplane --listen).
    #[arg(long, global = true, env = "NODERUN_SERVER")]
    pub server: Option<String>,
    /// The cluster CA to verify --server with
    /// [default: /var/lib/noderun/controlplane/pki/ca.crt].
    #[arg(long, global = true, env = "NODERUN_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// A file holding the bearer token
    /// [default: /var/lib/noderun/controlplane/admin.token].
    #[arg(long, global = true, env = "NODERUN_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an object from flags.
    #[command(subcommand)]
    Create(Create),
    /// Create or update the objects of a YAML or JSON file (several documents allowed).
    Apply {
        /// The manifest file (`-` for stdin).
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
    },
    /// List objects of a kind, or show one.
    Get {
        /// pods (po), nodes (no), replicasets (rs), namespaces (ns), leases.
        kind: String,
        name: Option<String>,
        #[arg(short, long, value_enum)]
        output: Option<Output>,
        /// Every namespace.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        /// Label selector (`app=web,tier!=db`).
        #[arg(short = 'l', long)]
        selector: Option<String>,
        /// After printing, watch for changes and print them (Ctrl-C stops).
        #[arg(short = 'w', long)]
        watch: bool,
    },
    /// Show one object in detail.
    Describe { kind: String, name: String },
    /// Delete an object. A pod on a node stops gracefully unless --force.
    Delete {
        kind: String,
        name: String,
        /// Remove at once, without waiting for the node.
        #[arg(long)]
        force: bool,
    },
    /// Print a container's log (as kubectl logs).
    ///
    /// Example: ctl logs web -c sidecar -f --tail 20
    #[command(verbatim_doc_comment)]
    Logs {
        pod: String,
        /// The container; needed only when the pod has several.
        #[arg(short, long)]
        container: Option<String>,
        /// Keep printing what the container writes until it ends.
        #[arg(short, long)]
        follow: bool,
        /// Only the last N lines.
        #[arg(long, value_name = "N")]
        tail: Option<u64>,
        /// The log of the container's previous instance (before its last restart).
        #[arg(short, long)]
        previous: bool,
    },
    /// Run a command in a running container (as kubectl exec); ctl exits
    /// with the command's exit code.
    ///
    /// Example: ctl exec -it web -- sh
    #[command(verbatim_doc_comment)]
    Exec {
        pod: String,
        /// The container; needed only when the pod has several.
        #[arg(short, long)]
        container: Option<String>,
        /// Pass stdin to the command.
        #[arg(short = 'i', long)]
        stdin: bool,
        /// A terminal: the local one in raw mode, its size forwarded.
        #[arg(short, long)]
        tty: bool,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Set the replica count of a ReplicaSet.
    Scale {
        /// rs (replicaset).
        kind: String,
        name: String,
        #[arg(long)]
        replicas: i32,
    },
}

#[derive(Debug, Subcommand)]
pub enum Create {
    /// A pod with one container.
    Pod {
        name: String,
        #[arg(long)]
        image: String,
        /// Labels, `key=value`, repeatable.
        #[arg(short = 'l', long = "label")]
        labels: Vec<String>,
        /// The command, after `--`.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// A namespace.
    Namespace { name: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Wide,
    Yaml,
    Json,
}
