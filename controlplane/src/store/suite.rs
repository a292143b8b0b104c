//! The store test suite: `async fn` checks that take any [`Store`], so that
//! every backend is held to the same semantics. Each check expects an empty
//! store of its own. Backends run it from their own test modules.
//!
//! Revisions are counted from the store's revision when the check starts
//! (`base`): 0 for the embedded store, 1 for a fresh etcd (whose empty
//! keyspace is already at revision 1).

use super::{EventType, Preconditions, Store, StoreError, WatchEvent, WatchFilter, Watcher};
use noderun_core::{Kind, LabelSelector, Labels, Node, Object, ObjectMeta, Pod};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// Call `$each!(check)` for every check of the suite (`$each!(check, arc)`
/// for those that take an `Arc` of the store): each backend's test module
/// turns them into tests on its own fresh store.
macro_rules! for_each_check {
    ($each:ident) => {
        $each!(create_get_and_conflict);
        $each!(not_found);
        $each!(update_is_compare_and_swap);
        $each!(concurrent_cas_has_one_winner, arc);
        $each!(delete_preconditions);
        $each!(list_by_namespace_and_selector);
        $each!(list_at_old_revision);
        $each!(watch_replay_and_compaction);
        $each!(watch_with_concurrent_writers, arc);
        $each!(concurrent_writers_get_unique_revisions, arc);
        $each!(bad_keys_refused);
    };
}
pub(crate) use for_each_check;

/// A pod `namespace/name` with `labels` (`k=v` pairs).
pub fn pod(namespace: &str, name: &str, labels: &[(&str, &str)]) -> Object {
    let labels: Labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Object::Pod(Pod {
        metadata: ObjectMeta {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            uid: format!("uid-{namespace}-{name}"),
            labels,
            ..ObjectMeta::default()
        },
        ..Pod::default()
    })
}

fn node(name: &str) -> Object {
    Object::Node(Node {
        metadata: ObjectMeta {
            name: name.to_owned(),
            uid: format!("uid-{name}"),
            ..ObjectMeta::default()
        },
        ..Node::default()
    })
}

fn names(items: &[Object]) -> Vec<String> {
    items.iter().map(|o| o.metadata().name.clone()).collect()
}

