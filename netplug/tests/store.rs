//! The on-disk IPAM store: concurrent allocation from many threads, each
//! with its own store handle (its own lock file description, as separate
//! processes would have), exhaustion, and recovery from what a crash can
//! leave behind.

use noderun_core::ipam::{IpamError, Owner, Range};
use noderun_netplug::{IpamStore, StoreError};
use noderun_testkit::TempDir;
use std::collections::BTreeSet;
use std::net::IpAddr;

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

#[test]
fn state_survives_reopening_and_a_torn_temp_file() {
    let dir = TempDir::new("netplug-store").unwrap();
    let owner = Owner::new("pod-1", "eth0");
    let first = {
        let store = IpamStore::open(dir.path(), "pods", range("10.250.0.0/24")).unwrap();
        store.allocate(&owner).unwrap()
    };
    // A crash between writing the temp file and renaming it leaves this.
    let net_dir = dir.join("pods");
    std::fs::write(net_dir.join("state.json.tmp"), b"{\"version\":1,\"alloc").unwrap();
    let store = IpamStore::open(dir.path(), "pods", range("10.250.0.0/24")).unwrap();
    assert_eq!(store.lookup(&owner).unwrap(), Some(first));
    let second = store.allocate(&Owner::new("pod-2", "eth0")).unwrap();
    assert_ne!(first, second);
    let text = std::fs::read_to_string(store.state_path()).unwrap();
    assert!(text.starts_with("{\"version\":1,"), "{text}");
    assert!(
        text.contains("\"10.250.0.2\":{\"container_id\":\"pod-1\""),
        "{text}"
    );
}

#[test]
fn a_corrupt_state_file_is_refused_by_path() {
    let dir = TempDir::new("netplug-store").unwrap();
    let store = IpamStore::open(dir.path(), "pods", range("10.250.0.0/24")).unwrap();
    let state_file = store.state_path().to_path_buf();
    for (content, why) in [
        (&b"not json"[..], "expected"),
        (
            &b"{\"version\":7,\"allocations\":{},\"last\":null}"[..],
            "format version 7",
        ),
    ] {
        std::fs::write(&state_file, content).unwrap();
        let err = store.allocate(&Owner::new("pod", "eth0")).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{text}");
        assert!(
            text.contains(&state_file.display().to_string()) && text.contains(why),
            "{text}"
        );
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
    let torn = before.state_path().to_path_buf();
    std::fs::write(&torn, b"{\"version\":1,\"allo").unwrap();
    // A state file of the netplug versions before boot-scoped state.
    std::fs::write(dir.join("pods").join("state.json"), b"{}").unwrap();

    let after =
        IpamStore::open_for_boot(dir.path(), "pods", range("10.250.0.0/24"), "bbbb-2222").unwrap();
    assert_ne!(after.state_path(), torn.as_path());
    // The old boot's pods are gone, and so are their addresses: nothing
    // is held, and the torn file is neither read nor an error.
    assert_eq!(after.lookup(&owner).unwrap(), None);
    assert!(after.state().unwrap().allocations.is_empty());
    // The first change of the new boot removes the old boots' files.
    let new_ip = after.allocate(&Owner::new("pod-2", "eth0")).unwrap();
    assert_eq!(new_ip, old_ip, "the range starts over");
    assert!(!torn.exists(), "the old boot's state is still there");
    assert!(!dir.join("pods").join("state.json").exists());
    assert!(after.state_path().exists());
}

#[test]
fn the_running_boot_is_the_kernels() {
    let dir = TempDir::new("netplug-store").unwrap();
    let store = IpamStore::open(dir.path(), "pods", range("10.250.0.0/24")).unwrap();
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let name = store
        .state_path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(name, format!("state-{}.json", boot_id.trim()));
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
