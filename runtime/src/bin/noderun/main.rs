//! `noderun`: the node's command line. Today it manages the node's images
//! (`noderun image ...`); the node agent daemon joins it as another
//! subcommand.

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
    /// Manage the node's images.
    #[command(subcommand)]
    Image(image::ImageCommand),
}

fn main() {
    let cli = Cli::parse();
    let result: Result<()> = match &cli.command {
        Command::Image(c) => image::run(&cli.state_dir, c),
    };
    if let Err(e) = result {
        eprintln!("noderun: error: {e:#}");
        std::process::exit(1);
    }
}