fn selector(labels: &[(&str, &str)]) -> LabelSelector {
    LabelSelector::from_labels(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// The next event, failing the test after 10 s of silence.
async fn next(w: &mut Watcher) -> WatchEvent {
    tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .expect("watch event within 10 s")
        .expect("watch still open")
}

/// The store's revision before a check writes anything.
async fn base<S: Store>(s: &S) -> u64 {
    s.current_revision().await.unwrap()
}

pub async fn create_get_and_conflict<S: Store>(s: &S) {
    let base = base(s).await;
    let created = s.create(pod("default", "web", &[])).await.unwrap();
    assert_eq!(created.metadata().resource_version, base + 1);
    let (got, rev) = s.get(Kind::Pod, "default", "web").await.unwrap();
    assert_eq!(got, created);
    assert_eq!(rev, base + 1);
    let err = s.create(pod("default", "web", &[])).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
    // A failed write consumes no revision.
    assert_eq!(s.current_revision().await.unwrap(), base + 1);
    // Same name, other namespace or kind: a different key.
    s.create(pod("other", "web", &[])).await.unwrap();
    s.create(node("web")).await.unwrap();
    assert_eq!(s.current_revision().await.unwrap(), base + 3);
}

pub async fn not_found<S: Store>(s: &S) {
    let err = s.get(Kind::Pod, "default", "nope").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("Pod default/nope"), "{err}");
    let err = s.update(pod("default", "nope", &[])).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    let err = s
        .delete(Kind::Pod, "default", "nope", Preconditions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
}

pub async fn update_is_compare_and_swap<S: Store>(s: &S) {
    let base = base(s).await;
    let v1 = s.create(pod("default", "web", &[])).await.unwrap();
    let mut a = v1.clone();
    a.metadata_mut().labels.insert("by".into(), "a".into());
    let mut b = v1.clone();
    b.metadata_mut().labels.insert("by".into(), "b".into());
    let v2 = s.update(a).await.unwrap();
    assert_eq!(v2.metadata().resource_version, base + 2);
    let err = s.update(b).await.unwrap_err();
    match &err {
        StoreError::Conflict { mismatch, .. } => assert_eq!(
            *mismatch,
            super::Mismatch::ResourceVersion {
                expected: base + 1,
                stored: base + 2
            }
        ),
        other => panic!("expected a conflict, got {other}"),
    }
    let (stored, _) = s.get(Kind::Pod, "default", "web").await.unwrap();
    assert_eq!(stored.metadata().labels["by"], "a");
}

/// Many writers race a CAS update of one object from the same version:
/// exactly one wins.
pub async fn concurrent_cas_has_one_winner<S: Store>(s: Arc<S>) {
    let v1 = s.create(pod("default", "web", &[])).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = Arc::clone(&s);
        let mut o = v1.clone();
        o.metadata_mut()
            .labels
            .insert("writer".into(), i.to_string());
        tasks.push(tokio::spawn(async move { s.update(o).await }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(StoreError::Conflict { .. }) => {}
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert_eq!(wins, 1);
}

pub async fn delete_preconditions<S: Store>(s: &S) {
    let base = base(s).await;
    let v1 = s.create(pod("default", "web", &[])).await.unwrap();
    let wrong_uid = Preconditions {
        uid: Some("someone-else".into()),
        resource_version: None,
    };
    let err = s
        .delete(Kind::Pod, "default", "web", wrong_uid)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    let stale = Preconditions {
        uid: None,
        resource_version: Some(99),
    };
    let err = s
        .delete(Kind::Pod, "default", "web", stale)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    let right = Preconditions {
        uid: Some(v1.metadata().uid.clone()),
        resource_version: Some(base + 1),
    };
    let gone = s.delete(Kind::Pod, "default", "web", right).await.unwrap();
    assert_eq!(gone.metadata().resource_version, base + 2);
    let err = s.get(Kind::Pod, "default", "web").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
}

pub async fn list_by_namespace_and_selector<S: Store>(s: &S) {
    let base = base(s).await;
    s.create(pod("a", "p1", &[("app", "web")])).await.unwrap();
    s.create(pod("a", "p2", &[("app", "db")])).await.unwrap();
    s.create(pod("b", "p3", &[("app", "web")])).await.unwrap();
    // A namespace that is a prefix of another must not leak into it.
    s.create(pod("ab", "p4", &[("app", "web")])).await.unwrap();
    s.create(node("n1")).await.unwrap();
    let all = LabelSelector::default();
    let (items, rev) = s.list(Kind::Pod, None, &all, None).await.unwrap();
    assert_eq!(names(&items), ["p1", "p2", "p4", "p3"]);
    assert_eq!(rev, base + 5);
    let (items, _) = s.list(Kind::Pod, Some("a"), &all, None).await.unwrap();
    assert_eq!(names(&items), ["p1", "p2"]);
    let web = selector(&[("app", "web")]);
    let (items, _) = s.list(Kind::Pod, None, &web, None).await.unwrap();
    assert_eq!(names(&items), ["p1", "p4", "p3"]);
    let (items, _) = s.list(Kind::Pod, Some("b"), &web, None).await.unwrap();
    assert_eq!(names(&items), ["p3"]);
    let (items, _) = s.list(Kind::Node, None, &all, None).await.unwrap();
    assert_eq!(names(&items), ["n1"]);
}

pub async fn list_at_old_revision<S: Store>(s: &S) {
    let base = base(s).await;
    let all = LabelSelector::default();
    let p1 = s.create(pod("default", "p1", &[("v", "1")])).await.unwrap(); // 1
    s.create(pod("default", "p2", &[])).await.unwrap(); // 2
    let mut changed = p1.clone();
    changed.metadata_mut().labels.insert("v".into(), "2".into());
    s.update(changed).await.unwrap(); // 3
    s.delete(Kind::Pod, "default", "p2", Preconditions::default())
        .await
        .unwrap(); // 4
    s.create(pod("default", "p3", &[])).await.unwrap(); // 5

    let (items, rev) = s.list(Kind::Pod, None, &all, Some(base + 2)).await.unwrap();
    assert_eq!(rev, base + 2);
    assert_eq!(names(&items), ["p1", "p2"]);
    assert_eq!(items[0], p1, "p1 as it was at revision 2");
    let (items, _) = s.list(Kind::Pod, None, &all, Some(base + 4)).await.unwrap();
    assert_eq!(names(&items), ["p1"]);
    assert_eq!(items[0].metadata().labels["v"], "2");
    let (items, _) = s.list(Kind::Pod, None, &all, Some(base)).await.unwrap();
    assert!(items.is_empty());
    let err = s
        .list(Kind::Pod, None, &all, Some(base + 6))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::FutureRevision { requested, current }
                if requested == base + 6 && current == base + 5
        ),
        "{err}"
    );

    assert_eq!(s.compact(base + 3).await.unwrap(), base + 3);
    let err = s
        .list(Kind::Pod, None, &all, Some(base + 2))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Compacted { requested, compacted }
                if requested == base + 2 && compacted == base + 3
        ),
        "{err}"
    );
    let (items, _) = s.list(Kind::Pod, None, &all, Some(base + 3)).await.unwrap();
    assert_eq!(names(&items), ["p1", "p2"]);
    // Compaction never goes back.
    assert_eq!(s.compact(base + 1).await.unwrap(), base + 3);
}

