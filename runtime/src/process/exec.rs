//! Executing the container's process: find the program on the container's
//! PATH, enter its working directory, keep no runtime fd open across exec.

use crate::sys::ns::{self, NsError};
use crate::sys::trampoline::{self, Trampoline};
use oci_spec::runtime::Process;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("executable {program:?} not found in PATH={path}")]
    NotFound { program: String, path: String },
    #[error("{program}: not an executable file")]
    NotExecutable { program: PathBuf },
    #[error("chdir to process.cwd {cwd}: {source}")]
    Cwd {
        cwd: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} contains a NUL byte")]
    Nul { what: &'static str },
    #[error(transparent)]
    Sys(#[from] NsError),
    #[error("exec {program}: {errno}")]
    Exec {
        program: PathBuf,
        errno: nix::errno::Errno,
    },
    #[error("exec of the exec trampoline for {program}: {errno}")]
    Trampoline {
        program: PathBuf,
        errno: nix::errno::Errno,
    },
    #[error("making the process non-dumpable before exec: {0}")]
    Undumpable(nix::errno::Errno),
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Enter process.cwd and resolve args[0] in the container's view (call
/// after pivot_root), so a missing program fails `create`, not `start`.
pub fn resolve(process: &Process) -> Result<PathBuf, ExecError> {
    std::env::set_current_dir(process.cwd()).map_err(|source| ExecError::Cwd {
        cwd: process.cwd().clone(),
        source,
    })?;
    find_program(process)
}

/// Find args[0]: as given when it holds a `/`, else on the process's PATH.
fn find_program(process: &Process) -> Result<PathBuf, ExecError> {
    let program = process
        .args()
        .as_ref()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or_default();
    if program.contains('/') {
        return check_executable(PathBuf::from(program));
    }
    let path = process
        .env()
        .iter()
        .flatten()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
        .to_string();
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(&program))
        .find(|p| is_executable(p))
        .ok_or(ExecError::NotFound { program, path })
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn check_executable(p: PathBuf) -> Result<PathBuf, ExecError> {
    if is_executable(&p) {
        Ok(p)
    } else {
        Err(ExecError::NotExecutable { program: p })
    }
}

fn cstrings(what: &'static str, items: &[String]) -> Result<Vec<CString>, ExecError> {
    items
        .iter()
        .map(|s| CString::new(s.as_bytes()).map_err(|_| ExecError::Nul { what }))
        .collect()
}

/// execve the process, directly or through `trampoline` (see
/// sys::trampoline; the process is then made non-dumpable until the exec);
/// returns only the error.
pub fn exec(program: &Path, process: &Process, trampoline: Option<&Trampoline>) -> ExecError {
    let run = || -> Result<std::convert::Infallible, ExecError> {
        let args = cstrings(
            "process.args",
            process.args().as_deref().unwrap_or_default(),
        )?;
        let env = cstrings("process.env", process.env().as_deref().unwrap_or_default())?;
        let prog = CString::new(program.as_os_str().as_bytes())
            .map_err(|_| ExecError::Nul { what: "program" })?;
        ns::cloexec_from(3)?;
        ns::reset_signals();
        if let Some(trampoline) = trampoline {
            trampoline::make_undumpable().map_err(ExecError::Undumpable)?;
            return Err(ExecError::Trampoline {
                program: program.into(),
                errno: trampoline.exec(&prog, &args, &env),
            });
        }
        nix::unistd::execve(&prog, &args, &env).map_err(|errno| ExecError::Exec {
            program: program.into(),
            errno,
        })
    };
    match run() {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_programs_on_the_path() {
        let p: Process = serde_json::from_str(r#"{"cwd":"/","args":["sh"],"env":["PATH=/nonexistent:/bin"],"user":{"uid":0,"gid":0}}"#).unwrap();
        assert_eq!(find_program(&p).unwrap(), Path::new("/bin/sh"));
        let p: Process = serde_json::from_str(r#"{"cwd":"/","args":["no-such-program-x"],"env":["PATH=/bin"],"user":{"uid":0,"gid":0}}"#).unwrap();
        let e = find_program(&p).unwrap_err().to_string();
        assert!(e.contains("not found in PATH=/bin"), "{e}");
        let p: Process = serde_json::from_str(
            r#"{"cwd":"/","args":["/proc/self/status"],"user":{"uid":0,"gid":0}}"#,
        )
        .unwrap();
        assert!(matches!(
            find_program(&p),
            Err(ExecError::NotExecutable { .. })
        ));
    }
}
