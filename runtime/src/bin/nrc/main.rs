//! `nrc`: the runc-compatible command line over `noderun_runtime`. Parses
//! flags, calls the library, reports errors (to `--log` as text or JSON when
//! given, as containerd expects) and maps them to exit codes.

mod args;
mod exec;
mod report;
mod terminal;

use anyhow::{bail, Context, Result};
use args::{Cli, Command, ListFormat, UpdateArgs};
use clap::Parser;
use noderun_runtime::container::{self, Container, CreateOptions, Status};
use std::path::Path;

fn main() {
    let cli = Cli::parse();
    if must_reexec(&cli) {
        // Containers start from a binary nothing can write, never from the
        // host's file as it is: where the exec trampoline cannot serve, nrc
        // re-executes from a read-only view (see container::exe_guard).
        if let Err(e) = noderun_runtime::sys::selfexe::ensure_protected_exe() {
            report::error(&cli, &anyhow::Error::new(e));
            std::process::exit(1);
        }
    }
    let code = match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            report::error(&cli, &e);
            1
        }
    };
    std::process::exit(code);
}

/// Whether this command starts a container process that the exec
/// trampoline cannot serve (its seccomp profile may refuse execveat, or the
/// kernel will not execute a memfd). A config that cannot be read is left
/// to the command to report.
fn must_reexec(cli: &Cli) -> bool {
    let seccomp = match &cli.command {
        Command::Create(a) => bundle_seccomp(&a.bundle),
        Command::Run(a) => bundle_seccomp(&a.create.bundle),
        Command::Exec(a) => Container::load(&cli.root, &a.id)
            .ok()
            .and_then(|c| c.record.linux.and_then(|l| l.seccomp().clone())),
        _ => return false,
    };
    container::exe_guard::trampoline_serves(seccomp.as_ref()).is_err()
}

/// The bundle's `linux.seccomp`, read without the rest of the spec.
fn bundle_seccomp(bundle: &Path) -> Option<oci_spec::runtime::LinuxSeccomp> {
    #[derive(serde::Deserialize)]
    struct Config {
        linux: Option<Linux>,
    }
    #[derive(serde::Deserialize)]
    struct Linux {
        seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    }
    let text = std::fs::read(bundle.join("config.json")).ok()?;
    serde_json::from_slice::<Config>(&text).ok()?.linux?.seccomp
}

fn run(cli: &Cli) -> Result<i32> {
    if cli.systemd_cgroup {
        bail!(
            "--systemd-cgroup is not supported: nrc manages cgroup files directly (drop the flag)"
        );
    }
    let root = &cli.root;
    match &cli.command {
        Command::Create(a) => {
            container::create(root, &a.id, &a.bundle, &create_options(a))
                .with_context(|| format!("creating container {}", a.id))?;
        }
        Command::Start { id } => {
            container::start(&load(root, id)?).with_context(|| format!("starting {id}"))?
        }
        Command::Run(a) => return run_container(root, a),
        Command::Exec(a) => return exec::run(&load(root, &a.id)?, a),
        Command::State { id } => println!(
            "{}",
            serde_json::to_string_pretty(&load(root, id)?.state())?
        ),
        Command::Kill { id, signal, all } => {
            let sig = container::parse_signal(signal)?;
            container::kill(&load(root, id)?, sig, *all)
                .with_context(|| format!("signalling {id}"))?;
        }
        Command::Delete { id, force } => delete(root, id, *force)?,
        Command::List { format, quiet } => list(root, *format, *quiet)?,
        Command::Ps { id, format } => ps(&load(root, id)?, *format)?,
        Command::Pause { id } => container::pause(&load(root, id)?)?,
        Command::Resume { id } => container::resume(&load(root, id)?)?,
        Command::Update(a) => update(root, a)?,
        Command::Events {
            id,
            stats,
            interval,
        } => events(&load(root, id)?, *stats, *interval)?,
        Command::Features => println!("{}", serde_json::to_string_pretty(&report::features())?),
        Command::Spec { bundle } => write_default_spec(bundle)?,
    }
    Ok(0)
}

fn load(root: &Path, id: &str) -> Result<Container> {
    Ok(Container::load(root, id)?)
}

fn create_options(a: &args::CreateArgs) -> CreateOptions {
    CreateOptions {
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        no_pivot: a.no_pivot,
    }
}

