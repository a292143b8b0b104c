//! `controlplane`: the store, the apiserver, the controllers and the
//! scheduler in one process.
//!
//! ```text
//! controlplane --data-dir /var/lib/noderun/controlplane --listen 0.0.0.0:6443
//! controlplane --data-dir /var/lib/noderun/controlplane --store etcd://127.0.0.1:2379
//! ```
//!
//! On first start it makes the admin token, the controllers' and the
//! scheduler's tokens and the cluster CA under the data dir and says where
//! they are. The objects live in the embedded store under the data dir, or
//! in etcd with `--store etcd://...`. The controllers and the scheduler
//! talk to the apiserver over its Unix socket as `system:controllers` and
//! `system:scheduler`, like any other client (`--no-controllers` and
//! `--no-scheduler` leave them out).

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use noderun_controlplane::apiserver::{
    self, bootstrap, compactor, pki::PkiPaths, Apiserver, Authenticator, Listen, ServeOptions,
};
use noderun_controlplane::client::Endpoint;
use noderun_controlplane::controllers::{self, Connector, ControllerOptions};
use noderun_controlplane::scheduler::{self, SchedulerOptions};
use noderun_controlplane::store::{EmbeddedOptions, EmbeddedStore, Store};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// The noderun control plane: the store, the apiserver, the controllers and
/// the scheduler.
///
/// Example: controlplane --data-dir /var/lib/noderun/controlplane --listen 0.0.0.0:6443
///
/// With etcd: controlplane --store etcd://127.0.0.1:2379
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Where the store, tokens and TLS files live.
    #[arg(long, default_value = "/var/lib/noderun/controlplane")]
    data_dir: PathBuf,
    /// Where the objects live: `embedded` (a file under the data dir) or
    /// `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]` (an etcd v3 cluster; keys
    /// under /PREFIX/, default /noderun/).
    #[arg(long, value_name = "URL", default_value = "embedded")]
    store: String,
    /// The Unix socket for local clients (root only).
    #[arg(long, default_value = "/run/noderun/controlplane.sock")]
    socket: PathBuf,
    /// Serve TLS on this TCP address too (nodes on other hosts use it).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Serve plaintext TCP on this loopback address (tests only).
    #[arg(long, value_name = "ADDR")]
    insecure_listen: Option<SocketAddr>,
    /// The tokens file (`token,identity` lines); default <data-dir>/tokens.csv.
    #[arg(long)]
    tokens_file: Option<PathBuf>,
    /// Live events a watch may fall behind before it must relist.
    #[arg(long, default_value_t = 1024)]
    watch_buffer: usize,
    /// Revisions of history kept for watches and lists at old revisions;
    /// older ones are compacted every minute.
    #[arg(long, default_value_t = 100_000)]
    keep_revisions: u64,
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Do not run the controllers (ReplicaSet, node lifecycle, taint
    /// eviction, garbage collection) in this process.
    #[arg(long)]
    no_controllers: bool,
    /// The controllers' token; default <data-dir>/controllers.token. Its
    /// line in the tokens file names the identity system:controllers.
    #[arg(long, value_name = "PATH")]
    controllers_token_file: Option<PathBuf>,
    /// A node whose Lease is not renewed for this long becomes
    /// unreachable (`40s`, `2.5s`, or seconds).
    #[arg(long, value_name = "DURATION", default_value = "40s", value_parser = parse_duration)]
    node_monitor_grace_period: Duration,
    /// How long pods without a toleration of their own stay on an
    /// unreachable or not-ready node before they are evicted.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    default_toleration_seconds: i64,
    /// Do not run the scheduler in this process (pods stay unbound unless
    /// another scheduler binds them).
    #[arg(long)]
    no_scheduler: bool,
    /// The scheduler's token; default <data-dir>/scheduler.token. Its
    /// line in the tokens file names the identity system:scheduler.
    #[arg(long, value_name = "PATH")]
    scheduler_token_file: Option<PathBuf>,
}

/// A connector to this process's socket with the token in `path`.
fn connector(socket: &Path, path: &Path, identity: &str, flag: &str) -> Result<Connector> {
    let token = std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading the token of {identity} {}; put a `TOKEN,{identity}` line in the tokens \
             file and TOKEN in this file, or start with {flag}",
            path.display()
        )
    })?;
    Ok(Connector {
        endpoint: Endpoint::Unix(socket.to_owned()),
        token: token.trim().to_owned(),
    })
}

