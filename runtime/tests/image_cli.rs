//! `noderun image` end to end on a private state dir: import the busybox
//! layout, list it, export it and import the export under another name,
//! remove both and prune, and refuse bad input without touching the store.

use noderun_testkit::TempDir;
use std::path::Path;
use std::process::{Command, Output};

use noderun_testkit::busybox_layout;

fn noderun(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_noderun"))
        .arg("--state-dir")
        .arg(state)
        .arg("image")
        .args(args)
        .output()
        .expect("run noderun")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn import_list_export_remove_prune() {
    if !noderun_testkit::privileged() {
        return;
    }
    let tmp = TempDir::new("nr-image-cli").unwrap();
    let state = tmp.join("state");
    let layout = busybox_layout();

    let out = noderun(
        &state,
        &["import", layout.to_str().unwrap(), "--name", "busybox"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = noderun(&state, &["list"]);
    assert!(out.status.success(), "{}", text(&out));
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = listing.lines().collect();
    assert!(lines[0].starts_with("REFERENCE"), "{listing}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("docker.io/library/busybox:latest")),
        "{listing}"
    );
    assert!(listing.contains("sha256:"), "{listing}");

    let tar = tmp.join("busybox.tar");
    let out = noderun(&state, &["export", "busybox", "-o", tar.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let digest = |listing: &str| {
        listing
            .lines()
            .find(|l| l.starts_with("docker.io/library/busybox:latest"))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(str::to_string)
    };
    let first = digest(&listing).expect("busybox listed");

    // Removing the only image frees its blobs.
    let out = noderun(&state, &["remove", "busybox"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("removed docker.io/library/busybox:latest"));
    assert!(!text(&out).contains("freed 0 blobs"), "{}", text(&out));
    let out = noderun(&state, &["list"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);

    // The export brings the same image back (its name travels in the tar).
    let out = noderun(&state, &["import", tar.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let out = noderun(&state, &["ls"]);
    let again = digest(&String::from_utf8_lossy(&out.stdout)).expect("busybox back");
    assert_eq!(first, again, "same manifest after export and import");
    let out = noderun(&state, &["rm", "busybox"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = noderun(&state, &["prune"]);
    assert!(
        text(&out).contains("freed 0 blobs"),
        "nothing left: {}",
        text(&out)
    );
}

#[test]
fn bad_input_is_refused_and_leaves_the_store_alone() {
    if !noderun_testkit::privileged() {
        return;
    }
    let tmp = TempDir::new("nr-image-cli-bad").unwrap();
    let state = tmp.join("state");
    let layout = busybox_layout();
    assert!(noderun(
        &state,
        &["import", layout.to_str().unwrap(), "--name", "busybox"]
    )
    .status
    .success());
    let before = String::from_utf8_lossy(&noderun(&state, &["list"]).stdout).into_owned();

    let junk = tmp.join("junk.tar");
    std::fs::write(&junk, b"this is not a tar archive").unwrap();
    let out = noderun(&state, &["import", junk.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out).contains("junk.tar"), "{}", text(&out));
    let out = noderun(&state, &["remove", "no-such-image"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("no-such-image"), "{}", text(&out));
    let out = noderun(
        &state,
        &[
            "export",
            "no-such-image",
            "-o",
            tmp.join("x.tar").to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(!tmp.join("x.tar").exists() && !tmp.join("x.partial").exists());

    let after = String::from_utf8_lossy(&noderun(&state, &["list"]).stdout).into_owned();
    assert_eq!(before, after);
}
