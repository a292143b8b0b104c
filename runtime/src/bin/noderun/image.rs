//! `noderun image list|import|remove|export|prune` over the node's image
//! store and snapshotter.

use anyhow::{Context, Result};
use clap::Subcommand;
use noderun_runtime::image::registry::{self, Credentials, PullOptions};
use noderun_runtime::image::ImageStore;
use noderun_runtime::snapshot::{collect_garbage, Snapshotter};
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List the images: reference, manifest digest, size of the layers.
    #[command(alias = "ls")]
    List,
    /// Import an OCI image layout or a `docker save` archive (directory or tar).
    Import {
        path: PathBuf,
        /// Name for images the archive leaves unnamed (and repository for
        /// entries named by a bare tag).
        #[arg(long)]
        name: Option<String>,
    },
    /// Pull an image from its registry (HTTP only to loopback registries).
    ///
    /// Credentials, when the registry asks for them: --username with the
    /// password on stdin, else NODERUN_REGISTRY_AUTH=user:password, else the
    /// registry's `auths` entry in $DOCKER_CONFIG/config.json or
    /// ~/.docker/config.json.
    ///
    /// Example: echo "$PW" | noderun image pull --username alice --password-stdin 127.0.0.1:5000/ns/app:v1
    #[command(verbatim_doc_comment)]
    Pull {
        /// The image: `busybox`, `127.0.0.1:5000/ns/app:v1`, `repo@sha256:...`.
        reference: String,
        /// How many blobs download at once.
        #[arg(long, default_value_t = 3)]
        parallel: usize,
        /// The user to log in as (with --password-stdin).
        #[arg(long, short = 'u', requires = "password_stdin")]
        username: Option<String>,
        /// Read the password from standard input (one line).
        #[arg(long, requires = "username")]
        password_stdin: bool,
    },
    /// Remove images by reference, then free what nothing needs any more.
    #[command(alias = "rm")]
    Remove {
        #[arg(required = true)]
        refs: Vec<String>,
    },
    /// Write images as an OCI image layout tar.
    Export {
        #[arg(required = true)]
        refs: Vec<String>,
        /// The tar file to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Remove blobs and snapshots no image or container needs, and the
    /// partial downloads of pulls that were interrupted.
    Prune,
}

pub fn run(state: &Path, command: &ImageCommand) -> Result<()> {
    let images = ImageStore::open(&state.join("images"))
        .with_context(|| format!("opening the image store under {}", state.display()))?;
    match command {
        ImageCommand::List => list(&images),
        ImageCommand::Import { path, name } => {
            let records = images
                .import_path(path, name.as_deref())
                .with_context(|| format!("importing {}", path.display()))?;
            for r in records {
                println!("imported {} {}", r.name, r.manifest);
            }
            Ok(())
        }
        ImageCommand::Pull {
            reference,
            parallel,
            username,
            password_stdin: _,
        } => pull(&images, reference, *parallel, username.as_deref()),
        ImageCommand::Remove { refs } => {
            for r in refs {
                let record = images.remove(r).with_context(|| format!("removing {r}"))?;
                println!("removed {}", record.name);
            }
            prune(state, &images)
        }
        ImageCommand::Export { refs, output } => {
            let names: Vec<&str> = refs.iter().map(String::as_str).collect();
            let tmp = output.with_extension("partial");
            let file = std::fs::File::create(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            let written = images
                .export(&names, std::io::BufWriter::new(file))
                .context("exporting")
                .and_then(|()| {
                    std::fs::rename(&tmp, output)
                        .with_context(|| format!("writing {}", output.display()))
                });
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            written
        }
        ImageCommand::Prune => prune(state, &images),
    }
}

fn pull(images: &ImageStore, reference: &str, parallel: usize, user: Option<&str>) -> Result<()> {
    let options = PullOptions {
        credentials: credentials(reference, user)?,
        parallel,
    };
    let report = registry::pull(images, reference, &options)
        .with_context(|| format!("pulling {reference}"))?;
    println!(
        "pulled {} {} ({} blobs, {} bytes transferred)",
        report.record.name, report.record.manifest, report.blobs_fetched, report.bytes
    );
    Ok(())
}

/// The credentials for `reference`'s registry: `user` with the password
/// read from stdin, else the environment, else the docker config.
fn credentials(reference: &str, user: Option<&str>) -> Result<Option<Credentials>> {
    let explicit = match user {
        Some(user) => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the password from stdin")?;
            let password = line.trim_end_matches(['\n', '\r']);
            Some(Credentials::new(user, password)?)
        }
        None => None,
    };
    let registry = registry::registry_of(reference)?;
    let env = std::env::var(registry::AUTH_ENV).ok();
    let config = Credentials::docker_config_path(
        std::env::var_os("DOCKER_CONFIG").as_deref().map(Path::new),
        std::env::var_os("HOME").as_deref().map(Path::new),
    );
    Credentials::resolve(explicit, env.as_deref(), config.as_deref(), &registry)
        .with_context(|| format!("finding credentials for {registry}"))
}

fn list(images: &ImageStore) -> Result<()> {
    let mut rows = vec![[
        "REFERENCE".to_string(),
        "DIGEST".to_string(),
        "SIZE".to_string(),
    ]];
    for (record, image) in images.images()? {
        let size: u64 = image.layers.iter().map(|l| l.size).sum();
        let digest = record.manifest.to_string();
        let short = digest.get(..19).unwrap_or(&digest).to_string();
        rows.push([record.name, short, human_size(size)]);
    }
    let width = |i: usize| rows.iter().map(|r| r[i].len()).max().unwrap_or(0);
    let (w0, w1) = (width(0), width(1));
    for r in &rows {
        println!("{:<w0$}   {:<w1$}   {}", r[0], r[1], r[2]);
    }
    Ok(())
}

fn prune(state: &Path, images: &ImageStore) -> Result<()> {
    let snapshots = Snapshotter::new(&state.join("snapshots"))
        .with_context(|| format!("opening the snapshotter under {}", state.display()))?;
    let report = collect_garbage(images, &snapshots).context("garbage collection")?;
    println!(
        "freed {} blobs, {} partial downloads ({}), {} snapshots",
        report.blobs.blobs_removed,
        report.blobs.partials_removed,
        human_size(report.blobs.bytes_removed),
        report.snapshots_removed + report.orphans_removed
    );
    Ok(())
}

/// Sizes as `docker images` prints them (decimal units).
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
