//! `netplug`: the CNI plugin binary. A runtime runs it in the node's
//! network namespace with `CNI_*` in the environment and the network
//! configuration on stdin; it prints the result (or the spec's error
//! JSON, exiting 1). All the work is in [`noderun_netplug::cni`].

use noderun_netplug::cni::{self, Request};
use std::io::{Read, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut stdin = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut stdin) {
        let err =
            cni::CniError::new(cni::code::IO_FAILURE, "reading stdin").with_details(e.to_string());
        return fail(&err, &stdin);
    }
    let outcome = Request::from_env(|name| std::env::var(name).ok())
        .and_then(|request| cni::run(&request, &stdin));
    match outcome {
        Ok(output) => {
            if let Some(json) = output {
                let mut out = std::io::stdout().lock();
                if writeln!(out, "{json}").and_then(|()| out.flush()).is_err() {
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(err) => fail(&err, &stdin),
    }
}

fn fail(err: &cni::CniError, stdin: &[u8]) -> ExitCode {
    println!("{}", err.to_json(&cni::netconf::request_version(stdin)));
    ExitCode::FAILURE
}
