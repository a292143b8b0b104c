//! `noderun`: the node's command line: the node daemon (`noderun agent`),
//! taking the node down (`noderun reset`), and the node's images
//! (`noderun image ...`).

mod agent;
mod image;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// noderun: the node of a small Kubernetes-style system.
#[derive(Debug, Parser)]
#[command(name = "noderun", version, about, long_about = None)]
struct Cli {
    /// The node's state: images under `images/`, snapshots under
    /// `snapshots/`.
    #[arg(long, global = true, default_value = "/var/lib/noderun")]
    state_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the node daemon.
    Agent(Box<agent::AgentArgs>),
    /// Tear down every pod on this node, its bridge and cgroups.
    Reset(agent::ResetArgs),
    /// Manage the node's images.
    #[command(subcommand)]
    Image(image::ImageCommand),
}

fn main() {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Agent(_)) {
        // The daemon's containers are clones of it until they exec: it runs
        // from a read-only view of its binary (one re-exec at start), so
        // none of them can reach the host's file (see sys::selfexe).
        if let Err(e) = noderun_runtime::sys::selfexe::ensure_protected_exe() {
            eprintln!("noderun: error: {e}");
            std::process::exit(1);
        }
    }
    let result: Result<()> = match &cli.command {
        Command::Agent(a) => agent::run_agent(&cli.state_dir, a),
        Command::Reset(a) => agent::run_reset(&cli.state_dir, a),
        Command::Image(c) => image::run(&cli.state_dir, c),
    };
    if let Err(e) = result {
        eprintln!("noderun: error: {e:#}");
        std::process::exit(1);
    }
}
