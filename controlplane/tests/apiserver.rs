//! The apiserver end to end over its Unix socket: authentication, the
//! authorization matrix, admission, compare-and-swap, binding, graceful
//! deletion and watches.

mod common;

use common::*;
use noderun_controlplane::client::{Client, DeleteOptions, ListOptions};
use noderun_core::proto::{ErrorCode, EventType, Preconditions};
use noderun_core::{ConditionStatus, Kind, Object, PodCondition, PodConditionType, PodPhase};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_or_missing_token_is_unauthorized() {
    let server = TestServer::start().await;
    let e = server
        .try_client("not-a-token-0123456789")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::Unauthorized), "{e}");
    assert!(e.to_string().contains("tokens file"), "{e}");
    let e = server.try_client("").await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::Unauthorized), "{e}");
    for (token, who) in [
        (ADMIN, "admin"),
        (VIEWER, "viewer"),
        (NODE1, "node:n1"),
        (CONTROLLERS, "system:controllers"),
        (SCHEDULER, "system:scheduler"),
    ] {
        assert_eq!(server.client(token).await.identity(), who);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Status,
    Delete,
    Bind,
}

const VERBS: [Verb; 8] = [
    Verb::Get,
    Verb::List,
    Verb::Watch,
    Verb::Create,
    Verb::Update,
    Verb::Status,
    Verb::Delete,
    Verb::Bind,
];

/// Who may do what: one row per identity and kind, one column per verb in
/// the order of `VERBS` (get list watch create update status delete
/// bind): `y` allowed, `n` Forbidden, `-` not a verb of that kind.
const MATRIX: &[(&str, Kind, &str)] = &[
    (ADMIN, Kind::Namespace, "yyyyyyy-"),
    (ADMIN, Kind::Pod, "yyyyyyyy"),
    (ADMIN, Kind::Node, "yyyyyyy-"),
    (ADMIN, Kind::ReplicaSet, "yyyyyyy-"),
    (ADMIN, Kind::Lease, "yyyyy-y-"),
    (VIEWER, Kind::Namespace, "yyynnnn-"),
    (VIEWER, Kind::Pod, "yyynnnnn"),
    (VIEWER, Kind::Node, "yyynnnn-"),
    (VIEWER, Kind::ReplicaSet, "yyynnnn-"),
    (VIEWER, Kind::Lease, "yyynn-n-"),
    (NODE1, Kind::Namespace, "nnnnnnn-"),
    (NODE1, Kind::Pod, "yyynnyyn"),
    (NODE1, Kind::Node, "ynnynyn-"),
    (NODE1, Kind::ReplicaSet, "nnnnnnn-"),
    (NODE1, Kind::Lease, "ynnyy-n-"),
    (CONTROLLERS, Kind::Namespace, "nnnnnnn-"),
    (CONTROLLERS, Kind::Pod, "yyyyynyn"),
    (CONTROLLERS, Kind::Node, "yyynyyn-"),
    (CONTROLLERS, Kind::ReplicaSet, "yyynnyn-"),
    (CONTROLLERS, Kind::Lease, "yyynn-n-"),
    (SCHEDULER, Kind::Namespace, "nnnnnnn-"),
    (SCHEDULER, Kind::Pod, "yyynnyny"),
    (SCHEDULER, Kind::Node, "yyynnnn-"),
    (SCHEDULER, Kind::ReplicaSet, "nnnnnnn-"),
    (SCHEDULER, Kind::Lease, "nnnnn-n-"),
];

/// The object each matrix cell acts on: node:n1's own where it has one.
fn fixture(kind: Kind, verb: Verb) -> Object {
    match kind {
        Kind::Namespace => namespace("ns-target"),
        Kind::Pod if verb == Verb::Bind => pod("default", "pod-target", ""),
        Kind::Pod => pod("default", "pod-target", "n1"),
        Kind::Node => node("n1"),
        Kind::ReplicaSet => replicaset("default", "rs-target"),
        Kind::Lease => lease("n1"),
    }
}

/// Put the fixture in the state the cell needs: absent for create,
/// freshly made otherwise.
async fn reset(admin: &Client, kind: Kind, verb: Verb) -> Object {
    let object = fixture(kind, verb);
    let (ns, name) = (fixture_namespace(kind), object.metadata().name.clone());
    let force = DeleteOptions {
        force: true,
        ..DeleteOptions::default()
    };
    match admin.delete(kind, ns, &name, &force).await {
        Ok(_) => {}
        Err(e) => assert_eq!(
            e.code(),
            Some(ErrorCode::NotFound),
            "reset {kind} {name}: {e}"
        ),
    }
    if verb != Verb::Create {
        admin.create(object.clone()).await.expect("create fixture");
    }
    object
}

