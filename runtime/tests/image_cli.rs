//! `noderun image` end to end on a private state dir: import the busybox
//! layout, list it, export it and import the export under another name,
//! remove both and prune, and refuse bad input without touching the store;
//! pull from a local docker-registry (by tag; missing and malformed
//! references refused with the store intact), with Basic auth credentials
//! from stdin, NODERUN_REGISTRY_AUTH or a docker config.json; prune
//! removes partial downloads no pull holds.

use noderun_runtime::image::{Digest, ImageStore};
use noderun_testkit::{blob_files, busybox_layout, Registry, TempDir};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

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

/// `noderun image ARGS` with `stdin` fed in and the environment given
/// (credential variables cleared unless set here, HOME private).
fn noderun_with(state: &Path, args: &[&str], stdin: &[u8], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_noderun"));
    cmd.arg("--state-dir")
        .arg(state)
        .arg("image")
        .args(args)
        .env_remove("NODERUN_REGISTRY_AUTH")
        .env_remove("DOCKER_CONFIG")
        .env("HOME", state)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run noderun");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().expect("wait for noderun")
}

/// The image list and the blob directory's file names: what a refused
/// command must leave as it was.
fn store_state(state: &Path) -> (String, Vec<String>) {
    let listing = String::from_utf8_lossy(&noderun(state, &["list"]).stdout).into_owned();
    (listing, blob_files(&state.join("images")))
}

#[test]
fn pull_by_tag_lists_it_and_bad_references_leave_the_store_alone() {
    if !noderun_testkit::privileged() {
        return;
    }
    let tmp = TempDir::new("nr-image-cli-pull").unwrap();
    let state = tmp.join("state");
    let registry = Registry::start();
    registry.push(
        &format!("oci:{}", busybox_layout().display()),
        "library/busybox:1.36",
    );
    let name = format!("{}/library/busybox:1.36", registry.host());

    let out = noderun(&state, &["pull", &name]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("pulled {name} sha256:")),
        "{}",
        text(&out)
    );
    let out = noderun(&state, &["list"]);
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        listing.lines().any(|l| l.starts_with(&format!("{name} "))),
        "{listing}"
    );
    let again = noderun(&state, &["pull", &name]);
    assert!(
        text(&again).contains("(0 blobs, 0 bytes transferred)"),
        "{}",
        text(&again)
    );

    let before = store_state(&state);
    let missing = format!("{}/library/nope:v1", registry.host());
    let out = noderun(&state, &["pull", &missing]);
    assert!(!out.status.success());
    let err = text(&out);
    assert!(
        err.contains(&format!("pulling {missing}"))
            && err.contains("HTTP 404")
            && err.contains("check the image name and tag"),
        "{err}"
    );
    let out = noderun(
        &state,
        &[
            "pull",
            &format!("{}/library/busybox:no-such-tag", registry.host()),
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("no-such-tag") && text(&out).contains("HTTP 404"),
        "{}",
        text(&out)
    );
    let out = noderun(&state, &["pull", "Bad//Name::x"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("invalid image name \"Bad//Name::x\""),
        "{}",
        text(&out)
    );
    assert_eq!(
        store_state(&state),
        before,
        "refused pulls left the store as it was"
    );
}

#[test]
fn pull_with_basic_auth_from_stdin_env_or_docker_config() {
    if !noderun_testkit::privileged() {
        return;
    }
    let tmp = TempDir::new("nr-image-cli-auth").unwrap();
    let registry = Registry::start_with_basic_auth("alice", "s3cret-pw");
    registry.push(
        &format!("oci:{}", busybox_layout().display()),
        "team/busybox:v1",
    );
    let name = format!("{}/team/busybox:v1", registry.host());
    let state = tmp.join("state");
    let pulled = |out: &Output| {
        assert!(out.status.success(), "{}", text(out));
        assert!(
            text(out).contains(&format!("pulled {name}")),
            "{}",
            text(out)
        );
    };

    // None given: told it is unauthorized and how to log in.
    let empty = store_state(&state);
    let out = noderun_with(&state, &["pull", &name], b"", &[]);
    assert!(!out.status.success());
    let err = text(&out);
    assert!(
        err.contains("unauthorized")
            && err.contains(&registry.host())
            && err.contains("--password-stdin"),
        "{err}"
    );
    // Wrong password: unauthorized, naming the registry and the user.
    let args = ["pull", "--username", "alice", "--password-stdin", &name];
    let out = noderun_with(&state, &args, b"not-it\n", &[]);
    assert!(!out.status.success());
    let err = text(&out);
    assert!(
        err.contains("unauthorized")
            && err.contains(&format!("registry {} refused", registry.host()))
            && err.contains("\"alice\"")
            && !err.contains("not-it"),
        "{err}"
    );
    assert_eq!(store_state(&state), empty, "refused pulls store nothing");

    // Right password on stdin.
    pulled(&noderun_with(&state, &args, b"s3cret-pw\n", &[]));

    // From NODERUN_REGISTRY_AUTH, into a fresh state dir.
    let fresh = tmp.join("env");
    let out = Command::new(env!("CARGO_BIN_EXE_noderun"))
        .arg("--state-dir")
        .arg(&fresh)
        .args(["image", "pull", &name])
        .env("NODERUN_REGISTRY_AUTH", "alice:s3cret-pw")
        .env_remove("DOCKER_CONFIG")
        .output()
        .unwrap();
    pulled(&out);

    // From a docker config.json auths entry, into another.
    let config = tmp.join("docker");
    std::fs::create_dir(&config).unwrap();
    std::fs::write(
        config.join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"YWxpY2U6czNjcmV0LXB3"}}}}}}"#,
            registry.host()
        ),
    )
    .unwrap();
    let out = noderun_with(
        &tmp.join("cfg"),
        &["pull", &name],
        b"",
        &[("DOCKER_CONFIG", &config)],
    );
    pulled(&out);
}

#[test]
fn prune_removes_partial_downloads_of_abandoned_pulls() {
    if !noderun_testkit::privileged() {
        return;
    }
    let tmp = TempDir::new("nr-image-cli-partial").unwrap();
    let state = tmp.join("state");
    let out = noderun(
        &state,
        &[
            "import",
            busybox_layout().to_str().unwrap(),
            "--name",
            "busybox",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let images = ImageStore::open(&state.join("images")).unwrap();
    let abandoned = images.content().partial_path(&Digest::of(b"abandoned"));
    std::fs::write(&abandoned, vec![7u8; 4096]).unwrap();
    // A pull still running holds its partial file.
    let running = images
        .content()
        .lock_partial(&Digest::of(b"running"))
        .unwrap();

    let out = noderun(&state, &["prune"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("freed 0 blobs, 1 partial downloads (4.1 kB)"),
        "{}",
        text(&out)
    );
    assert!(!abandoned.exists());
    assert!(images
        .content()
        .partial_path(&Digest::of(b"running"))
        .exists());
    assert!(images.image("busybox").is_ok(), "the image is untouched");

    drop(running);
    let out = noderun(&state, &["prune"]);
    assert!(text(&out).contains("1 partial downloads"), "{}", text(&out));
    assert!(!images
        .content()
        .partial_path(&Digest::of(b"running"))
        .exists());
}
