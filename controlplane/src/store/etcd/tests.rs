//! The store suite on the etcd backend, each check on its own etcd (the
//! suite counts revisions, which one etcd shares between all its users),
//! plus what only this backend has: key prefixes, values written by
//! someone else, and a server that goes away.

use super::test_server::EtcdServer;
use super::*;
use crate::store::suite;
use crate::store::watch::Watcher;

/// Run one suite check on a store on a fresh etcd.
macro_rules! suite_test {
    ($name:ident, arc) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let etcd = EtcdServer::start(stringify!($name));
            suite::$name(Arc::new(etcd.store().await)).await;
        }
    };
    ($name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let etcd = EtcdServer::start(stringify!($name));
            suite::$name(&etcd.store().await).await;
        }
    };
}

suite::for_each_check!(suite_test);

async fn next_or_end(w: &mut Watcher) -> Option<crate::store::WatchEvent> {
    tokio::time::timeout(std::time::Duration::from_secs(10), w.next())
        .await
        .expect("watch event or end within 10 s")
}

/// Two stores with their own prefixes on one etcd: neither sees the
/// other's objects, in gets, lists or watches.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prefixes_keep_stores_apart() {
    let etcd = EtcdServer::start("prefixes");
    let a = etcd.store_with_prefix("/team-a/").await;
    let b = etcd.store_with_prefix("/team-b/").await;
    let mut b_pods = b.watch(WatchFilter::kind(Kind::Pod), 0).await.unwrap();
    a.create(suite::pod("default", "web", &[])).await.unwrap();
    let err = b.get(Kind::Pod, "default", "web").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err}");
    let all = LabelSelector::default();
    assert!(b
        .list(Kind::Pod, None, &all, None)
        .await
        .unwrap()
        .0
        .is_empty());
    let mine = b.create(suite::pod("default", "web", &[])).await.unwrap();
    let e = next_or_end(&mut b_pods).await.expect("b's own event");
    assert_eq!(
        e.revision,
        mine.metadata().resource_version,
        "not a's create"
    );
    assert_eq!(
        a.list(Kind::Pod, None, &all, None).await.unwrap().0.len(),
        1
    );
}

/// A value that is not an object (written by someone else under the
/// prefix): an error naming the key and the endpoint, for a get and a list.
#[tokio::test]
async fn corrupt_value_is_an_error_naming_key_and_endpoint() {
    let etcd = EtcdServer::start("corrupt");
    let s = etcd.store().await;
    s.create(suite::pod("default", "good", &[])).await.unwrap();
    s.client
        .kv_client()
        .put(
            "/noderun/pods/default/bad",
            vec![0xff_u8, 0xff, 0xff, 0x07],
            None,
        )
        .await
        .unwrap();
    let err = s.get(Kind::Pod, "default", "bad").await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{msg}");
    assert!(
        msg.contains("pods/default/bad") && msg.contains(&etcd.url()),
        "{msg}"
    );
    let err = s
        .list(Kind::Pod, None, &LabelSelector::default(), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("pods/default/bad"), "{err}");
    s.get(Kind::Pod, "default", "good").await.unwrap();
}

/// Lists longer than a page come back whole, in key order, at one revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn long_lists_are_paged_at_one_revision() {
    let etcd = EtcdServer::start("paged");
    let s = Arc::new(etcd.store().await);
    let n = PAGE as usize * 2 + 10;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..16 {
        let s = Arc::clone(&s);
        tasks.spawn(async move {
            for i in (w..n).step_by(16) {
                s.create(suite::pod("default", &format!("p{i:05}"), &[]))
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(t) = tasks.join_next().await {
        t.unwrap();
    }
    let all = LabelSelector::default();
    let (items, rev) = s.list(Kind::Pod, None, &all, None).await.unwrap();
    let names: Vec<String> = items.iter().map(|o| o.metadata().name.clone()).collect();
    let expected: Vec<String> = (0..n).map(|i| format!("p{i:05}")).collect();
    assert_eq!(names, expected);
    // Later writes do not leak into a list at an earlier revision.
    s.create(suite::pod("default", "p00000x", &[]))
        .await
        .unwrap();
    let (items, at) = s.list(Kind::Pod, None, &all, Some(rev)).await.unwrap();
    assert_eq!((items.len(), at), (n, rev));
}

/// When etcd goes away a watch ends (the apiserver then tells its client
/// to relist) instead of hanging, and requests fail naming the endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watch_ends_when_etcd_goes_away() {
    let etcd = EtcdServer::start("goes-away");
    let url = etcd.url();
    let s = etcd.store().await;
    let mut pods = s.watch(WatchFilter::kind(Kind::Pod), 0).await.unwrap();
    s.create(suite::pod("default", "web", &[])).await.unwrap();
    assert!(next_or_end(&mut pods).await.is_some());
    drop(etcd);
    assert!(next_or_end(&mut pods).await.is_none(), "the watch ends");
    let err = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        s.get(Kind::Pod, "default", "web"),
    )
    .await
    .expect("a failed request, not a hang")
    .unwrap_err();
    assert!(err.to_string().contains(&url), "{err}");
}

/// Nothing listening: connect fails within its timeout, naming the address.
#[tokio::test]
async fn unreachable_etcd_is_named() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = EtcdOptions::from_url(&format!("etcd://127.0.0.1:{port}")).unwrap();
    let err = EtcdStore::connect(&options).await.unwrap_err();
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}
