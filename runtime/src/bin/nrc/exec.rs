//! `nrc exec`: the process to run, from `--process FILE` or from COMMAND
//! and flags over the container's own process, as runc builds it.

use crate::args::ExecArgs;
use anyhow::{bail, Context, Result};
use noderun_runtime::container::{self, ConsoleSocket, Container, ExecOptions};
use oci_spec::runtime::{Capability, Process, User};
use std::str::FromStr;

pub fn run(c: &Container, a: &ExecArgs) -> Result<i32> {
    if a.tty && a.console_socket.is_none() {
        bail!("exec --tty needs --console-socket to receive the terminal (nrc does not proxy one); run without -t or pass a socket");
    }
    let process = match &a.process {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{}: not a valid process object", path.display()))?
        }
        None => from_flags(c, a)?,
    };
    let opts = ExecOptions {
        process,
        detach: a.detach,
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone().map(ConsoleSocket::Path),
    };
    let done = container::exec(c, &opts).with_context(|| format!("exec in {}", a.id))?;
    Ok(done.exit.map_or(0, |e| e.shell_code()))
}

fn from_flags(c: &Container, a: &ExecArgs) -> Result<Process> {
    if a.command.is_empty() {
        bail!("nothing to run: give a COMMAND after the container id, or --process FILE");
    }
    if let Some(kv) = a.env.iter().find(|kv| !kv.contains('=')) {
        bail!("--env {kv:?}: expected NAME=VALUE");
    }
    let mut p = ExecOptions::for_command(c, a.command.clone(), &a.env, a.tty);
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    if let Some(user) = &a.user {
        p.set_user(parse_user(user, &a.additional_gids)?);
    } else if !a.additional_gids.is_empty() {
        let mut u = p.user().clone();
        u.set_additional_gids(Some(a.additional_gids.clone()));
        p.set_user(u);
    }
    if !a.cap.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &a.cap {
            let cap = Capability::from_str(name)
                .map_err(|_| anyhow::anyhow!("--cap {name:?}: unknown capability"))?;
            let add = |s: Option<std::collections::HashSet<Capability>>| {
                let mut s = s.unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            caps.set_bounding(add(caps.bounding().clone()));
            caps.set_effective(add(caps.effective().clone()));
            caps.set_permitted(add(caps.permitted().clone()));
        }
        p.set_capabilities(Some(caps));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    Ok(p)
}

/// `UID[:GID]`, numeric as runc takes them.
fn parse_user(text: &str, additional: &[u32]) -> Result<User> {
    let (uid, gid) = match text.split_once(':') {
        Some((u, g)) => (u, g),
        None => (text, "0"),
    };
    let num = |s: &str| {
        s.parse::<u32>()
            .map_err(|_| anyhow::anyhow!("--user {text:?}: expected UID[:GID] as numbers"))
    };
    let mut u = User::default();
    u.set_uid(num(uid)?);
    u.set_gid(num(gid)?);
    if !additional.is_empty() {
        u.set_additional_gids(Some(additional.to_vec()));
    }
    Ok(u)
}