/// create + start + wait + delete; the exit code is the container's.
fn run_container(root: &Path, a: &args::RunArgs) -> Result<i32> {
    let id = &a.create.id;
    let mut options = create_options(&a.create);
    // In the foreground, a terminal the caller did not ask to receive is
    // nrc's to proxy, as runc does.
    let console = match options.console_socket {
        None if !a.detach && terminal::wants_terminal(&a.create.bundle) => {
            let socket = terminal::ConsoleSocket::new(id)?;
            options.console_socket = Some(socket.path());
            Some(socket)
        }
        _ => None,
    };
    let created = container::create(root, id, &a.create.bundle, &options)
        .with_context(|| format!("creating container {id}"))?;
    let c = load(root, id)?;
    let master = match console.as_ref().map(|s| s.receive()).transpose() {
        Ok(m) => m,
        Err(e) => {
            let _ = container::delete(&c, true);
            return Err(e);
        }
    };
    if let Err(e) = container::start(&c) {
        let _ = container::delete(&c, true);
        return Err(e).with_context(|| format!("starting {id}"));
    }
    if a.detach {
        return Ok(0);
    }
    if let Some(master) = master {
        terminal::proxy(master)?;
    }
    let exit = noderun_runtime::sys::spawn::wait_exit(created.pid)?;
    container::delete(&c, true).with_context(|| format!("deleting {id}"))?;
    Ok(exit.shell_code())
}

fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    match Container::load(root, id) {
        Ok(c) => Ok(container::delete(&c, force).with_context(|| format!("deleting {id}"))?),
        // runc: deleting a missing container with --force succeeds.
        Err(container::ContainerError::NotFound(_)) if force => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn list(root: &Path, format: ListFormat, quiet: bool) -> Result<()> {
    let all = container::list(root)?;
    if quiet {
        all.iter().for_each(|c| println!("{}", c.record.id));
        return Ok(());
    }
    match format {
        ListFormat::Json => {
            let states: Vec<_> = all.iter().map(Container::state).collect();
            println!("{}", serde_json::to_string(&states)?);
        }
        ListFormat::Table => {
            println!(
                "{:<24} {:<8} {:<9} {:<40} {:<32}",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for c in &all {
                let status = c.status();
                let pid = if status == Status::Stopped {
                    0
                } else {
                    c.record.pid
                };
                let r = &c.record;
                println!(
                    "{:<24} {:<8} {:<9} {:<40} {:<32}",
                    r.id,
                    pid,
                    status,
                    r.bundle.display(),
                    r.created
                );
            }
        }
    }
    Ok(())
}

fn ps(c: &Container, format: ListFormat) -> Result<()> {
    let pids = c.cgroup.pids()?;
    match format {
        ListFormat::Json => println!("{}", serde_json::to_string(&pids)?),
        ListFormat::Table => {
            println!("{:>8} CMD", "PID");
            for pid in pids {
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                println!("{pid:>8} {}", cmd.trim_end());
            }
        }
    }
    Ok(())
}

fn update(root: &Path, a: &UpdateArgs) -> Result<()> {
    let c = load(root, &a.id)?;
    let mut r = match &a.resources {
        Some(path) => {
            let text = if path.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?
            };
            let spec: oci_spec::runtime::LinuxResources = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            container::resources_from_spec(&spec)
        }
        None => Default::default(),
    };
    r.memory_limit = a.memory.or(r.memory_limit);
    r.memory_swap = a.memory_swap.or(r.memory_swap);
    r.memory_reservation = a.memory_reservation.or(r.memory_reservation);
    r.cpu_shares = a.cpu_shares.or(r.cpu_shares);
    r.cpu_quota = a.cpu_quota.or(r.cpu_quota);
    r.cpu_period = a.cpu_period.or(r.cpu_period);
    r.cpuset_cpus = a.cpuset_cpus.clone().or(r.cpuset_cpus);
    r.cpuset_mems = a.cpuset_mems.clone().or(r.cpuset_mems);
    r.pids_limit = a.pids_limit.or(r.pids_limit);
    r.blkio_weight = a.blkio_weight.or(r.blkio_weight);
    c.cgroup
        .apply(&r)
        .with_context(|| format!("updating {}", a.id))?;
    Ok(())
}

fn events(c: &Container, once: bool, interval: u64) -> Result<()> {
    loop {
        let s = c.cgroup.stats()?;
        let doc = serde_json::json!({
            "type": "stats",
            "id": c.record.id,
            "data": {
                "memory": {"usage": {"usage": s.memory_usage, "max": s.memory_max_usage, "limit": s.memory_limit}, "oomKills": s.oom_kills},
                "cpu": {"usage": {"total": s.cpu_usage_ns}, "throttling": {"throttledPeriods": s.cpu_throttled_periods}},
                "pids": {"current": s.pids_current, "limit": s.pids_limit},
            }
        });
        println!("{doc}");
        if once || c.status() == Status::Stopped {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_secs(interval.max(1)));
    }
}

fn write_default_spec(bundle: &Path) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        bail!("{} already exists; remove it first", path.display());
    }
    let spec = report::default_spec();
    std::fs::write(&path, serde_json::to_string_pretty(&spec)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
