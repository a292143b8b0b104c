//! `ctl`: the user's command line for a noderun cluster, kubectl-like.
//! Flags are in `args.rs`; tables and hints in the library's `ctl` module.

mod args;

use anyhow::{bail, Context, Result};
use args::{Cli, Command, Create, Output};
use clap::Parser;
use noderun_controlplane::client::{Client, ClientError, DeleteOptions, Endpoint, ListOptions};
use noderun_controlplane::ctl::config::{self, Settings};
use noderun_controlplane::ctl::{apply, columns, describe, hint, stream, table, terminal};
use noderun_core::manifest;
use noderun_core::proto::{ErrorCode, EventType, StreamKind, StreamTarget};
use noderun_core::{
    Container, Kind, LabelSelector, Namespace, Object, ObjectMeta, Pod, PodSpec, Time,
};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    // A read of stdin may still be pending (exec -i): do not wait for it.
    runtime.shutdown_background();
    match result {
        Ok(0) => ExitCode::SUCCESS,
        // A command's exit code (exec): 1-255 as the shell shows it.
        Ok(code) => ExitCode::from(u8::try_from(code.clamp(1, 255)).unwrap_or(1)),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The connection settings: flags, then the config file.
fn settings(cli: &Cli) -> Result<Settings> {
    let c = &cli.conn;
    let flags = Settings {
        socket: c.socket.clone(),
        server: c.server.clone(),
        ca_file: c.ca_file.clone(),
        token_file: c.token_file.clone(),
    };
    let file = match c
        .config
        .clone()
        .or_else(|| config::default_path().filter(|p| p.exists()))
    {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading the config file {}", path.display()))?;
            Settings::parse(&text, &path)?
        }
        None => Settings::default(),
    };
    Ok(flags.or(file))
}

/// A client error with the next step appended.
fn explain(err: ClientError, endpoint: &Endpoint) -> anyhow::Error {
    match hint::next_step(&err, endpoint) {
        Some(next) => anyhow::anyhow!("{:#}\n  next: {next}", anyhow::Error::new(err)),
        None => anyhow::Error::new(err),
    }
}

/// Run the command; its exit code (0 unless `exec` says otherwise).
async fn run(cli: Cli) -> Result<i32> {
    let settings = settings(&cli)?;
    let endpoint = settings.endpoint();
    let token_file = settings.token_file();
    let token = std::fs::read_to_string(&token_file).with_context(|| {
        format!(
            "reading the token from {}; pass --token-file (controlplane writes the admin token to {}/admin.token on first start)",
            token_file.display(),
            hint::DEFAULT_DATA_DIR
        )
    })?;
    let ctl = format!("ctl/{}", env!("CARGO_PKG_VERSION"));
    let client = Client::connect(&endpoint, token.trim(), &ctl)
        .await
        .map_err(|e| explain(e, &endpoint))?;
    let ns = cli.namespace.as_str();
    let result = match cli.command {
        Command::Create(create) => create_cmd(&client, ns, create).await,
        Command::Apply { file } => apply(&client, ns, &file).await,
        Command::Get {
            kind,
            name,
            output,
            all_namespaces,
            selector,
            watch,
        } => {
            let selector = match selector.as_deref() {
                Some(s) => LabelSelector::parse(s).with_context(|| format!("selector {s:?}"))?,
                None => LabelSelector::default(),
            };
            let args = GetArgs {
                kind: kind.parse()?,
                name: name.as_deref(),
                scope: Scope {
                    ns,
                    all: all_namespaces,
                },
                selector,
                output,
                watch,
            };
            get(&client, args).await
        }
        Command::Describe { kind, name } => {
            let kind: Kind = kind.parse()?;
            let object = client.get(kind, scoped(kind, ns), &name).await?;
            print!("{}", describe::describe(&object, Time::now()));
            Ok(())
        }
        Command::Delete { kind, name, force } => {
            delete(&client, kind.parse()?, ns, &name, force).await
        }
        Command::Scale {
            kind,
            name,
            replicas,
        } => scale(&client, kind.parse()?, ns, &name, replicas).await,
        Command::Logs {
            pod,
            container,
            follow,
            tail,
            previous,
        } => {
            let kind = StreamKind::Logs {
                follow,
                tail_lines: tail,
                previous,
            };
            return stream_cmd(&client, ns, pod, container, kind, false).await;
        }
        Command::Exec {
            pod,
            container,
            stdin,
            tty,
            command,
        } => {
            let kind = StreamKind::Exec {
                command,
                stdin,
                tty,
            };
            return stream_cmd(&client, ns, pod, container, kind, tty).await;
        }
    };
    result
        .map(|()| 0)
        .map_err(|e| match e.downcast::<ClientError>() {
            Ok(client_err) => explain(client_err, &endpoint),
            Err(other) => other,
        })
}

