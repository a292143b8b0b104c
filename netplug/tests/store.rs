//! The on-disk IPAM store: concurrent allocation from many threads, each
//! with its own store handle (its own lock file description, as separate
//! processes would have), exhaustion, and recovery from what a crash can
//! leave behind.

use noderun_core::ipam::{IpamError, Owner, Range};
use noderun_netplug::{IpamStore, StoreError};
use noderun_testkit::TempDir;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;

fn range(subnet: &str) -> Range {
    Range::new(subnet.parse().unwrap()).unwrap()
}

#[test]
fn eight_threads_never_get_the_same_address() {
    let dir = TempDir::new("netplug-store").unwrap();
    const THREADS: usize = 8;
    const EACH: usize = 30;
    let got: Vec<IpAddr> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let root = dir.path();
                scope.spawn(move || {
                    let store = IpamStore::open(root, "pods", range("10.250.0.0/24")).unwrap();
                    (0..EACH)
                        .map(|n| {
                            store
                                .allocate(&Owner::new(format!("t{t}-c{n}"), "eth0"))
                                .unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let distinct: BTreeSet<IpAddr> = got.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        THREADS * EACH,
        "an address was handed out twice"
    );
    let store = IpamStore::open(dir.path(), "pods", range("10.250.0.0/24")).unwrap();
    let state = store.state().unwrap();
    assert_eq!(state.allocations.len(), THREADS * EACH);
    assert_eq!(
        state.allocations.keys().copied().collect::<BTreeSet<_>>(),
        distinct
    );
}

#[test]
fn exhaustion_is_reported_and_release_frees() {
    let dir = TempDir::new("netplug-store").unwrap();
    let store = IpamStore::open(dir.path(), "small", range("10.250.0.0/28")).unwrap();
    for n in 0..13 {
        store
            .allocate(&Owner::new(format!("c{n}"), "eth0"))
            .unwrap();
    }
    let err = store.allocate(&Owner::new("c13", "eth0")).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Ipam {
                source: IpamError::Exhausted { capacity: 13, .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("network small: no free address in 10.250.0.0/28"),
        "{err}"
    );
    assert_eq!(
        store.release("c4").unwrap(),
        ["10.250.0.6".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(
        store.allocate(&Owner::new("c13", "eth0")).unwrap(),
        "10.250.0.6".parse::<IpAddr>().unwrap()
    );
    let freed = store.gc(|id| id == "c0").unwrap();
    assert_eq!(freed.len(), 12);
    assert_eq!(store.state().unwrap().allocations.len(), 1);
}

/// A slot as the store writes it, for a body of our choosing.
fn slot(generation: u64, body: &str) -> Vec<u8> {
    let crc = crc32fast::hash(body.as_bytes());
    format!("nrs1 {generation} {} {crc:08x}\n{body}", body.len()).into_bytes()
}

#[test]
fn state_survives_reopening_and_a_torn_slot() {
    let dir = TempDir::new("netplug-store").unwrap();
    let (one, two) = (Owner::new("pod-1", "eth0"), Owner::new("pod-2", "eth0"));
    let (first, second) = {
        let store = IpamStore::open(dir.path(), "pods", range("10.250.0.0/24")).unwrap();
        (store.allocate(&one).unwrap(), store.allocate(&two).unwrap())
    };
    let store = IpamStore::open(dir.path(), "pods", range("10.250.0.0/24")).unwrap();
    let [a, b] = store.state_paths().map(Path::to_path_buf);
    // Generation 1 went to slot a, 2 to slot b; a crash in the middle of
    // writing generation 3 over slot a leaves a header and part of a body.
    let torn = [
        &slot(3, "{\"version\":1,\"allocations\":{}}")[..40],
        b"  \"stale tail",
    ]
    .concat();
    std::fs::write(&a, &torn).unwrap();
    assert_eq!(store.lookup(&one).unwrap(), Some(first));
    assert_eq!(store.lookup(&two).unwrap(), Some(second));
    // The next change goes into the torn slot, whole, and wins.
    let third = store.allocate(&Owner::new("pod-3", "eth0")).unwrap();
    assert!(![first, second].contains(&third));
    let text = String::from_utf8(std::fs::read(&a).unwrap()).unwrap();
    assert!(text.starts_with("nrs1 3 "), "{text}");
    assert!(
        text.contains("\"10.250.0.2\":{\"container_id\":\"pod-1\""),
        "{text}"
    );
    assert_eq!(store.state().unwrap().allocations.len(), 3);
    // Releasing shrinks the state, not the slot: the padding is ignored.
    store.release("pod-1").unwrap();
    store.release("pod-2").unwrap();
    let reopened = IpamStore::open(dir.path(), "pods", range("10.250.0.0/24")).unwrap();
    assert_eq!(reopened.state().unwrap().allocations.len(), 1);
    assert_eq!(
        reopened.lookup(&Owner::new("pod-3", "eth0")).unwrap(),
        Some(third)
    );
    assert!(b.exists());
}

#[test]
fn a_first_change_cut_short_stored_nothing() {
    let dir = TempDir::new("netplug-store").unwrap();
    let store = IpamStore::open(dir.path(), "pods", range("10.250.0.0/24")).unwrap();
    let [a, _] = store.state_paths().map(Path::to_path_buf);
    for torn in [
        &b""[..],
        b"nrs",
        &slot(1, "{\"version\":1,\"allocations\":{}}")[..30],
    ] {
        std::fs::write(&a, torn).unwrap();
        assert!(store.state().unwrap().allocations.is_empty());
    }
    let ip = store.allocate(&Owner::new("pod-1", "eth0")).unwrap();
    assert_eq!(ip, "10.250.0.2".parse::<IpAddr>().unwrap());
}

#[test]
fn the_state_of_netplug_before_slots_is_kept() {
    let dir = TempDir::new("netplug-store").unwrap();
    let store = IpamStore::open(dir.path(), "pods", range("10.250.0.0/24")).unwrap();
    let [a, _] = store.state_paths().map(Path::to_path_buf);
    let legacy = a.with_extension("json");
    std::fs::write(
        &legacy,
        r#"{"version":1,"allocations":{"10.250.0.9":{"container_id":"old","ifname":"eth0"}},"last":"10.250.0.9"}"#,
    )
    .unwrap();
    let old = Owner::new("old", "eth0");
    assert_eq!(
        store.lookup(&old).unwrap(),
        Some("10.250.0.9".parse().unwrap())
    );
    let new = store.allocate(&Owner::new("new", "eth0")).unwrap();
    assert_eq!(new, "10.250.0.10".parse::<IpAddr>().unwrap());
    assert!(
        !legacy.exists(),
        "the old file is gone once slots hold the state"
    );
    assert_eq!(
        store.lookup(&old).unwrap(),
        Some("10.250.0.9".parse().unwrap())
    );
}

#[test]
fn a_corrupt_state_file_is_refused_by_path() {
    let dir = TempDir::new("netplug-store").unwrap();
    let store = IpamStore::open(dir.path(), "pods", range("10.250.0.0/24")).unwrap();
    let [a, b] = store.state_paths().map(Path::to_path_buf);
    for (path, content, why) in [
        (&a, b"not json".to_vec(), "not an IPAM state slot"),
        (&a, b"{}".to_vec(), "not an IPAM state slot"),
        (
            &a,
            slot(1, r#"{"version":7,"allocations":{},"last":null}"#),
            "format version 7",
        ),
        (&a, slot(1, r#"{"version":1,"allocations":"#), "EOF"),
        // A torn write is only the first change's when the other slot is
        // absent: one torn beside an absent first slot is not ours.
        (&b, slot(2, "{")[..10].to_vec(), "holds a whole state"),
    ] {
        let _ = std::fs::remove_file(&a);
        std::fs::write(path, &content).unwrap();
        let err = store.allocate(&Owner::new("pod", "eth0")).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{text}");
        assert!(
            text.contains(&a.display().to_string()) && text.contains(why),
            "{text}"
        );
        // Nothing was written over it.
        assert_eq!(std::fs::read(path).unwrap(), content);
        let _ = std::fs::remove_file(path);
    }
}

#[test]
fn a_reboot_starts_from_an_empty_state_and_removes_the_old_one() {
    let dir = TempDir::new("netplug-store").unwrap();
    let owner = Owner::new("pod-1", "eth0");
    let before =
        IpamStore::open_for_boot(dir.path(), "pods", range("10.250.0.0/24"), "aaaa-1111").unwrap();
    let old_ip = before.allocate(&owner).unwrap();
    // What a machine crash could leave of a file written without fsync.
    let torn = before.state_paths()[0].to_path_buf();
    std::fs::write(&torn, b"{\"version\":1,\"allo").unwrap();
    // A state file of the netplug versions before boot-scoped state.
    std::fs::write(dir.join("pods").join("state.json"), b"{}").unwrap();

    let after =
        IpamStore::open_for_boot(dir.path(), "pods", range("10.250.0.0/24"), "bbbb-2222").unwrap();
    assert_ne!(after.state_paths()[0], torn.as_path());
    // The old boot's pods are gone, and so are their addresses: nothing
    // is held, and the torn file is neither read nor an error.
    assert_eq!(after.lookup(&owner).unwrap(), None);
    assert!(after.state().unwrap().allocations.is_empty());
    // The first change of the new boot removes the old boots' files.
    let new_ip = after.allocate(&Owner::new("pod-2", "eth0")).unwrap();
    assert_eq!(new_ip, old_ip, "the range starts over");
    assert!(!torn.exists(), "the old boot's state is still there");
    assert!(!dir.join("pods").join("state.json").exists());
    assert!(after.state_paths()[0].exists());
}

#[test]
fn the_running_boot_is_the_kernels() {
    let dir = TempDir::new("netplug-store").unwrap();
    let store = IpamStore::open(dir.path(), "pods", range("10.250.0.0/24")).unwrap();
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let name = store.state_paths()[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(name, format!("state-{}.a", boot_id.trim()));
}

#[test]
fn network_names_must_be_path_safe() {
    let dir = TempDir::new("netplug-store").unwrap();
    for bad in ["", ".", "..", "a/b", "pods\n"] {
        let err = IpamStore::open(dir.path(), bad, range("10.250.0.0/24")).unwrap_err();
        assert!(
            matches!(err, StoreError::BadNetworkName(_)),
            "{bad:?}: {err}"
        );
    }
}
