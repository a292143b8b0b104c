//! The store suite on the embedded backend, plus what only this backend
//! has: a file to reopen, to corrupt, and to kill -9 a writer of.

use super::*;
use crate::store::suite;
use noderun_testkit::TempDir;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn open(dir: &TempDir) -> EmbeddedStore {
    EmbeddedStore::open(&EmbeddedOptions {
        data_dir: dir.path().to_owned(),
    })
    .unwrap()
}

/// Run one suite check on a fresh store in a fresh temp dir.
macro_rules! suite_test {
    ($name:ident, arc) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let dir = TempDir::new(concat!("store-", stringify!($name))).unwrap();
            suite::$name(Arc::new(open(&dir))).await;
        }
    };
    ($name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let dir = TempDir::new(concat!("store-", stringify!($name))).unwrap();
            suite::$name(&open(&dir)).await;
        }
    };
}

suite::for_each_check!(suite_test);

#[tokio::test]
async fn revision_history_and_compaction_survive_reopen() {
    let dir = TempDir::new("store-reopen").unwrap();
    {
        let s = open(&dir);
        s.create(suite::pod("default", "p1", &[])).await.unwrap();
        s.create(suite::pod("default", "p2", &[])).await.unwrap();
        s.delete(Kind::Pod, "default", "p2", Preconditions::default())
            .await
            .unwrap();
        s.compact(1).await.unwrap();
    }
    let s = open(&dir);
    assert_eq!(s.current_revision().await.unwrap(), 3);
    let all = LabelSelector::default();
    let (items, _) = s.list(Kind::Pod, None, &all, Some(2)).await.unwrap();
    assert_eq!(items.len(), 2);
    assert!(s
        .list(Kind::Pod, None, &all, Some(0))
        .await
        .unwrap_err()
        .is_compacted());
    let next = s.create(suite::pod("default", "p3", &[])).await.unwrap();
    assert_eq!(next.metadata().resource_version, 4);
}

/// Bytes that are not an object: a clear error naming the key and the
/// file, for a get and for a list, and no panic.
#[tokio::test]
async fn corrupt_value_is_an_error_naming_the_key() {
    let dir = TempDir::new("store-corrupt").unwrap();
    let s = open(&dir);
    s.create(suite::pod("default", "good", &[])).await.unwrap();
    {
        let txn = s.inner.db.begin_write().unwrap();
        {
            let mut objects = txn.open_table(OBJECTS).unwrap();
            objects
                .insert("pods/default/bad", &[0xff_u8, 0xff, 0xff, 0x07][..])
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let err = s.get(Kind::Pod, "default", "bad").await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{msg}");
    assert!(
        msg.contains("pods/default/bad") && msg.contains(FILE_NAME),
        "{msg}"
    );
    let err = s
        .list(Kind::Pod, None, &LabelSelector::default(), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("pods/default/bad"), "{err}");
    // The good object is still served.
    s.get(Kind::Pod, "default", "good").await.unwrap();
}

/// A file that is not a redb database: an error naming the path.
#[test]
fn garbage_file_is_refused_with_its_path() {
    let dir = TempDir::new("store-garbage").unwrap();
    std::fs::write(dir.join(FILE_NAME), vec![0x5a_u8; 8192]).unwrap();
    let err = EmbeddedStore::open(&EmbeddedOptions {
        data_dir: dir.path().to_owned(),
    })
    .unwrap_err();
    assert!(err.to_string().contains(FILE_NAME), "{err}");
}

const CRASH_DIR_ENV: &str = "NODERUN_STORE_CRASH_DIR";

/// The child half of `kill_9_loses_no_acknowledged_write`: writes until
/// killed, printing each write's name once it is acknowledged.
#[test]
#[ignore = "run by kill_9_loses_no_acknowledged_write in a child process"]
fn crash_writer_child() {
    let dir = std::env::var_os(CRASH_DIR_ENV).expect("run by the kill -9 test");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = EmbeddedStore::open(&EmbeddedOptions {
            data_dir: dir.into(),
        })
        .unwrap();
        let mut tasks = Vec::new();
        for w in 0..4 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0.. {
                    let name = format!("w{w}-{i}");
                    s.create(suite::pod("default", &name, &[])).await.unwrap();
                    println!("acked {name}");
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

#[tokio::test]
async fn kill_9_loses_no_acknowledged_write() {
    let dir = TempDir::new("store-kill9").unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "store::embedded::tests::crash_writer_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_DIR_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = Vec::new();
    let mut lines = BufReader::new(stdout).lines();
    while acked.len() < 300 {
        let line = lines.next().expect("child still writing").unwrap();
        if let Some(name) = line.strip_prefix("acked ") {
            acked.push(name.to_owned());
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Acknowledgements printed before the kill are still in the pipe.
    for line in lines {
        if let Some(name) = line.unwrap().strip_prefix("acked ") {
            acked.push(name.to_owned());
        }
    }
    let s = open(&dir);
    for name in &acked {
        s.get(Kind::Pod, "default", name)
            .await
            .unwrap_or_else(|e| panic!("acknowledged write {name} lost: {e}"));
    }
    let (items, rev) = s
        .list(Kind::Pod, None, &LabelSelector::default(), None)
        .await
        .unwrap();
    assert!(items.len() >= acked.len());
    assert_eq!(rev as usize, items.len(), "one revision per create");
}

/// Concurrent writers share commits (group commit): a batch mixing writes
/// that succeed with ones whose precondition fails answers each on its
/// own, spends revisions only on successes, and is durable as a whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn batched_writes_answer_each_writer_and_survive_reopen() {
    let dir = TempDir::new("store-batch").unwrap();
    {
        let s = Arc::new(open(&dir));
        let mut tasks = Vec::new();
        for i in 0..64 {
            let s = Arc::clone(&s);
            // Even tasks make their own pod; odd ones all race for "same".
            let name = if i % 2 == 0 {
                format!("p{i}")
            } else {
                "same".to_string()
            };
            tasks.push(tokio::spawn(async move {
                s.create(suite::pod("default", &name, &[])).await
            }));
        }
        let mut ok = 0;
        let mut exists = 0;
        let mut revisions = std::collections::BTreeSet::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(o) => {
                    ok += 1;
                    assert!(revisions.insert(o.metadata().resource_version));
                }
                Err(StoreError::AlreadyExists { .. }) => exists += 1,
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert_eq!((ok, exists), (33, 31));
        assert_eq!(revisions, (1..=33).collect());
    }
    let s = open(&dir);
    assert_eq!(s.current_revision().await.unwrap(), 33);
    let (pods, _) = s
        .list(Kind::Pod, Some("default"), &LabelSelector::default(), None)
        .await
        .unwrap();
    assert_eq!(pods.len(), 33);
}