async fn perform(
    client: &Client,
    admin: &Client,
    kind: Kind,
    verb: Verb,
    object: Object,
) -> Result<(), noderun_controlplane::client::ClientError> {
    let ns = fixture_namespace(kind);
    let name = object.metadata().name.clone();
    let list = ListOptions {
        node_name: (kind == Kind::Pod).then(|| "n1".to_owned()),
        ..ListOptions::default()
    };
    let scope = (!ns.is_empty()).then_some(ns);
    match verb {
        Verb::Get => client.get(kind, ns, &name).await.map(drop),
        Verb::List => client.list(kind, scope, &list).await.map(drop),
        Verb::Watch => client.watch(kind, scope, &list, 0).await.map(drop),
        Verb::Create => client.create(object).await.map(drop),
        Verb::Update => {
            let mut current = admin.get(kind, ns, &name).await.expect("read fixture");
            current
                .metadata_mut()
                .labels
                .insert("touched".into(), "yes".into());
            client.update(current).await.map(drop)
        }
        Verb::Status => {
            let mut current = admin.get(kind, ns, &name).await.expect("read fixture");
            // The one status change every writer of pod status may make
            // (the scheduler may make no other).
            if let Object::Pod(p) = &mut current {
                p.status.conditions.push(PodCondition {
                    type_: PodConditionType::PodScheduled,
                    status: ConditionStatus::False,
                    reason: "Unschedulable".into(),
                    ..PodCondition::default()
                });
            }
            client.update_status(current).await.map(drop)
        }
        Verb::Delete => client
            .delete(kind, ns, &name, &DeleteOptions::default())
            .await
            .map(drop),
        Verb::Bind => client.bind(ns, &name, "n1", 0).await.map(drop),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix() {
    let server = TestServer::start().await;
    let admin = server.client(ADMIN).await;
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (token, kind, row) in MATRIX {
        let client = server.client(token).await;
        for (verb, want) in VERBS.iter().zip(row.chars()) {
            if want == '-' {
                continue;
            }
            let object = reset(&admin, *kind, *verb).await;
            let got = perform(&client, &admin, *kind, *verb, object).await;
            checked += 1;
            let ok = match (want, &got) {
                ('y', Ok(())) => true,
                ('n', Err(e)) => e.code() == Some(ErrorCode::Forbidden),
                _ => false,
            };
            if !ok {
                let got = got.map_err(|e| e.to_string());
                wrong.push(format!(
                    "{} {verb:?} {kind}: want {want}, got {got:?}",
                    client.identity()
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {checked} cells wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    let cells: usize = MATRIX
        .iter()
        .map(|(_, _, row)| row.matches(['y', 'n']).count())
        .sum();
    assert_eq!(checked, cells);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cannot_touch_another_nodes_pods() {
    let server = TestServer::start().await;
    let admin = server.client(ADMIN).await;
    admin.create(pod("default", "on-n2", "n2")).await.unwrap();
    admin.create(pod("default", "unbound", "")).await.unwrap();
    admin.create(pod("default", "on-n1", "n1")).await.unwrap();
    let n1 = server.client(NODE1).await;
    for name in ["on-n2", "unbound"] {
        let e = n1.get(Kind::Pod, "default", name).await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::Forbidden), "{e}");
        assert!(
            e.to_string().contains("node:n1 may not get pods default/"),
            "{e}"
        );
        let mut theirs = admin.get(Kind::Pod, "default", name).await.unwrap();
        if let Object::Pod(p) = &mut theirs {
            p.status.phase = PodPhase::Failed;
        }
        assert_eq!(code(n1.update_status(theirs).await), ErrorCode::Forbidden);
        let force = DeleteOptions {
            force: true,
            ..DeleteOptions::default()
        };
        assert_eq!(
            code(n1.delete(Kind::Pod, "default", name, &force).await),
            ErrorCode::Forbidden
        );
    }
    // Nor rebind its own pod to the other node through a status update.
    let mut mine = n1.get(Kind::Pod, "default", "on-n1").await.unwrap();
    if let Object::Pod(p) = &mut mine {
        p.spec.node_name = "n2".into();
        p.status.phase = PodPhase::Running;
    }
    let updated = n1.update_status(mine).await.unwrap();
    let Object::Pod(p) = updated else {
        panic!("not a pod")
    };
    assert_eq!(
        (p.spec.node_name.as_str(), p.status.phase),
        ("n1", PodPhase::Running)
    );
    // Its lists are its own pods only, and a list without the field selector is refused.
    let mine_only = ListOptions {
        node_name: Some("n1".into()),
        ..ListOptions::default()
    };
    let (items, _) = n1.list(Kind::Pod, None, &mine_only).await.unwrap();
    let names: Vec<_> = items.iter().map(|o| o.metadata().name.as_str()).collect();
    assert_eq!(names, ["on-n1"]);
    assert_eq!(
        code(n1.list(Kind::Pod, None, &ListOptions::default()).await),
        ErrorCode::Forbidden
    );
    let theirs = ListOptions {
        node_name: Some("n2".into()),
        ..ListOptions::default()
    };
    assert_eq!(
        code(n1.watch(Kind::Pod, None, &theirs, 0).await),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code(n1.update_status(node("n2")).await),
        ErrorCode::Forbidden
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_defaults_validates_and_needs_the_namespace() {
    let server = TestServer::start().await;
    let admin = server.client(ADMIN).await;
    let created = admin.create(pod("", "web", "")).await.unwrap();
    let meta = created.metadata();
    assert_eq!(meta.namespace, "default", "defaulted");
    assert_eq!((meta.uid.len(), meta.generation), (36, 1));
    assert!(meta.creation_timestamp.is_some() && meta.resource_version > 0);
    let e = admin.create(pod("nowhere", "web", "")).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotFound));
    assert!(
        e.to_string()
            .contains("namespace \"nowhere\" does not exist"),
        "{e}"
    );
    admin.create(namespace("nowhere")).await.unwrap();
    admin.create(pod("nowhere", "web", "")).await.unwrap();
    let mut bad = pod("default", "Bad_Name", "");
    if let Object::Pod(p) = &mut bad {
        p.spec.containers[0].image.clear();
    }
    let e = admin.create(bad).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::Invalid), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("metadata.name") && text.contains("spec.containers[0].image"),
        "{text}"
    );
    let mut generated = pod("default", "", "");
    generated.metadata_mut().generate_name = "web-".into();
    let g = admin.create(generated).await.unwrap();
    assert!(
        g.metadata().name.starts_with("web-") && g.metadata().name.len() == 9,
        "{}",
        g.metadata().name
    );
    assert_eq!(
        code(admin.create(pod("default", "web", "")).await),
        ErrorCode::AlreadyExists
    );
    // The namespace is not removed while it holds objects; default never is.
    let none = DeleteOptions::default();
    assert_eq!(
        code(admin.delete(Kind::Namespace, "", "nowhere", &none).await),
        ErrorCode::Conflict
    );
    assert_eq!(
        code(admin.delete(Kind::Namespace, "", "default", &none).await),
        ErrorCode::Forbidden
    );
    admin
        .delete(Kind::Pod, "nowhere", "web", &none)
        .await
        .unwrap();
    admin
        .delete(Kind::Namespace, "", "nowhere", &none)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_and_bind_are_compare_and_swap() {
    let server = TestServer::start().await;
    let admin = server.client(ADMIN).await;
    let v1 = admin.create(pod("default", "web", "")).await.unwrap();
    let mut a = v1.clone();
    a.metadata_mut().labels.insert("a".into(), "1".into());
    let v2 = admin.update(a).await.unwrap();
    assert!(v2.metadata().resource_version > v1.metadata().resource_version);
    // A second writer still holding v1 loses.
    let mut b = v1.clone();
    b.metadata_mut().labels.insert("b".into(), "1".into());
    let e = admin.update(b).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::Conflict), "{e}");
    assert!(e.to_string().contains("read the object again"), "{e}");
    // Status updates too.
    assert_eq!(
        code(admin.update_status(v1.clone()).await),
        ErrorCode::Conflict
    );
    // Bind: a stale version loses, the current one wins, and only once.
    let stale = v1.metadata().resource_version;
    assert_eq!(
        code(admin.bind("default", "web", "n1", stale).await),
        ErrorCode::Conflict
    );
    let bound = admin
        .bind("default", "web", "n1", v2.metadata().resource_version)
        .await
        .unwrap();
    let Object::Pod(p) = &bound else {
        panic!("not a pod")
    };
    assert_eq!(p.spec.node_name, "n1");
    let e = admin.bind("default", "web", "n2", 0).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::Conflict));
    assert!(e.to_string().contains("already bound to node n1"), "{e}");
    // Concurrent binds of one pod: exactly one winner.
    admin.create(pod("default", "race", "")).await.unwrap();
    let binds = (0..8).map(|i| {
        let admin = admin.clone();
        tokio::spawn(async move { admin.bind("default", "race", &format!("n{i}"), 0).await })
    });
    let mut wins = 0;
    for b in binds {
        match b.await.unwrap() {
            Ok(_) => wins += 1,
            Err(e) => assert_eq!(e.code(), Some(ErrorCode::Conflict), "{e}"),
        }
    }
    assert_eq!(wins, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_deletion_of_bound_pods() {
    let server = TestServer::start().await;
    let admin = server.client(ADMIN).await;
    let n1 = server.client(NODE1).await;
    let none = DeleteOptions::default();
    // Unbound: gone at once.
    admin.create(pod("default", "loose", "")).await.unwrap();
    admin
        .delete(Kind::Pod, "default", "loose", &none)
        .await
        .unwrap();
    assert_eq!(
        code(admin.get(Kind::Pod, "default", "loose").await),
        ErrorCode::NotFound
    );
    // Bound: marked, still there, until the node finalizes it.
    admin.create(pod("default", "web", "n1")).await.unwrap();
    let marked = admin
        .delete(Kind::Pod, "default", "web", &none)
        .await
        .unwrap();
    let meta = marked.metadata();
    assert!(meta.deletion_timestamp.is_some());
    assert_eq!(meta.deletion_grace_period_seconds, Some(30));
    let again = admin
        .delete(Kind::Pod, "default", "web", &none)
        .await
        .unwrap();
    assert_eq!(
        again.metadata().resource_version,
        meta.resource_version,
        "deleting twice changes nothing"
    );
    let seen = n1.get(Kind::Pod, "default", "web").await.unwrap();
    assert!(seen.metadata().is_terminating());
    // A wrong precondition is refused; the node's forced delete removes it.
    let wrong = DeleteOptions {
        force: true,
        preconditions: Preconditions {
            uid: Some("not-the-uid".into()),
            resource_version: None,
        },
        ..DeleteOptions::default()
    };
    assert_eq!(
        code(n1.delete(Kind::Pod, "default", "web", &wrong).await),
        ErrorCode::Conflict
    );
    let force = DeleteOptions {
        force: true,
        ..DeleteOptions::default()
    };
    n1.delete(Kind::Pod, "default", "web", &force)
        .await
        .unwrap();
    assert_eq!(
        code(admin.get(Kind::Pod, "default", "web").await),
        ErrorCode::NotFound
    );
    // Admin's force on a bound pod is immediate too.
    admin.create(pod("default", "stuck", "n2")).await.unwrap();
    admin
        .delete(Kind::Pod, "default", "stuck", &force)
        .await
        .unwrap();
    assert_eq!(
        code(admin.get(Kind::Pod, "default", "stuck").await),
        ErrorCode::NotFound
    );
}

type Seen = Vec<(EventType, String, u64)>;

async fn collect(w: &mut noderun_controlplane::client::WatchStream, n: usize) -> Seen {
    let mut seen = Vec::new();
    while seen.len() < n {
        let e = tokio::time::timeout(std::time::Duration::from_secs(30), w.next())
            .await
            .expect("event within 30 s")
            .expect("watch open");
        let name = e
            .object
            .map(|o| o.metadata().name.clone())
            .unwrap_or_default();
        seen.push((e.event_type, name, e.revision));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sees_every_event_in_order_from_a_revision() {
    let server = TestServer::start().await;
    let admin = server.client(ADMIN).await;
    let viewer = server.client(VIEWER).await;
    let (_, start) = admin
        .list(Kind::Pod, None, &ListOptions::default())
        .await
        .unwrap();
    let mut live = viewer
        .watch(Kind::Pod, None, &ListOptions::default(), 0)
        .await
        .unwrap();
    assert_eq!(live.start_revision(), start);
    let mut want: Seen = Vec::new();
    for i in 0..20 {
        let o = admin
            .create(pod("default", &format!("p{i}"), ""))
            .await
            .unwrap();
        want.push((
            EventType::Added,
            o.metadata().name.clone(),
            o.metadata().resource_version,
        ));
    }
    for i in (0..20).step_by(3) {
        let mut o = admin
            .get(Kind::Pod, "default", &format!("p{i}"))
            .await
            .unwrap();
        o.metadata_mut().labels.insert("even".into(), "no".into());
        let o = admin.update(o).await.unwrap();
        want.push((
            EventType::Modified,
            o.metadata().name.clone(),
            o.metadata().resource_version,
        ));
    }
    for i in (1..20).step_by(4) {
        let o = admin
            .delete(
                Kind::Pod,
                "default",
                &format!("p{i}"),
                &DeleteOptions::default(),
            )
            .await
            .unwrap();
        want.push((
            EventType::Deleted,
            o.metadata().name.clone(),
            o.metadata().resource_version,
        ));
    }
    // Other kinds do not show up in a pod watch.
    admin.create(node("n9")).await.unwrap();
    assert_eq!(collect(&mut live, want.len()).await, want);
    let mut replay = viewer
        .watch(Kind::Pod, None, &ListOptions::default(), start)
        .await
        .unwrap();
    assert_eq!(collect(&mut replay, want.len()).await, want);
    let mid = want[25].2;
    let mut from_mid = viewer
        .watch(Kind::Pod, Some("default"), &ListOptions::default(), mid)
        .await
        .unwrap();
    assert_eq!(collect(&mut from_mid, want.len() - 26).await, want[26..]);
    // A node's watch sees a pod the moment it is bound to it.
    let n1 = server.client(NODE1).await;
    let mine = ListOptions {
        node_name: Some("n1".into()),
        ..ListOptions::default()
    };
    let mut node_watch = n1.watch(Kind::Pod, None, &mine, 0).await.unwrap();
    admin.bind("default", "p0", "n1", 0).await.unwrap();
    let got = collect(&mut node_watch, 1).await;
    assert_eq!((got[0].0, got[0].1.as_str()), (EventType::Added, "p0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_watchers_each_see_every_event() {
    const WATCHERS: usize = 1000;
    const EVENTS: usize = 30;
    let server = TestServer::start().await;
    let admin = server.client(ADMIN).await;
    // 100 connections with 10 watches each: connection count and
    // multiplexing both get exercised.
    let mut opening = tokio::task::JoinSet::new();
    for _ in 0..WATCHERS / 10 {
        let socket = server.socket.clone();
        opening.spawn(async move {
            let endpoint = noderun_controlplane::client::Endpoint::Unix(socket);
            let client = Client::connect(&endpoint, VIEWER, "watcher").await.unwrap();
            let mut streams = Vec::new();
            for _ in 0..10 {
                streams.push(
                    client
                        .watch(Kind::Pod, None, &ListOptions::default(), 0)
                        .await
                        .unwrap(),
                );
            }
            (client, streams)
        });
    }
    let mut watchers = Vec::new();
    while let Some(opened) = opening.join_next().await {
        watchers.push(opened.unwrap());
    }
    let mut want: Seen = Vec::new();
    for i in 0..EVENTS {
        let o = admin
            .create(pod("default", &format!("p{i}"), ""))
            .await
            .unwrap();
        want.push((
            EventType::Added,
            o.metadata().name.clone(),
            o.metadata().resource_version,
        ));
    }
    let mut checks = tokio::task::JoinSet::new();
    for (client, streams) in watchers {
        for mut s in streams {
            let want = want.clone();
            let client = client.clone();
            checks.spawn(async move {
                let seen = collect(&mut s, want.len()).await;
                drop(client);
                seen == want
            });
        }
    }
    let mut complete = 0;
    while let Some(ok) = checks.join_next().await {
        complete += usize::from(ok.unwrap());
    }
    assert_eq!(
        complete, WATCHERS,
        "watchers that saw all {EVENTS} events in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_compacted_history_must_relist() {
    use noderun_controlplane::apiserver::compactor;
    let server = TestServer::start().await;
    let admin = server.client(ADMIN).await;
    let old = admin.create(pod("default", "p0", "")).await.unwrap();
    let old = old.metadata().resource_version;
    for i in 1..10 {
        admin
            .create(pod("default", &format!("p{i}"), ""))
            .await
            .unwrap();
    }
    let at = compactor::compact_once(server.api.store(), 3)
        .await
        .unwrap();
    assert!(at > old, "compacted up to {at}");
    let all = ListOptions::default();
    let e = admin.watch(Kind::Pod, None, &all, old).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::Expired), "{e}");
    assert!(e.to_string().contains("list again"), "{e}");
    // What a client does then: list, and watch from the list's revision.
    let (items, revision) = admin.list(Kind::Pod, None, &all).await.unwrap();
    assert_eq!(items.len(), 10);
    let mut w = admin.watch(Kind::Pod, None, &all, revision).await.unwrap();
    admin.create(pod("default", "after", "")).await.unwrap();
    let seen = collect(&mut w, 1).await;
    assert_eq!(seen[0].1, "after");
}