/// `ctl logs` and `ctl exec`: the stream to its end, its exit code.
async fn stream_cmd(
    client: &Client,
    ns: &str,
    pod: String,
    container: Option<String>,
    kind: StreamKind,
    tty: bool,
) -> Result<i32> {
    let stdin = matches!(kind, StreamKind::Exec { stdin: true, .. });
    let what = format!("{} {ns}/{pod}", kind.verb());
    let target = StreamTarget {
        namespace: ns.to_owned(),
        pod,
        container: container.unwrap_or_default(),
        kind,
    };
    let raw = if tty {
        Some(terminal::RawMode::enter().context("ctl exec -t")?)
    } else {
        None
    };
    let input = stream::Input {
        stdin: stdin.then(|| Box::new(tokio::io::stdin()) as Box<_>),
        resizes: tty.then(terminal::resizes),
    };
    let ended = stream::run(
        client,
        target,
        input,
        tokio::io::stdout(),
        tokio::io::stderr(),
    )
    .await;
    drop(raw);
    ended.with_context(|| what)
}

/// `kind/name` as kubectl prints what it did.
fn said(object: &Object) -> String {
    format!(
        "{}/{}",
        object.kind().name().to_lowercase(),
        object.metadata().name
    )
}

fn scoped(kind: Kind, ns: &str) -> &str {
    if kind.is_namespaced() {
        ns
    } else {
        ""
    }
}

async fn create_cmd(client: &Client, ns: &str, create: Create) -> Result<()> {
    let object = match create {
        Create::Pod {
            name,
            image,
            labels,
            command,
        } => {
            let mut meta = ObjectMeta::named(ns, &name);
            for l in labels {
                let (k, v) = l
                    .split_once('=')
                    .with_context(|| format!("label {l:?} is not key=value"))?;
                meta.labels.insert(k.into(), v.into());
            }
            let container = Container {
                name: name.clone(),
                image,
                command,
                ..Container::default()
            };
            Object::Pod(Pod {
                metadata: meta,
                spec: PodSpec {
                    containers: vec![container],
                    ..PodSpec::default()
                },
                ..Pod::default()
            })
        }
        Create::Namespace { name } => Object::Namespace(Namespace {
            metadata: ObjectMeta::named("", &name),
            ..Namespace::default()
        }),
    };
    let created = client.create(object).await?;
    println!("{} created", said(&created));
    Ok(())
}

async fn apply(client: &Client, ns: &str, file: &std::path::Path) -> Result<()> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading the manifest from stdin")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    let objects =
        manifest::parse_objects(&text).with_context(|| format!("in {}", file.display()))?;
    for mut object in objects {
        let kind = object.kind();
        if kind.is_namespaced() && object.metadata().namespace.is_empty() {
            object.metadata_mut().namespace = ns.to_owned();
        }
        let meta = object.metadata().clone();
        match client.get(kind, &meta.namespace, &meta.name).await {
            Err(e) if e.code() == Some(ErrorCode::NotFound) => {
                let created = client.create(object).await?;
                println!("{} created", said(&created));
            }
            Err(e) => return Err(e.into()),
            Ok(current) if apply::is_unchanged(&current, &object) => {
                println!("{} unchanged", said(&current));
            }
            Ok(current) => {
                let m = object.metadata_mut();
                m.resource_version = current.metadata().resource_version;
                m.uid.clone_from(&current.metadata().uid);
                let updated = client.update(object).await?;
                println!("{} configured", said(&updated));
            }
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
struct Scope<'a> {
    ns: &'a str,
    all: bool,
}

/// What `ctl get` was asked for.
struct GetArgs<'a> {
    kind: Kind,
    name: Option<&'a str>,
    scope: Scope<'a>,
    selector: LabelSelector,
    output: Option<Output>,
    watch: bool,
}

