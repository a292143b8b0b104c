//! `noderun agent` (the node daemon) and `noderun reset` (take the node
//! down): flags gathered here, the work done by `noderun_runtime::node`.

use anyhow::{Context, Result};
use clap::Args;
use noderun_runtime::agent::{runner, AgentConfig, Runner};
use noderun_runtime::node::config::{
    parse_duration, parse_endpoint, parse_labels, parse_log_rotation, parse_reserved, parse_taints,
};
use noderun_runtime::node::eviction::soft::with_grace_periods;
use noderun_runtime::node::eviction::thresholds::{default_thresholds, parse_thresholds};
use noderun_runtime::node::host::HostConfig;
use noderun_runtime::node::{self, facts, reconcile, NodeConfig};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Where the node keeps pods and how they are wired (shared by `agent`
/// and `reset`, which must agree).
#[derive(Debug, Args)]
pub struct HostArgs {
    /// The pod CIDR: pod IPs come from it, the bridge takes the first.
    #[arg(long, default_value = "10.88.0.0/24")]
    pod_cidr: String,
    /// The bridge pods hang off.
    #[arg(long, default_value = "nr0")]
    bridge: String,
    /// Runtime state, bundles, pinned namespaces and IPAM state.
    #[arg(long, default_value = "/run/noderun")]
    run_dir: PathBuf,
    /// Container logs.
    #[arg(long, default_value = "/var/log/noderun/pods")]
    log_dir: PathBuf,
    /// The cgroup the pods go under (relative to the hierarchy roots).
    #[arg(long, default_value = "noderun")]
    cgroup_parent: PathBuf,
    /// Keep the bridge and host veth ends in this network namespace (a
    /// path like /run/netns/pods) instead of the host's.
    #[arg(long, value_name = "PATH")]
    host_netns: Option<PathBuf>,
    /// Masquerade pod traffic leaving the pod CIDR (needs nft).
    #[arg(long)]
    masquerade: bool,
    /// A container's log file is rotated before it passes this size
    /// (kubelet's containerLogMaxSize).
    #[arg(long, value_name = "SIZE", default_value = "10Mi")]
    container_log_max_size: String,
    /// Log files kept per container instance, the live one included
    /// (kubelet's containerLogMaxFiles).
    #[arg(long, value_name = "N", default_value_t = 5)]
    container_log_max_files: u32,
    /// The resolv.conf pods get theirs from, without its loopback
    /// nameservers (kubelet's --resolv-conf; on a host with a local
    /// resolver, point it at the upstream file, such as
    /// /run/systemd/resolve/resolv.conf).
    #[arg(long, value_name = "PATH", default_value = "/etc/resolv.conf")]
    resolv_conf: PathBuf,
}

impl HostArgs {
    fn config(&self, state_dir: &Path) -> Result<HostConfig> {
        Ok(HostConfig {
            state_dir: state_dir.into(),
            agent: AgentConfig {
                run_dir: self.run_dir.clone(),
                log_dir: self.log_dir.clone(),
                cgroup_parent: self.cgroup_parent.clone(),
                log_rotation: parse_log_rotation(
                    &self.container_log_max_size,
                    self.container_log_max_files,
                )?,
                resolv_conf: self.resolv_conf.clone(),
            },
            bridge: self.bridge.clone(),
            pod_cidr: self.pod_cidr.clone(),
            host_netns: self.host_netns.clone(),
            masquerade: self.masquerade,
        })
    }
}

/// Run the node daemon: register this host as a Node, heartbeat, and run
/// the pods bound to it.
///
/// Example: noderun agent --control-plane /run/noderun/controlplane.sock --token /etc/noderun/node.token
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct AgentArgs {
    /// The apiserver: a Unix socket path, or HOST:PORT (TLS, with --ca).
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "/run/noderun/controlplane.sock"
    )]
    control_plane: String,
    /// A file holding the node's token (a `TOKEN,node:<name>` line in the
    /// control plane's tokens file).
    #[arg(long, value_name = "FILE")]
    token: PathBuf,
    /// The cluster CA (the control plane's <data-dir>/pki/ca.crt), for TLS.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// The node's name; default the host name.
    #[arg(long)]
    node_name: Option<String>,
    /// Labels the node registers with: k=v,k2=v2.
    #[arg(long, default_value = "")]
    labels: String,
    /// Taints the node registers with: k=v:NoSchedule,k2:NoExecute.
    #[arg(long, default_value = "")]
    taints: String,
    /// The `pods` capacity.
    #[arg(long, default_value_t = 110)]
    max_pods: i64,
    /// How many container runners to fork (each creates one container at
    /// a time; a container is always served by the same one); default
    /// one per CPU.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    runners: Option<u16>,
    /// How many pod starts run at once (the others wait their turn); 0:
    /// no limit; default two per CPU.
    #[arg(long, value_name = "N")]
    parallel_pod_starts: Option<usize>,
    /// The node's address (its pods' hostIP); default the source address
    /// of the default route.
    #[arg(long)]
    node_ip: Option<IpAddr>,
    /// Hard eviction thresholds, as the kubelet's: SIGNAL<AMOUNT,... with
    /// signals memory.available, nodefs.available, nodefs.inodesFree,
    /// imagefs.available, imagefs.inodesFree, pid.available and amounts
    /// such as 100Mi or 10%. Given, it replaces all the defaults
    /// (memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%,
    /// imagefs.available<15%,imagefs.inodesFree<5%); "" turns eviction off.
    #[arg(long, value_name = "THRESHOLDS")]
    eviction_hard: Option<String>,
    /// Soft eviction thresholds (same syntax): each turns its pressure
    /// condition on at once, and evicts (gracefully) once it has held for
    /// its --eviction-soft-grace-period.
    #[arg(long, value_name = "THRESHOLDS", default_value = "")]
    eviction_soft: String,
    /// How long each soft threshold must hold before it evicts:
    /// SIGNAL=DURATION,... such as memory.available=1m30s.
    #[arg(long, value_name = "PERIODS", default_value = "")]
    eviction_soft_grace_period: String,
    /// The longest grace period (seconds) a pod evicted by a soft
    /// threshold gets; 0 or less: the pod's own terminationGracePeriodSeconds.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    eviction_max_pod_grace_period: i64,
    /// How long a pressure condition stays True after its thresholds were
    /// last met.
    #[arg(long, value_name = "DURATION", default_value = "5m0s")]
    eviction_pressure_transition_period: String,
    /// How often the eviction signals are read.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    eviction_monitoring_interval: String,
    /// Resources held back for the system (cpu=100m,memory=500Mi): taken
    /// off the node's allocatable.
    #[arg(long, value_name = "LIST", default_value = "")]
    system_reserved: String,
    /// Resources held back for noderun itself, like --system-reserved.
    #[arg(long, value_name = "LIST", default_value = "")]
    kube_reserved: String,
    #[command(flatten)]
    host: HostArgs,
}

