//! Snapshotter numbers, printed, never asserted (needs root: it mounts):
//! - rootfs preparation: `prepare` + overlay mount of an already unpacked
//!   image (busybox, one layer; and a 120-layer stack, which takes the
//!   short-path mount route), median over 200 runs;
//! - unpack throughput: a ~200 MB uncompressed tar made from /usr, applied
//!   by `apply_layer` (no sync), by `unpack_layer` (diff ID check, syncfs,
//!   publish), and extracted by GNU `tar -x`, 3 rounds each.
//!
//! Run: `cargo bench -p noderun-runtime --bench snapshot` (add
//! `NODERUN_BENCH_DIR=/dev/shm` to work on tmpfs).

use noderun_runtime::image::{Digest, DigestReader, ImageStore, PlatformSpec};
use noderun_runtime::snapshot::{apply, chain_ids, sys, unpack_image, ChainId, Snapshotter};
use noderun_testkit::{privileged, TempDir};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const RUNS: usize = 200;
const TAR_BYTES: u64 = 200 << 20;

fn main() {
    if !privileged() {
        return;
    }
    // NODERUN_BENCH_DIR=/dev/shm measures on tmpfs (CPU-bound) instead of
    // /tmp's filesystem.
    let parent =
        std::env::var_os("NODERUN_BENCH_DIR").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    println!("working under {}", parent.display());
    let tmp = TempDir::new_in(&parent, "nr-bench").unwrap();
    let snaps = Snapshotter::new(&tmp.join("snapshots")).unwrap();
    let images = ImageStore::open(&tmp.join("images"))
        .unwrap()
        .with_platform(PlatformSpec::linux_amd64());
    images.import_path(&busybox_layout(), None).unwrap();
    let top = unpack_image(&images, &snaps, "busybox").unwrap();
    prepare_and_mount(&tmp, &snaps, &top, "busybox (1 layer)");
    let deep = deep_stack(&snaps, 120);
    prepare_and_mount(&tmp, &snaps, &deep, "120 layers (relative-path mount)");
    unpack_throughput(&tmp, &snaps);
}

fn busybox_layout() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = repo.join("target/images/busybox-oci");
    if !dir.join("index.json").exists() {
        let script = repo.join("scripts/make-busybox-image.sh");
        assert!(std::process::Command::new(script)
            .arg(&dir)
            .status()
            .unwrap()
            .success());
    }
    dir
}

fn deep_stack(snaps: &Snapshotter, layers: usize) -> ChainId {
    let tars: Vec<Vec<u8>> = (0..layers)
        .map(|i| {
            let mut tar = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_size(1);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            tar.append_data(&mut h, format!("f{i}"), &b"x"[..]).unwrap();
            tar.into_inner().unwrap()
        })
        .collect();
    let diffs: Vec<Digest> = tars.iter().map(|t| Digest::of(t)).collect();
    let chains = chain_ids(&diffs);
    for (i, tar) in tars.iter().enumerate() {
        let parent = i.checked_sub(1).map(|p| &chains[p]);
        snaps
            .unpack_layer(&chains[i], parent, &diffs[i], &tar[..])
            .unwrap();
    }
    *chains.last().unwrap()
}

fn summary(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "  {label:<24} median {:>8.1} µs   p90 {:>8.1} µs   min {:>8.1} µs   (n={})",
        at(0.5).as_secs_f64() * 1e6,
        at(0.9).as_secs_f64() * 1e6,
        samples[0].as_secs_f64() * 1e6,
        samples.len()
    );
}