async fn get(client: &Client, args: GetArgs<'_>) -> Result<()> {
    let kind = args.kind;
    let all = args.scope.all && kind.is_namespaced();
    let options = ListOptions {
        label_selector: args.selector.clone(),
        node_name: None,
    };
    let ns = (!all && kind.is_namespaced()).then_some(args.scope.ns);
    let (objects, revision) = match args.name {
        Some(name) => {
            let one = client.get(kind, scoped(kind, args.scope.ns), name).await?;
            let revision = one.metadata().resource_version;
            (vec![one], revision)
        }
        None => client.list(kind, ns, &options).await?,
    };
    let printer = Printer {
        kind,
        all,
        output: args.output,
    };
    match args.output {
        Some(Output::Yaml | Output::Json) => {
            let value = match (args.name, objects.as_slice()) {
                (Some(_), [one]) => manifest::to_value(one),
                _ => manifest::list_to_value(&objects),
            };
            printer.print_value(&value);
        }
        _ if objects.is_empty() && !args.watch => {
            let where_ = match ns {
                Some(ns) => format!(" in {ns} namespace"),
                None => String::new(),
            };
            eprintln!("No resources found{where_}.");
        }
        _ => print!("{}", printer.table(&objects, true)),
    }
    if args.watch {
        watch(client, &printer, ns, &options, args.name, revision).await?;
    }
    Ok(())
}

/// How `ctl get` prints objects.
struct Printer {
    kind: Kind,
    all: bool,
    output: Option<Output>,
}

impl Printer {
    fn print_value(&self, value: &serde_json::Value) {
        if self.output == Some(Output::Yaml) {
            print!("{}", manifest::to_yaml(value));
        } else {
            println!("{}", manifest::to_json(value));
        }
    }

    fn table(&self, objects: &[Object], with_header: bool) -> String {
        let wide = self.output == Some(Output::Wide);
        let now = Time::now();
        let rows: Vec<Vec<String>> = objects
            .iter()
            .map(|o| columns::row(o, wide, self.all, now))
            .collect();
        let text = table::render(&columns::header(self.kind, wide, self.all), &rows);
        if with_header {
            text
        } else {
            text.split_once('\n')
                .map(|(_, rest)| rest.to_owned())
                .unwrap_or_default()
        }
    }

    fn print(&self, object: &Object) {
        match self.output {
            Some(Output::Yaml) => {
                println!("---");
                self.print_value(&manifest::to_value(object));
            }
            Some(Output::Json) => self.print_value(&manifest::to_value(object)),
            _ => print!("{}", self.table(std::slice::from_ref(object), false)),
        }
    }
}

/// `get -w`: print each change after `revision` until interrupted; list
/// again when the server says the watch fell behind.
async fn watch(
    client: &Client,
    printer: &Printer,
    ns: Option<&str>,
    options: &ListOptions,
    name: Option<&str>,
    mut revision: u64,
) -> Result<()> {
    loop {
        let mut stream = client.watch(printer.kind, ns, options, revision).await?;
        loop {
            let event = tokio::select! {
                e = stream.next() => e,
                _ = tokio::signal::ctrl_c() => return Ok(()),
            };
            let Some(event) = event else {
                bail!("the apiserver closed the watch; run the command again");
            };
            if event.event_type == EventType::Expired {
                // Fell behind: start again from what is there now.
                revision = client.list(printer.kind, ns, options).await?.1;
                break;
            }
            if let Some(object) = event.object {
                if name.is_none_or(|n| object.metadata().name == n) {
                    printer.print(&object);
                }
            }
        }
    }
}

async fn delete(client: &Client, kind: Kind, ns: &str, name: &str, force: bool) -> Result<()> {
    let options = DeleteOptions {
        force,
        ..DeleteOptions::default()
    };
    let gone = client
        .delete(kind, scoped(kind, ns), name, &options)
        .await?;
    if gone.metadata().is_terminating() && !force {
        println!(
            "{} deleted (the node stops it; --force removes it at once)",
            said(&gone)
        );
    } else {
        println!("{} deleted", said(&gone));
    }
    Ok(())
}

async fn scale(client: &Client, kind: Kind, ns: &str, name: &str, replicas: i32) -> Result<()> {
    if kind != Kind::ReplicaSet {
        bail!("only replicasets (rs) can be scaled, not {}", kind.plural());
    }
    if replicas < 0 {
        bail!("--replicas must be 0 or more");
    }
    // Read, change, write: retried when someone else wrote in between.
    for _ in 0..5 {
        let mut object = client.get(kind, ns, name).await?;
        if let Object::ReplicaSet(rs) = &mut object {
            rs.spec.replicas = Some(replicas);
        }
        match client.update(object).await {
            Ok(scaled) => {
                println!("{} scaled", said(&scaled));
                return Ok(());
            }
            Err(e) if e.code() == Some(ErrorCode::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    bail!("replicaset {ns}/{name} kept changing; try again")
}