/// Tear down every pod on this node, its bridge and cgroups (stop the
/// daemon first).
#[derive(Debug, Args)]
pub struct ResetArgs {
    #[command(flatten)]
    host: HostArgs,
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

/// The runners are forked first, while this process has one thread.
fn start_runners(count: Option<u16>) -> Result<Runner> {
    let count = count.map_or_else(runner::default_pool_size, usize::from);
    Runner::start_pool(count).with_context(|| format!("starting {count} container runner(s)"))
}

pub fn run_agent(state_dir: &Path, args: &AgentArgs) -> Result<()> {
    init_logs();
    let runner = start_runners(args.runners)?;
    let token = std::fs::read_to_string(&args.token)
        .with_context(|| format!("reading the node token {}", args.token.display()))?;
    let endpoint = parse_endpoint(&args.control_plane, args.ca.clone())?;
    let node_name = args.node_name.clone().unwrap_or_else(facts::hostname);
    let mut config = NodeConfig::new(
        endpoint,
        token.trim().to_string(),
        node_name,
        args.host.pod_cidr.clone(),
        args.node_ip.unwrap_or_else(facts::default_address),
    );
    config.labels = parse_labels(&args.labels)?;
    config.taints = parse_taints(&args.taints)?;
    config.max_pods = args.max_pods;
    if let Some(n) = args.parallel_pod_starts {
        config.parallel_starts = n;
    }
    config.reserved = parse_reserved(&args.system_reserved)
        .context("--system-reserved")?
        .plus(parse_reserved(&args.kube_reserved).context("--kube-reserved")?);
    config.eviction.hard = match &args.eviction_hard {
        Some(text) => parse_thresholds(text).context("--eviction-hard")?,
        None => default_thresholds(),
    };
    let soft = parse_thresholds(&args.eviction_soft).context("--eviction-soft")?;
    config.eviction.soft = with_grace_periods(soft, &args.eviction_soft_grace_period, |t| {
        parse_duration(t).map_err(|e| e.to_string())
    })
    .context("--eviction-soft-grace-period")?;
    config.eviction.max_pod_grace = (args.eviction_max_pod_grace_period > 0)
        .then(|| std::time::Duration::from_secs(args.eviction_max_pod_grace_period as u64));
    config.eviction.pressure_transition = parse_duration(&args.eviction_pressure_transition_period)
        .context("--eviction-pressure-transition-period")?;
    config.eviction.monitoring_interval = parse_duration(&args.eviction_monitoring_interval)
        .context("--eviction-monitoring-interval")?;
    if config.eviction.monitoring_interval.is_zero() {
        anyhow::bail!("--eviction-monitoring-interval must be more than 0");
    }
    config.eviction.state_dir = state_dir.into();
    let host = args
        .host
        .config(state_dir)?
        .open(runner)
        .context("opening the node's pod host")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("stopping; pods keep running");
            let _ = stop_tx.send(true);
        });
        node::run(config, host, stop)
            .await
            .context("running the node")
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

pub fn run_reset(state_dir: &Path, args: &ResetArgs) -> Result<()> {
    init_logs();
    let runner = start_runners(Some(1))?;
    let host = args
        .host
        .config(state_dir)?
        .open(runner)
        .context("opening the node's pod host")?;
    let removed = reconcile::reset(&host, args.host.host_netns.as_deref())
        .context("tearing down the node")?;
    println!(
        "removed {} pod(s), bridge {}",
        removed.len(),
        args.host.bridge
    );
    Ok(())
}
