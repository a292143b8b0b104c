//! `delete`: remove a stopped container (or, with `force`, any container):
//! kill what remains in its cgroup, remove the cgroup and the state
//! directory, then run poststop hooks.

use super::hooks::{self, Phase};
use super::{Container, ContainerError, Status};
use std::path::Path;

pub fn delete(c: &Container, force: bool) -> Result<(), ContainerError> {
    let status = c.status();
    match status {
        Status::Stopped | Status::Created => {}
        Status::Running | Status::Paused if force => {}
        Status::Running | Status::Paused => {
            return Err(c.wrong_state(status, "stop it first, or delete with --force"))
        }
    }
    let state = c.record.oci_state(Status::Stopped);
    super::remove_cgroup(c.cgroup.as_ref(), &c.record.cgroup_path)?;
    remove_state_dir(&c.dir())?;
    if let Some(h) = c.record.hooks.as_ref().and_then(|h| h.poststop().clone()) {
        if let Err(e) = hooks::run(Phase::Poststop, &h, &state) {
            eprintln!("warning: {e}");
        }
    }
    Ok(())
}

/// How often the state directory's removal is tried while files keep
/// appearing in it.
const REMOVE_TRIES: usize = 20;

/// Remove the state directory. The init's parent may be writing its exit
/// file there at the same moment (the init dies with the cgroup; a node
/// agent's runner records every init's exit), so a directory that
/// gained a file while it was emptied is emptied again.
fn remove_state_dir(dir: &Path) -> Result<(), ContainerError> {
    let mut tries = 0;
    loop {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty && tries < REMOVE_TRIES => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(source) => {
                return Err(ContainerError::Io {
                    op: "remove",
                    path: dir.into(),
                    source,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_directory_gone_meanwhile_is_removed() {
        let dir = noderun_testkit::TempDir::new("nr-delete").unwrap();
        let state = dir.join("c1");
        std::fs::create_dir(&state).unwrap();
        std::fs::write(state.join("exit"), "{}").unwrap();
        remove_state_dir(&state).unwrap();
        assert!(!state.exists());
        // Already gone (removed by a concurrent delete): nothing to do.
        remove_state_dir(&state).unwrap();
    }

    #[test]
    fn a_directory_that_cannot_be_removed_names_its_path() {
        let dir = noderun_testkit::TempDir::new("nr-delete").unwrap();
        let file = dir.join("not-a-dir");
        std::fs::write(&file, "x").unwrap();
        let err = remove_state_dir(&file).unwrap_err().to_string();
        assert!(err.contains("remove") && err.contains("not-a-dir"), "{err}");
        assert!(file.exists(), "left as it was");
    }
}