fn prepare_and_mount(tmp: &TempDir, snaps: &Snapshotter, parent: &ChainId, what: &str) {
    let targets = tmp.join("targets");
    std::fs::create_dir_all(&targets).unwrap();
    let (mut prepare, mut mount, mut both) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..RUNS {
        let key = format!("bench-{i}");
        let target = targets.join(&key);
        std::fs::create_dir(&target).unwrap();
        let t0 = Instant::now();
        let m = snaps.prepare(&key, Some(parent)).unwrap();
        let t1 = Instant::now();
        m.mount(&target).unwrap();
        let t2 = Instant::now();
        prepare.push(t1 - t0);
        mount.push(t2 - t1);
        both.push(t2 - t0);
        sys::unmount(&target).unwrap();
        snaps.remove(&key).unwrap();
        std::fs::remove_dir(&target).unwrap();
    }
    println!("rootfs from an unpacked image, {what}:");
    summary("prepare", prepare);
    summary("overlay mount", mount);
    summary("prepare + mount", both);
}

/// A tar of files from /usr, stopping once `TAR_BYTES` of content is in.
fn usr_tar(path: &Path) -> u64 {
    let mut tar = tar::Builder::new(std::io::BufWriter::new(
        std::fs::File::create(path).unwrap(),
    ));
    tar.follow_symlinks(false);
    let mut content = 0u64;
    let mut todo = vec![PathBuf::from("/usr")];
    while let Some(dir) = todo.pop() {
        let mut entries: Vec<_> = match std::fs::read_dir(&dir) {
            Ok(rd) => rd.filter_map(Result::ok).map(|e| e.path()).collect(),
            Err(_) => continue,
        };
        entries.sort();
        for p in entries {
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            let name = p.strip_prefix("/").unwrap();
            if meta.is_dir() {
                tar.append_dir(name, &p).unwrap();
                todo.push(p);
            } else if (meta.is_file() && content < TAR_BYTES) || meta.file_type().is_symlink() {
                let added = tar.append_path_with_name(&p, name).is_ok();
                content += if added && meta.is_file() {
                    meta.len()
                } else {
                    0
                };
            }
        }
    }
    tar.into_inner().unwrap();
    std::fs::metadata(path).unwrap().len()
}

fn timed(f: impl FnOnce()) -> Duration {
    let t0 = Instant::now();
    f();
    t0.elapsed()
}

fn unpack_throughput(tmp: &TempDir, snaps: &Snapshotter) {
    let tar_path = tmp.join("usr.tar");
    let size = usr_tar(&tar_path);
    let diff = DigestReader::new(std::fs::File::open(&tar_path).unwrap())
        .finish()
        .unwrap()
        .0;
    let chain = ChainId::extend(None, &diff);
    let mb = size as f64 / (1 << 20) as f64;
    let files = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&tar_path)
        .output()
        .unwrap()
        .stdout;
    let entries = files
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    println!("unpack of a {mb:.0} MiB tar from /usr ({entries} entries), warm page cache:");
    let report = |label: &str, mut runs: Vec<Duration>| {
        runs.sort();
        let med = runs[runs.len() / 2].as_secs_f64();
        println!(
            "  {label:<34} median {:>6.0} ms  {:>6.0} MiB/s",
            med * 1e3,
            mb / med
        );
    };
    let (mut gnu, mut ours, mut full) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..3 {
        let dest = tmp.join(format!("gnu-{round}"));
        std::fs::create_dir(&dest).unwrap();
        gnu.push(timed(|| {
            let ok = std::process::Command::new("tar")
                .arg("-xf")
                .arg(&tar_path)
                .arg("-C")
                .arg(&dest)
                .status()
                .unwrap();
            assert!(ok.success());
        }));
        std::fs::remove_dir_all(&dest).unwrap();

        let dest = tmp.join(format!("ours-{round}"));
        std::fs::create_dir(&dest).unwrap();
        ours.push(timed(|| {
            apply::apply_layer(std::fs::File::open(&tar_path).unwrap(), &dest, None).unwrap();
        }));
        std::fs::remove_dir_all(&dest).unwrap();

        full.push(timed(|| {
            snaps
                .unpack_layer(&chain, None, &diff, std::fs::File::open(&tar_path).unwrap())
                .unwrap();
        }));
        snaps.remove(&chain.to_string()).unwrap();
    }
    report("GNU tar -xf", gnu);
    report("apply_layer (sha256, no sync)", ours);
    report("unpack_layer (+ syncfs, publish)", full);
}