/// Watch from 0 (now), from a mid revision and after a compaction.
pub async fn watch_replay_and_compaction<S: Store>(s: &S) {
    let base = base(s).await;
    let pods = WatchFilter::kind(Kind::Pod);
    let mut from_now = s.watch(pods.clone(), 0).await.unwrap();
    let v1 = s
        .create(pod("default", "p1", &[("app", "web")]))
        .await
        .unwrap(); // 1
    s.create(pod("default", "p2", &[])).await.unwrap(); // 2
    s.create(node("n1")).await.unwrap(); // 3, not a pod
    let mut moved = v1.clone();
    moved
        .metadata_mut()
        .labels
        .insert("app".into(), "db".into());
    s.update(moved).await.unwrap(); // 4
    s.delete(Kind::Pod, "default", "p2", Preconditions::default())
        .await
        .unwrap(); // 5

    let seen: Vec<(EventType, u64)> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            let e = next(&mut from_now).await;
            v.push((e.event_type, e.revision));
        }
        v
    };
    use EventType::*;
    let expected = [(Added, 1), (Added, 2), (Modified, 4), (Deleted, 5)];
    assert_eq!(seen, expected.map(|(t, r)| (t, base + r)));

    // From a mid revision, with a selector: the label change moves p1 out.
    let web = WatchFilter {
        selector: selector(&[("app", "web")]),
        ..pods.clone()
    };
    let mut mid = s.watch(web, base + 1).await.unwrap();
    let e = next(&mut mid).await;
    assert_eq!((e.event_type, e.revision), (Deleted, base + 4));
    assert_eq!(e.object.metadata().name, "p1");
    let mut from_two = s.watch(pods.clone(), base + 2).await.unwrap();
    let e = next(&mut from_two).await;
    assert_eq!((e.event_type, e.revision), (Modified, base + 4));
    let e = next(&mut from_two).await;
    assert_eq!((e.event_type, e.revision), (Deleted, base + 5));
    assert_eq!(e.object.metadata().resource_version, base + 5);

    s.compact(base + 4).await.unwrap();
    let err = s.watch(pods.clone(), base + 3).await.unwrap_err();
    assert!(err.is_compacted(), "{err}");
    let mut at_point = s.watch(pods, base + 4).await.unwrap();
    let e = next(&mut at_point).await;
    assert_eq!((e.event_type, e.revision), (Deleted, base + 5));
}

/// Watchers opened at the current revision while writers run see every
/// later write once, in order.
pub async fn watch_with_concurrent_writers<S: Store>(s: Arc<S>) {
    const WRITERS: usize = 4;
    const EACH: usize = 25;
    let base = base(&*s).await;
    let pods = WatchFilter::kind(Kind::Pod);
    // A first write, so that no watcher asks for revision 0 ("from now").
    s.create(pod("default", "seed", &[])).await.unwrap();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let s = Arc::clone(&s);
        writers.push(tokio::spawn(async move {
            for i in 0..EACH {
                s.create(pod("default", &format!("w{w}-{i}"), &[]))
                    .await
                    .unwrap();
            }
        }));
    }
    let mut watchers = Vec::new();
    for _ in 0..3 {
        let from = s.current_revision().await.unwrap();
        watchers.push((from, s.watch(pods.clone(), from).await.unwrap()));
        tokio::task::yield_now().await;
    }
    for w in writers {
        w.await.unwrap();
    }
    let last = s.current_revision().await.unwrap();
    assert_eq!((last - base) as usize, WRITERS * EACH + 1);
    for (from, mut watcher) in watchers {
        let mut revs = Vec::new();
        while revs.last().copied().unwrap_or(from) < last {
            let e = next(&mut watcher).await;
            assert_eq!(e.event_type, EventType::Added);
            assert_eq!(e.object.metadata().resource_version, e.revision);
            revs.push(e.revision);
        }
        let expected: Vec<u64> = (from + 1..=last).collect();
        assert_eq!(
            revs, expected,
            "watch from {from}: no loss, no duplicate, in order"
        );
    }
}

/// Many concurrent creates get unique revisions 1..=n, each object stamped
/// with its own.
pub async fn concurrent_writers_get_unique_revisions<S: Store>(s: Arc<S>) {
    const N: usize = 64;
    let base = base(&*s).await;
    let mut tasks = Vec::new();
    for i in 0..N {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            s.create(pod("default", &format!("p{i}"), &[]))
                .await
                .unwrap()
        }));
    }
    let mut revs = BTreeSet::new();
    for t in tasks {
        let o = t.await.unwrap();
        assert!(
            revs.insert(o.metadata().resource_version),
            "duplicate revision"
        );
    }
    assert_eq!(revs, (base + 1..=base + N as u64).collect());
}

pub async fn bad_keys_refused<S: Store>(s: &S) {
    let base = base(s).await;
    for (ns, name) in [("default", ""), ("default", "a/b"), ("a/b", "web")] {
        let err = s.create(pod(ns, name, &[])).await.unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidKey { .. }),
            "{ns:?}/{name:?}: {err}"
        );
    }
    assert_eq!(s.current_revision().await.unwrap(), base);
}