/// `40s`, `2.5s` or `40` (seconds).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let number = text.strip_suffix('s').unwrap_or(text);
    number
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("{text:?} is not a duration; write seconds, like 40s or 2.5"))
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    init_logs(args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    if let Some(addr) = args.insecure_listen.filter(|a| !a.ip().is_loopback()) {
        bail!("--insecure-listen {addr} is not a loopback address; use --listen for TLS");
    }
    if args.store == "embedded" {
        let store = EmbeddedStore::open(&EmbeddedOptions {
            data_dir: args.data_dir.clone(),
        })
        .with_context(|| format!("opening the store in {}", args.data_dir.display()))?;
        return serve(store, args).await;
    }
    if args.store.starts_with("etcd://") {
        return serve(connect_etcd(&args.store).await?, args).await;
    }
    bail!(
        "--store {:?}: write `embedded` or etcd://HOST:PORT (e.g. etcd://127.0.0.1:2379)",
        args.store
    )
}

#[cfg(feature = "etcd")]
async fn connect_etcd(url: &str) -> Result<noderun_controlplane::store::EtcdStore> {
    use noderun_controlplane::store::{EtcdOptions, EtcdStore};
    let options = EtcdOptions::from_url(url)?;
    EtcdStore::connect(&options)
        .await
        .with_context(|| format!("connecting to etcd at {url}; is etcd running there?"))
}

#[cfg(not(feature = "etcd"))]
async fn connect_etcd(url: &str) -> Result<EmbeddedStore> {
    bail!("--store {url}: this controlplane was built without etcd support; build it with `--features etcd` (needs protoc)")
}

/// Serve the apiserver on `store` until SIGTERM or Ctrl-C.
async fn serve<S: Store>(store: S, args: Args) -> Result<()> {
    let data_dir = &args.data_dir;
    bootstrap::ensure_namespaces(&store)
        .await
        .context("creating the built-in namespaces")?;
    let tokens = bootstrap::ensure_tokens(data_dir).context("making the admin token")?;
    let tokens_file = args.tokens_file.clone().unwrap_or(tokens.tokens.clone());
    let authn = Authenticator::load(&tokens_file)?;
    let mut listen = Listen {
        socket: Some(args.socket.clone()),
        tls: None,
        insecure: args.insecure_listen,
    };
    let pki = PkiPaths::in_data_dir(data_dir);
    if let Some(addr) = args.listen {
        let names = if addr.ip().is_unspecified() {
            Vec::new()
        } else {
            vec![addr.ip().to_string()]
        };
        apiserver::pki::ensure(&pki, &names)
            .context("making the cluster CA and server certificate")?;
        let config = apiserver::pki::server_config(&pki)?;
        listen.tls = Some((addr, config));
    }
    let options = ServeOptions {
        watch_buffer: args.watch_buffer,
        ..ServeOptions::default()
    };
    let server = Arc::new(Apiserver::new(store, authn, options));
    let compacting = Arc::clone(&server);
    let keep = args.keep_revisions;
    let compactor = tokio::spawn(async move {
        compactor::run(compacting.store(), Duration::from_secs(60), keep).await
    });
    let running = apiserver::start(server, listen).await?;
    let (stop_background, stopped) = tokio::sync::watch::channel(false);
    let mut background = Vec::new();
    if !args.no_controllers {
        let token_file = (args.controllers_token_file.clone())
            .unwrap_or_else(|| tokens.controllers_token.clone());
        let connector = connector(
            &args.socket,
            &token_file,
            "system:controllers",
            "--no-controllers",
        )?;
        let options = ControllerOptions {
            node_monitor_grace_period: args.node_monitor_grace_period,
            default_toleration_seconds: args.default_toleration_seconds,
            ..ControllerOptions::default()
        };
        let task = tokio::spawn(controllers::run(connector, options, stopped.clone()));
        background.push(("controllers", task));
    }
    if !args.no_scheduler {
        let token_file =
            (args.scheduler_token_file.clone()).unwrap_or_else(|| tokens.scheduler_token.clone());
        let connector = connector(
            &args.socket,
            &token_file,
            "system:scheduler",
            "--no-scheduler",
        )?;
        let options = SchedulerOptions::default();
        let task = tokio::spawn(scheduler::run(connector, options, stopped));
        background.push(("scheduler", task));
    }
    if tokens.created {
        println!(
            "admin token written to {} (mode 0600)",
            tokens.admin_token.display()
        );
    }
    println!("tokens file: {}", tokens_file.display());
    if args.listen.is_some() {
        println!(
            "cluster CA: {} (clients verify the server with it)",
            pki.ca_cert.display()
        );
    }
    println!("serving on {}", args.socket.display());
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    let _ = stop_background.send(true);
    for (what, task) in background {
        if tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .is_err()
        {
            tracing::warn!("the {what} did not stop within 10 s; going on");
        }
    }
    running.shutdown().await;
    compactor.abort();
    Ok(())
}
